"""GRU over a sequence on the CPU: minirec's backends against torch.nn.GRU, in one run.

    python benchmarks/bench_gru_cpu.py                 # B=32, T=512, D=H=256, float32
    python benchmarks/bench_gru_cpu.py --quick         # a tiny size, seconds (the smoke test)
    python benchmarks/bench_gru_cpu.py --json out.json # also write the rows as JSON

Two tasks, each method timed under the benchmarks' policy (``benchmarks/README.md``: a warm-up,
rounds, the best quoted and the median shown):

- forward: the sequence forward, outputs and final state. minirec's NumPy reference
  (``backend="numpy"``), its Numba kernels (``backend="numba"``), its Torch module built from the
  gates (``minirec.cells.torch_ops.GRU``) and ``torch.nn.GRU``, both under ``torch.no_grad()``;
- bptt: forward and backward, all gradients (weights, biases, x, h0). ``gru_bptt`` with the
  reference and the Numba backend; ``torch.autograd`` through ``torch.nn.GRU`` and through
  minirec's module.

Every method gets the same weights and data; the outputs are checked against torch.nn.GRU before
anything is timed. The ratio column is time / torch.nn.GRU's time for the same task: ratios, not
absolute times, are what a shared 2-core machine can promise (±15 % is noise there).
Torch runs with ``torch.set_num_threads(2)``.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _common import Run, parser, table

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


COLUMNS = [("task", "task", "<8"), ("method", "method", "<34"), ("best ms", "best_ms", ">10.2f"),
           ("median ms", "median_ms", ">10.2f"), ("runs", "runs", ">5d"),
           ("× torch.nn", "ratio_to_torch_nn", ">11.2f")]
PEER = {"forward": "torch.nn.GRU", "bptt": "torch.nn.GRU + autograd"}


def rows_from(ms, times):
    """One row per method: its timing and its ratio to torch.nn.GRU on the same task."""
    return [{"task": task, "method": name, **times[name].as_row(),
             "ratio_to_torch_nn": times[name].best / times[PEER[task]].best}
            for name, (task, _) in ms.items()]


def main(argv=None):
    run = Run(parser(__doc__, "tiny size (T=8, B=3, D=5, H=7)").parse_args(argv))
    torch.set_num_threads(2)
    size = QUICK if run.quick else FULL
    d = setup(size)
    check(d, tol=1e-4)
    ms = methods(d)
    rows = rows_from(ms, run.time({name: fn for name, (_, fn) in ms.items()}))
    info = run.machine()
    print(run.header("GRU sequence on the CPU", info,
                     f"size: T={size['T']} B={size['B']} D={size['D']} H={size['H']} float32")
          + table(rows, COLUMNS))
    run.write_json("gru_cpu", info, size=size, dtype="float32", rows=rows, goals=[],
                   no_goal=NO_GOAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
