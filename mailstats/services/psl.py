"""The public suffix of a host name, read from tldextract's bundled Public Suffix List.

`DomainSplitter` asked tldextract for it. tldextract's import brings requests, urllib3,
charset_normalizer, the CJK codecs and idna with it (250 modules): a process that split a
name grew by 17.0 MB and spent 149 ms on its first one, against 5.2 MB and 9 ms here, and a
run has three such processes with two analysis workers. Only its bundled snapshot and its
lookup are used (no download, no cache directory), so both are here instead: the snapshot
file is read from tldextract's package directory without importing the package, and
`split` walks the same trie of reversed labels by the same rules as tldextract 5's
`_extract_netloc` with private domains off (wildcards, exceptions, punycode labels matched
in their Unicode form, the URL-ish parts of a string dropped as its `lenient_netloc` drops
them). tests/test_psl.py holds it to tldextract's answers on every rule of the list and on
host names of every shape.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import sys
from functools import cache
from pathlib import Path
from urllib.parse import scheme_chars

#: tldextract's own patterns for the list's text (suffix_list.py).
_SUFFIX = re.compile(r"^(?P<suffix>[.*!]*\w[\S]*)", re.UNICODE | re.MULTILINE)
_PRIVATE_START = "// ===BEGIN PRIVATE DOMAINS==="
_SNAPSHOT = ".tld_set_snapshot"
_END = "."  # a trie node's end-of-rule key: no label holds a dot
_SCHEME_CHARS = frozenset(scheme_chars)

Trie = dict[str, "Trie | bool"]


def snapshot_path() -> Path:
    """tldextract's bundled list: next to its package, or in a PyInstaller bundle's data."""
    spec = importlib.util.find_spec("tldextract")  # finds the package, runs none of it
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        places.append(str(Path(bundle) / "tldextract"))
    for place in places:
        path = Path(place) / _SNAPSHOT
        if path.is_file():
            return path
    raise RuntimeError(f"tldextract's Public Suffix List snapshot ({_SNAPSHOT}) not found")


def public_rules(text: str) -> list[str]:
    """The rules of the list's ICANN section, as tldextract reads them."""
    public = text.partition(_PRIVATE_START)[0]
    return [m.group("suffix") for m in _SUFFIX.finditer(public)]


def build_trie(rules: list[str]) -> Trie:
    root: Trie = {}
    for rule in rules:
        node = root
        for label in reversed(rule.split(".")):
            node = node.setdefault(label, {})  # type: ignore[assignment]
        node[_END] = True
    return root


@cache
def trie() -> Trie:
    """The list's trie, read once per process; raises when the snapshot is missing."""
    return build_trie(public_rules(snapshot_path().read_text(encoding="utf-8")))


def _decode_punycode(label: str) -> str:
    """tldextract's: the Unicode form of an A-label (by the idna package, as it does), else
    the label lower-cased. idna is imported only when a label starts with "xn--"."""
    lowered = label.lower()
    if lowered.startswith("xn--"):
        import idna

        try:
            return idna.decode(lowered)
        except (UnicodeError, IndexError):
            pass
    return lowered


def _suffix_index(labels: list[str], root: Trie) -> int | None:
    """Index of the first label of the public suffix; None when no rule matches."""
    node = root
    suffix_idx = label_idx = len(labels)
    for label in reversed(labels):
        decoded = _decode_punycode(label)
        child = node.get(decoded)
        if child is not None and decoded != _END:
            label_idx -= 1
            node = child  # type: ignore[assignment]
            if _END in node:
                suffix_idx = label_idx
            continue
        if "*" in node:
            return label_idx if "!" + decoded in node else label_idx - 1
        break
    return None if suffix_idx == len(labels) else suffix_idx


def _netloc(url: str) -> str:
    """tldextract's lenient_netloc: the host part of a URL-like string."""
    double = url.find("//")
    if double == 0:
        url = url[2:]
    elif double >= 2 and url[double - 1] == ":" and not set(url[: double - 1]) - _SCHEME_CHARS:
        url = url[double + 2 :]
    authority = url.partition("/")[0].partition("?")[0].partition("#")[0]
    after_userinfo = authority.rpartition("@")[-1]
    if after_userinfo and after_userinfo[0] == "[":
        inside, bracket, _ = after_userinfo.partition("]")
        if bracket:
            return f"{inside}]"
    return after_userinfo.partition(":")[0].strip().rstrip(".\u3002\uff0e\uff61")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_IPV4 = re.compile(
    r"^(?:(?:[0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.)"
    r"{3}(?:[0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])$",
    re.ASCII,
)


def split(name: str) -> tuple[str, str]:
    """(domain label, public suffix) of a host name or URL, as tldextract's `extract` gives
    its `domain` and `suffix`; either is "" where it has none (IP addresses included)."""
    host = _netloc(name).replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".")
    if len(host) >= 4 and host[0] == "[" and host[-1] == "]" and _is_ipv6(host[1:-1]):
        return "", ""
    labels = host.split(".")
    index = _suffix_index(labels, trie())
    if index is None:
        return (labels[-1], "") if not _is_ipv4(host, labels) else ("", "")
    return (labels[index - 1] if index > 0 else ""), ".".join(labels[index:])


def _is_ipv4(host: str, labels: list[str]) -> bool:
    """tldextract's looks_like_ip on a name of four labels (its domain is then "")."""
    return len(labels) == 4 and host[:1].isdecimal() and _IPV4.fullmatch(host) is not None
