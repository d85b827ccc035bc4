r"""Attention as recurrence, in NumPy: the specification.

Notation (time first, as everywhere in minirec)::

    T     time steps; causal attention has as many keys as queries
    ...   batch axes after T: none, (B,), (B, heads), ...; the same for q, k and v
    d_k   query / key size      d_v   value size      d_f   size of a feature map φ(x)
    q (T, ..., d_k)    k (T, ..., d_k)    v (T, ..., d_v)    o (T, ..., d_v)

Heads are just one more batch axis: ``k (T, B, heads, d_k)``.

Four mechanisms, each in the forms that must agree:

- **Causal softmax attention**, masked and max-shifted: the oracle.
- **Aaren** (attention as a many-to-many RNN, Feng et al. 2024): one learned query ``q`` that does
  not depend on the input, scores ``s_i = q·k_i``, outputs
  ``o_t = Σ_{i≤t} softmax(s_{≤t})_i v_i``. Computed directly (O(T²)), as a prefix scan of the
  monoid of ``(m, u, w)`` triples (:func:`minirec.scan.reference.softmax_attention_combine`), and streamed
  token by token with an O(1) state.
- **Causal linear attention** (the survey's "linear attention is an RNN"): parallel, recurrent and
  chunked, with the state ``(S, z)`` carried in and out.
- **LightNet**'s additive recurrence beside the multiplicative one, and the scan-order
  experiment on a 2-D grid.

Every form that carries a state returns ``(o, final state)`` and accepts ``state=`` to continue
from one, so a sequence run in pieces gives the outputs of one run. T ≥ 1 throughout (the public
functions in ``__init__.py`` refuse T = 0).
"""

from __future__ import annotations

import numpy as np

from minirec.scan.reference import (
    associative_scan,
    linear_recurrence,
    softmax_attention_elements,
    softmax_attention_output,
)
from minirec.scan.reference import softmax_attention_combine as attention_combine

__all__ = [
    "softmax_attention",
    "aaren_scores", "aaren_direct", "aaren_scan", "aaren_initial_state", "aaren_stream_step",
    "aaren_stream", "aaren_final_state", "aaren_layer", "aaren_init_params",
    "elu_plus_one", "taylor_exp", "identity", "FEATURE_MAPS",
    "linear_attention_initial_state", "linear_attention_parallel",
    "linear_attention_recurrent", "linear_attention_chunked",
    "lightnet_initial_state", "lightnet_additive_states", "lightnet_additive",
    "lightnet_multiplicative_states", "lightnet_multiplicative",
    "SCAN_ORDERS", "scan_order", "grid_final_states", "normalized_global_sum",
]


def _causal_mask(T):
    """(T, T) booleans, True where key i may be seen by query t: i ≤ t."""
    return np.tril(np.ones((T, T), dtype=bool))


def _time_first(a):
    """(..., T) → (T, ...)."""
    return np.moveaxis(a, -1, 0)


# --------------------------------------------------------------------------------------------
# Causal softmax attention: the oracle
# --------------------------------------------------------------------------------------------

