"""Linear recurrence h_t = a_t h_{t−1} + b_t on a CUDA GPU: minirec's Torch scans and its Numba
CUDA scan against a Torch Python loop and the card's copy bandwidth, in one run.

    python benchmarks/bench_scan_gpu.py                 # T = 2^12, 2^16, 2^20 × D = 1, 64, 256
    python benchmarks/bench_scan_gpu.py --quick         # small sizes, seconds (the smoke test)
    python benchmarks/bench_scan_gpu.py --json out.json # also write the rows as JSON

Without a CUDA GPU (``torch.cuda.is_available()`` is False) it prints "no GPU: nothing to
measure" and exits 0. float32, time first, ``a, b (T, D)`` contiguous CUDA tensors (``a``
uniform in [0.5, 0.999), ``b`` standard normal), ``h_{−1} = 0``. Methods:

- ``torch autograd Function``: ``minirec.scan.torch_ops.linear_recurrence`` with each of its
  graph-free scans that runs on the device (its default there, found by watching which one it
  picks, is marked; ``"loop"``, T in-place steps, runs only where the Python loop runs) and
  ``torch doubling``:
  ``linear_recurrence_doubling`` (Hillis–Steele through autograd), all under ``no_grad``;
- ``numba cuda scan``: ``minirec.scan.numba_cuda.linear_recurrence_device`` on the same CUDA
  tensors (``cuda.as_cuda_array``, zero copy; the kernels and their own device allocations are
  timed, no host transfers) — when ``numba.cuda.is_available()``;
- ``torch python loop``: one ``h[t] = a[t]·h[t−1] + b[t]`` per step (T launches of small
  kernels). Run for T ≤ ``--loop-max-t`` (default 2^16); above that its time is ESTIMATED as
  T × the per-step time measured at the largest T run for the same D, and marked ``est.``;
- limit: ``dst.copy_(src)`` of two 1 GiB float32 tensors (64 MiB with ``--quick``), read +
  write, measured in this run.

Times are GPU times from CUDA events (``torch.cuda.Event(enable_timing=True)``), recorded on
torch's current stream around each call after a ``torch.cuda.synchronize()``; the end event is
waited on before it is read. torch's and numba's default streams are both the legacy default
stream, which orders the numba kernels between the two events; if torch runs on another stream,
the numba calls end with a ``cuda.synchronize()``. Effective GB/s = (a, b read + h written) /
time. Each output is checked against a float64 CPU reference (minirec's Numba CPU kernel)
before timing. A warm-up (kernel compilation, allocator) precedes the timed runs.

``--device cpu`` runs the same code on the CPU (perf_counter instead of events, no Numba CUDA
row): a dry run of the script's logic for development, not a GPU measurement.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

FULL = {"T": (2**12, 2**16, 2**20), "D": (1, 64, 256)}
QUICK = {"T": (2**8, 2**10), "D": (1, 8)}
COPY_BYTES = {"full": 2**30, "quick": 2**26}   # each of the two tensors of the copy limit
NO_GPU = "no GPU: nothing to measure (torch.cuda.is_available() is False)"
# The JSON's "goals" (what the website's performance page judges) are empty: no number is promised.
NO_GOAL = ("GB/s of each scan against the card's copy_ bandwidth and the time against a Torch "
           "Python loop are shown; no target is set yet")


def machine(device) -> dict:
    import numba
    info = {
        "host_cpu": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, gpu_sms=p.multi_processor_count)
    return info


def numba_cuda_module():
    """minirec.scan.numba_cuda when numba can launch kernels here, else None (and why)."""
    try:
        from minirec.scan import numba_cuda
    except ImportError as e:
        return None, f"minirec.scan.numba_cuda not importable: {e}"
    if not numba_cuda.is_available():
        return None, "numba.cuda.is_available() is False"
    return numba_cuda, ""


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def make_timer(device):
    """fn → seconds for one call of fn: CUDA events on a GPU, perf_counter on the CPU."""
    if device.type != "cuda":
        def cpu_time(fn):
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        return cpu_time

    def gpu_time(fn):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3                        # ms → s
    return gpu_time


def best_of(fn, timer, repeat, budget_s):
    """Warm-up, then up to ``repeat`` timed calls (one more only while a call is under
    ``budget_s``). Returns the list of seconds."""
    fn()
    times = [timer(fn)]
    while len(times) < repeat and min(times) < budget_s:
        times.append(timer(fn))
    return times


def copy_limit(device, timer, repeat, nbytes):
    n = nbytes // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    times = best_of(lambda: dst.copy_(src), timer, repeat, budget_s=10.0)
    return 2 * nbytes / min(times) / 1e9


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------

def torch_loop(a, b):
    """The Torch Python loop a user writes without minirec: one step per t."""
    h = torch.empty_like(b)
    prev = torch.zeros_like(b[0])
    for t in range(b.shape[0]):
        h[t] = a[t] * prev + b[t]
        prev = h[t]
    return h


def default_scan(mod, device):
    """The scan ``torch_ops.linear_recurrence`` picks on ``device`` when not told: seen by
    intercepting the ``method`` its Function is applied with (None if not found)."""
    fn = getattr(mod, "LinearRecurrence", None)
    if fn is None or "apply" in vars(fn):
        return None
    seen = []

    def spy(*args):
        seen.append(args[-1])
        return torch.autograd.Function.apply.__func__(fn, *args)

    fn.apply = spy
    try:
        mod.linear_recurrence(torch.ones(3, 2, device=device), torch.ones(3, 2, device=device))
    finally:
        del fn.apply                      # the inherited classmethod again
    return seen[0] if seen and isinstance(seen[0], str) else None


def methods(a, b, nc, loop_ok):
    """label → callable returning h (a tensor, or a numba device array)."""
    from minirec.scan import torch_ops

    def no_grad(fn):
        def run():
            with torch.no_grad():
                return fn(a, b)
        return run

    ms = {}
    scans = tuple(getattr(torch_ops, "SCANS", ()))
    default = default_scan(torch_ops, a.device)
    for m in scans:                   # the Function's graph-free scans
        if m == "loop" and not loop_ok:
            continue                      # T launches, like the Python loop
        if m == "compiled" and a.device.type != "cpu":
            continue                      # minirec's Numba CPU kernel: CPU tensors only
        label = f"torch autograd Function ({m}{', default' if m == default else ''})"
        ms[label] = no_grad(lambda a, b, m=m: torch_ops.linear_recurrence(a, b, method=m))
    if not scans:
        ms["torch autograd Function"] = no_grad(torch_ops.linear_recurrence)
    ms["torch doubling"] = no_grad(torch_ops.linear_recurrence_doubling)
    if nc is not None:
        from numba import cuda
        da, db = cuda.as_cuda_array(a), cuda.as_cuda_array(b)
        h0 = cuda.as_cuda_array(torch.zeros_like(b[0]))
        legacy = torch.cuda.current_stream(a.device).cuda_stream == 0

        def numba_scan():
            h = nc.linear_recurrence_device(da, db, h0)
            if not legacy:                  # events on another stream would not order these
                cuda.synchronize()
            return h
        ms["numba cuda scan"] = numba_scan
    if loop_ok:
        ms["torch python loop"] = no_grad(torch_loop)
    return ms


def to_numpy(h):
    if isinstance(h, torch.Tensor):
        return h.detach().cpu().numpy()
    return h.copy_to_host()                                         # numba device array


def reference(a, b):
    """float64 h on the CPU with minirec's Numba CPU kernel (fast enough at 2^28 elements)."""
    from minirec.scan import numba_cpu
    a64 = a.detach().cpu().double().numpy()
    b64 = b.detach().cpu().double().numpy()
    return numba_cpu.linear_recurrence(a64, b64, method="sequential")


