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
# # 09 · Neural memory: Hebbian, delta rule, Titans
#
# By the end of this lesson you will have built a memory that *learns at test time*: a matrix (or
# a small MLP) whose weights are written, token by token, by a step of gradient descent on
# "given this key, return this value". You will write the delta rule, the gradient of a linear
# memory, Titans' momentum-and-forgetting update and its chunked form, and you will measure what
# each memory can recall as the number of writes grows past its size.
#
# **Papers.** #14 Behrouz, Zhong & Mirrokni, *Titans: Learning to Memorize at Test Time* (core);
# #8 *Recoding latent sentence representations* (the contrast: a gradient step on activations,
# not weights); #27 Orhan, *Recognition, recall, and retention of few-shot memories in large
# language models* (a sidebar).
#
# **Builds on:** lesson 01 (recoding's step on a hidden state), lesson 03 (linear recurrences and
# scans: momentum and forgetting are two of them), lesson 04 (causal linear attention, which is
# the Hebbian memory below). **Runs in:** well under a minute on two CPU cores.
#
# **Exercises** (each followed by a check cell that tells you what is wrong):
#
# 1. the delta-rule write;
# 2. the gradient of a linear memory, $2(Mk - v)k^\top$;
# 3. one Titans step: momentum and forgetting;
# 4. one chunk of the chunked update: every gradient at the chunk's start, scans across it.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from minirec import memory
from minirec.cells import reference as cells
from minirec.check.memory import (
    check_delta_rule_write,
    check_linear_memory_grad,
    check_titans_chunk,
    check_titans_step,
)
from minirec.lesson_tools import best_time, show, torch_on_one_thread
from minirec.memory import numba_cpu, torch_ops
from minirec.memory import reference as ref
from minirec.scan.reference import linear_recurrence
from minirec.tasks.streams import random_writes, retrieval_hits, surprise_burst

torch_on_one_thread()      # tiny models: one torch thread fights no one (minirec.lesson_tools)
np.set_printoptions(precision=4, suppress=True)


# %% [markdown]
# ## The question
#
# A recurrent state is a memory of fixed size. Linear attention (lesson 04) makes it a matrix:
# every token adds $v_t k_t^\top$, and a query reads $M q$. Write $n$ random key–value pairs into
# a $d \times d$ matrix and ask for each value back at its key. How many can come back — and which
# ones? When the state is full, does it forget the old, the new, or everything a little?
#
# Titans' answer is to treat the state as the *weights* of a model trained online: each token is a
# training example $(k_t, v_t)$, the write is a gradient step on $\|M(k_t) - v_t\|^2$, with
# momentum (so that a surprising token keeps being written for a while) and weight decay (so
# that old content can fade).
#
# ## Notation
#
# | symbol | shape | meaning |
# |---|---|---|
# | $T$, $d_k$, $d_v$ | | time steps, key size, value size |
# | $k_t$, $q_t$ / $v_t$ | `(d_k,)` / `(d_v,)` | key and query / value of token $t$; a sequence is `(T, d)` |
# | $M$ | `(d_v, d_k)` | a linear memory, $M(x) = Mx$ |
# | $S$ | like $M$ | Titans' momentum ("surprise") |
# | $\theta_t$, $\eta_t$, $\alpha_t$ | scalars per step | step size, momentum decay, forgetting |
# | $y_t$ | `(d_v,)` | what the memory returns for $q_t$ |
#
# The memories, one token at a time (retrieval at step $t$ sees step $t$'s write):
#
# $$
# \text{Hebbian:}\quad M_t = M_{t-1} + v_t k_t^\top \qquad\qquad \text{delta rule:}\quad M_t = M_{t-1} + \theta_t\,(v_t - M_{t-1}k_t)\,k_t^\top
# $$
#
# $$
# \text{Titans:}\quad S_t = \eta_t S_{t-1} - \theta_t \nabla \ell(M_{t-1}; k_t, v_t), \qquad M_t = (1 - \alpha_t) M_{t-1} + S_t, \qquad \ell(M; k, v) = \|M(k) - v\|^2
# $$
#
# and always $y_t = M_t(q_t)$. The Hebbian memory writes the value whatever the memory already
# holds; the delta rule writes only the *error*, what $M$ gets wrong about $k_t$.

# %%
show(ref.hebbian_memory)

# %% [markdown]
# ### Exercise 1 — the delta-rule write
#
# Write one step of the delta rule: `M (d_v, d_k)`, `k (d_k,)`, `v (d_v,)`, `theta` a float.
# The check uses rectangular memories and keys that are not unit vectors.

# %% tags=["exercise"]
def delta_rule_write(M, k, v, theta):
    """M_new = M + θ (v − M k) kᵀ. M (d_v, d_k), k (d_k,), v (d_v,) → (d_v, d_k)."""
    # BEGIN SOLUTION: the error of the memory at k, then the outer-product write
    error = v - M @ k
    return M + theta * np.outer(error, k)
    # END SOLUTION


# %% tags=["check"]
check_delta_rule_write(delta_rule_write)

# %%
show(ref.delta_rule_memory)     # the package's version: your write, once per token

# %% [markdown]
# With a unit key and $\theta = 1$ the write is exact: $M_t k_t = M k_t + (v_t - M k_t)(k_t^\top k_t) = v_t$.
# So the delta rule always recalls its most recent write perfectly, however full the memory is:

# %%
rng = np.random.default_rng(0)
k_demo, v_demo = random_writes(200, 16, rng=rng)             # 200 writes into a 16 × 16 matrix
y_demo, M_demo = memory.delta_rule_memory(k_demo, v_demo, k_demo, theta=1.0, return_state=True)
print(f"max |M_t k_t − v_t| over all 200 steps: {np.abs(y_demo - v_demo).max():.1e}")
print(f"|M_T k_0 − v_0| for the first write:     {np.linalg.norm(M_demo @ k_demo[0] - v_demo[0]):.2f}")
assert np.abs(y_demo - v_demo).max() < 1e-12

