r"""A global workspace that adds by chaining modules, in NumPy: the specification (paper #34).

Notation (the same in every file of this folder)::

    N  digits (the workspace holds a distribution over 0 … N−1; sums are taken mod N)
    B  batch size      K  controller steps      M = 3 modules (input, increment, output)
    H  the controller LSTM's hidden size        C  the controller's input size: 1, or N + 1
    w        (B, N)     the workspace: one-hot digits, or a distribution over them
    a_onehot (B, N)     the first addend a as a one-hot digit: what the input module writes
    gates    (B, M)     which module writes at one step: one-hot (hard) or a softmax (soft)
    program  (K, B, M)  the gates of K steps
    cue      (B, 1)     the second addend as one number, b

One step of the model writes the gated sum of the modules' proposals into the workspace::

    w_{k+1} = Σ_m g_{k,m} M_m(w_k)
    M_input(w) = onehot(a),   M_increment(w) = P w  (P: cyclic shift, digit j → j + 1 mod N),
    M_output(w) = w           (the output module reads the workspace and leaves it as it is)

The workspace starts blank, uniform over the digits: every module maps a distribution to a
distribution, so with gates that sum to one the workspace stays one, and log w_K is a
log-probability over the answer. The learned controller is an LSTM (lesson 01's cell, imported
from :mod:`minirec.cells.reference`, not rewritten) that reads the cue, and the workspace too
when ``reads_workspace`` (then C = N + 1, else C = 1)::

    x_k = cue  or  [w_k, cue],   (h_k, c_k) = LSTM(x_k, (h_{k−1}, c_{k−1})),
    logits_k = W_out h_k + b_out,
    g_k = onehot(argmax logits_k)  (hard, at test)   or   softmax(logits_k)  (soft, in training)
"""

from __future__ import annotations

import numpy as np

from minirec.cells import reference as cells

MODULES = ("input", "increment", "output")
INPUT, INCREMENT, OUTPUT = range(3)
CONTROLLER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out", "bias_out")


# --------------------------------------------------------------------------------------------
# Digits and the blank workspace
# --------------------------------------------------------------------------------------------

def one_hot(digits, n_digits: int, dtype=np.float64):
    """``digits (B,)`` integers in [0, N) → ``(B, N)`` one-hot rows."""
    return np.eye(n_digits, dtype=dtype)[np.asarray(digits)]


def blank_workspace(batch: int, n_digits: int, dtype=np.float64):
    """The workspace before anything is written: uniform over the N digits, ``(B, N)``."""
    return np.full((batch, n_digits), 1.0 / n_digits, dtype=dtype)


def read_out(w):
    """The digit the workspace holds: ``argmax_j w[:, j]``, ``(B,)`` integers."""
    return np.argmax(w, axis=-1)


# --------------------------------------------------------------------------------------------
# The modules: each maps the workspace (B, N) to a proposal (B, N)
# --------------------------------------------------------------------------------------------

def input_module(w, a_onehot):
    """M_input(w) = onehot(a): writes the first addend, whatever the workspace held."""
    return a_onehot.copy()


def increment_module(w):
    """M_increment(w) = P w: (P w)[:, j] = w[:, j − 1 mod N]; digit j moves to j + 1 mod N."""
    return np.roll(w, 1, axis=-1)


def output_module(w):
    """M_output(w) = w: the output (no-op) module leaves the workspace as it is."""
    return w.copy()


def module_proposals(w, a_onehot):
    """Every module's proposal, stacked in the order of :data:`MODULES`: ``(B, M, N)``."""
    return np.stack([input_module(w, a_onehot), increment_module(w), output_module(w)], axis=1)


def workspace_write(w, gates, a_onehot):
    """One gated write: ``w_new[b] = Σ_m gates[b, m] · M_m(w)[b]``.

    ``w (B, N)``, ``gates (B, M)``, ``a_onehot (B, N)`` → ``w_new (B, N)``.
    """
    proposals = module_proposals(w, a_onehot)             # (B, M, N)
    return np.einsum("bm,bmn->bn", gates, proposals)      # Σ_m g_m M_m(w)


# --------------------------------------------------------------------------------------------
# Gates
# --------------------------------------------------------------------------------------------

