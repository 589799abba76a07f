"""The IP fast paths (mail/ips.py) against ipaddress itself, on every kind of text.

`parse_ip` rejects texts with a character no address has before asking ipaddress, and
`normalize_ip` returns a canonical dotted quad as it is; both must answer exactly what the
ipaddress-only functions below answer. These are the code as it was before the fast paths,
with one change made on purpose: a dotted quad of non-ASCII digits ("１.2.3.4", fullwidth) is
no address. No MTA writes one, and int() reading it as 1.2.3.4 let a header spell an address
that no byte-for-byte comparison (DNSBL zones, PTR names) would see.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail.ips import parse_ip
from mailstats.mail.received import normalize_ip


def reference_parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def reference_normalize_ip(text: str) -> str:
    text = text.strip().strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    if not text or len(text) > 64:
        return ""
    addr = reference_parse_ip(text)
    if addr is None:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
            return ""
        nums = [int(p) for p in parts]
        if max(nums) > 255:
            return ""
        return ".".join(map(str, nums))
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


# Dotted quads of every shape: 0-999 per part (over 255 too), leading zeros, 3-5 parts.
_part = st.one_of(st.integers(0, 999).map(str), st.integers(0, 255).map(lambda n: f"{n:03d}"))
_quads = st.lists(_part, min_size=3, max_size=5).map(".".join)
_v6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
_mapped = st.integers(0, 2**32 - 1).map(lambda n: f"::ffff:{ipaddress.IPv4Address(n)}")
_scoped = st.tuples(_v6, st.text("abcxyz019%", min_size=0, max_size=4)).map("%".join)
_names = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,30}", fullmatch=True)
_junk = st.text("0123456789abcdefABCDEFxX:.%[] \tIPVv6", max_size=24)
TEXTS = st.one_of(_quads, _v6, _v6.map(str.upper), _mapped, _scoped, _names, _junk,
                  st.text(max_size=12))  # fmt: skip
DECORATED = st.tuples(
    st.sampled_from(["", "[", "IPv6:", "ipv6:", " "]), TEXTS, st.sampled_from(["", "]", " "])
).map("".join)


@settings(max_examples=1500, derandomize=True, deadline=None)
@given(DECORATED)
def test_normalize_ip_agrees_with_ipaddress(text: str) -> None:
    assert normalize_ip.__wrapped__(text) == reference_normalize_ip(text)


@settings(max_examples=1500, derandomize=True, deadline=None)
@given(TEXTS)
def test_parse_ip_agrees_with_ipaddress(text: str) -> None:
    assert parse_ip.__wrapped__(text) == reference_parse_ip(text)


def test_the_shapes_that_matter_are_drawn() -> None:
    """The fast paths' edges, asked directly: a generated test that never drew them would
    pass whatever the paths did."""
    for text in ["1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3",
                 "1.2.3.4.5", "::1", "FE80::1", "fe80::1%eth0", "fe80::1%", "::ffff:1.2.3.4",
                 "mail.x.org", "dead.beef", "1.2.3.4%x", "[1.2.3.4]", "IPv6:::1", "１.2.3.4",
                 "٠.1.2.3", ""]:  # fmt: skip
        assert normalize_ip.__wrapped__(text) == reference_normalize_ip(text), text
        assert parse_ip.__wrapped__(text) == reference_parse_ip(text), text
    assert normalize_ip.__wrapped__("１.2.3.4") == "" == normalize_ip.__wrapped__("٠.1.2.3")
