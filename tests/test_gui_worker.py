"""Worker threads end when their job ends, whatever the GUI thread is doing at that moment.

The window waits for its workers at close (`wait_all`) on the GUI thread, without running the
event loop. A thread whose end depended on an event queued to the GUI thread would then never
end: these tests block the GUI thread exactly like that and require the wait to return at
once, for jobs that finish, fail, or finish before the thread's event loop is even entered.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from PySide6.QtCore import QObject  # noqa: E402

from mailstats.gui import worker  # noqa: E402

pytestmark = pytest.mark.gui


def _boom() -> None:
    raise ValueError("no such folder")


@pytest.mark.parametrize("fails", [False, True])
@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_thread_ends_while_gui_thread_is_blocked(
    qtbot: Any, qapp: Any, fails: bool, delay: float
) -> None:
    owner = QObject()
    ran = threading.Event()
    got: list[Any] = []

    def job() -> int:
        time.sleep(delay)
        ran.set()
        if fails:
            _boom()
        return 42

    for _ in range(20):  # a race is a matter of luck: try it many times
        ran.clear()
        worker.start(worker.CallWorker(job), owner, done=got.append, failed=got.append)
        assert ran.wait(5)  # the job has ended; the GUI thread processed no event since
        t0 = time.monotonic()
        assert worker.wait_all([owner], 5000)
        assert time.monotonic() - t0 < 2.0
    # the callbacks still arrive on the GUI thread, and every reference is dropped
    qtbot.waitUntil(lambda: len(got) == 20 and not owner.__dict__.get("_jobs"), timeout=5000)
    assert got == (["no such folder"] * 20 if fails else [42] * 20)


def test_run_worker_thread_ends_while_gui_thread_is_blocked(qtbot: Any, qapp: Any) -> None:
    class Cache:
        def close(self) -> None:
            pass

    class Engine:
        cache = Cache()

        def run(self, accounts: list[Any], progress: Any, cancel: Any) -> str:
            progress("p")
            return "result"

    owner = QObject()
    got: list[Any] = []
    job = worker.RunWorker(Engine(), [])
    finished = threading.Event()
    job.done.connect(lambda _r: finished.set())
    worker.start(job, owner, done=got.append, progress=got.append)
    assert finished.wait(5)
    assert worker.wait_all([owner], 5000)
    qtbot.waitUntil(lambda: got == ["p", "result"], timeout=5000)


def test_emitting_signals_keeps_the_reference_counts(qapp: Any) -> None:
    """PySide6 6.12.0 dropped a reference to True on every emit() from Python: on Python
    3.11 a run's progress updates then freed True and the process aborted. The installed
    Qt binding must not do that (pyproject.toml excludes the broken release)."""
    import gc
    import sys

    from PySide6.QtCore import Signal

    class Emitter(QObject):
        changed = Signal(object)

    e = Emitter()
    got: list[Any] = []
    e.changed.connect(got.append)
    gc.collect()
    before = sys.getrefcount(True), sys.getrefcount(False)
    for i in range(200):
        e.changed.emit(i)
    gc.collect()
    assert len(got) == 200
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before


def test_a_finished_job_is_freed_without_the_cycle_collector(qtbot: Any, qapp: Any) -> None:
    """Once a job's thread has ended, the job, its engine and whatever its callbacks hold
    (a run's result holds every folder's table) go with their last reference, not at some
    later full garbage collection: the window's memory grew by a run each time before."""
    import gc
    import weakref

    class Cache:
        def close(self) -> None:
            pass

    class Engine:
        def __init__(self) -> None:
            self.cache = Cache()
            self.progress: Any = None

        def run(self, accounts: list[Any], progress: Any, cancel: Any) -> str:
            self.progress = progress  # the real engine keeps its callback too
            progress("p")
            return "result"

    class Payload:
        pass

    owner = QObject()
    got: list[Any] = []
    gc.collect()
    gc.disable()
    try:
        engine, payload, held = Engine(), Payload(), Payload()
        refs = [weakref.ref(engine), weakref.ref(payload), weakref.ref(held)]
        job = worker.RunWorker(engine, [])
        worker.start(job, owner, done=lambda r, p=payload: got.append(r), progress=got.append)
        call = worker.CallWorker(lambda h=held: h)
        worker.start(call, owner, done=lambda r: got.append(type(r).__name__))
        del engine, payload, held, job, call
        qtbot.waitUntil(
            lambda: (
                sorted(map(str, got)) == ["Payload", "p", "result"]
                and not owner.__dict__.get("_jobs")
            ),
            timeout=5000,
        )
        qtbot.waitUntil(lambda: all(r() is None for r in refs), timeout=5000)
    finally:
        gc.enable()
