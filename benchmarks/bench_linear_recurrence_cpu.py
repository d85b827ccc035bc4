"""Linear recurrence h_t = a_t h_{t−1} + b_t on the CPU: every backend of minirec.scan against
the machine's copy bandwidth and the peers a user would reach for, in one run.

    python benchmarks/bench_linear_recurrence_cpu.py                 # T=4096×D=1024, T=65536×D=64
    python benchmarks/bench_linear_recurrence_cpu.py --quick         # tiny sizes, seconds (smoke test)
    python benchmarks/bench_linear_recurrence_cpu.py --json out.json # also write the rows as JSON

float32, time first: ``a, b, h`` are ``(T, D)`` C-contiguous arrays, ``a`` uniform in
[0.5, 0.999) (a gate), ``b`` standard normal, ``h_{−1} = 0``. Rows, per size:

- limits: NumPy ``copyto`` (one thread) and a Numba ``prange`` triad ``c = a + s·b`` (all Numba
  threads, 2 here) on arrays of the same T×D float32 as the recurrence, measured in this run;
- minirec: the NumPy reference (``backend="numpy"``), every Numba kernel (sequential, parallel
  over channels, chunked over time), the public ``minirec.scan.linear_recurrence`` (Numba,
  ``method="auto"``), every Torch path of ``minirec.scan.torch_ops``: the autograd Function —
  what ``linear_recurrence`` runs for tensors — with each of its graph-free scans (its CPU
  default, found by watching which one it picks, is marked), the doubling (parallel) form, and
  minirec's loop that builds an autograd graph; forward only, inputs without ``requires_grad``;
- peers: a Torch Python loop over t (what one writes without minirec), and
  ``scipy.signal.lfilter`` — which only takes a CONSTANT a: it runs on a = 0.9 for every t, a
  different input, once on the time-major array (``axis=0``) and once on a channel-major copy
  (``axis=-1``, the copy not timed).

Effective bandwidth = bytes of a and b read plus h written (3·T·D·4) / best time; lfilter reads
no a, so its bytes are 2·T·D·4. "% limit" is against the best limit row measured in this run on
arrays of the same byte size (both full sizes have T·D = 2^22, so all four limit rows count).
Each output is checked against the reference before anything is timed. Timing: the benchmarks'
policy (``benchmarks/README.md``), under which a fast method runs many times a round, so that
the limits and the kernels alike get many chances at a quiet moment of a shared machine. One run
on a shared machine: ±15 % is noise, more while other jobs run.

Goals (judged at the full sizes only): the best Numba kernel reaches ≥ 60 % of the copy
bandwidth (the higher of the two limit rows) at both sizes; the Torch CPU path (the autograd
Function with its CPU default scan) is ≥ 10× faster than the Torch Python loop at T=4096.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import scipy
import scipy.signal
import torch
from _common import Run, goal_lines, parser, table
from numba import get_num_threads, njit, prange

import minirec.scan as scan
from minirec.scan import reference

FULL = [(4096, 1024), (65536, 64)]
QUICK = [(64, 32), (512, 4)]
CONST_A = 0.9
BW_GOAL = 0.60                       # best Numba kernel / copy limit, at the full sizes
TORCH_GOAL = 10.0                    # Torch Python loop time / Torch path time, at T=4096
ITEM = np.dtype(np.float32).itemsize
FUNCTION = "torch autograd Function"


# --------------------------------------------------------------------------------------------
# The machine's limit
# --------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _triad(a, b, c, s):
    """c = a + s·b over all Numba threads: the 2-thread streaming limit (reads a, b; writes c)."""
    for i in prange(c.shape[0]):
        c[i] = a[i] + s * b[i]


# --------------------------------------------------------------------------------------------
# minirec's backends, as this checkout has them
# --------------------------------------------------------------------------------------------

def _optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def numba_methods():
    """label → method name of ``minirec.scan.numba_cpu.linear_recurrence``."""
    mod = _optional("minirec.scan.numba_cpu")
    if mod is None:
        return mod, {}
    labels = {"sequential": "numba sequential", "channels": "numba parallel over channels",
              "chunked": "numba chunked over time"}
    names = [m for m in getattr(mod, "LINEAR_RECURRENCE_METHODS", tuple(labels)) if m != "auto"]
    return mod, {labels.get(m, f"numba {m}"): m for m in names}


def cpu_default_scan(mod):
    """The scan ``torch_ops.linear_recurrence`` picks for float32 CPU tensors when not told:
    seen by intercepting the ``method`` its Function is applied with (None if not found)."""
    fn = getattr(mod, "LinearRecurrence", None)
    if fn is None or "apply" in vars(fn):
        return None
    seen = []

    def spy(*args):
        seen.append(args[-1])
        return torch.autograd.Function.apply.__func__(fn, *args)

    fn.apply = spy
    try:
        mod.linear_recurrence(torch.ones(3, 2), torch.ones(3, 2))
    finally:
        del fn.apply                      # the inherited classmethod again
    return seen[0] if seen and isinstance(seen[0], str) else None


def torch_methods():
    """label → callable(a, b) for each Torch path of ``minirec.scan.torch_ops``."""
    mod = _optional("minirec.scan.torch_ops")
    if mod is None:
        return {}
    out = {}
    scans = tuple(getattr(mod, "SCANS", ()))
    default = cpu_default_scan(mod)
    for m in scans:                       # the Function's graph-free scans
        label = f"{FUNCTION} ({m}{', CPU default' if m == default else ''})"
        out[label] = lambda a, b, m=m: mod.linear_recurrence(a, b, method=m)
    if not scans:
        out[FUNCTION] = mod.linear_recurrence
    labels = {"linear_recurrence_doubling": "torch doubling (parallel form)",
              "linear_recurrence_loop": "torch loop + autograd graph (minirec's)"}
    out.update({label: getattr(mod, name) for name, label in labels.items() if hasattr(mod, name)})
    return out


def torch_loop(a, b):
    """The Torch Python loop a user writes without minirec: one step per t."""
    h = torch.empty_like(b)
    prev = torch.zeros_like(b[0])
    for t in range(b.shape[0]):
        h[t] = a[t] * prev + b[t]
        prev = h[t]
    return h


# --------------------------------------------------------------------------------------------
# Methods, checks, timing
# --------------------------------------------------------------------------------------------

def large_limits(mib, run):
    """copyto and the triad on arrays of ``mib`` MiB each (3·mib in all): past the last-level
    cache at the default 256 MiB, for reference only (the goals use the same-size limits)."""
    n = mib * 2**20 // ITEM
    x, y, z = np.ones(n, np.float32), np.ones(n, np.float32), np.empty(n, np.float32)
    s = np.float32(2.0)
    limits = {"numpy copyto (1 thread)": (lambda: np.copyto(z, x), 2 * n * ITEM),
              f"numba prange triad ({get_num_threads()} threads)":
                  (lambda: _triad(x, y, z, s), 3 * n * ITEM)}
    times = run.time({name: fn for name, (fn, _) in limits.items()})
    return {name: nbytes / times[name].best / 1e9 for name, (_, nbytes) in limits.items()}


def setup(T, D, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 0.999, (T, D)).astype(np.float32)
    b = rng.standard_normal((T, D)).astype(np.float32)
    ac = np.full((T, D), CONST_A, np.float32)
    return {"a": a, "b": b, "ac": ac, "bT": np.ascontiguousarray(b.T),
            "at": torch.from_numpy(a), "bt": torch.from_numpy(b),
            "x": np.empty_like(b), "y": np.empty_like(b), "z": np.empty_like(b)}


def methods(d):
    """label → (kind, callable, bytes moved, input) — kind: limit | minirec | peer;
    input: "varying" (a_t random) or "constant" (a = 0.9)."""
    n = d["b"].size * ITEM
    a, b, at, bt = d["a"], d["b"], d["at"], d["bt"]
    num = np.array([1.0], np.float32)
    den = np.array([1.0, -CONST_A], np.float32)
    s = np.float32(2.0)
    ms = {
        "numpy copyto (1 thread)": ("limit", lambda: np.copyto(d["x"], b), 2 * n, "-"),
        f"numba prange triad ({get_num_threads()} threads)":
            ("limit", lambda: _triad(d["x"].reshape(-1), d["y"].reshape(-1), d["z"].reshape(-1), s),
             3 * n, "-"),
        "numpy reference": ("minirec", lambda: reference.linear_recurrence(a, b), 3 * n, "varying"),
    }
    nb, names = numba_methods()
    for label, m in names.items():
        ms[label] = ("minirec", lambda m=m: nb.linear_recurrence(a, b, method=m), 3 * n, "varying")
    if hasattr(scan, "linear_recurrence") and nb is not None:
        auto = nb.choose_method(*b.shape) if hasattr(nb, "choose_method") else "?"
        ms[f"scan.linear_recurrence (auto: {auto})"] = (
            "minirec", lambda: scan.linear_recurrence(a, b), 3 * n, "varying")

    def no_grad(fn):
        def run():
            with torch.no_grad():
                return fn(at, bt)
        return run

    for label, fn in torch_methods().items():
        ms[label] = ("minirec", no_grad(fn), 3 * n, "varying")
    ms["torch python loop"] = ("peer", no_grad(torch_loop), 3 * n, "varying")
    ms["scipy lfilter axis=0, (T, D)"] = (
        "peer", lambda: scipy.signal.lfilter(num, den, b, axis=0), 2 * n, "constant")
    ms["scipy lfilter axis=-1, (D, T) copy"] = (
        "peer", lambda: scipy.signal.lfilter(num, den, d["bT"], axis=-1), 2 * n, "constant")
    return ms


def check(d, ms, tol=1e-4):
    """Every method's h against the NumPy reference (constant-a peers against the reference on
    constant a) before timing: max |error| / max |h|."""
    ref = reference.linear_recurrence(d["a"].astype(np.float64), d["b"].astype(np.float64))
    ref_c = reference.linear_recurrence(d["ac"].astype(np.float64), d["b"].astype(np.float64))
    errors = {}
    for label, (kind, fn, _, inp) in ms.items():
        if kind == "limit":
            continue
        out = fn()
        out = out.numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        if "(D, T)" in label:
            out = out.T
        want = ref_c if inp == "constant" else ref
        if out.shape != want.shape or out.dtype != np.float32:
            raise SystemExit(f"{label}: got {out.dtype} {out.shape}, want float32 {want.shape}")
        err = float(np.abs(out - want).max() / np.abs(want).max())
        if not err <= tol:
            raise SystemExit(f"{label} differs from the float64 reference by {err:.2e} (relative)")
        errors[label] = err
    return errors


def rows_for(T, D, ms, times, errors):
    """Rows of one size; "fraction_of_limit" is filled in by :func:`apply_limits`."""
    loop = times["torch python loop"].best
    rows = []
    for name, (kind, _, nbytes, inp) in ms.items():
        best = times[name].best
        rows.append({
            "T": T, "D": D, "kind": kind, "method": name, "a": inp,
            **times[name].as_row(),
            "bytes": nbytes,
            "gb_per_s": nbytes / best / 1e9,
            "fraction_of_limit": None,
            "speedup_vs_torch_loop": None if kind == "limit" else loop / best,
            "max_rel_error": errors.get(name),
        })
    return rows


def apply_limits(rows):
    """The limit of a size: the best limit row measured on arrays of the same byte size in this
    run (both full sizes have T·D = 2^22: their four limit rows measure the same thing, and the
    best of them is the least disturbed by other jobs). Fills "fraction_of_limit"; returns
    (T, D) → limit in GB/s."""
    by_bytes = {}
    for r in rows:
        if r["kind"] == "limit":
            n = r["T"] * r["D"]
            by_bytes[n] = max(by_bytes.get(n, 0.0), r["gb_per_s"])
    limits = {}
    for r in rows:
        limit = by_bytes[r["T"] * r["D"]]
        r["fraction_of_limit"] = r["gb_per_s"] / limit
        limits[(r["T"], r["D"])] = limit
    return limits


COLUMNS = [("T×D", lambda r: f"{r['T']}×{r['D']}", ">10"), ("method", "method", "<52"),
           ("a", "a", "<8"), ("best ms", "best_ms", ">9.3f"), ("median ms", "median_ms", ">9.3f"),
           ("runs", "runs", ">4d"), ("GB/s", "gb_per_s", ">6.1f"),
           ("% limit", "fraction_of_limit", ">7.0%"), ("× loop", "speedup_vs_torch_loop", ">7.1f")]


def goals(rows, limits, full):
    """The two goals, judged on this run's rows (only at the full sizes)."""
    out = []
    for (T, D), limit in limits.items():
        numba = [r for r in rows if (r["T"], r["D"]) == (T, D) and r["method"].startswith("numba ")
                 and r["kind"] == "minirec"]
        if not numba:
            out.append({"goal": f"best Numba kernel ≥ {BW_GOAL:.0%} of copy bandwidth at {T}×{D}",
                        "met": None, "detail": "no Numba kernel in this checkout"})
            continue
        best = max(numba, key=lambda r: r["gb_per_s"])
        frac = best["gb_per_s"] / limit
        lims = ", ".join(f"{r['gb_per_s']:.1f} GB/s {r['method']} at {r['T']}×{r['D']}"
                         for r in rows if r["kind"] == "limit" and r["T"] * r["D"] == T * D)
        out.append({
            "goal": f"best Numba kernel ≥ {BW_GOAL:.0%} of copy bandwidth at {T}×{D}",
            "met": (frac >= BW_GOAL) if full else None,
            "fraction": frac,
            "detail": f"{best['method']}: {best['gb_per_s']:.1f} GB/s = {frac:.0%} of the best "
                      f"limit ({lims}); the goal needs {BW_GOAL * limit:.1f} GB/s",
        })
    for T, D in limits:
        if T != 4096 and full:
            continue
        torch_rows = [r for r in rows if (r["T"], r["D"]) == (T, D) and r["kind"] == "minirec"
                      and r["method"].startswith("torch ")]
        if not torch_rows:
            out.append({"goal": f"Torch CPU path ≥ {TORCH_GOAL:.0f}× the Torch Python loop at "
                                f"T={T}", "met": None, "detail": "no Torch path in this checkout"})
            break
        path = [r for r in torch_rows if r["method"] == FUNCTION
                or (r["method"].startswith(FUNCTION) and r["method"].endswith(", CPU default)"))]
        best = (path or sorted(torch_rows, key=lambda r: -r["speedup_vs_torch_loop"]))[0]
        loop = next(r for r in rows if (r["T"], r["D"]) == (T, D)
                    and r["method"] == "torch python loop")
        detail = (", ".join(f"{r['method']} {r['speedup_vs_torch_loop']:.2f}×" for r in torch_rows)
                  + f"; the goal needs {best['method']} ≤ {loop['best_ms'] / TORCH_GOAL:.2f} ms, "
                  f"it took {best['best_ms']:.2f} ms")
        out.append({
            "goal": f"Torch CPU path ≥ {TORCH_GOAL:.0f}× the Torch Python loop at T={T}",
            "met": (best["speedup_vs_torch_loop"] >= TORCH_GOAL) if full else None,
            "speedup": best["speedup_vs_torch_loop"],
            "detail": detail,
        })
        break
    return out


