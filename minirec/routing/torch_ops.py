r"""Mixture-of-experts routing in PyTorch: differentiable, and on CUDA when the tensors are there.

The same maths as :mod:`minirec.routing.reference` (the specification), with vectorised index
operations instead of loops over tokens, so that autograd reaches the gates (through the
weights) and the experts (through the buffers), and nothing depends on the device. Notation as
in the reference::

    N  tokens    d  model size    E  experts    k  choices per token    C  slots per expert
    L  MoE layers    H_r  the recurrent router's state size

Functions: ``top_k_route``, ``expert_slots``, ``dispatch``, ``combine``, ``load_balance_loss``,
``dense_mixture``. Modules:

- :class:`SwiGLUExperts` — E SwiGLU experts held as stacked weights, run on their (E, C, d)
  buffers by one batched product;
- :class:`MoELayer` — route (top-k of a given router's logits), dispatch, experts, combine;
- :class:`LinearRouter` and :class:`GRURouter` — the independent router of one layer, and the
  RMoE router: ``logits = W2 · GRU(W1 h, r_prev)`` whose GRU is minirec's own
  (:class:`minirec.cells.torch_ops.GRU`, run one step on a length-1 sequence: the same gates,
  names and initialisation as ``torch.nn.GRU``);
- :class:`MoEStack` — L residual MoE layers; :class:`LinearRouterMoE` gives each layer its own
  linear router, :class:`GRURouterMoE` shares one GRU router whose state passes from layer to
  layer.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minirec.cells.torch_ops import GRU

__all__ = [
    "top_k_route", "expert_slots", "dispatch", "combine", "load_balance_loss", "dense_mixture",
    "SwiGLUExperts", "MoELayer", "LinearRouter", "GRURouter", "MoEStack", "LinearRouterMoE",
    "GRURouterMoE",
]


# --------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------

def top_k_route(logits, k, *, normalize=True):
    """``logits (N, E)`` → ``(weights (N, k), indices (N, k))``: p = softmax over the experts,
    the k largest (a stable sort: lower index first on ties, as the reference), renormalised."""
    p = torch.softmax(logits, dim=1)
    top, indices = torch.sort(p, dim=1, descending=True, stable=True)
    weights = top[:, :k]
    if normalize:
        weights = weights / weights.sum(dim=1, keepdim=True)    # w_nj = p_nj / Σ_j p_nj
    return weights, indices[:, :k]


def expert_slots(indices, n_experts, capacity=None):
    """``indices (N, k)`` → ``slots (N, k)``: position in the expert's buffer, −1 if dropped.

    Vectorised form of the reference's loop: list the choices in priority order (all first
    choices, then all second ones); a stable sort by expert keeps that order within each expert,
    so a choice's position is its rank in the sorted list minus where its expert's run starts.
    """
    N, k = indices.shape
    order = indices.t().reshape(-1)                             # slot-major: (k·N,)
    by_expert, perm = torch.sort(order, stable=True)
    counts = torch.bincount(order, minlength=n_experts)
    starts = torch.cumsum(counts, 0) - counts                   # first sorted index of each expert
    rank = torch.arange(order.numel(), device=order.device) - starts[by_expert]
    position = torch.empty_like(order).scatter_(0, perm, rank)  # back to priority order
    if capacity is not None:
        position = torch.where(position < capacity, position, torch.full_like(position, -1))
    return position.reshape(k, N).t().contiguous()


def _flat_rows(indices, slots, C):
    """Row of each choice in the (E·C, d) view of the buffers (0 for a dropped one) and the
    mask of kept choices."""
    keep = slots >= 0
    return torch.where(keep, indices * C + slots, torch.zeros_like(slots)), keep


def dispatch(x, indices, n_experts, capacity=None):
    """``x (N, d)``, ``indices (N, k)`` → ``(buffers (E, C, d), slots (N, k))``; differentiable
    with respect to x."""
    slots = expert_slots(indices, n_experts, capacity)
    C = capacity if capacity is not None else max(1, int(slots.max()) + 1)
    rows, keep = _flat_rows(indices, slots, C)
    token, choice = torch.nonzero(keep, as_tuple=True)
    buffers = x.new_zeros((n_experts * C, x.shape[1]))
    buffers = buffers.index_copy(0, rows[token, choice], x.index_select(0, token))
    return buffers.view(n_experts, C, x.shape[1]), slots        # buffers[idx_nj, slot_nj] = x_n


def combine(expert_out, weights, indices, slots):
    """``expert_out (E, C, d_out)``, ``weights, indices, slots (N, k)`` →
    ``y (N, d_out) = Σ_{kept j} w_nj · expert_out[idx_nj, slot_nj]``."""
    E, C, d_out = expert_out.shape
    flat = expert_out.reshape(E * C, d_out)
    rows, keep = _flat_rows(indices, slots, C)
    gates = torch.where(keep, weights, torch.zeros_like(weights))
    y = gates[:, :1] * flat.index_select(0, rows[:, 0])
    for j in range(1, weights.shape[1]):                        # one (N, d_out) gather per choice
        y = y + gates[:, j:j + 1] * flat.index_select(0, rows[:, j])
    return y


def load_balance_loss(probs, indices):
    """E · Σ_e f_e · P_e with f_e the fraction of the N·k choices sent to e (no gradient) and
    P_e the mean router probability (the gradient flows through it)."""
    E = probs.shape[1]
    f = torch.bincount(indices.reshape(-1), minlength=E).to(probs.dtype) / indices.numel()
    return E * torch.sum(f * probs.mean(dim=0))


def dense_mixture(x, probs, experts):
    """``Σ_e probs[:, e] · Expert_e(x)`` for a sequence of E callables (or a
    :class:`SwiGLUExperts`, whose ``dense`` runs all experts on all tokens at once)."""
    if isinstance(experts, SwiGLUExperts):
        return torch.einsum("ne,end->nd", probs, experts.dense(x))
    return sum(probs[:, e:e + 1] * expert(x) for e, expert in enumerate(experts))


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------

def _uniform(shape, fan_in, **kw):
    bound = 1.0 / math.sqrt(fan_in)                             # torch.nn.Linear's bound
    return nn.Parameter(torch.empty(shape, **kw).uniform_(-bound, bound))


class SwiGLUExperts(nn.Module):
    """E experts ``w2 (silu(w1 x) ⊙ w3 x)``: ``w1, w3 (E, F, d)``, ``w2 (E, d, F)``.

    ``forward(buffers (E, C, d)) → (E, C, d)``, expert e on buffer e (one batched product);
    ``dense(x (N, d)) → (E, N, d)``, every expert on every token.
    """

    def __init__(self, n_experts, d, d_ff, *, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.w1 = _uniform((n_experts, d_ff, d), d, **kw)
        self.w3 = _uniform((n_experts, d_ff, d), d, **kw)
        self.w2 = _uniform((n_experts, d, d_ff), d_ff, **kw)

    def forward(self, buffers):
        a = torch.bmm(buffers, self.w1.transpose(1, 2))         # (E, C, F)
        b = torch.bmm(buffers, self.w3.transpose(1, 2))
        return torch.bmm(F.silu(a) * b, self.w2.transpose(1, 2))

    def dense(self, x):
        return self(x.unsqueeze(0).expand(self.w1.shape[0], -1, -1))

    def reference_experts(self):
        """E NumPy float64 callables computing the same experts (for the reference)."""
        from minirec.routing.reference import swiglu_expert
        w1, w3, w2 = (w.detach().cpu().double().numpy() for w in (self.w1, self.w3, self.w2))
        return [lambda x, e=e: swiglu_expert(x, w1[e], w3[e], w2[e]) for e in range(len(w1))]


class MoELayer(nn.Module):
    """Top-k routed experts: ``forward(h (N, d), logits (N, E)) → (y (N, d), info)``.

    ``info`` holds ``probs (N, E)``, ``weights``, ``indices``, ``slots (N, k)`` and
    ``balance_loss`` (E · Σ f_e P_e). ``capacity_factor`` None: no token is dropped; otherwise
    each expert takes at most ⌈factor · N · k / E⌉ choices.
    """

    def __init__(self, d, n_experts, k, d_ff, *, capacity_factor=None, normalize=True,
                 device=None, dtype=None):
        super().__init__()
        if not 1 <= k <= n_experts:
            raise ValueError(f"k must be between 1 and n_experts = {n_experts}; got {k}")
        self.n_experts, self.k = n_experts, k
        self.capacity_factor, self.normalize = capacity_factor, normalize
        self.experts = SwiGLUExperts(n_experts, d, d_ff, device=device, dtype=dtype)

    def forward(self, h, logits):
        E, k = self.n_experts, self.k
        weights, indices = top_k_route(logits, k, normalize=self.normalize)
        capacity = None
        if self.capacity_factor is not None:
            capacity = max(1, math.ceil(self.capacity_factor * h.shape[0] * k / E))
        buffers, slots = dispatch(h, indices, E, capacity)
        y = combine(self.experts(buffers), weights, indices, slots)
        probs = torch.softmax(logits, dim=1)
        info = {"probs": probs, "weights": weights, "indices": indices, "slots": slots,
                "balance_loss": load_balance_loss(probs, indices)}
        return y, info


class LinearRouter(nn.Module):
    """One layer's own router: ``logits = W h``, ``W (E, d)``; the state is ignored (None)."""

    def __init__(self, d, n_experts, *, device=None, dtype=None):
        super().__init__()
        self.proj = nn.Linear(d, n_experts, bias=False, device=device, dtype=dtype)

    def forward(self, h, state=None):
        return self.proj(h), None


