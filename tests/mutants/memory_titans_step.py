"""Wrong answers to ``titans_step(M, S, k, v, eta, theta, alpha) -> (M_new, S_new)``:
S_new = η S − θ · 2 (M k − v) kᵀ, M_new = (1 − α) M + S_new."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(M, S, k, v, eta, theta, alpha):
    raise NotImplementedError


def correct(M, S, k, v, eta, theta, alpha):
    surprise = -theta * 2 * np.outer(M @ k - v, k)
    S_new = eta * S + surprise
    return M - alpha * M + S_new, S_new


def _grad(M, k, v):
    return 2 * np.outer(M @ k - v, k)


@mutant(MUTANTS, "the forgetting also scales the new surprise", wrong={"M_new"})
def forget_everything(M, S, k, v, eta, theta, alpha):
    S = eta * S - theta * _grad(M, k, v)
    return (1 - alpha) * (M + S), S


@mutant(MUTANTS, "updated with the OLD momentum", wrong={"M_new"})
def memory_first(M, S, k, v, eta, theta, alpha):
    M_new = (1 - alpha) * M + S
    S_new = eta * S - theta * _grad(M, k, v)
    return M_new, S_new


@mutant(MUTANTS, "not the retention", wrong={"M_new"})
def alpha_keeps(M, S, k, v, eta, theta, alpha):
    S = eta * S - theta * _grad(M, k, v)
    return alpha * M + S, S


@mutant(MUTANTS, "the gradient is added", wrong={"M_new", "S_new"})
def ascent(M, S, k, v, eta, theta, alpha):
    S = eta * S + theta * _grad(M, k, v)
    return (1 - alpha) * M + S, S


@mutant(MUTANTS, "an exponential moving average", wrong={"M_new", "S_new"})
def ema_momentum(M, S, k, v, eta, theta, alpha):
    S = eta * S - (1 - eta) * theta * _grad(M, k, v)
    return (1 - alpha) * M + S, S


@mutant(MUTANTS, "must return the tuple (M_new, S_new); got a ndarray")
def returns_only_memory(M, S, k, v, eta, theta, alpha):
    S = eta * S - theta * _grad(M, k, v)
    return (1 - alpha) * M + S
