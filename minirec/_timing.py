"""One way to time code, shared by every benchmark (``benchmarks/_common.py``) and by the lessons
(:func:`minirec.lesson_tools.best_time`), so that every number minirec quotes is measured under
the same policy. For a set of methods (name → a function of no arguments that runs the task
once), :func:`time_methods`:

1. **warms up**: calls every method ``warmup`` times untimed (Numba compiles or loads its cache,
   torch and BLAS start their thread pools, caches and allocators fill);
2. **runs rounds**: ``rounds`` times, every method in turn, so that a burst of other work on a
   shared machine falls on all of them alike; each method after ``pause_s`` of sleep, so that
   the idle BLAS / OpenMP threads of the previous one have stopped spinning;
3. **calls a method until its budget is spent**: in a round, a method is called until its calls
   have taken ``budget_s`` seconds, at least once and at most ``max_calls`` times: a slow method
   once, a fast one many times, so that each gets many chances at a quiet moment;
4. **reports** a :class:`Timing` of every timed call: ``best``, the fastest call, is the number
   quoted and the one ratios are taken of (noise only ever adds time); ``median`` shows how much
   noise there was; ``runs`` counts the calls.

``timer(fn)`` returns the seconds of one call of ``fn``: the wall clock by default
(:func:`wall_time`); a GPU benchmark passes one that reads CUDA events.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Timing", "time_methods", "time_call", "wall_time"]


@dataclass(frozen=True)
class Timing:
    """The seconds of every timed call of one method, in the order they ran."""

    seconds: tuple[float, ...]

    @property
    def best(self) -> float:
        """The fastest call (s): the statistic quoted."""
        return min(self.seconds)

    @property
    def median(self) -> float:
        """The median call (s): how much noise the run had."""
        return statistics.median(self.seconds)

    @property
    def runs(self) -> int:
        return len(self.seconds)

    def as_row(self) -> dict:
        """``{"best_ms", "median_ms", "runs"}``: the columns of a benchmark's row."""
        return {"best_ms": 1e3 * self.best, "median_ms": 1e3 * self.median, "runs": self.runs}


def wall_time(fn: Callable[[], object]) -> float:
    """Seconds of one call of ``fn()`` by ``time.perf_counter``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_methods(methods: Mapping[str, Callable[[], object]], *, rounds: int = 3,
                 budget_s: float = 0.3, max_calls: int = 100, warmup: int = 1,
                 pause_s: float = 0.0,
                 timer: Callable[[Callable[[], object]], float] = wall_time) -> dict[str, Timing]:
    """Time every method under the module's policy; returns name → :class:`Timing`."""
    if rounds < 1 or max_calls < 1 or warmup < 0 or budget_s < 0 or pause_s < 0:
        raise ValueError(f"need rounds ≥ 1, max_calls ≥ 1, warmup ≥ 0, budget_s ≥ 0 and "
                         f"pause_s ≥ 0; got rounds={rounds}, max_calls={max_calls}, "
                         f"warmup={warmup}, budget_s={budget_s}, pause_s={pause_s}")
    for fn in methods.values():
        for _ in range(warmup):
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            if pause_s:
                time.sleep(pause_s)
            seconds[name] += _one_round(fn, budget_s, max_calls, timer)
    return {name: Timing(tuple(s)) for name, s in seconds.items()}


def _one_round(fn, budget_s, max_calls, timer) -> list[float]:
    """Calls of ``fn`` until they have taken ``budget_s`` (at least one, at most ``max_calls``)."""
    calls = [timer(fn)]
    while len(calls) < max_calls and sum(calls) < budget_s:
        calls.append(timer(fn))
    return calls


def time_call(fn: Callable[[], object], **policy) -> Timing:
    """:func:`time_methods` for a single function (``policy``: its keywords)."""
    return time_methods({"fn": fn}, **policy)["fn"]
