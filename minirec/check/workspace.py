r"""Checks for the exercises on the global workspace (lesson 08).

Each ``check_*`` function takes the learner's function, runs it and the reference
(:mod:`minirec.workspace.reference`) on a few cases, prints ``✓ <name>: passed on N cases`` when
they agree, and otherwise raises :class:`~minirec.check.CheckFailed` with a per-tensor table and
a diagnosis.

Workspaces in the cases are random positive rows, not one-hot digits: a shift in the wrong
direction, along the wrong axis or without the wrap-around then changes many numbers, not one.
Gates are softmaxes of random logits, so that every module's term counts and no two gates are
equal. Batches have B ≥ 2 (a roll of the flattened array crosses rows) and one case has B = 1.
In the programs' cases the largest b is not example 0's, so that one example's program given
to all shows which one (b[0], b.max()).

Exercise signatures::

    increment_module(w) -> (B, N)                      (P w)[:, j] = w[:, j − 1 mod N]
    workspace_write(w, gates, a_onehot) -> (B, N)       Σ_m gates[:, m] · M_m(w)
    hand_set_program(b, n_steps) -> (K, B, M)           input, b increments, then output

The *suspects* below are written from the equations, one mistake each, and named in the
learner's terms. A learner's result that equals a suspect's on every case gets its message.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from minirec.check._core import Case, Exercise, Suspect, one_output, run_check
from minirec.workspace import reference as ref

__all__ = ["check_increment_module", "check_workspace_write", "check_hand_set_program"]


def _workspaces(rng, B, N):
    """Random positive rows that sum to one: distributions over the digits."""
    w = rng.uniform(0.1, 1.0, size=(B, N))
    return w / w.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# The increment module
# ---------------------------------------------------------------------------------------------

def _shift_without_wrap(w, fill_first):
    out = np.zeros_like(w) if fill_first == "zero" else w.copy()
    out[:, 1:] = w[:, :-1]
    return out


def _increment_suspects():
    return (
        Suspect("shifted the wrong way (a decrement): the increment moves digit j to j + 1, so "
                "new[:, j] = w[:, j − 1], np.roll(w, +1, axis=-1), not −1",
                lambda w: np.roll(w, -1, axis=-1)),
        Suspect("np.roll without axis=-1 shifts the FLATTENED array: the last digit of each "
                "row lands at the start of the NEXT row instead of wrapping within its own row",
                lambda w: np.roll(w, 1)),
        Suspect("shifted along the batch axis (axis 0): each example got its neighbour's "
                "workspace; the digits are on the last axis", lambda w: np.roll(w, 1, axis=0)),
        Suspect("no wrap-around: the top digit N − 1 must wrap to 0 (sums are mod N), so "
                "new[:, 0] = w[:, N − 1]; your shift drops it and leaves 0 in column 0",
                lambda w: _shift_without_wrap(w, "zero")),
        Suspect("column 0 kept its old value: the shift moved columns 0 … N − 2 up by one but "
                "column 0 must receive w[:, N − 1] (mod N)",
                lambda w: _shift_without_wrap(w, "keep")),
        Suspect("nothing moved: the increment must shift every digit up by one, "
                "new[:, j] = w[:, j − 1 mod N]", lambda w: w.copy()),
    )


def _increment_cases(seed):
    rng = np.random.default_rng(seed)
    return tuple(Case((_workspaces(rng, B, N),), {"B": B, "N": N})
                 for B, N in ((3, 5), (1, 7), (4, 13), (2, 2)))


@cache
def _increment_exercise():
    return Exercise(
        name="increment_module", reference=ref.increment_module,
        cases=_increment_cases(seed=3401), suspects=_increment_suspects(),
        outputs=one_output("w_new"), shapes={"w_new": ("B", "N")}, arg_names=("w",),
        shape_hints={"w_new": "The increment maps the workspace (B, N) to one of the same shape"},
    )


def check_increment_module(increment_module) -> None:
    """Check ``increment_module(w (B, N)) -> (B, N)``: every digit moves up by one, mod N,
    ``new[:, j] = w[:, j − 1 mod N]``."""
    run_check(_increment_exercise(), increment_module)


# ---------------------------------------------------------------------------------------------
# The gated workspace write
# ---------------------------------------------------------------------------------------------

def _write_variant(w, gates, a_onehot, *, order=(0, 1, 2), residual=False, input_from="a",
                   gate_rows="own", use_gates=True, increment_of="w"):
    """The gated write with one mistake switched on (see the suspects); ``increment_of="a"``
    shifts the addend a_onehot instead of the workspace."""
    g = {"own": lambda: gates, "first": lambda: gates[:1].repeat(gates.shape[0], axis=0),
         "reshaped": lambda: gates.reshape(gates.shape[1], gates.shape[0]).T}[gate_rows]()
    shifted = ref.increment_module(w if increment_of == "w" else a_onehot)
    proposals = [a_onehot if input_from == "a" else w, shifted, w]
    if not use_gates:
        return sum(proposals)
    new = sum(g[:, [i]] * proposals[m] for i, m in enumerate(order))
    return w + new if residual else new


def _write_suspect(message, **mistake):
    return Suspect(message, lambda w, gates, a_onehot: _write_variant(w, gates, a_onehot,
                                                                      **mistake))


def _write_suspects():
    return (
        _write_suspect("the increment and output gates are swapped: gates[:, 1] belongs to the "
                       "increment module and gates[:, 2] to the output module (MODULES = "
                       "input, increment, output)", order=(0, 2, 1)),
        _write_suspect("the input and increment gates are swapped: gates[:, 0] is the input "
                       "module's, gates[:, 1] the increment's", order=(1, 0, 2)),
        _write_suspect("the write is added to the old workspace: the new workspace IS the gated "
                       "sum Σ_m g_m M_m(w) — the output module (g_2 · w) is how the old content "
                       "is kept", residual=True),
        _write_suspect("the input module wrote the workspace instead of a: M_input(w) = onehot(a), "
                       "it loads the first addend whatever the workspace held", input_from="w"),
        _write_suspect("every example used the gates of the first one: gates[b] belongs to "
                       "example b (index gates[:, m], a (B,) column, not gates[0])",
                       gate_rows="first"),
        _write_suspect("the gates are not applied: the proposals were summed with weight one "
                       "each; the write is Σ_m g_m M_m(w)", use_gates=False),
        _write_suspect("gates.reshape(M, B) is not gates.T: a reshape regroups the values in "
                       "memory order (gates[0, 0], gates[0, 1], … fill the first module's row), "
                       "mixing examples and modules; index gates[:, m] (or use gates.T[m])",
                       gate_rows="reshaped"),
        _write_suspect("the increment module shifted a_onehot instead of the workspace: "
                       "M_increment(w) = P w moves what the workspace holds up by one; only the "
                       "input module reads a", increment_of="a"),
    )


def _write_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for B, N in ((3, 5), (1, 7), (4, 11), (2, 3)):
        w = _workspaces(rng, B, N)
        gates = ref.soft_gates(rng.normal(scale=1.5, size=(B, len(ref.MODULES))))
        a_onehot = ref.one_hot(rng.integers(0, N, size=B), N)
        cases.append(Case((w, gates, a_onehot), {"B": B, "N": N}))
    return tuple(cases)


@cache
def _write_exercise():
    return Exercise(
        name="workspace_write", reference=ref.workspace_write, cases=_write_cases(seed=3402),
        suspects=_write_suspects(), outputs=one_output("w_new"), shapes={"w_new": ("B", "N")},
        arg_names=("w", "gates", "a_onehot"),
        matmul_hint="gates[:, m] has shape (B,): keep it a column, gates[:, m:m + 1] (B, 1), so "
                    "that it scales its own example's row of the proposal (B, N)",
        shape_hints={"w_new": "Sum the modules' proposals over the module axis: one workspace "
                              "(B, N) comes out"},
    )


def check_workspace_write(workspace_write) -> None:
    """Check ``workspace_write(w (B, N), gates (B, M), a_onehot (B, N)) -> (B, N)``:
    ``Σ_m gates[:, m] · M_m(w)`` with the modules input, increment, output."""
    run_check(_write_exercise(), workspace_write)


# ---------------------------------------------------------------------------------------------
# The hand-set program that adds
# ---------------------------------------------------------------------------------------------

def _program_from_choices(choice):
    return np.eye(len(ref.MODULES))[choice]


def _program_variant(b, n_steps, *, last=None, tail=ref.OUTPUT, increments_last=False):
    """input at step 0, increment at steps 1 … last (default b), ``tail`` after;
    ``increments_last`` puts the b increments at the end instead."""
    b = np.asarray(b)
    k = np.arange(n_steps)[:, None]
    if increments_last:
        choice = np.where(k == 0, ref.INPUT,
                          np.where(k >= n_steps - b[None, :], ref.INCREMENT, tail))
    else:
        end = b[None, :] if last is None else last(b)[None, :]
        choice = np.where(k == 0, ref.INPUT, np.where((k >= 1) & (k <= end), ref.INCREMENT, tail))
    return _program_from_choices(choice)


def _program_suspect(message, **mistake):
    return Suspect(message, lambda b, n_steps: _program_variant(b, n_steps, **mistake))


def _program_suspects():
    return (
        _program_suspect("one increment too few: step 0 is the input, so the b increments are "
                         "steps 1 … b inclusive (k <= b), not 1 … b − 1",
                         last=lambda b: b - 1),
        _program_suspect("one increment too many: the b increments are steps 1 … b; step b + 1 "
                         "is already the output", last=lambda b: b + 1),
        Suspect("the increments start at step 0 and the input step is missing: step 0 must "
                "load a (input) — incrementing the blank workspace does nothing — and the b "
                "increments are steps 1 … b",
                lambda b, n_steps: _program_from_choices(np.where(
                    np.arange(n_steps)[:, None] < np.asarray(b)[None, :], ref.INCREMENT,
                    ref.OUTPUT))),
        _program_suspect("the last steps run the input module: it writes a again and erases "
                         "the sum; after the increments use the output module (a no-op)",
                         tail=ref.INPUT),
        _program_suspect("the increments come after the output steps: this still adds (the "
                         "output module is a no-op), but the program asked for is input, then "
                         "the b increments at steps 1 … b, then output — the order the "
                         "controller is taught", increments_last=True),
    )


def _program_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for B, K in ((5, 7), (1, 3), (6, 11), (3, 2)):
        b = rng.integers(0, K - 2, size=B) if K > 2 else np.zeros(B, np.int64)
        b[-1] = K - 2                                        # the longest program K allows,
        if B > 2:                                            # not example 0's
            b[1] = 0                                         # b = 0: input, then output only
        cases.append(Case((b, K), {"K": K, "B": B}))
    return tuple(cases)


@cache
def _program_exercise():
    return Exercise(
        name="hand_set_program", reference=ref.hand_set_program, cases=_program_cases(seed=3403),
        suspects=_program_suspects(), outputs=one_output("program"),
        shapes={"program": ("K", "B", "M")}, arg_names=("b", "n_steps"),
        shape_hints={"program": "Time first: program[k] holds the gates of every example at "
                                "step k, one-hot over the M = 3 modules"},
    )


def check_hand_set_program(hand_set_program) -> None:
    """Check ``hand_set_program(b (B,) integers, n_steps K) -> (K, B, M)``: one-hot gates,
    input at step 0, increment at steps 1 … b, output at steps b + 1 … K − 1."""
    run_check(_program_exercise(), hand_set_program)
