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
# # 03 · Scans: from the loop to parallel prefix combines
#
# By the end of this lesson you will be able to turn a recurrence into a *scan* — a running
# combine with an associative operator — and compute it in a number of parallel rounds that grows
# like $\log T$ instead of $T$. You will count the work and the depth of three scans (the loop,
# Hillis–Steele, Blelloch), see that associativity is the one property a parallel scan needs,
# write the affine combine that turns the linear recurrence $h_t = a_t h_{t-1} + b_t$ into a
# scan, derive its gradient (another linear recurrence, run backwards in time), watch the
# textbook closed form break in floating point and log space repair it, fix up a chunked scan,
# and time the same recurrence in Numba and in PyTorch.
#
# **Papers.** #18 *You Only Scan Once: Efficient Multi-dimension Sequential Modeling with
# LightNet* (its additive recurrence is a log-sum-exp scan, and its claim about scan order is
# tested at the end); #20 *Mechanistic Interpretability of RNNs emulating Hidden Markov Models*
# (the HMM forward pass, which lesson 10 builds on, is a scan of log matrices).
#
# **Builds on:** lesson 01 (backpropagation through time). **Runs in:** well under a minute on
# two CPU cores.
#
# **Exercises** (each followed by a check cell that tells you what is wrong):
#
# 1. Blelloch's down-sweep;
# 2. the affine combine;
# 3. the backward pass of the linear recurrence;
# 4. the carry fix-up of a chunked scan.

# %%
import math

import matplotlib.pyplot as plt
import numba
import numpy as np
import torch

from minirec import scan
from minirec.attention import reference as attention_ref
from minirec.check import (
    check_affine_combine,
    check_blelloch_down_sweep,
    check_chunk_fixup,
    check_linear_recurrence_backward,
)
from minirec.hmm import reference as hmm_ref
from minirec.lesson_tools import best_time, show, torch_on_one_thread
from minirec.scan import numba_cpu, numba_cuda, torch_ops
from minirec.scan import reference as ref

torch_on_one_thread()      # tiny models: one torch thread fights no one (minirec.lesson_tools)
np.set_printoptions(precision=4, suppress=True)


# %% [markdown]
# ## The question
#
# A recurrent layer computes its state one step after another: $h_t$ needs $h_{t-1}$. However
# many cores there are, the loop takes $T$ steps, one after another. Yet one recurrence
# everybody parallelises without thinking is the running sum, `np.cumsum`: split the sequence,
# sum the halves at the same time, add the first half's total to the second half. What does the
# running sum have that a recurrence lacks — and which recurrences have it too?
#
# ## Notation
#
# Time is the first axis everywhere in minirec; a scan runs along axis 0 and broadcasts the rest.
#
# | symbol | shape | meaning |
# |---|---|---|
# | $T$ | | time steps |
# | $x_t$ | `(...)` | element $t$ of a sequence `x (T, ...)` (or a tuple of arrays sharing $T$) |
# | $\oplus$ | | an associative combine, `combine(left, right)`; **left is earlier** |
# | $y_t$ | `(...)` | the inclusive scan $y_t = x_0 \oplus x_1 \oplus \dots \oplus x_t$ |
# | $a_t, b_t$ | `(T, ...)` | decay and input of the linear recurrence $h_t = a_t h_{t-1} + b_t$ |
# | $h_{-1}$ | `(...)` | `h0`, the state before the first step (zero when absent) |
# | $\bar h_t$ | `(T, ...)` | `grad_h`, the gradient of the loss with respect to $h_t$ from $h_t$'s own use |
# | $g_t$ | `(T, ...)` | the *total* gradient $\partial L / \partial h_t$, through every later step |
#
# ## The loop is a scan
#
# The loop $y_0 = x_0$, $y_t = y_{t-1} \oplus x_t$ is the specification. With $\oplus = +$ it is
# `np.cumsum`:

# %%
show(ref.sequential)

rng = np.random.default_rng(0)
x = rng.normal(size=13)
assert np.allclose(ref.sequential(ref.add_combine, x), np.cumsum(x), rtol=1e-13, atol=1e-13)
print("sequential scan with + equals np.cumsum:", True)

# %% [markdown]
# ### Hillis–Steele: every element, every round
#
# In round $d = 1, 2, 4, \dots$ every $y_t$ with $t \ge d$ becomes $y_{t-d} \oplus y_t$, all at
# once. After the round with offset $d$, $y_t$ covers $2d$ elements, so $\lceil \log_2 T \rceil$
# rounds suffice — but each round combines almost all $T$ positions.

# %%
show(ref.hillis_steele)

# %% [markdown]
# ### Blelloch: a tree up, a tree down
#
# Blelloch's scan does only about $2T$ combines. The **up-sweep** builds a binary tree of partial
# combines: node $j$ of level $k+1$ is $(\text{node } 2j) \oplus (\text{node } 2j+1)$ of level
# $k$, and a node without a partner (a level of odd length) moves up unchanged. The root is the
# combine of everything.

# %%
show(ref._up_sweep)
levels = ref._up_sweep(ref.add_combine, np.arange(1.0, 6.0))     # x = 1, 2, 3, 4, 5
for k, level in enumerate(levels):
    print(f"level {k}: {level}")

