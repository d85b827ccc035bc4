r"""HMMs in PyTorch: batched log-space forward, backward, posteriors and Viterbi.

Same maths and notation as :mod:`minirec.hmm.reference`; ``obs (N, T)`` int64 tensors,
``pi (K,)``, ``A (K, K)``, ``B (K, M)`` float tensors on any device. Everything but Viterbi is
differentiable: ``log_likelihood(...).sum().backward()`` gives ∂ log P / ∂ (pi, A, B), so an HMM
can be fitted by gradient ascent (parametrise the rows by a softmax to keep them distributions).

One forward step is a matrix product on the max-shifted probabilities,

    log alpha_t = log(exp(log alpha_{t−1} − m) @ A) + m + log B[:, x_t],   m = max log alpha_{t−1},

so a step is one batched matmul (what a GPU does best) plus K exponentials and logarithms per
sequence, instead of a (N, K, K) logsumexp. The time loop stays in Python: T kernel launches.
"""

from __future__ import annotations

import torch

__all__ = ["forward_log", "backward_log", "log_likelihood", "posteriors", "viterbi"]


def _shifted_matmul(log_v, M):
    """log(exp(log_v) @ M) for log_v (N, K), M (K, K) probabilities; rows of −inf stay −inf."""
    m = log_v.max(dim=1, keepdim=True).values
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    return torch.log(torch.exp(log_v - m) @ M) + m


def forward_log(pi, A, B, obs):
    """log alpha ``(N, T, K)``: log alpha_0 = log pi + log B[:, x_0], then the shifted matmul."""
    log_B_T = torch.log(B).T                                      # (M, K)
    steps = [torch.log(pi)[None, :] + log_B_T[obs[:, 0]]]
    for t in range(1, obs.shape[1]):
        steps.append(_shifted_matmul(steps[-1], A) + log_B_T[obs[:, t]])
    return torch.stack(steps, dim=1)


def backward_log(A, B, obs):
    """log beta ``(N, T, K)``: log beta_{T−1} = 0, log beta_t = log(A @ (B[:, x_{t+1}] beta_{t+1}))."""
    log_B_T = torch.log(B).T
    N, T = obs.shape
    steps = [torch.zeros(N, A.shape[0], dtype=A.dtype, device=A.device)]
    for t in range(T - 2, -1, -1):
        steps.append(_shifted_matmul(steps[-1] + log_B_T[obs[:, t + 1]], A.T))
    return torch.stack(steps[::-1], dim=1)


def log_likelihood(pi, A, B, obs):
    """log P(x) per sequence ``(N,)``, differentiable in pi, A, B."""
    return torch.logsumexp(forward_log(pi, A, B, obs)[:, -1], dim=-1)


def posteriors(pi, A, B, obs):
    """gamma ``(N, T, K)`` = exp(log alpha + log beta − log P(x))."""
    log_alpha = forward_log(pi, A, B, obs)
    ll = torch.logsumexp(log_alpha[:, -1], dim=-1)
    return torch.exp(log_alpha + backward_log(A, B, obs) - ll[:, None, None])


@torch.no_grad()
def viterbi(pi, A, B, obs):
    """``(path (N, T) int64, log_prob (N,))``. Each step is a (N, K, K) max over the previous
    state. Ties as the reference (and hmmlearn): the highest predecessor (the max is taken over
    the flipped axis, whose first maximum is the last), the lowest final state."""
    log_A, log_B_T = torch.log(A), torch.log(B).T
    N, T = obs.shape
    delta = torch.log(pi)[None, :] + log_B_T[obs[:, 0]]
    back = torch.zeros(T, N, A.shape[0], dtype=torch.int64, device=A.device)
    for t in range(1, T):
        best, flipped = (delta[:, :, None] + log_A[None]).flip(1).max(dim=1)
        back[t] = A.shape[0] - 1 - flipped
        delta = best + log_B_T[obs[:, t]]
    log_prob = delta.max(dim=1).values
    last = torch.argmax((delta == log_prob[:, None]).to(torch.int8), dim=1)   # first maximum
    path = torch.empty(N, T, dtype=torch.int64, device=A.device)
    path[:, -1] = last
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = back[t].gather(1, path[:, t:t + 1])[:, 0]
    return path, log_prob
