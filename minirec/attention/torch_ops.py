r"""Attention as recurrence in PyTorch: differentiable, on whatever device the tensors are.

The same maths, functions and shapes as :mod:`minirec.attention.reference` (the specification),
written with torch ops so that autograd differentiates every form. Notation as there::

    T  time steps    ...  batch axes (B, heads, ...)    d_k, d_v, d_f  key, value, feature sizes
    q (T, ..., d_k)  k (T, ..., d_k)  v (T, ..., d_v)  o (T, ..., d_v)

What differs from the reference: Aaren's scan is a doubling (Hillis–Steele) scan written with
slices and ``torch.cat`` — ⌈log₂ T⌉ combines of whole tensors, no in-place writes, so autograd
goes through it — and :class:`AarenLayer` is an ``nn.Module`` with a streaming ``step``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "softmax_attention",
    "aaren_scores", "aaren_direct", "aaren_combine", "aaren_scan", "aaren_initial_state",
    "aaren_stream_step", "aaren_stream", "aaren_final_state", "AarenLayer",
    "elu_plus_one", "taylor_exp", "identity", "FEATURE_MAPS",
    "linear_attention_initial_state", "linear_attention_parallel",
    "linear_attention_recurrent", "linear_attention_chunked",
    "lightnet_initial_state", "lightnet_additive", "lightnet_multiplicative",
]


def _causal_mask(T, device):
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


# --------------------------------------------------------------------------------------------
# Causal softmax attention
# --------------------------------------------------------------------------------------------

def softmax_attention(q, k, v, *, causal=True, scale=None):
    """o_t = Σ_i softmax_i(scale · q_t·k_i) v_i (i ≤ t when ``causal``); shapes as the reference."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = torch.einsum("t...d,s...d->...ts", q, k) * scale       # (..., T, S)
    if causal:
        logits = logits.masked_fill(~_causal_mask(q.shape[0], q.device), -math.inf)
    p = torch.softmax(logits, dim=-1)                                # max-shifted inside
    return torch.einsum("...ts,s...e->t...e", p, v)


# --------------------------------------------------------------------------------------------
# Aaren
# --------------------------------------------------------------------------------------------

def aaren_scores(q, k):
    """s_i = q·k_i: ``q (..., d_k)`` broadcast over ``k (T, ..., d_k)`` → ``s (T, ...)``."""
    return (k * q).sum(-1)


def aaren_direct(s, v):
    """o_t = Σ_{i≤t} softmax(s_{≤t})_i v_i from the masked (T, T) weights: ``s (T, ...)``,
    ``v (T, ..., d_v)`` → ``o (T, ..., d_v)``."""
    T = s.shape[0]
    mask = _causal_mask(T, s.device).reshape((T, T) + (1,) * (s.ndim - 1))
    logits = s.unsqueeze(0).expand(T, *s.shape).masked_fill(~mask, -math.inf)  # (t, i, ...)
    return torch.einsum("ti...,i...e->t...e", torch.softmax(logits, dim=1), v)


def aaren_final_state(s, v):
    """(m, u, w) of a whole sequence in closed form: m = max s, u = Σ e^{s−m}, w = Σ e^{s−m} v."""
    m = s.amax(0)
    e = torch.exp(s - m)
    return m, e.sum(0), torch.einsum("t...,t...e->...e", e, v)


def aaren_combine(a, b):
    """(m_A, u_A, w_A) ⊕ (m_B, u_B, w_B), A before B: the two softmax sums brought to the common
    max m = max(m_A, m_B) and added. The twin of :func:`minirec.scan.reference.softmax_attention_combine`."""
    (ma, ua, wa), (mb, ub, wb) = a, b
    m = torch.maximum(ma, mb)
    shift = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # both −∞: no −∞ + ∞ = NaN
    ea, eb = torch.exp(ma - shift), torch.exp(mb - shift)           # ≤ 1
    return m, ua * ea + ub * eb, wa * ea.unsqueeze(-1) + wb * eb.unsqueeze(-1)


def _doubling_scan(combine, elems):
    """Inclusive Hillis–Steele scan along axis 0 of a tuple of tensors: after the round with
    offset d, element t holds x_{t−2d+1} ⊕ … ⊕ x_t. Out of place, so differentiable."""
    T, offset = elems[0].shape[0], 1
    while offset < T:
        left = tuple(e[:-offset] for e in elems)
        right = tuple(e[offset:] for e in elems)
        combined = combine(left, right)                             # y_t = y_{t−d} ⊕ y_t
        elems = tuple(torch.cat([e[:offset], c]) for e, c in zip(elems, combined))
        offset *= 2
    return elems


