r"""Neural memories written at test time: Hebbian, delta rule, Titans (lesson 09).

A memory here is a function M(·) whose parameters are written, token by token, by a step of
associative learning on the pair (k_t, v_t), and read at q_t without being changed::

    Hebbian            M_t = M_{t−1} + v_t k_tᵀ
    delta rule         M_t = M_{t−1} + θ_t (v_t − M_{t−1} k_t) k_tᵀ
    Titans             S_t = η_t S_{t−1} − θ_t ∇ℓ(M_{t−1}; k_t, v_t),   ℓ(M; k, v) = ‖M(k) − v‖²
                       M_t = (1 − α_t) M_{t−1} + S_t
    all                y_t = M_t(q_t)

Three implementations, in this folder:

- ``reference.py``  NumPy, the specification (per-token loops; the chunked form with scans);
- ``numba_cpu.py``  compiled per-token loops for the linear memories (``@njit(cache=True)``);
- ``torch_ops.py``  differentiable twins on any device: the Hebbian parallel form, per-token
  loops, Titans chunked with scans, the MLP memory's gradients by ``torch.func``, and the layer
  :class:`TitansMemory` with trainable projections and gates.

Shapes, one sequence, time first: ``k, q (T, d_k)``, ``v (T, d_v)`` → ``y (T, d_v)``; a linear
memory ``M (d_v, d_k)``; an MLP memory ``{"W1": (H, d_k), "W2": (d_v, H)}``. Gates (θ, η, α)
are scalars or arrays ``(T,)``; θ ≥ 0, η and α in [0, 1].

``backend=None`` picks Numba for NumPy input and Torch for tensors; ``"numpy"`` runs the
reference. Numba compiles the per-token linear memories; for the chunked form and the MLP memory
``"numba"`` runs the reference. Results have the input's type and dtype.
"""

from __future__ import annotations

import numbers

import numpy as np

from minirec._dispatch import Implementations, numpy_dtype, same_kind
from minirec._validate import Shapes, is_torch, require_float, require_positive_int
from minirec.memory.reference import init_mlp_memory

__all__ = ["hebbian_memory", "delta_rule_memory", "titans_memory", "init_mlp_memory",
           "MEMORIES", "TitansMemory"]

MEMORIES = ("linear", "mlp")

#: Where each memory runs on each backend (minirec._dispatch: the choice, the conversion, the
#: call). Numba compiles the per-token linear memories; the chunked form and the MLP memory run
#: the reference there.
IMPLEMENTATIONS = Implementations(__name__, {
    #                        numpy        numba        torch
    "hebbian_memory":        ("reference", "numba_cpu", "torch_ops"),
    "delta_rule_memory":     ("reference", "numba_cpu", "torch_ops"),
    "titans_linear":         ("reference", "numba_cpu", "torch_ops"),
    "titans_linear_chunked": ("reference", "reference", "torch_ops"),
    "titans_mlp":            ("reference", "reference", "torch_ops"),
})


def __getattr__(name):
    if name == "TitansMemory":                                      # torch only when asked for
        from minirec.memory.torch_ops import TitansMemory
        return TitansMemory
    raise AttributeError(f"module 'minirec.memory' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _sequences(k, v, q):
    shapes = Shapes()
    k, v, q = (require_float(n, x) for n, x in (("k", k), ("v", v), ("q", q)))
    same_kind([k, v, q])
    shapes.check("k", k, ("T", "d_k"))
    shapes.check("v", v, ("T", "d_v"))
    shapes.check("q", q, ("T", "d_k"))
    if k.shape[0] == 0:
        raise ValueError("k must have at least one time step: shape (T, d_k) with T >= 1; got "
                         f"{tuple(k.shape)}")
    return shapes, k, v, q


def _gate(name, value, like, low, high):
    """A gate as a ``(T,)`` array or tensor in ``like``'s dtype, its range checked (a scalar
    becomes a NumPy array, which the torch backend moves to ``like``'s device)."""
    T = like.shape[0]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = np.full(T, float(value), numpy_dtype(like))
    else:
        value = require_float(name, value)
        if value.ndim == 0:
            value = value.reshape(1).expand(T) if is_torch(value) else np.full(T, value,
                                                                                 like.dtype)
        same_kind([like, value])
        if value.shape != (T,):
            raise ValueError(f"{name} must be a scalar or have shape (T,) = ({T},) (T={T} from "
                             f"k); got {tuple(value.shape)}")
    plain = value.detach().cpu().numpy() if is_torch(value) else value
    if np.isnan(plain).any() or (plain < low).any() or (high is not None and (plain > high).any()):
        where = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be {where}; got values from {np.nanmin(plain):.4g} to "
                         f"{np.nanmax(plain):.4g}" + (" and NaN" if np.isnan(plain).any() else ""))
    return value


def _linear_state(shapes, name, M):
    M = require_float(name, M)
    return shapes.check(name, M, ("d_v", "d_k"))


def _pair(name, state, what):
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(f"{name} must be {what}; got {type(state).__name__}")
    return tuple(state)


def _mlp_params(shapes, name, params):
    if not (isinstance(params, dict) and set(params) == {"W1", "W2"}):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"{name} must be a dict {{'W1': (H, d_k), 'W2': (d_v, H)}}; got {got}")
    W1 = shapes.check(f"{name}['W1']", require_float(f"{name}['W1']", params["W1"]), ("H", "d_k"))
    W2 = shapes.check(f"{name}['W2']", require_float(f"{name}['W2']", params["W2"]), ("d_v", "H"))
    return {"W1": W1, "W2": W2}


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

