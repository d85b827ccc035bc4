"""Attention as recurrence: softmax attention, Aaren, causal linear attention, LightNet.

Three implementations of the same maths, in this folder:

- ``reference.py``  NumPy, the equations in the code: the specification;
- ``numba_cpu.py``  compiled loops (``@njit(cache=True)``) for the two mechanisms whose natural
  form is a loop with an O(1) state: streaming Aaren and recurrent linear attention;
- ``torch_ops.py``  differentiable twins of every form, and :class:`AarenLayer` (an ``nn.Module``).

Shapes, time first::

    q (T, ..., d_k)   k (T, ..., d_k)   v (T, ..., d_v)   →   o (T, ..., d_v)

``...`` are batch axes, any number of them and the same for q, k and v (batch, heads, ...).
Aaren's query has no time axis: ``q (d_k,)``, or ``(..., d_k)`` broadcastable to k's batch
axes (one query per head). ``T ≥ 1``.

The public functions take NumPy arrays or torch tensors. ``backend=None`` picks Numba for NumPy
input and Torch for tensors; ``backend="numpy"`` runs the reference. Where a form has no loop to
compile (softmax attention, Aaren's direct and scan forms, parallel and chunked linear
attention, LightNet) ``"numba"`` runs the reference. Results have the input's type and dtype.
"""

from __future__ import annotations

import numpy as np

from minirec._dispatch import Implementations, same_kind
from minirec._validate import Shapes, batch_names, is_torch, require_float, require_positive_int
from minirec.attention import reference
from minirec.attention.reference import SCAN_ORDERS, scan_order

__all__ = [
    "softmax_attention", "aaren", "linear_attention", "lightnet",
    "grid_final_states", "normalized_global_sum", "scan_order", "SCAN_ORDERS",
    "AarenLayer", "FEATURE_MAPS", "AAREN_METHODS", "LINEAR_ATTENTION_METHODS",
]

AAREN_METHODS = ("scan", "stream", "direct", "sequential", "hillis_steele", "blelloch")
#: The ``method=`` choices of :func:`linear_attention` (all compute the same outputs).
LINEAR_ATTENTION_METHODS = ("parallel", "recurrent", "chunked")
FEATURE_MAPS = tuple(reference.FEATURE_MAPS)

#: Where each kernel runs on each backend (minirec._dispatch: the choice, the conversion, the
#: call). Numba compiles the two loops with an O(1) state; elsewhere it runs the reference.
IMPLEMENTATIONS = Implementations(__name__, {
    #                             numpy        numba        torch
    "softmax_attention":          ("reference", "reference", "torch_ops"),
    "aaren_scores":               ("reference", "reference", "torch_ops"),
    "aaren_direct":               ("reference", "reference", "torch_ops"),
    "aaren_final_state":          ("reference", "reference", "torch_ops"),
    "aaren_stream":               ("reference", "numba_cpu", "torch_ops"),
    "aaren_scan":                 ("reference", "reference", "torch_ops"),
    "linear_attention_parallel":  ("reference", "reference", "torch_ops"),
    "linear_attention_recurrent": ("reference", "numba_cpu", "torch_ops"),
    "linear_attention_chunked":   ("reference", "reference", "torch_ops"),
    "lightnet_additive":          ("reference", "reference", "torch_ops"),
    "lightnet_multiplicative":    ("reference", "reference", "torch_ops"),
})


