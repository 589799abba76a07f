"""Background work for the window: a run of the engine, or any one blocking call.

Rule kept everywhere: widgets are touched only on the GUI thread. A worker lives in its own
QThread and talks back only through signals; a signal emitted from the worker thread to a
receiver on the GUI thread is queued by Qt, so the slot runs on the GUI thread. The engine's
progress callback therefore only emits a signal and returns at once.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot


class CallWorker(QObject):
    """Runs one callable off the GUI thread; `done(result)` or `failed(message)`."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
            self.failed.emit(str(exc) or type(exc).__name__)
            return
        self.done.emit(result)


class RunWorker(QObject):
    """Drives `Engine.run`; progress arrives as `progress(Progress)` signals."""

    progress = Signal(object)
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, engine: Any, accounts: list[Any]) -> None:
        """`engine` is an engine, or a callable that builds one on the worker thread."""
        super().__init__()
        self.engine = engine
        self.accounts = accounts
        self.cancel_event = threading.Event()
        self.started_at = 0.0

    def _on_progress(self, p: Any) -> None:
        self.progress.emit(p)

    @Slot()
    def run(self) -> None:
        self.started_at = time.monotonic()
        if not hasattr(self.engine, "run"):
            try:
                self.engine = self.engine()
            except (ValueError, OSError) as exc:  # a bad setting, an unusable cache file
                self.failed.emit(f"Cannot start: {exc}")
                return
        # The engine keeps its progress callback: a bound method of this worker made a cycle
        # (worker -> engine -> callback -> worker), which kept every finished run's engine in
        # memory until a full garbage collection. A weak reference breaks it.
        me = weakref.ref(self)

        def progress(p: Any) -> None:
            job = me()
            if job is not None:
                job._on_progress(p)

        try:
            result = self.engine.run(self.accounts, progress=progress, cancel=self.cancel_event)
        except Exception as exc:  # noqa: BLE001 - shown in the window, never a crash
            self.failed.emit(f"the run stopped: {type(exc).__name__}: {exc}")
            return
        finally:
            # The engine's connection belongs to this thread; readers open their own.
            self.engine.cache.close()
        self.done.emit(result)


def _nothing() -> None:
    pass


class Relay(QObject):
    """Lives on the GUI thread and calls plain Python callbacks there.

    A signal connected to a lambda has no receiver object, so Qt would call it directly on
    the emitting (worker) thread. Connecting to the slots of an object that lives on the GUI
    thread makes the connection queued, whatever the callback is.
    """

    def __init__(
        self,
        parent: QObject,
        done: Callable[[Any], None] | None,
        failed: Callable[[str], None] | None,
        progress: Callable[[Any], None] | None,
    ) -> None:
        super().__init__(parent)
        self._done, self._failed, self._progress = done, failed, progress
        self.forget: Callable[[], None] = lambda: None

    @Slot(object)
    def on_done(self, value: Any) -> None:
        if self._done is not None:
            self._done(value)

    @Slot(str)
    def on_failed(self, text: str) -> None:
        if self._failed is not None:
            self._failed(text)

    @Slot()
    def on_finished(self) -> None:
        """The thread has ended: drop the references and let Qt delete the objects.

        The callbacks are dropped too: they are closures over the job (whose run result
        holds every folder's table), and `forget` refers back to this relay, so without
        this each finished run stayed in memory until a full garbage collection.
        """
        thread = self.sender()
        self.forget()
        self.forget = _nothing
        self._done = self._failed = self._progress = None
        if thread is not None:
            thread.deleteLater()
        self.deleteLater()

    @Slot(object)
    def on_progress(self, value: Any) -> None:
        if self._progress is not None:
            self._progress(value)


def start(
    job: CallWorker | RunWorker,
    owner: QObject,
    done: Callable[[Any], None] | None = None,
    failed: Callable[[str], None] | None = None,
    progress: Callable[[Any], None] | None = None,
) -> QThread:
    """Run `job.run` on a new thread; the callbacks run on the GUI thread.

    References are kept on `owner` until the thread ends so Python does not collect a
    running thread or its worker.
    """
    relay = Relay(owner, done, failed, progress)
    job.done.connect(relay.on_done, Qt.ConnectionType.QueuedConnection)
    job.failed.connect(relay.on_failed, Qt.ConnectionType.QueuedConnection)
    if isinstance(job, RunWorker):
        job.progress.connect(relay.on_progress, Qt.ConnectionType.QueuedConnection)
    thread = QThread(owner)
    job.moveToThread(thread)
    # Queued: `run` then starts inside the thread's event loop. Called directly from
    # `started`, a job that finishes at once calls quit() before exec() is entered, the
    # quit is lost and the thread never ends (seen as a 30 s hang in teardown).
    thread.started.connect(job.run, Qt.ConnectionType.QueuedConnection)
    # Direct: quit() runs on the worker thread the moment the job ends. Auto-connected, it
    # was queued to the GUI thread (where the QThread object lives), so a GUI thread that
    # was already blocked in wait() at window close never delivered it and waited the full
    # timeout for a job that had long finished. QThread.quit is thread-safe.
    job.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    job.failed.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    jobs: list[tuple[QThread, QObject, Relay]] = owner.__dict__.setdefault("_jobs", [])
    entry = (thread, job, relay)
    jobs.append(entry)

    relay.forget = lambda: jobs.remove(entry) if entry in jobs else None
    thread.finished.connect(relay.on_finished, Qt.ConnectionType.QueuedConnection)
    thread.start()
    return thread


def wait_all(owners: list[QObject], ms: int = 15000) -> bool:
    """Wait for the threads started on behalf of `owners` (at window close and in tests)."""
    ok = True
    for owner in owners:
        for thread, _job, _relay in list(owner.__dict__.get("_jobs", [])):
            ok = thread.wait(ms) and ok
    return ok
