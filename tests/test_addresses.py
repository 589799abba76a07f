"""Address and Message-ID parsing on real-world-shaped header values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail.addresses import (
    Address,
    _iter_mailboxes,
    _simple,
    normalize_msgid,
    parse_address,
    parse_address_list,
    parse_msgid_list,
)

# (value, display, addr, domain)
CASES = [
    ("Dana Whitfield <dana@example.org>", "Dana Whitfield", "dana@example.org", "example.org"),
    ('"Dana Whitfield" <Dana@Example.ORG>', "Dana Whitfield", "dana@example.org", "example.org"),
    ('"Whitfield, Dana" <dana@example.org>', "Whitfield, Dana", "dana@example.org", "example.org"),
    # a comma that Message.header's RFC 2047 decoding put into an unquoted display name
    ("Whitfield, Dana <dana@example.org>", "Whitfield, Dana", "dana@example.org", "example.org"),
    (
        '"Mr. James K"<flannery.ep07@example.edu.tw>',
        "Mr. James K",
        "flannery.ep07@example.edu.tw",
        "example.edu.tw",
    ),
    ('"O\\"Brien" <ob@example.ie>', 'O"Brien', "ob@example.ie", "example.ie"),
    ("<user@example.com>", "", "user@example.com", "example.com"),
    ("user@example.com", "", "user@example.com", "example.com"),
    ("skip@example.com (Skip Montanaro)", "Skip Montanaro", "skip@example.com", "example.com"),
    ("Skip (the boss) <skip@example.com>", "Skip", "skip@example.com", "example.com"),
    ("<skip@example.com> (Skip)", "Skip", "skip@example.com", "example.com"),
    # raw encoded words are decoded
    (
        "Ville =?ISO-8859-1?Q?Skytt=E4?= <ville@example.fi>",
        "Ville Skyttä",
        "ville@example.fi",
        "example.fi",
    ),
    ("=?utf-8?q?Smith=2C_John?= <j@example.com>", "Smith, John", "j@example.com", "example.com"),
    # already decoded (what Message.header gives)
    ("Müller, Jörg <joerg@example.de>", "Müller, Jörg", "joerg@example.de", "example.de"),
    # a colon in a decoded name without a closing ";" is not a group
    ("Re: Team <team@example.com>", "Re: Team", "team@example.com", "example.com"),
    # groups: the group name is not a display name
    ("friends: a@example.com, b@example.net;", "", "a@example.com", "example.com"),
    # angle-less with a display name in front (spam)
    ("John Smith john@example.com", "John Smith", "john@example.com", "example.com"),
    ("Newsletter <news@example.com", "Newsletter", "news@example.com", "example.com"),
    ("<<double@example.com>>", "", "double@example.com", "example.com"),
    ("<mailto:x@example.com>", "", "x@example.com", "example.com"),
    ("Name <@relay.example:u@example.org>", "Name", "u@example.org", "example.org"),
    ('"a@b.example" <real@example.com>', "a@b.example", "real@example.com", "example.com"),
    ('"john doe"@example.com', "", '"john doe"@example.com', "example.com"),
    ("x@[192.0.2.1]", "", "x@[192.0.2.1]", "[192.0.2.1]"),
    ("trailing@example.com.", "", "trailing@example.com", "example.com"),
    # IDN: IDNA ASCII form
    (
        "Peter <peter@Bücher.example>",
        "Peter",
        "peter@xn--bcher-kva.example",
        "xn--bcher-kva.example",
    ),
    ("p@xn--bcher-kva.example", "", "p@xn--bcher-kva.example", "xn--bcher-kva.example"),
]


@pytest.mark.parametrize("value,display,addr,domain", CASES)
def test_parse_address(value, display, addr, domain):
    assert parse_address(value) == Address(display, addr, domain)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "undisclosed-recipients:;",
        "Undisclosed recipients: ;",
        "<>",
        '"" <>',
        "garbage",
        "👉 test",
        "=?UTF-16?B?//492Enc?= test",
        "a@b@example.com",
        "@example.com",
        "someone@",
        "Someone <someone@>",
        "a@example..com",
        # the address only inside a comment is not the From address
        "Max von Amazon,(<service@example.de>)",
    ],
)
def test_no_address(value):
    assert parse_address(value) is None
    assert parse_address_list(value) == []


@pytest.mark.parametrize(
    "value", [None, 12, "<" * 5000, '"' * 999, "(" * 999 + "a@b.c", "\x00@\x00"]
)
def test_never_raises(value):
    parse_address(value)  # type: ignore[arg-type]
    assert isinstance(parse_address_list(value), list)  # type: ignore[arg-type]


def test_address_list():
    value = (
        '"Whitfield, Dana" <dana@example.org>, Doe, Jane <jane@example.net>, '
        "team: a@example.com, B <b@example.com>;, undisclosed-recipients:;, last@example.org"
    )
    got = [(a.display, a.addr) for a in parse_address_list(value)]
    assert got == [
        ("Whitfield, Dana", "dana@example.org"),
        ("Doe, Jane", "jane@example.net"),
        ("", "a@example.com"),
        ("B", "b@example.com"),
        ("", "last@example.org"),
    ]


def test_address_list_skips_broken_members():
    got = [a.addr for a in parse_address_list("ok@example.com, <>, broken@, two@example.net")]
    assert got == ["ok@example.com", "two@example.net"]


@pytest.mark.parametrize(
    "value,expected",
    [
        ("<20231003140102.ABC123@mail.example.org>", "20231003140102.ABC123@mail.example.org"),
        ("  <CAHk-=wh+x@mail.gmail.com>  ", "CAHk-=wh+x@mail.gmail.com"),
        ("<abc\n def@example.com>", "abcdef@example.com"),  # folded inside the brackets
        ("<a@example.com> <b@example.com>", "a@example.com"),
        ("1234.5678@host.example.com", "1234.5678@host.example.com"),  # bare id
        ("<a@example.com> (added by postmaster)", "a@example.com"),
        ("", ""),
        ("<>", ""),
        ("no id here", ""),
    ],
)
def test_normalize_msgid(value, expected):
    assert normalize_msgid(value) == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        (
            "<a@example.com>\n <b@example.com> <c@example.com>",
            ["a@example.com", "b@example.com", "c@example.com"],
        ),
        ('Your message of "Mon, 1 Jan" <x@example.com>', ["x@example.com"]),
        ("<x@example.com> (Dana's message of Mon)", ["x@example.com"]),
        ("<a@example.com>,<b@example.com>", ["a@example.com", "b@example.com"]),
        ("a@example.com b@example.com", ["a@example.com", "b@example.com"]),
        ("<a@example.com> <a@example.com>", ["a@example.com", "a@example.com"]),
        ("", []),
        ("garbage", []),
        (None, []),
    ],
)
def test_parse_msgid_list(value, expected):
    assert parse_msgid_list(value) == expected


# --- the one-regex path for the common shapes equals the tokenizer -----------------------

_FRAGMENTS = st.sampled_from(
    ["Dana", "O'Brien", "J.", " ", "  ", "\t", '"', "<", ">", "@", "a", "B.c", ".", "..", ",",
     ";", ":", "(", ")", "=?", "?=", "=", "?", "\\", "x-y", "[", "]", "é", "mailto:", "_", "-"]
)  # fmt: skip
_WORD = st.text("abcXYZ019!#$%&'*+/^_`{|}~.-", min_size=1, max_size=6)
_LABEL = st.text("abcXYZ019-_", min_size=1, max_size=5)


@st.composite
def _common_shapes(draw: st.DrawFn) -> str:
    """Display words or a quoted name, then <local@domain>, or a bare address; some of them
    just off the common shape (a trailing dot, an underscore, an encoded word)."""
    local = draw(st.text("abcXYZ019!#$%&'*+/=?^_`{|}~.-", min_size=1, max_size=8))
    domain = ".".join(draw(st.lists(_LABEL, min_size=1, max_size=3))) + draw(
        st.sampled_from(["", "", ".", ".."])
    )
    space = st.sampled_from(["", " ", "\t", "  "])
    addr = f"{local}@{domain}"
    kind = draw(st.sampled_from(["words", "quoted", "angle", "bare"]))
    if kind == "bare":
        return draw(space) + addr + draw(space)
    if kind == "words":
        name = draw(space).join(draw(st.lists(_WORD, min_size=1, max_size=3))) or "x"
    elif kind == "quoted":
        name = '"' + draw(st.text("ab ,;:()<>@.\t=?é", max_size=8)) + '"'
    else:
        name = ""
    return f"{draw(space)}{name}{draw(space)}<{addr}>{draw(space)}"


def _tokenized(value: str) -> Address | None:
    return next(_iter_mailboxes(value), None)


@settings(max_examples=600, derandomize=True, deadline=None)
@given(st.one_of(_common_shapes(), st.lists(_FRAGMENTS, max_size=12).map("".join)))
def test_the_common_shapes_path_gives_what_the_tokenizer_gives(value: str) -> None:
    simple = _simple(value)
    if simple is not None:
        assert simple == _tokenized(value)


def test_the_common_shapes_path_takes_the_common_shapes() -> None:
    """So that the property above compares something: these all go the one-regex way."""
    common = [
        "Dana Whitfield <Dana@Example.ORG>",
        '"Whitfield, Dana" <d@example.org>',
        "<user@example.com>",
        " user@example.com ",
        "J. O'Brien <j.ob+x@mail.ie>",
    ]
    for value in common:
        assert _simple(value) is not None, value
        assert _simple(value) == _tokenized(value), value
