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
            if top == -np.inf:                          # no path reaches j: log 0
                out[n, j] = -np.inf
            else:
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


# --- the −inf guard (issue 11): a left-to-right HMM with unreached states -------------------

@mutant(MUTANTS, "the max shift has no −inf guard")
def max_shift_without_guard(log_alpha, log_A, log_b):
    scores = log_alpha[:, :, None] + log_A[None, :, :]
    m = scores.max(axis=1, keepdims=True)                  # −inf where no path reaches j
    return np.log(np.exp(scores - m).sum(axis=1)) + m[:, 0, :] + log_b


@mutant(MUTANTS, "max instead of a sum", wrong={"log_alpha_new"})
def best_predecessor_only(log_alpha, log_A, log_b):
    out = np.empty_like(log_alpha)
    for j in range(log_A.shape[1]):
        out[:, j] = np.max(log_alpha + log_A[:, j], axis=1) + log_b[:, j]
    return out


@mutant(MUTANTS, "summed over the wrong axis", wrong={"log_alpha_new"})
def logsumexp_over_the_next_state(log_alpha, log_A, log_b):
    from scipy.special import logsumexp
    return logsumexp(log_alpha[:, :, None] + log_A[None], axis=2) + log_b


@mutant(MUTANTS, "no known mistake matches your result", wrong={"log_alpha_new"})
def emission_inside_the_max_only(log_alpha, log_A, log_b):
    # log b added to the shift m but not to the sum: right only where one term dominates
    from scipy.special import logsumexp
    scores = log_alpha[:, :, None] + log_A[None]
    return logsumexp(scores, axis=1) + np.max(log_b, axis=1, keepdims=True)


def forward_step_with_scipy(log_alpha, log_A, log_b):
    """Right, with scipy's logsumexp (which guards the shift itself)."""
    from scipy.special import logsumexp
    return logsumexp(log_alpha[:, :, None] + log_A[None], axis=1) + log_b


def forward_step_with_logaddexp(log_alpha, log_A, log_b):
    """Right, folding np.logaddexp over the previous state."""
    return np.logaddexp.reduce(log_alpha[:, :, None] + log_A[None], axis=1) + log_b


def forward_step_with_torch(log_alpha, log_A, log_b):
    """Right, with torch.logsumexp, converted back to NumPy."""
    import torch
    scores = torch.from_numpy(log_alpha)[:, :, None] + torch.from_numpy(log_A)[None]
    return (torch.logsumexp(scores, dim=1) + torch.from_numpy(log_b)).numpy()


ALTERNATIVES = [forward_step_with_scipy, forward_step_with_logaddexp, forward_step_with_torch]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "where a column of log_A is near −800 your log α is −inf", wrong={"log_alpha_new"})
def only_alpha_shifted(log_alpha, log_A, log_b):
    top = np.max(log_alpha, axis=1)[:, None]
    alpha = np.exp(log_alpha - top)                        # ≤ 1, but exp(log_A) is not shifted
    with np.errstate(divide="ignore"):
        return np.log(np.einsum("ni,ij->nj", alpha, np.exp(log_A))) + top + log_b


@mutant(MUTANTS, "where log_alpha is near −800 your log α is −inf", wrong={"log_alpha_new"})
def only_transitions_shifted(log_alpha, log_A, log_b):
    top = log_A.max(axis=0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(log_alpha) @ np.exp(log_A - top)) + top + log_b


@mutant(MUTANTS, "NaN where the expected value is −inf", wrong={"log_alpha_new"})
def unguarded_shift_with_warnings_off(log_alpha, log_A, log_b):
    # the NaN of −inf − (−inf) silenced instead of guarded
    scores = log_alpha[:, :, None] + log_A[None]
    best = np.max(scores, axis=1)
    with np.errstate(invalid="ignore"):
        return best + np.log(np.sum(np.exp(scores - best[:, None, :]), axis=1)) + log_b


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "the max shift is one number for the whole batch", wrong={"log_alpha_new"})
def one_shift_for_every_sequence(log_alpha, log_A, log_b):
    # one shift: the largest finite term over every sequence, source and target state
    terms = log_alpha[:, :, None] + log_A[None, :, :]
    top = terms[np.isfinite(terms)].max()
    with np.errstate(divide="ignore"):
        return np.log(np.exp(terms - top).sum(axis=1)) + top + log_b
