"""Titans' linear memory on the CPU: tokens per second of the NumPy reference, the Numba kernel,
the Torch per-token loop and the Torch chunked form, in one run; a GPU section when there is one.

    python benchmarks/bench_memory_cpu.py                 # T = 8192, d_k = d_v = 64, chunk 64
    python benchmarks/bench_memory_cpu.py --quick         # T = 256, d = 16: seconds (smoke test)
    python benchmarks/bench_memory_cpu.py --json out.json # also write the rows as JSON

The memory (``minirec.memory.titans_memory(memory="linear")``), float32, gates η = 0.9,
θ = 0.05, α = 0.01 given as (T,) arrays, unit keys and queries:

    S_t = η_t S_{t−1} − θ_t · 2 (M_{t−1} k_t − v_t) k_tᵀ,   M_t = (1 − α_t) M_{t−1} + S_t,   y_t = M_t q_t

Methods (each checked before timing: the per-token forms against the float64 reference, the
chunked forms against the float64 chunked reference):

- numpy reference (per token): ``minirec.memory.reference.titans_linear``, ~8 array operations
  per token;
- numba kernel (per token): ``minirec.memory.numba_cpu.titans_linear``, one fused pass over M and
  S per token (compiled with ``cache=True``; the check compiles or loads it);
- torch per-token loop: ``minirec.memory.torch_ops.titans_linear``, T Python-level steps;
- torch chunked (C = chunk): ``titans_linear_chunked``, per chunk one batched gradient and two
  ``minirec.scan`` linear recurrences (the compiled kernel on CPU tensors) across it. Note the
  chunked form is Titans' mini-batch algorithm, not the per-token one: it gives other numbers
  (the lesson shows how close);
- numpy reference chunked (C = chunk), for scale.

The per-token work is 4·d_v·d_k multiply-adds (error, momentum, memory, read-out); the state
(M and S, 2·d_v·d_k floats) stays in cache, so the kernel's limit is arithmetic, printed as
GFLOP/s. Every form runs on one thread: NumPy's and Numba's per-token steps are single-threaded,
and Torch runs with ``torch.set_num_threads(1)`` — its (C, C) and (C, d) products are too small
to share, and on a loaded 2-core machine a 2-thread Torch op of that size waits tens of
milliseconds at its barrier (measured: a 64 × 64 matmul, 30 ms with 2 threads at load 6).
Timing: the benchmarks' policy (``benchmarks/README.md``). Goals: Numba ≥ 20× the
NumPy reference; Torch chunked ≥ 5× the Torch per-token loop (judged only for the full size).
One run on a shared machine: ±15 % is noise; quote the load average.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _common import Run, goal_lines, parser, table

from minirec.memory import numba_cpu, torch_ops
from minirec.memory import reference as ref

FULL = {"T": 8192, "d": 64, "chunk": 64}
QUICK = {"T": 256, "d": 16, "chunk": 16}
GATES = {"eta": 0.9, "theta": 0.05, "alpha": 0.01}
GOALS = [("numba kernel (per token)", "numpy reference (per token)", 20.0),
         ("torch chunked", "torch per-token loop", 5.0)]


def inputs(T, d, seed=0):
    rng = np.random.default_rng(seed)

    def unit(n):
        x = rng.standard_normal((n, d))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    k, v, q = unit(T), rng.standard_normal((T, d)), unit(T)
    gates = tuple(np.full(T, GATES[n]) for n in ("eta", "theta", "alpha"))
    return k, v, q, gates


def methods(k, v, q, gates, chunk, device="cpu"):
    """name → (function of no arguments returning y as NumPy, float64 expected y)."""
    k32, v32, q32 = (x.astype(np.float32) for x in (k, v, q))
    g32 = tuple(g.astype(np.float32) for g in gates)
    kt, vt, qt, *gt = (torch.from_numpy(x).to(device) for x in (k32, v32, q32, *g32))
    per_token = ref.titans_linear(k, v, q, *gates)[0]
    chunked = ref.titans_linear_chunked(k, v, q, *gates, chunk)[0]

    def sync(y):
        if device != "cpu":
            torch.cuda.synchronize()
        return y

    cpu = {
        "numpy reference (per token)": (lambda: ref.titans_linear(k32, v32, q32, *g32)[0],
                                        per_token),
        "numba kernel (per token)": (lambda: numba_cpu.titans_linear(k32, v32, q32, *g32)[0],
                                     per_token),
        "torch per-token loop": (lambda: sync(torch_ops.titans_linear(kt, vt, qt, *gt)[0]),
                                 per_token),
        "torch chunked": (lambda: sync(torch_ops.titans_linear_chunked(kt, vt, qt, *gt,
                                                                       chunk)[0]), chunked),
        "numpy reference chunked": (lambda: ref.titans_linear_chunked(k32, v32, q32, *g32,
                                                                      chunk)[0], chunked),
    }
    if device != "cpu":
        return {n: cpu[n] for n in ("torch per-token loop", "torch chunked")}
    return cpu


def _as_numpy(y):
    return y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y


def measure(size, run, device="cpu"):
    T, d, chunk = size["T"], size["d"], size["chunk"]
    k, v, q, gates = inputs(T, d)
    ms = methods(k, v, q, gates, chunk, device)
    with torch.no_grad():
        errors = {}
        for name, (fn, expected) in ms.items():
            err = float(np.max(np.abs(_as_numpy(fn()) - expected)) / np.max(np.abs(expected)))
            if not err < 1e-3:
                raise AssertionError(f"{name}: relative error {err:.2e} against the float64 "
                                     "reference")
            errors[name] = err
        times = run.time({name: fn for name, (fn, _) in ms.items()})
    return [{"method": name, "device": device, "T": T, "d": d, "chunk": chunk,
             **times[name].as_row(), "tokens_per_s": T / times[name].best,
             "gflop_per_s": 8 * d * d * T / times[name].best / 1e9, "rel_err": errors[name]}
            for name in ms]


def goals(rows, run):
    by = {r["method"]: r for r in rows if r["device"] == "cpu"}
    out = []
    for fast, slow, want in GOALS:
        ratio = by[slow]["best_ms"] / by[fast]["best_ms"]
        out.append({**run.goal(f"{fast} ≥ {want:g}× {slow}", ratio >= want, f"{ratio:.1f}×"),
                    "fast": fast, "slow": slow, "ratio": ratio})
    return out


COLUMNS = [("method", "method", "<30"), ("device", "device", "<6"), ("best ms", "best_ms", ">10.2f"),
           ("median ms", "median_ms", ">10.2f"), ("runs", "runs", ">4d"),
           ("tokens/s", "tokens_per_s", ">12,.0f"), ("GFLOP/s", "gflop_per_s", ">8.2f"),
           ("× numpy ref", "vs_numpy", ">11.1f"), ("× torch loop", "vs_loop", ">12.1f"),
           ("rel err", "rel_err", ">8.1e")]


def table_of(rows):
    """The rows with their ratios to the NumPy reference (CPU rows) and to the Torch loop of
    the same device."""
    base = {r["device"]: r["best_ms"] for r in rows if r["method"] == "torch per-token loop"}
    numpy_ms = next((r["best_ms"] for r in rows if r["method"] == "numpy reference (per token)"),
                    None)
    shown = [{**r, "vs_numpy": numpy_ms / r["best_ms"] if numpy_ms and r["device"] == "cpu"
              else None, "vs_loop": base[r["device"]] / r["best_ms"]} for r in rows]
    return table(shown, COLUMNS)


def main(argv=None):
    run = Run(parser(__doc__, "tiny size (T=256, d=16, chunk 16)").parse_args(argv))
    torch.set_num_threads(1)     # every form compared runs on one thread (see the docstring)
    size = QUICK if run.quick else FULL
    rows = measure(size, run)
    met = goals(rows, run)
    info = run.machine()
    print(run.header(
        "Titans linear memory on the CPU", info,
        f"size: T={size['T']}, d_k=d_v={size['d']}, chunk={size['chunk']}, float32; gates "
        f"η={GATES['eta']}, θ={GATES['theta']}, α={GATES['alpha']}",
    ) + table_of(rows))
    print("\n" + goal_lines(met, run.quick))

    gpu_rows = []
    print("\nGPU:")
    if torch.cuda.is_available():
        gpu_rows = measure(size, run, device="cuda")
        print(f"  {torch.cuda.get_device_name()}")
        print(table_of(gpu_rows))
    else:
        print("  no GPU: the GPU section (torch per-token loop and chunked form on CUDA) is "
              "skipped")
    run.write_json("memory_cpu", info, size=size, gates=GATES, dtype="float32", rows=rows,
                   goals=met, gpu_rows=gpu_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
