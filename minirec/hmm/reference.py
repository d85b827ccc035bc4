r"""Hidden Markov models with categorical emissions, in NumPy: the specification.

Notation (the same in every file of ``minirec.hmm``)::

    K        hidden states;  M  emission symbols;  T  time steps;  N  sequences
    pi       (K,)    initial distribution      pi[i]   = P(z_0 = i)
    A        (K, K)  transitions, rows sum to 1 A[i, j] = P(z_t = j | z_{t−1} = i)
    B        (K, M)  emissions, rows sum to 1   B[i, m] = P(x_t = m | z_t = i)
    obs      (N, T)  integer symbols in [0, M)  (one sequence: (T,), treated as N = 1)
    alpha_t  (N, K)  forward variable          alpha_t[j] = P(x_0..x_t, z_t = j)
    beta_t   (N, K)  backward variable         beta_t[i]  = P(x_{t+1}..x_{T−1} | z_t = i)
    gamma_t  (N, K)  posterior                 gamma_t[i] = P(z_t = i | x_0..x_{T−1})
    delta_t  (N, K)  Viterbi score             delta_t[j] = max over paths ending in j of log P

Sequences here are ``(N, T)`` — one row per sequence, as the public API takes them — and every
per-step quantity is ``(N, T, K)``. The time loop is explicit; the N sequences and K states
are vectorised.

Two ways to keep the forward pass finite over long sequences:

- **log space**: carry log alpha, combine with logsumexp (:func:`forward_log`);
- **scaling**: normalise alpha_t to sum to 1 and keep the normaliser c_t = P(x_t | x_<t);
  log P(x) = Σ_t log c_t (:func:`forward_scaled`).

And one way to make it parallel: alpha_t = alpha_{t−1} M_t is a product of matrices, so its
prefix products are an associative scan (:func:`forward_scan`, log-matmul combine); Viterbi is
the same scan in the (max, +) semiring (:func:`viterbi_scan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minirec.scan import reference as scan

__all__ = [
    "sample", "as_batch",
    "forward_step", "forward_log", "forward_scaled", "backward_log", "backward_scaled",
    "log_likelihood", "posteriors", "viterbi", "viterbi_backtrack",
    "transition_elements", "forward_scan", "viterbi_scan",
    "expected_counts", "em_step", "fit", "FitResult", "random_model",
    "linear_chain", "cyclic", "random_dense", "brute_force",
    "emission_statistics", "compare_emissions",
]


def _log(x):
    """log with log 0 = −inf and no warning (a forbidden transition is a valid input)."""
    with np.errstate(divide="ignore"):
        return np.log(x)


def as_batch(obs):
    """``obs (T,)`` or ``(N, T)`` → ``(N, T)`` int64, and whether it was one sequence."""
    obs = np.asarray(obs)
    single = obs.ndim == 1
    return np.atleast_2d(obs).astype(np.int64, copy=False), single


def _unbatch(x, single):
    return x[0] if single else x


# ============================================================================================
# Sampling
# ============================================================================================

def sample(pi, A, B, T, *, rng, n=None):
    """Draw ``(states, obs)`` from the HMM: z_0 ~ pi, z_t ~ A[z_{t−1}], x_t ~ B[z_t].

    One sequence ``(T,)`` each when ``n`` is None, else ``(n, T)``. ``rng``: a
    ``np.random.Generator``. Inverse-CDF sampling, vectorised over the n sequences.
    """
    N = 1 if n is None else n
    cum_A, cum_B = np.cumsum(A, axis=1), np.cumsum(B, axis=1)
    K, M = B.shape
    states = np.empty((N, T), dtype=np.int64)
    obs = np.empty((N, T), dtype=np.int64)

    def draw(cum_rows):                       # one categorical draw per row of cum_rows
        u = rng.random(cum_rows.shape[0])[:, None]
        return np.minimum((u >= cum_rows).sum(axis=1), cum_rows.shape[1] - 1)

    states[:, 0] = draw(np.broadcast_to(np.cumsum(pi), (N, K)))
    obs[:, 0] = draw(cum_B[states[:, 0]])
    for t in range(1, T):
        states[:, t] = draw(cum_A[states[:, t - 1]])
        obs[:, t] = draw(cum_B[states[:, t]])
    if n is None:
        return states[0], obs[0]
    return states, obs


# ============================================================================================
# Forward and backward
# ============================================================================================

def forward_step(log_alpha, log_A, log_b):
    """One step of the forward pass in log space (the exercise of lesson 10).

    ``log_alpha (N, K)`` = log alpha_{t−1}, ``log_A (K, K)``, ``log_b (N, K)`` = log B[:, x_t]
    for each sequence. Returns log alpha_t ``(N, K)``:

        log alpha_t[j] = logsumexp_i (log alpha_{t−1}[i] + log A[i, j]) + log B[j, x_t]
    """
    scores = log_alpha[:, :, None] + log_A[None, :, :]          # (N, K_from, K_to)
    m = np.max(scores, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)                          # all −inf: stay −inf
    with np.errstate(divide="ignore"):
        lse = np.log(np.sum(np.exp(scores - m), axis=1)) + m[:, 0, :]
    return lse + log_b


def forward_log(pi, A, B, obs):
    """Forward pass in log space. ``obs (N, T)`` → ``log_alpha (N, T, K)``.

    log alpha_0 = log pi + log B[:, x_0];  log alpha_t = forward_step(log alpha_{t−1}, ...).
    log P(x) = logsumexp_j log alpha_{T−1}[j].
    """
    log_A, log_B = _log(A), _log(B)
    N, T = obs.shape
    log_alpha = np.empty((N, T, A.shape[0]))
    log_alpha[:, 0] = _log(pi) + log_B[:, obs[:, 0]].T
    for t in range(1, T):
        log_alpha[:, t] = forward_step(log_alpha[:, t - 1], log_A, log_B[:, obs[:, t]].T)
    return log_alpha


def forward_scaled(pi, A, B, obs):
    """Forward pass with scaling. ``obs (N, T)`` → ``(alpha_hat (N, T, K), c (N, T))``.

    alpha_hat_t = alpha_t / P(x_0..x_t) sums to 1 over states; c_t = P(x_t | x_0..x_{t−1}):

        a_t = (alpha_hat_{t−1} @ A) * B[:, x_t],   c_t = Σ_j a_t[j],   alpha_hat_t = a_t / c_t

    and log P(x) = Σ_t log c_t. Nothing underflows, whatever T.
    """
    N, T = obs.shape
    alpha = np.empty((N, T, A.shape[0]))
    c = np.empty((N, T))
    a = pi[None, :] * B[:, obs[:, 0]].T
    for t in range(T):
        if t > 0:
            a = (alpha[:, t - 1] @ A) * B[:, obs[:, t]].T
        c[:, t] = a.sum(axis=1)
        alpha[:, t] = a / np.where(c[:, t] > 0, c[:, t], 1.0)[:, None]   # impossible: stays 0
    return alpha, c


def backward_log(A, B, obs):
    """Backward pass in log space. ``obs (N, T)`` → ``log_beta (N, T, K)``.

    log beta_{T−1} = 0;  log beta_t[i] = logsumexp_j (log A[i, j] + log B[j, x_{t+1}]
    + log beta_{t+1}[j]).
    """
    log_A, log_B = _log(A), _log(B)
    N, T = obs.shape
    log_beta = np.zeros((N, T, A.shape[0]))
    for t in range(T - 2, -1, -1):
        # the forward step on the transposed chain: sum over the NEXT state j
        log_beta[:, t] = forward_step(log_beta[:, t + 1] + log_B[:, obs[:, t + 1]].T,
                                      log_A.T, 0.0)
    return log_beta


def backward_scaled(A, B, obs, c):
    """Backward pass scaled by the forward normalisers ``c (N, T)`` → ``beta_hat (N, T, K)``.

    beta_hat_{T−1} = 1;  beta_hat_t = (A @ (B[:, x_{t+1}] * beta_hat_{t+1})) / c_{t+1}, so that
    gamma_t = alpha_hat_t * beta_hat_t exactly.
    """
    N, T = obs.shape
    beta = np.ones((N, T, A.shape[0]))
    for t in range(T - 2, -1, -1):
        c_next = np.where(c[:, t + 1] > 0, c[:, t + 1], np.inf)[:, None]
        beta[:, t] = (B[:, obs[:, t + 1]].T * beta[:, t + 1]) @ A.T / c_next
    return beta


def _logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m, axis)


def log_likelihood(pi, A, B, obs, *, method="log"):
    """log P(x) per sequence: ``obs (T,)`` → ``()``, ``(N, T)`` → ``(N,)``.

    ``method``: "log" (logsumexp of the log-space forward), "scaled" (Σ log c_t) or "scan"
    (the log-matmul associative scan).
    """
    obs, single = as_batch(obs)
    if method == "log":
        ll = _logsumexp(forward_log(pi, A, B, obs)[:, -1], axis=-1)
    elif method == "scaled":
        with np.errstate(divide="ignore"):
            ll = np.sum(np.log(forward_scaled(pi, A, B, obs)[1]), axis=1)
    elif method == "scan":
        ll = _logsumexp(forward_scan(pi, A, B, obs)[:, -1], axis=-1)
    else:
        raise ValueError(f"method must be 'log', 'scaled' or 'scan'; got {method!r}")
    return _unbatch(ll, single)


def posteriors(pi, A, B, obs):
    """gamma_t[i] = P(z_t = i | x): ``obs (T,)`` → ``(T, K)``, ``(N, T)`` → ``(N, T, K)``.

    gamma_t = alpha_t * beta_t / P(x), here from the scaled passes (alpha_hat_t * beta_hat_t).
    """
    obs, single = as_batch(obs)
    alpha, c = forward_scaled(pi, A, B, obs)
    return _unbatch(alpha * backward_scaled(A, B, obs, c), single)


# ============================================================================================
# Viterbi
# ============================================================================================

def viterbi_backtrack(backpointers, last_state):
    """Follow the back-pointers from the end (the exercise of lesson 10).

    ``backpointers (N, T, K)`` int: ``backpointers[n, t, j]`` is the best previous state of j
    at step t (row t = 0 is unused); ``last_state (N,)`` the best final state. Returns the
    best path ``(N, T)``: path_{T−1} = last_state, path_{t−1} = backpointers[t, path_t].
    """
    N, T, _ = backpointers.shape
    path = np.empty((N, T), dtype=np.int64)
    path[:, T - 1] = last_state
    rows = np.arange(N)
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = backpointers[rows, t, path[:, t]]
    return path


def _last_argmax(x, axis):
    """The index of the LAST maximum along ``axis`` (np.argmax gives the first)."""
    return x.shape[axis] - 1 - np.argmax(np.flip(x, axis=axis), axis=axis)


def viterbi(pi, A, B, obs):
    """Most likely state path. ``obs (T,)`` → ``(path (T,), log_prob ())``; ``(N, T)`` →
    ``(path (N, T), log_prob (N,))``.

    delta_0 = log pi + log B[:, x_0];
    delta_t[j] = max_i (delta_{t−1}[i] + log A[i, j]) + log B[j, x_t], back-pointer = argmax_i.
    Ties are broken as hmmlearn does, so that paths agree exactly: among equally good
    predecessors the back-pointer is the HIGHEST index (:func:`_last_argmax`), among equally good
    final states the lowest (np.argmax). Exact ties are not rare: with a repeated symbol, the
    paths 0 → 1 → 0 → 0 and 0 → 0 → 1 → 0 have the same product of probabilities.
    """
    obs, single = as_batch(obs)
    log_A, log_B = _log(A), _log(B)
    N, T = obs.shape
    K = A.shape[0]
    backpointers = np.zeros((N, T, K), dtype=np.int64)
    delta = _log(pi)[None, :] + log_B[:, obs[:, 0]].T
    for t in range(1, T):
        scores = delta[:, :, None] + log_A[None]                    # (N, K_from, K_to)
        backpointers[:, t] = _last_argmax(scores, axis=1)
        delta = np.max(scores, axis=1) + log_B[:, obs[:, t]].T
    path = viterbi_backtrack(backpointers, np.argmax(delta, axis=1))
    return _unbatch(path, single), _unbatch(np.max(delta, axis=1), single)


# ============================================================================================
# The forward pass and Viterbi as associative scans
# ============================================================================================

def transition_elements(pi, A, B, obs):
    """The scan's elements ``(N, T, K, K)`` in log space: M_t[i, j] = log A[i, j] + log B[j, x_t]
    for t ≥ 1, and M_0[i, j] = log pi[j] + log B[j, x_0] (the same for every row i).

    Row vectors: alpha_t = alpha_{t−1} M_t, so alpha_t = 1 M_0 M_1 … M_t — any row of the
    prefix product M_0 ⋯ M_t is log alpha_t.
    """
    log_A, log_B = _log(A), _log(B)
    emit = log_B[:, obs].transpose(1, 2, 0)                         # (N, T, K): log B[j, x_t]
    elems = log_A[None, None, :, :] + emit[:, :, None, :]
    elems[:, 0] = (_log(pi) + emit[:, 0])[:, None, :]
    return elems


def forward_scan(pi, A, B, obs, *, method="hillis_steele"):
    """log alpha ``(N, T, K)`` as an associative scan of :func:`transition_elements` with the
    log-matmul combine (``minirec.scan.reference.log_matmul``); any scan method."""
    elems = np.moveaxis(transition_elements(pi, A, B, obs), 1, 0)   # time first: (T, N, K, K)
    prefix = scan.associative_scan(scan.log_matmul, elems, method=method)
    return np.moveaxis(prefix[:, :, 0, :], 0, 1)


def viterbi_scan(pi, A, B, obs, *, method="hillis_steele"):
    """Viterbi as a max-plus scan: ``(path (N, T), log_prob (N,))``.

    The scan gives delta_t (row 0 of the max-plus prefix products). The path then needs no
    back-pointers: z_{T−1} = argmax delta_{T−1}, z_t = argmax_i delta_t[i] + log A[i, z_{t+1}]
    (ties as :func:`viterbi`; this is how hmmlearn backtracks).
    """
    obs, single = as_batch(obs)
    elems = np.moveaxis(transition_elements(pi, A, B, obs), 1, 0)
    delta = np.moveaxis(scan.associative_scan(scan.max_plus, elems, method=method)[:, :, 0, :],
                        0, 1)                                       # (N, T, K)
    log_A = _log(A)
    N, T, _ = delta.shape
    path = np.empty((N, T), dtype=np.int64)
    path[:, -1] = np.argmax(delta[:, -1], axis=1)
    for t in range(T - 2, -1, -1):
        path[:, t] = _last_argmax(delta[:, t] + log_A[:, path[:, t + 1]].T, axis=1)
    return _unbatch(path, single), _unbatch(np.max(delta[:, -1], axis=1), single)


# ============================================================================================
# Brute force (the independent oracle for tiny T)
# ============================================================================================

def brute_force(pi, A, B, obs):
    """Enumerate all K^T paths of one sequence ``obs (T,)``. Returns a dict with
    ``log_likelihood ()``, ``posteriors (T, K)``, ``path (T,)`` and ``log_prob ()``.

    P(x, z) = pi[z_0] B[z_0, x_0] Π_t A[z_{t−1}, z_t] B[z_t, x_t]; P(x) = Σ_z P(x, z);
    P(z_t = i | x) = Σ_{z: z_t = i} P(x, z) / P(x); the best path maximises P(x, z).
    Use only for K^T up to ~10^5.
    """
    obs = np.asarray(obs)
    T, K = obs.shape[0], A.shape[0]
    paths = np.stack(np.meshgrid(*[np.arange(K)] * T, indexing="ij"), -1).reshape(-1, T)
    joint = pi[paths[:, 0]] * B[paths[:, 0], obs[0]]
    for t in range(1, T):
        joint = joint * A[paths[:, t - 1], paths[:, t]] * B[paths[:, t], obs[t]]
    total = joint.sum()
    gamma = np.zeros((T, K))
    for t in range(T):
        np.add.at(gamma[t], paths[:, t], joint)
    best = int(np.argmax(joint))
    return {"log_likelihood": np.log(total), "posteriors": gamma / total,
            "path": paths[best], "log_prob": np.log(joint[best])}


# ============================================================================================
# Baum–Welch (EM)
# ============================================================================================

def expected_counts(pi, A, B, obs):
    """E-step. ``obs (N, T)`` → dict of expected counts under the posterior:

    ``start (K,)`` Σ_n gamma_0, ``trans (K, K)`` Σ_{n,t} xi_t[i, j] with
    xi_t[i, j] = alpha_hat_{t−1}[i] A[i, j] B[j, x_t] beta_hat_t[j] / c_t,
    ``emit (K, M)`` Σ_{n,t: x_t = m} gamma_t, and ``log_likelihood ()`` Σ_n log P(x_n).
    """
    alpha, c = forward_scaled(pi, A, B, obs)
    beta = backward_scaled(A, B, obs, c)
    gamma = alpha * beta                                            # (N, T, K)
    K, M = B.shape
    next_term = B[:, obs[:, 1:]].transpose(1, 2, 0) * beta[:, 1:] / c[:, 1:, None]
    trans = A * np.einsum("nti,ntj->ij", alpha[:, :-1], next_term)
    emit = np.zeros((K, M))
    for m in range(M):
        emit[:, m] = gamma[obs == m].sum(axis=0)
    return {"start": gamma[:, 0].sum(axis=0), "trans": trans, "emit": emit,
            "log_likelihood": np.log(c).sum()}


def _normalise_rows(x):
    s = x.sum(axis=-1, keepdims=True)
    return np.where(s > 0, x / np.where(s > 0, s, 1.0), 1.0 / x.shape[-1])


def em_step(pi, A, B, obs):
    """One Baum–Welch iteration: ``(pi, A, B, log_likelihood of the INPUT parameters)``.

    M-step: each distribution is its expected counts, normalised (a state never visited keeps
    a uniform row).
    """
    counts = expected_counts(pi, A, B, obs)
    return (_normalise_rows(counts["start"]), _normalise_rows(counts["trans"]),
            _normalise_rows(counts["emit"]), counts["log_likelihood"])


@dataclass
class FitResult:
    """``pi (K,)``, ``A (K, K)``, ``B (K, M)`` after fitting; ``log_likelihoods`` the total
    log-likelihood of the data before each EM step (non-decreasing), and whether the change
    fell below ``tol``."""

    pi: np.ndarray
    A: np.ndarray
    B: np.ndarray
    log_likelihoods: np.ndarray
    converged: bool


def random_model(n_states, n_symbols, *, rng, concentration=1.0):
    """pi, A, B with rows drawn from a symmetric Dirichlet(concentration)."""
    pi = rng.dirichlet(np.full(n_states, concentration))
    A = rng.dirichlet(np.full(n_states, concentration), size=n_states)
    B = rng.dirichlet(np.full(n_symbols, concentration), size=n_states)
    return pi, A, B


def fit(obs, n_states, n_symbols, *, rng, n_iter=100, tol=1e-6, init=None):
    """Baum–Welch from ``init = (pi, A, B)`` or a random start drawn with ``rng``.

    ``obs (N, T)``. Stops after ``n_iter`` steps or when the log-likelihood gains less than
    ``tol`` (absolute, per symbol) in one step. Returns a :class:`FitResult`.
    """
    obs, _ = as_batch(obs)
    pi, A, B = init if init is not None else random_model(n_states, n_symbols, rng=rng)
    history, converged = [], False
    for _ in range(n_iter):
        new = em_step(pi, A, B, obs)
        history.append(new[3])
        pi, A, B = new[:3]
        if len(history) > 1 and history[-1] - history[-2] < tol * obs.size:
            converged = True
            break
    history.append(log_likelihood(pi, A, B, obs, method="scaled").sum())
    return FitResult(pi, A, B, np.array(history), converged)


# ============================================================================================
# The model families of the paper (Torre et al. 2025)
# ============================================================================================

def _linear_emissions(n_states, n_symbols):
    """State i emits the first and last symbols with weights 0.99(1 − a), 0.99 a (a = i/(K−1))
    and 0.01 for the middle one (3 symbols); for M ≠ 3, a linear ramp between the two ends,
    normalised."""
    B = np.zeros((n_states, n_symbols))
    for i in range(n_states):
        a = i / (n_states - 1) if n_states > 1 else 0.0
        first, last = 0.99 * (1 - a), 0.99 * a
        B[i] = [first, 0.01, last] if n_symbols == 3 else np.linspace(first, last, n_symbols)
    return B / B.sum(axis=1, keepdims=True)


def linear_chain(n_states, *, target_prob=0.05, n_symbols=3):
    """The paper's linear chain: a walk on states 0 … K−1 that moves to each neighbour with
    probability q = target_prob^(1/(K−1)) (the ends stay with 1 − q), uniform pi, linear
    emissions. Returns ``(pi, A, B)``."""
    if n_states < 2:
        raise ValueError(f"n_states must be at least 2; got {n_states}")
    q = target_prob ** (1 / (n_states - 1))
    if n_states > 2 and 2 * q > 1:
        raise ValueError(f"target_prob={target_prob} gives q = {q:.3f} > 1/2 for "
                         f"{n_states} states: the middle states would have 1 − 2q < 0")
    A = np.zeros((n_states, n_states))
    for i in range(n_states):
        for j in (i - 1, i + 1):
            if 0 <= j < n_states:
                A[i, j] = q
        A[i, i] = 1 - A[i].sum()
    return np.full(n_states, 1 / n_states), A, _linear_emissions(n_states, n_symbols)


def cyclic(n_states, *, stay_prob=0.95, n_symbols=3):
    """A cycle 0 → 1 → … → K−1 → 0: stay with ``stay_prob``, else move one step forward.
    Uniform pi, linear emissions. Returns ``(pi, A, B)``."""
    A = stay_prob * np.eye(n_states) + (1 - stay_prob) * np.roll(np.eye(n_states), 1, axis=1)
    return np.full(n_states, 1 / n_states), A, _linear_emissions(n_states, n_symbols)


def random_dense(n_states, n_symbols, *, rng, stay_prob=None, concentration=1.0):
    """Every transition possible: Dirichlet rows (and, with ``stay_prob``, that much mass
    moved onto the diagonal). Returns ``(pi, A, B)``."""
    pi, A, B = random_model(n_states, n_symbols, rng=rng, concentration=concentration)
    if stay_prob is not None:
        A = stay_prob * np.eye(n_states) + (1 - stay_prob) * A
    return pi, A, B


# ============================================================================================
# Emission statistics (what an emulator of the HMM must reproduce)
# ============================================================================================

def emission_statistics(obs, n_symbols):
    """``obs (N, T)`` → ``(freq (M,), switch_rate ())``.

    freq[m] = fraction of all N·T symbols equal to m; switch_rate ("volatility") = fraction of
    the N·(T − 1) consecutive pairs inside a sequence whose two symbols differ (pairs never span
    two sequences).
    """
    obs, _ = as_batch(obs)
    freq = np.bincount(obs.ravel(), minlength=n_symbols) / obs.size
    switch = np.mean(obs[:, 1:] != obs[:, :-1]) if obs.shape[1] > 1 else 0.0
    return freq, float(switch)


def compare_emissions(obs_model, obs_target, n_symbols):
    """Emission statistics of two sets of sequences (e.g. an RNN's and the HMM's), and how far
    apart they are. ``obs_* (N, T)`` (N and T may differ between the two). Returns a dict:

    ``freq_model (M,)``, ``freq_target (M,)``, ``total_variation ()`` = ½ Σ_m abs(freq_model −
    freq_target) (0: same frequencies, 1: disjoint), ``switch_model ()``, ``switch_target ()``.
    """
    freq_m, switch_m = emission_statistics(obs_model, n_symbols)
    freq_t, switch_t = emission_statistics(obs_target, n_symbols)
    return {"freq_model": freq_m, "freq_target": freq_t,
            "total_variation": 0.5 * np.abs(freq_m - freq_t).sum(),
            "switch_model": switch_m, "switch_target": switch_t}