#: How the RMoE router's projections W1, W2 are held across layers.
ROUTER_PROJECTIONS = ("per_layer", "tied")


class GRURouter(nn.Module):
    """The RMoE router: one GRU cell shared by every layer::

        x = W1^(l) h,   r = GRU(x, r_prev),   logits = W2^(l) r      W1 (H_r, d), W2 (E, H_r)

    ``projections="per_layer"`` (the paper's code: each MoE block owns its W1, W2; needs
    ``n_layers``) or ``"tied"`` (one W1, W2 read by every layer). ``forward(h (N, d), r_prev
    (N, H_r) or None, layer=0) → (logits (N, E), r (N, H_r))``; None is the zero state before the
    first layer. The GRU is :class:`minirec.cells.torch_ops.GRU` run for one step (a length-1
    sequence); its weights are ``gru.weight_ih_l0``, ... as torch.nn's.
    """

    def __init__(self, d, n_experts, hidden_size, *, projections="tied", n_layers=None,
                 device=None, dtype=None):
        super().__init__()
        if projections not in ROUTER_PROJECTIONS:
            raise ValueError(f"projections must be one of {ROUTER_PROJECTIONS}; got {projections!r}")
        if projections == "per_layer" and (isinstance(n_layers, bool)
                                           or not isinstance(n_layers, int) or n_layers < 1):
            raise ValueError(f"projections='per_layer' needs n_layers, a positive integer; got "
                             f"{n_layers!r}")
        kw = {"device": device, "dtype": dtype}
        self.hidden_size, self.projections = hidden_size, projections
        count = n_layers if projections == "per_layer" else 1
        self.W1 = nn.ModuleList(nn.Linear(d, hidden_size, bias=False, **kw) for _ in range(count))
        self.gru = GRU(hidden_size, hidden_size, **kw)
        self.W2 = nn.ModuleList(nn.Linear(hidden_size, n_experts, bias=False, **kw)
                                for _ in range(count))

    def _layer(self, layer):
        if self.projections == "tied":
            return 0
        if not 0 <= layer < len(self.W1):
            raise ValueError(f"layer must be in [0, {len(self.W1)}); got {layer}")
        return layer

    def forward(self, h, r_prev=None, layer=0):
        i = self._layer(layer)
        x = self.W1[i](h)                                       # x^(l) = W1^(l) h^(l)
        if r_prev is None:
            r_prev = x.new_zeros((h.shape[0], self.hidden_size))  # r^(−1) = 0
        _, r = self.gru(x.unsqueeze(0), r_prev.unsqueeze(0))    # one GRU step: (1, N, H_r)
        r = r[0]
        return self.W2[i](r), r                                 # logits = W2^(l) r^(l)

    def reference_params(self):
        """The router of :func:`minirec.routing.reference.moe_stack_forward` (float64 NumPy): one
        dict when tied, a list of per-layer dicts sharing one ``gru`` dict otherwise."""
        def np64(t):
            return t.detach().cpu().double().numpy()
        gru = {k: np64(v) for k, v in self.gru.layer_params(0).items()}
        routers = [{"W1": np64(w1.weight), "W2": np64(w2.weight), "gru": gru}
                   for w1, w2 in zip(self.W1, self.W2)]
        return routers[0] if self.projections == "tied" else routers


