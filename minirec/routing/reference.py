r"""Mixture-of-experts routing in NumPy: the specification.

Notation (lesson 07)::

    N  tokens (a batch and its time steps flattened: routing treats every token alone)
    d  model size        E  experts        k  experts per token        C  capacity (slots per expert)
    H_r  size of the recurrent router's state
    h        (N, d)     the tokens entering an MoE layer
    logits   (N, E)     the router's scores;  p = softmax(logits) over the E experts (axis 1)
    weights  (N, k)     the gate of each chosen expert: p of the top k, renormalised to sum 1
    indices  (N, k)     which experts, best first (int64)
    slots    (N, k)     where the token sits in its expert's buffer, −1 when it was dropped
    buffers  (E, C, d)  each expert's batch of tokens, zero-padded

A layer is ``route → dispatch → experts → combine``::

    p = softmax(logits);  (w, idx) = top_k(p);  w ← w / Σ_j w_j
    y_n = Σ_j w_nj · Expert_{idx_nj}(h_n)        over the kept (not dropped) choices

The dense mixture ``y_n = Σ_e p_ne Expert_e(h_n)`` runs every expert on every token: it is the
oracle for k = E and the cost the sparse layer is measured against.

The RMoE router (Qiu et al., *Layerwise Recurrent Router for Mixture-of-Experts*) is one GRU cell
shared by every layer, whose state runs across layers (depth), not time::

    x^(l) = W1 h^(l)                   W1 (H_r, d)
    r^(l) = GRU(x^(l), r^(l−1))        r^(−1) = 0; the GRU is minirec.cells' (torch.nn's gates)
    logits^(l) = W2 r^(l)              W2 (E, H_r)
"""

from __future__ import annotations

import math

import numpy as np

from minirec._validate import require_positive_int
from minirec.cells import reference as cells

__all__ = [
    "softmax", "top_k_route", "capacity_from_factor", "expert_slots", "dispatch", "combine",
    "load_balance_loss", "expert_load", "dense_mixture", "moe_layer", "swiglu_expert", "silu",
    "linear_router", "gru_router_step", "moe_stack_forward", "init_gru_router", "router_of_layer",
    "layer_norm",
]


def softmax(logits, axis=-1):
    """softmax along ``axis`` (the experts), shifted by the max so that exp never overflows."""
    z = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def silu(a):
    """silu(a) = a · σ(a)."""
    return a * cells.sigmoid(a)


# --------------------------------------------------------------------------------------------
# Top-k gating
# --------------------------------------------------------------------------------------------

def top_k_route(logits, k, *, normalize=True):
    """Top-k gating. ``logits (N, E)`` → ``(weights (N, k), indices (N, k))``.

    ``p = softmax(logits)`` over the experts; ``indices`` are the k most probable experts, best
    first (ties: the lower expert index first); ``weights`` are their probabilities divided by
    their sum (``normalize=False`` keeps the raw probabilities: the Switch Transformer's k = 1
    form, where the router learns through the gate value p of the one chosen expert).
    """
    p = softmax(logits, axis=1)
    indices = np.argsort(-p, axis=1, kind="stable")[:, :k]      # best first, stable for ties
    weights = np.take_along_axis(p, indices, axis=1)            # p_{n, idx_nj}
    if normalize:
        weights = weights / weights.sum(axis=1, keepdims=True)  # w_nj = p_nj / Σ_j p_nj
    return weights, indices


# --------------------------------------------------------------------------------------------
# Capacity, dispatch and combine
# --------------------------------------------------------------------------------------------

def capacity_from_factor(n_tokens, n_experts, k, factor):
    """Slots per expert: C = ⌈factor · N · k / E⌉ (factor 1 = exactly a balanced share)."""
    return max(1, math.ceil(factor * n_tokens * k / n_experts))


def expert_slots(indices, n_experts, capacity=None):
    """The capacity rule. ``indices (N, k)`` → ``slots (N, k)``: each choice's position in its
    expert's buffer, or −1 where the expert was full and the choice is dropped.

    Choices are served in priority order: every token's first choice (tokens in order), then
    every token's second choice, and so on (GShard's rule: a second choice never pushes out
    another token's first). ``capacity=None`` means no limit.
    """
    N, k = indices.shape
    limit = N * k if capacity is None else capacity
    slots = np.full((N, k), -1, dtype=np.int64)
    filled = np.zeros(n_experts, dtype=np.int64)                # tokens already in each buffer
    for j in range(k):                                          # first choices before second ones
        for n in range(N):
            e = indices[n, j]
            if filled[e] < limit:
                slots[n, j] = filled[e]
                filled[e] += 1
    return slots


