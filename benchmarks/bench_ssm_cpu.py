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
= method time / exp-limit time. Timing: the benchmarks' policy (``benchmarks/README.md``). One
run on a shared machine: ±15 % is noise; the load average is printed at the start and end.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _common import Run, parser, table

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


def measure(size, run):
    rows = []
    for T in size["T"]:
        arrays = _inputs(T, size["B"], size["D"], size["N"])
        _check(arrays)
        times = run.time(_methods(arrays))
        loop_fwd, loop_bwd = times["torch loop"].best, times["torch loop fwd+bwd"].best
        for name in METHODS:
            best = times[name].best
            loop = loop_bwd if name.endswith("fwd+bwd") else loop_fwd
            rows.append({"T": T, "method": name, **times[name].as_row(),
                         "x_loop": loop / best if name != "exp limit" else None,
                         "x_exp": best / times["exp limit"].best})
    return rows


COLUMNS = [("T", "T", ">6d"), ("method", "method", "<24"), ("best ms", "best_ms", ">9.2f"),
           ("median ms", "median_ms", ">10.2f"), ("runs", "runs", ">4d"),
           ("× loop", "x_loop", ">8.1f"), ("× exp", "x_exp", ">7.2f")]
NO_GOAL = ("no numeric goal: the table shows what the Torch Function's reverse-scan backward saves "
           "against autograd through a loop, and how far each forward is from the exp limit")


def main(argv=None):
    run = Run(parser(__doc__, "tiny sizes (T = 16, 64)").parse_args(argv))
    size = QUICK if run.quick else FULL
    torch.set_num_threads(1)
    rows = measure(size, run)
    info = run.machine()
    print(run.header(
        "The selective scan on the CPU", info,
        f"size: T={', '.join(map(str, size['T']))}; B={size['B']}, D={size['D']}, "
        f"N={size['N']}, float32",
        "× loop = Torch loop time / time (fwd, or fwd+bwd rows against the loop's fwd+bwd); "
        "× exp = time / one np.exp over T·B·D·N floats",
    ) + table(rows, COLUMNS, group="T"))
    run.write_json("ssm_cpu", info, size={**size, "T": list(size["T"])}, dtype="float32",
                   rows=rows, goals=[], no_goal=NO_GOAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
