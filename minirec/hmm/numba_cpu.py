r"""Compiled HMM kernels for the CPU: forward (scaled and log space), backward, Viterbi.

Same maths as :mod:`minirec.hmm.reference` (notation there), batched over N sequences
``obs (N, T)`` with ``prange`` — one sequence per thread, each a sequential loop over time, so
no thread waits on another. Inside a step every loop runs over the *destination* state j
innermost, on contiguous rows of A, which the compiler vectorises:

- scaled forward (log-likelihood only): the sequences of a thread advance together, one
  ``(n, K) @ (K, K)`` BLAS product per step (a small matrix product runs several times faster
  than n vector-matrix loops), then B[:, x_t] and the normalisation: K² multiply-adds and one
  logarithm per sequence and step;
- scaled forward (every alpha_hat kept), backward: a_t[j] = Σ_i alpha_hat_{t−1}[i] A[i, j], one
  sequence per thread;
- log forward: the same product on exp(log alpha − max) (K exponentials and K logarithms per
  step, not K²);
- Viterbi: delta_t[j] = max_i delta_{t−1}[i] + log A[i, j] (a branch-free, vectorised max), the
  path read back from the stored deltas at the end, as hmmlearn does (ties as the reference and
  hmmlearn: the highest predecessor, the lowest final state).

All kernels are ``@njit(cache=True)``; the first call in a fresh environment compiles them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import get_num_threads, njit, prange

__all__ = ["forward_scaled", "forward_log", "backward_scaled", "backward_log",
           "log_likelihood", "posteriors", "viterbi"]


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


@njit(cache=True)
def _scaled_step(alpha, A, B, x, out):
    """out = alpha @ A * B[:, x] (unnormalised); returns its sum c."""
    K = A.shape[0]
    for j in range(K):
        out[j] = 0.0
    for i in range(K):
        a_i = alpha[i]
        if a_i != 0.0:
            for j in range(K):
                out[j] += a_i * A[i, j]
    c = 0.0
    for j in range(K):
        out[j] *= B[j, x]
        c += out[j]
    return c


@njit(cache=True, nogil=True)
def _loglik_scaled_block(pi, A, B_T, obs, n0, n1, out):
    """Scaled forward of sequences n0 … n1−1 together: one (n, K) @ (K, K) BLAS product per
    step, then the emission factor and the normalisation row by row."""
    T = obs.shape[1]
    K = A.shape[0]
    nb = n1 - n0
    alpha = np.empty((nb, K))
    new = np.empty((nb, K))
    for b in range(nb):
        x = obs[n0 + b, 0]
        for j in range(K):
            new[b, j] = pi[j] * B_T[x, j]
    for t in range(T):
        if t > 0:
            np.dot(alpha, A, new)                    # a_t = alpha_hat_{t−1} @ A
        for b in range(nb):
            x = obs[n0 + b, t]
            c = 0.0
            for j in range(K):
                if t > 0:
                    new[b, j] *= B_T[x, j]           # ... * B[:, x_t]
                c += new[b, j]
            out[n0 + b] += np.log(c)                 # log P(x) = Σ_t log c_t
            inv = 1.0 / c if c > 0.0 else 0.0        # an impossible sequence stays at −inf
            for j in range(K):
                alpha[b, j] = new[b, j] * inv


def _loglik_scaled(pi, A, B, obs):
    """Split the N sequences into one block per Numba thread and run the blocks on Python
    threads (the block kernel releases the GIL). Not ``prange``: a parallel Numba function that
    calls BLAS cannot be cached."""
    N = obs.shape[0]
    B_T = np.ascontiguousarray(B.T)                  # (M, K): the emission row of x_t
    out = np.zeros(N)
    n_blocks = max(1, min(N, get_num_threads()))
    size = -(-N // n_blocks)
    bounds = [(k * size, min(N, (k + 1) * size)) for k in range(n_blocks) if k * size < N]
    if len(bounds) == 1:
        _loglik_scaled_block(pi, A, B_T, obs, 0, N, out)
        return out
    with ThreadPoolExecutor(len(bounds)) as pool:
        list(pool.map(lambda b: _loglik_scaled_block(pi, A, B_T, obs, b[0], b[1], out), bounds))
    return out


@njit(cache=True, parallel=True)
def _forward_scaled_full(pi, A, B, obs):
    N, T = obs.shape
    K = A.shape[0]
    alpha = np.empty((N, T, K))
    c = np.empty((N, T))
    for n in prange(N):
        new = np.empty(K)
        s = 0.0
        for j in range(K):
            new[j] = pi[j] * B[j, obs[n, 0]]
            s += new[j]
        c[n, 0] = s
        s = s if s > 0.0 else 1.0                   # impossible so far: alpha stays 0
        for j in range(K):
            alpha[n, 0, j] = new[j] / s
        for t in range(1, T):
            s = _scaled_step(alpha[n, t - 1], A, B, obs[n, t], new)
            c[n, t] = s
            s = s if s > 0.0 else 1.0
            for j in range(K):
                alpha[n, t, j] = new[j] / s
    return alpha, c


@njit(cache=True, parallel=True)
def _backward_scaled_full(A, B, obs, c):
    N, T = obs.shape
    K = A.shape[0]
    beta = np.empty((N, T, K))
    for n in prange(N):
        w = np.empty(K)
        for i in range(K):
            beta[n, T - 1, i] = 1.0
        for t in range(T - 2, -1, -1):
            x = obs[n, t + 1]
            for j in range(K):
                w[j] = B[j, x] * beta[n, t + 1, j]
            for i in range(K):                      # beta_t[i] = Σ_j A[i, j] w[j] / c_{t+1}
                s = 0.0
                for j in range(K):
                    s += A[i, j] * w[j]
                beta[n, t, i] = s / c[n, t + 1] if c[n, t + 1] > 0.0 else 0.0
    return beta


@njit(cache=True)
def _log_step(log_alpha, A, log_B, x, p, out):
    """out = log(exp(log_alpha) @ A) + log_B[:, x], with one max-shift; returns max(out)."""
    K = A.shape[0]
    m = -np.inf
    for i in range(K):
        m = max(m, log_alpha[i])
    if m == -np.inf:
        for j in range(K):
            out[j] = -np.inf
        return -np.inf
    for i in range(K):
        p[i] = np.exp(log_alpha[i] - m)
    _scaled_step_plain(p, A, out)
    for j in range(K):
        out[j] = np.log(out[j]) + m + log_B[j, x]
    return m


@njit(cache=True)
def _scaled_step_plain(p, A, out):
    K = A.shape[0]
    for j in range(K):
        out[j] = 0.0
    for i in range(K):
        p_i = p[i]
        if p_i != 0.0:
            for j in range(K):
                out[j] += p_i * A[i, j]


@njit(cache=True)
def _logsumexp(v):
    m = -np.inf
    for x in v:
        m = max(m, x)
    if m == -np.inf:
        return m
    s = 0.0
    for x in v:
        s += np.exp(x - m)
    return np.log(s) + m


@njit(cache=True, parallel=True)
def _forward_log_full(log_pi, A, log_B, obs, keep):
    """log alpha (N, T, K) when ``keep``, else (N, 1, K) holding the last step only; and the
    log-likelihoods (N,)."""
    N, T = obs.shape
    K = A.shape[0]
    out = np.empty((N, T if keep else 1, K))
    ll = np.empty(N)
    for n in prange(N):
        cur = np.empty(K)
        new = np.empty(K)
        p = np.empty(K)
        for j in range(K):
            cur[j] = log_pi[j] + log_B[j, obs[n, 0]]
        if keep:
            out[n, 0] = cur
        for t in range(1, T):
            _log_step(cur, A, log_B, obs[n, t], p, new)
            cur[:] = new
            if keep:
                out[n, t] = cur
        if not keep:
            out[n, 0] = cur
        ll[n] = _logsumexp(cur)
    return out, ll


@njit(cache=True, parallel=True)
def _backward_log_full(A, log_B, obs):
    N, T = obs.shape
    K = A.shape[0]
    log_beta = np.zeros((N, T, K))
    A_T = np.ascontiguousarray(A.T)
    for n in prange(N):
        w = np.empty(K)
        p = np.empty(K)
        new = np.empty(K)
        zero = np.zeros((K, 1))
        for t in range(T - 2, -1, -1):
            x = obs[n, t + 1]
            for j in range(K):
                w[j] = log_beta[n, t + 1, j] + log_B[j, x]
            _log_step(w, A_T, zero, 0, p, new)       # log beta_t[i] = log Σ_j A[i, j] e^{w_j}
            log_beta[n, t] = new
    return log_beta


@njit(cache=True, parallel=True)
def _viterbi_kernel(log_pi, log_A, log_B, obs):
    """Forward: the lattice delta (T, K) of each sequence, a pure max over the previous state
    (vectorised, no branch). Backward: the path read off the lattice, as hmmlearn does,
    z_{t} = argmax_i delta_t[i] + log A[i, z_{t+1}] — the very sums the forward pass maximised,
    so no back-pointers are stored and ties go the same way (>=: the highest i)."""
    N, T = obs.shape
    K = log_A.shape[0]
    paths = np.empty((N, T), dtype=np.int64)
    log_prob = np.empty(N)
    for n in prange(N):
        delta = np.empty((T, K))
        best = np.empty(K)
        for j in range(K):
            delta[0, j] = log_pi[j] + log_B[j, obs[n, 0]]
        for t in range(1, T):
            for j in range(K):
                best[j] = -np.inf
            for i in range(K):
                d_i = delta[t - 1, i]
                for j in range(K):
                    best[j] = max(best[j], d_i + log_A[i, j])
            x = obs[n, t]
            for j in range(K):
                delta[t, j] = best[j] + log_B[j, x]
        last = 0
        for j in range(1, K):                      # the first of equal final states
            if delta[T - 1, j] > delta[T - 1, last]:
                last = j
        log_prob[n] = delta[T - 1, last]
        paths[n, T - 1] = last
        for t in range(T - 2, -1, -1):
            nxt = paths[n, t + 1]
            top = -np.inf
            arg = 0
            for i in range(K):                     # >=: the last of equal predecessors
                v = delta[t, i] + log_A[i, nxt]
                if v >= top:
                    top = v
                    arg = i
            paths[n, t] = arg
    return paths, log_prob


# --------------------------------------------------------------------------------------------
# The functions the public API calls: obs (N, T) int64, parameters float64 C-contiguous
# --------------------------------------------------------------------------------------------

def _c(x):
    return np.ascontiguousarray(x, dtype=np.float64)


def forward_scaled(pi, A, B, obs):
    """``(alpha_hat (N, T, K), c (N, T))`` as :func:`minirec.hmm.reference.forward_scaled`."""
    return _forward_scaled_full(_c(pi), _c(A), _c(B), obs)


def backward_scaled(A, B, obs, c):
    """``beta_hat (N, T, K)`` as :func:`minirec.hmm.reference.backward_scaled`."""
    return _backward_scaled_full(_c(A), _c(B), obs, _c(c))


def forward_log(pi, A, B, obs):
    """``log_alpha (N, T, K)`` as :func:`minirec.hmm.reference.forward_log`."""
    return _forward_log_full(_c(_log(pi)), _c(A), _c(_log(B)), obs, True)[0]


def backward_log(A, B, obs):
    """``log_beta (N, T, K)`` as :func:`minirec.hmm.reference.backward_log`."""
    return _backward_log_full(_c(A), _c(_log(B)), obs)


def log_likelihood(pi, A, B, obs, *, method="scaled"):
    """log P(x) per sequence ``(N,)``: "scaled" (the faster) or "log" (the log-space forward,
    which never forms alpha itself)."""
    if method == "scaled":
        return _loglik_scaled(_c(pi), _c(A), _c(B), obs)
    if method == "log":
        return _forward_log_full(_c(_log(pi)), _c(A), _c(_log(B)), obs, False)[1]
    raise ValueError(f"method must be 'scaled' or 'log'; got {method!r}")


def posteriors(pi, A, B, obs):
    """gamma ``(N, T, K)`` = alpha_hat * beta_hat."""
    alpha, c = forward_scaled(pi, A, B, obs)
    return alpha * backward_scaled(A, B, obs, c)


def viterbi(pi, A, B, obs):
    """``(path (N, T), log_prob (N,))``."""
    return _viterbi_kernel(_c(_log(pi)), _c(_log(A)), _c(_log(B)), obs)
