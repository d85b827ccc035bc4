r"""NumPy reference of memories written at test time: the specification the other backends and
the tests are held to.

Notation (one sequence, time first)::

    T  time steps     d_k  key (and query) size     d_v  value size     H  hidden size of an MLP memory
    k (T, d_k)  keys      v (T, d_v)  values      q (T, d_k)  queries      y (T, d_v)  retrieved
    M (d_v, d_k)  a linear memory: M(x) = M x       S  the momentum ("surprise"), shaped as the memory

Every memory is written one token at a time by associative learning and read without being
changed (retrieval at step t sees the write of step t)::

    Hebbian / linear attention   M_t = M_{t−1} + v_t k_tᵀ
    delta rule                   M_t = M_{t−1} + θ_t (v_t − M_{t−1} k_t) k_tᵀ
    Titans                       ℓ(M; k, v) = ‖M(k) − v‖²
                                 S_t = η_t S_{t−1} − θ_t ∇ℓ(M_{t−1}; k_t, v_t)      (momentum)
                                 M_t = (1 − α_t) M_{t−1} + S_t                      (forgetting)
    retrieval                    y_t = M_t(q_t)

For a linear memory ∇ℓ = 2 (M k − v) kᵀ, so Titans with η = α = 0 is the delta rule with step 2θ.

The chunked form (Titans' mini-batch gradient descent) takes every gradient of a chunk of C
tokens against the memory at the chunk's start, M_{t0−1}; the momentum and the forgetting are
then two linear recurrences across the chunk (``minirec.scan``), S carried from chunk to chunk.
C = 1 is the per-token form. For C > 1 the two agree exactly only when every key of a chunk is
orthogonal to what the chunk has already changed in the memory, (M_{t−1} − M_{t0−1}) k_t = 0.
With mutually orthogonal keys (so T ≤ d_k) that holds for any gates when M_{−1} = S_{−1} = 0
(every M_t is then a sum of rows ∝ earlier keys, and M k_t = 0 both ways), and for any M_{−1}
when α = 0 and S_{−1} = 0 (the memory then changes only by rows ∝ earlier keys). Otherwise —
correlated keys, or forgetting a non-zero memory — the chunked form is a different algorithm.

Gates η_t, θ_t, α_t are arrays ``(T,)`` here (the public functions in ``minirec.memory`` accept
scalars too and check the ranges).
"""

from __future__ import annotations

import numpy as np

from minirec.scan.reference import linear_recurrence

__all__ = [
    "hebbian_memory", "delta_rule_memory", "titans_linear", "titans_linear_chunked", "titans_chunked",
    "linear_memory_grad", "linear_memory_grads", "linear_memory_read",
    "mlp_memory_read", "mlp_memory_grads", "init_mlp_memory", "gelu", "gelu_grad",
    "titans_mlp",
]


# --------------------------------------------------------------------------------------------
# Hebbian and delta-rule memories
# --------------------------------------------------------------------------------------------

def _zeros_memory(k, v, M0):
    return np.zeros((v.shape[1], k.shape[1]), np.result_type(k, v)) if M0 is None \
        else np.array(M0, dtype=np.result_type(k, v, M0))


def hebbian_memory(k, v, q, M0=None):
    """M_t = M_{t−1} + v_t k_tᵀ, y_t = M_t q_t (causal linear attention without normalisation).
    ``k, q (T, d_k)``, ``v (T, d_v)``, ``M0 (d_v, d_k)`` or None (zero) → ``(y (T, d_v), M_T)``."""
    M = _zeros_memory(k, v, M0)
    y = np.empty((k.shape[0], v.shape[1]), M.dtype)
    for t in range(k.shape[0]):
        M = M + np.outer(v[t], k[t])                        # M_t = M_{t−1} + v_t k_tᵀ
        y[t] = M @ q[t]                                      # y_t = M_t q_t
    return y, M


