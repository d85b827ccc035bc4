"""Wrong answers to ``linear_recurrence_backward(a, h, h0, grad_h) -> {"a", "b", "h0"}`` for
h_t = a_t h_{t−1} + b_t, given grad_h = ∂L/∂h (T, D)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(a, h, h0, grad_h):
    raise NotImplementedError


def correct(a, h, h0, grad_h):
    T = len(a)
    g = np.array(grad_h, copy=True)
    for t in range(T - 2, -1, -1):
        g[t] += a[t + 1] * g[t + 1]
    h_prev = np.vstack([h0[None, :], h[:-1]])
    return {"b": g, "a": h_prev * g, "h0": g[0] * a[0]}


@mutant(MUTANTS, "gradient not carried backwards in time (g_t = grad_h_t only)",
        wrong={"a", "b", "h0"})
def no_carry(a, h, h0, grad_h):
    h_prev = np.concatenate([h0[None], h[:-1]])
    return {"a": grad_h * h_prev, "b": grad_h, "h0": a[0] * grad_h[0]}


@mutant(MUTANTS, "decay taken at the wrong step (a_t instead of a_{t+1})", wrong={"a", "b", "h0"})
def decay_of_this_step(a, h, h0, grad_h):
    g = np.zeros_like(grad_h)
    carry = np.zeros_like(h0)
    for t in reversed(range(len(a))):
        g[t] = grad_h[t] + a[t] * carry
        carry = g[t]
    h_prev = np.concatenate([h0[None], h[:-1]])
    return {"a": g * h_prev, "b": g, "h0": a[0] * g[0]}


@mutant(MUTANTS, "∂a uses h_t instead of h_{t−1}", wrong={"a"})
def da_with_the_new_state(a, h, h0, grad_h):
    g = grad_h.copy()
    for t in reversed(range(len(a) - 1)):
        g[t] = g[t] + a[t + 1] * g[t + 1]
    return {"a": g * h, "b": g, "h0": a[0] * g[0]}


@mutant(MUTANTS, "∂h0 misses the decay a_0", wrong={"h0"})
def h0_gets_g0(a, h, h0, grad_h):
    g = grad_h.copy()
    for t in reversed(range(len(a) - 1)):
        g[t] = g[t] + a[t + 1] * g[t + 1]
    h_prev = np.concatenate([h0[None], h[:-1]])
    return {"a": g * h_prev, "b": g, "h0": g[0]}


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "the loop runs forwards in time", wrong={"a", "b", "h0"})
def carried_forwards(a, h, h0, grad_h):
    g = grad_h.copy()
    for t in range(1, len(a)):
        g[t] = g[t] + a[t] * g[t - 1]
    h_prev = np.concatenate([h0[None], h[:-1]])
    return {"a": g * h_prev, "b": g, "h0": a[0] * g[0]}


def backward_by_torch_autograd(a, h, h0, grad_h):
    """Right: the recurrence run forwards in torch (b recovered from h), gradients by autograd."""
    import torch
    h_prev = np.concatenate([h0[None], h[:-1]])
    at = torch.tensor(a, requires_grad=True)
    bt = torch.tensor(h - a * h_prev, requires_grad=True)
    state = torch.tensor(h0, requires_grad=True)
    start, states = state, []
    for t in range(len(a)):
        state = at[t] * state + bt[t]
        states.append(state)
    (torch.stack(states) * torch.from_numpy(grad_h)).sum().backward()
    return {"a": at.grad.numpy(), "b": bt.grad.numpy(), "h0": start.grad.numpy()}


def backward_as_a_reversed_scan(a, h, h0, grad_h):
    """Right: g is the linear recurrence g_t = a_{t+1} g_{t+1} + grad_h_t run backwards."""
    from minirec.scan.reference import linear_recurrence
    a_next = np.concatenate([a[1:], np.zeros_like(a[:1])])
    g = linear_recurrence(a_next[::-1], grad_h[::-1])[::-1]
    h_prev = np.concatenate([h0[None], h[:-1]])
    return {"a": g * h_prev, "b": g, "h0": a[0] * g[0]}


ALTERNATIVES = [backward_by_torch_autograd, backward_as_a_reversed_scan]


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "right at every step but the first (T index 0)", wrong={"a", "b", "h0"})
def carry_stops_before_step_zero(a, h, h0, grad_h):
    # the carried gradient reaches every step but t = 0
    g = grad_h.copy()
    for t in range(len(a) - 2, 0, -1):
        g[t] = g[t] + a[t + 1] * g[t + 1]
    prev = np.concatenate([h0[None], h[:-1]])
    return {"a": g * prev, "b": g, "h0": a[0] * g[0]}
