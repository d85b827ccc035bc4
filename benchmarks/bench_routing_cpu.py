"""Top-k MoE routing on the CPU: route + dispatch + experts + combine against the dense mixture
(every expert on every token), for minirec's NumPy reference, Numba kernels and Torch twins.

    python benchmarks/bench_routing_cpu.py                 # N=65,536 tokens, E=8, k=2, d=256
    python benchmarks/bench_routing_cpu.py --quick         # tiny sizes, seconds (the smoke test)
    python benchmarks/bench_routing_cpu.py --json out.json # also write the rows as JSON

Every expert is one (d, d) float32 matrix (the cheapest real expert: a larger one only makes
the dense cost larger). The capacity factor is 1.25 (Switch's default for training), so each
expert's buffer holds C = ⌈1.25 · N k / E⌉ tokens and the experts' matrix products do
1.25 · k / E of the dense work — the floor of the routed layer's "fraction of the dense cost".

Rows (float32 inputs laid out before timing):

- ``dense mixture``: y = Σ_e p_e · (x W_e), in NumPy (E products and E weighted sums) and in
  Torch (one (N, d) × (d, E·d) product, then an einsum with p);
- ``routed``, per backend (``numpy`` the reference's loops over tokens, ``numba`` the compiled
  parallel kernels, ``torch`` the index ops): top-k of the logits, dispatch into (E, C, d)
  buffers, one batched product per expert buffer, combine. The same rows are timed again
  without the experts (``routing only``: top-k + dispatch + combine), the bookkeeping MoE adds;
- ``copy N·k rows`` (the machine's limit for the bookkeeping): NumPy copying the (N·k, d)
  float32 rows that dispatch writes once and combine reads once, i.e. the bytes moved by a
  perfect dispatch — routing cannot move its data faster than this.

"fraction of dense" = time / the dense mixture's time in the same library (NumPy for the numpy
and numba rows, Torch for the torch rows). Every routed output is checked against the NumPy
reference before timing. Timing: the benchmarks' policy (``benchmarks/README.md``). Goal (judged
at the full size only): the Numba routed layer at most 0.5 of the NumPy dense mixture. One run
on a shared machine: ±15 % is noise; the load average is in the header.
"""

from __future__ import annotations

import numpy as np
import torch
from _common import Run, goal_lines, parser, table

import minirec.routing as routing
from minirec.routing import reference as ref

FULL = {"N": 65536, "E": 8, "k": 2, "d": 256}
QUICK = {"N": 512, "E": 4, "k": 2, "d": 16}
CAPACITY_FACTOR = 1.25
GOAL = ("numba routed layer at most 0.5 of the NumPy dense mixture (k/E = 0.25, ×1.25 capacity "
        "padding = 0.31 of the dense products, plus the bookkeeping)")


def setup(size, seed=0):
    rng = np.random.default_rng(seed)
    N, E, k, d = size["N"], size["E"], size["k"], size["d"]
    x = rng.normal(size=(N, d)).astype(np.float32)
    logits = rng.normal(size=(N, E)).astype(np.float32)
    W = (rng.normal(size=(E, d, d)) / np.sqrt(d)).astype(np.float32)
    C = ref.capacity_from_factor(N, E, k, CAPACITY_FACTOR)
    t = {name: torch.as_tensor(a) for name, a in (("x", x), ("logits", logits), ("W", W))}
    return {"x": x, "logits": logits, "W": W, "C": C, "t": t, **size}


