r"""The linear recurrence in PyTorch: differentiable, on whatever device the tensors live.

The same maths as :func:`minirec.scan.reference.linear_recurrence` (the specification)::

    h_t = a_t h_{t−1} + b_t,   h_{−1} = h0 (zero when None)
    a (T, ...), b (T, ...): time first, trailing axes broadcast (never time); h0 (...)

Three ways to compute it, all tested against the reference and against each other:

- :func:`linear_recurrence` — a ``torch.autograd.Function`` (:class:`LinearRecurrence`). Its
  forward is the doubling scan below, without building a graph; its backward is the gradient
  written out: the reverse-time linear recurrence g_t = ∂L/∂h_t + a_{t+1} g_{t+1}, computed by
  the same scan, then ∂b = g, ∂a_t = g_t h_{t−1}, ∂h0 = a_0 g_0. Memory: the inputs and h,
  nothing per round. This is what ``minirec.scan.linear_recurrence`` runs for tensors.
- :func:`linear_recurrence_doubling` — Hillis–Steele on the affine pairs (a, b): ⌈log₂T⌉
  rounds of whole-tensor ops, y_t ← y_{t−d} ∘ y_t for d = 1, 2, 4, …; differentiable by
  autograd as it stands (it keeps every round for the backward: O(T log T) memory). On a GPU
  it is ⌈log₂T⌉ kernel launches instead of T.
- :func:`linear_recurrence_loop` — the Python loop over time, with autograd: T small ops forward
  and backward. The oracle in the tests, and the slow baseline.

Everything runs in the input's dtype on the input's device: nothing here names a device.
"""

from __future__ import annotations

import torch

__all__ = ["linear_recurrence", "linear_recurrence_doubling", "linear_recurrence_loop",
           "LinearRecurrence", "broadcast_time_major"]


def broadcast_time_major(*tensors):
    """Broadcast tensors ``(T, ...)`` over their trailing axes only (time is never broadcast):
    ``(T,)`` with ``(T, B, D)`` gives ``(T, 1, 1)`` expanded to ``(T, B, D)``. Views (``expand``),
    so autograd sums the gradients back to each input's shape."""
    trailing = torch.broadcast_shapes(*[x.shape[1:] for x in tensors])
    out = []
    for x in tensors:
        x = x.reshape(x.shape[:1] + (1,) * (len(trailing) - x.dim() + 1) + x.shape[1:])
        out.append(x.expand(x.shape[:1] + trailing))
    return out


def _doubling(a, b):
    """Inclusive scan of the affine pairs (a_t, b_t) along axis 0 by Hillis–Steele doubling:
    returns (Π_{s≤t} a_s, h_t with h_{−1} = 0). ``(a1, b1) ∘ (a2, b2) = (a1 a2, a2 b1 + b2)``,
    left = earlier. Out-of-place (``torch.cat``), so autograd can differentiate every round."""
    T = a.shape[0]
    d = 1
    while d < T:
        a_prev, b_prev = a[:-d], b[:-d]                              # y_{t−d}
        a_new = a[d:] * a_prev                                       # a1·a2
        b_new = a[d:] * b_prev + b[d:]                               # a2·b1 + b2
        a = torch.cat([a[:d], a_new])
        b = torch.cat([b[:d], b_new])
        d *= 2
    return a, b


def _scan(a, b, h0):
    """h for full-shape ``a, b (T, ...)`` and ``h0 (...)`` (or None): h_t = A_t h0 + B_t."""
    A, B = _doubling(a, b)
    return B if h0 is None else torch.addcmul(B, A, h0)


class LinearRecurrence(torch.autograd.Function):
    """h = linear_recurrence(a, b, h0) on full-shape tensors ``a, b (T, ...)``, ``h0 (...)``,
    with the backward written out as a reverse-time linear recurrence."""

    @staticmethod
    def forward(ctx, a, b, h0):
        with torch.no_grad():
            h = _scan(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h, h0 = ctx.saved_tensors
        with torch.no_grad():
            # g_t = grad_h_t + a_{t+1} g_{t+1}: the same recurrence with time reversed and the
            # decays shifted one step (a_{t+1}; nothing flows in after the last step)
            a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])
            g = _scan(a_next.flip(0), grad_h.flip(0), None).flip(0)
            h_prev = torch.cat([(torch.zeros_like(h[:1]) if h0 is None else h0[None]), h[:-1]])
            grad_a = g * h_prev                                      # ∂a_t = g_t h_{t−1}
            grad_h0 = None if h0 is None else a[0] * g[0]            # ∂h0 = a_0 g_0
        return grad_a, g, grad_h0                                    # ∂b_t = g_t


def _prepare(a, b, h0):
    a, b = broadcast_time_major(a, b)
    if h0 is not None:
        h0 = h0.expand(b.shape[1:])
    return a, b, h0


def linear_recurrence(a, b, h0=None):
    """h_t = a_t h_{t−1} + b_t with a custom backward (see the module docstring).
    ``a (T, ...)``, ``b (T, ...)``, ``h0 (...)`` or None → ``h (T, ...)``, the broadcast shape."""
    a, b, h0 = _prepare(a, b, h0)          # expand: autograd sums gradients back to the inputs
    return LinearRecurrence.apply(a, b, h0)


def linear_recurrence_doubling(a, b, h0=None):
    """h by Hillis–Steele doubling, differentiated by autograd (O(T log T) saved tensors)."""
    a, b, h0 = _prepare(a, b, h0)
    return _scan(a, b, h0)


def linear_recurrence_loop(a, b, h0=None):
    """h by the loop over time, differentiated by autograd through the loop."""
    a, b, h0 = _prepare(a, b, h0)
    h = torch.zeros_like(b[0]) if h0 is None else h0
    out = []
    for t in range(b.shape[0]):
        h = a[t] * h + b[t]                                          # h_t = a_t h_{t−1} + b_t
        out.append(h)
    return torch.stack(out)