# %% [markdown]
# ## The delta rule is gradient descent
#
# For a linear memory the loss $\ell(M) = \|Mk - v\|^2$ has the gradient
#
# $$
# \nabla_M \ell = 2\,(Mk - v)\,k^\top
# $$
#
# so a gradient step $M - \tfrac{\theta}{2} \nabla_M \ell$ is exactly the delta rule. Titans keeps
# the gradient and adds two things around it.
#
# ### Exercise 2 — the linear memory's gradient

# %% tags=["exercise"]
def linear_memory_grad(M, k, v):
    """∇_M ‖M k − v‖². M (d_v, d_k), k (d_k,), v (d_v,) → (d_v, d_k)."""
    # BEGIN SOLUTION: the residual of the memory at k, times kᵀ, times 2
    return 2.0 * np.outer(M @ k - v, k)
    # END SOLUTION


# %% tags=["check"]
check_linear_memory_grad(linear_memory_grad)

# %% [markdown]
# The check compares with `minirec.memory.reference.linear_memory_grad`, which the tests compare
# with `torch.autograd`. Here, one more time, against autograd directly:

# %%
M_t = torch.tensor(rng.normal(size=(3, 5)), requires_grad=True)
k_t, v_t = torch.tensor(rng.normal(size=5)), torch.tensor(rng.normal(size=3))
((M_t @ k_t - v_t) ** 2).sum().backward()
grad_by_hand = ref.linear_memory_grad(M_t.detach().numpy(), k_t.numpy(), v_t.numpy())
print(f"max |2(Mk − v)kᵀ − autograd| = {np.abs(grad_by_hand - M_t.grad.numpy()).max():.1e}")
assert np.allclose(grad_by_hand, M_t.grad.numpy(), rtol=1e-13, atol=1e-15)

# %% [markdown]
# ## Titans: momentum and forgetting
#
# Titans calls the gradient the *momentary surprise* of token $t$: large when the memory
# predicts $v_t$ badly. $S_t$ accumulates it with decay $\eta_t$ (the *past surprise*), and the
# memory decays by $\alpha_t$ before $S_t$ is added. With $\eta = \alpha = 0$ it is the delta rule
# with step $2\theta$:

# %%
k_s, v_s = random_writes(50, 8, rng=rng)
y_delta = memory.delta_rule_memory(k_s, v_s, k_s, theta=0.6)
y_titans = memory.titans_memory(k_s, v_s, k_s, eta=0.0, theta=0.3, alpha=0.0)
print(f"Titans (η = α = 0, θ = 0.3) vs delta rule (θ = 0.6): max diff "
      f"{np.abs(y_delta - y_titans).max():.1e}")
assert np.abs(y_delta - y_titans).max() < 1e-12

# %% [markdown]
# ### Exercise 3 — one Titans step
#
# Given the memory `M` and momentum `S` (both `(d_v, d_k)`), one token `(k, v)` and the three
# gates, return the new `(M, S)`. You may call your `linear_memory_grad`.

# %% tags=["exercise"]
def titans_step(M, S, k, v, eta, theta, alpha):
    """S_new = η S − θ ∇ℓ(M; k, v), M_new = (1 − α) M + S_new → (M_new, S_new)."""
    # BEGIN SOLUTION: momentum first, then the memory with forgetting
    S_new = eta * S - theta * linear_memory_grad(M, k, v)
    M_new = (1.0 - alpha) * M + S_new
    # END SOLUTION
    return M_new, S_new


# %% tags=["check"]
check_titans_step(titans_step)

# %%
show(ref.titans_linear)     # the package's version: your step, once per token

# %% [markdown]
# ## Recall against the number of writes
#
# Now the question from the top. Write $n$ random unit pairs into a $32 \times 32$ memory, then
# query every key against the *final* memory and count a value as recalled when it has the
# largest dot product with the answer among all $n$ values (`retrieval_hits`). "all" is the
# fraction of the $n$ pairs recalled, "recent" the fraction of the last $d/4 = 8$. Five streams per
# $n$.
#
# The Titans columns use $\eta = 0.4$, $\theta = 0.3$: with our loss $\|Mk - v\|^2$ the gradient
# carries a factor 2, so this is the step of 0.6 that the curriculum card quotes for the gradient
# $(Mk - v)k^\top$.

# %%
D = 32
N_WRITES = [32, 64, 128, 256]
MEMORIES = {
    "linear attn (Hebbian)": lambda k, v: memory.hebbian_memory(k, v, k, return_state=True)[1],
    "delta rule θ=1": lambda k, v: memory.delta_rule_memory(k, v, k, theta=1.0,
                                                            return_state=True)[1],
    "Titans η=.4 θ=.3 α=0": lambda k, v: memory.titans_memory(
        k, v, k, eta=0.4, theta=0.3, alpha=0.0, return_state=True)[1][0],
    "Titans α=.02": lambda k, v: memory.titans_memory(
        k, v, k, eta=0.4, theta=0.3, alpha=0.02, return_state=True)[1][0],
}


