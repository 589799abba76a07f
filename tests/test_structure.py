"""The light MIME scan gives, leaf by leaf, what the email package's full parse gives.

The reference below is the structure walk mailstats used before the scan existed, on a full
`email` (compat32) parse, with one correction: a leaf's size is its raw octets (what IMAP's
BODYSTRUCTURE reports), where the old walk re-encoded 8-bit text after decoding it with the
part's charset. Inputs are shapes, not examples: generated MIME trees with every line ending
and the broken forms the email package has a reading for, the nasty set, the generated study
mailbox and the real corpus.
"""

from __future__ import annotations

import email.parser
import email.policy
import mmap
import time
from email.message import Message as EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.generator import generate_mailbox
from fixtures.nasty import nasty_messages
from mailstats.mail import structure
from mailstats.mail.message import MAX_PARTS, MimePart
from mailstats.mail.structure import _HEADER_RUN, header_run_end, parts_from_bytes, scan_parts

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
_parser = email.parser.BytesParser(policy=email.policy.compat32)


def reference(raw: bytes) -> list[MimePart] | None:
    """Leaves of a full email-package parse; None when the email package itself fails."""
    try:
        msg = _parser.parsebytes(raw)
    except Exception:  # noqa: BLE001 - e.g. RecursionError on very deep nesting
        return None
    out: list[MimePart] = []

    def walk(part: EmailMessage, section: str, depth: int) -> None:
        if depth > 50 or len(out) >= MAX_PARTS:
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for n, child in enumerate(payload, 1):
                    walk(child, f"{section}.{n}" if section else str(n), depth + 1)
            return
        try:
            ctype = part.get_content_type()
            disp = (part.get_content_disposition() or "").lower()
            filename = part.get_filename() or ""
            charset = part.get_content_charset() or ""
        except Exception:  # noqa: BLE001
            ctype, disp, filename, charset = "application/octet-stream", "", "", ""
        payload = part._payload  # the raw text, before any charset decoding
        size = len(payload.encode("ascii", "surrogateescape")) if isinstance(payload, str) else 0
        enc = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        out.append(MimePart(ctype.lower(), disp, str(filename), size, charset, section or "1", enc))

    walk(msg, "", 0)
    return out


def assert_same(raw: bytes) -> None:
    expected = reference(raw)
    if expected is None:
        parts_from_bytes(raw)  # must still not raise
        return
    assert parts_from_bytes(raw) == expected


# -- generated MIME trees ---------------------------------------------------------------

EOLS = st.sampled_from(["\r\n", "\n", "\r"])
BOUNDARY = st.text(alphabet="abcXYZ019'()+_,-./:=? ", min_size=1, max_size=12).map(
    lambda s: s.strip() or "b"
)
LEAF_TYPES = st.sampled_from(
    [
        "text/plain",
        "text/html; charset=utf-8",
        'text/plain; charset="ISO-8859-1"',
        "image/png; name=pic.png",
        "application/pdf",
        "TEXT/PLAIN; CHARSET=US-ASCII",
        "text",  # no slash: read as text/plain
        "",
    ]
)
BODY_LINES = st.lists(
    st.sampled_from(["hello", "", "--", "--x", "  indented", "caf\xe9 8-bit", "a: b", "From me"]),
    max_size=5,
)


