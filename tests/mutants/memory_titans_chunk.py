"""Wrong answers to ``titans_chunk(M, S, k, v, q, eta, theta, alpha) -> (y, M_new, S_new)``:
one chunk of Titans' linear memory, every gradient at the chunk's first memory, momentum and
forgetting as scans across the chunk, y_t = M_t q_t."""

import numpy as np

from minirec.scan.reference import linear_recurrence

from . import mutant

MUTANTS: list = []


def blank(M, S, k, v, q, eta, theta, alpha):
    raise NotImplementedError


def correct(M, S, k, v, q, eta, theta, alpha):
    G = 2 * np.einsum("ti,tj->tij", k @ M.T - v, k)              # all at the chunk's start
    S_all = linear_recurrence(eta[:, None, None], -theta[:, None, None] * G, S)
    M_all = linear_recurrence((1 - alpha)[:, None, None], S_all, M)
    return np.einsum("tij,tj->ti", M_all, q), M_all[-1], S_all[-1]


def _grad(M, k, v):
    return 2 * np.outer(M @ k - v, k)


@mutant(MUTANTS, "the per-token rule", wrong={"y", "M_new", "S_new"})
def per_token(M, S, k, v, q, eta, theta, alpha):
    ys = []
    for t in range(len(k)):
        S = eta[t] * S - theta[t] * _grad(M, k[t], v[t])
        M = (1 - alpha[t]) * M + S
        ys.append(M @ q[t])
    return np.array(ys), M, S


@mutant(MUTANTS, "reads the memory before step t's write", wrong={"y"})
def read_then_write(M, S, k, v, q, eta, theta, alpha):
    M0, ys = M, []
    for t in range(len(k)):
        ys.append(M @ q[t])
        S = eta[t] * S - theta[t] * _grad(M0, k[t], v[t])
        M = (1 - alpha[t]) * M + S
    return np.array(ys), M, S


@mutant(MUTANTS, "momentum carried in from the previous chunk was dropped",
        wrong={"y", "M_new", "S_new"})
def fresh_momentum(M, S, k, v, q, eta, theta, alpha):
    G = np.stack([_grad(M, k[t], v[t]) for t in range(len(k))])
    S_all = linear_recurrence(eta[:, None, None], -theta[:, None, None] * G)
    M_all = linear_recurrence((1 - alpha)[:, None, None], S_all, M)
    return np.einsum("tij,tj->ti", M_all, q), M_all[-1], S_all[-1]


@mutant(MUTANTS, "the momentum is missing from the memory", wrong={"y", "M_new"})
def gradient_straight_into_memory(M, S, k, v, q, eta, theta, alpha):
    G = np.stack([_grad(M, k[t], v[t]) for t in range(len(k))])
    S_all = linear_recurrence(eta[:, None, None], -theta[:, None, None] * G, S)
    M_all = linear_recurrence((1 - alpha)[:, None, None], -theta[:, None, None] * G, M)
    return np.einsum("tij,tj->ti", M_all, q), M_all[-1], S_all[-1]


@mutant(MUTANTS, "Return the memory after the chunk's last step", wrong={"M_new", "S_new"})
def every_step_returned(M, S, k, v, q, eta, theta, alpha):
    G = np.stack([_grad(M, k[t], v[t]) for t in range(len(k))])
    S_all = linear_recurrence(eta[:, None, None], -theta[:, None, None] * G, S)
    M_all = linear_recurrence((1 - alpha)[:, None, None], S_all, M)
    return np.einsum("tij,tj->ti", M_all, q), M_all, S_all


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "every y_t reads the chunk's first memory", wrong={"y"})
def retrieval_from_the_start(M, S, k, v, q, eta, theta, alpha):
    G = np.stack([_grad(M, k[t], v[t]) for t in range(len(k))])
    S_all = linear_recurrence(eta[:, None, None], -theta[:, None, None] * G, S)
    M_all = linear_recurrence((1 - alpha)[:, None, None], S_all, M)
    return q @ M.T, M_all[-1], S_all[-1]


@mutant(MUTANTS, "α is the forgetting rate, not the retention", wrong={"y", "M_new"})
def alpha_kept(M, S, k, v, q, eta, theta, alpha):
    M0, ys = M, []
    for t in range(len(k)):
        S = eta[t] * S - theta[t] * _grad(M0, k[t], v[t])
        M = alpha[t] * M + S
        ys.append(M @ q[t])
    return np.array(ys), M, S


def chunk_in_a_loop(M, S, k, v, q, eta, theta, alpha):
    """Right, step by step with the gradients frozen at the chunk's first memory."""
    M0, ys = M, []
    for t in range(len(k)):
        S = eta[t] * S - theta[t] * _grad(M0, k[t], v[t])
        M = (1 - alpha[t]) * M + S
        ys.append(M @ q[t])
    return np.array(ys), M, S


ALTERNATIVES = [chunk_in_a_loop]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "the gradient's factor 2 is missing", wrong={"y", "M_new", "S_new"})
def half_gradient(M, S, k, v, q, eta, theta, alpha):
    return correct(M, S, k, v, q, eta, theta / 2, alpha)    # θ G / 2: the square's 2 dropped


@mutant(MUTANTS, "no forgetting in the memory's scan", wrong={"y", "M_new"})
def memory_never_decays(M, S, k, v, q, eta, theta, alpha):
    G = 2 * np.einsum("ti,tj->tij", k @ M.T - v, k)
    S_all = linear_recurrence(eta[:, None, None], -theta[:, None, None] * G, S)
    M_all = M + np.cumsum(S_all, axis=0)                   # M_t = M_{t−1} + S_t: α left out
    return np.einsum("tij,tj->ti", M_all, q), M_all[-1], S_all[-1]
