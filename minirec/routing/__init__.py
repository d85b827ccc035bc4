"""Mixture-of-experts routing: top-k gating, dispatch and combine with expert capacity, the
load-balancing loss, and the RMoE router (one GRU cell shared across layers).

Three implementations of the same maths, in this folder:

- ``reference.py``  NumPy, the equations in the code: the specification (also the RMoE router
  step and a residual MoE stack, the oracles of the Torch modules);
- ``numba_cpu.py``  compiled, parallel token loops for top-k gating, dispatch and combine;
- ``torch_ops.py``  differentiable twins and the modules :class:`MoELayer`, :class:`MoEStack`,
  :class:`LinearRouterMoE` (independent routers) and :class:`GRURouterMoE` (the RMoE router).

Shapes (tokens flattened: routing treats every token on its own)::

    x (N, d)   logits, probs (N, E)   weights, indices, slots (N, k)   buffers (E, C, d)

The public functions take NumPy arrays or torch tensors. ``backend=None`` picks Numba for NumPy
input and Torch for tensors; ``backend="numpy"`` runs the reference. Results have the input's
type and float dtype; ``indices`` and ``slots`` are int64 (given as any integer dtype, int32
included, they are taken as int64). The reference's building blocks (``softmax``, ``silu``,
``swiglu_expert``, ``moe_layer``, ``linear_router``, ``gru_router_step``, ``moe_stack_forward``,
``expert_load``) are read and called as ``minirec.routing.reference.<name>``: they are the
equations, unchecked; the functions here check their inputs first.
"""

from __future__ import annotations

import numpy as np

from minirec._dispatch import Implementations, same_kind
from minirec._validate import Shapes, is_torch, require_float, require_positive_int
from minirec.routing.reference import capacity_from_factor, init_gru_router

__all__ = [
    "top_k_route", "expert_slots", "dispatch", "combine", "load_balance_loss", "dense_mixture",
    "capacity_from_factor", "init_gru_router",
    "MoELayer", "MoEStack", "LinearRouterMoE", "GRURouterMoE", "GRURouter", "LinearRouter",
    "SwiGLUExperts",
]

#: Where each step runs on each backend (minirec._dispatch: the choice, the conversion, the call).
#: The balance loss is two reductions NumPy already runs compiled; the dense oracle has no
#: Numba form.
IMPLEMENTATIONS = Implementations(__name__, {
    #                    numpy        numba        torch
    "top_k_route":       ("reference", "numba_cpu", "torch_ops"),
    "expert_slots":      ("reference", "numba_cpu", "torch_ops"),
    "dispatch":          ("reference", "numba_cpu", "torch_ops"),
    "combine":           ("reference", "numba_cpu", "torch_ops"),
    "load_balance_loss": ("reference", "reference", "torch_ops"),
    "dense_mixture":     ("reference", "reference", "torch_ops"),
})

_TORCH_MODULES = ("MoELayer", "MoEStack", "LinearRouterMoE", "GRURouterMoE", "GRURouter",
                  "LinearRouter", "SwiGLUExperts")