def main(argv=None):
    run = Run(parser(__doc__, "tiny sizes (64×32 and 512×4)").parse_args(argv))
    torch.set_num_threads(2)
    sizes = QUICK if run.quick else FULL
    rows = []
    for T, D in sizes:
        d = setup(T, D)
        ms = methods(d)
        errors = check(d, ms)
        times = run.time({name: fn for name, (_, fn, _, _) in ms.items()})
        rows += rows_for(T, D, ms, times, errors)
    limits = apply_limits(rows)
    gs = goals(rows, limits, full=not run.quick)
    big_mib = 4 if run.quick else 256
    big = large_limits(big_mib, run)

    info = run.machine(scipy=scipy.__version__)
    sizes_txt = ", ".join(f"T={T}×D={D}" for T, D in sizes)
    print(run.header(
        "Linear recurrence h_t = a_t h_(t-1) + b_t on the CPU", info,
        f"sizes: {sizes_txt}, float32, time-major (T, D)",
        "a: 'varying' = a_t uniform in [0.5, 0.999); 'constant' = a = 0.9 for every t (lfilter "
        "takes only a constant a: a different, easier input)",
        "GB/s = (a, b read + h written) / best time (lfilter: b read + h written); % limit = of "
        "the best limit row on arrays of that byte size; × loop = torch python loop time / "
        "this time",
        f"limit rows use arrays of the benchmark's size (T·D·4 bytes each); for reference, at "
        f"{big_mib} MiB per array: " + ", ".join(f"{k} {v:.1f} GB/s" for k, v in big.items()),
    ) + table(rows, COLUMNS, group="T"))
    print("\n" + goal_lines(gs, run.quick))
    run.write_json("linear_recurrence_cpu", info, sizes=[{"T": T, "D": D} for T, D in sizes],
                   dtype="float32",
                   limits_gb_per_s={f"{T}x{D}": v for (T, D), v in limits.items()},
                   large_array_limits_gb_per_s={"mib_per_array": big_mib, **big},
                   rows=rows, goals=gs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