def recall_table(memories, d=D, n_writes=N_WRITES, trials=5):
    """{name: {n: (all, recent, sd of all, sd of recent)}}: recall of every write and of the last
    d/4 from the final memory, mean and standard deviation over ``trials`` streams."""
    table = {}
    for name, write in memories.items():
        table[name] = {}
        for n in n_writes:
            all_, recent = [], []
            for trial in range(trials):
                k, v = random_writes(n, d, rng=np.random.default_rng(1000 * n + trial))
                hits = retrieval_hits(k @ write(k, v).T, v)
                all_.append(hits.mean())
                recent.append(hits[-d // 4:].mean())
            table[name][n] = (np.mean(all_), np.mean(recent), np.std(all_), np.std(recent))
    return table


recall = recall_table(MEMORIES)
print(f"{'n':>4}  " + "  ".join(f"{name:>22s}" for name in MEMORIES))
print(f"{'':>4}  " + "  ".join(f"{'all / recent':>22s}" for _ in MEMORIES))
for n in N_WRITES:
    print(f"{n:4d}  " + "  ".join(f"{recall[name][n][0]:>13.2f} / {recall[name][n][1]:4.2f}"
                                  for name in MEMORIES))
spread = np.array([recall[name][n][2:] for name in MEMORIES for n in N_WRITES])
print(f"largest standard deviation over the 5 streams: all {spread[:, 0].max():.2f}, "
      f"recent {spread[:, 1].max():.2f}")

# %%
hebb, delta = recall["linear attn (Hebbian)"], recall["delta rule θ=1"]
titans, forgetful = recall["Titans η=.4 θ=.3 α=0"], recall["Titans α=.02"]
assert all(delta[n][1] == 1.0 for n in N_WRITES)            # recent recall 1.0 up to n = 8d
assert hebb[4 * D][0] < 0.5                                  # linear attention, n = 4d: < half
assert hebb[D][0] > 0.95 and hebb[D][0] > delta[D][0]        # ... but best while n ≤ d
assert all(np.diff([hebb[n][0] for n in N_WRITES]) < 0)      # Hebbian: degrades step by step,
assert all(hebb[n][1] < hebb[n][0] + 0.1 for n in N_WRITES)  # the recent no better than the old
assert all(delta[n][1] - delta[n][0] > 0.5 for n in N_WRITES[1:])   # delta rule: recency-ordered
assert all(abs(titans[n][0] - delta[n][0]) < 0.05 for n in N_WRITES)  # Titans η=.4 ≈ delta rule
assert all(forgetful[n][0] < titans[n][0] and forgetful[n][1] == titans[n][1] for n in N_WRITES)

fig, ax = plt.subplots(figsize=(5.5, 3.2))
for name in MEMORIES:
    ax.plot(N_WRITES, [recall[name][n][0] for n in N_WRITES], "o-", label=f"{name}: all")
ax.plot(N_WRITES, [delta[n][1] for n in N_WRITES], "k--", label="delta rule: recent 8")
ax.set(xscale="log", xlabel="writes n (d = 32)", ylabel="recall", ylim=(0, 1.05))
ax.set_xticks(N_WRITES, [str(n) for n in N_WRITES])
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# Two ways of being full. The Hebbian memory recalls almost everything while $n \le d$ (random
# unit keys are nearly orthogonal) and then degrades gradually and *evenly*: every value is summed
# into every answer, so the recent writes drown as much as the old ones (its "recent" column is
# no better than "all"). The delta rule writes the error, so
# each write overwrites what was stored along $k_t$: the recent writes stay perfect and the old
# ones are pushed out — a recency-ordered memory. Titans with $\eta = 0.4$, $\theta = 0.3$ nearly
# matches the delta rule: its momentum sums steps of $2\theta$ with weights $1, \eta, \eta^2, \dots$,
# a total step of $2\theta / (1 - \eta) = 1$, the delta rule's $\theta$ (within 0.05 at every $n$).
# Forgetting ($\alpha = 0.02$) trades a little more of the past for nothing on this stream: lower
# "all", the same "recent".
#
# ## Momentum: the surprise-burst stream
#
# Momentum is for streams with structure. Titans' argument: a surprising token has a large
# gradient; the tokens that follow it are less surprising once the memory starts to absorb it, so
# the momentary surprise alone stops writing too early, and momentum keeps writing "what followed
# the surprise". A token can only surprise a memory that predicts something, so the stream starts
# with 4 *familiar* pairs repeated 16 times, which the memory learns; then a *novel* pair and a
# burst of 16 pairs whose keys and values have cosine 0.9 with it (`surprise_burst`); then the
# familiar pairs 4 times more. We track the momentary surprise $\|\nabla\ell_t\|$, the past
# surprise $\|S_t\|$ and the novel pair's error $\|M_t k^* - v^*\|$, with a small step
# $\theta = 0.05$, over 20 streams.
#
# Momentum also sums its gradients with weights $1, \eta, \eta^2, \dots$: a total step of
# $\theta/(1 - \eta)$. The **ablation** removes the momentum and nothing else: $\eta = 0$ with
# that total step, $\theta = 0.1$ for $\eta = 0.5$ and $\theta = 0.25$ for $\eta = 0.8$.

# %%
def familiar_then_burst(rng, n_familiar=4, repeats=16, burst_len=16, d=D):
    """``n_familiar`` random pairs repeated ``repeats`` times, a novel pair and a burst of
    ``burst_len`` pairs correlated with it (``surprise_burst``), then the familiar pairs 4 times
    more. Returns ``k, v (T, d)``, the novel pair's index and the burst's slice."""
    k_familiar, v_familiar = random_writes(n_familiar, d, rng=rng)
    surprise = surprise_burst(0, burst_len, 0, d, rng=rng, similarity=0.9)   # novel + burst
    k = np.concatenate([np.tile(k_familiar, (repeats, 1)), surprise.k, np.tile(k_familiar, (4, 1))])
    v = np.concatenate([np.tile(v_familiar, (repeats, 1)), surprise.v, np.tile(v_familiar, (4, 1))])
    novel = n_familiar * repeats
    return k, v, novel, slice(novel + 1, novel + 1 + burst_len)


def surprise_trace(k, v, eta, theta, probe):
    """Titans token by token (α = 0) on ``k, v (T, d)``. Returns ``(3, T)``: per step the
    momentary surprise ‖∇ℓ_t‖, the past surprise ‖S_t‖ and the error ‖M_t k* − v*‖ on the pair
    ``probe = (k*, v*)``."""
    M = np.zeros((v.shape[1], k.shape[1]))
    S = np.zeros_like(M)
    k_star, v_star = probe
    trace = []
    for t in range(k.shape[0]):
        G = ref.linear_memory_grad(M, k[t], v[t])                   # ∇ℓ(M_{t−1}; k_t, v_t)
        S = eta * S - theta * G                                      # S_t = η S_{t−1} − θ ∇ℓ
        M = M + S                                                    # M_t = M_{t−1} + S_t
        trace.append((np.linalg.norm(G), np.linalg.norm(S), np.linalg.norm(M @ k_star - v_star)))
    return np.array(trace).T


THETA = 0.05
BURST_RUNS = {"η = 0": (0.0, THETA), "η = 0.5": (0.5, THETA), "η = 0.8": (0.8, THETA),
              "η = 0, θ = 0.1": (0.0, THETA / (1 - 0.5)), "η = 0, θ = 0.25": (0.0, THETA / (1 - 0.8))}
ABLATION_OF = {"η = 0.5": "η = 0, θ = 0.1", "η = 0.8": "η = 0, θ = 0.25"}
BURST_COLUMNS = ("‖∇ℓ‖ familiar", "‖∇ℓ‖ novel", "‖∇ℓ‖ end/novel", "‖S‖ end/novel",
                 "error, burst end", "error, stream end")
burst_rows = {name: [] for name in BURST_RUNS}
traces = {}
for trial in range(20):
    k, v, novel, burst = familiar_then_burst(np.random.default_rng(trial))
    end = burst.stop - 1                                             # the burst's last token
    for name, (eta, theta) in BURST_RUNS.items():
        grad, past, error = surprise_trace(k, v, eta, theta, probe=(k[novel], v[novel]))
        burst_rows[name].append((grad[novel - 8:novel].mean(), grad[novel], grad[end] / grad[novel],
                                 past[end] / past[novel], error[end], error[-1]))
        if trial == 0:
            traces[name] = (grad, past, error, novel, burst)
burst_rows = {name: np.array(rows) for name, rows in burst_rows.items()}       # (streams, columns)

print(f"{'mean ± sd, 20 streams':>22s} " + " ".join(f"{c:>17s}" for c in BURST_COLUMNS))
for name, rows in burst_rows.items():
    print(f"{name:>22s} " + " ".join(f"{f'{m:.2f} ± {s:.2f}':>17s}"
                                     for m, s in zip(rows.mean(0), rows.std(0), strict=True)))
wins = {(eta_name, when): int(np.sum(burst_rows[eta_name][:, col] < burst_rows[ablation][:, col]))
        for eta_name, ablation in ABLATION_OF.items()
        for when, col in (("burst end", 4), ("stream end", 5))}
for (eta_name, when), n_wins in wins.items():
    print(f"{eta_name}: a smaller novel-pair error than its ablation at the {when} in {n_wins} of 20 streams")

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharex=True)
for name, style in [("η = 0", "-"), ("η = 0.5", "-"), ("η = 0.8", "-"), ("η = 0, θ = 0.25", "--")]:
    for ax, series in zip(axes, traces[name][:3], strict=True):
        ax.plot(series, style, label=name)
_, _, _, novel, burst = traces["η = 0"]
for ax, title in zip(axes, ["momentary surprise ‖∇ℓ_t‖", "past surprise ‖S_t‖",
                            "novel pair's error ‖M_t k* − v*‖"], strict=True):
    ax.axvspan(novel, burst.stop, color="0.9")
    ax.set(title=title, xlabel="token t")
axes[0].set_yscale("log")
axes[1].set_yscale("log")
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()
mean = {name: rows.mean(axis=0) for name, rows in burst_rows.items()}
assert all((rows[:, 1] > 2 * rows[:, 0]).all() for rows in burst_rows.values())  # a surprise
assert all(m[2] < 0.75 for m in mean.values())                       # ... absorbed in the burst
for eta_name, ablation in ABLATION_OF.items():
    assert mean[eta_name][3] > mean[ablation][3]                     # momentum keeps writing
assert mean["η = 0.8"][3] > mean["η = 0, θ = 0.25"][3] + 0.2
assert wins["η = 0.5", "burst end"] >= 15 and wins["η = 0.8", "burst end"] >= 15
assert wins["η = 0.5", "stream end"] >= 15 and wins["η = 0.8", "stream end"] == 0

# %% [markdown]
# The novel token is a surprise in every stream: its gradient is several times the familiar
# tokens' (first two columns; in the figure, one stream: the first 64 tokens are the familiar
# pairs being learned, shaded are the novel token and the burst), and the momentary surprise
# falls through the burst as the memory absorbs it (third column). Without
# momentum the write falls with it — for $\eta = 0$, $S_t = -\theta\nabla\ell_t$, so the third and
# fourth columns are equal. With momentum the past surprise $\|S_t\|$ outlasts the momentary one:
# with $\eta = 0.8$ it is still most of its peak at the burst's last token, so the memory keeps
# writing the novel direction after the surprise has passed. That is the mechanism Titans
# describes, and the toy shows it.
#
# Does it store the novel pair better? At the end of the burst, yes, a little: both momenta leave
# a smaller error than their ablations in most streams (the counts printed above). By the end of
# the stream it depends on $\eta$: $\eta = 0.5$ keeps its lead, while with $\eta = 0.8$ the error
# climbs again after the burst (right panel) and ends larger than without momentum, in every one
# of the 20 streams: momentum that keeps writing through a burst also keeps moving after it. The paper's claim is
# about trained, data-dependent gates inside a language model; a fixed $\eta$ on a toy stream
# shows the mechanism, not a tuned benefit.
#
# ## Forgetting
#
# $\alpha_t$ shrinks the whole memory every step. On a stream of random writes it can only cost:
# the delta rule already makes room along each new key, and decay erases the rest. Recall by the
# age of the write (0 = the last one), 256 writes, $\theta = 0.25$, $\eta = 0$:

# %%
AGES = [(0, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256)]
ALPHAS = [0.0, 0.01, 0.05, 0.2]
by_age = {}
for alpha in ALPHAS:
    hits = []
    for trial in range(5):
        k, v = random_writes(256, D, rng=np.random.default_rng(trial))
        M_f = memory.titans_memory(k, v, k, eta=0.0, theta=0.25, alpha=alpha,
                                   return_state=True)[1][0]
        hits.append(retrieval_hits(k @ M_f.T, v)[::-1])     # age 0 first
    h = np.mean(hits, axis=0)
    by_age[alpha] = [h[a:b].mean() for a, b in AGES]
print(f"{'age of the write':>18s} " + " ".join(f"{f'{a}–{b - 1}':>8s}" for a, b in AGES))
for alpha in ALPHAS:
    print(f"{f'α = {alpha}':>18s} " + " ".join(f"{x:8.2f}" for x in by_age[alpha]))
for less, more in zip(ALPHAS, ALPHAS[1:]):
    assert all(b <= a + 0.01 for a, b in zip(by_age[less], by_age[more], strict=True))  # at every
    # age, up to chance hits (an argmax over 256 values is right 1/256 of the time by luck)


def recall_at_age(alpha, age):
    """Recall of the age bucket that holds ``age`` (0 = the last write)."""
    return next(x for (lo, hi), x in zip(AGES, by_age[alpha], strict=True) if lo <= age < hi)


for alpha in (0.05, 0.2):                                    # 1/α shorter than the memory's reach
    assert recall_at_age(alpha, 1 / (2 * alpha)) >= 0.5 > recall_at_age(alpha, 2 / alpha)

# %% [markdown]
# More forgetting costs recall at every age (down every column, recall never rises with
# $\alpha$, beyond the chance hits of an argmax over 256 values), and it shortens the memory's
# horizon to roughly $1/\alpha$ writes: for $\alpha = 0.05$ and $0.2$, whose $1/\alpha$ is shorter
# than what the memory holds without forgetting, recall is above one half at age $1/(2\alpha)$
# and below it at $2/\alpha$ (asserted). Titans makes $\alpha_t$ a function of the token, so that
# a model can clear the memory at a boundary (a new document) and
# keep it otherwise; with one fixed $\alpha$ on random writes we only see the cost.
#
# ## Chunked updates as scans
#
# The per-token update is a loop over $T$ steps, each depending on the last through
# $\nabla\ell(M_{t-1})$. Titans' way to parallelise it is *mini-batch gradient descent*: split the
# sequence into chunks of $C$ tokens and take every gradient of a chunk against the memory at the
# chunk's start, $M_{t_0 - 1}$. Then nothing in the chunk depends on the chunk's own updates except
# through two **linear recurrences**, exactly lesson 03's $h_t = a_t h_{t-1} + b_t$:
#
# $$
# G_t = \nabla\ell(M_{t_0-1}; k_t, v_t), \qquad S_t = \eta_t S_{t-1} - \theta_t G_t, \qquad M_t = (1 - \alpha_t) M_{t-1} + S_t
# $$
#
# the first with decay $\eta$ and input $-\theta G$, the second with decay $1 - \alpha$ and input
# $S$. Both run with lesson 03's `linear_recurrence`; write the chunk first, then compare it with
# the package's version below its check.

# %% [markdown]
# ### Exercise 4 — one chunk
#
# `M, S (d_v, d_k)` are the memory and momentum before the chunk; `k, q (C, d_k)`, `v (C, d_v)`,
# gates `(C,)`. Return `(y (C, d_v), M_new, S_new)`. Use `linear_recurrence(a, b, h0)` (imported
# above from `minirec.scan.reference`): `a (C, 1, 1)` broadcasts against `b (C, d_v, d_k)`.

# %% tags=["exercise"]
def titans_chunk(M, S, k, v, q, eta, theta, alpha):
    """One chunk of Titans' chunked update → (y (C, d_v), M_new, S_new)."""
    C = k.shape[0]
    # BEGIN SOLUTION: the C gradients at M, then the momentum scan and the memory scan; read out y
    G = 2.0 * (k @ M.T - v)[:, :, None] * k[:, None, :]         # (C, d_v, d_k), all at M
    S_all = linear_recurrence(eta.reshape(C, 1, 1), -theta.reshape(C, 1, 1) * G, S)
    M_all = linear_recurrence((1.0 - alpha).reshape(C, 1, 1), S_all, M)
    y = np.einsum("tij,tj->ti", M_all, q)
    return y, M_all[-1], S_all[-1]
    # END SOLUTION


# %% tags=["check"]
check_titans_chunk(titans_chunk)

# %%
show(ref.titans_chunked)     # the package's version, for any memory whose parameters are a dict

# %% [markdown]
# With $C = 1$ the chunked form *is* the per-token form. For $C > 1$ it is a different algorithm,
# equal to the per-token one only when each key is orthogonal to what the chunk has already
# changed in the memory, $(M_{t-1} - M_{t_0-1})\,k_t = 0$ — for instance with mutually
# orthogonal keys (so $T \le d_k$) written into an empty memory. On random keys it differs, and
# recall changes with $C$:

# %%
T_c, d_c = 24, 32
k_o = np.linalg.qr(rng.normal(size=(d_c, d_c)))[0][:T_c]            # orthonormal keys
v_o, q_o = rng.normal(size=(T_c, d_c)), rng.normal(size=(T_c, d_c))
gates = dict(eta=0.6, theta=0.4, alpha=0.05)
y_tok = memory.titans_memory(k_o, v_o, q_o, **gates)
for C in [1, 4, 8]:
    diff = np.abs(memory.titans_memory(k_o, v_o, q_o, chunk_size=C, **gates) - y_tok).max()
    print(f"orthogonal keys, empty memory, C = {C}: max |chunked − per-token| = {diff:.1e}")
    assert diff < 1e-12
k_r, v_r = random_writes(T_c, d_c, rng=rng)
diff = np.abs(memory.titans_memory(k_r, v_r, k_r, chunk_size=8, **gates)
              - memory.titans_memory(k_r, v_r, k_r, **gates)).max()
print(f"random keys, C = 8: max |chunked − per-token| = {diff:.3f}")
assert diff > 1e-3

# %%
CHUNKS = [1, 4, 16, 64]
chunk_recall = {}
for C in CHUNKS:
    accs = []
    for trial in range(5):
        k, v = random_writes(128, D, rng=np.random.default_rng(trial))
        M_c = memory.titans_memory(k, v, k, eta=0.4, theta=0.3, alpha=0.0, chunk_size=C,
                                   return_state=True)[1][0]
        hits = retrieval_hits(k @ M_c.T, v)
        accs.append((hits.mean(), hits[-D // 4:].mean()))
    chunk_recall[C] = np.mean(accs, axis=0)
print("Titans η=.4 θ=.3, 128 writes, d = 32: recall by chunk size")
for C in CHUNKS:
    print(f"  C = {C:3d}: all {chunk_recall[C][0]:.2f}   recent {chunk_recall[C][1]:.2f}")
recent_by_chunk = [chunk_recall[C][1] for C in CHUNKS]
assert chunk_recall[1][1] == 1.0 and np.all(np.diff(recent_by_chunk) <= 0)   # larger C, worse
assert recent_by_chunk[-1] < 0.5

# %% [markdown]
# Within a chunk the memory cannot see its own writes, so the chunk's tokens are written as if
# into the memory before it: a recent write that a later key of the same chunk overlaps is no
# longer corrected. The larger $C$, the more the recall of the *recent* writes suffers (table).
# The paper trains with chunks for speed, and pays this price inside each chunk.
#
# ### Fast versions
#
# `minirec.memory.numba_cpu` compiles the per-token loop (one fused pass over $M$ and $S$ per
# token). `minirec.memory.torch_ops` has the per-token loop and the chunked form, in which the two
# scans are unrolled into $(C, C)$ matrices of products of gates — computed by `minirec.scan`'s
# linear recurrence — so that a chunk is a handful of matrix products. One run on this machine,
# $T = 1024$, $d = 64$, float32:

# %% tags=["nbval-ignore-output"]
T_b, d_b = 1024, 64
k_b, v_b = (x.astype(np.float32) for x in random_writes(T_b, d_b, rng=rng))
g_b = [np.full(T_b, x, np.float32) for x in (0.9, 0.05, 0.01)]
kt_b, vt_b, *gt_b = (torch.from_numpy(x) for x in (k_b, v_b, *g_b))
with torch.no_grad():
    timings = {
        "NumPy reference, per token": best_time(lambda: ref.titans_linear(k_b, v_b, k_b, *g_b), 1),
        "Numba, per token": best_time(lambda: numba_cpu.titans_linear(k_b, v_b, k_b, *g_b)),
        "Torch loop, per token": best_time(lambda: torch_ops.titans_linear(kt_b, vt_b, kt_b,
                                                                           *gt_b), 1),
        "Torch chunked, C = 64": best_time(lambda: torch_ops.titans_linear_chunked(
            kt_b, vt_b, kt_b, *gt_b, 64)),
    }
for name, seconds in timings.items():
    print(f"  {name:28s} {1e3 * seconds:8.1f} ms   "
          f"{timings['NumPy reference, per token'] / seconds:6.1f}× the reference")
print("(benchmarks/bench_memory_cpu.py measures these at T = 8192 with the goals)")

# %% [markdown]
# ## The MLP memory and the Torch twin
#
# Nothing above needs the memory to be linear: any differentiable $M(\cdot)$ works, with its own
# gradient. `memory="mlp"` uses $M(x) = W_2\,\mathrm{gelu}(W_1 x)$ with $4d$ hidden units. In
# NumPy the per-token gradients are written out; in Torch they come from `torch.func`:
# `vmap(grad(loss))` over the tokens of a chunk, all against the chunk's first weights.

# %%
show(torch_ops.titans_mlp)

# %%
d_m = 16
k_m, v_m = random_writes(32, d_m, rng=np.random.default_rng(5))
y_np = memory.titans_memory(k_m, v_m, k_m, eta=0.3, theta=0.1, alpha=0.0, memory="mlp",
                            chunk_size=4, backend="numpy")
y_torch = memory.titans_memory(torch.from_numpy(k_m), torch.from_numpy(v_m),
                               torch.from_numpy(k_m), eta=0.3, theta=0.1, alpha=0.0,
                               memory="mlp", chunk_size=4)
print(f"MLP memory, NumPy (hand-written gradients) vs Torch (vmap of grad): "
      f"max diff {np.abs(y_np - y_torch.numpy()).max():.1e}")
assert np.abs(y_np - y_torch.numpy()).max() < 1e-10

# %% [markdown]
# Does a deeper memory hold more? Recall of $n$ writes into a $d = 16$ memory, one pass, from the
# final weights (the MLP's step $\theta$ chosen from 0.05, 0.1, 0.2 for this printout; the linear
# memory with $\theta = 0.5$, the delta rule's exact write):

# %%
def final_recall(k, v, mem, theta):
    _, (params, _) = memory.titans_memory(k, v, k, eta=0.0, theta=theta, alpha=0.0, memory=mem,
                                          return_state=True, backend="numpy")
    out = k @ params.T if mem == "linear" else ref.gelu(k @ params["W1"].T) @ params["W2"].T
    return retrieval_hits(out, v).mean()


mlp_rows = {}
for n in [16, 32, 64, 128]:
    streams = [random_writes(n, d_m, rng=np.random.default_rng(100 + s)) for s in range(3)]
    mlp_rows[n] = {(mem, th): np.mean([final_recall(k, v, mem, th) for k, v in streams])
                   for mem, th in [("linear", 0.5), ("mlp", 0.05), ("mlp", 0.1), ("mlp", 0.2)]}
print(f"{'n':>4} {'linear (256 weights)':>21s} " + " ".join(f"{f'MLP θ={th}':>10s}"
                                                           for th in (0.05, 0.1, 0.2)))
for n, row in mlp_rows.items():
    print(f"{n:4d} {row[('linear', 0.5)]:21.2f} "
          + " ".join(f"{row[('mlp', th)]:10.2f}" for th in (0.05, 0.1, 0.2)))
print(f"the MLP has {2 * d_m * 4 * d_m} weights")
assert all(row[("mlp", 0.2)] > row[("linear", 0.5)] > row[("mlp", 0.05)] for row in mlp_rows.values())

# %% [markdown]
# The MLP has 8× the linear memory's weights. Whether one pass of online gradient steps turns
# that into more recall depends on its step size, as the table shows (here the largest step wins
# at every $n$ and the smallest loses): the linear memory's exact
# write has no counterpart for an MLP, where a step that is too small stores little and one that
# is too large disturbs the other writes. Titans learns $\theta_t$ (and $\eta_t$, $\alpha_t$) from
# data; that is the job of the Torch layer below.
#
# `TitansMemory` is that layer: keys, values and queries are projections of the input, the three
# gates are sigmoids of another projection (θ scaled by `max_lr`), and the memory runs the
# chunked form. Everything is differentiable, so an outer loop can train the projections and
# gates *through* the test-time writes; on a GPU the same code runs with the tensors on `cuda`
# (the scans then use `minirec.scan`'s chunked Torch form).

# %%
torch.manual_seed(0)
layer = torch_ops.TitansMemory(d_model=12, d_k=8, d_v=8, chunk_size=4).double()
x_seq = torch.randn(32, 12, dtype=torch.float64)
y_seq = layer(x_seq)
y_seq.pow(2).mean().backward()
print(f"output {tuple(y_seq.shape)}; gradient norms: "
      + ", ".join(f"{name} {p.grad.norm():.3f}" for name, p in layer.named_parameters()))
if torch.cuda.is_available():
    y_gpu = layer.cuda()(x_seq.cuda())
    print("on the GPU: max diff", float((y_gpu.cpu() - y_seq.detach()).abs().max()))
else:
    print("no GPU here: with one, layer.cuda()(x.cuda()) runs the same chunked form on the device")

# %% [markdown]
# ## Contrast: recoding (#8) changes the state, not the weights
#
# Lesson 01's recoding also takes a gradient step at test time, on the *surprisal* of the next
# token, but with respect to the hidden state $h$: $h \leftarrow h - \alpha\,\nabla_h \delta$. The
# weights $W_\text{out}$ do not move; the correction lives in this one state and is gone once the
# RNN moves on (it only reaches later steps through the recurrence). Titans' step is with respect
# to the memory's *weights*, which every later query reads.

# %%
h_r = rng.normal(size=(1, 8))
W_out, b_out = rng.normal(size=(5, 8)), np.zeros(5)
target = np.array([3])
W_before = W_out.copy()
before = cells.surprisal(h_r, W_out, b_out, target)[0]
h_new = cells.recoding_step(h_r, W_out, b_out, target, alpha=0.5)
after = cells.surprisal(h_new, W_out, b_out, target)[0]
print(f"recoding: surprisal {before:.3f} → {after:.3f}; |Δh| = {np.linalg.norm(h_new - h_r):.3f}; "
      f"weights changed: {not np.array_equal(W_out, W_before)}")
assert after < before and np.array_equal(W_out, W_before)

# %% [markdown]
# The paper (#8) found recoding gave "only minor improvements over the baseline" in language
# modelling. The two ideas share the step, not the storage: recoding repairs one representation,
# a neural memory accumulates a model of the whole stream.
#
# ## Sidebar: recognition, recall, retention (#27)
#
# Orhan (#27) studies what a language model remembers of examples seen a few times during
# training: recognising a seen example is near-perfect after one exposure, recall needs about
# three, and recall drops steeply over the next ~10 updates on other data while recognition
# persists. A delta-rule memory is a tiny, transparent version of "learning by gradient steps":
# write 16 pairs `e` times each ($\theta = 0.25$, interleaved, $d = 64$), then keep writing random
# pairs. *Recall* stands in for "exact continuation": the memory returns the stored value to
# within $\|Mk - v\| < 0.6$ (values have norm 1; a threshold we chose). *Recognition*: a studied
# key gets a larger response $\|Mk\|$ than an unseen key (the fraction of studied/unseen pairs
# ordered right, 0.5 is chance).

# %%
def retention(exposures, later_writes, d=64, n_study=16, theta=0.25, trials=5):
    """(recall, recognition) of n_study pairs after `exposures` passes and later writes."""
    recall_, recog_ = [], []
    for trial in range(trials):
        r = np.random.default_rng(trial)
        k_st, v_st = random_writes(n_study, d, rng=r)
        k_new, v_new = random_writes(later_writes, d, rng=r)
        k_unseen, _ = random_writes(n_study, d, rng=r)
        k_all = np.concatenate([np.tile(k_st, (exposures, 1)), k_new])
        v_all = np.concatenate([np.tile(v_st, (exposures, 1)), v_new])
        _, M_r = memory.delta_rule_memory(k_all, v_all, k_all, theta=theta, return_state=True)
        recall_.append((np.linalg.norm(k_st @ M_r.T - v_st, axis=1) < 0.6).mean())
        seen = np.linalg.norm(k_st @ M_r.T, axis=1)
        unseen = np.linalg.norm(k_unseen @ M_r.T, axis=1)
        recog_.append((seen[:, None] > unseen[None, :]).mean())
    return np.mean(recall_), np.mean(recog_)


LATER = [0, 5, 10, 20, 50, 100]
print(f"{'exposures':>9s} {'':>11s} " + " ".join(f"{u:>6d}" for u in LATER)
      + "   ← later writes")
retained = {}
for e in [1, 2, 3]:
    retained[e] = [retention(e, u) for u in LATER]
    print(f"{e:9d} {'recall':>11s} " + " ".join(f"{r[0]:6.2f}" for r in retained[e]))
    print(f"{'':9s} {'recognition':>11s} " + " ".join(f"{r[1]:6.2f}" for r in retained[e]))
assert retained[1][0][1] > 0.9 and retained[1][0][0] < 0.5     # one exposure: recognised only
assert retained[3][0][0] > 0.9                                   # three: recalled
assert retained[3][-1][0] < 0.5 < retained[3][-1][1]             # later writes: recall goes first
assert retained[3][LATER.index(20)][0] > 0.9                    # ... but only after tens of writes

# %% [markdown]
# The same ordering as the paper's, in the rows above: one exposure is enough to *recognise* the
# studied keys, *recall* needs the third exposure, and later writes erode recall long before
# recognition. The decay here takes tens of writes rather than the paper's first ~10 updates, and
# the threshold is ours: it is a 64 × 64 matrix and a linear rule, not a language model, so the
# agreement is in kind, not in numbers.
#
# ## The papers and this toy
#
# | | the paper | this toy | verdict |
# |---|---|---|---|
# | #14 Titans: the write is a gradient step | a memory "that learns to memorize at test time" on $\|M(k) - v\|^2$ | the delta rule is that step; Titans with $\eta = 0.4$ recalls within 0.05 of the delta rule at every $n$ and keeps its recency order, where the Hebbian write degrades evenly (recall table) | reproduced (asserted) |
# | #14 Titans: momentum over surprise | the momentary surprise alone misses what follows a surprise; the past surprise keeps writing | the novel token's gradient is a peak; $\|S_t\|$ outlasts it through the burst (at $\eta = 0.8$ most of its peak at the burst's end, half without momentum); against the ablation with the same total step the novel pair is stored a little better at the burst's end, but with $\eta = 0.8$ worse by the stream's end | the mechanism reproduced; the benefit partly (asserted) |
# | #14 Titans: forgetting, chunks, scale | data-dependent forgetting; chunked training for speed; better than Transformers and linear RNNs on language modelling, needle-in-haystack beyond 2M tokens | fixed gates and no outer training: a fixed $\alpha$ only costs on random writes (horizon $\approx 1/\alpha$), and chunking trades recent recall for parallelism | the costs shown (asserted); the benefits need trained gates: not reproduced |
# | #8 Recoding: gradient steps on activations | "only minor improvements over the baseline" | one step lowers the surprisal of the target while the weights stay fixed — nothing is stored for later | the mechanism only (asserted); no language model measured |
# | #27 Few-shot memories | recognition near-perfect after one exposure; recall needs ~3; recall drops steeply over the first ~10 later updates | the same ordering in a delta-rule memory (table above): recognition after one exposure and robust, recall after three, then eroded by later writes — over tens of writes, not ~10 | partly: the ordering (asserted), not the time scale |
#
# ## Summary
#
# A memory can be a set of weights trained while the sequence is read. The Hebbian write (linear
# attention) adds every value and, once it holds more than $d$ pairs, degrades gradually and
# evenly over old and recent writes; the delta rule writes only the error, which is a gradient
# step on $\|Mk - v\|^2$, and keeps the recent writes exact. Titans adds momentum (a linear
# recurrence over gradients, which keeps writing after a surprise has passed) and forgetting (a
# second one over the memory), so its chunked form — every gradient of a chunk at the chunk's first
# memory — is two scans plus matrix products, at the price of a different, mini-batch update.
# Any differentiable memory works, an MLP included, with per-token gradients from `vmap(grad)`.
#
# **Further reading.** A. Behrouz, P. Zhong, V. Mirrokni, *Titans: Learning to Memorize at Test
# Time* (2024). *Recoding latent sentence representations — Dynamic gradient-based activation
# modification in RNNs*, D. Ulmer. A. E. Orhan, *Recognition, recall, and retention of few-shot
# memories in large language models* (2023). I. Schlag, K. Irie, J. Schmidhuber, *Linear
# Transformers Are Secretly Fast Weight Programmers* (2021).
