# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Hidden Markov models, and RNNs that emulate them
#
# By the end of this lesson you will be able to compute everything a hidden Markov model (HMM)
# answers — the likelihood of a sequence, the posterior over hidden states, the most likely
# state path — exactly and without underflow, as a sequential loop and as an associative scan,
# and to fit an HMM with EM. You will write the forward step, the Viterbi backtrack, the
# log-space matrix product that makes the forward pass a scan, and the emission statistics that
# tell whether a generator behaves like an HMM. Then you will train a small ReLU RNN driven only
# by noise to produce sequences that look like an HMM's, and take it apart the way the paper does:
# its fixed point without noise, its orbits with noise, and its "kick neurons".
#
# **Paper.** #20 Torre et al., *Mechanistic Interpretability of RNNs emulating Hidden Markov
# Models* (2025).
#
# **Builds on:** lesson 03 (associative scans, the log-matmul and max-plus combines).
# **Runs in:** well under a minute on two CPU cores; the RNN's training takes a few seconds.
#
# **Exercises** (each followed by a check cell that tells you what is wrong):
#
# 1. the forward step in log space;
# 2. the log-matmul combine, which turns the forward pass into a scan;
# 3. the Viterbi backtrack;
# 4. comparing the emission statistics of two generators.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import minirec.hmm as hmm
from minirec.check.hmm import (
    check_compare_emissions,
    check_forward_step,
    check_log_matmul_combine,
    check_viterbi_backtrack,
)
from minirec.hmm import emulator as em
from minirec.hmm import reference as ref
from minirec.lesson_tools import best_time, show, torch_on_one_thread

torch_on_one_thread()      # tiny models: one torch thread fights no one (minirec.lesson_tools)
np.set_printoptions(precision=3, suppress=True)


# %% [markdown]
# ## The question
#
# Natural behaviour, segmented by an HMM, looks like a handful of discrete states with random
# switches between them, each state emitting its own mix of symbols. An RNN is a deterministic
# map on a continuous state. Can such a network produce sequences that are *statistically*
# indistinguishable from an HMM's — and if it can, what does the mechanism look like inside?
# Before we can ask that we need the HMM side done properly: the probability of a sequence is a
# sum over $K^T$ hidden paths, which we must compute in $O(T K^2)$, without underflow after a few
# hundred steps, and preferably in parallel over time.
#
# ## Notation
#
# | symbol | shape | meaning |
# |---|---|---|
# | $K$, $M$, $T$, $N$ | | hidden states, symbols, time steps, sequences |
# | $\pi$ | `(K,)` | $\pi_i = P(z_0 = i)$ |
# | $A$ | `(K, K)` | $A_{ij} = P(z_t = j \mid z_{t-1} = i)$, rows sum to 1 |
# | $B$ | `(K, M)` | $B_{im} = P(x_t = m \mid z_t = i)$, rows sum to 1 |
# | `obs` | `(N, T)` | observed symbols $x_t$, one row per sequence |
# | $\alpha_t$ | `(N, K)` | $\alpha_t(j) = P(x_0, \dots, x_t, z_t = j)$ |
# | $\beta_t$ | `(N, K)` | $\beta_t(i) = P(x_{t+1}, \dots, x_{T-1} \mid z_t = i)$ |
# | $\gamma_t$ | `(N, K)` | $\gamma_t(i) = P(z_t = i \mid x_0, \dots, x_{T-1})$ |
# | $\delta_t$ | `(N, K)` | log-probability of the best path ending in state $j$ at $t$ |
#
# ## The paper's HMM
#
# The paper's main family is a linear chain: $K$ states in a row, a walk that steps to a
# neighbour with probability $q = p_{\text{target}}^{1/(K-1)}$, and three symbols: state $i$
# emits the first and last with weights $0.99(1 - a_i)$ and $0.99\,a_i$, $a_i = i/(K-1)$, and
# the middle one with probability 0.01. With two states and $p_{\text{target}} = 0.05$:

# %%
pi, A, B = hmm.linear_chain(2, target_prob=0.05)
print("pi =", pi)
print("A =\n", A)
print("B =\n", B)
rng = np.random.default_rng(0)
states, obs = hmm.sample(pi, A, B, 60, rng=rng)
print("states:", "".join(map(str, states)))
print("obs:   ", "".join(map(str, obs)))

# %% [markdown]
# Long runs of one symbol, switches about every 20 steps (1/0.05), and the rare middle symbol.
# We only ever see the bottom line.
#
# ## The forward algorithm
#
# $P(x) = \sum_{z} \pi_{z_0} B_{z_0 x_0} \prod_{t \ge 1} A_{z_{t-1} z_t} B_{z_t x_t}$ has $K^T$
# terms, but they share prefixes. Group them by the state at time $t$:
#
# $$
# \alpha_0(j) = \pi_j B_{j x_0}, \qquad \alpha_t(j) = \Big(\sum_i \alpha_{t-1}(i)\, A_{ij}\Big) B_{j x_t}, \qquad P(x) = \sum_j \alpha_{T-1}(j)
# $$
#
# $O(T K^2)$ work. But $\alpha_t$ is a probability of $t+1$ events: it shrinks geometrically
# and underflows float64 (below $10^{-308}$) after a few hundred steps. So work with
# $\log \alpha$, where a sum of probabilities becomes a *logsumexp*:
#
# $$
# \log \alpha_t(j) = \operatorname{logsumexp}_i \big(\log \alpha_{t-1}(i) + \log A_{ij}\big) + \log B_{j x_t},
# \qquad \operatorname{logsumexp}_i s_i = m + \log \sum_i e^{s_i - m},\; m = \max_i s_i
# $$
#
# Subtracting the maximum $m$ keeps every exponent $\le 0$ and the largest term exactly 1.
#
# ### Exercise 1 — the forward step
#
# `log_alpha (N, K)` is $\log \alpha_{t-1}$ for $N$ sequences, `log_A (K, K)` is $\log A$ (some
# entries may be $-\infty$: forbidden transitions), `log_b (N, K)` is $\log B_{j x_t}$ for each
# sequence's current symbol. Return $\log \alpha_t$ `(N, K)`. Values near $-800$ must work.

# %% tags=["exercise"]
def forward_step(log_alpha, log_A, log_b):
    """log alpha_t[n, j] = logsumexp_i (log_alpha[n, i] + log_A[i, j]) + log_b[n, j]."""
    # BEGIN SOLUTION: logsumexp over the previous state i, with the max shift, then add log_b
    scores = log_alpha[:, :, None] + log_A[None, :, :]           # (N, K_from, K_to)
    m = scores.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.log(np.exp(scores - m).sum(axis=1)) + m[:, 0, :] + log_b
    # END SOLUTION


# %% tags=["check"]
check_forward_step(forward_step)

# %% [markdown]
# minirec's `forward_log` loops that step over time. On a sequence short enough to enumerate
# all $K^T$ paths ($K = 3$, $T = 6$: 729 paths), the forward pass, the scaled forward pass
# (below) and brute force agree:

# %%
rng = np.random.default_rng(1)
pi3, A3, B3 = ref.random_model(3, 4, rng=rng)
short = hmm.sample(pi3, A3, B3, 6, rng=rng)[1]
brute = ref.brute_force(pi3, A3, B3, short)
for method in ("log", "scaled", "scan"):
    ll = ref.log_likelihood(pi3, A3, B3, short, method=method)
    print(f"{method:6s} log P(x) = {ll:.6f}   equals brute force to 1e-12: "
          f"{abs(ll - brute['log_likelihood']) < 1e-12}")
print(f"brute  log P(x) = {brute['log_likelihood']:.6f}  (sum over {3 ** 6} paths)")