def softmax_attention(q, k, v, *, causal=True, scale=None):
    """o_t = Σ_i softmax_i(scale · q_t·k_i) v_i, over i ≤ t when ``causal``.

    ``q (T, ..., d_k)``, ``k (S, ..., d_k)``, ``v (S, ..., d_v)`` → ``o (T, ..., d_v)``; causal
    needs S = T. ``scale`` defaults to 1/√d_k, as ``torch.nn.functional.scaled_dot_product_attention``.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale          # a Python float: keeps float32
    logits = np.einsum("t...d,s...d->...ts", q, k) * scale          # (..., T, S)
    if causal:
        logits = np.where(_causal_mask(q.shape[0]), logits, -np.inf)  # hide the future
    logits = logits - logits.max(axis=-1, keepdims=True)            # max-shift: e^x ≤ 1
    p = np.exp(logits)
    p = p / p.sum(axis=-1, keepdims=True)                           # softmax over keys
    return np.einsum("...ts,s...e->t...e", p, v)


# --------------------------------------------------------------------------------------------
# Aaren: one query, o_t = Σ_{i≤t} softmax(s_{≤t})_i v_i, three ways
# --------------------------------------------------------------------------------------------

def aaren_scores(q, k):
    """s_i = q·k_i. ``q (d_k,)`` or ``(..., d_k)`` (broadcast over k's batch axes; one query per
    head), ``k (T, ..., d_k)`` → ``s (T, ...)``."""
    return np.sum(k * q, axis=-1)


def aaren_direct(s, v):
    """The definition, O(T²): o_t = Σ_{i≤t} e^{s_i} v_i / Σ_{i≤t} e^{s_i}.

    ``s (T, ...)``, ``v (T, ..., d_v)`` → ``o (T, ..., d_v)``. Row t of the (T, T) weight matrix is
    the softmax of the scores s_0 … s_t, shifted by their maximum.
    """
    T = s.shape[0]
    mask = _causal_mask(T).reshape((T, T) + (1,) * (s.ndim - 1))
    logits = np.where(mask, s[None], -np.inf)                       # (t, i, ...): s_i if i ≤ t
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p = p / p.sum(axis=1, keepdims=True)                            # softmax over i ≤ t
    return np.einsum("ti...,i...e->t...e", p, v)


def aaren_scan(s, v, *, method="hillis_steele", state=None):
    """Aaren as a prefix scan: leaves (m, u, w) = (s_i, 1, v_i), combined with ⊕ =
    :func:`minirec.scan.reference.softmax_attention_combine`; o_t = w_t / u_t.

    ``s (T, ...)``, ``v (T, ..., d_v)`` → ``(o (T, ..., d_v), state)``; ``state`` = (m, u, w) with
    shapes ``(...)``, ``(...)``, ``(..., d_v)`` is the summary of earlier tokens, entered as one
    more element in front of the leaves. ``method``: "sequential", "hillis_steele" or "blelloch".
    """
    elems = softmax_attention_elements(s, v)                        # leaf_i = (s_i, 1, v_i)
    if state is not None:                                           # the past, as element −1
        elems = tuple(np.concatenate([np.asarray(x)[None], y]) for x, y in zip(state, elems))
    elems = associative_scan(attention_combine, elems, method=method)
    if state is not None:
        elems = tuple(y[1:] for y in elems)
    return softmax_attention_output(elems), tuple(y[-1] for y in elems)  # o_t = w_t / u_t


def aaren_initial_state(batch_shape, d_v, dtype=np.float64):
    """The empty prefix: m = −∞, u = 0, w = 0 — the identity of ⊕. Its size is independent of T."""
    return (np.full(batch_shape, -np.inf, dtype), np.zeros(batch_shape, dtype),
            np.zeros((*batch_shape, d_v), dtype))


def aaren_stream_step(state, s_t, v_t):
    """One token of Aaren as an RNN cell (the paper's recurrence): O(1) memory in T.

    ``state = (m, u, w)``: the running max of the scores ``(...)``, the sum of e^{s_i − m}
    ``(...)`` and the e^{s_i − m}-weighted sum of the values ``(..., d_v)``. ``s_t (...)``,
    ``v_t (..., d_v)`` → ``(state, o_t (..., d_v))``. (This is ``state ⊕ (s_t, 1, v_t)``.)
    """
    m, u, w = state
    m_new = np.maximum(m, s_t)                                      # m_t = max(m_{t−1}, s_t)
    keep = np.exp(m - m_new)                                        # rescale the old sums
    new = np.exp(s_t - m_new)                                       # weight of the new token
    u = u * keep + new                                              # u_t = u e^{m−m_t} + e^{s_t−m_t}
    w = w * keep[..., None] + new[..., None] * v_t                  # w_t = w e^{m−m_t} + e^{s_t−m_t} v_t
    return (m_new, u, w), w / u[..., None]                          # o_t = w_t / u_t


def aaren_stream(s, v, *, state=None):
    """Aaren streamed one token at a time with :func:`aaren_stream_step`.

    ``s (T, ...)``, ``v (T, ..., d_v)`` → ``(o (T, ..., d_v), state)``; ``state`` as in
    :func:`aaren_scan`, defaults to :func:`aaren_initial_state`.
    """
    if state is None:
        state = aaren_initial_state(s.shape[1:], v.shape[-1], v.dtype)
    o = np.empty_like(v)
    for t in range(s.shape[0]):
        state, o[t] = aaren_stream_step(state, s[t], v[t])
    return o, state


def aaren_final_state(s, v):
    """(m, u, w) of a whole sequence in closed form: m = max s, u = Σ e^{s−m}, w = Σ e^{s−m} v."""
    m = s.max(axis=0)
    e = np.exp(s - m)
    return m, e.sum(axis=0), np.einsum("t...,t...e->...e", e, v)


def aaren_init_params(d_model, d_head=None, heads=1, *, rng, dtype=np.float64):
    """Parameters of one Aaren layer: ``query (heads, d_head)``, ``weight_k`` and ``weight_v``
    ``(heads*d_head, d_model)``, drawn as torch.nn.Linear's U(−1/√d_model, 1/√d_model); the
    query N(0, 1/d_head). ``d_head`` defaults to d_model // heads."""
    d_head = d_model // heads if d_head is None else d_head
    bound = 1.0 / np.sqrt(d_model)
    draw = lambda *shape: rng.uniform(-bound, bound, size=shape).astype(dtype)
    return {"query": (rng.normal(size=(heads, d_head)) / np.sqrt(d_head)).astype(dtype),
            "weight_k": draw(heads * d_head, d_model), "weight_v": draw(heads * d_head, d_model)}


def aaren_layer(x, params, *, method="hillis_steele"):
    """One Aaren layer: k = W_k x, v = W_v x, s_i = q·k_i per head, o_t as in :func:`aaren_scan`.

    ``x (T, ..., d_model)`` → ``(T, ..., heads*d_head)`` (heads concatenated); ``params`` as
    :func:`aaren_init_params`. ``method="direct"`` uses :func:`aaren_direct`, "stream"
    :func:`aaren_stream`, any other a scan method.
    """
    heads, d_head = params["query"].shape
    split = lambda a: a.reshape(*a.shape[:-1], heads, d_head)
    k = split(x @ params["weight_k"].T)                             # (T, ..., heads, d_head)
    v = split(x @ params["weight_v"].T)
    s = aaren_scores(params["query"], k)                            # (T, ..., heads)
    if method == "direct":
        o = aaren_direct(s, v)
    elif method == "stream":
        o, _ = aaren_stream(s, v)
    else:
        o, _ = aaren_scan(s, v, method=method)
    return o.reshape(*o.shape[:-2], heads * d_head)


# --------------------------------------------------------------------------------------------
# Causal linear attention: softmax(q·k) replaced by φ(q)·φ(k), so the past folds into a state
#   S_t = S_{t−1} + φ(k_t) v_tᵀ  (d_f, d_v),   z_t = z_{t−1} + φ(k_t)  (d_f,)
#   o_t = S_tᵀ φ(q_t) / z_t·φ(q_t)          (without the normaliser: o_t = S_tᵀ φ(q_t))
# The forms below take the features fq = φ(q), fk = φ(k), (T, ..., d_f), and a state (S, z).
# --------------------------------------------------------------------------------------------

def elu_plus_one(x):
    """φ(x) = elu(x) + 1 = x + 1 for x > 0, e^x otherwise: positive, so the normaliser is > 0."""
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def taylor_exp(x):
    """Based's second-order Taylor feature map: φ(q)·φ(k) = 1 + q·k/√d + (q·k)²/(2d) ≈ e^{q·k/√d}.

    ``x (..., d)`` → ``(..., 1 + d + d²)``: [1, x/d^{1/4}, vec(x xᵀ)/(√2 √d)]. The quadratic
    1 + a + a²/2 is positive for every a.
    """
    d = x.shape[-1]
    outer = (x[..., :, None] * x[..., None, :]).reshape(*x.shape[:-1], d * d)
    return np.concatenate([np.ones_like(x[..., :1]), x / d**0.25, outer / (2.0 * d) ** 0.5], -1)


def identity(x):
    """φ(x) = x: unnormalised linear attention (use with ``normalize=False``)."""
    return x


FEATURE_MAPS = {"elu+1": elu_plus_one, "taylor": taylor_exp, "identity": identity}


def linear_attention_initial_state(batch_shape, d_f, d_v, dtype=np.float64):
    """The empty past: ``S (..., d_f, d_v)`` and ``z (..., d_f)`` of zeros."""
    return np.zeros((*batch_shape, d_f, d_v), dtype), np.zeros((*batch_shape, d_f), dtype)


def _readout(num, den, normalize):
    """o = num / den (den: (...), num: (..., d_v)), or num alone."""
    return num / den[..., None] if normalize else num


def linear_attention_parallel(fq, fk, v, *, normalize=True, state=None):
    """All steps at once: o = (tril(φ(Q) φ(K)ᵀ) V + φ(Q) S_0) / (tril(φ(Q) φ(K)ᵀ) 1 + φ(Q) z_0).

    ``fq, fk (T, ..., d_f)``, ``v (T, ..., d_v)``, ``state = (S_0 (..., d_f, d_v), z_0 (..., d_f))``
    or None → ``(o (T, ..., d_v), (S_T, z_T))``. O(T²) work, no loop.
    """
    T = fq.shape[0]
    if state is None:
        state = linear_attention_initial_state(fq.shape[1:-1], fq.shape[-1], v.shape[-1], v.dtype)
    S0, z0 = state
    A = np.einsum("t...f,i...f->...ti", fq, fk) * _causal_mask(T)   # A_ti = φ(q_t)·φ(k_i), i ≤ t
    num = np.einsum("...ti,i...e->t...e", A, v) + np.einsum("t...f,...fe->t...e", fq, S0)
    den = _time_first(A.sum(axis=-1)) + np.einsum("t...f,...f->t...", fq, z0)
    S = S0 + np.einsum("t...f,t...e->...fe", fk, v)                 # S_T = S_0 + Σ_t φ(k_t) v_tᵀ
    z = z0 + fk.sum(axis=0)                                         # z_T = z_0 + Σ_t φ(k_t)
    return _readout(num, den, normalize), (S, z)


def linear_attention_recurrent(fq, fk, v, *, normalize=True, state=None):
    """One step at a time, the RNN: S_t = S_{t−1} + φ(k_t) v_tᵀ, z_t = z_{t−1} + φ(k_t),
    o_t = S_tᵀ φ(q_t) / z_t·φ(q_t). Arguments and result as :func:`linear_attention_parallel`."""
    if state is None:
        state = linear_attention_initial_state(fq.shape[1:-1], fq.shape[-1], v.shape[-1], v.dtype)
    S, z = state
    o = np.empty_like(v)
    for t in range(fq.shape[0]):
        S = S + fk[t][..., :, None] * v[t][..., None, :]            # S_t = S_{t−1} + φ(k_t) v_tᵀ
        z = z + fk[t]                                               # z_t = z_{t−1} + φ(k_t)
        num = np.einsum("...f,...fe->...e", fq[t], S)               # S_tᵀ φ(q_t)
        den = np.einsum("...f,...f->...", fq[t], z)                 # z_t·φ(q_t)
        o[t] = _readout(num, den, normalize)
    return o, (S, z)


def linear_attention_chunked(fq, fk, v, *, chunk_size=64, normalize=True, state=None):
    """Chunks of ``chunk_size`` steps: parallel inside a chunk, the state (S, z) carried from one
    chunk to the next. Arguments and result as :func:`linear_attention_parallel`; O(T·C) work."""
    outs = []
    for t0 in range(0, fq.shape[0], chunk_size):
        c = slice(t0, t0 + chunk_size)
        o, state = linear_attention_parallel(fq[c], fk[c], v[c], normalize=normalize, state=state)
        outs.append(o)
    return np.concatenate(outs), state


# --------------------------------------------------------------------------------------------
# LightNet (Qin et al. 2024): the additive recurrence, beside the multiplicative one
#   additive:        z_t = logaddexp(z_{t−1}, k_t),  k̃_t = e^{k_t − z_t},  g_t = z_{t−1} − z_t
#                    S_t = diag(e^{g_t}) S_{t−1} + k̃_t v_tᵀ  =  Σ_{i≤t} e^{k_i} v_iᵀ / Σ_{i≤t} e^{k_i}
#   multiplicative:  S_t = diag(λ_t) S_{t−1} + k_t v_tᵀ
#   both read out    o_t = S_tᵀ q_t
# Shapes: q, k (T, ..., d_k), v (T, ..., d_v), λ (T, ..., d_k), S (..., d_k, d_v), z (..., d_k).
# --------------------------------------------------------------------------------------------

def lightnet_initial_state(batch_shape, d_k, d_v, dtype=np.float64):
    """The empty past of the additive recurrence: S = 0 ``(..., d_k, d_v)``, z = −∞ ``(..., d_k)``
    (log of an empty sum). The multiplicative recurrence uses the S alone."""
    return np.zeros((*batch_shape, d_k, d_v), dtype), np.full((*batch_shape, d_k), -np.inf, dtype)


def _outer(k, v):
    """k_t v_tᵀ for every t: (T, ..., d_k), (T, ..., d_v) → (T, ..., d_k, d_v)."""
    return k[..., :, None] * v[..., None, :]


def lightnet_additive_states(k, v, *, state=None):
    """Every S_t of the additive recurrence, and z_T.

    ``k (T, ..., d_k)``, ``v (T, ..., d_v)``, ``state = (S_0, z_0)`` or None →
    ``(S (T, ..., d_k, d_v), z_T (..., d_k))``. The decay e^{g_t} ≤ 1 and the input weight
    k̃_t ≤ 1 are computed in log space, so no e^{k} is ever formed: finite for any finite k.
    """
    if state is None:
        state = lightnet_initial_state(k.shape[1:-1], k.shape[-1], v.shape[-1], v.dtype)
    S0, z0 = state
    z = np.logaddexp.accumulate(np.concatenate([z0[None], k]), axis=0)  # z_t = logaddexp(z_{t−1}, k_t)
    z_prev, z = z[:-1], z[1:]
    k_tilde = np.exp(k - z)                                         # k̃_t = e^{k_t − z_t}
    decay = np.exp(z_prev - z)                                      # e^{g_t}, g_t = z_{t−1} − z_t
    S = linear_recurrence(decay[..., None], _outer(k_tilde, v), S0)  # S_t = e^{g_t} S_{t−1} + k̃_t v_tᵀ
    return S, z[-1]


def lightnet_additive(q, k, v, *, state=None):
    """LightNet's additive linear attention: o_t = S_tᵀ q_t with S_t from
    :func:`lightnet_additive_states`. → ``(o (T, ..., d_v), (S_T, z_T))``."""
    S, z = lightnet_additive_states(k, v, state=state)
    return np.einsum("t...fe,t...f->t...e", S, q), (S[-1], z)


def lightnet_multiplicative_states(k, v, decay, *, state=None):
    """Every S_t of S_t = diag(λ_t) S_{t−1} + k_t v_tᵀ.

    ``k, decay (T, ..., d_k)``, ``v (T, ..., d_v)``, ``state = S_0 (..., d_k, d_v)`` or None
    → ``S (T, ..., d_k, d_v)``.
    """
    if state is None:
        state = np.zeros((*k.shape[1:], v.shape[-1]), v.dtype)
    return linear_recurrence(decay[..., None], _outer(k, v), state)


def lightnet_multiplicative(q, k, v, decay, *, state=None):
    """The multiplicative (decay-gated) linear attention: o_t = S_tᵀ q_t with S_t from
    :func:`lightnet_multiplicative_states`. → ``(o (T, ..., d_v), S_T)``."""
    S = lightnet_multiplicative_states(k, v, decay, state=state)
    return np.einsum("t...fe,t...f->t...e", S, q), S[-1]


# --------------------------------------------------------------------------------------------
# Scan order on a 2-D grid: the additive final state is a normalised sum, the same in every
# order; the multiplicative one weights early tokens by the decays that follow them.
# --------------------------------------------------------------------------------------------

SCAN_ORDERS = ("raster", "column", "reversed", "random")


def scan_order(name, height, width, *, rng=None):
    """Flat indices (row-major numbering) of an H×W grid in the order a scan visits them.

    "raster" row by row, "column" column by column, "reversed" raster backwards, "random" a
    permutation drawn from ``rng``.
    """
    raster = np.arange(height * width)
    if name == "raster":
        return raster
    if name == "column":
        return raster.reshape(height, width).T.ravel()
    if name == "reversed":
        return raster[::-1]
    if name == "random":
        if not isinstance(rng, np.random.Generator):
            raise TypeError("scan_order('random', ...) needs rng, a numpy Generator "
                            f"(np.random.default_rng(seed)); got {type(rng).__name__}")
        return rng.permutation(height * width)
    raise ValueError(f"order must be one of {SCAN_ORDERS}; got {name!r}")


def grid_final_states(k, v, *, decay=None, orders=SCAN_ORDERS, rng=None):
    """The final state of one scan over a grid, for each scan order.

    ``k (H, W, ..., d_k)``, ``v (H, W, ..., d_v)``; ``decay (H, W, ..., d_k)`` selects the
    multiplicative recurrence, None the additive one. → ``{order: S_final (..., d_k, d_v)}``.
    """
    height, width = k.shape[:2]
    flat = lambda a: None if a is None else a.reshape(height * width, *a.shape[2:])
    k, v, decay = flat(k), flat(v), flat(decay)
    out = {}
    for name in orders:
        idx = scan_order(name, height, width, rng=rng)              # the visiting order
        out[name] = _final_state(k[idx], v[idx], None if decay is None else decay[idx])
    return out


def _final_state(k, v, decay):
    if decay is None:
        return lightnet_additive_states(k, v)[0][-1]
    return lightnet_multiplicative_states(k, v, decay)[-1]


def normalized_global_sum(k, v):
    """Σ_i e^{k_i} v_iᵀ / Σ_i e^{k_i} over every position of a grid, per key channel: the
    softmax over positions of each channel of k, times v.

    ``k (H, W, ..., d_k)``, ``v (H, W, ..., d_v)`` → ``(..., d_k, d_v)``.
    """
    k = k.reshape(-1, *k.shape[2:])
    v = v.reshape(-1, *v.shape[2:])
    p = np.exp(k - k.max(axis=0))
    p = p / p.sum(axis=0)                                           # softmax over positions
    return np.einsum("n...f,n...e->...fe", p, v)
