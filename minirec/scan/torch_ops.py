r"""The linear recurrence in PyTorch: differentiable, on whatever device the tensors live.

The same maths as :func:`minirec.scan.reference.linear_recurrence` (the specification)::

    h_t = a_t h_{t−1} + b_t,   h_{−1} = h0 (zero when None)
    a (T, ...), b (T, ...): time first, trailing axes broadcast (never time); h0 (...)

Three ways to compute it, all tested against the reference and against each other:

- :func:`linear_recurrence` — a ``torch.autograd.Function`` (:class:`LinearRecurrence`). Its
  forward runs without building a graph: on a CPU (float32/float64) by minirec's compiled Numba
  kernel on the tensors' memory (:func:`_compiled`, the default there: the Torch scans pay
  an op launch per step, or per chunk step, and in ``benchmarks/README.md``'s run at
  T = 4096 × D = 1024 took 13× (chunked) and 22× (loop) its time), as T in-place
  steps (:func:`_loop`), or as a chunked scan (:func:`_chunked`: ~2√T whole-tensor steps and
  O(T) work, the default on a GPU, where every step is a kernel launch). Its backward is the gradient written
  out: the reverse-time linear recurrence g_t = ∂L/∂h_t + a_{t+1} g_{t+1}, run by the same
  scan, then ∂b = g, ∂a_t = g_t h_{t−1}, ∂h0 = a_0 g_0. Memory: the inputs and h. This is what
  ``minirec.scan.linear_recurrence`` runs for tensors.
- :func:`linear_recurrence_doubling` — Hillis–Steele on the affine pairs (a, b): ⌈log₂T⌉
  rounds of whole-tensor ops, y_t ← y_{t−d} ∘ y_t for d = 1, 2, 4, …; differentiable by
  autograd as it stands (it keeps every round for the backward: O(T log T) memory). On a GPU
  it is ⌈log₂T⌉ kernel launches instead of T.
- :func:`linear_recurrence_loop` — the Python loop over time, with autograd: T small ops forward
  and backward. The oracle in the tests, and the slow baseline.

Everything runs in the input's dtype on the input's device; the device only picks the default
scan of :func:`linear_recurrence`.
"""

from __future__ import annotations

import math

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


def _loop(a, b, h0):
    """h for full-shape ``a, b (T, ...)``, ``h0 (...)`` or None, by T in-place steps (no graph):
    the least memory traffic, the most op launches (one per step)."""
    h = torch.empty_like(b)
    prev = torch.zeros_like(b[0]) if h0 is None else h0
    for t in range(b.shape[0]):
        torch.addcmul(b[t], a[t], prev, out=h[t])                # h_t = a_t h_{t−1} + b_t
        prev = h[t]
    return h


