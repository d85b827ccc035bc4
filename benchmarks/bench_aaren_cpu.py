"""Aaren prefix attention on the CPU: minirec's O(T) forms (scan, stream) against the O(T²) forms
and torch's scaled_dot_product_attention(is_causal=True), time and peak memory, in one run.

    python benchmarks/bench_aaren_cpu.py                 # T = 256 … 16384; B=1, 4 heads, d=64
    python benchmarks/bench_aaren_cpu.py --quick         # tiny sizes, seconds (the smoke test)
    python benchmarks/bench_aaren_cpu.py --json out.json # also write the rows as JSON

Aaren is causal softmax attention with ONE query per head, shared by every position:
o_t = Σ_{i≤t} softmax(s_{≤t})_i v_i with s_i = q·k_i. The peer that computes the same output is
``torch.nn.functional.scaled_dot_product_attention(q_rep, k, v, is_causal=True, scale=1)`` with
the query repeated at every position (what a user without minirec would call; on the CPU, with
4-d float32 inputs, torch runs its flash-attention kernel, O(T) memory but O(T²) work). Methods,
all on the same float32 q, k, v (time first for minirec, (B, H, T, d) for SDPA, laid out before
timing):

- ``minirec.attention.aaren`` with ``method="scan"`` (prefix scan of (m, u, w) triples:
  Hillis–Steele in NumPy, doubling in Torch), ``method="stream"`` (one token at a time, O(1)
  state: a Python loop in NumPy and Torch, a compiled loop in Numba) and ``method="direct"``
  (the masked (T, T) softmax, O(T²) memory: run only up to T=4096);
- SDPA as above (``is_causal=True``).

Every output is checked against minirec's float64 NumPy scan before timing. Memory, measured
apart from the timing, in this process:

- "peak RSS Δ": the resident-set high-water mark during one call minus the resident set before
  it — the kernel's VmHWM (the number behind ``resource.getrusage().ru_maxrss``), reset before
  each call by writing 5 to /proc/self/clear_refs, after ``gc.collect()`` and ``malloc_trim``.
  It sees every allocator (NumPy, Numba, torch's CPU allocator) but only at page granularity,
  and counts the output (T·B·H·d_v·4 bytes) too. Linux only; "n/a" elsewhere.
- "tracemalloc": Python's tracemalloc peak during one call, for NumPy-input methods (NumPy
  reports its buffers to it; torch does not, so torch rows show "-").

Timing: the benchmarks' policy (``benchmarks/README.md``). Ratios "× SDPA" = time / SDPA's time
at the same T. One run on a shared machine: ±15 % is noise.
"""

from __future__ import annotations

import ctypes
import gc
import re
import sys
import tracemalloc

import numpy as np
import torch
import torch.nn.functional as F
from _common import Run, parser, table

import minirec.attention as attention

FULL = {"T": (256, 1024, 4096, 16384), "B": 1, "H": 4, "d": 64}
QUICK = {"T": (16, 64), "B": 1, "H": 2, "d": 8}
DIRECT_MAX_T = 4096                 # the (T, T) forms beyond this would need gigabytes
MIB = 2**20
# The JSON's "goals" (what the website's performance page judges) are empty: no number is promised.
NO_GOAL = ("the summary shows where the O(T) forms beat SDPA in time and where they save memory; "
           "it promises no number")


# --------------------------------------------------------------------------------------------
# Peak memory of one call
# --------------------------------------------------------------------------------------------

def _status_kib(field):
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else None


def _trim():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss_mib(fn):
    """Resident-set high-water mark during ``fn()`` above the resident set before it, in MiB
    (None where /proc/self/clear_refs cannot reset the mark)."""
    _trim()
    try:
        before = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                                             # VmHWM := VmRSS
    except OSError:
        return None
    out = fn()
    peak = _status_kib("VmHWM")
    del out
    return None if peak is None or before is None else max(0, peak - before) / 1024


def tracemalloc_mib(fn):
    """tracemalloc's peak during ``fn()`` above what was traced before it, in MiB."""
    _trim()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return (peak - base) / MIB


