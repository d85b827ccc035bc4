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
# # 08 · A global workspace that learns to add
#
# By the end of this lesson you will have built a small "global workspace": a shared vector that
# specialist modules read and write, and a recurrent controller whose gates decide, step by
# step, which module writes. You will write the increment module, the gated write and a hand-set
# gate program that adds two numbers; then you will train an LSTM controller (lesson 01's cell) to
# find such a program by itself, and test it on sums it never saw — beside an LSTM that maps
# $(a, b)$ to $a + b$ directly.
#
# **Paper.** #34 Chateau-Laurent & VanRullen, *Learning to Chain Operations by Routing
# Information Through a Global Workspace* (2025).
#
# **Builds on:** lesson 01 (the LSTM cell). **Runs in:** about half a minute on two CPU cores,
# most of it in the training runs near the end.
#
# **Exercises** (each followed by a check cell that tells you what is wrong):
#
# 1. the increment module: every digit moves up by one, mod $N$;
# 2. the gated write: the gates mix the modules' proposals into the new workspace;
# 3. the hand-set gate program that computes $a + b$.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from minirec import workspace as ws
from minirec.check.workspace import (
    check_hand_set_program,
    check_increment_module,
    check_workspace_write,
)
from minirec.lesson_tools import show, torch_on_one_thread
from minirec.workspace import experiments as ex
from minirec.workspace import reference as ref
from minirec.workspace import torch_ops as wt

torch_on_one_thread()      # tiny models: one torch thread fights no one (minirec.lesson_tools)
np.set_printoptions(precision=4, suppress=True)


# %% [markdown]
# ## The question
#
# Train a network on pairs $(a, b) \mapsto a + b$ and it can learn the table it was shown. Ask it
# for a pair it never saw and it has nothing to go on: nothing in "a table of sums" says that
# $7 + 3$ is related to $7 + 2$. A child adds $7 + 3$ differently: start from 7 and count up three
# times. That is one small operation, *increment*, chained. The chain has two parts, the
# operation and the decision of what to do next; the decision depends on $b$ only, and the
# operation works for every $a$.
#
# A *global workspace* (a theory of how the brain routes information between specialised areas,
# turned here into an architecture) separates the two: specialist modules each propose a new
# content for one shared vector, the workspace, and a controller decides at each step which
# proposal is written. If the controller learns the right sequence of decisions, the model adds
# pairs it never saw, by construction of the modules.
#
# ## Notation
#
# | symbol | shape | meaning |
# |---|---|---|
# | $N$ | | number of digits; sums are taken mod $N$ |
# | $B$, $K$, $H$ | | batch size, controller steps, controller hidden size |
# | $w_k$ | `(B, N)` | the workspace before step $k$: a distribution over the digits |
# | $M_m$ | `(B, N)` → `(B, N)` | module $m$: input, increment, output (in that order) |
# | $g_k$ | `(B, 3)` | the gates at step $k$: one-hot (hard) or a softmax (soft) |
# | $P$ | `(N, N)` | the cyclic shift: digit $j$ moves to $j + 1 \bmod N$ |
# | $a$, $b$ | `(B,)` | the two addends, integers |
#
# ## The equations
#
# The workspace starts blank, uniform over the digits, $w_0 = \frac{1}{N}\mathbf{1}$. At each step
# every module proposes a new workspace and the gates mix the proposals:
#
# $$
# w_{k+1} = \sum_{m} g_{k,m}\, M_m(w_k), \qquad M_{\text{input}}(w) = \operatorname{onehot}(a), \quad M_{\text{increment}}(w) = P w, \quad M_{\text{output}}(w) = w
# $$
#
# Each module maps a distribution to a distribution, so with gates that sum to one the workspace
# stays a distribution and $\log w_K$ is a log-probability over the answer. The program
# "input, then increment $b$ times, then output" leaves $\operatorname{onehot}((a + b) \bmod N)$.

# %% [markdown]
# ## The modules
#
# Here are minirec's three modules. The input module ignores the workspace and loads $a$; the
# output module reads the workspace and leaves it as it is (it is where a reader would take the
# answer, so as an operation it is a no-op):

# %%
show(ref.input_module)
show(ref.output_module)

# %% [markdown]
# ### Exercise 1: the increment module
#
# Move every digit up by one, mod $N$: the new workspace at digit $j$ is the old one at digit
# $j - 1$, and digit $N - 1$ wraps around to 0. The digits are on the last axis; every row is one
# example.