class MoEStack(nn.Module):
    """L residual MoE layers, ``h^(l+1) = h^(l) + MoE_l(u^(l))``, routed by ``router``:
    ``"linear"`` (an independent :class:`LinearRouter` per layer) or ``"gru"`` (one
    :class:`GRURouter` shared by all layers, its state carried from layer l to l+1; its
    projections ``router_projections="per_layer"``, the paper's form, or ``"tied"``).

    ``u^(l)`` is what the router and the experts read: ``h^(l)`` itself, or with ``norm=True``
    its layer norm without learned scale (``(h − mean) / sqrt(var + 1e-5)`` over d: the pre-norm
    of LLaMA-style blocks, which keeps the residual stream from growing).

    ``forward(h (N, d)) → (h^(L) (N, d), info)`` with ``info``: ``balance_loss`` (the mean over
    layers), ``logits (L, N, E)``, ``indices (L, N, k)``, ``slots (L, N, k)``.
    """

    def __init__(self, d, n_experts, k, n_layers, d_ff, *, router="linear", router_hidden=None,
                 router_projections="per_layer", capacity_factor=None, normalize=True, norm=False,
                 device=None, dtype=None):
        super().__init__()
        if router not in ("linear", "gru"):
            raise ValueError(f"router must be 'linear' or 'gru'; got {router!r}")
        kw = {"device": device, "dtype": dtype}
        self.router_kind, self.norm = router, norm
        self.layers = nn.ModuleList(
            MoELayer(d, n_experts, k, d_ff, capacity_factor=capacity_factor, normalize=normalize,
                     **kw) for _ in range(n_layers))
        if router == "linear":
            self.routers = nn.ModuleList(LinearRouter(d, n_experts, **kw) for _ in range(n_layers))
        else:
            self.router = GRURouter(d, n_experts, router_hidden or d,
                                    projections=router_projections, n_layers=n_layers, **kw)

    def forward(self, h, forced_logits=None):
        """``forced_logits (L, N, E)``, if given, replace the routers' logits (an oracle router:
        used to ask what the layers could do with a given routing)."""
        if h.dim() != 2:
            raise ValueError(f"h must have shape (N, d) (tokens flattened); got {tuple(h.shape)}")
        state, infos = None, []
        for layer, moe in enumerate(self.layers):
            u = F.layer_norm(h, h.shape[-1:]) if self.norm else h
            if self.router_kind == "linear":
                logits, state = self.routers[layer](u, state)
            else:                                               # the GRU state goes on to l+1
                logits, state = self.router(u, state, layer)
            if forced_logits is not None:
                logits = forced_logits[layer]
            y, info = moe(u, logits)
            h = h + y
            infos.append({**info, "logits": logits})
        out = {"balance_loss": torch.stack([i["balance_loss"] for i in infos]).mean()}
        for key in ("logits", "indices", "slots"):
            out[key] = torch.stack([i[key] for i in infos])
        return h, out

    def reference_kwargs(self):
        """Keyword arguments for :func:`minirec.routing.reference.moe_stack_forward` computing
        the same stack in float64 NumPy."""
        experts = [moe.experts.reference_experts() for moe in self.layers]
        kw = {"layer_experts": experts, "k": self.layers[0].k,
              "normalize": self.layers[0].normalize, "norm": self.norm}
        if self.router_kind == "linear":
            kw["router_weights"] = [np.asarray(r.proj.weight.detach().cpu().double())
                                    for r in self.routers]
        else:
            kw["gru_router"] = self.router.reference_params()
        return kw


class LinearRouterMoE(MoEStack):
    """:class:`MoEStack` with an independent linear router in every layer (the usual SMoE)."""

    def __init__(self, d, n_experts, k, n_layers, d_ff, **kw):
        super().__init__(d, n_experts, k, n_layers, d_ff, router="linear", **kw)


class GRURouterMoE(MoEStack):
    """:class:`MoEStack` with the RMoE router: one GRU cell shared across layers, each layer's
    own projections (``router_projections="per_layer"``, the default) or tied ones."""

    def __init__(self, d, n_experts, k, n_layers, d_ff, *, router_hidden=None, **kw):
        super().__init__(d, n_experts, k, n_layers, d_ff, router="gru",
                         router_hidden=router_hidden, **kw)