@st.composite
def entity(draw: st.DrawFn, depth: int = 0) -> list[str]:
    """Lines of one entity (headers and body), without line endings."""
    lines: list[str] = []
    kind = draw(
        st.sampled_from(["leaf", "leaf", "multipart", "rfc822", "dsn"] if depth < 3 else ["leaf"])
    )
    disp = draw(
        st.sampled_from(
            [
                "",
                "attachment",
                'attachment; filename="a b.pdf"',
                "inline",
                "attachment; filename*=utf-8''%E2%82%AC.txt",
            ]
        )
    )
    if disp:
        lines.append(f"Content-Disposition: {disp}")
    if draw(st.booleans()):
        lines.append(
            "Content-Transfer-Encoding: "
            + draw(st.sampled_from(["base64", "7bit", " QUOTED-PRINTABLE"]))
        )
    if kind == "leaf":
        ctype = draw(LEAF_TYPES)
        if ctype:
            spacer = draw(st.sampled_from([": ", ":", " : "]))  # " :" is another field name
            lines.append("Content-Type" + spacer + ctype)
        if draw(st.booleans()):
            lines.append("X-Note: folded")
            lines.append("\tcontinued")
        lines.append("")
        lines.extend(draw(BODY_LINES))
        return lines
    if kind == "rfc822":
        lines.append("Content-Type: message/rfc822")
        lines.append("")
        lines.append("Subject: inner")
        lines.extend(draw(entity(depth + 1)))
        return lines
    if kind == "dsn":
        lines.append("Content-Type: message/delivery-status")
        lines.append("")
        lines.extend(["Reporting-MTA: dns; mx.example.net", "", "Action: failed", "Status: 5.1.1"])
        if draw(st.booleans()):
            lines.extend(["", "", "Final-Recipient: rfc822; x@example.net"])
        return lines
    boundary = draw(BOUNDARY)
    subtype = draw(st.sampled_from(["mixed", "alternative", "digest", "related"]))
    quoted = draw(st.booleans())
    param = f'"{boundary}"' if quoted or " " in boundary else boundary
    if draw(st.integers(0, 9)) == 0:
        lines.append(f"Content-Type: multipart/{subtype}")  # no boundary at all
    else:
        lines.append(f"Content-Type: multipart/{subtype};")
        lines.append(f" boundary={param}")
    lines.append("")
    if draw(st.booleans()):
        lines.append("preamble text")
    children = draw(st.lists(entity(depth + 1), max_size=3))
    style = draw(
        st.sampled_from(
            ["ok", "ok", "no-close", "no-start", "doubled", "trailing-ws", "close-first"]
        )
    )
    if style == "close-first":
        lines.append(f"--{boundary}--")
    for child in children:
        if style != "no-start":
            lines.append(f"--{boundary}" + ("  " if style == "trailing-ws" else ""))
            if style == "doubled":
                lines.append(f"--{boundary}")
        lines.extend(child)
    if style != "no-close":
        lines.append(f"--{boundary}--")
        if draw(st.booleans()):
            lines.append("epilogue")
    return lines


@st.composite
def message(draw: st.DrawFn) -> bytes:
    eol = draw(EOLS)
    head = ["From: a@example.net", "Subject: t", "MIME-Version: 1.0"]
    lines = head + draw(entity())
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return text.encode("latin-1")