def __getattr__(name):
    if name == "AarenLayer":                                        # torch only when asked for
        from minirec.attention.torch_ops import AarenLayer
        return AarenLayer
    raise AttributeError(f"module 'minirec.attention' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _sequence(shapes, name, value, last):
    """Check a (T, ..., last) input: float, T ≥ 1, the batch axes of the first sequence checked
    (a mismatch names both arguments)."""
    value = require_float(name, value)
    shapes.check_batched(name, value, ("T",), (last,))
    if value.shape[0] == 0:
        raise ValueError(f"{name} must have at least one time step: shape (T, ..., {last}) with "
                         f"T >= 1; got {tuple(value.shape)}")
    return value


def _positive_number(name, value) -> float:
    """A positive, finite real number (a Python or NumPy scalar; no array: it would broadcast)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive real number; got {type(value).__name__}"
                        + (f" of shape {tuple(value.shape)}" if hasattr(value, "shape") else ""))
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number; got {value!r}")
    return float(value)


def _state_part(shapes, name, value, tail):
    """Check one array of a state: shape (..., *tail) with the batch axes of the inputs."""
    value = require_float(name, value)
    return shapes.check(name, value, (*batch_names(shapes.batch), *tail))


def _state_tuple(name, state, n, what):
    if not (isinstance(state, (tuple, list)) and len(state) == n):
        raise TypeError(f"{name} must be {what}; got {type(state).__name__}")
    return tuple(state)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

def softmax_attention(q, k, v, *, causal=True, scale=None, backend=None):
    """Softmax attention, causal by default: o_t = Σ_{i≤t} softmax_i(scale · q_t·k_i) v_i.

    ``q (T, ..., d_k)``, ``k (S, ..., d_k)``, ``v (S, ..., d_v)`` → ``o (T, ..., d_v)``; causal
    needs S = T. ``scale`` defaults to 1/√d_k (as ``scaled_dot_product_attention``).
    """
    shapes = Shapes()
    q = _sequence(shapes, "q", q, "d_k")
    if scale is None and q.shape[-1] == 0:
        raise ValueError("q must have d_k >= 1 for the default scale 1/√d_k; got shape "
                         f"{tuple(q.shape)}")
    if scale is not None:
        scale = _positive_number("scale", scale)
    spec_t = "T" if causal else "S"
    k = require_float("k", k)
    v = require_float("v", v)
    same_kind([q, k, v])
    shapes.check_batched("k", k, (spec_t,), ("d_k",))
    shapes.check_batched("v", v, (spec_t,), ("d_v",))
    if k.shape[0] == 0:
        raise ValueError("k must have at least one time step")
    backend = IMPLEMENTATIONS.pick(backend, q)
    return IMPLEMENTATIONS.call(backend, "softmax_attention", q, k, v, causal=causal, scale=scale)


def _aaren_inputs(q, k, v, state):
    shapes = Shapes()
    k = _sequence(shapes, "k", k, "d_k")
    v = _sequence(shapes, "v", v, "d_v")
    q = require_float("q", q)
    batch = tuple(k.shape[1:-1])
    ok = 1 <= q.ndim <= k.ndim - 1 and q.shape[-1] == k.shape[-1]
    if ok:
        try:
            ok = np.broadcast_shapes(tuple(q.shape[:-1]), batch) == batch
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"q must have shape (d_k,) or (..., d_k) broadcastable to k's batch axes: "
                         f"(d_k,) = ({k.shape[-1]},) or (..., {k.shape[-1]}) with ... "
                         f"broadcastable to {batch} (from k); got {tuple(q.shape)}")
    if state is not None:
        m, u, w = _state_tuple("state", state, 3, "the triple (m, u, w) of shapes (...), (...), "
                                                  "(..., d_v)")
        state = (_state_part(shapes, "state[0] (m)", m, ()),
                 _state_part(shapes, "state[1] (u)", u, ()),
                 _state_part(shapes, "state[2] (w)", w, ("d_v",)))
    same_kind([q, k, v, *(state or ())])
    return q, k, v, state


def aaren(q, k, v, *, method="scan", state=None, return_state=False, backend=None):
    """Aaren (attention as a many-to-many RNN): o_t = Σ_{i≤t} softmax(s_{≤t})_i v_i, s_i = q·k_i.

    ``q (d_k,)`` or ``(..., d_k)`` (one query for all steps, broadcast over k's batch axes),
    ``k (T, ..., d_k)``, ``v (T, ..., d_v)`` → ``o (T, ..., d_v)``, or ``(o, state)`` with
    ``return_state=True``. ``method``:

    - ``"scan"`` a prefix scan of (m, u, w) triples with the combine
      :func:`minirec.scan.reference.softmax_attention_combine` (Hillis–Steele; ``"sequential"``,
      ``"hillis_steele"``, ``"blelloch"`` pick the scan on the NumPy and Numba backends; Torch's
      scan is a doubling, Hillis–Steele, scan);
    - ``"stream"`` one token at a time with an O(1) state (Numba compiles this loop);
    - ``"direct"`` the (T, T) masked softmax, O(T²).

    ``state = (m (...), u (...), w (..., d_v))``: the running max of the scores, the sum of
    e^{s_i − m} and the e^{s_i − m}-weighted sum of values of earlier tokens (``"scan"`` and
    ``"stream"`` only), so that a sequence run in pieces with the state carried gives the same
    outputs as in one go.
    """
    if method not in AAREN_METHODS:
        raise ValueError(f"method must be one of {AAREN_METHODS}; got {method!r}")
    if state is not None and method == "direct":
        raise ValueError("state needs method='scan' or 'stream'; the direct form has no state")
    q, k, v, state = _aaren_inputs(q, k, v, state)
    backend = IMPLEMENTATIONS.pick(backend, k)
    if backend == "torch" and method in ("sequential", "blelloch"):
        raise ValueError(f"method={method!r} is a NumPy scan; the torch backend's scan is "
                         "'scan' (doubling, Hillis–Steele)")
    scan = {} if backend == "torch" else {"method": "hillis_steele" if method == "scan" else method}
    o, final = IMPLEMENTATIONS.run(backend, _aaren, q, k, v, state, method=method,
                                   return_state=return_state, scan=scan)
    return (o, final) if return_state else o


def _aaren(impl, q, k, v, state, *, method, return_state, scan):
    """Aaren on one backend (``impl``): the scores s_i = q·k_i, then the method's recurrence
    → ``(o, final state or None)``; ``scan``: the keywords of the scan form."""
    scores = impl.aaren_scores(q, k)
    if method == "direct":
        return (impl.aaren_direct(scores, v),
                impl.aaren_final_state(scores, v) if return_state else None)
    if method == "stream":
        return impl.aaren_stream(scores, v, state=state)
    return impl.aaren_scan(scores, v, state=state, **scan)


def _features(feature_map, q, k):
    if callable(feature_map):
        return feature_map(q), feature_map(k)
    if feature_map not in FEATURE_MAPS:
        raise ValueError(f"feature_map must be one of {FEATURE_MAPS} or a callable; "
                         f"got {feature_map!r}")
    if is_torch(q):
        from minirec.attention import torch_ops as module
    else:
        module = reference
    phi = module.FEATURE_MAPS[feature_map]
    return phi(q), phi(k)


def linear_attention(q, k, v, *, method="parallel", feature_map="elu+1", normalize=True,
                     chunk_size=64, state=None, return_state=False, backend=None):
    """Causal linear attention, the RNN inside attention:

        S_t = S_{t−1} + φ(k_t) v_tᵀ,  z_t = z_{t−1} + φ(k_t),  o_t = S_tᵀ φ(q_t) / z_t·φ(q_t)

    (``normalize=False``: o_t = S_tᵀ φ(q_t)). ``q, k (T, ..., d_k)``, ``v (T, ..., d_v)`` →
    ``o (T, ..., d_v)``, or ``(o, (S, z))`` with ``return_state=True``.

    ``method``: ``"parallel"`` (masked (φ(Q)φ(K)ᵀ ⊙ causal) V, O(T²)), ``"recurrent"`` (the loop
    above; Numba compiles it) or ``"chunked"`` (parallel inside chunks of ``chunk_size`` steps,
    the state carried between them). ``feature_map``: ``"elu+1"`` (default), ``"taylor"``
    (Based's 2nd-order Taylor map, d_f = 1 + d_k + d_k²), ``"identity"`` (use with
    ``normalize=False``) or a callable ``(..., d_k) → (..., d_f)`` on the input's array type.
    ``state = (S (..., d_f, d_v), z (..., d_f))`` summarises earlier tokens: a sequence run in
    pieces with the state carried gives the outputs of one run.
    """
    if method not in LINEAR_ATTENTION_METHODS:
        raise ValueError(f"method must be one of {LINEAR_ATTENTION_METHODS}; got {method!r}")
    shapes = Shapes()
    q = _sequence(shapes, "q", q, "d_k")
    k = _sequence(shapes, "k", k, "d_k")
    v = _sequence(shapes, "v", v, "d_v")
    same_kind([q, k, v])
    fq, fk = _features(feature_map, q, k)
    _sequence(shapes, "feature_map(q)", fq, "d_f")
    _sequence(shapes, "feature_map(k)", fk, "d_f")
    if state is not None:
        S, z = _state_tuple("state", state, 2, "the pair (S (..., d_f, d_v), z (..., d_f))")
        state = (_state_part(shapes, "state[0] (S)", S, ("d_f", "d_v")),
                 _state_part(shapes, "state[1] (z)", z, ("d_f",)))
    same_kind([q, fq, fk, *(state or ())])
    backend = IMPLEMENTATIONS.pick(backend, q)
    kw = {"normalize": bool(normalize), "state": state}
    if method == "chunked":
        kw["chunk_size"] = require_positive_int("chunk_size", chunk_size)
    if normalize and feature_map == "elu+1":
        fq = _rescaled_elu_features(q, fq)
    o, final = IMPLEMENTATIONS.call(backend, f"linear_attention_{method}", fq, fk, v, **kw)
    if normalize and feature_map == "elu+1":
        _refuse_underflowed_normaliser(o, q, k, v, state)
    return (o, final) if return_state else o


#: Below this largest feature, a query's elu+1 features are rescaled (float32's tiny is 1e-38).
_TINY_FEATURE = 2.0 ** -60


def _rescaled_elu_features(q, fq):
    """φ(q) / max_f φ(q) for the queries whose elu+1 features are all tiny (q ≲ −42): the output
    S_tᵀ φ(q) / z_t·φ(q) is unchanged by a positive factor per query, and the features no longer
    underflow to 0 (q ≈ −1e3: e^q = 0 in float64, and 0/0). Computed from log φ(q) = q for
    q ≤ 0, log(1 + q) for q > 0, so that no exponential underflows before the shift."""
    lib = _lib(q)
    largest = fq.max(-1, keepdims=True)
    if is_torch(q):
        largest = largest.values
    tiny = largest < _TINY_FEATURE
    if not bool(tiny.any()):
        return fq
    log_phi = lib.where(q > 0, lib.log1p(lib.clip(q, 0, None)), lib.clip(q, None, 0))
    top = log_phi.max(-1, keepdims=True)
    if is_torch(q):
        top = top.values
    return lib.where(tiny, lib.exp(log_phi - top), fq)


def _refuse_underflowed_normaliser(o, q, k, v, state):
    """NaN from finite input: every φ(k_i)·φ(q_t) up to t underflowed to 0 (keys ≲ −745 in
    float64, −87 in float32), so the normaliser is 0/0. Refused rather than returned."""
    lib = _lib(o)
    if not bool(lib.isnan(o).any()):
        return
    inputs = [q, k, v, *(state or ())]
    if all(bool(lib.isfinite(x).all()) for x in inputs):
        raise ValueError(
            "linear_attention: the elu+1 features of k underflowed to 0 (entries of k below about "
            "−745 in float64, −87 in float32), so the normaliser z_t·φ(q_t) is 0 and the output "
            "0/0; scale k (and q) down, or use float64, or normalize=False")


def _lib(x):
    if is_torch(x):
        import torch
        return torch
    return np

def lightnet(q, k, v, *, decay=None, state=None, return_state=False, backend=None):
    """LightNet's additive linear recurrence (``decay=None``), or the multiplicative one::

        additive:        z_t = logaddexp(z_{t−1}, k_t),  g_t = z_{t−1} − z_t,
                         S_t = diag(e^{g_t}) S_{t−1} + e^{k_t − z_t} v_tᵀ
                             = Σ_{i≤t} e^{k_i} v_iᵀ / Σ_{i≤t} e^{k_i}   (per key channel)
        multiplicative:  S_t = diag(λ_t) S_{t−1} + k_t v_tᵀ,   λ = ``decay``
        both:            o_t = S_tᵀ q_t

    ``q, k (T, ..., d_k)``, ``v (T, ..., d_v)``, ``decay (T, ..., d_k)`` → ``o (T, ..., d_v)``, or
    with ``return_state=True`` ``(o, state)``: additive ``state = (S (..., d_k, d_v), z (..., d_k))``
    (z = log Σ e^{k}, −∞ for an empty past), multiplicative ``state = S (..., d_k, d_v)``.
    """
    shapes = Shapes()
    q = _sequence(shapes, "q", q, "d_k")
    k = _sequence(shapes, "k", k, "d_k")
    v = _sequence(shapes, "v", v, "d_v")
    if decay is not None:
        decay = _sequence(shapes, "decay", decay, "d_k")
    if state is not None:
        if decay is None:
            S, z = _state_tuple("state", state, 2,
                                "the pair (S (..., d_k, d_v), z (..., d_k)) of the additive recurrence")
            state = (_state_part(shapes, "state[0] (S)", S, ("d_k", "d_v")),
                     _state_part(shapes, "state[1] (z)", z, ("d_k",)))
        else:
            state = (_state_part(shapes, "state (S)", state, ("d_k", "d_v")),)
    same_kind([q, k, v, decay, *(state or ())])
    backend = IMPLEMENTATIONS.pick(backend, q)
    if decay is None:
        o, final = IMPLEMENTATIONS.call(backend, "lightnet_additive", q, k, v, state=state)
    else:
        o, final = IMPLEMENTATIONS.call(backend, "lightnet_multiplicative", q, k, v, decay,
                                        state=None if state is None else state[0])
    return (o, final) if return_state else o


def _grid(shapes, name, value, last):
    """Check a grid ``(H, W, ..., last)`` of NumPy floats with H, W ≥ 1."""
    if is_torch(value):
        raise TypeError(f"{name} must be a NumPy array (the grid scans run in NumPy); got a tensor")
    value = shapes.check_batched(name, require_float(name, value), ("H", "W"), (last,))
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"{name} must have a grid of at least one position: shape "
                         f"(H, W, ..., {last}) with H, W >= 1; got {tuple(value.shape)}")
    return value


def grid_final_states(k, v, *, decay=None, orders=SCAN_ORDERS, rng=None):
    """The final state of one scan over a grid, for each scan order (NumPy).

    ``k (H, W, ..., d_k)``, ``v (H, W, ..., d_v)``; ``decay (H, W, ..., d_k)`` selects the
    multiplicative recurrence, None the additive one. → ``{order: S_final (..., d_k, d_v)}``.
    ``orders``: names from :data:`SCAN_ORDERS`; ``"random"`` needs ``rng``.
    """
    shapes = Shapes()
    k, v = _grid(shapes, "k", k, "d_k"), _grid(shapes, "v", v, "d_v")
    if decay is not None:
        decay = _grid(shapes, "decay", decay, "d_k")
    same_kind([k, v, decay])
    return reference.grid_final_states(k, v, decay=decay, orders=orders, rng=rng)


def normalized_global_sum(k, v):
    """Σ_i e^{k_i} v_iᵀ / Σ_i e^{k_i} over every position of a grid, per key channel (NumPy):
    what the additive LightNet state reaches whatever the scan order.

    ``k (H, W, ..., d_k)``, ``v (H, W, ..., d_v)`` → ``(..., d_k, d_v)``.
    """
    shapes = Shapes()
    k, v = _grid(shapes, "k", k, "d_k"), _grid(shapes, "v", v, "d_v")
    same_kind([k, v])
    return reference.normalized_global_sum(k, v)
