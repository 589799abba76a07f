"""Every regex path of the Received parser stays linear on hostile input.

The cases are bench/bench_received.py's generated worst cases (one per pattern, or per piece
of code around one). Two checks per case: the whole `parse_received` call on 256 KiB stays
under 50 ms (best of several runs, retried, so a loaded machine does not fail it: the actual
figures come from the benchmark and are in docs/benchmarks.md); and the pattern alone,
applied to the full input exactly as the parser applies it, grows about linearly: 16x the
input (32 KiB to 512 KiB) may cost at most 64x the time, which leaves room for a loaded
machine and for caches (quadratic growth would be 256x).
"""

from __future__ import annotations

import pytest

from bench.bench_received import KIB, WORST, _hop_all, best, case
from mailstats.mail.received import Hop, parse_received

SIZE = 256 * KIB


def _bounded(fn, value, limit_s: float, rounds: int = 6) -> float:
    took = float("inf")
    for _ in range(rounds):
        took = min(took, best(fn, value, 3))
        if took < limit_s:
            break
    return took


@pytest.mark.parametrize("name", sorted(WORST))
def test_256_kib_worst_case_parses_fast(name):
    value = case(name, SIZE)
    assert len(value) >= SIZE
    hop = parse_received(value)
    assert isinstance(hop, Hop) and hop.raw == value
    took = _bounded(_hop_all, value, 0.050)
    assert took < 0.050, f"{name}: {took * 1000:.1f} ms"


@pytest.mark.parametrize("name", sorted(WORST))
def test_each_pattern_grows_linearly(name):
    pattern = WORST[name][3]
    small, large = case(name, SIZE // 8), case(name, SIZE * 2)
    ratios = []
    for _ in range(3):
        t_large, t_small = best(pattern, large, 2), best(pattern, small, 2)
        if t_large < 0.004:
            return  # too fast to say anything, and certainly not quadratic at 512 KiB
        ratios.append(t_large / max(t_small, 1e-6))
        if ratios[-1] < 64:
            return
    pytest.fail(f"{name}: 16x the input took {min(ratios):.0f}x the time")