@settings(
    max_examples=600, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(message())
def test_generated_trees_match_the_email_package(raw: bytes) -> None:
    assert_same(raw)


#: Pieces that make and break header lines: every line-break kind, a bare CR, "From ",
#: field names, continuation white space and a byte no field name may hold.
_PIECES = st.sampled_from(
    [b"\n", b"\r\n", b"\r", b"\n\n", b"X:", b"a: b", b"From ", b"Fro", b" ", b"\t", b"v", b"\x80"]
)


@settings(max_examples=3000, derandomize=True, deadline=None)
@given(st.lists(_PIECES, max_size=14).map(b"".join), st.integers(0, 60), st.integers(0, 60))
def test_header_run_end_is_the_header_run_regex(buf: bytes, a: int, b: int) -> None:
    """The LF-only shortcut must end every header block where the general pattern does,
    from any start and up to any limit (the scanner reads part headers mid-buffer)."""
    pos, limit = sorted((min(a, len(buf)), min(b, len(buf))))
    want = _HEADER_RUN.match(buf, pos, limit).end()
    assert header_run_end(buf, pos, limit) == want
    saved = structure._LF_WINDOW
    try:  # a window shorter than the block: the general pattern must take over
        structure._LF_WINDOW = 5
        assert header_run_end(buf, pos, limit) == want
    finally:
        structure._LF_WINDOW = saved


class _Searches(bytes):
    """bytes that note every range `find` is asked to search."""

    def __new__(cls, data: bytes) -> _Searches:
        obj = super().__new__(cls, data)
        obj.ranges = []  # type: ignore[attr-defined]
        return obj

    def find(self, sub, start=0, end=None):  # type: ignore[no-untyped-def,override]
        self.ranges.append((start, len(self) if end is None else end))  # type: ignore[attr-defined]
        return super().find(sub, start, end)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_header_run_end_reads_the_header_not_the_body(eol: bytes) -> None:
    """Scanning a header must not cost a search through the megabytes after it."""
    head = eol.join([b"Subject: x", b"Content-Type: application/zip", b"", b""])
    buf = _Searches(head + (b"A" * 70 + eol) * 20_000)
    assert header_run_end(buf, 0, len(buf)) == len(head) - len(eol)
    assert buf.ranges and max(end for _start, end in buf.ranges) <= structure._LF_WINDOW


def test_header_run_end_takes_both_paths_on_real_shapes() -> None:
    lf = b"Received: from a\n\tby b\nSubject: x\nbroken line\nTo: y\n\nbody\n"
    assert header_run_end(lf, 0, len(lf)) == lf.index(b"broken")
    crlf = lf.replace(b"\n", b"\r\n")
    assert header_run_end(crlf, 0, len(crlf)) == crlf.index(b"broken")
    bare_cr = b"A: 1\rB: 2\rnot a field\n\n"  # a CR alone ends a line, as in the email package
    assert header_run_end(bare_cr, 0, len(bare_cr)) == bare_cr.index(b"not")


def test_nasty_set_matches_the_email_package() -> None:
    for m in nasty_messages():
        assert_same(m.raw)


def test_generated_mailbox_matches_the_email_package() -> None:
    box = generate_mailbox(seed=5, n_ham=150, n_spam=100, n_sent=20)
    n = 0
    for msgs in box.folders.values():
        for m in msgs:
            assert_same(m.raw)
            n += 1
    assert n == 270


@pytest.mark.corpus
def test_real_corpus_matches_the_email_package() -> None:
    if not CORPUS.is_dir():
        pytest.skip("shared corpus absent")
    files = [
        p
        for p in sorted(CORPUS.rglob("*"))
        if p.is_file() and p.suffix != ".csv" and p.name != "README.md"
    ]
    assert len(files) > 800
    multipart = 0
    for path in files:
        raw = path.read_bytes()
        assert_same(raw)
        multipart += len(parts_from_bytes(raw)) > 1
    assert multipart > 100  # the corpus exercises the multipart path, not only leaves


def test_an_mmap_gives_what_bytes_give(tmp_path: Path) -> None:
    raw = generate_mailbox(seed=2, n_ham=20, n_spam=0, n_sent=0).folders["INBOX"][3].raw
    path = tmp_path / "m.eml"
    path.write_bytes(raw)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert parts_from_bytes(mm) == parts_from_bytes(raw)
        offsets = [(p.start, p.end) for p in scan_parts(mm)]
    assert offsets == [(p.start, p.end) for p in scan_parts(raw)]


def test_payload_offsets_cover_each_leaf() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
        b"Content-Type: text/plain\r\n\r\nfirst body\r\n--q\r\n\r\nsecond\r\n--q--\r\n"
    )
    got = [(p.part.section, raw[p.start : p.end]) for p in scan_parts(raw)]
    assert got == [("1", b"first body"), ("2", b"second")]


def test_cost_follows_parts_not_body_lines() -> None:
    """A 20 MB attachment of short lines, many of them starting with '--', is one search."""
    body = b"--not-the-boundary\r\nAAAA\r\n" * 800_000
    raw = (
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain"
        b"\r\n\r\nhi\r\n--zz\r\nContent-Type: application/zip\r\n\r\n" + body + b"--zz--\r\n"
    )
    t0 = time.process_time()
    parts = parts_from_bytes(raw)
    elapsed = time.process_time() - t0
    assert [p.content_type for p in parts] == ["text/plain", "application/zip"]
    assert parts[1].size == len(body) - 2
    assert elapsed < 2.0  # loose: the measured figure is in docs/benchmarks.md
