r"""Hidden Markov models with categorical emissions: sampling, forward/backward, posteriors,
Viterbi and Baum–Welch, and an RNN that learns to emulate an HMM (lesson 10).

Three implementations, in this folder (notation in ``reference.py``):

- ``reference.py``  NumPy, the specification: sampling, the forward pass in log space and with
  scaling, the backward pass, posteriors, Viterbi with back-pointers, the forward pass as a
  log-matmul scan and Viterbi as a max-plus scan, brute-force enumeration, Baum–Welch, the model
  families of Torre et al. (linear chain, cyclic, random dense);
- ``numba_cpu.py``  compiled kernels, batched over sequences: forward (scaled and log), backward,
  posteriors, Viterbi;
- ``torch_ops.py``  batched log-space forward, backward, posteriors (differentiable) and Viterbi;
  any device;
- ``emulator.py``   (Torch) the noise-driven ReLU RNN with a hard Gumbel-softmax output, the MMD
  and Sinkhorn distribution losses, and the analysis tools (statistics, fixed point, PCA,
  kick neurons).

Public functions (``pi (K,)``, ``A (K, K)``, ``B (K, M)``; ``obs (T,)`` or ``(N, T)`` integers)::

    log_likelihood(pi, A, B, obs, *, backend=None)      -> ()  or (N,)
    viterbi(pi, A, B, obs, *, backend=None)             -> (path (T,) | (N, T), log_prob () | (N,))
    posteriors(pi, A, B, obs, *, backend=None)          -> (T, K) or (N, T, K)
    sample(pi, A, B, T, *, rng, n=None)                 -> (states, obs)   (T,) or (n, T) each
    fit(obs, n_states, *, rng, n_symbols=None, ...)     -> FitResult(pi, A, B, log_likelihoods)

``backend=None`` picks Numba for NumPy input and Torch for tensors; ``"numpy"`` runs the
reference. Results have the parameters' type and dtype (paths are int64).
"""

from __future__ import annotations

import numpy as np

from minirec._dispatch import Implementations, same_kind
from minirec._validate import Shapes, is_torch, require_float, require_positive_int
from minirec.hmm import reference
from minirec.hmm.reference import FitResult, cyclic, linear_chain, random_dense

__all__ = [
    "log_likelihood", "viterbi", "posteriors", "sample", "fit", "FitResult",
    "linear_chain", "cyclic", "random_dense", "validate_model", "validate_obs",
]

#: Where each computation runs on each backend (minirec._dispatch: the choice, the conversion,
#: the call). Every backend takes observations in the batch form (N, T), int64.
IMPLEMENTATIONS = Implementations(__name__, {
    #                 numpy        numba        torch
    "log_likelihood": ("reference", "numba_cpu", "torch_ops"),
    "viterbi":        ("reference", "numba_cpu", "torch_ops"),
    "posteriors":     ("reference", "numba_cpu", "torch_ops"),
})


def _tol(x) -> float:
    return 1e-6 if "64" in str(x.dtype) else 1e-4


def validate_model(pi, A, B):
    """Check ``pi (K,)``, ``A (K, K)``, ``B (K, M)``: floats of one kind and dtype, no negative
    entry, every distribution summing to 1 (within 1e-6 in float64, 1e-4 in float32)."""
    pi, A, B = require_float("pi", pi), require_float("A", A), require_float("B", B)
    same_kind([pi, A, B])
    shapes = Shapes()
    shapes.check("pi", pi, ("K",))
    shapes.check("A", A, ("K", "K"))
    shapes.check("B", B, ("K", "M"))
    for name, x, what in (("pi", pi, "pi"), ("A", A, "each row of A"), ("B", B, "each row of B")):
        arr = x.detach().cpu().double().numpy() if is_torch(x) else np.asarray(x, np.float64)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            bad = np.argwhere(~(arr >= 0))[0] if arr.ndim else ()
            raise ValueError(f"{name} must hold probabilities (finite, >= 0); {name}"
                             f"[{', '.join(map(str, bad))}] = {arr[tuple(bad)]!r}")
        sums = arr.sum(axis=-1)
        off = np.abs(sums - 1) > _tol(x)
        if np.any(off):
            where = "" if arr.ndim == 1 else f" (row {int(np.argmax(off))})"
            value = float(np.atleast_1d(sums)[int(np.argmax(np.atleast_1d(off)))])
            raise ValueError(f"{what} must sum to 1; {name}{where} sums to {value:.6g}")
    return pi, A, B


def validate_obs(obs, n_symbols: int):
    """``obs (T,)`` or ``(N, T)`` integers in [0, M), T >= 1. Returns it unchanged."""
    arr = obs.detach().cpu().numpy() if is_torch(obs) else np.asarray(obs)
    if not np.issubdtype(arr.dtype, np.integer):           # bool and float refused too
        raise TypeError(f"obs must hold integer symbols in [0, M); got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"obs must have shape (T,) or (N, T); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"obs must hold at least one sequence of at least one step (T >= 1); "
                         f"got shape {arr.shape}")
    bad = (arr < 0) | (arr >= n_symbols)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"obs must hold symbols in [0, M) = [0, {n_symbols}) (M from B); "
                         f"obs[{', '.join(map(str, where))}] = {int(arr[where])}")
    return obs


