"""Wrong answers to ``linear_memory_grad(M, k, v) -> G`` = ∇_M ‖M k − v‖² = 2 (M k − v) kᵀ."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(M, k, v):
    raise NotImplementedError


def correct(M, k, v):
    residual = np.einsum("ij,j->i", M, k) - v
    return 2 * residual[:, None] * k


@mutant(MUTANTS, "the factor 2 is missing", wrong={"G"})
def no_two(M, k, v):
    return np.outer(M @ k - v, k)


@mutant(MUTANTS, "the sign is flipped", wrong={"G"})
def descent_direction(M, k, v):
    return 2 * np.outer(v - M @ k, k)


@mutant(MUTANTS, "v is missing from the residual", wrong={"G"})
def forgot_v(M, k, v):
    return 2 * np.outer(M @ k, k)


@mutant(MUTANTS, "MEAN squared error", wrong={"G"})
def mean_squared(M, k, v):
    return np.outer(2 * (M @ k - v) / v.size, k)


@mutant(MUTANTS, "it looks transposed", wrong={"G"})
def k_first(M, k, v):
    return 2 * np.outer(k, M @ k - v)
