"""Our read-only mbox reader splits a file exactly as the mailbox module does."""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.sources import local
from mailstats.sources.local import LocalSource, _Mbox

LINES = st.sampled_from(
    [
        b"From a@example.net Mon Jan  1 00:00:00 2024\n",
        b"From: a@example.net\n",
        b"Subject: x\n",
        b"\n",
        b"\r\n",
        b"body From here\n",
        b">From quoted\n",
        b"From \n",
        b"last line without newline",
    ]
)


def _same_as_mailbox(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(data)
    ref = mailbox.mbox(path, create=False)
    want = [ref.get_bytes(k) for k in sorted(ref.keys())]
    ref.close()
    ours = _Mbox(path)
    got = [data[a:b] for a, b in (ours.body_range(k) for k in ours.keys())]  # noqa: SIM118
    ours.close()
    assert got == want


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.lists(LINES, max_size=14).map(b"".join))
def test_splits_like_the_mailbox_module(tmp_path_factory, data: bytes) -> None:
    _same_as_mailbox(tmp_path_factory.mktemp("mbox"), data)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.lists(LINES, max_size=14).map(b"".join), st.integers(1, 48))
def test_splits_the_same_wherever_the_scan_windows_end(
    tmp_path_factory, data: bytes, window: int
) -> None:
    """The file is scanned in windows: a From_ line across or at a window's edge still counts
    once (the real window is 8 MB; here one to 48 bytes, so edges fall everywhere)."""
    saved, local._WINDOW = local._WINDOW, window
    try:
        _same_as_mailbox(tmp_path_factory.mktemp("mbox"), data)
    finally:
        local._WINDOW = saved


def test_empty_file_and_no_trailing_newline(tmp_path: Path) -> None:
    _same_as_mailbox(tmp_path, b"")
    _same_as_mailbox(tmp_path, b"From x\nSubject: a\n\nbody")
    _same_as_mailbox(tmp_path, b"garbage before\nFrom x\n\nb\n\nFrom y\n\nc\n")


def test_mbox_file_is_never_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "ro.mbox"
    path.write_bytes(b"From x\nSubject: a\n\nbody\n")
    path.chmod(0o444)
    src = LocalSource(str(path))
    state = src.open_folder("ro")
    assert state.uids == [1]
    assert [h.uid for h in src.fetch_headers([1])] == [1]
    src.close()


@settings(derandomize=True)
@given(
    st.lists(
        st.tuples(st.integers(9 * 10**8, 2 * 10**9), st.integers(0, 999_999)),
        min_size=1,
        max_size=40,
        unique=True,
    ),
    st.sampled_from(["python", "postfix"]),
    st.randoms(use_true_random=False),
)
def test_maildir_names_sort_in_delivery_order(
    times: list[tuple[int, int]], writer: str, rnd: Any
) -> None:
    """Names as Python's mailbox and Dovecot ("SEC.M<usec>P<pid>Q<n>.host") or Postfix
    ("SEC.V<dev>I<inode>M<usec>.host") write them, microseconds unpadded, seconds of 9 and 10
    digits: sorted by maildir_order they come in delivery order, whatever order listed."""
    from mailstats.sources.local import maildir_order

    delivered = sorted(times)
    if writer == "python":
        names = [f"{s}.M{u}P77Q{i}.host" for i, (s, u) in enumerate(delivered)]
    else:
        names = [f"{s}.V801I{1000 + i}M{u}.host" for i, (s, u) in enumerate(delivered)]
    listed = names[:]
    rnd.shuffle(listed)
    assert sorted(listed, key=maildir_order) == names


def _first_blank_line(raw: bytes, cap: int) -> bytes:
    """split_header's definition: up to the end of the first blank line of any kind that
    lies wholly in the first `cap` bytes; all of those bytes when there is none."""
    ends = [
        raw.find(sep, 0, cap) + len(sep)
        for sep in (b"\r\n\r\n", b"\n\n", b"\r\r")
        if raw.find(sep, 0, cap) != -1
    ]
    return raw[: min(ends)] if ends else raw[:cap]


@settings(max_examples=500, derandomize=True)
@given(st.binary(max_size=80).map(lambda b: b.replace(b"\x00", b"\n")), st.integers(1, 70))
def test_split_header_ends_at_the_first_blank_line_within_the_cap(raw: bytes, cap: int) -> None:
    """A separator that starts inside the cap but ends past it is not the header's end."""
    old = local.MAX_HEADER_BYTES
    local.MAX_HEADER_BYTES = cap
    try:
        assert local.split_header(raw) == _first_blank_line(raw, cap)
    finally:
        local.MAX_HEADER_BYTES = old


def test_an_lf_header_ends_at_its_blank_line_though_the_body_has_crlf_lines() -> None:
    raw = b"From: a@example.org\nSubject: x\n\nbody line\r\n\r\nSubject: not a header\r\n"
    assert local.split_header(raw) == b"From: a@example.org\nSubject: x\n\n"