# --------------------------------------------------------------------------------------------
# Methods, checks, timing
# --------------------------------------------------------------------------------------------

def setup(T, size, seed=0):
    B, H, d = size["B"], size["H"], size["d"]
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((H, d)) / np.sqrt(d)).astype(np.float32)     # s_i ~ N(0, 1)
    k = rng.standard_normal((T, B, H, d)).astype(np.float32)
    v = rng.standard_normal((T, B, H, d)).astype(np.float32)
    qt, kt, vt = (torch.from_numpy(x) for x in (q, k, v))
    # SDPA's layout (B, H, T, d), contiguous, the shared query repeated at every position;
    # 4-d inputs: with 3-d ones torch takes its math path, (T, T) weights in memory.
    sd_q = qt[None, :, None, :].expand(B, H, T, d).contiguous()
    sd_k = kt.permute(1, 2, 0, 3).contiguous()
    sd_v = vt.permute(1, 2, 0, 3).contiguous()
    return {"q": q, "k": k, "v": v, "qt": qt, "kt": kt, "vt": vt,
            "sd": (sd_q, sd_k, sd_v)}


def methods(d, T):
    """label → (kind, callable, input kind) for the methods that run at this T.
    kind: O(T) | O(T²) | peer;  input: numpy | torch."""
    q, k, v, qt, kt, vt = d["q"], d["k"], d["v"], d["qt"], d["kt"], d["vt"]

    def mine(x, method, backend):
        qq, kk, vv = (q, k, v) if x == "numpy" else (qt, kt, vt)
        if x == "torch":
            def run():
                with torch.no_grad():
                    return attention.aaren(qq, kk, vv, method=method, backend=backend)
            return run
        return lambda: attention.aaren(qq, kk, vv, method=method, backend=backend)

    def sdpa():
        with torch.no_grad():
            return F.scaled_dot_product_attention(*d["sd"], is_causal=True, scale=1.0)

    ms = {
        "numpy scan (Hillis-Steele)": ("O(T)", mine("numpy", "scan", "numpy"), "numpy"),
        "numpy stream (Python loop)": ("O(T)", mine("numpy", "stream", "numpy"), "numpy"),
        "numba stream (compiled loop)": ("O(T)", mine("numpy", "stream", "numba"), "numpy"),
        "torch scan (doubling)": ("O(T)", mine("torch", "scan", "torch"), "torch"),
        "torch stream (Python loop)": ("O(T)", mine("torch", "stream", "torch"), "torch"),
        "numpy direct (T×T)": ("O(T²)", mine("numpy", "direct", "numpy"), "numpy"),
        "torch direct (T×T)": ("O(T²)", mine("torch", "direct", "torch"), "torch"),
        "torch SDPA is_causal": ("peer", sdpa, "torch"),
    }
    return {name: m for name, m in ms.items() if m[0] != "O(T²)" or T <= DIRECT_MAX_T}


def as_time_first(name, out):
    out = out.numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    if "SDPA" in name:                                              # (B, H, T, d) → (T, B, H, d)
        out = out.transpose(2, 0, 1, 3)
    return out


def check(d, ms, tol=1e-4):
    """Every output against minirec's float64 NumPy scan: max |error| / max |o|."""
    ref = attention.aaren(*(x.astype(np.float64) for x in (d["q"], d["k"], d["v"])),
                          method="scan", backend="numpy")
    errors = {}
    for name, (_, fn, _) in ms.items():
        out = as_time_first(name, fn())
        if out.shape != ref.shape or out.dtype != np.float32:
            raise SystemExit(f"{name}: got {out.dtype} {out.shape}, want float32 {ref.shape}")
        err = float(np.abs(out - ref).max() / np.abs(ref).max())
        if not err <= tol:
            raise SystemExit(f"{name} differs from the float64 reference by {err:.2e} (relative)")
        errors[name] = err
    return errors


