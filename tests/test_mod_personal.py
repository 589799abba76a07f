"""personal: the user's name in the To display name and in the body slice."""

from __future__ import annotations

import pytest
from mod_local_support import msg, run_over_corpus, services

from mailstats.modules.personal import PersonalModule, fold, name_tokens

MOD = PersonalModule()
NAME = "Dana Whitfield"


def run(to: str | None, body: str | None = None, full_name: str = NAME) -> dict:
    head = "From: Bob <bob@partner.example>\n" + (f"To: {to}\n" if to is not None else "")
    return MOD.evaluate(msg(head + "Subject: x\n\n", body=body), services(full_name=full_name))


@pytest.mark.parametrize(
    "to",
    [
        "Dana Whitfield <dana@example.org>",
        '"Whitfield, Dana" <dana@example.org>',
        "DANA <dana@example.org>",
        "Mr. Whitfield <dana@example.org>",
        "team@example.org, Dana W. <dana@example.org>",
        "=?utf-8?q?Dana_Whitfield?= <dana@example.org>",
        "dana@example.org (Dana Whitfield)",
    ],
)
def test_to_has_name(to: str) -> None:
    assert run(to)["to_has_name"] is True


@pytest.mark.parametrize(
    "to",
    [
        "dana@example.org",  # no display name
        "<dana@example.org>",
        "Danamark Support <dana@example.org>",
        "undisclosed-recipients:;",
        "Valued Customer <dana@example.org>",
        "dana.whitfield@example.org",  # the address is not a display name
    ],
)
def test_to_without_name(to: str) -> None:
    assert run(to)["to_has_name"] is False


def test_missing_to_is_false() -> None:
    assert run(None)["to_has_name"] is False


def test_accents_and_case() -> None:
    r = run("=?iso-8859-1?q?Zo=EB_M=FCller?= <z@example.org>", full_name="Zoe Muller")
    assert r["to_has_name"] is True
    r = run("ZOE <z@example.org>", body="Hallo Zoë, wie geht's?", full_name="Zoë Müller")
    assert r["to_has_name"] is True and r["body_has_name"] is True
    assert run(None, body="ß ﬁne", full_name="Sse Fine")["body_has_name"] is False
    assert run(None, body="Dear MÜLLER family", full_name="Zoë Müller")["body_has_name"] is False


def test_body_first_name_on_word_boundary() -> None:
    assert run(None, body="Hi Dana,\n\nattached the draft.")["body_has_name"] is True
    assert run(None, body="Dana's report is late")["body_has_name"] is True
    assert run(None, body="Visit Danamark today!")["body_has_name"] is False
    assert run(None, body="Dear Customer,\nyour account")["body_has_name"] is False
    assert run(None, body="")["body_has_name"] is False


def test_body_surname_alone_does_not_count_but_full_name_does() -> None:
    assert run(None, body="Mr Whitfield, your parcel")["body_has_name"] is False
    assert run(None, body="Dear Dana\nWhitfield,")["body_has_name"] is True


def test_body_html_entities() -> None:
    body = "<p>Hello&nbsp;<b>Dana</b>,</p>"
    assert run(None, body=body)["body_has_name"] is True
    body = "<p>Hola Zo&euml;</p>"
    assert run(None, body=body, full_name="Zoë Smith")["body_has_name"] is True


def test_initials_skipped() -> None:
    assert name_tokens("J. Dana Whitfield") == ["dana", "whitfield"]
    assert run(None, body="Hi J, hi Dana", full_name="J. Dana Whitfield")["body_has_name"]


def test_unknown_cases() -> None:
    r = run("Dana <dana@example.org>", body="Hi Dana", full_name="")
    assert r["to_has_name"] is None and r["body_has_name"] is None
    assert run("Dana <d@example.org>", full_name="  . ")["to_has_name"] is None
    r = run("Dana <dana@example.org>", body=None)
    assert r["to_has_name"] is True and r["body_has_name"] is None


def test_wants_body_only_with_a_name() -> None:
    mod = PersonalModule()
    m = msg("To: x@y\n\n")
    assert mod.wants(m, "body") is True  # before prepare: do not guess
    mod.prepare(services(full_name=""))
    assert mod.wants(m, "body") is False
    mod.prepare(services(full_name=NAME))
    assert mod.wants(m, "body") is True and mod.wants(m, "raw") is False


def test_fold() -> None:
    assert fold("Ångström ﬁ") == "angstrom fi"


@pytest.mark.parametrize(
    "to", ["\x00\x01", '"unterminated <a@b', "<<<>>>", "=?bogus?x?zz?=", "a" * 5000]
)
def test_malformed_never_raises(to: str) -> None:
    r = run(to, body="\udcff broken \x00")
    assert r["to_has_name"] in (True, False) and r["body_has_name"] is False


@pytest.mark.corpus
def test_corpus() -> None:
    # A name that many corpus messages address: rspamd's author, "Vsevolod Stakhov", is the
    # To of several rspamd samples; no ordinary spam addresses him.
    counts = run_over_corpus(MOD, services(full_name="Vsevolod Stakhov"))
    n = counts["_n"]
    assert counts["to_has_name"][None] == 0
    assert 1 <= counts["to_has_name"][True] < n // 10
    # Only edge-case messages (broken MIME, base64-only bodies) lack a text/plain or text/html.
    assert counts["body_has_name"][None] < n // 10
    assert counts["body_has_name"][True] < n // 10
    nobody = run_over_corpus(MOD, services(full_name=""))
    assert nobody["to_has_name"][None] == n and nobody["body_has_name"][None] == n