# %% [markdown]
# ### Scaling, the other way to stay finite
#
# Instead of logs, normalise $\alpha_t$ to sum to 1 at every step and keep the normaliser
# $c_t = P(x_t \mid x_{<t})$; then $\log P(x) = \sum_t \log c_t$. It costs no `exp` or `log`
# per entry, only one `log` per step — which is why fast implementations prefer it. Here is what
# happens on a long sequence to the plain product, and to both safe forms:

# %%
show(ref.forward_scaled)
long_obs = hmm.sample(pi, A, B, 2000, rng=np.random.default_rng(2))[1][None]
alpha_plain = pi * B[:, long_obs[0, 0]]
for t in range(1, long_obs.shape[1]):
    alpha_plain = (alpha_plain @ A) * B[:, long_obs[0, t]]
print("plain product, T = 2000: P(x) =", alpha_plain.sum(), "(underflowed)")
print("log space:  log P(x) =", np.round(ref.log_likelihood(pi, A, B, long_obs), 4))
print("scaled:     log P(x) =", np.round(ref.log_likelihood(pi, A, B, long_obs, method="scaled"), 4))

# %% [markdown]
# ## The forward pass is a scan
#
# Write one step as a matrix: with $M_t(i, j) = A_{ij} B_{j x_t}$, the row vector
# $\alpha_t = \alpha_{t-1} M_t$, so $\alpha_t = \alpha_0 M_1 M_2 \cdots M_t$ — a prefix product
# of matrices. Matrix products are associative, so lesson 03's scans compute all $\alpha_t$ in
# $O(\log T)$ rounds. In log space the product becomes
#
# $$
# (L_1 \oplus L_2)(i, j) = \log \sum_k \exp\big(L_1(i, k) + L_2(k, j)\big)
# $$
#
# and it needs the same care as the forward step: shift the rows of $L_1$ and the columns of
# $L_2$ by their maxima so that one ordinary matrix product (one BLAS call) does the sum.
#
# ### Exercise 2 — the log-matmul combine
#
# `L1`, `L2` are `(T, K, K)` batches of log-matrices (entries may be $-\infty$, or near $-800$);
# return $L_1 \oplus L_2$ `(T, K, K)`, the earlier operand on the left.

# %% tags=["exercise"]
def log_matmul_combine(L1, L2):
    """(L1 ⊕ L2)[..., i, j] = log Σ_k exp(L1[..., i, k] + L2[..., k, j])."""
    # BEGIN SOLUTION: shift L1's rows and L2's columns by their maxima, matmul, log, shift back
    r = L1.max(axis=-1, keepdims=True)
    c = L2.max(axis=-2, keepdims=True)
    r, c = np.where(np.isfinite(r), r, 0.0), np.where(np.isfinite(c), c, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(L1 - r) @ np.exp(L2 - c)) + r + c
    # END SOLUTION


# %% tags=["check"]
check_log_matmul_combine(log_matmul_combine)

# %% [markdown]
# minirec's own combine is `minirec.scan.reference.log_matmul`. The first element folds in
# $\pi$: $M_0(i, j) = \log \pi_j + \log B_{j x_0}$ for every row $i$, so any row of the prefix
# product is $\log \alpha_t$. Every scan method of lesson 03 gives the sequential answer:

# %%
show(ref.forward_scan)
obs4 = hmm.sample(pi3, A3, B3, 100, rng=np.random.default_rng(3), n=4)[1]
sequential = ref.forward_log(pi3, A3, B3, obs4)
for method in ("sequential", "hillis_steele", "blelloch", "chunked"):
    err = np.abs(ref.forward_scan(pi3, A3, B3, obs4, method=method) - sequential).max()
    print(f"{method:14s} max |scan − loop| < 1e-10: {err < 1e-10}")
    assert err < 1e-10