# %% [markdown]
# The **down-sweep** walks back from the root and hands every node $\text{before}(\cdot)$, the
# combine of all leaves to its left (the identity $e$ for the leftmost node: nothing is to its
# left). A left child has the same leaves to its left as its parent; a right child has those and
# its left sibling:
#
# $$
# \text{before}(2j) = \text{before}(j), \qquad
# \text{before}(2j+1) = \text{before}(j) \oplus \text{node}(2j)
# $$
#
# At the leaves, $\text{before}(t) = x_0 \oplus \dots \oplus x_{t-1}$: the *exclusive* scan.
#
# ### Exercise 1 — Blelloch's down-sweep
#
# Write the down-sweep. `levels` is what `ref._up_sweep` returns (`levels[0]` the leaves `x`,
# `levels[-1]` the root, shape `(1, ...)`); `identity` `(1, ...)` is the element with
# $e \oplus x = x$. For each level from the top down, build `before` for all of its $L$ nodes
# from `before` of the level above (which has $\lceil L/2 \rceil$ entries): the left children
# $0, 2, 4, \dots$ ($\lceil L/2 \rceil$ of them) and the right children $1, 3, \dots$
# ($\lfloor L/2 \rfloor$: one fewer when $L$ is odd). Return the **inclusive** scan, `(T, ...)`. Mind the order of the operands of
# `combine`: left is earlier (the check uses matrix products, where the order matters).

