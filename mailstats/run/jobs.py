"""A folder's evaluation jobs in flight, and the worker pool started only when it pays.

The engine submits batches and goes on fetching; `FolderJobs` takes the finished ones in
submission order, stores their results every `FLUSH_EVERY` messages (a crash loses at most
that many) and, when a worker process dies, redoes its batches in this process.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any

from mailstats.run.analysis import Analyser, Batch, InlineRunner, ProcessRunner
from mailstats.run.results import FolderResult, Progress

if TYPE_CHECKING:
    from mailstats.accounts.config import Account
    from mailstats.run.engine import Engine
    from mailstats.services import SentIndex

log = logging.getLogger(__name__)

#: Results held before they are written (a crash loses at most this). Held as the dicts
#: the workers return, with their explanations: about 9 KB per message with the default
#: modules, so 5000 held were over 40 MB of the engine's peak.
FLUSH_EVERY = 2000
#: More chunks than this for a module in a folder are merged into one (a 100k folder makes
#: 50 of FLUSH_EVERY; merging rewrites the folder's results, so not before that).
MAX_CHUNKS = 64


class FolderJobs:
    """A folder's jobs in submission order: results stored as they complete, in order."""

    def __init__(
        self,
        engine: Engine,
        acct: Account,
        folder: str,
        fps: dict[str, str],
        fr: FolderResult,
        total: int,
        runner: Any = None,
    ) -> None:
        self.engine, self.acct, self.folder, self.fps, self.fr = engine, acct, folder, fps, fr
        self.total = total
        self.runner = runner  # asked to stop its workers' batches when the run is cancelled
        self.done = 0
        self.jobs: deque[tuple[Future, Batch]] = deque()
        self.pending: dict[str, dict[int, dict[str, Any]]] = {}
        self.held = 0
        self.inline: InlineRunner | None = None

    def add(self, fut: Future, batch: Batch) -> None:
        self.jobs.append((fut, batch))

    def drain(self, block: bool = False) -> None:
        while self.jobs and (block or self.jobs[0][0].done()):
            fut, batch = self.jobs.popleft()
            self._take(fut, batch)
            block = False

    def finish(self, runner: Any) -> Any:
        while self.jobs:
            self.drain(block=True)
        self._store()
        if self.inline is not None:  # the workers died: go on without them
            runner.close()
            return self.inline
        return runner

    def _take(self, fut: Future, batch: Batch) -> None:
        engine = self.engine
        # Waiting for a worker's batch, Cancel is noticed within 50 ms (and the workers told
        # to stop): blocked in fut.result() it was noticed only after the batches in flight.
        while not fut.done() and not engine._cancel.is_set():
            wait([fut], timeout=0.05)
        if engine._cancel.is_set():
            fut.cancel()
            stop = getattr(self.runner, "stop", None)
            if stop is not None:
                stop()
        if fut.cancelled():
            return
        try:
            report = fut.result()
        except Exception as exc:  # noqa: BLE001 - BrokenProcessPool and the like
            log.warning("analysis worker failed (%r); continuing in this process", exc)
            if self.inline is None:
                services = engine._services[self.acct.name]
                self.inline = InlineRunner(
                    Analyser(
                        [engine.core, *engine.modules],
                        services,
                        cache=engine.cache,
                        stop=engine._cancel,
                    )
                )
            report = self.inline.evaluate(batch).result()
        engine._take_report(report)
        self.fr.evaluated += report.evaluated
        for name, n in report.errors.items():
            self.fr.errors[name] = self.fr.errors.get(name, 0) + n
        for name, values in report.results.items():
            self.pending.setdefault(name, {}).update(values)
        self.held += report.evaluated
        self.done += batch.size
        engine._progress(Progress(self.acct.name, self.folder, "analyse", self.done, self.total))
        if self.held >= FLUSH_EVERY:
            self._store()

    def _store(self) -> None:
        cache = self.engine.cache
        account, folder = self.acct.name, self.folder
        for m in [self.engine.core, *self.engine.modules]:
            values = self.pending.pop(m.name, None)
            if not values:
                continue
            cache.put_results(account, folder, m.name, m.version, self.fps[m.name], values)
            if cache.result_chunk_count(account, folder, m.name) > MAX_CHUNKS:
                keep = cache.cached_uids(account, folder)
                cache.compact_results(account, folder, m.name, m.version, self.fps[m.name], keep)
        self.held = 0
        self.engine.resolver.flush()


class LazyWorker:
    """Starts the worker process only when a folder has enough work to pay for it."""

    def __init__(
        self, engine: Engine, acct: Account, sent_index: SentIndex | None, inline: Any
    ) -> None:
        self.engine, self.acct, self.sent_index, self.inline = engine, acct, sent_index, inline
        self.started: ProcessRunner | None = None

    def start(self) -> ProcessRunner:
        if self.started is None:
            # Everything the child reads must be on disk before it starts.
            self.engine.resolver.flush()
            self.started = ProcessRunner(
                self.engine.config,
                self.acct,
                self.sent_index,
                [self.engine.core, *self.engine.modules],
                str(self.engine.cache.path),
                workers=self.engine.workers,
                dns_state=self.engine.resolver.handoff(),
                own_mx=self.engine._services[self.acct.name].identity.own_mx,
            )
        return self.started

    def close(self) -> None:
        if self.started is not None:
            self.started.close()
