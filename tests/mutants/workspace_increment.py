"""Wrong answers to ``increment_module(w (B, N)) -> (B, N)``: new[:, j] = w[:, j − 1 mod N]."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(w):
    raise NotImplementedError


def correct(w):
    N = w.shape[1]
    P = np.eye(N)[(np.arange(N) - 1) % N]          # P[j, i] = 1 where i = j − 1 mod N
    return w @ P.T                                    # new[:, j] = Σ_i P[j, i] w[:, i]


@mutant(MUTANTS, "shifted the wrong way", wrong={"w_new"})
def rolled_backwards(w):
    return np.roll(w, -1, axis=1)


@mutant(MUTANTS, "np.roll without axis=-1", wrong={"w_new"})
def roll_forgot_axis(w):
    return np.roll(w, 1)


@mutant(MUTANTS, "shifted along the batch axis", wrong={"w_new"})
def rolled_over_examples(w):
    return np.roll(w, shift=1, axis=0)


@mutant(MUTANTS, "no wrap-around", wrong={"w_new"})
def concatenated_zero(w):
    return np.concatenate([np.zeros_like(w[:, :1]), w[:, :-1]], axis=1)


@mutant(MUTANTS, "column 0 kept its old value", wrong={"w_new"})
def in_place_slice_shift(w):
    new = w.copy()
    new[:, 1:] = w[:, :-1]
    return new


@mutant(MUTANTS, "shifted the wrong way", wrong={"w_new"})
def permutation_transposed(w):
    N = w.shape[1]
    P = np.eye(N)[(np.arange(N) - 1) % N]
    return w @ P                                      # Pᵀ: the inverse shift


@mutant(MUTANTS, "should have shape", wrong={"w_new"})
def returns_one_row(w):
    return np.roll(w, 1, axis=-1)[0]


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "nothing moved", wrong={"w_new"})
def returns_a_copy(w):
    return w.copy()


def increment_by_indexing(w):
    """Right: new[:, j] = w[:, (j − 1) mod N] by fancy indexing."""
    N = w.shape[1]
    return w[:, (np.arange(N) - 1) % N]


def increment_with_torch(w):
    """Right, torch.roll along the digits, converted back to NumPy."""
    import torch
    return torch.roll(torch.from_numpy(w), shifts=1, dims=1).numpy()


ALTERNATIVES = [increment_by_indexing, increment_with_torch]
