"""A run leaves no reference cycle that holds a frame of the analysis.

A frame kept alive by a cycle keeps every local of every caller up its stack: a third-party
library that stores an exception on its own object (exception -> traceback -> frame -> the
object) made the engine's folder frame, and so a whole folder's per-message table, outlive
the run until a full collection, which a long-lived process (the desktop app) may not make
for minutes. Reference counting must free a finished run; this looks for the whole class
(any cycle with a frame in it) on the default modules over the bundled demo.
"""

from __future__ import annotations

import gc
import types
from pathlib import Path

from mailstats.cli import main


def test_a_demo_run_leaves_no_frame_in_a_reference_cycle(tmp_path: Path) -> None:
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept to look at
    try:
        assert main(["demo", "--out", str(tmp_path / "demo"), "--quiet"]) == 0
        gc.collect()
        frames = [o for o in gc.garbage if isinstance(o, types.FrameType)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    where = sorted({f"{f.f_code.co_filename}:{f.f_code.co_name}" for f in frames})
    assert not frames, f"{len(frames)} frames held only by reference cycles: {where}"
