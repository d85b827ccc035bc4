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
identical and log-probabilities within 1e-8 relative. Timing: one warm-up call (Numba compiles
or loads its cache there), then repeated calls until ``budget`` seconds are spent (at least
``min_repeat``, at most ``max_repeat``); best and median reported. hmmlearn runs on one thread;
minirec's Numba kernels use every Numba thread (one block of sequences per thread); Torch runs
on one thread (its steps are small ops, which a second thread only slows down on a busy
machine). One run on a shared machine: ±15 % is noise, more while other jobs run.

Goals (judged at the full size only): the Numba forward at least 10× faster than hmmlearn's
fastest forward, the Numba Viterbi at least 3× faster than hmmlearn's, with identical
log-likelihoods (1e-8 relative) and identical paths.
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
from _common import load_average
from _common import machine as _machine

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


def time_one(run, budget, min_repeat, max_repeat):
    run()                                          # warm-up: compile or load, allocate
    times = []
    start = time.perf_counter()
    while len(times) < max_repeat and (len(times) < min_repeat
                                       or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), len(times)


def table(rows) -> str:
    head = ("task", "method", "best ms", "median ms", "runs", "× hmmlearn", "check")
    body = [(r["task"], r["method"], f"{r['best_ms']:.1f}", f"{r['median_ms']:.1f}", str(r["runs"]),
             f"{r['speedup_vs_hmmlearn']:.2f}", r["check"]) for r in rows]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in (head, *body))


def machine() -> dict:
    import hmmlearn
    load = load_average()
    return _machine(load_average="n/a" if load is None else f"{load:.2f}",
                    hmmlearn=hmmlearn.__version__,
                    date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def goals(rows) -> list[dict]:
    by = {(r["task"], r["method"]): r for r in rows}
    fastest_peer = min(by[("forward", m)]["best_ms"] for m in
                       ("hmmlearn score (scaling)", "hmmlearn score (log, default)"))
    numba_fwd = min(by[("forward", m)]["best_ms"] for m in
                    ("minirec numba (scaled, default)", "minirec numba (log)"))
    fwd = fastest_peer / numba_fwd
    vit = (by[("viterbi", "hmmlearn decode")]["best_ms"]
           / by[("viterbi", "minirec numba (default)")]["best_ms"])
    exact = all(r["check"] == "ok" for r in rows)
    return [
        {"goal": f"Numba forward >= {FORWARD_GOAL:g}x hmmlearn's fastest forward", "value": fwd,
         "met": fwd >= FORWARD_GOAL},
        {"goal": f"Numba Viterbi >= {VITERBI_GOAL:g}x hmmlearn's Viterbi", "value": vit,
         "met": vit >= VITERBI_GOAL},
        {"goal": "log-likelihoods within 1e-8 relative, Viterbi paths identical (every row)",
         "value": float(exact), "met": exact},
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (K=8, 3 × T=300)")
    ap.add_argument("--json", metavar="PATH", help="also write the header, rows and goals as JSON")
    ap.add_argument("--budget", type=float, default=None, help="seconds of timing per row")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    size = QUICK if args.quick else FULL
    budget = args.budget if args.budget is not None else (0.2 if args.quick else 3.0)
    info = machine()
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, numba threads "
          f"{info['numba_threads']}, torch threads {info['torch_threads']}, load average "
          f"{info['load_average']} (at start)")
    print(f"versions: python {info['python']}, numpy {info['numpy']}, torch {info['torch']}, "
          f"hmmlearn {info['hmmlearn']}; {info['date']}")
    print(f"size: K={size['K']} states, M={size['M']} symbols, {size['N']} sequences × "
          f"T={size['T']}, float64" + (" (--quick: goals not judged)" if args.quick else ""))
    pi, A, B, obs = setup(**size)
    rows_spec, _scaling, log_peer, *_ = methods(pi, A, B, obs)
    status = check(rows_spec, pi, A, B, obs, log_peer)
    results = []
    for task, name, run in rows_spec:
        best, median, n = time_one(run, budget, min_repeat=2 if args.quick else 3, max_repeat=20)
        results.append({"task": task, "method": name, "best_ms": 1e3 * best,
                        "median_ms": 1e3 * median, "runs": n, "check": status[name]})
    peers = {"forward": ("hmmlearn score (scaling)", "hmmlearn score (log, default)"),
             "viterbi": ("hmmlearn decode",)}
    for task, peer_names in peers.items():
        peer_best = min(r["best_ms"] for r in results
                        if r["method"] in peer_names and r["task"] == task)
        for r in results:
            if r["task"] == task:
                r["speedup_vs_hmmlearn"] = peer_best / r["best_ms"]
    print()
    print(table(results))
    print("(× hmmlearn: hmmlearn's fastest row of the task / this row's best time)")
    try:
        info["load_average_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        info["load_average_end"] = "n/a"
    print(f"load average at the end: {info['load_average_end']}")
    gs = goals(results)
    print()
    for g in gs:
        verdict = ("met" if g["met"] else "NOT met") if not args.quick else "not judged (--quick)"
        print(f"goal: {g['goal']}: {g['value']:.2f} — {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            judged = [dict(g, met=None if args.quick else g["met"],
                           detail=(("every row matches" if g["value"] else "a row differs")
                                   if "identical" in g["goal"] else f"{g['value']:.2f}x"))
                      for g in gs]
            json.dump({"date": info.get("date"), "machine": info, "size": size, "rows": results,
                       "goals": judged, "quick": args.quick}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