def measure(T, D, device, nc, timer, repeat, loop_max_t, loop_step, tol=1e-4):
    g = torch.Generator(device=device).manual_seed(T * 1000 + D)
    a = 0.5 + 0.499 * torch.rand((T, D), generator=g, device=device)
    b = torch.randn((T, D), generator=g, device=device)
    ms = methods(a, b, nc, loop_ok=T <= loop_max_t)
    ref = reference(a, b)
    scale = float(np.abs(ref).max())
    errors = {}
    for name, fn in ms.items():
        out = to_numpy(fn())
        err = float(np.abs(out - ref).max() / scale)
        if not (out.shape == ref.shape and err <= tol):
            raise SystemExit(f"{name} at T={T}, D={D}: shape {out.shape}, relative error {err:.2e}")
        errors[name] = err
    del ref
    nbytes = 3 * T * D * 4
    rows = []
    for name, fn in ms.items():
        times = best_of(fn, timer, repeat, budget_s=0.5)
        best = min(times)
        if name == "torch python loop":
            loop_step[D] = best / T
        rows.append({"T": T, "D": D, "method": name, "best_ms": 1e3 * best,
                     "median_ms": 1e3 * statistics.median(times), "runs": len(times),
                     "gb_per_s": nbytes / best / 1e9, "estimated": False,
                     "max_rel_error": errors[name]})
    if "torch python loop" not in ms and D in loop_step:
        est = loop_step[D] * T
        rows.append({"T": T, "D": D, "method": "torch python loop", "best_ms": 1e3 * est,
                     "median_ms": None, "runs": 0, "gb_per_s": nbytes / est / 1e9,
                     "estimated": True, "max_rel_error": None})
    loop = next((r["best_ms"] for r in rows if r["method"] == "torch python loop"), None)
    for r in rows:
        r["speedup_vs_torch_loop"] = None if loop is None else loop / r["best_ms"]
    del a, b, ms
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def table(rows, limit) -> str:
    head = (f"{'T':>8} {'D':>4} {'method':46} {'best ms':>10} {'median ms':>10} {'runs':>4} "
            f"{'GB/s':>8} {'% copy':>7} {'× loop':>8}")
    lines = [head, "-" * len(head)]
    last = None
    for r in rows:
        if last is not None and (r["T"], r["D"]) != last:
            lines.append("")
        last = (r["T"], r["D"])
        med = "est." if r["estimated"] else f"{r['median_ms']:.3f}"
        sp = "" if r["speedup_vs_torch_loop"] is None else f"{r['speedup_vs_torch_loop']:.1f}"
        lines.append(f"{r['T']:8d} {r['D']:4d} {r['method']:46} {r['best_ms']:10.3f} {med:>10} "
                     f"{r['runs']:4d} {r['gb_per_s']:8.1f} {100 * r['gb_per_s'] / limit:6.1f}% "
                     f"{sp:>8}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (T=256, 1024 × D=1, 8)")
    ap.add_argument("--json", metavar="PATH", help="also write the header and rows as JSON")
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per method and size")
    ap.add_argument("--loop-max-t", type=int, default=2**16,
                    help="largest T at which the Torch Python loop is run (above: estimated)")
    ap.add_argument("--device", default="cuda",
                    help="'cpu' dry-runs the script's logic on the CPU (not a GPU measurement)")
    args = ap.parse_args(argv)

    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"Linear recurrence on a GPU — {now}\n{NO_GPU}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"benchmark": "scan_gpu", "date": now, "gpu": None,
                           "message": NO_GPU, "rows": [], "goals": [], "no_goal": NO_GOAL}, f,
                          indent=2)
        return 0

    size = QUICK if args.quick else FULL
    nc, why = numba_cuda_module() if device.type == "cuda" else (None, "--device cpu")
    timer = make_timer(device)
    copy_bytes = COPY_BYTES["quick" if args.quick else "full"]
    limit = copy_limit(device, timer, args.repeat, copy_bytes)
    rows, loop_step = [], {}
    for T in size["T"]:
        for D in size["D"]:
            rows += measure(T, D, device, nc, timer, args.repeat, args.loop_max_t, loop_step)

    info = machine(device)
    what = (f"GPU: {info['gpu']}, {info['gpu_memory_gib']} GiB, {info['gpu_sms']} SMs, CUDA "
            f"{info['cuda']}" if device.type == "cuda"
            else "device: CPU (--device cpu: a dry run of the logic, not a GPU measurement)")
    header = [
        f"Linear recurrence h_t = a_t h_(t-1) + b_t on a GPU — {now}",
        what,
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
        f"torch {info['torch']}",
        f"float32, time-major (T, D); best of up to {args.repeat} runs after a warm-up, "
        + ("CUDA-event GPU times" if device.type == "cuda" else "perf_counter times"),
        f"copy limit: dst.copy_(src), 2 × {copy_bytes // 2**20} MiB: {limit:.1f} GB/s "
        "(read + write); GB/s = (a, b read + h written) / best time; × loop = Torch Python "
        "loop time / this time",
        f"Torch Python loop run for T ≤ {args.loop_max_t}; 'est.' rows = T × its per-step time "
        "at the largest T run (same D)",
    ]
    if nc is None:
        header.append(f"numba cuda scan: not run ({why})")
    print("\n".join(header) + "\n\n" + table(rows, limit))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "scan_gpu", "date": now, "machine": info,
                       "copy_gb_per_s": limit, "dtype": "float32",
                       "sizes": {"T": list(size["T"]), "D": list(size["D"])},
                       "loop_max_t": args.loop_max_t, "numba_cuda": nc is not None,
                       "rows": rows, "goals": [], "no_goal": NO_GOAL}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