def __getattr__(name):
    if name in _TORCH_MODULES:                                      # torch only when asked for
        from minirec.routing import torch_ops
        return getattr(torch_ops, name)
    raise AttributeError(f"module 'minirec.routing' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _integer_array(name, value, spec, shapes, n_experts=None, *, low=0, what="expert numbers"):
    """Check an (N, k) integer array or tensor; with ``n_experts``, values in [low, n_experts).
    Returns it as int64 (every backend's index type: torch's scatter and gather take no other)."""
    if not is_torch(value):
        value = np.asarray(value)
        integer = np.issubdtype(value.dtype, np.integer)
    else:
        import torch
        integer = not (value.dtype.is_floating_point or value.dtype.is_complex
                       or value.dtype == torch.bool)
    if not integer:
        raise TypeError(f"{name} must be an integer array (expert numbers) of shape "
                        f"{'(' + ', '.join(spec) + ')'}; got dtype {str(value.dtype)}")
    shapes.check(name, value, spec)
    if n_experts is not None and value.shape[0] * value.shape[1] > 0:
        lo, hi = int(value.min()), int(value.max())
        if lo < low or hi >= n_experts:
            origin = shapes.bound_by.get("E", "n_experts")
            raise ValueError(f"{name} must hold {what} in [{low}, {n_experts}) (E={n_experts} "
                             f"from {origin}); got values from {lo} to {hi}")
    return value.long() if is_torch(value) else value.astype(np.int64, copy=False)


def _same_kind(x, index, name="indices"):
    if is_torch(x) != is_torch(index):
        raise TypeError(f"mix of NumPy arrays and torch tensors: pass {name} as the same kind "
                        f"as the float inputs")


def _check_k(k, n_experts):
    k = require_positive_int("k", k)
    if k > n_experts:
        raise ValueError(f"k must be at most the number of experts E = {n_experts} "
                         f"(logits' last axis); got k = {k}")
    return k


def _capacity(capacity):
    return None if capacity is None else require_positive_int("capacity", capacity)


def _n_experts(n_experts):
    return require_positive_int("n_experts", n_experts)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

def top_k_route(logits, k, *, normalize=True, backend=None):
    """Top-k gating: ``logits (N, E)`` → ``(weights (N, k), indices (N, k))``.

    ``p = softmax(logits)`` over the experts (axis 1); ``indices`` the k most probable experts,
    best first (lower index first on ties); ``weights = p[indices] / Σ_j p[indices]`` (each row
    sums to 1). ``normalize=False`` keeps the raw probabilities (Switch, k = 1).
    """
    logits = require_float("logits", logits)
    Shapes().check("logits", logits, ("N", "E"))
    k = _check_k(k, logits.shape[1])
    return IMPLEMENTATIONS.call(IMPLEMENTATIONS.pick(backend, logits), "top_k_route", logits, k,
                                normalize=normalize)


def expert_slots(indices, n_experts, capacity=None, *, backend=None):
    """The capacity rule: ``indices (N, k)`` → ``slots (N, k)``, each choice's position in its
    expert's buffer or −1 if the expert was full (first choices are served before second ones,
    tokens in order). ``capacity=None``: no limit."""
    n_experts, capacity = _n_experts(n_experts), _capacity(capacity)
    indices = _integer_array("indices", indices, ("N", "k"), Shapes(), n_experts)
    return IMPLEMENTATIONS.call(IMPLEMENTATIONS.pick(backend, indices), "expert_slots", indices,
                                n_experts, capacity)


def dispatch(x, indices, n_experts, capacity=None, *, backend=None):
    """Send tokens to their experts: ``x (N, d)``, ``indices (N, k)`` →
    ``(buffers (E, C, d), slots (N, k))``, ``buffers[idx_nj, slots_nj] = x_n`` for the kept
    choices, zero elsewhere. ``C = capacity``, or without one the largest expert load."""
    n_experts, capacity = _n_experts(n_experts), _capacity(capacity)
    x = require_float("x", x)
    shapes = Shapes()
    shapes.check("x", x, ("N", "d"))
    indices = _integer_array("indices", indices, ("N", "k"), shapes, n_experts)
    _same_kind(x, indices)
    return IMPLEMENTATIONS.call(IMPLEMENTATIONS.pick(backend, x), "dispatch", x, indices,
                                n_experts, capacity)


def combine(expert_out, weights, indices, slots, *, backend=None):
    """Bring expert outputs back: ``expert_out (E, C, d_out)``, ``weights, indices, slots
    (N, k)`` → ``y (N, d_out) = Σ_{j kept} w_nj · expert_out[idx_nj, slots_nj]``."""
    expert_out = require_float("expert_out", expert_out)
    weights = require_float("weights", weights)
    same_kind([expert_out, weights])
    shapes = Shapes()
    shapes.check("expert_out", expert_out, ("E", "C", "d_out"))
    shapes.check("weights", weights, ("N", "k"))
    E, C = expert_out.shape[:2]
    indices = _integer_array("indices", indices, ("N", "k"), shapes, E)
    slots = _integer_array("slots", slots, ("N", "k"), shapes, C, low=-1,
                           what="buffer positions (−1 for dropped, C from expert_out)")
    for name, value in (("indices", indices), ("slots", slots)):
        _same_kind(expert_out, value, name)
    return IMPLEMENTATIONS.call(IMPLEMENTATIONS.pick(backend, expert_out), "combine",
                                expert_out, weights, indices, slots)


def load_balance_loss(probs, indices, *, backend=None):
    """The auxiliary loss ``E · Σ_e f_e · P_e``: ``probs (N, E)`` (the router's softmax),
    ``indices (N, k)``; f_e the fraction of choices sent to e, P_e = mean_n p_ne. 1 for uniform
    routing, up to E when one expert takes everything. A 0-d array or tensor."""
    probs = require_float("probs", probs)
    shapes = Shapes()
    shapes.check("probs", probs, ("N", "E"))
    if probs.shape[0] == 0:
        raise ValueError("probs must hold at least one token: shape (N, E) with N >= 1 (the loss "
                         f"is a mean over tokens); got {tuple(probs.shape)}")
    indices = _integer_array("indices", indices, ("N", "k"), shapes, probs.shape[1])
    _same_kind(probs, indices)
    out = IMPLEMENTATIONS.call(IMPLEMENTATIONS.pick(backend, probs), "load_balance_loss", probs,
                               indices)
    return out if is_torch(probs) else np.asarray(out, dtype=probs.dtype)


def _count_experts(experts) -> int:
    """How many experts: a SwiGLUExperts module's first weight axis, else the sequence's length."""
    w1 = getattr(experts, "w1", None)
    if w1 is not None and hasattr(w1, "shape"):
        return int(w1.shape[0])
    try:
        return len(experts)
    except TypeError:
        raise TypeError("experts must be a sequence of E callables or a SwiGLUExperts module; "
                        f"got {type(experts).__name__}") from None


def dense_mixture(x, probs, experts):
    """The oracle: every expert on every token, ``y = Σ_e probs[:, e] · Expert_e(x)``.
    ``x (N, d)``, ``probs (N, E)``, ``experts`` E callables (or a ``SwiGLUExperts`` module)."""
    x = require_float("x", x)
    probs = require_float("probs", probs)
    same_kind([x, probs])
    shapes = Shapes()
    shapes.check("x", x, ("N", "d"))
    shapes.check("probs", probs, ("N", "E"))
    n_experts = _count_experts(experts)
    if n_experts != probs.shape[1]:
        raise ValueError(f"experts must hold E = {probs.shape[1]} experts (E from probs' last "
                         f"axis); got {n_experts}")
    return IMPLEMENTATIONS.call(IMPLEMENTATIONS.pick(None, x), "dense_mixture", x, probs, experts)