# %% tags=["exercise"]
def increment_module(w):
    """w (B, N) -> (B, N): new[:, j] = w[:, j - 1 mod N]."""
    # BEGIN SOLUTION: shift every row of w by one digit, with the wrap-around
    return np.roll(w, 1, axis=-1)
    # END SOLUTION


# %% tags=["check"]
check_increment_module(increment_module)

# %% [markdown]
# The increment is a permutation of the digits, so it keeps a distribution a distribution, and
# $N$ increments bring every digit back to where it started:

# %%
N_DEMO = 5
w_demo = np.array([[0.5, 0.3, 0.2, 0.0, 0.0]])
for k in range(N_DEMO + 1):
    print(k, w_demo)
    w_demo = ref.increment_module(w_demo)

# %% [markdown]
# ### Exercise 2: the gated write
#
# Given the gates of one step, `gates (B, 3)` in the order input, increment, output, write
# $\sum_m g_m M_m(w)$. Use minirec's modules (`ref.input_module`, `ref.increment_module`,
# `ref.output_module`); each gate scales its own example's row.

# %% tags=["exercise"]
def workspace_write(w, gates, a_onehot):
    """w (B, N), gates (B, 3), a_onehot (B, N) -> w_new (B, N) = sum_m gates[:, m] M_m(w)."""
    # BEGIN SOLUTION: the gated sum of the three modules' proposals
    g_input, g_increment, g_output = gates[:, 0:1], gates[:, 1:2], gates[:, 2:3]
    return (g_input * ref.input_module(w, a_onehot)
            + g_increment * ref.increment_module(w)
            + g_output * ref.output_module(w))
    # END SOLUTION


# %% tags=["check"]
check_workspace_write(workspace_write)

# %% [markdown]
# With one-hot gates the write runs exactly one module; with soft gates it blends them, and the
# workspace stays a distribution (its rows still sum to one):

# %%
w_blank = ref.blank_workspace(2, 6)
a_demo = ref.one_hot([4, 1], 6)
hard_demo = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
soft_demo = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
print("one-hot gates:\n", ref.workspace_write(ref.one_hot([2, 5], 6), hard_demo, a_demo))
w_soft = ref.workspace_write(w_blank, soft_demo, a_demo)
print("soft gates from the blank workspace:\n", w_soft)
print("row sums:", w_soft.sum(axis=1))

# %% [markdown]
# ## A program that adds
#
# The module algebra is complete for addition: with the gates set by hand, the workspace adds.
#
# ### Exercise 3: the hand-set gate program
#
# Return one-hot gates `(K, B, 3)`, time first: the input module at step 0, the increment module
# at steps $1 \dots b$, the output module at every later step. Each example has its own $b$;
# $K \ge b + 2$ so that the last step is always the output.

# %% tags=["exercise"]
def hand_set_program(b, n_steps):
    """b (B,) integers, n_steps K -> (K, B, 3) one-hot gates: input, b increments, output."""
    k = np.arange(n_steps)[:, None]                      # (K, 1): the step index
    # BEGIN SOLUTION: the module index at every (step, example), then one-hot
    choice = np.where(k == 0, ref.INPUT, np.where(k <= b[None, :], ref.INCREMENT, ref.OUTPUT))
    return np.eye(3)[choice]
    # END SOLUTION


# %% tags=["check"]
check_hand_set_program(hand_set_program)

# %% [markdown]
# Now run minirec's version of it on every pair $a < 20$, $b \le 9$ (mod $N = 20$, $K = 11$
# steps: one input, up to nine increments, at least one output) and compare with integer
# addition:

# %%
N, B_MAX = 20, 9
K = B_MAX + 2
a_all, b_all = (g.ravel() for g in np.meshgrid(np.arange(N), np.arange(B_MAX + 1), indexing="ij"))
sums = ws.add(a_all, b_all, n_digits=N, n_steps=K)
print(f"{len(a_all)} pairs, all equal to (a + b) mod {N}: {bool(np.all(sums == (a_all + b_all) % N))}")
assert np.array_equal(sums, (a_all + b_all) % N)

example = ref.run_program(ref.one_hot([17], N), ref.hand_set_program(np.array([5]), K))
print("a = 17, b = 5: the digit the workspace holds after each step:",
      ref.read_out(example[1:, 0]))

