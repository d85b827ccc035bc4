r"""Differentiable PyTorch twins of :mod:`minirec.memory.reference`, on any device.

Same maths, same notation (``k, q (T, d_k)``, ``v (T, d_v)``, ``M, S (d_v, d_k)``, gates
``(T,)``), and every function is differentiable with respect to its inputs, gates and initial
state, so that the projections producing keys, values, queries and gates can be trained
through the memory (:class:`TitansMemory`).

- Hebbian memory in its parallel form: y = tril(Q Kᵀ) V (+ Q M0ᵀ), the causal linear attention
  that the per-token sum M_t = Σ_{s≤t} v_s k_sᵀ unrolls to;
- the delta rule and Titans one token at a time (the "per-token loop": T small steps);
- Titans chunked: within a chunk every gradient is taken against the chunk's first memory, in
  one batched product, and momentum and forgetting are two linear recurrences across the chunk
  (``minirec.scan.torch_ops.linear_recurrence``: on a CPU a compiled kernel, on a GPU a chunked
  scan), so a chunk costs a handful of large operations instead of C small steps;
- the MLP memory's per-token gradients by ``torch.func`` (``vmap`` of ``grad``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import grad, vmap

from minirec.scan.torch_ops import linear_recurrence

__all__ = [
    "hebbian_memory", "delta_rule_memory", "titans_linear", "titans_linear_chunked",
    "titans_mlp", "mlp_memory_apply", "linear_memory_grads", "TitansMemory",
]


def _zeros(k, v):
    return k.new_zeros((v.shape[1], k.shape[1]))


def hebbian_memory(k, v, q, M0=None):
    """M_t = M0 + Σ_{s≤t} v_s k_sᵀ, y_t = M_t q_t, computed as tril(Q Kᵀ) V + Q M0ᵀ.
    → ``(y (T, d_v), M_T (d_v, d_k))``."""
    y = torch.tril(q @ k.T) @ v                              # Σ_{s≤t} (q_t·k_s) v_s
    M = v.T @ k                                              # Σ_s v_s k_sᵀ
    if M0 is not None:
        y = y + q @ M0.T
        M = M + M0
    return y, M


def delta_rule_memory(k, v, q, theta, M0=None):
    """M_t = M_{t−1} + θ_t (v_t − M_{t−1} k_t) k_tᵀ, y_t = M_t q_t, token by token."""
    M = _zeros(k, v) if M0 is None else M0
    ys = []
    for t in range(k.shape[0]):
        M = M + theta[t] * torch.outer(v[t] - M @ k[t], k[t])
        ys.append(M @ q[t])
    return torch.stack(ys), M


def _state(k, v, state):
    if state is None:
        M = _zeros(k, v)
        return M, torch.zeros_like(M)
    return state


def titans_linear(k, v, q, eta, theta, alpha, state=None):
    """Titans with a linear memory, the per-token loop → ``(y (T, d_v), (M_T, S_T))``."""
    M, S = _state(k, v, state)
    ys = []
    for t in range(k.shape[0]):
        S = eta[t] * S - theta[t] * 2.0 * torch.outer(M @ k[t] - v[t], k[t])  # S_t = η S − θ ∇ℓ
        M = (1.0 - alpha[t]) * M + S                                          # M_t = (1 − α) M + S
        ys.append(M @ q[t])
    return torch.stack(ys), (M, S)


def linear_memory_grads(M, k, v):
    """Per-token gradients 2 (M k_t − v_t) k_tᵀ of a chunk against one M: ``(C, d_v, d_k)``."""
    return 2.0 * (k @ M.T - v)[:, :, None] * k[:, None, :]


def _scan_chunk(G, eta, theta, alpha, M, S):
    """S_t = η_t S_{t−1} − θ_t G_t and M_t = (1 − α_t) M_{t−1} + S_t across one chunk."""
    theta = theta.reshape(theta.shape + (1,) * (G.ndim - 1))
    S_seq = linear_recurrence(eta, -theta * G, S)
    M_seq = linear_recurrence(1.0 - alpha, S_seq, M)
    return M_seq, S_seq


def titans_linear_chunked(k, v, q, eta, theta, alpha, chunk_size, state=None):
    """Titans with a linear memory, chunked (mini-batch gradients at each chunk's start, momentum
    and forgetting as scans) → ``(y (T, d_v), (M_T, S_T))``."""
    M, S = _state(k, v, state)
    ys = []
    for t0 in range(0, k.shape[0], chunk_size):
        c = slice(t0, t0 + chunk_size)
        G = linear_memory_grads(M, k[c], v[c])                       # (C, d_v, d_k)
        M_seq, S_seq = _scan_chunk(G, eta[c], theta[c], alpha[c], M, S)
        ys.append(torch.einsum("tij,tj->ti", M_seq, q[c]))           # y_t = M_t q_t
        M, S = M_seq[-1], S_seq[-1]
    return torch.cat(ys), (M, S)


def mlp_memory_apply(params, x):
    """M(x) = W2 gelu(W1 x) (tanh GELU) for ``params {"W1": (H, d_k), "W2": (d_v, H)}``,
    ``x (..., d_k)`` → ``(..., d_v)``."""
    return nn.functional.gelu(x @ params["W1"].T, approximate="tanh") @ params["W2"].T


def _mlp_loss(params, k, v):
    return ((mlp_memory_apply(params, k) - v) ** 2).sum()           # ℓ = ‖M(k) − v‖²


_per_token_grads = vmap(grad(_mlp_loss), in_dims=(None, 0, 0))


def titans_mlp(k, v, q, eta, theta, alpha, params, momentum=None, chunk_size=1):
    """Titans with the MLP memory; per-token gradients by ``vmap(grad(ℓ))`` against the chunk's
    first parameters (chunk_size 1: per token) → ``(y (T, d_v), (params_T, momentum_T))``."""
    if momentum is None:
        momentum = {n: torch.zeros_like(p) for n, p in params.items()}
    ys = []
    for t0 in range(0, k.shape[0], chunk_size):
        c = slice(t0, t0 + chunk_size)
        G = _per_token_grads(params, k[c], v[c])                     # {name: (C, *shape)}
        seqs = {n: _scan_chunk(G[n], eta[c], theta[c], alpha[c], params[n], momentum[n])
                for n in params}
        W1, W2 = seqs["W1"][0], seqs["W2"][0]                       # one MLP per step
        hidden = nn.functional.gelu(torch.einsum("thj,tj->th", W1, q[c]), approximate="tanh")
        ys.append(torch.einsum("tih,th->ti", W2, hidden))
        params = {n: seqs[n][0][-1] for n in params}
        momentum = {n: seqs[n][1][-1] for n in params}
    return torch.cat(ys), (params, momentum)


class TitansMemory(nn.Module):
    """A Titans neural-memory layer with a linear memory and data-dependent gates.

    ``x (T, d_model)`` → ``y (T, d_v)``: k_t = W_K x_t, v_t = W_V x_t, q_t = W_Q x_t (keys and
    queries L2-normalised), θ_t = max_lr · σ(w_θ·x_t), η_t = σ(w_η·x_t), α_t = σ(w_α·x_t), then
    the memory of :func:`titans_linear_chunked` (``chunk_size=1``: per token) from zero. The
    memory is written at test time by its own gradient step; the projections and gates are the
    parameters an outer loop trains.
    """

    def __init__(self, d_model, d_k, d_v, *, chunk_size=1, max_lr=1.0):
        super().__init__()
        self.to_k = nn.Linear(d_model, d_k, bias=False)
        self.to_v = nn.Linear(d_model, d_v, bias=False)
        self.to_q = nn.Linear(d_model, d_k, bias=False)
        self.to_gates = nn.Linear(d_model, 3)                        # θ, η, α logits
        self.chunk_size, self.max_lr = chunk_size, max_lr

    def gates(self, x):
        """(eta, theta, alpha), each ``(T,)``, in (0, 1) · (1, max_lr, 1)."""
        g = torch.sigmoid(self.to_gates(x))
        return g[:, 1], self.max_lr * g[:, 0], g[:, 2]

    def forward(self, x, state=None, return_state=False):
        k = nn.functional.normalize(self.to_k(x), dim=-1)
        q = nn.functional.normalize(self.to_q(x), dim=-1)
        v = self.to_v(x)
        eta, theta, alpha = self.gates(x)
        y, final = titans_linear_chunked(k, v, q, eta, theta, alpha, self.chunk_size, state)
        return (y, final) if return_state else y
