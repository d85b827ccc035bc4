"""Wrong answers to ``delta_rule_write(M, k, v, theta) -> M_new`` = M + θ (v − M k) kᵀ."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(M, k, v, theta):
    raise NotImplementedError


def correct(M, k, v, theta):
    prediction = np.einsum("ij,j->i", M, k)
    return M + theta * (v - prediction)[:, None] * k[None, :]


@mutant(MUTANTS, "Hebbian write, not the delta rule", wrong={"M_new"})
def hebbian(M, k, v, theta):
    return M + theta * np.outer(v, k)


@mutant(MUTANTS, "the error has the wrong sign", wrong={"M_new"})
def error_backwards(M, k, v, theta):
    err = M @ k - v
    return M + theta * np.outer(err, k)


@mutant(MUTANTS, "θ is missing", wrong={"M_new"})
def forgot_theta(M, k, v, theta):
    return M + np.outer(v - M.dot(k), k)


@mutant(MUTANTS, "the old memory is dropped", wrong={"M_new"})
def only_the_increment(M, k, v, theta):
    return theta * np.outer(v - M @ k, k)


@mutant(MUTANTS, "normalised delta rule", wrong={"M_new"})
def normalised(M, k, v, theta):
    return M + theta * np.outer(v - M @ k, k / np.dot(k, k))


@mutant(MUTANTS, "it looks transposed", wrong={"M_new"})
def outer_the_wrong_way(M, k, v, theta):
    return M.T + theta * np.outer(k, v - M @ k)