# %% [markdown]
# The workspace of that example, step by step (white is probability 1), and the gate program
# that produced it. The sum wraps past 19 to 0, as the increment module does:

# %%
program_demo = ref.hand_set_program(np.array([5]), K)[:, 0]          # (K, 3)
fig, (ax_w, ax_g) = plt.subplots(1, 2, figsize=(8, 2.8), gridspec_kw={"width_ratios": [3, 1.2]})
ax_w.imshow(example[:, 0].T, aspect="auto", cmap="gray", origin="lower")
ax_w.set(xlabel="step k (0 = blank)", ylabel="digit", title="workspace, a = 17, b = 5")
ax_g.imshow(program_demo.T, aspect="auto", cmap="gray")
ax_g.set(xlabel="step k", yticks=range(3), yticklabels=ref.MODULES, title="gates")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The learned controller
#
# Nobody hands the real model its program: an LSTM controller sets the gates. At each step it
# reads the *cue* — the second addend $b$, as one number — updates its state with lesson 01's LSTM
# cell, and scores the three modules with a linear read-out:
#
# $$
# (h_k, c_k) = \operatorname{LSTM}(b, (h_{k-1}, c_{k-1})), \qquad s_k = W_{\text{out}} h_k + b_{\text{out}}, \qquad g_k = \operatorname{softmax}(s_k) \text{ (training)}, \quad g_k = \operatorname{onehot}(\arg\max s_k) \text{ (test)}
# $$
#
# The loss is the cross-entropy of the answer, $-\log w_K[(a + b) \bmod N]$. Soft gates make the
# whole chain differentiable; at test the gates are hard, so each step runs exactly one module and
# the answer is exact or wrong, never blurred. The step, from `minirec/workspace/reference.py`:

# %%
show(ref.controller_step)

# %% [markdown]
# Two choices in it are ours, not the paper's abstract's (which does not say what the controller
# sees): the cue is the *number* $b$, not a one-hot code — an addend never seen in training is then
# a point further along a line the controller learned on, not an input unit whose weights were
# never trained — and by default the controller does not read the workspace. Without the
# workspace its input is the same at every step, so the whole gate program depends on $b$ alone;
# we will also train the variant that reads $[w_k, b]$ and see what that costs.
#
# The Torch model, `GlobalWorkspace`, is the same maths with autograd (its LSTM is minirec's
# `cells.torch_ops.LSTM`; it runs on whatever device its parameters are on). With its parameters
# copied from the reference it gives the reference's answers, hard and soft:

# %%
params_demo = ref.init_controller_params(N, 8, rng=np.random.default_rng(0))
params_demo["weight_out"] *= 10.0                   # sharper scores, so the gates vary over steps
model_demo = wt.GlobalWorkspace(N, K, 8, dtype=torch.float64)
model_demo.load_params(params_demo)
a_t, b_t = torch.arange(N), torch.arange(N) % (B_MAX + 1)
for hard in (True, False):
    mine = model_demo(a_t, b_t, hard=hard).workspace.detach().numpy()
    theirs = ref.controller_run(ref.one_hot(a_t.numpy(), N), ref.cue_of(b_t.numpy()), params_demo,
                                K, hard=hard)[0]
    print(f"hard={hard}: max |torch − reference| = {np.abs(mine - theirs).max():.1e}")
    assert np.allclose(mine, theirs, rtol=1e-12, atol=1e-13)

# %% [markdown]
# Soft gates become hard gates when the scores are far apart: scale the read-out by $10^4$ and
# the softmax is one-hot to float64 precision, so the soft run *is* the hard run. Training with
# soft gates and testing with hard ones is safe exactly when training has pushed the scores apart.

# %%
with torch.no_grad():
    model_demo.readout.weight.mul_(1e4)
    model_demo.readout.bias.mul_(1e4)
    soft_run = model_demo(a_t, b_t, hard=False)
    hard_run = model_demo(a_t, b_t, hard=True)
top_two = hard_run.logits.topk(2, dim=-1).values
gate_gap = (soft_run.gates - hard_run.gates).abs().max().item()
workspace_gap = (soft_run.workspace - hard_run.workspace).abs().max().item()
print(f"smallest gap between the two best scores: {(top_two[..., 0] - top_two[..., 1]).min():.0f}")
print(f"max |soft − hard|: gates {gate_gap:.1e}, workspace {workspace_gap:.1e}")
assert gate_gap < 1e-12 and workspace_gap < 1e-12