def _chunked(a, b, h0):
    """h for full-shape ``a, b (T, ...)``, ``h0 (...)`` or None, without a graph, in about 2√T
    whole-tensor steps and O(T) work: T is cut into n chunks of C ≈ √T steps,

    1. every chunk's local scan from 0, all chunks at once (C steps over (n, ...) slices), and
       within each chunk the running product of its decays (one cumprod);
    2. the state at each chunk start, chunk after chunk (n steps):
       s_0 = h0, s_k = (Π a over chunk k−1) s_{k−1} + (local h at the end of chunk k−1);
    3. the fix-up, one op: h = local + (running product) · s_k.

    The tail of T is padded with the identity (a, b) = (1, 0), which leaves h unchanged."""
    T = a.shape[0]
    C = math.isqrt(T - 1) + 1                                   # ⌈√T⌉ steps per chunk
    n = -(-T // C)
    pad = n * C - T
    if pad:
        a = torch.cat([a, a.new_ones((pad,) + a.shape[1:])])
        b = torch.cat([b, b.new_zeros((pad,) + b.shape[1:])])
    a_c, b_c = a.reshape((n, C) + a.shape[1:]), b.reshape((n, C) + b.shape[1:])
    local = torch.empty_like(b_c)
    x = torch.zeros_like(b_c[:, 0])
    for i in range(C):                                          # 1. local scans, side by side
        x = torch.addcmul(b_c[:, i], a_c[:, i], x)              # x = a x + b
        local[:, i] = x
    prod = torch.cumprod(a_c, dim=1)                            # Π a from the chunk's start
    start = torch.empty_like(b_c[:, 0])
    s = torch.zeros_like(b_c[0, 0]) if h0 is None else h0
    for k in range(n):                                          # 2. states at chunk starts
        start[k] = s
        s = torch.addcmul(local[k, -1], prod[k, -1], s)
    h = torch.addcmul(local, prod, start[:, None])              # 3. fix-up
    return h.reshape((n * C,) + a.shape[1:])[:T]


def _compiled(a, b, h0):
    """h for full-shape CPU tensors by minirec's compiled kernel
    (:func:`minirec.scan.numba_cpu.linear_recurrence`), run on the tensors' own memory: one pass
    over a and b at memory speed, where a Python loop pays one op launch per step."""
    from minirec.scan import numba_cpu

    def arr(t):
        return None if t is None else t.detach().contiguous().numpy()

    return torch.from_numpy(numba_cpu.linear_recurrence(arr(a), arr(b), arr(h0)))


#: The graph-free scans :class:`LinearRecurrence` runs forward and backward, by ``method``.
SCANS = {"loop": _loop, "chunked": _chunked, "compiled": _compiled}
_COMPILED_DTYPES = (torch.float32, torch.float64)


class LinearRecurrence(torch.autograd.Function):
    """h = linear_recurrence(a, b, h0) on full-shape tensors ``a, b (T, ...)``, ``h0 (...)``,
    with the backward written out as a reverse-time linear recurrence. ``method``: "loop" or
    "chunked", the graph-free scan used forward and backward."""

    @staticmethod
    def forward(ctx, a, b, h0, method):
        scan = SCANS[method]
        with torch.no_grad():
            h = scan(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        ctx.scan = scan
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h, h0 = ctx.saved_tensors
        with torch.no_grad():
            # g_t = grad_h_t + a_{t+1} g_{t+1}: the same recurrence with time reversed and the
            # decays shifted one step (a_{t+1}; nothing flows in after the last step)
            a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])
            g = ctx.scan(a_next.flip(0), grad_h.flip(0), None).flip(0)
            h_prev = torch.cat([(torch.zeros_like(h[:1]) if h0 is None else h0[None]), h[:-1]])
            grad_a = g * h_prev                                      # ∂a_t = g_t h_{t−1}
            grad_h0 = None if h0 is None else a[0] * g[0]            # ∂h0 = a_0 g_0
        return grad_a, g, grad_h0, None                              # ∂b_t = g_t


def _prepare(a, b, h0):
    a, b = broadcast_time_major(a, b)
    if h0 is not None:
        h0 = h0.expand(b.shape[1:])
    return a, b, h0


def linear_recurrence(a, b, h0=None, *, method=None):
    """h_t = a_t h_{t−1} + b_t with a custom backward (see the module docstring).
    ``a (T, ...)``, ``b (T, ...)``, ``h0 (...)`` or None → ``h (T, ...)``, the broadcast shape.
    ``method``: "compiled" (minirec's Numba kernel on the CPU tensors' memory: the default on a
    CPU for float32/float64), "loop" (T in-place steps) or "chunked" (~2√T whole-tensor steps:
    the default on other devices, where every step is a kernel launch)."""
    if method is None:
        on_cpu = b.device.type == "cpu" and a.device.type == "cpu"
        if on_cpu and a.dtype in _COMPILED_DTYPES and b.dtype in _COMPILED_DTYPES:
            method = "compiled"
        else:
            method = "loop" if on_cpu else "chunked"
    if method not in SCANS:
        raise ValueError(f"method must be one of {tuple(SCANS)} or None; got {method!r}")
    a, b, h0 = _prepare(a, b, h0)          # expand: autograd sums gradients back to the inputs
    return LinearRecurrence.apply(a, b, h0, method)


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