def delta_rule_memory(k, v, q, theta, M0=None):
    """M_t = M_{t−1} + θ_t (v_t − M_{t−1} k_t) k_tᵀ, y_t = M_t q_t. ``theta (T,)``; shapes as
    :func:`hebbian_memory` → ``(y (T, d_v), M_T)``."""
    M = _zeros_memory(k, v, M0)
    y = np.empty((k.shape[0], v.shape[1]), M.dtype)
    for t in range(k.shape[0]):
        error = v[t] - M @ k[t]                              # what the memory gets wrong
        M = M + theta[t] * np.outer(error, k[t])             # M_t = M + θ_t (v_t − M k_t) k_tᵀ
        y[t] = M @ q[t]
    return y, M


# --------------------------------------------------------------------------------------------
# Titans with a linear memory
# --------------------------------------------------------------------------------------------

def linear_memory_grad(M, k, v):
    """∇_M ‖M k − v‖² = 2 (M k − v) kᵀ. ``M (d_v, d_k)``, ``k (d_k,)``, ``v (d_v,)`` → ``(d_v, d_k)``."""
    return 2.0 * np.outer(M @ k - v, k)


def linear_memory_grads(params, k, v):
    """Per-token gradients of a chunk against one memory: ``params {"M": (d_v, d_k)}``,
    ``k (C, d_k)``, ``v (C, d_v)`` → ``{"M": (C, d_v, d_k)}``, the t-th being 2 (M k_t − v_t) k_tᵀ."""
    residual = k @ params["M"].T - v                         # (C, d_v): M k_t − v_t
    return {"M": 2.0 * residual[:, :, None] * k[:, None, :]}


def linear_memory_read(params, q):
    """y_t = M_t q_t for a sequence of memories ``{"M": (C, d_v, d_k)}`` and ``q (C, d_k)``."""
    return np.einsum("tij,tj->ti", params["M"], q)


def _titans_state(k, v, state):
    dtype = np.result_type(k, v)
    if state is None:
        M = np.zeros((v.shape[1], k.shape[1]), dtype)
        return M, np.zeros_like(M)
    return np.array(state[0], dtype=dtype), np.array(state[1], dtype=dtype)


def titans_linear(k, v, q, eta, theta, alpha, state=None):
    """Titans' memory, one token at a time, with a linear memory (the specification).
    ``k, q (T, d_k)``, ``v (T, d_v)``, gates ``eta, theta, alpha (T,)``, ``state = (M, S)``, each
    ``(d_v, d_k)``, or None (zeros) → ``(y (T, d_v), (M_T, S_T))``."""
    M, S = _titans_state(k, v, state)
    y = np.empty((k.shape[0], v.shape[1]), M.dtype)
    for t in range(k.shape[0]):
        S = eta[t] * S - theta[t] * linear_memory_grad(M, k[t], v[t])   # S_t = η S − θ ∇ℓ
        M = (1.0 - alpha[t]) * M + S                                   # M_t = (1 − α) M + S_t
        y[t] = M @ q[t]                                                # y_t = M_t q_t
    return y, (M, S)


def titans_chunked(k, v, q, eta, theta, alpha, chunk_size, params, momentum, grads, read):
    """Titans' chunked update for any memory whose parameters are a dict of arrays.

    ``params`` / ``momentum``: dicts of the memory's arrays (M_{−1}, S_{−1}); ``grads(params, k_c,
    v_c)`` returns the per-token gradients of a chunk against ``params`` (each ``(C, *shape)``);
    ``read(params_seq, q_c)`` retrieves with one memory per step. For each chunk [t0, t0 + C):

        G_t = ∇ℓ(M_{t0−1}; k_t, v_t)                    every gradient against the chunk's start
        S_t = η_t S_{t−1} − θ_t G_t                      a linear recurrence across the chunk
        M_t = (1 − α_t) M_{t−1} + S_t                    a second one, fed by the first
        y_t = M_t(q_t)

    Returns ``(y (T, d_v), (params_T, momentum_T))``.
    """
    T = k.shape[0]
    ys = []
    for t0 in range(0, T, chunk_size):
        c = slice(t0, min(t0 + chunk_size, T))
        G = grads(params, k[c], v[c])
        S_seq, M_seq = {}, {}
        for name, M in params.items():
            S_seq[name] = linear_recurrence(eta[c], -_per_step(theta[c], G[name]) * G[name],
                                            momentum[name])
            M_seq[name] = linear_recurrence(1.0 - alpha[c], S_seq[name], M)
        ys.append(read(M_seq, q[c]))
        params = {name: M_seq[name][-1] for name in params}
        momentum = {name: S_seq[name][-1] for name in params}
    return np.concatenate(ys), (params, momentum)


