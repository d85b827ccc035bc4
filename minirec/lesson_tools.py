"""Two small helpers every lesson uses: print minirec's own source, and time a call.

    from minirec.lesson_tools import best_time, show

    show(scan.reference.affine)          # what you read is what runs
    seconds = best_time(lambda: f(x))    # best of a few runs after a warm-up

Timings in lessons are ratios from one run on a shared machine, printed in cells that nbval
does not compare (tagged ``nbval-ignore-output``); performance is measured in ``benchmarks/``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

__all__ = ["best_time", "show"]


def show(obj) -> None:
    """Print the source of a function or class from minirec, so what you read is what runs."""
    print(inspect.getsource(obj))


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn()``, after one warm-up call (which
    also compiles a Numba kernel or loads it from the cache)."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1; got {repeat}")
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
