"""services/psl.py against tldextract itself, which it stands in for.

A registrable domain decides the received, internal, dynamic and DKIM-alignment checks, so
the split must be tldextract's own (the same bundled list, private domains off) for every
rule of the list and for host names of every shape: IDN suffixes written as punycode,
wildcard and exception rules, upper case, empty labels, ports, user parts, URL-ish junk.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import tldextract
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.services import psl
from mailstats.services.domains import DomainSplitter

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@cache
def _tldextract() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _theirs(name: str) -> tuple[str, str]:
    parts = _tldextract()(name)
    return parts.domain, parts.suffix


@cache
def _rules() -> list[str]:
    return psl.public_rules(psl.snapshot_path().read_text(encoding="utf-8"))


def _a_label(label: str) -> str:
    """The punycode form of a label, as a mail header would carry an IDN."""
    return label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")


def test_the_snapshot_is_tldextracts_own() -> None:
    assert set(_rules()) == set(_tldextract()._get_tld_extractor().tlds_excl_private)
    assert len(_rules()) > 5000


def test_every_rule_splits_as_tldextract_splits_it() -> None:
    """Each rule itself, one and two labels under it, wildcards filled in, exceptions, and
    the IDN ones in punycode."""
    wrong = []
    for rule in _rules():
        base = rule.lstrip("!").replace("*", "wild")
        forms = {base, ".".join(_a_label(x) for x in base.split("."))}
        for form in forms:
            for name in (form, f"host.{form}", f"a.b.{form}", f"MX1.Example.{form.upper()}"):
                if psl.split(name) != _theirs(name):
                    wrong.append(name)
    assert wrong == []


_labels = st.one_of(
    st.sampled_from(["com", "co", "uk", "jp", "ck", "www", "kawasaki", "city", "example", "*",
                     "!www", "xn--p1ai", "xn--", "xn--zz", "XN--P1AI", "", " ", "a-b", "123",
                     "256", "0", "mail", "bd", "er", "kobe", "nom", "br", "blogspot"]),
    st.sampled_from(_rules()).map(lambda r: r.lstrip("!*.").split(".")[0]),
    st.text("abcxyz019-_", max_size=6),
    st.text(max_size=3),
)  # fmt: skip
_hosts = st.tuples(
    st.lists(_labels, min_size=1, max_size=5), st.sampled_from([".", ".", "\u3002", "\uff0e"])
).map(lambda t: t[1].join(t[0]))  # the ideographic and fullwidth full stops are dots too
_decorated = st.tuples(
    st.sampled_from(["", "user@", "http://", "//", "a:b//", "[", "x@["]),
    _hosts,
    st.sampled_from(["", ".", "..", ":25", "/path", "?q", "#f", "]", "\u3002", " "]),
).map("".join)


@settings(derandomize=True, max_examples=1500, deadline=None, database=None)
@given(st.one_of(_hosts, _decorated))
def test_any_name_splits_as_tldextract_splits_it(name: str) -> None:
    assert psl.split(name) == _theirs(name)


@pytest.mark.parametrize(
    ("host", "want"),
    [
        ("smtp.out.example.co.uk", "example.co.uk"),
        ("a.b.kawasaki.jp", "a.b.kawasaki.jp"),  # *.kawasaki.jp
        ("www.city.kawasaki.jp", "city.kawasaki.jp"),  # !city.kawasaki.jp
        ("mail.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),  # IDN suffix in punycode
        ("co.uk", ""),
        ("192.0.2.7", ""),
        ("localhost", ""),
    ],
)
def test_registrable_examples(host: str, want: str) -> None:
    assert DomainSplitter().registrable(host) == want


def test_tldextract_is_not_imported_to_split(tmp_path: Path) -> None:
    """The point of psl.py: a process that splits names never imports tldextract (and its
    requests, urllib3, charset_normalizer)."""
    import subprocess
    import sys

    code = (
        "import sys; from mailstats.services.domains import DomainSplitter;"
        "print(DomainSplitter().registrable('mx.example.co.uk'));"
        "print(sorted(m for m in ('tldextract', 'requests', 'urllib3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout  # fmt: skip
    assert out.split("\n")[:2] == ["example.co.uk", "[]"]


def test_corpus_hosts_split_as_tldextract_splits_them() -> None:
    """Every From, Return-Path and Received host name of the real corpus."""
    import re

    files = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("corpus not present")
    names: set[str] = set()
    for path in files:
        text = path.read_bytes().split(b"\n\n", 1)[0].decode("latin-1")
        names.update(m.lower() for m in re.findall(r"[\w.-]+\.[A-Za-z][\w-]*", text))
    assert len(names) > 1000
    wrong = [n for n in sorted(names) if psl.split(n) != _theirs(n)]
    assert wrong == []
