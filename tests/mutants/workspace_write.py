"""Wrong answers to ``workspace_write(w, gates, a_onehot) -> (B, N)``: Σ_m gates[:, m] M_m(w)
with the modules input (onehot(a)), increment (roll by one) and output (w)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(w, gates, a_onehot):
    raise NotImplementedError


def correct(w, gates, a_onehot):
    proposals = np.stack([a_onehot, np.roll(w, 1, axis=1), w])       # (M, B, N)
    return (gates.T[:, :, None] * proposals).sum(axis=0)


@mutant(MUTANTS, "the increment and output gates are swapped", wrong={"w_new"})
def modules_listed_in_another_order(w, gates, a_onehot):
    proposals = [a_onehot, w, np.roll(w, 1, axis=1)]                 # input, output, increment
    return sum(gates[:, m:m + 1] * p for m, p in enumerate(proposals))


@mutant(MUTANTS, "added to the old workspace", wrong={"w_new"})
def residual_update(w, gates, a_onehot):
    return w + gates[:, :1] * a_onehot + gates[:, 1:2] * np.roll(w, 1, axis=1) + gates[:, 2:] * w


@mutant(MUTANTS, "wrote the workspace instead of a", wrong={"w_new"})
def input_reads_workspace(w, gates, a_onehot):
    return gates[:, [0]] * w + gates[:, [1]] * np.roll(w, 1, axis=1) + gates[:, [2]] * w


@mutant(MUTANTS, "used the gates of the first one", wrong={"w_new"})
def gates_of_example_zero(w, gates, a_onehot):
    g_in, g_inc, g_out = gates[0]
    return g_in * a_onehot + g_inc * np.roll(w, 1, axis=1) + g_out * w


@mutant(MUTANTS, "the gates are not applied", wrong={"w_new"})
def plain_sum(w, gates, a_onehot):
    return a_onehot + np.roll(w, 1, axis=1) + w


@mutant(MUTANTS, "keep it a column")
def gate_rows_not_kept_as_columns(w, gates, a_onehot):
    return gates[:, 0] * a_onehot + gates[:, 1] * np.roll(w, 1, axis=1) + gates[:, 2] * w


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "the input and increment gates are swapped", wrong={"w_new"})
def increment_gate_for_the_input(w, gates, a_onehot):
    return (gates[:, 1:2] * a_onehot + gates[:, 0:1] * np.roll(w, 1, axis=1)
            + gates[:, 2:3] * w)


@mutant(MUTANTS, "no known mistake matches your result", wrong={"w_new"})
def gates_renormalised_over_examples(w, gates, a_onehot):
    # each module's gate divided by its sum over the batch: no suspect
    g = gates / gates.sum(axis=0, keepdims=True)
    return g[:, 0:1] * a_onehot + g[:, 1:2] * np.roll(w, 1, axis=1) + g[:, 2:3] * w


def write_by_einsum(w, gates, a_onehot):
    """Right: the proposals stacked on a module axis, contracted with the gates by einsum."""
    proposals = np.stack([a_onehot, np.roll(w, 1, axis=-1), w], axis=1)   # (B, M, N)
    return np.einsum("bm,bmn->bn", gates, proposals)


ALTERNATIVES = [write_by_einsum]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "gates.reshape(M, B) is not gates.T", wrong={"w_new"})
def gates_regrouped_by_reshape(w, gates, a_onehot):
    per_module = gates.reshape(gates.shape[1], gates.shape[0])       # (M, B), not the transpose
    proposals = (a_onehot, np.roll(w, 1, axis=1), w)
    return sum(g[:, None] * p for g, p in zip(per_module, proposals, strict=True))


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "the increment module shifted a_onehot", wrong={"w_new"})
def increment_of_the_addend(w, gates, a_onehot):
    shifted = np.concatenate([a_onehot[:, -1:], a_onehot[:, :-1]], axis=1)
    return gates[:, :1] * a_onehot + gates[:, 1:2] * shifted + gates[:, 2:] * w