# %% [markdown]
# ## Interpolation and extrapolation
#
# The data are all 200 pairs $a < 20$, $b \le 9$. Every pair with $b = 9$ is held out
# (*extrapolation*: a second addend never seen in training, and one more increment than any
# training program had), and 20% of the rest at random (*interpolation*: each $b$ was seen, not
# with that $a$). The baseline is an LSTM that reads the two addends as a two-step sequence — each
# token is $[\operatorname{onehot}(x), x]$, the one-hot digit the workspace holds and the number the
# controller reads — and maps its last state to the 20 digits.

# %%
split = ex.addition_split(N, B_MAX, held_out=0.2, rng=np.random.default_rng(0))
for name in ("train", "interpolation", "extrapolation"):
    print(f"{name:>13s}: {len(getattr(split, name)[0])} pairs")

# %% [markdown]
# We train the workspace model and the baseline from five seeds each (200 full-batch Adam steps
# for the workspace model, 300 for the baseline) and test the workspace model with hard gates.
# `reads w` is the controller that also reads the workspace, $x_k = [w_k, b]$, from three seeds
# (it costs more per step). The table prints the accuracy on each set, seed by seed.

# %%
SEEDS = {"workspace": range(5), "reads w": range(3), "direct LSTM": range(5)}
MODELS = {
    "workspace": lambda s: ex.train_workspace(split, hidden_size=16, steps=200, lr=0.05, seed=s),
    "reads w": lambda s: ex.train_workspace(split, hidden_size=16, steps=200, lr=0.05, seed=s,
                                            reads_workspace=True),
    "direct LSTM": lambda s: ex.train_direct(split, hidden_size=32, steps=300, lr=0.02, seed=s),
}
SETS = ("train", "interpolation", "extrapolation")
runs = {name: [make(s) for s in SEEDS[name]] for name, make in MODELS.items()}
acc = {name: np.array([[ex.accuracy(r.model, getattr(split, s), N) for s in SETS] for r in rs])
       for name, rs in runs.items()}                     # (seeds, sets)

# %% tags=["nbval-ignore-output"]
print(f"{'model':>12s} {'seed':>4s} " + " ".join(f"{s:>13s}" for s in SETS) + "   final loss")
for name, rs in runs.items():
    for seed, r in zip(SEEDS[name], rs, strict=True):
        print(f"{name:>12s} {seed:4d} " + " ".join(f"{x:13.2f}" for x in acc[name][seed])
              + f"   {r.losses[-1]:.4f}")

# %% [markdown]
# The summary over seeds (mean accuracy, and on how many seeds a model is exact on a whole set),
# the size of each model, and how many increments each workspace controller runs after its last
# input step when asked for $b = 9$ (nine is right):

# %% tags=["nbval-ignore-output"]
def summary(name):
    a = acc[name]
    return " ".join(f"{a[:, j].mean():7.2f} ({int(np.sum(a[:, j] == 1.0))}/{len(a)})"
                    for j in range(len(SETS)))


print(f"{'model':>12s} " + " ".join(f"{s:>13s}" for s in SETS))
for name in runs:
    print(f"{name:>12s} {summary(name)}")
n_params = {name: sum(p.numel() for p in rs[0].model.parameters()) for name, rs in runs.items()}
print("parameters:", n_params)


def increments_after_last_input(model, b_value):
    """How many increments the hard-gated controller runs after its last input step, for b
    (None when it never runs the input module)."""
    with torch.no_grad():
        choices = model(torch.zeros(1, dtype=torch.long), torch.tensor([b_value])).gates.argmax(-1)
    steps = choices[:, 0].numpy()
    inputs = np.flatnonzero(steps == ref.INPUT)
    if inputs.size == 0:
        return None
    return int(np.sum(steps[inputs.max():] == ref.INCREMENT))


for name in ("workspace", "reads w"):
    print(f"{name}: increments for b = 9, seed by seed:",
          [increments_after_last_input(r.model, B_MAX) for r in runs[name]])