# %% [markdown]
# The scan does $K^3$ work per combine instead of $K^2$ per step: it pays for parallel depth
# with work, which is a good trade on a GPU with small $K$ and long $T$, and a bad one on two
# CPU cores.
#
# ## Viterbi: the same scan in the (max, +) semiring
#
# The most likely path replaces the sum over the previous state with a max, and keeps the
# arg max as a back-pointer:
#
# $$
# \delta_t(j) = \max_i \big(\delta_{t-1}(i) + \log A_{ij}\big) + \log B_{j x_t}, \qquad \psi_t(j) = \arg\max_i \big(\delta_{t-1}(i) + \log A_{ij}\big)
# $$
#
# The best final state is $z_{T-1} = \arg\max_j \delta_{T-1}(j)$ and the path is read backwards:
# $z_{t-1} = \psi_t(z_t)$.
#
# ### Exercise 3 — the Viterbi backtrack
#
# `backpointers (N, T, K)` holds $\psi_t(j)$ (row $t = 0$ is unused); `last_state (N,)` the best
# final state of each sequence. Return the paths `(N, T)`.

# %% tags=["exercise"]
def viterbi_backtrack(backpointers, last_state):
    """path[:, T−1] = last_state; path[:, t−1] = backpointers[:, t, path[:, t]]."""
    N, T, _ = backpointers.shape
    path = np.empty((N, T), dtype=np.int64)
    # BEGIN SOLUTION: start from last_state and follow the pointers back to t = 0
    path[:, T - 1] = last_state
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = backpointers[np.arange(N), t, path[:, t]]
    # END SOLUTION
    return path


# %% tags=["check"]
check_viterbi_backtrack(viterbi_backtrack)

# %% [markdown]
# The max-plus scan (`minirec.scan.reference.max_plus`) computes every $\delta_t$ in parallel;
# the path then needs no stored pointers: $z_t = \arg\max_i \delta_t(i) + \log A_{i z_{t+1}}$.
# On the paper's chain, the decoded path against the true hidden states:

# %%
states_v, obs_v = hmm.sample(pi, A, B, 500, rng=np.random.default_rng(4), n=4)
path_loop, lp_loop = ref.viterbi(pi, A, B, obs_v)
path_scan, lp_scan = ref.viterbi_scan(pi, A, B, obs_v)
print("scan path == loop path:", bool((path_loop == path_scan).all()),
      "  log-probs equal to 1e-10:", bool(np.abs(lp_loop - lp_scan).max() < 1e-10))
print("fraction of steps where Viterbi recovers the true state:",
      np.round(np.mean(path_loop == states_v), 3))
gamma = hmm.posteriors(pi, A, B, obs_v[0])
print("posterior P(z_t = 1 | x) at t = 0, 100, 200, 300, 400:", gamma[::100, 1].round(3))

# %% [markdown]
# ## EM recovers a planted model
#
# Baum–Welch alternates the posteriors (E-step: expected numbers of starts, transitions and
# emissions under $\gamma$ and $\xi_t(i, j) \propto \alpha_{t-1}(i) A_{ij} B_{j x_t} \beta_t(j)$)
# with normalised counts (M-step). Each iteration can only raise the likelihood. Plant a model,
# sample 20 sequences of 300 symbols, start EM from a random guess:

# %%
planted = (np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]]),
           np.array([[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]]))
train = hmm.sample(*planted, 300, rng=np.random.default_rng(5), n=20)[1]
result = hmm.fit(train, 2, rng=np.random.default_rng(1), n_iter=100, tol=1e-7)
order = np.argsort(result.B[:, 0])[::-1]                 # states are learnt in any order
print(f"{len(result.log_likelihoods) - 1} EM steps; log-likelihood "
      f"{result.log_likelihoods[0]:.1f} → {result.log_likelihoods[-1]:.1f}, never decreasing: "
      f"{bool(np.all(np.diff(result.log_likelihoods) > -1e-9))}")
print("learnt A =\n", result.A[np.ix_(order, order)].round(2), "\nplanted A =\n", planted[1])
print("learnt B =\n", result.B[order].round(2), "\nplanted B =\n", planted[2])
assert np.all(np.diff(result.log_likelihoods) > -1e-9)
print(f"log-likelihood of the planted model itself: {hmm.log_likelihood(*planted, train).sum():.1f}")

