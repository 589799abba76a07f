"""Opening the cache never drops the SQLite locks that other connections of the same
process hold on it.

POSIX locks belong to the process and go when any descriptor of the file is closed. The
window opens the cache again for every run (and each analysis worker opens it too); when
that open chmod-ed the -shm file through a descriptor of its own, this process's shared
"dead man switch" lock went with it, the next process to open the cache took itself for the
only user, truncated the shared memory file, and the processes that had it mapped died of
SIGBUS (seen as "Fatal Python error: Bus error" in the engine and window tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailstats.run.cache import Cache

#: SQLite's unix VFS keeps its "dead man switch" lock on this byte of the -shm file
DMS_BYTE = 128

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
except OSError:
    print("held")
else:
    print("free")
"""


def dms_lock(shm: Path) -> str:
    """'held' when some other process holds SQLite's shared lock on the -shm file."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(shm), str(DMS_BYTE)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_a_second_open_keeps_the_first_connections_locks(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    first = Cache(path)
    first.put_messages("a", "INBOX", [(1, b"Subject: x\r\n\r\n", None, 10)])
    shm = Path(str(path) + "-shm")
    assert shm.is_file()
    assert dms_lock(shm) == "held"  # the probe sees the lock of a live connection
    second = Cache(path)  # as the window does for each run, beside the last run's reader
    assert dms_lock(shm) == "held"
    first.put_messages("a", "INBOX", [(2, b"Subject: y\r\n\r\n", None, 10)])
    assert [r[0] for r in second.get_messages("a", "INBOX")] == [1, 2]
    assert shm.stat().st_mode & 0o777 == 0o600  # still private, as chmod_own makes it
    second.close()
    first.close()
