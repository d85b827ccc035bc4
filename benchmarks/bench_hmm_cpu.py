"""HMM forward pass and Viterbi on the CPU: minirec's Numba, Torch and NumPy versions against
hmmlearn, the library a user would pick, in one run.

    python benchmarks/bench_hmm_cpu.py                 # K=64 states, 16 sequences × T=10,000
    python benchmarks/bench_hmm_cpu.py --quick         # tiny sizes, seconds (smoke test)
    python benchmarks/bench_hmm_cpu.py --json out.json # also write the rows as JSON

float64, categorical emissions with M=16 symbols; pi, A, B drawn from Dirichlet(1) rows
(every transition possible), observations sampled from the model. Rows:

- forward (the log-likelihood of each sequence): hmmlearn ``CategoricalHMM.score`` with
  ``implementation="scaling"`` and ``"log"`` (its default); minirec's public
  ``minirec.hmm.log_likelihood`` on NumPy input (Numba, scaled: the default), the Numba
  log-space kernel, the Torch log-space forward (``backend="torch"``: float64 CPU tensors, the
  differentiable path) and the NumPy reference (``backend="numpy"``, log space);
- viterbi (best path and its log-probability): hmmlearn ``decode(algorithm="viterbi")``;
  ``minirec.hmm.viterbi`` with Numba (default), Torch and the NumPy reference.

Before anything is timed, every row's result is compared with hmmlearn's: per-sequence
log-likelihoods (hmmlearn scored one sequence at a time) within 1e-8 relative, Viterbi paths
identical and log-probabilities within 1e-8 relative. Timing: the benchmarks' policy
(``benchmarks/README.md``; Numba compiles or loads its cache in the warm-up). hmmlearn runs on one thread;
minirec's Numba kernels use every Numba thread (one block of sequences per thread); Torch runs
on one thread (its steps are small ops, which a second thread only slows down on a busy
machine). One run on a shared machine: ±15 % is noise, more while other jobs run.

Goals (judged at the full size only): the Numba forward at least 10× faster than hmmlearn's
fastest forward, the Numba Viterbi at least 3× faster than hmmlearn's, with identical
log-likelihoods (1e-8 relative) and identical paths.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _common import Run, goal_lines, parser, table

import minirec.hmm as hmm
from minirec.hmm import numba_cpu
from minirec.hmm import reference as ref

FULL = dict(K=64, M=16, N=16, T=10_000)
QUICK = dict(K=8, M=4, N=3, T=300)
FORWARD_GOAL = 10.0
VITERBI_GOAL = 3.0
RTOL = 1e-8


def setup(K, M, N, T, seed=0):
    rng = np.random.default_rng(seed)
    pi, A, B = ref.random_model(K, M, rng=rng)
    obs = ref.sample(pi, A, B, T, rng=rng, n=N)[1]
    return pi, A, B, obs


def peer(pi, A, B, implementation):
    from hmmlearn.hmm import CategoricalHMM
    model = CategoricalHMM(A.shape[0], n_features=B.shape[1], implementation=implementation)
    model.startprob_, model.transmat_, model.emissionprob_ = pi, A, B
    return model


def methods(pi, A, B, obs):
    """(task, name, run, result → comparable value) for every row."""
    N, T = obs.shape
    X, lengths = obs.reshape(-1, 1), [T] * N
    scaling, log = peer(pi, A, B, "scaling"), peer(pi, A, B, "log")
    t = [torch.from_numpy(x) for x in (pi, A, B, obs)]
    rows = [
        ("forward", "hmmlearn score (scaling)", lambda: scaling.score(X, lengths)),
        ("forward", "hmmlearn score (log, default)", lambda: log.score(X, lengths)),
        ("forward", "minirec numba (scaled, default)", lambda: hmm.log_likelihood(pi, A, B, obs)),
        ("forward", "minirec numba (log)",
         lambda: numba_cpu.log_likelihood(pi, A, B, obs, method="log")),
        ("forward", "minirec torch (log)", lambda: hmm.log_likelihood(*t)),
        ("forward", "minirec numpy reference (log)",
         lambda: hmm.log_likelihood(pi, A, B, obs, backend="numpy")),
        ("viterbi", "hmmlearn decode", lambda: log.decode(X, lengths, algorithm="viterbi")),
        ("viterbi", "minirec numba (default)", lambda: hmm.viterbi(pi, A, B, obs)),
        ("viterbi", "minirec torch", lambda: hmm.viterbi(*t)),
        ("viterbi", "minirec numpy reference", lambda: hmm.viterbi(pi, A, B, obs, backend="numpy")),
    ]
    return rows, scaling, log, X, lengths


def check(rows, pi, A, B, obs, log_peer):
    """Compare every row with hmmlearn; returns {name: "ok" | reason}."""
    N, T = obs.shape
    want_ll = np.array([log_peer.score(obs[n].reshape(-1, 1)) for n in range(N)])
    want_lp, want_path = log_peer.decode(obs.reshape(-1, 1), [T] * N, algorithm="viterbi")
    status = {}
    for task, name, run in rows:
        out = run()
        if name.startswith("hmmlearn"):
            if task == "forward":
                ok = abs(out - want_ll.sum()) <= RTOL * abs(want_ll.sum())
            else:
                ok = np.array_equal(out[1], want_path)
            status[name] = "ok" if ok else "differs from the per-sequence hmmlearn result"
            continue
        if task == "forward":
            ll = np.asarray(out.numpy() if isinstance(out, torch.Tensor) else out)
            rel = np.max(np.abs(ll - want_ll) / np.abs(want_ll))
            status[name] = "ok" if rel <= RTOL else f"log-likelihood off by {rel:.1e} relative"
        else:
            path, lp = (x.numpy() if isinstance(x, torch.Tensor) else x for x in out)
            same = np.array_equal(path.ravel(), want_path)
            rel = abs(lp.sum() - want_lp) / abs(want_lp)
            status[name] = ("ok" if same and rel <= RTOL else
                            f"paths {'identical' if same else 'DIFFER'}, log-prob off by {rel:.1e}")
    return status


COLUMNS = [("task", "task", "<8"), ("method", "method", "<32"), ("best ms", "best_ms", ">10.1f"),
           ("median ms", "median_ms", ">10.1f"), ("runs", "runs", ">4d"),
           ("× hmmlearn", "speedup_vs_hmmlearn", ">10.2f"), ("check", "check", "<")]
PEERS = {"forward": ("hmmlearn score (scaling)", "hmmlearn score (log, default)"),
         "viterbi": ("hmmlearn decode",)}


def goals(rows, run) -> list[dict]:
    by = {(r["task"], r["method"]): r for r in rows}
    fastest_peer = min(by[("forward", m)]["best_ms"] for m in PEERS["forward"])
    numba_fwd = min(by[("forward", m)]["best_ms"] for m in
                    ("minirec numba (scaled, default)", "minirec numba (log)"))
    fwd = fastest_peer / numba_fwd
    vit = (by[("viterbi", "hmmlearn decode")]["best_ms"]
           / by[("viterbi", "minirec numba (default)")]["best_ms"])
    exact = all(r["check"] == "ok" for r in rows)
    return [
        {**run.goal(f"Numba forward >= {FORWARD_GOAL:g}x hmmlearn's fastest forward",
                    fwd >= FORWARD_GOAL, f"{fwd:.2f}x"), "value": fwd},
        {**run.goal(f"Numba Viterbi >= {VITERBI_GOAL:g}x hmmlearn's Viterbi",
                    vit >= VITERBI_GOAL, f"{vit:.2f}x"), "value": vit},
        {**run.goal("log-likelihoods within 1e-8 relative, Viterbi paths identical (every row)",
                    exact, "every row matches" if exact else "a row differs"),
         "value": float(exact)},
    ]


def main(argv=None):
    run = Run(parser(__doc__, "tiny sizes (K=8, 3 × T=300)").parse_args(argv))
    import hmmlearn

    torch.set_num_threads(1)
    size = QUICK if run.quick else FULL
    pi, A, B, obs = setup(**size)
    rows_spec, _scaling, log_peer, *_ = methods(pi, A, B, obs)
    status = check(rows_spec, pi, A, B, obs, log_peer)
    times = run.time({name: fn for _, name, fn in rows_spec})
    results = [{"task": task, "method": name, **times[name].as_row(), "check": status[name]}
               for task, name, _ in rows_spec]
    for task, peer_names in PEERS.items():
        peer_best = min(r["best_ms"] for r in results
                        if r["method"] in peer_names and r["task"] == task)
        for r in results:
            if r["task"] == task:
                r["speedup_vs_hmmlearn"] = peer_best / r["best_ms"]
    gs = goals(results, run)
    info = run.machine(hmmlearn=hmmlearn.__version__)
    print(run.header(
        "HMM forward pass and Viterbi on the CPU", info,
        f"size: K={size['K']} states, M={size['M']} symbols, {size['N']} sequences × "
        f"T={size['T']}, float64",
        "× hmmlearn: hmmlearn's fastest row of the task / this row's best time",
    ) + table(results, COLUMNS))
    print("\n" + goal_lines(gs, run.quick))
    run.write_json("hmm_cpu", info, size=size, rows=results, goals=gs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