def methods(s):
    """name → (library, fn). Each fn returns the layer output (N, d)."""
    x, logits, W, C, E, k = s["x"], s["logits"], s["W"], s["C"], s["E"], s["k"]
    xt, lt, Wt = s["t"]["x"], s["t"]["logits"], s["t"]["W"]

    def dense_numpy():
        p = ref.softmax(logits)
        y = np.zeros_like(x)
        for e in range(E):
            y += p[:, e:e + 1] * (x @ W[e])                      # Σ_e p_e · Expert_e(x)
        return y

    def dense_torch():
        p = torch.softmax(lt, dim=1)
        allx = (xt @ Wt.permute(1, 0, 2).reshape(x.shape[1], -1)).view(-1, E, x.shape[1])
        return torch.einsum("ne,ned->nd", p, allx)

    def routed(backend, experts=True):
        xs, ls, Ws = (xt, lt, Wt) if backend == "torch" else (x, logits, W)

        def run():
            w, idx = routing.top_k_route(ls, k, backend=backend)
            buf, slots = routing.dispatch(xs, idx, E, C, backend=backend)
            out = buf @ Ws if experts else buf                   # expert e on buffer e
            return routing.combine(out, w, idx, slots, backend=backend)
        return run

    rows_copy = np.empty((x.shape[0] * k, x.shape[1]), dtype=np.float32)
    src = np.repeat(x, k, axis=0)

    def copy_limit():
        np.copyto(rows_copy, src)                               # N·k rows written once
        return rows_copy

    ms = {"dense mixture": ("numpy", dense_numpy), "dense mixture ": ("torch", dense_torch)}
    for backend in ("numpy", "numba", "torch"):
        ms[f"routed, {backend}"] = ("numpy" if backend != "torch" else "torch", routed(backend))
    for backend in ("numpy", "numba", "torch"):
        ms[f"routing only, {backend}"] = ("numpy" if backend != "torch" else "torch",
                                          routed(backend, experts=False))
    ms["copy N·k rows (limit)"] = ("numpy", copy_limit)
    return ms


def check(s, ms):
    """Routed outputs against the float64 NumPy reference (same choices, same capacity), before
    anything is timed."""
    x64, l64, W64 = (s[n].astype(np.float64) for n in ("x", "logits", "W"))
    experts = [lambda u, e=e: u @ W64[e] for e in range(s["E"])]
    expect, *_ = ref.moe_layer(x64, l64, experts, s["k"], capacity=s["C"])
    errors = {}
    for name, (_, fn) in ms.items():
        out = fn()
        if name.startswith("routed"):
            out = out.numpy() if isinstance(out, torch.Tensor) else out
            err = float(np.abs(out - expect).max() / np.abs(expect).max())
            if err > 1e-4:
                raise AssertionError(f"{name}: relative error {err:.1e} against the reference")
            errors[name] = err
    return errors


def measure(size, run):
    s = setup(size)
    ms = methods(s)
    errors = check(s, ms)
    times = run.time({name: fn for name, (_, fn) in ms.items()})
    dense = {"numpy": times["dense mixture"].best, "torch": times["dense mixture "].best}
    rows = []
    for name, (lib, _) in ms.items():
        rows.append({"method": name.strip() + (" (torch)" if name.endswith(" ") else ""),
                     "library": lib, **times[name].as_row(),
                     "fraction_of_dense": times[name].best / dense[lib],
                     "max_rel_error": errors.get(name)})
    return rows, s["C"]


COLUMNS = [("method", "method", "<28"), ("library", "library", "<7"),
           ("best ms", "best_ms", ">10.2f"), ("median ms", "median_ms", ">10.2f"),
           ("runs", "runs", ">4d"), ("of dense", "fraction_of_dense", ">9.3f")]


def main(argv=None):
    run = Run(parser(__doc__, "tiny sizes (N=512, E=4, d=16)").parse_args(argv))
    torch.set_num_threads(2)
    size = QUICK if run.quick else FULL
    rows, C = measure(size, run)
    info = run.machine()
    numba_fraction = next(r for r in rows if r["method"] == "routed, numba")["fraction_of_dense"]
    goals = [run.goal(GOAL, numba_fraction <= 0.5, f"{numba_fraction:.3f} of the dense mixture")]
    print(run.header(
        "Top-k MoE routing on the CPU", info,
        f"sizes: N={size['N']} tokens, E={size['E']} experts, k={size['k']}, d={size['d']}, "
        f"float32, one (d, d) matrix per expert; capacity factor {CAPACITY_FACTOR} → C={C}",
        "of dense: time / the dense mixture's time in the same library (numpy or torch)",
    ) + table(rows, COLUMNS))
    print(f"\nfloor of the routed products: {CAPACITY_FACTOR} · k / E = "
          f"{CAPACITY_FACTOR * size['k'] / size['E']:.3f} of the dense products")
    print(goal_lines(goals, run.quick))
    run.write_json("routing_cpu", info, size=size, capacity=C, capacity_factor=CAPACITY_FACTOR,
                   dtype="float32", rows=rows, goals=goals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
