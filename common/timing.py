"""Timing helpers the benchmarks share: medians of repeated timings, and percentiles.

Benchmarks print figures; they never assert speeds (docs/benchmarks.md records them with
the machine and the date). Every figure is a median over repeats after a warm-up call,
which absorbs the first call's compilation and cache misses.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_rate(fn: Callable[[], object], work: float, repeats: int = 5, min_time: float = 0.0) -> float:
    """Median of ``work`` units per second over ``repeats`` timed calls of ``fn``, after one
    warm-up call. With ``min_time`` > 0, each timing covers as many calls as fill about a third
    of ``min_time`` (so short calls are not timed alone)."""
    fn()
    calls = 1
    if min_time > 0:
        start = time.perf_counter()
        while time.perf_counter() - start < min_time / 3:
            fn()
            calls += 1
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(work * calls / (time.perf_counter() - start))
    return statistics.median(rates)


def median_ms(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median milliseconds per call of ``fn``, timed over ``calls`` calls ``repeats`` times,
    after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e3)
    return statistics.median(times)


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0-100) of already sorted values; nan if empty."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]
