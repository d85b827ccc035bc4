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
before timing. Timing: the benchmarks' policy (``benchmarks/README.md``; the warm-up compiles
the kernels and fills the allocator), with the CUDA-event timer.

``--device cpu`` runs the same code on the CPU (perf_counter instead of events, no Numba CUDA
row): a dry run of the script's logic for development, not a GPU measurement.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _common import Run, parser, table

from minirec._timing import wall_time

FULL = {"T": (2**12, 2**16, 2**20), "D": (1, 64, 256)}
QUICK = {"T": (2**8, 2**10), "D": (1, 8)}
COPY_BYTES = {"full": 2**30, "quick": 2**26}   # each of the two tensors of the copy limit
NO_GPU = "no GPU: nothing to measure (torch.cuda.is_available() is False)"
# The JSON's "goals" (what the website's performance page judges) are empty: no number is promised.
NO_GOAL = ("GB/s of each scan against the card's copy_ bandwidth and the time against a Torch "
           "Python loop are shown; no target is set yet")


def gpu_info(device) -> dict:
    """The device, and for a CUDA device its name, memory, SMs and CUDA version."""
    info = {"device": str(device)}
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
    """fn → seconds for one call of fn: CUDA events on a GPU, the wall clock on the CPU."""
    if device.type != "cuda":
        return wall_time

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


def copy_limit(device, run, timer, nbytes):
    n = nbytes // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    best = run.time({"copy": lambda: dst.copy_(src)}, timer=timer)["copy"].best
    return 2 * nbytes / best / 1e9


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


def measure(T, D, device, nc, run, timer, loop_max_t, loop_step, tol=1e-4):
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
    times = run.time(ms, timer=timer)
    rows = []
    for name in ms:
        best = times[name].best
        if name == "torch python loop":
            loop_step[D] = best / T
        rows.append({"T": T, "D": D, "method": name, **times[name].as_row(),
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


def columns(limit):
    return [("T", "T", ">8d"), ("D", "D", ">4d"), ("method", "method", "<46"),
            ("best ms", "best_ms", ">10.3f"),
            ("median ms", lambda r: "est." if r["estimated"] else f"{r['median_ms']:.3f}", ">10"),
            ("runs", "runs", ">4d"), ("GB/s", "gb_per_s", ">8.1f"),
            ("% copy", lambda r: r["gb_per_s"] / limit, ">7.1%"),
            ("× loop", "speedup_vs_torch_loop", ">8.1f")]


def main(argv=None):
    ap = parser(__doc__, "small sizes (T=256, 1024 × D=1, 8)")
    ap.add_argument("--loop-max-t", type=int, default=2**16,
                    help="largest T at which the Torch Python loop is run (above: estimated)")
    ap.add_argument("--device", default="cuda",
                    help="'cpu' dry-runs the script's logic on the CPU (not a GPU measurement)")
    run = Run(ap.parse_args(argv))
    args = run.args
    device = torch.device(args.device)
    title = "Linear recurrence h_t = a_t h_(t-1) + b_t on a GPU"
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"{title} — {run.date}\n{NO_GPU}")
        run.write_json("scan_gpu", run.machine(), gpu=None, message=NO_GPU, rows=[], goals=[],
                       no_goal=NO_GOAL)
        return 0

    size = QUICK if run.quick else FULL
    nc, why = numba_cuda_module() if device.type == "cuda" else (None, "--device cpu")
    timer = make_timer(device)
    copy_bytes = COPY_BYTES["quick" if run.quick else "full"]
    limit = copy_limit(device, run, timer, copy_bytes)
    rows, loop_step = [], {}
    for T in size["T"]:
        for D in size["D"]:
            rows += measure(T, D, device, nc, run, timer, args.loop_max_t, loop_step)

    info = run.machine(**gpu_info(device))
    what = (f"GPU: {info['gpu']}, {info['gpu_memory_gib']} GiB, {info['gpu_sms']} SMs, CUDA "
            f"{info['cuda']}" if device.type == "cuda"
            else "device: CPU (--device cpu: a dry run of the logic, not a GPU measurement)")
    lines = [
        what,
        "float32, time-major (T, D); "
        + ("CUDA-event GPU times" if device.type == "cuda" else "perf_counter times"),
        f"copy limit: dst.copy_(src), 2 × {copy_bytes // 2**20} MiB: {limit:.1f} GB/s "
        "(read + write); GB/s = (a, b read + h written) / best time; × loop = Torch Python "
        "loop time / this time",
        f"Torch Python loop run for T ≤ {args.loop_max_t}; 'est.' rows = T × its per-step time "
        "at the largest T run (same D)",
    ]
    if nc is None:
        lines.append(f"numba cuda scan: not run ({why})")
    print(run.header(title, info, *lines)
          + table(rows, columns(limit), group=lambda r: (r["T"], r["D"])))
    run.write_json("scan_gpu", info, gpu=info.get("gpu"), copy_gb_per_s=limit, dtype="float32",
                   sizes={"T": list(size["T"]), "D": list(size["D"])},
                   loop_max_t=args.loop_max_t, numba_cuda=nc is not None, rows=rows, goals=[],
                   no_goal=NO_GOAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