# %%
gw, gw_reads, direct = acc["workspace"], acc["reads w"], acc["direct LSTM"]
fits = gw[:, 0] == 1.0                                                # seeds that fit the training set
assert fits.sum() >= 4 and (gw[fits, 1] == 1.0).all()                 # ... are exact on seen b
assert (gw[:, 2] == 1.0).sum() >= 3 and (gw[:, 2] < 1.0).any()       # most seeds, not all
assert direct[:, 0].min() == 1.0 and direct[:, 1].max() < 0.5 and direct[:, 2].max() < 0.5
assert gw[:, 2].mean() > direct[:, 2].mean() + 0.5
assert gw_reads[:, 1].mean() < 1.0                                    # reading w costs here
assert (gw_reads[:, 2] < 1.0).any() and n_params["reads w"] > 1.9 * n_params["workspace"]
assert n_params["workspace"] < n_params["direct LSTM"]

# %% [markdown]
# Read the tables from the printed numbers. The direct LSTM learns its training table and fails
# on both held-out sets: a sum it has not seen is, to it, an unseen row of a table. The workspace
# model is exact on every interpolation pair from every seed that fits its training set, because
# its controller's decisions depend on $b$ only and every $b$ below 9 was trained (a seed can
# also stall in training: its final loss then stays high and it fails every set). It
# extrapolates to $b = 9$ —
# nine increments, a program longer than any it was trained on — on most seeds but not all: its
# cue is a number, and "one more increment per unit of $b$" is a rule it can carry one step
# further, but the training programs (at most eight increments) are equally well fitted by rules
# that do something else at $b = 9$: the failing seed's count for $b = 9$ above is not nine (or
# `None`: that program never loads $a$ at all). The controller that
# also reads the workspace sees at every step a digit that depends on $a$, and that costs it some
# interpolation pairs; it does not extrapolate on every seed either, and it has twice the
# parameters — with three seeds, this toy cannot say whether reading the workspace helps
# extrapolation or hurts it.
#
# Here are the gate programs the first seed's controller runs for every $b$ (I = input,
# + = increment, O = output); the last row, $b = 9$, was never trained. Compare them with the
# hand-set program: nothing forces the controller to increment right after the input, or to load
# $a$ only once (a repeated input writes the same digit again); any program whose last input is
# followed by exactly $b$ increments adds. Once $a$ is loaded, a repeated input and the output
# module (which leaves the workspace as it is) write the same thing, so which of the two fills a
# step is arbitrary: the printout can differ from one machine to another. The cell after it
# checks what every controller that fits its training set found.

# %% tags=["nbval-ignore-output"]
learned = runs["workspace"][0].model
with torch.no_grad():
    programs = learned(torch.zeros(B_MAX + 1, dtype=torch.long), torch.arange(B_MAX + 1)).gates
letters = np.array(list("I+O"))[programs.argmax(-1).numpy().T]     # (b, K)
for b_value, row in enumerate(letters):
    print(f"b = {b_value}: {' '.join(row)}")

# %% tags=["nbval-ignore-output"]
def module_program(model):
    """(b, K): the module that each step of the hard-gated controller runs, for a = 0, b = 0 … 9."""
    with torch.no_grad():
        gates = model(torch.zeros(B_MAX + 1, dtype=torch.long), torch.arange(B_MAX + 1)).gates
    return gates.argmax(-1).numpy().T


def ends_with_b_increments(steps, b_value):
    """The last b steps increment and the step before them does not: counting back from the end."""
    return bool((steps[K - b_value:] == ref.INCREMENT).all() and steps[K - b_value - 1] != ref.INCREMENT)


TRAINED_B = range(B_MAX)                                              # b = 0 … 8
fitted = [r.model for r, fit in zip(runs["workspace"], fits, strict=True) if fit]
for model in fitted:
    steps = module_program(model)
    assert all(increments_after_last_input(model, b_value) == b_value
               and ends_with_b_increments(steps[b_value], b_value) for b_value in TRAINED_B)
print(f"{len(fitted)} controllers fit the training set; each ends every trained program with "
      f"exactly b increments")
print("the trained b whose program uses the output module, seed by seed:",
      [[b_value for b_value in TRAINED_B if (module_program(m)[b_value] == ref.OUTPUT).any()]
       for m in fitted])

# %% [markdown]
# Every controller that fits its training set puts its increments in the last $b$ steps, for
# every trained $b$ (asserted above): it counts *back from the end*. "Increment from step $K - b$
# on" is a threshold that moves by one step per unit of $b$, a rule that is linear in the cue and
# so has a natural continuation to $b = 9$, which is one way to see why a numeric cue can
# extrapolate at all. The output module is never needed here (the answer is read from the last
# workspace, whatever module wrote it) and never ends a program with $b \ge 1$: where a
# controller uses it at all, it fills steps between the inputs and the increments.

