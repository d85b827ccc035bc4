"""Small helpers every lesson uses: print minirec's own source, time a call, set the threads.

    from minirec.lesson_tools import best_time, show, torch_on_one_thread

    torch_on_one_thread()                # once, after the imports
    show(scan.reference.affine_combine)          # what you read is what runs
    seconds = best_time(lambda: f(x))    # best of a few runs after a warm-up

Timings in lessons are ratios from one run on a shared machine, printed in cells that nbval
does not compare (tagged ``nbval-ignore-output``); performance is measured in ``benchmarks/``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from minirec._timing import time_call

__all__ = ["best_time", "show", "torch_on_one_thread"]


def show(obj) -> None:
    """Print the source of a function or class from minirec, so what you read is what runs."""
    print(inspect.getsource(obj))


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn()``, after one warm-up call (which
    also compiles a Numba kernel or loads it from the cache).

    The benchmarks' policy (:mod:`minirec._timing`), sized for a lesson: ``repeat`` rounds of
    one call each, and the best quoted."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1; got {repeat}")
    return time_call(fn, rounds=repeat, budget_s=0.0, max_calls=1, warmup=1).best


def torch_on_one_thread() -> None:
    """Run torch on one thread for the rest of the lesson; Numba keeps its own threads.

    A lesson's models are tiny: on two threads each small op waits at a barrier for the other
    thread, and while other programs keep the cores busy that thread is often not running
    (50 training steps took 30 s on 2 threads and 0.9 s on 1 on a loaded 2-core machine).
    Numba's OpenMP threading layer shares torch's OpenMP runtime, and starting Numba's pool
    (at the first parallel kernel) resets torch's thread count to Numba's. So start that pool
    first, then set torch; ``torch.get_num_threads()`` stays 1 afterwards."""
    import numba
    import torch

    numba.get_num_threads()        # starts Numba's thread pool (and with it the shared runtime)
    torch.set_num_threads(1)