def dispatch(x, indices, n_experts, capacity=None):
    """Copy each token into the buffers of the experts it chose.

    ``x (N, d)``, ``indices (N, k)`` → ``(buffers (E, C, d), slots (N, k))`` with
    ``buffers[idx_nj, slots_nj] = x_n`` for every kept choice, zeros elsewhere. ``C`` is
    ``capacity``, or without one the largest number of tokens any expert received (≥ 1).
    """
    slots = expert_slots(indices, n_experts, capacity)
    C = capacity if capacity is not None else max(1, int(slots.max(initial=-1)) + 1)
    buffers = np.zeros((n_experts, C, x.shape[1]), dtype=x.dtype)
    for n, j in zip(*np.nonzero(slots >= 0), strict=True):
        buffers[indices[n, j], slots[n, j]] = x[n]
    return buffers, slots


def combine(expert_out, weights, indices, slots):
    """Gather each token's expert outputs back and mix them with its gates.

    ``expert_out (E, C, d_out)``, ``weights, indices, slots (N, k)`` → ``y (N, d_out)``::

        y_n = Σ_{j : slot_nj ≥ 0} w_nj · expert_out[idx_nj, slot_nj]

    A dropped choice adds nothing (its gate is not redistributed); a token that lost every
    choice gets y_n = 0, and the residual connection around the layer carries it through.
    """
    N, k = weights.shape
    y = np.zeros((N, expert_out.shape[2]), dtype=expert_out.dtype)
    for n in range(N):
        for j in range(k):
            if slots[n, j] >= 0:
                y[n] += weights[n, j] * expert_out[indices[n, j], slots[n, j]]
    return y


# --------------------------------------------------------------------------------------------
# The load-balancing loss (Switch Transformer / GShard)
# --------------------------------------------------------------------------------------------

def expert_load(indices, n_experts):
    """f_e: the fraction of the N·k routing choices that went to expert e. ``(E,)``, sums to 1."""
    counts = np.bincount(indices.ravel(), minlength=n_experts)
    return counts / indices.size


def load_balance_loss(probs, indices):
    """The auxiliary balance loss ``E · Σ_e f_e · P_e``.

    ``probs (N, E)`` the router's softmax, ``indices (N, k)`` its choices. ``f_e`` is the
    fraction of choices sent to expert e (a count: no gradient flows through it) and
    ``P_e = mean_n p_ne`` the mean probability (differentiable). It is 1 when routing is uniform
    and E when one expert takes every token with probability 1. For k = 1 it is the Switch
    Transformer's loss; implementations that sum over the k slots (Mixtral) report k times it.
    """
    E = probs.shape[1]
    f = expert_load(indices, E)                                 # f_e = #{choices of e} / (N k)
    P = probs.mean(axis=0)                                      # P_e = (1/N) Σ_n p_ne
    return E * np.sum(f * P)


# --------------------------------------------------------------------------------------------
# Experts, the dense mixture and the whole layer
# --------------------------------------------------------------------------------------------

