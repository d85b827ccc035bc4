"""GRU over a sequence on the CPU: minirec's backends against torch.nn.GRU, in one run.

    python benchmarks/bench_gru_cpu.py                 # B=32, T=512, D=H=256, float32
    python benchmarks/bench_gru_cpu.py --quick         # a tiny size, seconds (the smoke test)
    python benchmarks/bench_gru_cpu.py --json out.json # also write the rows as JSON

Two tasks, each method timed as best-of-N after a warm-up (and as the median, to show the noise):

- forward: the sequence forward, outputs and final state. minirec's NumPy reference
  (``backend="numpy"``), its Numba kernels (``backend="numba"``), its Torch module built from the
  gates (``minirec.cells.torch_ops.GRU``) and ``torch.nn.GRU``, both under ``torch.no_grad()``;
- bptt: forward and backward, all gradients (weights, biases, x, h0). ``gru_bptt`` with the
  reference and the Numba backend; ``torch.autograd`` through ``torch.nn.GRU`` and through
  minirec's module.

Every method gets the same weights and data; the outputs are checked against torch.nn.GRU before
anything is timed. The ratio column is time / torch.nn.GRU's time for the same task: ratios, not
absolute times, are what a shared 2-core machine can promise (±15 % is noise there).
Torch runs with ``torch.set_num_threads(2)``. Methods are timed in rounds (every method once per
round, a short pause between methods so that idle BLAS / OpenMP threads of the previous one stop
spinning), and the best over all rounds is reported.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import sys
import time

import numpy as np
import torch
from _common import machine

import minirec.cells as cells
from minirec.cells import torch_ops

# The JSON's "goals" (what the website's performance page judges) are empty: no number is promised.
NO_GOAL = ("the table compares minirec's NumPy, Numba and Torch GRUs with torch.nn.GRU, forward "
           "and BPTT, as ratios of best times; it promises no number")

FULL = {"T": 512, "B": 32, "D": 256, "H": 256}
QUICK = {"T": 8, "B": 3, "D": 5, "H": 7}


def setup(size, seed=0):
    """Weights from a torch.nn.GRU and data, shared by every method (float32)."""
    T, B, D, H = size["T"], size["B"], size["D"], size["H"]
    torch.manual_seed(seed)
    peer = torch.nn.GRU(D, H)
    mine = torch_ops.GRU(D, H)
    mine.load_state_dict(peer.state_dict())
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    h0 = (0.1 * rng.standard_normal((B, H))).astype(np.float32)
    go = rng.standard_normal((T, B, H)).astype(np.float32)
    return {
        "peer": peer, "mine": mine, "params": cells.params_from_torch(peer),
        "x": x, "h0": h0, "go": go,
        "xt": torch.from_numpy(x), "h0t": torch.from_numpy(h0), "got": torch.from_numpy(go),
    }


def methods(d):
    """name → (task, callable). Each callable runs the whole task once."""
    p, x, h0, go = d["params"], d["x"], d["h0"], d["go"]

    def torch_fwd(module):
        def run():
            with torch.no_grad():
                return module(d["xt"], d["h0t"][None])
        return run

    def torch_bptt(module):
        def run():
            xr = d["xt"].clone().requires_grad_(True)
            hr = d["h0t"][None].clone().requires_grad_(True)
            module.zero_grad(set_to_none=True)
            out, _ = module(xr, hr)
            out.backward(d["got"])
            return xr.grad
        return run

    return {
        "numpy reference": ("forward", lambda: cells.gru_forward(x, h0, p, backend="numpy")),
        "minirec numba": ("forward", lambda: cells.gru_forward(x, h0, p, backend="numba")),
        "minirec torch module": ("forward", torch_fwd(d["mine"])),
        "torch.nn.GRU": ("forward", torch_fwd(d["peer"])),
        "numpy reference bptt": ("bptt", lambda: cells.gru_bptt(x, h0, p, go, backend="numpy")),
        "minirec numba bptt": ("bptt", lambda: cells.gru_bptt(x, h0, p, go, backend="numba")),
        "minirec torch module + autograd": ("bptt", torch_bptt(d["mine"])),
        "torch.nn.GRU + autograd": ("bptt", torch_bptt(d["peer"])),
    }


def check(d, tol):
    """Every forward and every dx against torch.nn.GRU before timing anything."""
    with torch.no_grad():
        ref = d["peer"](d["xt"], d["h0t"][None])[0].numpy()
    for backend in ("numpy", "numba"):
        out, _ = cells.gru_forward(d["x"], d["h0"], d["params"], backend=backend)
        err = float(np.abs(out - ref).max())
        if err > tol:
            raise SystemExit(f"{backend} forward differs from torch.nn.GRU by {err:.2e}")
    xr = d["xt"].clone().requires_grad_(True)
    d["peer"](xr, d["h0t"][None])[0].backward(d["got"])
    for backend in ("numpy", "numba"):
        g = cells.gru_bptt(d["x"], d["h0"], d["params"], d["go"], backend=backend)
        dx = xr.grad.numpy()
        err = float(np.abs(g["x"] - dx).max()) / float(np.abs(dx).max())
        if err > tol:
            raise SystemExit(f"{backend} bptt dx differs from torch.autograd by {err:.2e}")


def time_all(ms, rounds, repeat, budget_s, pause_s):
    """Run every method ``repeat`` times per round for ``rounds`` rounds; a method whose single
    run exceeds ``budget_s`` is run once per round. Returns name → list of seconds."""
    times = {name: [] for name in ms}
    for _, fn in ms.values():                                   # warm-up: compile, caches, pools
        fn()
    for _ in range(rounds):
        for name, (_, fn) in ms.items():
            time.sleep(pause_s)
            n = repeat if not times[name] or min(times[name]) < budget_s else 1
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


def rows_from(ms, times):
    peer = {"forward": "torch.nn.GRU", "bptt": "torch.nn.GRU + autograd"}
    rows = []
    for name, (task, _) in ms.items():
        best = min(times[name])
        rows.append({
            "task": task,
            "method": name,
            "best_ms": 1e3 * best,
            "median_ms": 1e3 * statistics.median(times[name]),
            "runs": len(times[name]),
            "ratio_to_torch_nn": best / min(times[peer[task]]),
        })
    return rows


def table(rows) -> str:
    head = (f"{'task':8} {'method':34} {'best ms':>10} {'median ms':>10} {'runs':>5} "
            f"{'× torch.nn':>11}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['task']:8} {r['method']:34} {r['best_ms']:10.2f} {r['median_ms']:10.2f} "
                     f"{r['runs']:5d} {r['ratio_to_torch_nn']:11.2f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny size (T=8, B=3, D=5, H=7)")
    ap.add_argument("--json", metavar="PATH", help="also write the header and rows as JSON")
    ap.add_argument("--rounds", type=int, default=None, help="timing rounds (default 3, quick 1)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method per round")
    args = ap.parse_args(argv)

    torch.set_num_threads(2)
    size = QUICK if args.quick else FULL
    rounds = args.rounds or (1 if args.quick else 3)
    d = setup(size)
    check(d, tol=1e-4)
    ms = methods(d)
    times = time_all(ms, rounds, args.repeat, budget_s=1.0, pause_s=0.0 if args.quick else 0.3)
    rows = rows_from(ms, times)

    info = machine()
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    header = [
        f"GRU sequence on the CPU — {now}",
        f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, "
        f"torch threads {info['torch_threads']}",
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
        f"torch {info['torch']}",
        f"size: T={size['T']} B={size['B']} D={size['D']} H={size['H']} float32; "
        f"best of {rounds} round(s) × up to {args.repeat} runs after a warm-up",
        "",
    ]
    print("\n".join(header) + table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "gru_cpu", "date": now, "machine": info, "size": size,
                       "dtype": "float32", "rows": rows, "goals": [], "no_goal": NO_GOAL}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