def aaren_scan(s, v, *, state=None):
    """Aaren as a doubling prefix scan over leaves (s_i, 1, v_i); o_t = w_t / u_t.

    ``s (T, ...)``, ``v (T, ..., d_v)``, ``state = (m, u, w)`` or None → ``(o, state)``.
    """
    elems = (s, torch.ones_like(s), v)
    if state is not None:
        elems = tuple(torch.cat([x.unsqueeze(0), y]) for x, y in zip(state, elems))
    m, u, w = _doubling_scan(aaren_combine, elems)
    if state is not None:
        m, u, w = m[1:], u[1:], w[1:]
    return w / u.unsqueeze(-1), (m[-1], u[-1], w[-1])


def aaren_initial_state(batch_shape, d_v, *, dtype=torch.float32, device=None):
    """m = −∞, u = 0 ``(...)``, w = 0 ``(..., d_v)``: the empty prefix."""
    kw = {"dtype": dtype, "device": device}
    return (torch.full(tuple(batch_shape), -math.inf, **kw), torch.zeros(tuple(batch_shape), **kw),
            torch.zeros((*batch_shape, d_v), **kw))


def aaren_stream_step(state, s_t, v_t):
    """One token: ``state = (m, u, w)``, ``s_t (...)``, ``v_t (..., d_v)`` → ``(state, o_t)``."""
    m, u, w = state
    m_new = torch.maximum(m, s_t)                                   # m_t = max(m_{t−1}, s_t)
    keep, new = torch.exp(m - m_new), torch.exp(s_t - m_new)
    u = u * keep + new                                              # u_t = u e^{m−m_t} + e^{s_t−m_t}
    w = w * keep.unsqueeze(-1) + new.unsqueeze(-1) * v_t            # w_t = w e^{m−m_t} + e^{s_t−m_t} v_t
    return (m_new, u, w), w / u.unsqueeze(-1)


def aaren_stream(s, v, *, state=None):
    """Aaren one token at a time: ``s (T, ...)``, ``v (T, ..., d_v)`` → ``(o, state)``."""
    if state is None:
        state = aaren_initial_state(s.shape[1:], v.shape[-1], dtype=v.dtype, device=v.device)
    outs = []
    for s_t, v_t in zip(s.unbind(0), v.unbind(0)):
        state, o_t = aaren_stream_step(state, s_t, v_t)
        outs.append(o_t)
    return torch.stack(outs), state


#: The ``method=`` choices of :class:`AarenLayer` (all compute the same layer).
AAREN_LAYER_METHODS = ("scan", "direct", "stream")