# %% [markdown]
# EM only climbs: it finds *a* local maximum, which depends on the start. From some starts it
# stalls on a poor one (try `rng=np.random.default_rng(6)` above); in practice one runs a few
# starts and keeps the best. The learnt parameters fit these 6,000 symbols at least as well as
# the planted ones (compare the last two log-likelihoods), and differ from them by sampling noise.

# %% [markdown]
# ## Fast versions
#
# `minirec.hmm.log_likelihood` and `viterbi` run compiled Numba kernels on NumPy input, batched
# over sequences: the scaled forward pass moves all the sequences of a thread together, one
# small `(n, K) @ (K, K)` matrix product per step, and Viterbi keeps its back-pointers per
# sequence. `hmmlearn` is the library a user would reach for. One small run here (the benchmark
# `benchmarks/bench_hmm_cpu.py` measures the full size, $K = 64$, 16 × 10,000 steps):

# %% tags=["nbval-ignore-output"]
from hmmlearn.hmm import CategoricalHMM  # noqa: E402

K_b, M_b, N_b, T_b = 32, 6, 8, 1000
pi_b, A_b, B_b = ref.random_model(K_b, M_b, rng=np.random.default_rng(7))
obs_b = hmm.sample(pi_b, A_b, B_b, T_b, rng=np.random.default_rng(8), n=N_b)[1]
peer = CategoricalHMM(K_b, n_features=M_b, implementation="scaling")
peer.startprob_, peer.transmat_, peer.emissionprob_ = pi_b, A_b, B_b
X_b, lengths_b = obs_b.reshape(-1, 1), [T_b] * N_b
rows = {
    "hmmlearn score (scaling)": lambda: peer.score(X_b, lengths_b),
    "minirec NumPy reference (log)": lambda: hmm.log_likelihood(pi_b, A_b, B_b, obs_b, backend="numpy"),
    "minirec Numba (scaled)": lambda: hmm.log_likelihood(pi_b, A_b, B_b, obs_b),
    "minirec Torch (log)": lambda: hmm.log_likelihood(pi_b, A_b, B_b, obs_b, backend="torch"),
    "hmmlearn decode (Viterbi)": lambda: peer.decode(X_b, lengths_b),
    "minirec Numba Viterbi": lambda: hmm.viterbi(pi_b, A_b, B_b, obs_b),
}
times = {name: best_time(fn, repeat=2) for name, fn in rows.items()}
print(f"K = {K_b}, {N_b} sequences × T = {T_b}, float64; one run on this machine")
for name, t in times.items():
    peer_t = times["hmmlearn decode (Viterbi)" if "Viterbi" in name else "hmmlearn score (scaling)"]
    print(f"  {name:30s} {1e3 * t:8.1f} ms   {peer_t / t:6.1f}× hmmlearn")

# %%
ll_numba = hmm.log_likelihood(pi_b, A_b, B_b, obs_b)
print("same total log-likelihood as hmmlearn (1e-8 relative):",
      bool(abs(ll_numba.sum() - peer.score(X_b, lengths_b)) < 1e-8 * abs(ll_numba.sum())))
print("same Viterbi paths as hmmlearn:",
      bool((hmm.viterbi(pi_b, A_b, B_b, obs_b)[0].ravel() == peer.decode(X_b, lengths_b)[1]).all()))

# %% [markdown]
# ## The Torch twin
#
# `minirec.hmm.torch_ops` runs the same forward pass on tensors: each step is one batched
# matrix product on $\exp(\log\alpha - m)$, so it is differentiable and the log-likelihood can
# be *maximised by gradient* — a softmax keeps each row a distribution. On a GPU the same code
# runs with the tensors on `cuda` (the time loop stays in Python; the scan form is what would
# remove it).