def _prepare(pi, A, B, obs, backend):
    """The model and observations checked → ``pi, A, B``, ``obs (N, T)`` int64 (NumPy), the
    backend, and whether ``obs`` was one sequence ``(T,)``."""
    pi, A, B = validate_model(pi, A, B)
    validate_obs(obs, B.shape[1])
    obs, single = reference.as_batch(obs.detach().cpu().numpy() if is_torch(obs) else obs)
    return pi, A, B, obs, IMPLEMENTATIONS.pick(backend, A), single


def log_likelihood(pi, A, B, obs, *, backend=None, method=None):
    """log P(x) of each sequence: ``obs (T,)`` → ``()``, ``obs (N, T)`` → ``(N,)``.

    ``method`` (NumPy input): "log" or "scaled" for the reference (default "log") and for Numba
    (default "scaled"), also "scan" for the reference. Tensors: log space, differentiable.
    """
    pi, A, B, obs, backend, single = _prepare(pi, A, B, obs, backend)
    kw = {"method": method} if method is not None and backend != "torch" else {}
    ll = IMPLEMENTATIONS.call(backend, "log_likelihood", pi, A, B, obs, **kw)
    ll = ll if is_torch(A) else np.asarray(ll, dtype=A.dtype)
    return ll[0] if single else ll


def viterbi(pi, A, B, obs, *, backend=None):
    """The most likely state path and its log-probability log P(x, z*):
    ``obs (T,)`` → ``(path (T,), log_prob ())``, ``(N, T)`` → ``(path (N, T), log_prob (N,))``."""
    pi, A, B, obs, backend, single = _prepare(pi, A, B, obs, backend)
    path, lp = IMPLEMENTATIONS.call(backend, "viterbi", pi, A, B, obs)
    lp = lp if is_torch(A) else np.asarray(lp, dtype=A.dtype)
    return (path[0], lp[0]) if single else (path, lp)


def posteriors(pi, A, B, obs, *, backend=None):
    """gamma_t[i] = P(z_t = i | x): ``obs (T,)`` → ``(T, K)``, ``(N, T)`` → ``(N, T, K)``."""
    pi, A, B, obs, backend, single = _prepare(pi, A, B, obs, backend)
    gamma = IMPLEMENTATIONS.call(backend, "posteriors", pi, A, B, obs)
    gamma = gamma if is_torch(A) else np.asarray(gamma, dtype=A.dtype)
    return gamma[0] if single else gamma


def sample(pi, A, B, T, *, rng, n=None):
    """``(states, obs)`` drawn from the HMM with the NumPy generator ``rng``: each ``(T,)``, or
    ``(n, T)`` when ``n`` is given. int64."""
    pi, A, B = validate_model(pi, A, B)
    if is_torch(A):
        raise TypeError("sample takes NumPy parameters (it draws with a NumPy rng); use "
                        "A.numpy() etc.")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator (np.random.default_rng(seed)); got "
                        f"{type(rng).__name__}")
    T = require_positive_int("T", T)
    n = None if n is None else require_positive_int("n", n)
    return reference.sample(np.asarray(pi, np.float64), np.asarray(A, np.float64),
                            np.asarray(B, np.float64), T, rng=rng, n=n)


def fit(obs, n_states, *, rng, n_symbols=None, n_iter=100, tol=1e-6, init=None):
    """Baum–Welch (EM) on ``obs (T,)`` or ``(N, T)`` from ``init = (pi, A, B)`` or a random
    start drawn with ``rng``. ``n_symbols`` defaults to max(obs) + 1. Stops after ``n_iter``
    steps or when one step gains less than ``tol`` nats per symbol. Returns a
    :class:`FitResult` whose ``log_likelihoods`` never decrease."""
    n_states = require_positive_int("n_states", n_states)
    if is_torch(obs):
        obs = obs.detach().cpu().numpy()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator; got {type(rng).__name__}")
    arr = np.asarray(obs)
    if not np.issubdtype(arr.dtype, np.integer) or arr.size == 0:
        validate_obs(arr, 1 if n_symbols is None else n_symbols)
    M = require_positive_int("n_symbols", int(arr.max()) + 1 if n_symbols is None else n_symbols)
    validate_obs(arr, M)
    if init is not None:
        pi, A, B = validate_model(*init)
        if A.shape[0] != n_states or B.shape[1] != M:
            raise ValueError(f"init must have K = n_states = {n_states} states and M = {M} "
                             f"symbols; got A {A.shape}, B {B.shape}")
        init = tuple(np.asarray(x, np.float64) for x in (pi, A, B))
    return reference.fit(arr, n_states, M, rng=rng, n_iter=require_positive_int("n_iter", n_iter),
                         tol=tol, init=init)