class AarenLayer(nn.Module):
    """One Aaren layer (attention as a many-to-many RNN): a learned query per head, no biases.

    k = W_k x, v = W_v x, s_i = q·k_i per head, o_t = Σ_{i≤t} softmax(s_{≤t})_i v_i; the heads'
    outputs are concatenated. ``forward(x (T, ..., d_model))`` → ``(T, ..., heads*d_head)``,
    computed by the scan (``method="scan"``, default), the direct O(T²) form (``"direct"``) or the
    stream (``"stream"``). ``step(x_t (..., d_model), state)`` → ``(o_t, state)`` is streaming
    inference: the state ``(m, u, w)`` has shapes ``(..., heads)``, ``(..., heads)``,
    ``(..., heads, d_head)``, whatever the number of tokens seen. Parameters ``query
    (heads, d_head)``, ``weight_k``, ``weight_v (heads*d_head, d_model)``, the names of
    :func:`minirec.attention.reference.aaren_init_params`. Stack layers by feeding one's output
    to the next.
    """

    def __init__(self, d_model: int, d_head: int | None = None, heads: int = 1, *,
                 method: str = "scan", device=None, dtype=None):
        super().__init__()
        for name, n in (("d_model", d_model), ("heads", heads), ("d_head", d_head)):
            if name == "d_head" and n is None:
                n = d_head = d_model // heads                       # 0 when heads > d_model
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be a positive integer; got {n!r}")
        if method not in AAREN_LAYER_METHODS:
            raise ValueError(f"method must be one of {AAREN_LAYER_METHODS}; got {method!r}")
        self.d_model, self.d_head, self.heads, self.method = d_model, d_head, heads, method
        kw = {"device": device, "dtype": dtype}
        self.query = nn.Parameter(torch.empty(heads, d_head, **kw))
        self.weight_k = nn.Parameter(torch.empty(heads * d_head, d_model, **kw))
        self.weight_v = nn.Parameter(torch.empty(heads * d_head, d_model, **kw))
        self.reset_parameters()

    def reset_parameters(self):
        """W_k, W_v ~ U(−1/√d_model, 1/√d_model) as torch.nn.Linear; the query ~ N(0, 1/d_head)."""
        bound = 1.0 / math.sqrt(self.d_model)
        nn.init.uniform_(self.weight_k, -bound, bound)
        nn.init.uniform_(self.weight_v, -bound, bound)
        nn.init.normal_(self.query, std=1.0 / math.sqrt(self.d_head))

    def _scores_values(self, x):
        split = lambda a: a.reshape(*a.shape[:-1], self.heads, self.d_head)
        k, v = split(F.linear(x, self.weight_k)), split(F.linear(x, self.weight_v))
        return aaren_scores(self.query, k), v                       # s (…, heads), v (…, heads, d_head)

    def _merge(self, o):
        return o.reshape(*o.shape[:-2], self.heads * self.d_head)

    def forward(self, x, state=None, return_state=False):
        """``x (T, ..., d_model)`` → ``o (T, ..., heads*d_head)`` (and the final state)."""
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (T, ..., d_model) with d_model={self.d_model}; "
                             f"got {tuple(x.shape)}")
        s, v = self._scores_values(x)
        if self.method == "direct":
            if state is not None:
                raise ValueError("state needs method='scan' or 'stream'")
            o, state = aaren_direct(s, v), aaren_final_state(s, v)
        elif self.method == "stream":
            o, state = aaren_stream(s, v, state=state)
        else:
            o, state = aaren_scan(s, v, state=state)
        return (self._merge(o), state) if return_state else self._merge(o)

    def init_state(self, batch_shape=()):
        """The empty prefix for :meth:`step`, for inputs ``x_t (*batch_shape, d_model)``."""
        w = self.weight_v
        return aaren_initial_state((*batch_shape, self.heads), self.d_head, dtype=w.dtype,
                                   device=w.device)

    def step(self, x_t, state=None):
        """Streaming inference, one token: ``x_t (..., d_model)`` → ``(o_t (..., heads*d_head),
        state)``; O(1) memory in the number of tokens."""
        s_t, v_t = self._scores_values(x_t)
        if state is None:
            state = self.init_state(x_t.shape[:-1])
        state, o_t = aaren_stream_step(state, s_t, v_t)
        return self._merge(o_t), state

    def extra_repr(self):
        return (f"d_model={self.d_model}, d_head={self.d_head}, heads={self.heads}, "
                f"method={self.method!r}")


# --------------------------------------------------------------------------------------------
# Causal linear attention: S_t = S_{t−1} + φ(k_t) v_tᵀ, z_t = z_{t−1} + φ(k_t),
# o_t = S_tᵀ φ(q_t) / z_t·φ(q_t). The forms take the features fq = φ(q), fk = φ(k).
# --------------------------------------------------------------------------------------------

def elu_plus_one(x):
    """φ(x) = elu(x) + 1."""
    return F.elu(x) + 1.0


def taylor_exp(x):
    """Based's second-order Taylor map, (..., d) → (..., 1 + d + d²): [1, x/d^{1/4}, vec(x xᵀ)/√(2d)]."""
    d = x.shape[-1]
    outer = (x.unsqueeze(-1) * x.unsqueeze(-2)).reshape(*x.shape[:-1], d * d)
    return torch.cat([torch.ones_like(x[..., :1]), x / d**0.25, outer / math.sqrt(2.0 * d)], -1)


def identity(x):
    """φ(x) = x."""
    return x


FEATURE_MAPS = {"elu+1": elu_plus_one, "taylor": taylor_exp, "identity": identity}


def linear_attention_initial_state(batch_shape, d_f, d_v, *, dtype=torch.float32, device=None):
    """``S (..., d_f, d_v)`` and ``z (..., d_f)`` of zeros."""
    kw = {"dtype": dtype, "device": device}
    return torch.zeros((*batch_shape, d_f, d_v), **kw), torch.zeros((*batch_shape, d_f), **kw)


def _default_state(fq, v, state):
    if state is not None:
        return state
    return linear_attention_initial_state(fq.shape[1:-1], fq.shape[-1], v.shape[-1],
                                          dtype=v.dtype, device=v.device)


def _readout(num, den, normalize):
    return num / den.unsqueeze(-1) if normalize else num