# %%
obs_t = torch.from_numpy(train)
torch.manual_seed(0)
logits = [torch.zeros(2, dtype=torch.float64, requires_grad=True),
          torch.randn(2, 2, dtype=torch.float64, requires_grad=True),
          torch.randn(2, 3, dtype=torch.float64, requires_grad=True)]
opt = torch.optim.Adam(logits, lr=0.1)
for _ in range(80):
    ll = hmm.log_likelihood(*(torch.softmax(x, -1) for x in logits), obs_t).sum()
    opt.zero_grad()
    (-ll).backward()
    opt.step()
print(f"gradient ascent: log-likelihood {ll.item():.1f}  (EM reached {result.log_likelihoods[-1]:.1f})")
if torch.cuda.is_available():
    on_gpu = hmm.log_likelihood(*(torch.softmax(x, -1).cuda() for x in logits), obs_t.cuda())
    print("on the GPU:", on_gpu.sum().item())
else:
    print("No GPU here: with one, move pi, A, B and obs to 'cuda' and the same call runs there.")

# %% [markdown]
# ## The paper, at toy scale: an RNN that emulates an HMM
#
# Torre et al. train a ReLU RNN with no bias whose only input is Gaussian noise,
#
# $$
# h_t = \operatorname{ReLU}(W_{\text{in}}\, \xi_t + W_{hh}\, h_{t-1}), \quad \xi_t \sim \mathcal{N}(0, I), \qquad y_t = \operatorname{GumbelSoftmax}_{\text{hard}}(W_{\text{out}} h_t)
# $$
#
# so that batches of its one-hot sequences are distributed like the HMM's. There is no per-step
# target (the RNN never sees a hidden state); the loss compares two clouds of sequences. The
# paper uses a Sinkhorn divergence (blur 0.2, batches of 4096); minirec implements it
# (`em.sinkhorn_divergence`) and a Gaussian-kernel MMD (`em.mmd`), which is cheaper and is what
# this toy trains with: 50 units, 10 noise channels, sequences of 20 steps, batches of 128,
# 250 Adam steps. The straight-through Gumbel-softmax lets the gradient pass the hard sample.

# %% tags=["nbval-ignore-output"]
T_rnn, batch = 20, 128
torch.manual_seed(0)
model = em.HMMEmulator(n_symbols=3, hidden=50, d_in=10)
target_rng = np.random.default_rng(10)
t0 = time.perf_counter()
losses = em.train_emulator(model, lambda step: hmm.sample(pi, A, B, T_rnn, rng=target_rng, n=batch)[1],
                           steps=250, batch=batch, T=T_rnn, generator=torch.Generator().manual_seed(0),
                           lr=1e-2, loss="mmd", bandwidths=(1.0, 2.0, 4.0))
print(f"MMD² {np.mean(losses[:10]):.3f} (first 10 steps) → {np.mean(losses[-10:]):.3f} (last 10), "
      f"{time.perf_counter() - t0:.1f} s")
fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.plot(losses)
ax.set(xlabel="step", ylabel="MMD²", title="training the emulator")
plt.show()

# %% [markdown]
# ### Exercise 4 — do two generators emit alike?
#
# The paper's first check is that the RNN "replicates HMM emission statistics": how often each
# symbol appears and how often the symbol changes from one step to the next (the volatility).
# Write `compare_emissions(obs_model, obs_target, n_symbols)` for integer arrays `(N, T)` and
# `(N', T')`: return a dict with `freq_model`, `freq_target` `(M,)` (the fraction of all symbols
# equal to each $m$), `total_variation` ($\tfrac12 \sum_m |p_m - q_m|$), and `switch_model`,
# `switch_target` (the fraction of consecutive pairs *within* a sequence whose symbols differ).