def swiglu_expert(x, w1, w3, w2):
    """The LLaMA-MoE expert: ``w2 (silu(w1 x) ⊙ w3 x)``. ``x (n, d)``, ``w1, w3 (F, d)``,
    ``w2 (d_out, F)`` → ``(n, d_out)``."""
    return (silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def dense_mixture(x, probs, experts):
    """Every expert on every token, mixed by the router's probabilities: the oracle.

    ``x (N, d)``, ``probs (N, E)`` (or any (N, E) gates), ``experts`` a sequence of E callables
    ``(n, d) → (n, d_out)`` → ``y (N, d_out) = Σ_e probs[:, e] · Expert_e(x)``.
    """
    return sum(probs[:, e:e + 1] * expert(x) for e, expert in enumerate(experts))


def moe_layer(x, logits, experts, k, *, capacity=None, normalize=True):
    """Route, dispatch, run each expert on its buffer, combine.

    ``x (N, d)``, ``logits (N, E)``, ``experts`` E callables → ``(y (N, d_out), weights, indices,
    slots)``. Each expert runs once, on its (C, d) buffer.
    """
    weights, indices = top_k_route(logits, k, normalize=normalize)
    buffers, slots = dispatch(x, indices, len(experts), capacity)
    expert_out = np.stack([expert(buffers[e]) for e, expert in enumerate(experts)])
    return combine(expert_out, weights, indices, slots), weights, indices, slots


# --------------------------------------------------------------------------------------------
# Routers: independent (one linear map per layer) and recurrent over depth (RMoE)
# --------------------------------------------------------------------------------------------

def linear_router(h, W):
    """The usual router: ``logits = h Wᵀ``, ``h (N, d)``, ``W (E, d)`` → ``(N, E)``."""
    return h @ W.T


def gru_router_step(h, r_prev, router):
    """One layer of the RMoE router. ``h (N, d)``, ``r_prev (N, H_r)`` (zeros before the first
    layer), ``router`` one layer's dict: ``W1 (H_r, d)``, ``W2 (E, H_r)`` and ``gru`` (a GRU
    params dict with torch.nn's names: ``weight_ih (3H_r, H_r)``, ...) → ``(logits (N, E), r
    (N, H_r))``.

    The GRU cell is the same in every layer; only ``r`` changes from layer to layer, and, in the
    paper's form, each layer's own ``W1``, ``W2`` (:func:`init_gru_router` with ``n_layers``).
    """
    x = h @ router["W1"].T                                      # x^(l) = W1^(l) h^(l)
    r = cells.gru_step(x, r_prev, router["gru"])                # r^(l) = GRU(x^(l), r^(l−1))
    return r @ router["W2"].T, r                                # logits = W2^(l) r^(l)


def _linear_init(rng, shape, fan_in, dtype):
    """torch.nn.Linear's draw: uniform in ±1/√fan_in."""
    return rng.uniform(-1, 1, size=shape).astype(dtype) / np.sqrt(fan_in)


def init_gru_router(d, n_experts, hidden_size, *, rng, n_layers=None, dtype=np.float64):
    """The RMoE router, drawn as torch.nn.Linear / GRUCell do.

    ``n_layers=None``: one dict for :func:`gru_router_step`, its ``W1``, ``W2`` *tied* across
    layers (every layer reads the same projections). ``n_layers=L``: the paper's form (RMoE's
    code: each MoE block owns ``weight1``, ``weight2``; the GRU cell is the model's, shared), a
    list of L dicts with their own ``W1 (H_r, d)``, ``W2 (E, H_r)`` and one ``gru`` dict, the
    same object in every layer.
    """
    layers = [{"W1": _linear_init(rng, (hidden_size, d), d, dtype),
               "W2": _linear_init(rng, (n_experts, hidden_size), hidden_size, dtype)}
              for _ in range(1 if n_layers is None else require_positive_int("n_layers", n_layers))]
    gru = cells.init_params("gru", hidden_size, hidden_size, rng=rng, dtype=dtype)
    routers = [{**projections, "gru": gru} for projections in layers]
    return routers[0] if n_layers is None else routers


def router_of_layer(gru_router, layer, n_layers):
    """Layer ``layer``'s router dict: the tied dict itself, or entry ``layer`` of the per-layer
    list (which must have ``n_layers`` entries sharing one GRU cell)."""
    if isinstance(gru_router, dict):
        return gru_router
    if len(gru_router) != n_layers:
        raise ValueError(f"gru_router must hold one router dict per layer: {n_layers}; got "
                         f"{len(gru_router)}")
    first = gru_router[0]["gru"]
    if any(any(not np.array_equal(r["gru"][key], first[key]) for key in first)
           for r in gru_router[1:]):
        raise ValueError("gru_router's layers must share one GRU cell (RMoE's router); their "
                         "'gru' params differ")
    return gru_router[layer]


def layer_norm(h, eps=1e-5):
    """(h − mean) / sqrt(var + eps) over the last axis, no learned scale or shift."""
    mu = h.mean(axis=-1, keepdims=True)
    var = ((h - mu) ** 2).mean(axis=-1, keepdims=True)
    return (h - mu) / np.sqrt(var + eps)


def moe_stack_forward(h, layer_experts, k, *, router_weights=None, gru_router=None,
                      normalize=True, capacity=None, norm=False):
    """A residual stack of MoE layers, ``h^(l+1) = h^(l) + MoE_l(u^(l))`` where the router and
    the experts read ``u^(l) = h^(l)``, or ``layer_norm(h^(l))`` with ``norm=True``.

    ``h (N, d)``; ``layer_experts`` a list of L lists of E callables ``(n, d) → (n, d)``. Give
    either ``router_weights`` (L matrices ``(E, d)``: independent linear routers) or
    ``gru_router`` from :func:`init_gru_router`: one dict (projections tied across layers) or a
    list of L dicts (each layer's own projections around one shared GRU cell: the paper's form).

    Returns ``(h^(L) (N, d), logits (L, N, E), indices (L, N, k))``.
    """
    if (router_weights is None) == (gru_router is None):
        raise ValueError("give exactly one of router_weights (independent) or gru_router (shared)")
    r = None
    if gru_router is not None:
        first = router_of_layer(gru_router, 0, len(layer_experts))
        r = np.zeros((h.shape[0], first["W1"].shape[0]), dtype=h.dtype)  # r^(−1) = 0
    all_logits, all_indices = [], []
    for layer, experts in enumerate(layer_experts):
        u = layer_norm(h) if norm else h
        if gru_router is None:
            logits = linear_router(u, router_weights[layer])
        else:
            router = router_of_layer(gru_router, layer, len(layer_experts))
            logits, r = gru_router_step(u, r, router)           # state carried to the next layer
        y, _, indices, _ = moe_layer(u, logits, experts, k, capacity=capacity, normalize=normalize)
        h = h + y
        all_logits.append(logits)
        all_indices.append(indices)
    return h, np.stack(all_logits), np.stack(all_indices)