def measure(T, size, run):
    d = setup(T, size)
    ms = methods(d, T)
    errors = check(d, ms)
    times = run.time({name: fn for name, (_, fn, _) in ms.items()})
    sdpa = times["torch SDPA is_causal"].best
    out_mib = T * size["B"] * size["H"] * size["d"] * 4 / MIB
    rows = []
    for name, (kind, fn, inp) in ms.items():
        rows.append({
            "T": T, "method": name, "kind": kind,
            **times[name].as_row(),
            "ratio_to_sdpa": times[name].best / sdpa,
            "peak_rss_mib": peak_rss_mib(fn),
            "tracemalloc_mib": tracemalloc_mib(fn) if inp == "numpy" else None,
            "output_mib": out_mib,
            "max_rel_error": errors[name],
        })
    return rows


COLUMNS = [("T", "T", ">6d"), ("method", "method", "<30"), ("kind", "kind", "<5"),
           ("best ms", "best_ms", ">10.2f"), ("median ms", "median_ms", ">10.2f"),
           ("runs", "runs", ">4d"), ("× SDPA", "ratio_to_sdpa", ">8.3f"),
           ("RSS Δ MiB", "peak_rss_mib", ">10.1f"), ("tracemalloc", "tracemalloc_mib", ">11.1f")]


def crossovers(rows):
    """Per O(T) method: the T values at which it is faster than SDPA."""
    out = {}
    for r in rows:
        if r["kind"] == "O(T)":
            out.setdefault(r["method"], [])
            if r["ratio_to_sdpa"] < 1:
                out[r["method"]].append(r["T"])
    return out


def summary(rows):
    """Per T: the fastest O(T) method against SDPA, in time and memory."""
    out = []
    for T in sorted({r["T"] for r in rows}):
        at = [r for r in rows if r["T"] == T]
        sd = next(r for r in at if r["kind"] == "peer")
        best = min((r for r in at if r["kind"] == "O(T)"), key=lambda r: r["best_ms"])
        mem = (f"; peak RSS Δ {best['peak_rss_mib']:.1f} vs {sd['peak_rss_mib']:.1f} MiB"
               if best["peak_rss_mib"] is not None and sd["peak_rss_mib"] is not None else "")
        out.append({"T": T, "fastest_O_T": best["method"], "speedup_vs_sdpa": sd["best_ms"] /
                    best["best_ms"], "text": f"T={T}: {best['method']} {best['best_ms']:.2f} ms vs "
                    f"SDPA {sd['best_ms']:.2f} ms = {sd['best_ms'] / best['best_ms']:.1f}× faster"
                    f"{mem}"})
    return out


def main(argv=None):
    run = Run(parser(__doc__, "tiny sizes (T=16, 64; 2 heads, d=8)").parse_args(argv))
    torch.set_num_threads(2)
    size = QUICK if run.quick else FULL
    rows = []
    for T in size["T"]:
        rows += measure(T, size, run)
    summ = summary(rows)
    wins = crossovers(rows)

    info = run.machine()
    print(run.header(
        "Aaren prefix attention on the CPU", info,
        f"sizes: T={', '.join(map(str, size['T']))}; B={size['B']}, H={size['H']} heads, "
        f"d_k=d_v={size['d']}, float32; one query per head; (T×T) forms only up to "
        f"T={DIRECT_MAX_T}",
        "RSS Δ MiB: peak resident set during one call above the resident set before it (VmHWM "
        "reset via /proc/self/clear_refs; all allocators, includes the output; - where it "
        "cannot be read); tracemalloc: Python-traced peak, NumPy-input methods only",
    ) + table(rows, COLUMNS, group="T"))
    print("\nWhere O(T) wins (fastest O(T) form vs SDPA, same output):")
    for s in summ:
        print("  " + s["text"])
    Ts = sorted({r["T"] for r in rows})
    for method, at in wins.items():
        print(f"  {method:30} faster than SDPA at T = "
              + (", ".join(map(str, at)) if at else "none of " + ", ".join(map(str, Ts))))
    run.write_json("aaren_cpu", info, size={**size, "T": list(size["T"])}, dtype="float32",
                   rows=rows, summary=summ, faster_than_sdpa_at=wins, goals=[], no_goal=NO_GOAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