def hebbian_memory(k, v, q, *, state=None, return_state=False, backend=None):
    """Hebbian memory (causal linear attention, unnormalised): M_t = M_{t−1} + v_t k_tᵀ,
    y_t = M_t q_t.

    ``k, q (T, d_k)``, ``v (T, d_v)``; ``state``: the memory ``M (d_v, d_k)`` before the first
    token (zero when None). Returns ``y (T, d_v)``, or ``(y, M_T)`` with ``return_state=True``.
    """
    shapes, k, v, q = _sequences(k, v, q)
    M0 = None if state is None else _linear_state(shapes, "state", state)
    same_kind([k, M0])
    backend = IMPLEMENTATIONS.pick(backend, k)
    y, M = IMPLEMENTATIONS.call(backend, "hebbian_memory", k, v, q, M0=M0)
    return (y, M) if return_state else y


def delta_rule_memory(k, v, q, *, theta, state=None, return_state=False, backend=None):
    """Delta-rule memory: M_t = M_{t−1} + θ_t (v_t − M_{t−1} k_t) k_tᵀ, y_t = M_t q_t.

    ``theta``: a scalar or ``(T,)``, θ ≥ 0 (with unit keys, θ = 1 stores v_t exactly at k_t).
    Shapes, ``state`` and the result as :func:`hebbian_memory`.
    """
    shapes, k, v, q = _sequences(k, v, q)
    theta = _gate("theta", theta, k, 0.0, None)
    M0 = None if state is None else _linear_state(shapes, "state", state)
    same_kind([k, M0])
    backend = IMPLEMENTATIONS.pick(backend, k)
    y, M = IMPLEMENTATIONS.call(backend, "delta_rule_memory", k, v, q, theta, M0=M0)
    return (y, M) if return_state else y


def titans_memory(k, v, q, *, eta, theta, alpha, chunk_size=1, memory="linear", state=None,
                  return_state=False, hidden=None, seed=0, backend=None):
    """Titans' neural memory (paper #14), learned at test time:

        S_t = η_t S_{t−1} − θ_t ∇ℓ(M_{t−1}; k_t, v_t),  ℓ(M; k, v) = ‖M(k) − v‖²   (momentum)
        M_t = (1 − α_t) M_{t−1} + S_t                                               (forgetting)
        y_t = M_t(q_t)                                                               (retrieval)

    ``k, q (T, d_k)``, ``v (T, d_v)``; gates ``eta`` (momentum, in [0, 1]), ``theta`` (step,
    ≥ 0), ``alpha`` (forgetting, in [0, 1]): scalars or ``(T,)``.

    ``memory="linear"``: M(x) = M x with ``M (d_v, d_k)``, ∇ℓ = 2 (M k − v) kᵀ. ``memory="mlp"``:
    M(x) = W2 gelu(W1 x), ``W1 (H, d_k)``, ``W2 (d_v, H)``; without ``state`` it starts from
    :func:`init_mlp_memory` with ``hidden`` (default 4 d_k) units drawn from ``seed``.

    ``chunk_size=C``: the gradients of each chunk of C tokens are taken against the memory at the
    chunk's start (mini-batch gradient descent) and momentum and forgetting run as scans across
    it; C = 1 is the per-token update. ``state = (M, S)`` (linear: two ``(d_v, d_k)`` arrays;
    MLP: two dicts of W1, W2) is the memory and momentum before the first token (zeros for the
    linear memory when None). Returns ``y (T, d_v)``, or ``(y, (M_T, S_T))`` with
    ``return_state=True``.
    """
    if memory not in MEMORIES:
        raise ValueError(f"memory must be one of {MEMORIES}; got {memory!r}")
    chunk_size = require_positive_int("chunk_size", chunk_size)
    shapes, k, v, q = _sequences(k, v, q)
    gates = (_gate("eta", eta, k, 0.0, 1.0), _gate("theta", theta, k, 0.0, None),
             _gate("alpha", alpha, k, 0.0, 1.0))
    if memory == "linear":
        if state is not None:
            M, S = _pair("state", state, "the pair (M, S) of shapes (d_v, d_k)")
            state = (_linear_state(shapes, "state[0] (M)", M),
                     _linear_state(shapes, "state[1] (S)", S))
            same_kind([k, *state])
    else:
        if state is None:
            H = 4 * k.shape[1] if hidden is None else require_positive_int("hidden", hidden)
            params = init_mlp_memory(k.shape[1], v.shape[1], H, rng=np.random.default_rng(seed),
                                     dtype=np.float64)
            state = ({n: p.astype(numpy_dtype(k)) for n, p in params.items()}, None)
        else:
            params, momentum = _pair("state", state, "the pair (params, momentum) of dicts "
                                                     "{'W1': (H, d_k), 'W2': (d_v, H)}")
            params = _mlp_params(shapes, "state[0]", params)
            momentum = _mlp_params(shapes, "state[1]", momentum)
            same_kind([k, *params.values(), *momentum.values()])
            state = (params, momentum)
    backend = IMPLEMENTATIONS.pick(backend, k)
    if memory == "mlp":
        params, momentum = state
        y, final = IMPLEMENTATIONS.call(backend, "titans_mlp", k, v, q, *gates, params,
                                        momentum=momentum, chunk_size=chunk_size)
    elif chunk_size == 1:
        y, final = IMPLEMENTATIONS.call(backend, "titans_linear", k, v, q, *gates, state=state)
    else:
        y, final = IMPLEMENTATIONS.call(backend, "titans_linear_chunked", k, v, q, *gates,
                                        chunk_size, state=state)
    return (y, final) if return_state else y
