"""The selective scan (Mamba's S6 recurrence) on the CPU: minirec's backends against a Torch loop
and against the machine's limit, in one run.

    python benchmarks/bench_ssm_cpu.py                 # T = 1024, 4096; B = 8, D = 64, N = 16
    python benchmarks/bench_ssm_cpu.py --quick         # tiny sizes, seconds (a smoke test)
    python benchmarks/bench_ssm_cpu.py --json out.json # also write the rows as JSON

One problem: h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t x_t, y_t = Σ_n h_t C_t, float32, inputs laid
out before timing (x, Δ (T, B, D), A (D, N), B, C (T, B, N)). Methods (forward only unless the
name says "fwd+bwd"):

- ``numpy``: the reference, ``minirec.ssm.selective_scan(backend="numpy")``: Ā and Δ B x built
  as (T, B, D, N) arrays, then minirec.scan's NumPy linear recurrence;
- ``numba fused``: ``backend="numba"``, the kernel of ``minirec/ssm/numba_cpu.py`` that
  discretises inside the loop and never stores a (T, B, D, N) tensor (prange over the batch);
- ``torch Function``: ``minirec.ssm.torch_ops.selective_scan`` (materialised Ā, Δ B x, then the
  scan's autograd.Function, whose CPU forward is minirec's compiled scan);
- ``torch loop``: ``selective_scan_loop``, a Python loop of T steps of Torch ops (what one writes
  without minirec); both Torch forms also forward + backward.

The machine's limit: the fused kernel evaluates T·B·D·N exponentials; ``exp limit`` is the time
of one NumPy ``np.exp`` over a float32 array of that size (one thread, vectorised), the floor for
a single thread that must compute them. Ratios "× loop" = torch loop time / method time; "× exp"
= method time / exp-limit time. One run on a shared machine: ±15 % is noise; the load average
is printed at the start and end.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

from minirec import ssm
from minirec.ssm import reference as ref
from minirec.ssm import torch_ops

FULL = {"T": (1024, 4096), "B": 8, "D": 64, "N": 16}
QUICK = {"T": (16, 64), "B": 2, "D": 8, "N": 4}
METHODS = ("numpy", "numba fused", "torch Function", "torch loop", "torch Function fwd+bwd",
           "torch loop fwd+bwd", "exp limit")


def _inputs(T, B, D, N, seed=0):
    rng = np.random.default_rng(seed)
    arrays = (rng.normal(size=(T, B, D)), rng.uniform(0.001, 0.1, size=(T, B, D)),
              -np.tile(np.arange(1.0, N + 1), (D, 1)), rng.normal(size=(T, B, N)),
              rng.normal(size=(T, B, N)))
    return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]


def _timed(fn, rounds, repeat):
    fn()                                                            # warm-up (and compile)
    times = []
    for _ in range(rounds):
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def _methods(arrays):
    tensors = [torch.from_numpy(a) for a in arrays]

    def fwd_bwd(fn):
        def run():
            leaves = [t.clone().requires_grad_(True) for t in tensors]
            y, _ = fn(*leaves)
            y.sum().backward()
        return run

    big = np.empty(arrays[0].shape + (arrays[2].shape[1],), np.float32)
    big[...] = -0.01
    out = np.empty_like(big)
    return {
        "numpy": lambda: ssm.selective_scan(*arrays, backend="numpy"),
        "numba fused": lambda: ssm.selective_scan(*arrays, backend="numba"),
        "torch Function": _no_grad(lambda: torch_ops.selective_scan(*tensors)),
        "torch loop": _no_grad(lambda: torch_ops.selective_scan_loop(*tensors)),
        "torch Function fwd+bwd": fwd_bwd(torch_ops.selective_scan),
        "torch loop fwd+bwd": fwd_bwd(torch_ops.selective_scan_loop),
        "exp limit": lambda: np.exp(big, out=out),
    }


def _no_grad(fn):
    def run():
        with torch.no_grad():
            return fn()
    return run


def _check(arrays):
    """Every method's y against the float64 reference before timing (float32 tolerance)."""
    y_ref, _ = ref.selective_scan(*(a.astype(np.float64) for a in arrays))
    scale = np.abs(y_ref).max()
    tensors = [torch.from_numpy(a) for a in arrays]
    with torch.no_grad():
        outs = {"numba fused": ssm.selective_scan(*arrays, backend="numba"),
                "torch Function": torch_ops.selective_scan(*tensors)[0].numpy(),
                "torch loop": torch_ops.selective_scan_loop(*tensors)[0].numpy()}
    for name, y in outs.items():
        err = np.abs(y - y_ref).max() / scale
        if not err < 1e-4:
            raise AssertionError(f"{name}: relative error {err:.1e} against the reference")


def run(size, rounds, repeat):
    rows = []
    for T in size["T"]:
        arrays = _inputs(T, size["B"], size["D"], size["N"])
        _check(arrays)
        times = {name: _timed(fn, rounds, repeat) for name, fn in _methods(arrays).items()}
        loop_fwd, loop_bwd = times["torch loop"][0], times["torch loop fwd+bwd"][0]
        for name in METHODS:
            best, median = times[name]
            loop = loop_bwd if name.endswith("fwd+bwd") else loop_fwd
            rows.append({"T": T, "method": name, "best_ms": best * 1e3, "median_ms": median * 1e3,
                         "x_loop": loop / best if name != "exp limit" else None,
                         "x_exp": best / times["exp limit"][0]})
    return rows


def _table(rows, size):
    lines = [f"B = {size['B']}, D = {size['D']}, N = {size['N']}, float32; best of rounds "
             "(median); × loop = Torch loop time / time (fwd, or fwd+bwd rows against the loop's "
             "fwd+bwd); × exp = time / one np.exp over T·B·D·N floats",
             f"{'T':>6}  {'method':24s} {'best ms':>9} {'median ms':>10} {'× loop':>8} {'× exp':>7}"]
    for r in rows:
        x_loop = f"{r['x_loop']:8.1f}" if r["x_loop"] is not None else f"{'-':>8}"
        lines.append(f"{r['T']:>6}  {r['method']:24s} {r['best_ms']:9.2f} {r['median_ms']:10.2f} "
                     f"{x_loop} {r['x_exp']:7.2f}")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (T = 16, 64)")
    ap.add_argument("--json", metavar="PATH", help="also write the header and rows as JSON")
    ap.add_argument("--rounds", type=int, default=None, help="timing rounds (default 3, quick 1)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method per round")
    args = ap.parse_args(argv)
    size = QUICK if args.quick else FULL
    rounds = args.rounds or (1 if args.quick else 3)
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "numpy": np.__version__,
            "torch": torch.__version__, "load_start": load_start}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"torch {torch.__version__} (1 thread), load average {load_start}")
    rows = run(size, rounds, args.repeat)
    info["load_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for line in _table(rows, size):
        print(line)
    print(f"load average at the end: {info['load_end']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "ssm_cpu", "date": _dt.datetime.now(_dt.UTC).isoformat(),
                       "machine": info, "size": size, "rows": rows, "goals": [],
                       "no_goal": "no numeric goal: the table shows what the Torch Function's "
                                  "reverse-scan backward saves against autograd through a loop, "
                                  "and how far each forward is from the exp limit"}, f, indent=1)


if __name__ == "__main__":
    main()