def _per_step(gate, like):
    """A gate (C,) shaped to multiply an array (C, ...) step by step."""
    return gate.reshape(gate.shape + (1,) * (like.ndim - 1))


# --------------------------------------------------------------------------------------------
# A small MLP memory: M(x) = W2 gelu(W1 x)
# --------------------------------------------------------------------------------------------

_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))  # a Python float: keeps float32 float32


def gelu(z):
    """GELU, tanh approximation (torch's ``approximate="tanh"``):
    ½ z (1 + tanh(√(2/π) (z + 0.044715 z³)))."""
    return 0.5 * z * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z ** 3)))


def gelu_grad(z):
    """d gelu / dz of :func:`gelu`."""
    u = _SQRT_2_OVER_PI * (z + 0.044715 * z ** 3)
    th = np.tanh(u)
    du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * z ** 2)
    return 0.5 * (1.0 + th) + 0.5 * z * (1.0 - th ** 2) * du


def init_mlp_memory(d_k, d_v, hidden, *, rng, dtype=np.float64):
    """Random MLP memory ``{"W1": (H, d_k), "W2": (d_v, H)}``, scaled 1/√fan-in."""
    return {"W1": (rng.standard_normal((hidden, d_k)) / np.sqrt(d_k)).astype(dtype),
            "W2": (rng.standard_normal((d_v, hidden)) / np.sqrt(hidden)).astype(dtype)}


def mlp_memory_read(params, q):
    """y_t = W2_t gelu(W1_t q_t) with one MLP per step: ``W1 (C, H, d_k)``, ``W2 (C, d_v, H)``,
    ``q (C, d_k)`` → ``(C, d_v)``."""
    hidden = gelu(np.einsum("thj,tj->th", params["W1"], q))
    return np.einsum("tih,th->ti", params["W2"], hidden)


def mlp_memory_grads(params, k, v):
    """Per-token gradients of ‖W2 gelu(W1 k_t) − v_t‖² against one MLP ``{"W1", "W2"}``:
    ``k (C, d_k)``, ``v (C, d_v)`` → ``{"W1": (C, H, d_k), "W2": (C, d_v, H)}``.

        z = W1 k,  a = gelu(z),  r = W2 a − v,  ∂/∂W2 = 2 r aᵀ,  ∂/∂W1 = ((2 W2ᵀ r) ⊙ gelu'(z)) kᵀ
    """
    z = k @ params["W1"].T                                   # (C, H)
    a = gelu(z)
    r = a @ params["W2"].T - v                               # (C, d_v)
    dz = (2.0 * r @ params["W2"]) * gelu_grad(z)             # (C, H)
    return {"W1": dz[:, :, None] * k[:, None, :], "W2": 2.0 * r[:, :, None] * a[:, None, :]}


def titans_mlp(k, v, q, eta, theta, alpha, params, momentum=None, chunk_size=1):
    """Titans with the MLP memory (chunk_size 1: per token). ``params {"W1", "W2"}`` the memory
    before the first token, ``momentum`` the same shapes (zeros when None) →
    ``(y (T, d_v), (params_T, momentum_T))``."""
    params = {n: np.asarray(p, dtype=np.result_type(k, p)) for n, p in params.items()}
    if momentum is None:
        momentum = {n: np.zeros_like(p) for n, p in params.items()}
    return titans_chunked(k, v, q, eta, theta, alpha, chunk_size, params, momentum,
                          mlp_memory_grads, mlp_memory_read)


def titans_linear_chunked(k, v, q, eta, theta, alpha, chunk_size, state=None):
    """Titans with a linear memory, chunked: shapes as :func:`titans_linear` →
    ``(y (T, d_v), (M_T, S_T))``. ``chunk_size=1`` gives :func:`titans_linear`'s result."""
    M, S = _titans_state(k, v, state)
    y, (params, momentum) = titans_chunked(k, v, q, eta, theta, alpha, chunk_size, {"M": M},
                                           {"M": S}, linear_memory_grads, linear_memory_read)
    return y, (params["M"], momentum["M"])

