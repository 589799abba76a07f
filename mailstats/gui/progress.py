"""Overall progress of a run and the words for time left (plain Python: no Qt, easy to test).

Progress events come from the engine (`Progress(account, folder, phase, done, total)`).
"""

from __future__ import annotations

import time
from typing import Any


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def left_text(seconds: float) -> str:
    return "almost done" if seconds < 1 else f"about {fmt_duration(seconds)} left"


class ProgressTracker:
    """Overall fraction and time left from the engine's (phase, done, total) events.

    Each folder counts by its number of messages, so a 300-message Sent folder finished
    first does not read as a third of a 56 s run. Sizes come from the folders' message
    counts (`set_sizes`, asked of the server while the run starts); until they arrive, a
    folder counts with the largest total its own events showed, and a folder not seen yet
    with the average of those known.
    """

    def __init__(self, accounts: list[Any]) -> None:
        self.units = {
            (a.name, f, phase): 0.0 for a in accounts for f in a.roles() for phase in ("s", "a")
        }
        #: folders in the order the engine works on them (sent first, as roles() lists them)
        self.order = [(a.name, f) for a in accounts for f in a.roles()]
        self.sizes: dict[tuple[str, str], int] = {}
        #: set while the folders' message counts are being asked for
        self.sizes_pending = False
        self.seen: dict[tuple[str, str], int] = {}
        self.started = time.monotonic()
        self.phase_started: dict[tuple[str, str, str], tuple[float, int]] = {}

    def set_sizes(self, sizes: dict[tuple[str, str], int]) -> None:
        self.sizes.update(sizes)
        self.sizes_pending = False

    @property
    def known(self) -> bool:
        """Whether the fraction means something: the folders' sizes came back (or were never
        asked for), or every folder has shown its size in its own events. Until then a
        small first folder would read as a large share of the run."""
        return not self.sizes_pending or all(f in self.seen for f in self.order)

    def update(self, p: Any) -> None:
        if p.phase in ("sync", "analyse"):
            key = (p.account, p.folder, p.phase[0])
            frac = 1.0 if p.total == 0 else min(1.0, p.done / p.total)
            self.units[key] = frac
            self.phase_started.setdefault(key, (time.monotonic(), p.done))
            folder = (p.account, p.folder)
            self.seen[folder] = max(self.seen.get(folder, 0), p.total)
        elif p.phase == "done":
            for ph in ("s", "a"):
                self.units[(p.account, p.folder, ph)] = 1.0
            self.seen[(p.account, p.folder)] = p.total
        elif p.phase == "finished" and p.message != "cancelled":
            # a failed account never reaches its folders: nothing is left to do for it
            for key in self.units:
                if key[0] == p.account:
                    self.units[key] = 1.0

    def weights(self) -> dict[tuple[str, str], float]:
        known = {f: float(self.sizes.get(f, self.seen.get(f, 0))) for f in self.order}
        have = [w for f, w in known.items() if f in self.sizes or f in self.seen]
        fallback = (sum(have) / len(have)) if have and sum(have) > 0 else 1.0
        return {
            f: (w if (f in self.sizes or f in self.seen) else fallback) for f, w in known.items()
        }

    @property
    def fraction(self) -> float:
        if not self.units:
            return 0.0
        weights = self.weights()
        total = sum(weights.values())
        if total <= 0:  # every folder is empty: count them alike
            return sum(self.units.values()) / len(self.units)
        done = sum(
            w * (self.units[(*f, "s")] + self.units[(*f, "a")]) / 2 for f, w in weights.items()
        )
        return done / total

    def next_folder(self, account: str, folder: str) -> str | None:
        """The folder of `account` the engine works on after `folder`, if any."""
        try:
            i = self.order.index((account, folder))
        except ValueError:
            return None
        for acct, name in self.order[i + 1 :]:
            if acct == account:
                return name
        return None

    def time_left(self) -> float | None:
        frac = self.fraction
        elapsed = time.monotonic() - self.started
        if frac <= 0.02 or elapsed < 1.0:
            return None
        return elapsed * (1 - frac) / frac

    def phase_left(self, p: Any) -> float | None:
        key = (p.account, p.folder, p.phase[:1])
        start = self.phase_started.get(key)
        if start is None or p.total == 0:
            return None
        t0, d0 = start
        rate = (p.done - d0) / max(time.monotonic() - t0, 1e-6)
        return (p.total - p.done) / rate if rate > 0 else None