def soft_gates(logits):
    """softmax over the modules (last axis), ``(..., M)`` → ``(..., M)``; used in training."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def hard_gates(logits):
    """onehot(argmax over the modules), ``(..., M)`` → ``(..., M)``; used at test. Ties go to
    the first module, as ``argmax`` does."""
    return np.eye(logits.shape[-1], dtype=logits.dtype)[np.argmax(logits, axis=-1)]


# --------------------------------------------------------------------------------------------
# Running a gate program; the hand-set program that adds
# --------------------------------------------------------------------------------------------

def run_program(a_onehot, program):
    """Run K gated writes from the blank workspace.

    ``a_onehot (B, N)``, ``program (K, B, M)`` → the workspace after every step,
    ``(K + 1, B, N)`` with ``[0]`` the blank workspace and ``[K]`` the answer.
    """
    B, N = a_onehot.shape
    w = blank_workspace(B, N, a_onehot.dtype)
    trajectory = [w]
    for gates in program:                                 # k = 0 … K − 1
        w = workspace_write(w, gates, a_onehot)           # w_{k+1} = Σ_m g_{k,m} M_m(w_k)
        trajectory.append(w)
    return np.stack(trajectory)


def hand_set_program(b, n_steps: int, dtype=np.float64):
    """The gates that compute a + b: input at step 0, increment at steps 1 … b, output after.

    ``b (B,)`` integers with ``0 ≤ b ≤ K − 2`` (the last step is always the output), ``K =
    n_steps`` → ``(K, B, M)`` one-hot gates.
    """
    b = np.asarray(b)
    step = np.arange(n_steps)[:, None]                    # (K, 1)
    choice = np.where(step == 0, INPUT, np.where(step <= b[None, :], INCREMENT, OUTPUT))
    return np.eye(len(MODULES), dtype=dtype)[choice]      # (K, B, M)


def add(a, b, n_digits: int, n_steps: int):
    """a + b mod N computed by the workspace under the hand-set program, ``(B,)`` integers."""
    trajectory = run_program(one_hot(a, n_digits), hand_set_program(b, n_steps))
    return read_out(trajectory[-1])


# --------------------------------------------------------------------------------------------
# The learned controller: lesson 01's LSTM cell and a linear read-out to the module logits
# --------------------------------------------------------------------------------------------

def cue_of(b, dtype=np.float64):
    """The controller's cue: the second addend as one number, ``b``, ``(B, 1)``.

    A number, not a one-hot: an addend never seen in training is then a point further along the
    line the controller learned on, not an input unit whose weights were never trained.
    """
    return np.asarray(b, dtype=dtype)[:, None]


def controller_input(w, cue, reads_workspace: bool):
    """What the controller reads at a step: ``[w, cue] (B, N + 1)`` or ``cue (B, 1)``."""
    return np.concatenate([w, cue], axis=-1) if reads_workspace else cue


def controller_step(w, cue, state, params, *, reads_workspace: bool = False):
    """One controller step: read the cue (and ``w``), update the LSTM, score the modules.

    ``w (B, N)``, ``cue (B, 1)``, ``state = (h, c)`` each ``(B, H)``; ``params`` the LSTM's
    ``weight_ih (4H, C)``, ``weight_hh (4H, H)``, ``bias_ih``, ``bias_hh (4H,)`` and the
    read-out ``weight_out (M, H)``, ``bias_out (M,)`` → ``(logits (B, M), (h, c))``.
    """
    x = controller_input(w, cue, reads_workspace)         # x_k = cue or [w_k, cue]
    h, c = cells.lstm_step(x, state, params)              # lesson 01's cell
    logits = h @ params["weight_out"].T + params["bias_out"]
    return logits, (h, c)


def controller_run(a_onehot, cue, params, n_steps: int, *, hard: bool = True,
                   reads_workspace: bool = False):
    """The global-workspace model: K steps of controller → gates → gated write.

    ``a_onehot (B, N)``, ``cue (B, 1)``, ``params`` as in :func:`controller_step`, ``K =
    n_steps`` → ``(workspace (K + 1, B, N), gates (K, B, M), logits (K, B, M))``. ``hard=True``
    writes with onehot(argmax) gates, ``hard=False`` with softmax gates.
    """
    B, N = a_onehot.shape
    H = params["weight_hh"].shape[1]
    w = blank_workspace(B, N, a_onehot.dtype)
    state = (np.zeros((B, H), a_onehot.dtype), np.zeros((B, H), a_onehot.dtype))
    trajectory, all_gates, all_logits = [w], [], []
    for _ in range(n_steps):
        logits, state = controller_step(w, cue, state, params, reads_workspace=reads_workspace)
        gates = hard_gates(logits) if hard else soft_gates(logits)
        w = workspace_write(w, gates, a_onehot)
        trajectory.append(w)
        all_gates.append(gates)
        all_logits.append(logits)
    return np.stack(trajectory), np.stack(all_gates), np.stack(all_logits)


def controller_input_size(n_digits: int, reads_workspace: bool) -> int:
    """C: N + 1 when the controller reads the workspace and the cue, 1 for the cue alone."""
    return n_digits + 1 if reads_workspace else 1


def init_controller_params(n_digits: int, hidden_size: int, *, rng, reads_workspace: bool = False,
                           dtype=np.float64):
    """Controller parameters drawn as torch.nn does (U(−1/√H, 1/√H)); input size
    :func:`controller_input_size`."""
    C = controller_input_size(n_digits, reads_workspace)
    params = cells.init_params("lstm", C, hidden_size, rng=rng, dtype=dtype)
    bound = 1.0 / np.sqrt(hidden_size)
    params["weight_out"] = rng.uniform(-bound, bound, (len(MODULES), hidden_size)).astype(dtype)
    params["bias_out"] = rng.uniform(-bound, bound, (len(MODULES),)).astype(dtype)
    return params