# %% tags=["exercise"]
def compare_emissions(obs_model, obs_target, n_symbols):
    """Symbol frequencies, their total variation distance and the switch rates of two sets."""
    out = {}
    for name, obs_ in (("model", obs_model), ("target", obs_target)):
        # BEGIN SOLUTION: frequencies over all N·T symbols; switches over the N·(T − 1) pairs
        out[f"freq_{name}"] = np.bincount(obs_.ravel(), minlength=n_symbols) / obs_.size
        pairs = obs_[:, 1:] != obs_[:, :-1]
        out[f"switch_{name}"] = float(pairs.mean()) if pairs.size else 0.0
        # END SOLUTION
    # BEGIN SOLUTION: the total variation distance between the two frequency vectors
    out["total_variation"] = 0.5 * np.abs(out["freq_model"] - out["freq_target"]).sum()
    # END SOLUTION
    return out


# %% tags=["check"]
check_compare_emissions(compare_emissions)

# %% [markdown]
# Now with minirec's `ref.compare_emissions`, 500 sequences of 200 steps from the RNN (longer
# than it was trained on) and from the HMM:

# %%
gen = torch.Generator().manual_seed(1)
with torch.no_grad():
    run = em.generate(model, 500, 200, generator=gen)
rnn_obs = run["symbols"].T.numpy()
hmm_obs = hmm.sample(pi, A, B, 200, rng=np.random.default_rng(11), n=500)[1]
stats = ref.compare_emissions(rnn_obs, hmm_obs, 3)
print("symbol frequencies  RNN:", stats["freq_model"].round(2), "  HMM:", stats["freq_target"].round(2))
print(f"total variation distance: {stats['total_variation']:.2f}")
print(f"switch rate          RNN: {stats['switch_model']:.2f}   HMM: {stats['switch_target']:.2f}")
untrained = em.HMMEmulator(n_symbols=3, hidden=50, d_in=10)
with torch.no_grad():
    base = em.generate(untrained, 500, 200, generator=torch.Generator().manual_seed(1))["symbols"].T.numpy()
base_stats = ref.compare_emissions(base, hmm_obs, 3)
print(f"(an untrained RNN: total variation {base_stats['total_variation']:.2f}, "
      f"switch rate {base_stats['switch_model']:.2f})")
closer_freq = stats["total_variation"] < base_stats["total_variation"]
closer_switch = (abs(stats["switch_model"] - stats["switch_target"])
                 < abs(base_stats["switch_model"] - base_stats["switch_target"]))
print("training moved both statistics towards the HMM's:", closer_freq and closer_switch)
assert closer_freq and closer_switch

# %% [markdown]
# ### Without noise: one fixed point
#
# Set $\xi_t = 0$ and start from many random states. The paper finds that the trained networks'
# activity "collapses towards a single fixed point". Without biases, $h = 0$ is always a fixed
# point of $h = \operatorname{ReLU}(W_{hh} h)$; the question is whether every start falls into one
# point, and which:

# %%
h_starts = torch.randn(16, 50, generator=torch.Generator().manual_seed(2))
quiet = em.zero_input_trajectory(model, 300, h_starts)
spread = np.abs(quiet[-1] - quiet[-1].mean(axis=0)).max()
step = np.abs(quiet[-1] - quiet[-2]).max()
print(f"after 300 noiseless steps from 16 random starts: all within 1e-6 of their mean: "
      f"{spread < 1e-6}")
assert spread < 1e-6 and step < 1e-6
print(f"|h*| = {np.linalg.norm(quiet[-1].mean(axis=0)):.2f}, active units at h*: "
      f"{int((quiet[-1].mean(axis=0) > 1e-6).sum())} of 50")
with torch.no_grad():
    p_fixed = torch.softmax(model.readout(torch.from_numpy(quiet[-1].mean(axis=0))), -1).numpy()
print("emission probabilities at the fixed point:", p_fixed.round(2))

# %% [markdown]
# ### With noise: orbits
#
# Driven by noise, trajectories leave the fixed point. The paper projects them on their
# principal components and finds "noise-sustained dynamics along closed orbits", the position
# along the orbit setting which symbol is likely. One long noise-driven run, coloured by the
# emitted symbol:

# %%
with torch.no_grad():
    long_run = em.generate(model, 1, 600, generator=torch.Generator().manual_seed(3))
h_long = long_run["h"][:, 0].numpy()
proj, comps, ratio, _ = em.pca(h_long, 2)
print("variance explained by the first two principal components:", ratio.round(2))
fig, ax = plt.subplots(figsize=(4.5, 3.6))
symbols_long = long_run["symbols"][:, 0].numpy()
ax.plot(proj[:, 0], proj[:, 1], color="0.8", lw=0.5)
for m, colour in zip(range(3), ["tab:blue", "tab:green", "tab:red"], strict=True):
    sel = symbols_long == m
    ax.scatter(proj[sel, 0], proj[sel, 1], s=6, color=colour, label=f"emits {m}")
ax.set(xlabel="PC 1", ylabel="PC 2", title="noise-driven trajectory")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### Kick neurons
#
# The paper finds "a small set of kick neurons initiating transitions". A simple test: for each
# unit, how much it moves at the steps where the emitted symbol switches, relative to all other
# steps (`em.kick_scores`; 1 means nothing special).

# %%
h_runs, sym_runs = run["h"].numpy(), run["symbols"].numpy()
scores = em.kick_scores(h_runs, sym_runs)
ranked = np.argsort(np.nan_to_num(scores, nan=-1.0))[::-1]
print("top 5 units by kick score:", ranked[:5], " scores:", scores[ranked[:5]].round(1))
print(f"median score over the {int(np.isfinite(scores).sum())} units that move: "
      f"{np.nanmedian(scores):.1f}")

# %% [markdown]
# | | the paper (#20) | this toy (numbers printed above) |
# |---|---|---|
# | emission statistics | trained RNNs "replicate HMM emission statistics" | compare the frequencies, the total variation and the switch rates printed above with the untrained network's |
# | no input | activity "collapses towards a single fixed point" | 16 noiseless trajectories end at one point (asserted above); its norm and active units are printed |
# | with noise | "noise-sustained dynamics along closed orbits" | the PCA figure; two components carry the share of variance printed above |
# | mechanism | "a small set of kick neurons" initiates transitions | the top kick scores against the median, printed above |
#
# The honest reading: at this size — 50 units, 250 steps of training on sequences of 20, against
# the paper's batches of 4096 and hundreds of epochs — the toy reproduces the qualitative
# picture only as far as the printed numbers go. Training moves the emission statistics towards
# the HMM's (asserted above), but compare the printed frequencies and switch rates: they are not
# yet the HMM's. The collapse to one fixed point is reproduced; in this bias-free network it is
# the origin, where the readout is uniform. The orbit and kick-neuron structure are suggestive
# at best at 50 units. Training longer, with larger batches or the Sinkhorn loss as the paper
# does, is the first thing to try.
#
# ## Summary
#
# An HMM's likelihood is a sum over $K^T$ paths that the forward algorithm computes in
# $O(TK^2)$; in log space with a max shift, or with per-step scaling, it stays finite for any
# $T$. Each step is a matrix product, so the forward pass is a prefix product — an associative
# scan with the log-matmul combine — and Viterbi is the same scan in the (max, +) semiring. EM
# climbs the likelihood monotonically to a local maximum; compiled kernels batched over
# sequences are timed against `hmmlearn` above (and in `benchmarks/bench_hmm_cpu.py`). A noise-driven ReLU RNN trained with a
# distribution loss learns to emit like an HMM; its noiseless dynamics and its response to noise
# are the objects the paper reverse-engineers.
#
# **Further reading.** E. Torre et al., *Mechanistic Interpretability of RNNs emulating Hidden
# Markov Models* (2025). L. R. Rabiner, *A Tutorial on Hidden Markov Models and Selected
# Applications in Speech Recognition* (1989). S. Särkkä, Á. F. García-Fernández, *Temporal
# Parallelization of Bayesian Smoothers* (2021), the scan form of HMM inference.
