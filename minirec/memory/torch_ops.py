r"""Differentiable PyTorch twins of :mod:`minirec.memory.reference`, on any device.

Same maths, same notation (``k, q (T, d_k)``, ``v (T, d_v)``, ``M, S (d_v, d_k)``, gates
``(T,)``), and every function is differentiable with respect to its inputs, gates and initial
state, so that the projections producing keys, values, queries and gates can be trained
through the memory (:class:`TitansMemory`).

- Hebbian memory in its parallel form: y = tril(Q Kᵀ) V (+ Q M0ᵀ), the causal linear attention
  that the per-token sum M_t = Σ_{s≤t} v_s k_sᵀ unrolls to;
- the delta rule and Titans one token at a time (the "per-token loop": T small steps);
- Titans chunked: within a chunk every gradient is taken against the chunk's first memory, and
  momentum and forgetting, two linear recurrences across the chunk, are unrolled into (C, C)
  decay matrices (computed by ``minirec.scan``'s linear recurrence) so that a chunk costs a
  handful of matrix products instead of C small steps (:func:`titans_linear_chunked`);
- the MLP memory's per-token gradients by ``torch.func`` (``vmap`` of ``grad``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import grad, vmap

from minirec.scan.torch_ops import linear_recurrence

__all__ = [
    "hebbian_memory", "delta_rule_memory", "titans_linear", "titans_linear_chunked",
    "titans_mlp", "mlp_memory_apply", "linear_memory_grads", "decay_weights", "TitansMemory",
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


def decay_weights(gate):
    """Products of a gate over every span of a chunk, by one linear recurrence (minirec.scan):
    ``gate (n, C)`` (n chunks side by side) → ``W (n, C, C)`` with W[t, s] = Π_{s<r≤t} gate_r for
    s ≤ t (0 above the diagonal) and ``w (n, C)`` with w_t = Π_{r≤t} gate_r. They unroll the scan
    h_t = gate_t h_{t−1} + x_t into h_t = Σ_{s≤t} W[t, s] x_s + w_t h_{−1}."""
    n, C = gate.shape
    eye = torch.eye(C + 1, dtype=gate.dtype, device=gate.device)
    x = eye[:C, None, :].expand(C, n, C + 1)                     # x_s = e_s, one per chunk
    h0 = eye[C].expand(n, C + 1)                                 # the last column carries h_{−1}
    # On a CPU the in-place loop (C steps over n·(C + 1) numbers): the default compiled kernel
    # splits these channels over threads, which took 10× longer on the shared 2-core machine.
    method = "loop" if gate.device.type == "cpu" else None
    h = linear_recurrence(gate.T[:, :, None], x, h0, method=method).permute(1, 0, 2)
    return h[..., :C], h[..., C]


def _pad(x, pad, value):
    return torch.cat([x, x.new_full((pad,) + x.shape[1:], value)]) if pad else x


def titans_linear_chunked(k, v, q, eta, theta, alpha, chunk_size, state=None):
    """Titans with a linear memory, chunked, in parallel form → ``(y (T, d_v), (M_T, S_T))``.

    Per chunk, with R = K M0ᵀ − V (every gradient G_s = 2 R_s k_sᵀ against the chunk's first
    memory M0, S0 the momentum before it), A, a the decay weights of η and B, b those of 1 − α
    (:func:`decay_weights`), the two scans S_t = Σ_s A[t,s](−θ_s G_s) + a_t S0 and
    M_t = Σ_u B[t,u] S_u + b_t M0 compose to

        M_t = Σ_s W[t,s] (−θ_s G_s) + c_t S0 + b_t M0,    W = B A,  c = B a
        y_t = M_t q_t = [(W ⊙ Q Kᵀ)(−2θ ⊙ R)]_t + c_t S0 q_t + b_t M0 q_t

    so no (C, d_v, d_k) stack of memories is formed, and everything that does not depend on the
    memory (the decay weights, W ⊙ Q Kᵀ) is computed for all chunks at once. A short last chunk
    is padded (k = v = q = 0, η = 1, θ = α = 0); its state is read at its last real step, and
    the lower-triangular weights keep the padding out of every real output."""
    M, S = _state(k, v, state)
    T = k.shape[0]
    C = min(chunk_size, T)
    n = -(-T // C)
    pad = n * C - T
    k, v, q = (_pad(x, pad, 0.0).reshape(n, C, -1) for x in (k, v, q))
    eta, theta, alpha = (_pad(g, pad, fill).reshape(n, C)
                         for g, fill in ((eta, 1.0), (theta, 0.0), (alpha, 0.0)))
    A, a = decay_weights(eta)
    B, b = decay_weights(1.0 - alpha)
    W = B @ A
    c = (B @ a[..., None])[..., 0]
    P = W * (q @ k.transpose(1, 2))                              # (n, C, C): W ⊙ Q Kᵀ
    ys = []
    for i in range(n):
        last = C - 1 if i < n - 1 else C - 1 - pad                # the chunk's last real step
        U = -2.0 * theta[i, :, None] * (k[i] @ M.T - v[i])      # −θ_s G_s = U_s k_sᵀ
        ys.append(P[i] @ U + c[i, :, None] * (q[i] @ S.T) + b[i, :, None] * (q[i] @ M.T))
        S, M = ((A[i, last, :, None] * U).T @ k[i] + a[i, last] * S,
                (W[i, last, :, None] * U).T @ k[i] + c[i, last] * S + b[i, last] * M)
    return torch.cat(ys)[:T], (M, S)


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
