"""Wrong answers to ``forward_step(log_alpha, log_A, log_b) -> log_alpha_new``:
log alpha_t[j] = logsumexp_i (log alpha_{t−1}[i] + log A[i, j]) + log b[j]."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(log_alpha, log_A, log_b):
    raise NotImplementedError


def correct(log_alpha, log_A, log_b):
    N, K = log_alpha.shape
    out = np.empty((N, K))
    for n in range(N):
        for j in range(K):
            terms = log_alpha[n] + log_A[:, j]
            top = terms.max()
            out[n, j] = top + np.log(np.exp(terms - top).sum()) + log_b[n, j]
    return out


@mutant(MUTANTS, "A used transposed", wrong={"log_alpha_new"})
def column_for_row(log_alpha, log_A, log_b):
    s = log_alpha[:, None, :] + log_A[None, :, :]        # s[n, j, i] = la[i] + A[j, i]
    m = s.max(axis=2, keepdims=True)
    return (m + np.log(np.exp(s - m).sum(axis=2, keepdims=True)))[:, :, 0] + log_b


@mutant(MUTANTS, "max instead of a sum", wrong={"log_alpha_new"})
def viterbi_step(log_alpha, log_A, log_b):
    return (log_alpha[:, :, None] + log_A).max(axis=1) + log_b


@mutant(MUTANTS, "the emission log B[j, x_t] is missing", wrong={"log_alpha_new"})
def no_emission(log_alpha, log_A, log_b):
    s = log_alpha[:, :, None] + log_A
    m = s.max(axis=1)
    return m + np.log(np.exp(s - m[:, None, :]).sum(axis=1))


@mutant(MUTANTS, "exp underflows: log Σ exp(...) without the max shift", wrong={"log_alpha_new"})
def no_shift(log_alpha, log_A, log_b):
    with np.errstate(divide="ignore"):
        return np.log(np.exp(log_alpha[:, :, None] + log_A).sum(axis=1)) + log_b


@mutant(MUTANTS, "so does leaving log space", wrong={"log_alpha_new"})
def in_probability_space(log_alpha, log_A, log_b):
    with np.errstate(divide="ignore"):
        return np.log(np.exp(log_alpha) @ np.exp(log_A)) + log_b


@mutant(MUTANTS, "the log terms were summed", wrong={"log_alpha_new"})
def sum_of_logs(log_alpha, log_A, log_b):
    return (log_alpha[:, :, None] + log_A).sum(axis=1) + log_b