# %% tags=["exercise"]
def blelloch_down_sweep(combine, levels, identity):
    """levels: the up-sweep's tree, levels[0] = x (T, ...), levels[-1] the root (1, ...);
    identity (1, ...). Returns the inclusive scan y (T, ...), y_t = x_0 ⊕ … ⊕ x_t."""
    before = identity                                   # the root has nothing to its left
    for level in reversed(levels[:-1]):
        L = len(level)
        # BEGIN SOLUTION: before of this level's L nodes: left children, then right children
        new = np.empty_like(level)
        new[0::2] = before[:(L + 1) // 2]                          # before(2j) = before(j)
        new[1::2] = combine(before[:L // 2], level[0:L - 1:2])      # before(j) ⊕ node(2j)
        before = new
        # END SOLUTION
    # BEGIN SOLUTION: from the exclusive prefixes to the inclusive scan
    return combine(before, levels[0])
    # END SOLUTION


# %% tags=["check"]
check_blelloch_down_sweep(blelloch_down_sweep)

# %% [markdown]
# minirec's `ref.blelloch` is this tree too, with one saving: instead of the last
# $\text{before}(t) \oplus x_t$ (another $T$ combines, and the identity, which a combine need not
# know) it reads the inclusive scan off the exclusive one shifted by a place, with the root last.
# Every scan in `ref` — and the chunked one of a later section — agrees with `np.cumsum`, for every
# length, not only powers of two:

# %%
for T in [1, 2, 3, 5, 7, 13, 64, 100, 1000]:
    x = rng.normal(size=T)
    for method in ["sequential", "hillis_steele", "blelloch", "chunked"]:
        assert np.allclose(ref.associative_scan(ref.add_combine, x, method=method), np.cumsum(x),
                           rtol=1e-12, atol=1e-12), (T, method)
print("every method equals np.cumsum for T in 1, 2, 3, 5, 7, 13, 64, 100, 1000")

# %% [markdown]
# ## Work and depth
#
# Two numbers describe a parallel algorithm: its **work**, the number of combines, which is its
# cost on one core; and its **depth**, the number of rounds that must happen one after another,
# which is its time on unboundedly many cores. `ref.count_combines` counts both by running the
# scan with a counting combine (one call on a whole batch of positions is one round).

# %%
Ts = np.unique(np.round(np.logspace(0, 12, 60, base=2)).astype(int))
counts = {m: [ref.count_combines(m, T) for T in Ts]
          for m in ["sequential", "hillis_steele", "blelloch"]}

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for m, c in counts.items():
    axes[0].loglog(Ts, [r["work"] for r in c], label=m)
    axes[1].loglog(Ts, [r["depth"] for r in c], label=m)
axes[0].set(title="work (combines)", xlabel="T")
axes[1].set(title="depth (rounds)", xlabel="T")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

print("    T   sequential        Hillis–Steele      Blelloch")
print("        work  depth       work  depth        work  depth")
for T in [5, 13, 100, 1000, 4096]:
    row = [ref.count_combines(m, T) for m in counts]
    print(f"{T:5d}" + "".join(f"  {r['work']:8d} {r['depth']:5d}" for r in row))

# %%
for T, seq, hs, bl in zip(Ts, *counts.values()):
    log2T = math.ceil(math.log2(T)) if T > 1 else 0
    assert seq == {"work": T - 1, "depth": T - 1}
    assert hs["depth"] == log2T and hs["work"] == sum(T - d for d in 2 ** np.arange(log2T))
    assert bl["work"] <= 2 * T and bl["depth"] <= 2 * log2T

# %% [markdown]
# The loop does the least work and has the worst depth. Hillis–Steele has the least depth,
# $\lceil \log_2 T \rceil$, but does $\sum_d (T - d) \approx T \log_2 T$ combines: on $P$ cores it
# takes about $T \log_2 T / P$ steps, slower than the loop unless $P > \log_2 T$. Blelloch does at most $2T$ combines in at most
# $2\lceil\log_2 T\rceil$ rounds (asserted above for every $T$ in the plot): *work-efficient*.
#
# ## Associativity is all a scan needs
#
# Every parallel scan regroups the combines: Hillis–Steele computes $x_0 \oplus (x_1 \oplus x_2)$
# where the loop computes $(x_0 \oplus x_1) \oplus x_2$. The answers are equal exactly when
# $\oplus$ is associative, $(x \oplus y) \oplus z = x \oplus (y \oplus z)$. Nothing else is
# needed — not commutativity, not an inverse, not even an identity element.
#
# Take a combine that is *not* associative: the running average $x \oplus y = (x + y)/2$, which
# looks like the recurrence $h_t = \tfrac12 h_{t-1} + \tfrac12 x_t$.

# %%
def average(x, y):
    return (x + y) / 2


x3 = rng.normal(size=(3, 1))
print("(x0 ⊕ x1) ⊕ x2 =", average(average(x3[0], x3[1]), x3[2]),
      "  x0 ⊕ (x1 ⊕ x2) =", average(x3[0], average(x3[1], x3[2])))
x = rng.normal(size=13)
ys = {m: ref.associative_scan(average, x, method=m)
      for m in ["sequential", "hillis_steele", "blelloch"]}
for m in ["hillis_steele", "blelloch"]:
    print(f"{m:14s} max |difference to the loop| = {np.abs(ys[m] - ys['sequential']).max():.3f}")

# %%
assert np.abs(ys["hillis_steele"] - ys["sequential"]).max() > 0.01
assert np.abs(ys["blelloch"] - ys["sequential"]).max() > 0.01

# %% [markdown]
# Both parallel scans compute something, just not the loop's answer. The fix is not to give up
# on the recurrence but to scan the right objects: a step $h \mapsto \tfrac12 h + \tfrac12 x_t$
# is a *function* of the state, and composing functions is always associative.
#
# ## The linear recurrence as a scan
#
# A step of $h_t = a_t h_{t-1} + b_t$ is the affine map $h \mapsto a_t h + b_t$, stored as the
# pair $(a_t, b_t)$. Apply map 1 (the earlier step), then map 2:
#
# $$
# a_2 (a_1 h + b_1) + b_2 = (a_1 a_2)\, h + (a_2 b_1 + b_2),
# \qquad (a_1, b_1) \oplus (a_2, b_2) = (a_1 a_2,\; a_2 b_1 + b_2)
# $$
#
# Composition is associative, so this combine is too; it is not commutative. Scanning the pairs
# gives $(\prod_{s \le t} a_s,\; h_t)$ with $h_{-1} = 0$; a non-zero $h_{-1}$ folds into the first
# input, $b_0 \leftarrow a_0 h_{-1} + b_0$.
#
# ### Exercise 2 — the affine combine

# %% tags=["exercise"]
def affine_combine(left, right):
    """(a1, b1) ⊕ (a2, b2): apply h ↦ a1 h + b1, then h ↦ a2 h + b2. Arrays (T, D) → (a, b)."""
    a1, b1 = left
    a2, b2 = right
    # BEGIN SOLUTION: the decay and the input of the composed map
    return a1 * a2, a2 * b1 + b2
    # END SOLUTION


# %% tags=["check"]
check_affine_combine(affine_combine)

# %% [markdown]
# With minirec's `ref.affine_combine` (the same combine), every scan method computes the recurrence. The
# running average above becomes $a_t = \tfrac12$, $b_t = \tfrac12 x_t$, and the parallel scans
# now agree with its loop:

# %%
T, D = 100, 3
a = rng.uniform(0.5, 1.0, size=(T, D))
b = rng.normal(size=(T, D))
h0 = rng.normal(size=D)
h_loop = ref.linear_recurrence(a, b, h0)
b_folded = b.copy()
b_folded[0] = a[0] * h0 + b[0]                            # h_{−1} folded into the first input
for method in ["sequential", "hillis_steele", "blelloch", "chunked"]:
    A, H = ref.associative_scan(ref.affine_combine, (a, b_folded), method=method)
    assert np.allclose(H, h_loop, rtol=1e-12, atol=1e-12)
    assert np.allclose(A, np.cumprod(a, axis=0), rtol=1e-12, atol=1e-300)
x = rng.normal(size=13)
halves = (np.full(13, 0.5), np.concatenate([x[:1], 0.5 * x[1:]]))   # b_0 = x_0: y_0 = x_0
for method in ["hillis_steele", "blelloch"]:
    _, avg = ref.associative_scan(ref.affine_combine, halves, method=method)
    assert np.allclose(avg, ref.sequential(average, x), rtol=1e-12, atol=1e-12)
print("affine scan == the loop, for sequential, Hillis–Steele, Blelloch and chunked: True")
print("the running average as affine maps: parallel scans == its loop: True")


def swapped(left, right):                                 # right ∘ left: map 2 first
    return ref.affine_combine(right, left)


wrong = {m: ref.associative_scan(swapped, (a, b_folded), method=m)[1]
         for m in ["sequential", "hillis_steele", "blelloch"]}
assert all(np.allclose(w, wrong["sequential"], rtol=1e-10, atol=1e-10) for w in wrong.values())
assert not np.allclose(wrong["sequential"], h_loop)
print("operands swapped: the three scans agree with each other, and not with the recurrence")

# %% [markdown]
# (The average starts from $y_0 = x_0$, hence $b_0 = x_0$.) Swapping the operands,
# $(a_1 a_2, a_1 b_2 + b_1)$, is associative too — it is composition in the other order — so
# every method agrees with every other, and all are wrong (asserted above): associativity makes
# the parallel scans agree with the loop of the *same* combine; whether that combine is your
# recurrence is a separate question, which the check answers.
#
# ## The gradient is a linear recurrence backwards in time
#
# Let a loss $L$ depend on the states $h_0, \dots, h_{T-1}$, and write $\bar h_t$ (`grad_h[t]`)
# for the part of $\partial L/\partial h_t$ that comes from $h_t$'s own use. But $h_t$ also enters
# the next step, $h_{t+1} = a_{t+1} h_t + b_{t+1}$, and through it every later one. The total
# gradient $g_t = \partial L/\partial h_t$ collects both paths, exactly as BPTT did in lesson 01:
#
# $$
# g_t = \bar h_t + \frac{\partial h_{t+1}}{\partial h_t}\, g_{t+1} = \bar h_t + a_{t+1}\, g_{t+1},
# \qquad g_{T-1} = \bar h_{T-1}
# $$
#
# This is the same recurrence as the forward one, run from $t = T-1$ down to $0$, with decay
# $a_{t+1}$ — the decay of the step *after* $t$ — and input $\bar h_t$. In reversed time
# $s = T-1-t$ it reads $g'_s = a'_s\, g'_{s-1} + \bar h'_s$ with $a'_s = a_{T-s}$ (and $a'_0 = 0$:
# nothing comes after the last step), so the backward pass is a scan too, with the same combine.
#
# Once $g$ is known, each step's own parameters follow from $h_t = a_t h_{t-1} + b_t$ by one
# more application of the chain rule:
#
# $$
# \frac{\partial L}{\partial b_t} = g_t, \qquad
# \frac{\partial L}{\partial a_t} = g_t\, h_{t-1}, \qquad
# \frac{\partial L}{\partial h_{-1}} = a_0\, g_0
# $$
#
# Note the $h_{t-1}$: $a_t$ multiplies the state the step *receives*, so the forward pass must
# keep $h$ (or recompute it) for the backward.
#
# ### Exercise 3 — the backward pass of the linear recurrence
#
# Given `a (T, D)`, the forward result `h (T, D)`, `h0 (D,)` and `grad_h (T, D)`, return a dict
# with the gradients `"a"`, `"b"` `(T, D)` and `"h0"` `(D,)`. A loop over time is the expected
# answer.

# %% tags=["exercise"]
def linear_recurrence_backward(a, h, h0, grad_h):
    """Gradients of L through h_t = a_t h_{t−1} + b_t: a, h, grad_h (T, D), h0 (D,) → dict."""
    # BEGIN SOLUTION: g backwards in time, then the three gradients
    T = len(a)
    g = np.empty_like(grad_h)
    g[T - 1] = grad_h[T - 1]
    for t in range(T - 2, -1, -1):
        g[t] = grad_h[t] + a[t + 1] * g[t + 1]
    h_prev = np.concatenate([h0[None], h[:-1]])
    return {"a": g * h_prev, "b": g, "h0": a[0] * g[0]}
    # END SOLUTION


# %% tags=["check"]
check_linear_recurrence_backward(linear_recurrence_backward)

# %% [markdown]
# Two witnesses for minirec's `ref.linear_recurrence_backward`: `torch.autograd` differentiating
# the loop, and the backward computed as a **scan** — Blelloch's, with the affine combine — on the
# reversed sequence with the shifted decays.

# %%
T, D = 257, 4
a = rng.uniform(-1.0, 1.0, size=(T, D))
b = rng.normal(size=(T, D))
h0 = rng.normal(size=D)
grad_h = rng.normal(size=(T, D))
h = ref.linear_recurrence(a, b, h0)
mine = ref.linear_recurrence_backward(a, h, h0, grad_h)

a_t, b_t, h0_t = (torch.tensor(v, requires_grad=True) for v in (a, b, h0))
h_torch = torch_ops.linear_recurrence_loop(a_t, b_t, h0_t)       # autograd through the loop
(h_torch * torch.from_numpy(grad_h)).sum().backward()
for name, tensor in [("a", a_t), ("b", b_t), ("h0", h0_t)]:
    assert np.allclose(mine[name], tensor.grad.numpy(), rtol=1e-10, atol=1e-12), name

a_next = np.concatenate([a[1:], np.zeros((1, D))])             # a_{t+1}; 0 after the end
_, g_rev = ref.blelloch(ref.affine_combine, (a_next[::-1], grad_h[::-1]))
assert np.allclose(g_rev[::-1], mine["b"], rtol=1e-10, atol=1e-12)
print("backward == torch.autograd (rtol 1e-10) and == a reversed Blelloch scan: True")

# %% [markdown]
# ## The closed form, and why it fails
#
# Unrolling the recurrence gives a formula with no loop in it. With $P_t = \prod_{s \le t} a_s$,
#
# $$
# h_t = P_t \left(h_{-1} + \sum_{s \le t} \frac{b_s}{P_s}\right)
# $$
#
# — a `cumprod` and a `cumsum`, both parallel library calls. It is exact in exact arithmetic. In
# floating point, $P_t$ shrinks geometrically when $|a| < 1$. First it enters the *subnormal*
# numbers, below the smallest normal float, where it keeps fewer and fewer significant digits;
# soon $b_s/P_s$ overflows to $\pm\infty$, and the `cumsum` of infinities of both signs is NaN.
# (Later still, $P_t$ gets stuck at a tiny subnormal that rounds back to itself when multiplied by
# $0.9$.)

# %%
T = 8000
a = np.full((T, 1), 0.9)
b = rng.normal(size=(T, 1))
h_loop = ref.linear_recurrence(a, b)
P = np.cumprod(a[:, 0])
t_subnormal = int(np.argmax(P < np.finfo(np.float64).tiny))
t_stuck = int(np.argmax(P[1:] == P[:-1])) + 1                # 0.9 · P_{t−1} rounds to P_{t−1}
h_closed = ref.linear_recurrence_closed_form(a, b)
rel = np.abs(h_closed - h_loop) / np.abs(h_loop).max()
first_bad = int(np.argmax(rel[:, 0] > 1e-6))
first_nan = int(np.argmax(np.isnan(h_closed[:, 0])))
print(f"a_t = 0.9: P_t is subnormal from t = {t_subnormal}, stuck at {P[t_stuck]:.1e} "
      f"from t = {t_stuck} on")
print(f"closed form, float64: error > 1e-6 (relative to max|h|) from t = {first_bad}, "
      f"NaN from t = {first_nan}")

a32, b32 = a.astype(np.float32), b.astype(np.float32)
h_closed32 = ref.linear_recurrence_closed_form(a32, b32)
first_nan32 = int(np.argmax(np.isnan(h_closed32[:, 0])))
print(f"closed form, float32: NaN from t = {first_nan32}")

# %%
assert np.isfinite(h_loop).all() and np.isnan(h_closed[-1, 0])
assert np.all(rel[:t_subnormal] < 1e-10)                     # fine while P_t is a normal float
assert np.all(P[t_stuck:] == P[t_stuck]) and t_subnormal < t_stuck
with np.errstate(divide="ignore", over="ignore"):
    t_inf = int(np.argmax(np.isinf(b[:, 0] / P)))             # b_s / P_s overflows
assert t_subnormal <= first_bad < first_nan and t_subnormal < t_inf <= first_nan
assert first_nan32 < 1000 < first_nan < 10_000
assert np.isfinite(ref.linear_recurrence(a32, b32)).all()

# %% [markdown]
# While $P_t$ is a normal float the closed form is as accurate as the loop (asserted above); it
# fails where $P_t$ leaves the floats: after a few thousand steps of $a = 0.9$ in float64, after
# fewer than a thousand in float32, the precision most networks train in.
#
# The loop (and every scan of the affine pairs) never forms $P_t$ on its own: each combine
# multiplies a *bounded* state by one $a$. That is the deep reason to scan maps instead of
# evaluating the formula.
#
# ### Log space
#
# When $a_t > 0$ (a decay, as in most gated recurrences) the closed form can be rescued by moving
# it to logarithms: with $A_t = \sum_{s \le t} \log a_s$,
#
# $$
# h_t = \sum_{s \le t} e^{A_t - A_s}\, b_s, \qquad
# \log h_t = A_t + \operatorname{logcumsumexp}_s\left(\log b_s - A_s\right) \quad (b_s > 0)
# $$
#
# $-A_s$ grows linearly in $s$, but as a logarithm: nothing under- or overflows. For $b$ of both
# signs, `ref.linear_recurrence_log` splits $b = b^+ - b^-$ and runs two such sums.
# `logcumsumexp` is itself a scan, with the associative combine `logaddexp`.

# %%
h_log = ref.linear_recurrence_log(np.log(a), b)
log_err = np.abs(h_log - h_loop).max() / np.abs(h_loop).max()
print(f"log space, T = {T}: finite everywhere: {np.isfinite(h_log).all()}, "
      f"max error relative to max|h| < 1e-10: {log_err < 1e-10}")
assert np.isfinite(h_log).all() and log_err < 1e-10

# %% [markdown]
# The price, stated in `ref.linear_recurrence_log`'s docstring: where $h^+ \approx h^-$ the
# difference loses relative precision, so the error is small against $\max|h|$ (asserted above),
# not against each $|h_t|$. LightNet (#18) lives entirely in this log space: its normaliser
# $z_t = \log \sum_{i \le t} e^{k_i}$ is the `logaddexp` scan — see the last section.
#
# ## Chunked scans
#
# On a real machine there are not $T$ cores but $P$ (two here; a few thousand on a GPU, in blocks
# that share fast memory). The scan that machines actually run has two levels:
#
# 1. split the sequence into chunks of $C$ steps and scan inside every chunk, all chunks at once
#    (each from the identity: state $0$ at each chunk start);
# 2. scan the chunk totals — the last element of each local scan — to get every chunk's *carry*,
#    the combine of all chunks before it;
# 3. fix up: combine each chunk's local results with its carry, $y = \text{carry}(k) \oplus
#    \text{local}$.
#
# Steps 1 and 3 are embarrassingly parallel; step 2 is a scan of only $\lceil T/C \rceil$ elements.

# %%
print("chunk  work  depth   (T = 4096)")
for C in [16, 64, 256]:
    c = ref.count_combines("chunked", 4096, chunk_size=C)
    print(f"{C:5d}  {c['work']:5d}  {c['depth']:5d}")

# %%
assert all(ref.count_combines("chunked", 4096, chunk_size=C)["work"] <= 2 * 4096 for C in [16, 64, 256])

# %% [markdown]
# The work stays below $2T$ (asserted); the depth is about $C + T/C$ (each chunk scanned by a
# loop here), smallest near $C \approx \sqrt{T}$ on unboundedly many cores — and on $P$ cores one
# simply takes $P$ chunks.
#
# ### Exercise 4 — the carry fix-up
#
# `local_a, local_b (T, D)` hold the affine scan inside every chunk of `C` steps (chunk $k$ is
# steps $kC, \dots, kC + C - 1$; the last chunk may be shorter), each chunk started from the
# identity $(1, 0)$. Return `(a, b)` `(T, D)`: the scan of the whole sequence, $a_t = \prod_{s \le
# t} a_s$ and $b_t = h_t$ with $h_{-1} = 0$. Chunk 0 is already right. Walk the chunks in order:
# the carry of chunk $k$ is the *fixed* result just before it, at $kC - 1$, and position $i$ of
# the chunk becomes $\text{carry} \oplus \text{local}_i$ — with the affine combine, whose first
# operand is the carry.

# %% tags=["exercise"]
def chunk_fixup(local_a, local_b, C):
    """Affine scans inside chunks of C steps (T, D) → the scan of the whole sequence (a, b)."""
    a, b = local_a.copy(), local_b.copy()
    for start in range(C, len(a), C):
        # BEGIN SOLUTION: compose the chunk with the carry, the fixed result at start − 1
        carry_a, carry_b = a[start - 1], b[start - 1]
        a[start:start + C] = carry_a * local_a[start:start + C]
        b[start:start + C] = local_a[start:start + C] * carry_b + local_b[start:start + C]
        # END SOLUTION
    return a, b


# %% tags=["check"]
check_chunk_fixup(chunk_fixup)

# %% [markdown]
# Here the carries are found by walking the chunks in order (a loop over $T/C$ chunks, cheap); a
# GPU scans the chunk totals in parallel instead, as step 2 says. Here is the package's version,
# `ref.chunked`, for any combine, which does:

# %%
show(ref.chunked)

# %% [markdown]
# On a long sequence, the two-level scan equals the loop:

# %%
T, D, C = 1000, 3, 37
a = rng.uniform(0.5, 1.0, size=(T, D))
b = rng.normal(size=(T, D))
for method in ["sequential", "blelloch"]:
    _, H = ref.chunked(ref.affine_combine, (a, b), chunk_size=C, method=method)
    assert np.allclose(H, ref.linear_recurrence(a, b), rtol=1e-12, atol=1e-12)
print(f"chunked scan (C = {C}, chunks scanned by the loop or by Blelloch) == the loop: True")

# %% [markdown]
# ## Fast: the recurrence in Numba
#
# `minirec.scan.numba_cpu.linear_recurrence` compiles the same recurrence (with `cache=True`, so
# the compilation happens once per machine). `method="sequential"` is the loop, its inner loop
# over channels vectorised. `method="chunked"` is the two-level scan of the previous section: the
# sequence is cut into chunks of `numba_cpu.CHUNK` steps (longer ones where that would make more
# than `numba_cpu.MAX_CHUNKS` chunks); the threads compose every chunk into
# one affine map, in parallel; a short loop over the chunks chains the maps into each chunk's
# starting state (the carries); and the threads re-run every chunk from its starting state.
# `minirec.scan.linear_recurrence` is the public entry point: it validates its input and picks
# Numba for NumPy arrays and Torch for tensors.

# %%
rng_t = np.random.default_rng(1)
Tb, Nb = 1 << 16, 16
ab = rng_t.uniform(0.9, 1.0, size=(Tb, Nb))
bb = rng_t.normal(size=(Tb, Nb))
h_ref = ref.linear_recurrence(ab, bb)
for method in ["sequential", "chunked"]:
    assert np.allclose(numba_cpu.linear_recurrence(ab, bb, method=method), h_ref,
                       rtol=1e-10, atol=1e-10)
assert np.allclose(scan.linear_recurrence(ab, bb), h_ref, rtol=1e-10, atol=1e-10)
print(f"Numba (sequential and chunked) == the reference, T = {Tb}, {Nb} channels: True")


# %% tags=["nbval-ignore-output"]
ab_t, bb_t = torch.from_numpy(ab), torch.from_numpy(bb)
timings = {
    "NumPy reference (loop)": best_time(lambda: ref.linear_recurrence(ab, bb), repeat=2),
    "Numba sequential": best_time(lambda: numba_cpu.linear_recurrence(ab, bb, method="sequential")),
    "Numba chunked": best_time(lambda: numba_cpu.linear_recurrence(ab, bb, method="chunked")),
    "Torch Function, compiled": best_time(
        lambda: torch_ops.linear_recurrence(ab_t, bb_t, method="compiled")),
    "Torch Function, loop": best_time(
        lambda: torch_ops.linear_recurrence(ab_t, bb_t, method="loop"), repeat=1),
    "Torch Function, chunked": best_time(
        lambda: torch_ops.linear_recurrence(ab_t, bb_t, method="chunked")),
    "Torch doubling": best_time(lambda: torch_ops.linear_recurrence_doubling(ab_t, bb_t), repeat=1),
}
base = timings["Numba sequential"]
print(f"h_t = a_t h_(t-1) + b_t, T = {Tb}, {Nb} channels, float64, "
      f"{numba.get_num_threads()} Numba threads, {torch.get_num_threads()} torch threads")
print(f"  {'':24s} {'time':>11s}   time / Numba sequential")
for name, t in timings.items():
    print(f"  {name:24s} {1e3 * t:8.2f} ms   {t / base:8.2f}")

# %% [markdown]
# Read the table as ratios from one run on this machine. The reference pays Python's overhead at
# every step. The Numba loop runs on one core and is bound by memory, not arithmetic: one
# multiply-add per 24 bytes read and written (float64 $a_t$, $b_t$ in, $h_t$ out), and one core
# alone cannot draw all the bandwidth the memory has. The chunked kernel does twice the loop's
# work — every chunk is scanned once to compose its map and once more from its carry — but not
# twice its memory traffic: it takes one group of chunks at a time, small enough that the second
# pass finds $a$ and $b$ still in the cores' caches (`minirec/scan/numba_cpu.py`), so memory sees
# the loop's 24 bytes per step and channel. On $P$ cores it can then be up to $P$ times as fast as
# the loop (if a pass over cached data is free beside one from memory), $P/2$ times if it costs as
# much, and less where the $P$ cores together saturate one shared memory bus. (Without the cache
# blocking, $a$ and $b$ would come from memory twice, 40 bytes instead of 24, a cap near $0.6P$.)
# Where this machine falls is what the table says. The Torch rows run the same recurrence as
# whole-tensor operations: the loop pays the overhead of one small operation per step ($T$ of
# them), the chunked scan that of about $2\sqrt{T}$ larger ones, and the doubling scan does
# $\lceil \log_2 T \rceil$ passes over the whole array — far more work than the loop, which pays
# off only where the passes run on thousands of cores.
#
# ## The Torch twin
#
# `minirec.scan.torch_ops.linear_recurrence` is a `torch.autograd.Function`. Its forward runs
# without building a graph: on a CPU by the Numba kernel above, on the tensors' own memory
# (`method="compiled"`, the default there), as $T$ in-place steps (`method="loop"`), or as the
# two-level scan of this lesson with chunks of about $\sqrt{T}$ steps (`method="chunked"`, the
# default on a GPU: about $2\sqrt{T}$ whole-tensor steps, each one kernel launch). Its backward
# is the reverse-time recurrence you wrote in exercise 3, run by the same scan, so it stores only
# the inputs and $h$. Autograd through the loop (`linear_recurrence_loop`) is the witness;
# `torch.autograd.gradcheck` compares the custom backward with finite differences in float64.

# %%
T, D = 37, 3
args = [torch.tensor(rng.uniform(-1, 1, size=(T, D)), requires_grad=True),
        torch.tensor(rng.normal(size=(T, D)), requires_grad=True),
        torch.tensor(rng.normal(size=D), requires_grad=True)]
weights = torch.tensor(rng.normal(size=(T, D)))
variants = {"Function, compiled": lambda *x: torch_ops.linear_recurrence(*x, method="compiled"),
            "Function, loop": lambda *x: torch_ops.linear_recurrence(*x, method="loop"),
            "Function, chunked": lambda *x: torch_ops.linear_recurrence(*x, method="chunked"),
            "autograd through the loop": torch_ops.linear_recurrence_loop}
results = {}
for name, fn in variants.items():
    out = fn(*args)
    results[name] = (out.detach(), torch.autograd.grad((out * weights).sum(), args))
witness_out, witness_grads = results["autograd through the loop"]
for name in ["Function, compiled", "Function, loop", "Function, chunked"]:
    out, grads = results[name]
    assert torch.allclose(out, witness_out, rtol=1e-10, atol=1e-12)
    assert all(torch.allclose(g, w, rtol=1e-10, atol=1e-12) for g, w in zip(grads, witness_grads))
    assert torch.autograd.gradcheck(variants[name], args)
print("autograd.Function (compiled, loop and chunked) == autograd through the loop, values and "
      "gradients; gradcheck passes for all three")

# %% [markdown]
# On a GPU the same function runs on CUDA tensors unchanged and picks the chunked scan: about
# $2\sqrt{T}$ kernel launches, each over a whole slice, instead of $T$ tiny launches for the loop.
# `minirec.scan.numba_cuda` writes the scan out as CUDA kernels: a Blelloch scan of
# $2 \times$ `numba_cuda.THREADS` steps per block in shared memory (the up-sweep and down-sweep of exercise 1),
# a scan of the block totals, and the fix-up of exercise 4.

# %% tags=["nbval-ignore-output"]
if torch.cuda.is_available() and numba_cuda.is_available():
    a_gpu, b_gpu = ab_t.cuda(), bb_t.cuda()
    h_torch_gpu = torch_ops.linear_recurrence(a_gpu, b_gpu).cpu().numpy()
    h_numba_gpu = numba_cuda.linear_recurrence_cuda(ab, bb)
    assert np.allclose(h_torch_gpu, h_ref, rtol=1e-9, atol=1e-9)
    assert np.allclose(h_numba_gpu, h_ref, rtol=1e-9, atol=1e-9)
    print(f"GPU ({torch.cuda.get_device_name()}): the torch chunked scan and the Numba-CUDA "
          "Blelloch block scan both equal the reference (rtol 1e-9)")
else:
    print(f"No GPU here. With one, this cell runs the same recurrence (T = {Tb}, {Nb} channels) "
          "with torch_ops.linear_recurrence on CUDA tensors (its chunked scan) and with "
          f"numba_cuda.linear_recurrence_cuda (Blelloch scans of {2 * numba_cuda.THREADS} steps "
          "per block in shared memory, a scan of "
          "the block totals, a fix-up), and compares both with the reference.")

# %% [markdown]
# ## Where scans come back
#
# The affine combine is one associative operator among many. Three come back in later lessons.
#
# ### LightNet's additive recurrence (#18, lessons 04–05)
#
# LightNet replaces the decay of a linear-attention state by a normaliser: per key channel,
# $z_t = \log \sum_{i \le t} e^{k_i}$, a `logaddexp` scan. It never forms $e^{k}$, so it stays
# finite for any $k$:

# %%
k = rng.normal(scale=300.0, size=(200, 4))
k_overflow = np.log(np.finfo(np.float64).max)              # e^k is inf above this
z_scan = ref.associative_scan(ref.logaddexp_combine, k, method="blelloch")
assert np.allclose(z_scan, np.logaddexp.accumulate(k, axis=0), rtol=1e-12, atol=1e-12)
assert k.max() > k_overflow and np.isfinite(z_scan).all()
print(f"e^k overflows above k = {k_overflow:.1f}; largest k here = {k.max():.1f}")
print("logaddexp scan (Blelloch) == np.logaddexp.accumulate, all finite: True")

# %% [markdown]
# ### The HMM forward pass as a scan of log matrices (#20, lesson 10)
#
# An HMM with $K$ states, transition matrix $A$, emission matrix $B$ and initial distribution
# $\pi$ assigns an observation sequence $x_0, \dots, x_{T-1}$ the likelihood
# $p(x) = \pi_B^\top M_1 M_2 \cdots M_{T-1} \mathbf 1$, with $M_t[i, j] = A[i, j]\, B[j, x_t]$ and
# $\pi_B[j] = \pi[j] B[j, x_0]$. The forward pass multiplies from the left, one step at a time;
# but the matrix product is associative, so the products can be scanned — in log space, where
# the combine is `ref.log_matmul_combine`, $(L_1 \oplus L_2)[i, j] = \log \sum_k e^{L_1[i,k] + L_2[k,j]}$.
# `minirec.hmm` (lesson 10) builds the elements, with $\pi_B$ folded into a first element $M_0$
# whose every row is $\log \pi_B$, so that any row of the prefix product $M_0 \cdots M_t$ is
# $\log \alpha_t$:

# %%
show(hmm_ref.transition_elements)
show(hmm_ref.forward_scan)

# %% [markdown]
# Below: the direct forward loop (`hmm_ref.forward_log`), the scan with each method, and for a
# short sequence the brute-force sum over all $K^T$ state paths (`hmm_ref.brute_force`).

# %%
K, V = 3, 4
pi_hmm, A_hmm, B_hmm = hmm_ref.random_model(K, V, rng=rng)
x_obs = rng.integers(0, V, size=(1, 257))                  # one sequence: (N, T) = (1, 257)


def log_p(log_alpha):
    """log p(x) = logsumexp_j log α_{T−1}[j] of the one sequence."""
    return np.logaddexp.reduce(log_alpha[0, -1])


ll_loop = log_p(hmm_ref.forward_log(pi_hmm, A_hmm, B_hmm, x_obs))
ll_scan = {m: log_p(hmm_ref.forward_scan(pi_hmm, A_hmm, B_hmm, x_obs, method=m))
           for m in ["sequential", "hillis_steele", "blelloch"]}
print(f"T = {x_obs.shape[1]}: log p(x) by the forward loop = {ll_loop:.6f}")
for m, v in ll_scan.items():
    print(f"  log_matmul scan, {m:14s}: equal to 1e-10: {abs(v - ll_loop) < 1e-10}")

x_short = x_obs[:, :6]
brute = hmm_ref.brute_force(pi_hmm, A_hmm, B_hmm, x_short[0])
assert all(abs(v - ll_loop) < 1e-10 for v in ll_scan.values())
assert abs(log_p(hmm_ref.forward_scan(pi_hmm, A_hmm, B_hmm, x_short, method="blelloch"))
           - brute["log_likelihood"]) < 1e-12
assert abs(log_p(hmm_ref.forward_log(pi_hmm, A_hmm, B_hmm, x_short)) - brute["log_likelihood"]) < 1e-12
print(f"T = 6: scan == loop == brute force over all {K ** 6} paths: True")

# %% [markdown]
# ### Viterbi: the same scan in the max-plus semiring
#
# Replace "sum over paths" by "best path": $\log \sum$ becomes $\max$, and the combine becomes
# `ref.max_plus_combine`, $(L_1 \oplus L_2)[i, j] = \max_k L_1[i,k] + L_2[k,j]$ — associative because $+$
# distributes over $\max$ as $\times$ over $+$. The scan gives the log probability of the single
# most likely state path.

# %%
path_scan, best_scan = hmm_ref.viterbi_scan(pi_hmm, A_hmm, B_hmm, x_obs, method="blelloch")
path_loop, best_loop = hmm_ref.viterbi(pi_hmm, A_hmm, B_hmm, x_obs)
assert abs(best_scan[0] - best_loop[0]) < 1e-10 and np.array_equal(path_scan, path_loop)
_, best_short = hmm_ref.viterbi_scan(pi_hmm, A_hmm, B_hmm, x_short, method="blelloch")
assert abs(best_short[0] - brute["log_prob"]) < 1e-12
print(f"best path, T = {x_obs.shape[1]}: max-plus scan == Viterbi loop (value and path): True "
      f"(log p = {best_scan[0]:.4f}, below log p(x) = {ll_loop:.4f})")

# %% [markdown]
# ## The paper, at toy scale
#
# LightNet's claim (#18) is that its *additive* recurrence "can handle multi-dimensional data
# within a single scan", where a *multiplicative* (decay-gated) one needs several. The reason is
# visible in the algebra: the additive final state is
# $S_T = \sum_i e^{k_i} v_i^\top / \sum_i e^{k_i}$, a normalised sum, which does not depend on the
# order in which the scan visits the positions; a decayed state weights each token by the decays
# that *follow* it. `minirec.attention.reference.grid_final_states` scans an $8 \times 8$ grid in
# four orders (row by row, column by column, reversed, random) with both recurrences.

# %%
grid_rng = np.random.default_rng(18)
k_grid = grid_rng.normal(size=(8, 8, 4))
v_grid = grid_rng.normal(size=(8, 8, 3))
decay_grid = grid_rng.uniform(0.5, 1.0, size=(8, 8, 4))
additive = attention_ref.grid_final_states(k_grid, v_grid, rng=np.random.default_rng(0))
multiplicative = attention_ref.grid_final_states(k_grid, v_grid, decay=decay_grid,
                                                 rng=np.random.default_rng(0))
raster_add, raster_mul = additive["raster"], multiplicative["raster"]
add_spread = max(np.abs(s - raster_add).max() for s in additive.values())
mul_spread = max(np.abs(s - raster_mul).max() / np.abs(raster_mul).max()
                 for s in multiplicative.values())
global_err = np.abs(raster_add - attention_ref.normalized_global_sum(k_grid, v_grid)).max()
print("final state over 4 scan orders of an 8×8 grid")
print(f"  additive:       max difference between orders < 1e-12: {add_spread < 1e-12}; "
      f"equals the global normalised sum (< 1e-12): {global_err < 1e-12}")
print(f"  multiplicative: largest difference between orders, relative: {mul_spread:.2f}")

# %%
assert add_spread < 1e-12 and global_err < 1e-12 and mul_spread > 0.1

# %% [markdown]
# | | the paper (#18) | this toy |
# |---|---|---|
# | multi-dimensional data | the additive recurrence "can handle multi-dimensional data within a single scan" | the additive final state is the same in all four scan orders of an 8×8 grid (to below 1e-12) and equals the order-free normalised sum; the multiplicative one changes with the order (relative difference printed above) |
# | image classification, generation, language modelling | results tables | not reproduced: a toy cannot |
#
# The toy checks the algebraic reason behind the claim, not LightNet's accuracy. Note also what
# order invariance does *not* give: the final state is order-free, but a causal output $o_t$
# still depends on which tokens came before $t$. Lesson 05 takes LightNet further.
#
# ## Summary
#
# A recurrence can be computed in $O(\log T)$ parallel rounds exactly when its step can be
# written as an element of an associative combine: Hillis–Steele does it in $\lceil\log_2 T\rceil$
# rounds with $T \log_2 T$ work, Blelloch in about $2 \log_2 T$ rounds with at most $2T$ work, and a
# chunked scan does it on the few cores a machine has. The linear recurrence is a scan of affine
# maps; its gradient is the same recurrence run backwards with the decays shifted by a step.
# Scanning maps avoids the products that make the closed form overflow; where a closed form is
# wanted, log space keeps it finite. The same machinery, with `logaddexp`, `log_matmul` and
# `max_plus`, computes LightNet's normaliser, an HMM's likelihood and its best path.
#
# **Further reading.** W. D. Hillis, G. L. Steele, *Data Parallel Algorithms* (1986).
# G. E. Blelloch, *Prefix Sums and Their Applications* (1990). E. Martin, C. Cundy,
# *Parallelizing Linear Recurrent Neural Nets Over Sequence Length* (2018). S. Särkkä,
# Á. F. García-Fernández, *Temporal Parallelization of Bayesian Smoothers* (2021). Papers of the
# course: #18 *You Only Scan Once: Efficient Multi-dimension Sequential Modeling with LightNet*;
# #20 *Mechanistic Interpretability of RNNs emulating Hidden Markov Models*.