def linear_attention_parallel(fq, fk, v, *, normalize=True, state=None):
    """o = (tril(φ(Q)φ(K)ᵀ) V + φ(Q) S_0) / (tril(φ(Q)φ(K)ᵀ) 1 + φ(Q) z_0) → ``(o, (S_T, z_T))``."""
    S0, z0 = _default_state(fq, v, state)
    A = torch.einsum("t...f,i...f->...ti", fq, fk) * _causal_mask(fq.shape[0], fq.device)
    num = torch.einsum("...ti,i...e->t...e", A, v) + torch.einsum("t...f,...fe->t...e", fq, S0)
    den = A.sum(-1).movedim(-1, 0) + torch.einsum("t...f,...f->t...", fq, z0)
    S = S0 + torch.einsum("t...f,t...e->...fe", fk, v)
    return _readout(num, den, normalize), (S, z0 + fk.sum(0))


def linear_attention_recurrent(fq, fk, v, *, normalize=True, state=None):
    """The RNN, one step at a time → ``(o, (S_T, z_T))``."""
    S, z = _default_state(fq, v, state)
    outs = []
    for fq_t, fk_t, v_t in zip(fq.unbind(0), fk.unbind(0), v.unbind(0)):
        S = S + fk_t.unsqueeze(-1) * v_t.unsqueeze(-2)              # S_t = S_{t−1} + φ(k_t) v_tᵀ
        z = z + fk_t                                                # z_t = z_{t−1} + φ(k_t)
        num = torch.einsum("...f,...fe->...e", fq_t, S)
        outs.append(_readout(num, (fq_t * z).sum(-1), normalize))
    return torch.stack(outs), (S, z)


def linear_attention_chunked(fq, fk, v, *, chunk_size=64, normalize=True, state=None):
    """Parallel inside chunks of ``chunk_size`` steps, (S, z) carried between them."""
    outs = []
    for c in range(0, fq.shape[0], chunk_size):
        sl = slice(c, c + chunk_size)
        o, state = linear_attention_parallel(fq[sl], fk[sl], v[sl], normalize=normalize,
                                             state=state)
        outs.append(o)
    return torch.cat(outs), state


# --------------------------------------------------------------------------------------------
# LightNet: additive and multiplicative recurrences, o_t = S_tᵀ q_t
# --------------------------------------------------------------------------------------------

def lightnet_initial_state(batch_shape, d_k, d_v, *, dtype=torch.float32, device=None):
    """S = 0 ``(..., d_k, d_v)``, z = −∞ ``(..., d_k)``."""
    kw = {"dtype": dtype, "device": device}
    return (torch.zeros((*batch_shape, d_k, d_v), **kw),
            torch.full((*batch_shape, d_k), -math.inf, **kw))


def _decayed_readout(q, decay, inputs, S):
    """S_t = diag(decay_t) S_{t−1} + inputs_t, o_t = S_tᵀ q_t, as a loop (decay (T, ..., d_k),
    inputs (T, ..., d_k, d_v)) → (o (T, ..., d_v), S_T)."""
    outs = []
    for q_t, a_t, b_t in zip(q.unbind(0), decay.unbind(0), inputs.unbind(0)):
        S = a_t.unsqueeze(-1) * S + b_t
        outs.append(torch.einsum("...fe,...f->...e", S, q_t))
    return torch.stack(outs), S


def lightnet_additive(q, k, v, *, state=None):
    """z_t = logaddexp(z_{t−1}, k_t), k̃_t = e^{k_t − z_t}, g_t = z_{t−1} − z_t,
    S_t = diag(e^{g_t}) S_{t−1} + k̃_t v_tᵀ, o_t = S_tᵀ q_t → ``(o, (S_T, z_T))``."""
    if state is None:
        S0 = q.new_zeros((*k.shape[1:], v.shape[-1]))
        z = torch.logcumsumexp(k, dim=0)                            # z_t = log Σ_{i≤t} e^{k_i}
        z_prev = torch.cat([torch.full_like(z[:1], -math.inf), z[:-1]])
    else:
        S0, z0 = state
        z = torch.logaddexp(z0, torch.logcumsumexp(k, dim=0))
        z_prev = torch.cat([z0.unsqueeze(0), z[:-1]])
    k_tilde = torch.exp(k - z)                                      # k̃_t ≤ 1
    decay = torch.exp(z_prev - z)                                   # e^{g_t} ≤ 1
    o, S = _decayed_readout(q, decay, k_tilde.unsqueeze(-1) * v.unsqueeze(-2), S0)
    return o, (S, z[-1])


def lightnet_multiplicative(q, k, v, decay, *, state=None):
    """S_t = diag(λ_t) S_{t−1} + k_t v_tᵀ, o_t = S_tᵀ q_t → ``(o, S_T)``."""
    S0 = q.new_zeros((*k.shape[1:], v.shape[-1])) if state is None else state
    return _decayed_readout(q, decay, k.unsqueeze(-1) * v.unsqueeze(-2), S0)
