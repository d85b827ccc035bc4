"""Wrong answers to ``load_balance_loss(probs, indices) -> loss``: E · Σ_e f_e · P_e, f_e the
fraction of the N·k routing choices sent to expert e, P_e the mean router probability."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(probs, indices):
    raise NotImplementedError


def correct(probs, indices):
    N, E = probs.shape
    onehot = (indices[:, :, None] == np.arange(E)).astype(float)      # (N, k, E)
    f = onehot.mean(axis=(0, 1))
    return float(E * f @ probs.mean(axis=0))


@mutant(MUTANTS, "the factor E is missing", wrong={"loss"})
def no_factor_e(probs, indices):
    f = np.bincount(indices.ravel(), minlength=probs.shape[1]) / indices.size
    return np.sum(f * probs.mean(axis=0))


@mutant(MUTANTS, "f_e counts per token, not per choice", wrong={"loss"})
def divided_by_tokens(probs, indices):
    N, E = probs.shape
    f = np.bincount(indices.ravel(), minlength=E) / N
    return E * np.sum(f * probs.mean(axis=0))


@mutant(MUTANTS, "f_e is the mean probability", wrong={"loss"})
def squared_probs(probs, indices):
    P = probs.mean(axis=0)
    return probs.shape[1] * np.sum(P * P)


@mutant(MUTANTS, "P_e is a sum over the tokens", wrong={"loss"})
def summed_probs(probs, indices):
    E = probs.shape[1]
    f = np.bincount(indices.ravel(), minlength=E) / indices.size
    return E * np.dot(f, probs.sum(axis=0))


@mutant(MUTANTS, "only the first choices are counted", wrong={"loss"})
def top1_counts(probs, indices):
    E = probs.shape[1]
    f = np.bincount(indices[:, 0], minlength=E) / len(indices)
    return E * np.sum(f * probs.mean(axis=0))


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "no known mistake matches your result", wrong={"loss"})
def squared_load(probs, indices):
    # E Σ_e f_e² (the load alone, squared): no suspect
    E = probs.shape[1]
    f = np.bincount(indices.ravel(), minlength=E) / indices.size
    return E * np.sum(f * f)


def balance_with_torch(probs, indices):
    """Right, with torch's one_hot, converted back to a float."""
    import torch
    E = probs.shape[1]
    f = torch.nn.functional.one_hot(torch.from_numpy(indices), E).double().mean(dim=(0, 1))
    return float(E * (f * torch.from_numpy(probs).mean(dim=0)).sum())


def balance_in_a_loop(probs, indices):
    """Right, counting the choices one by one."""
    N, E = probs.shape
    counts = [0] * E
    for row in indices:
        for e in row:
            counts[e] += 1
    return E * sum(counts[e] / indices.size * probs[:, e].mean() for e in range(E))


ALTERNATIVES = [balance_with_torch, balance_in_a_loop]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "an integer division", wrong={"loss"})
def fraction_by_floor_division(probs, indices):
    E = probs.shape[1]
    counts = np.array([np.count_nonzero(indices == e) for e in range(E)])
    f = counts // len(indices.ravel())                     # whole numbers: 0 for every expert
    return float(E * (f * probs.mean(axis=0)).sum())