# %%
fig, ax = plt.subplots(figsize=(6, 3))
x_pos = np.arange(len(SETS))
for i, name in enumerate(runs):
    ax.bar(x_pos + (i - 1) * 0.27, acc[name].mean(axis=0), width=0.27,
           label=f"{name} ({len(SEEDS[name])} seeds)")
ax.set(xticks=x_pos, xticklabels=SETS, ylabel="accuracy (mean over seeds)", ylim=(0, 1.05),
       title="addition mod 20: held-out pairs")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The paper, at toy scale
#
# | | the paper (abstract) | this toy | verdict |
# |---|---|---|---|
# | modules | hand-designed on one-hot digits; then learned MNIST modules | hand-designed on one-hot digits only | partly: the MNIST modules are not reproduced |
# | controller | an LSTM learns to select input, increment, output in sequence | trained with soft gates, tested with hard ones: every controller that fits its training set loads $a$ and ends its program with exactly $b$ increments, counting back from the end; the output module, a no-op here, never ends a program with $b \ge 1$ and at most fills steps before the increments (printed programs) | partly: input then increment is learned (asserted); not an output step at the end |
# | generalisation | the workspace model outperforms LSTMs and Transformers on unseen additions, interpolation and extrapolation | it outperforms a direct LSTM on both held-out sets: exact on interpolation for every seed that fits its training set, on extrapolation for most seeds (table above); no Transformer was trained | reproduced against an LSTM (asserted); not against a Transformer |
# | size | "fewer parameters" | the parameter counts printed above | reproduced (asserted) |
#
# Say plainly what the toy shows and what it does not. The increment module generalises by
# construction; the controller only has to learn to count up to $b$, and the interpolation result
# is close to automatic once it depends on $b$ alone. Extrapolation is the part that is learned,
# and it is fragile: it depends on the cue being a number (a one-hot cue for $b = 9$ would be an
# untrained input) and on the seed. What the controller sees is our choice; the abstract does not
# say what the paper's controller reads, nor how its gates are made hard. The MNIST version and
# the Transformer baseline are not reproduced.

# %% [markdown]
# ## On a GPU, and why there is no Numba version
#
# `GlobalWorkspace` is an `nn.Module` whose tensors decide the device: `.to("cuda")` runs the
# same training there. This toy is far too small to gain from it; the cell below checks that the
# GPU run gives the CPU's answers when a GPU is present.
#
# There is no `numba_cpu.py` in `minirec/workspace/`: a step is three products of `(B, 1)` gates
# with `(B, N)` proposals and one LSTM step on a state of a few dozen numbers, about ten times.
# There is no long loop over cheap elements for a compiler to speed up, and the model that learns
# needs autograd, which is torch's.

# %%
if torch.cuda.is_available():
    on_gpu = learned.to("cuda")
    gpu_programs = on_gpu(torch.zeros(B_MAX + 1, dtype=torch.long, device="cuda"),
                          torch.arange(B_MAX + 1, device="cuda")).gates.cpu()
    learned.to("cpu")
    print("GPU gate programs equal the CPU's:", torch.equal(gpu_programs, programs))
else:
    print("No GPU here: with one, `model.to('cuda')` trains and runs the same model there.")

# %% [markdown]
# ## Summary
#
# A global workspace splits a computation into specialist modules that propose and a controller
# that chooses: here, modules that load a digit, add one, or leave the workspace alone, and gates
# that mix their proposals, $w_{k+1} = \sum_m g_{k,m} M_m(w_k)$. A hand-set program — input, $b$
# increments, output — adds every pair exactly. An LSTM controller trained with soft gates finds a
# program of its own that adds — load $a$, then $b$ increments counted back from the end — and,
# tested with hard gates, answers held-out pairs exactly where a direct LSTM only remembers its
# table; whether the learned count extrapolates to a larger $b$ depends on the seed, as the table
# shows.
#
# **Further reading.** H. Chateau-Laurent, R. VanRullen, *Learning to Chain Operations by Routing
# Information Through a Global Workspace* (2025). B. J. Baars, *A Cognitive Theory of
# Consciousness* (1988), where the global workspace theory comes from. A. Goyal et al.,
# *Coordination Among Neural Modules Through a Shared Global Workspace* (2022).
