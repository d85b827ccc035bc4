r"""The linear recurrence h_t = a_t h_{t−1} + b_t with compiled Numba kernels: the fast CPU backend.

Same results as :func:`minirec.scan.reference.linear_recurrence` (the specification); the tests
hold every kernel to it. Notation as there::

    T  time steps    N  channels: every trailing axis of a and b, broadcast and flattened
    a, b, h (T, N)   C-contiguous, time-major: row t holds step t of every channel
    h0 (N,)          the state before the first step

Three kernels, all ``@njit(cache=True)``:

1. :func:`_sequential` — one thread, row after row: ``h[t] = a[t] * h[t−1] + b[t]`` over a
   contiguous row, which LLVM vectorises (one channel, N = 1, runs time-inner with the state in a
   register instead). It reads a and b and writes h once: 3·4·T·N bytes in float32.
2. :func:`_channels` — parallel over channels: ``prange`` over one contiguous block of channels
   per thread (whole 64-byte lines), each running the whole sequence. Same traffic, one parallel
   region.
3. :func:`_chunked` — parallel over TIME, for few channels and long sequences: reduce, then
   scan, cache-blocked. The steps are cut into chunks of C = 256 and the chunks into groups
   that fit the cores' L2 caches; per group, (1) every chunk, in parallel, computes its composed
   map (Π a, and h from 0 — the affine pair of the chunk); (2) one step per chunk gives the
   state at every chunk start; (3) every chunk is rescanned, in parallel, from its start. Phase
   3 reads a and b again, but from the cache that phase 1 just filled: memory sees a and b read
   once and h written once, as in the sequential kernel. (Without the groups — all chunks
   reduced, then all rescanned — a and b came from memory twice: 5·4·T·N bytes.)

Measured by ``benchmarks/bench_linear_recurrence_cpu.py`` (float32, 2 cores; its README keeps
one full run). On a quiet machine, against a 2-thread triad ``c = a + s·b`` on arrays of the
same size: :func:`_channels` ~0.7× the triad at T = 4096 × N = 1024, :func:`_chunked` ~0.55–0.66×
at T = 65536 × N = 64 (0.44× before the cache blocking), :func:`_sequential` ~0.45× (one thread
is a one-thread copy). The parallel kernels are the ones that suffer when another job takes a
core: a parallel region waits for its slowest thread, and :func:`_chunked` opens two per group.
On other shapes (``benchmarks/README.md``, "Older measurements": a run of the kernels before
the cache blocking) the chunked kernel won while the arrays stayed in L3 (T × N = 4096 × 256,
65536 × 16), and the sequential one on rows of N ≤ 4 channels, where the chain of dependent
FMAs, not memory, is the limit.

Hence the default, ``method="auto"`` (:func:`choose_method`): one thread below T·N = 2¹⁶
elements (a parallel region costs more than the work) and for N ≤ 4 channels (the FMA chain is
the limit: rescanning chunks doubles it); :func:`_channels` from N = 512 channels (the least
traffic, ~0.7× the triad when quiet); :func:`_chunked` in between. This refines a note of the
project's toolchain file ("prange over the channels of time-major data is slower than one
thread"): that holds for a ``prange`` over single channels (each thread strides through memory;
≈15× slower in a noisy run here), not for one contiguous block of channels per thread.

Details that mattered:

- **Indices from 0 on row views.** Written as ``h[t, n]`` with t from ``t0`` and n from ``lo``,
  the chunk loops compiled to gathers and scatters (LLVM could not rule out negative indices,
  which Numba wraps around); on 1-d row views indexed from 0 they vectorise.
- **Subnormals are flushed to zero** in the chunk products Π a: after a few hundred steps of
  a < 1 they fall below float32's smallest normal number, and subnormal arithmetic made one
  pass over the chunk maps 40× slower (183 ms against 4.5 ms). A flushed product weighs the
  carried state by less than 1.2e−38 (float32; 2.2e−308 in float64).
- **No slice assignment** (``A[:] = a[0]``) in kernels: it took 7 s to compile; a loop 0.4 s.
- Cold compile (``cache=True`` then loads in well under a second): sequential ~1–2 s,
  channels ~3 s, chunked ~7 s per dtype.

float32 in, float32 arithmetic and out; float64 likewise. Broadcast inputs (``a (T, 1)`` with
``b (T, D)``) are materialised at full size first. The Torch backend's own scans on a CPU (T
small ops, 2√T ops, T·log₂T work) are measured beside these kernels by the same benchmark.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from minirec.scan.reference import broadcast_time_major

_JIT = dict(cache=True, error_model="numpy", fastmath={"contract"})

SMALL = 1 << 16          # below T·N = 65536 elements one thread: no parallel region to start
FEW = 4                  # N ≤ 4 channels: latency-bound, chunking over time does not pay
WIDE = 512               # N ≥ 512 channels: one contiguous block of channels per thread
CHUNK = 256              # steps per time chunk
GROUP_BYTES = 1 << 20    # 1 MiB of a and b per thread and group: half a core's 2 MiB L2


@njit(inline="always", **_JIT)
def _step_row(a_t, b_t, h_prev, h_t):
    """One step on a row of channels: h_t = a_t h_{t−1} + b_t. Indices from 0 on 1-d views:
    LLVM then knows they are not negative and vectorises without gathers."""
    for i in range(h_t.shape[0]):
        h_t[i] = a_t[i] * h_prev[i] + b_t[i]


@njit(**_JIT)
def _scan_chunk(a, b, start, h):
    """h over the rows of a chunk from the state ``start`` before it: h_t = a_t h_{t−1} + b_t.
    ``a, b, h (C, N)``, ``start (N,)``. One channel (N = 1) runs time-inner with the state in a
    register: a step per FMA latency instead of a row loop of length 1."""
    if h.shape[1] == 1:
        x = start[0]
        for t in range(h.shape[0]):
            x = a[t, 0] * x + b[t, 0]
            h[t, 0] = x
        return
    _step_row(a[0], b[0], start, h[0])
    for t in range(1, h.shape[0]):
        _step_row(a[t], b[t], h[t - 1], h[t])


@njit(**_JIT)
def _sequential(a, b, h0, h):
    """One thread: h[t, n] = a[t, n] h[t−1, n] + b[t, n], row after row (rows are contiguous,
    the inner loop vectorises)."""
    _scan_chunk(a, b, h0, h)


@njit(parallel=True, **_JIT)
def _channels(a, b, h0, h, n_blocks):
    """One thread per contiguous block of channels, each running the whole sequence: one
    parallel region, and the least memory traffic (read a and b, write h, once)."""
    T, N = b.shape
    width = (N + n_blocks - 1) // n_blocks
    width = (width + 15) // 16 * 16         # whole 64-byte lines: threads never share one
    for k in prange(n_blocks):
        lo, hi = k * width, min(N, (k + 1) * width)
        _step_row(a[0, lo:hi], b[0, lo:hi], h0[lo:hi], h[0, lo:hi])
        for t in range(1, T):
            _step_row(a[t, lo:hi], b[t, lo:hi], h[t - 1, lo:hi], h[t, lo:hi])


@njit(inline="always", **_JIT)
def _compose_row(a_t, b_t, A, B, tiny):
    """(A, B) ← (A, B) ∘ (a_t, b_t): A ← a_t A (subnormals flushed to 0), B ← a_t B + b_t."""
    for i in range(A.shape[0]):
        p = a_t[i] * A[i]
        A[i] = p if abs(p) >= tiny else 0.0
        B[i] = a_t[i] * B[i] + b_t[i]


@njit(**_JIT)
def _reduce_chunk(a, b, A, B, tiny):
    """The composed map of the steps of a chunk: A = Π a, B = h_last with h_{−1} = 0.
    ``a, b (C, N)``, ``A, B (N,)``."""
    if A.shape[0] == 1:                         # one channel: time-inner, state in registers
        x, y = a[0, 0], b[0, 0]
        for t in range(1, a.shape[0]):
            p = a[t, 0] * x
            x = p if abs(p) >= tiny else 0.0
            y = a[t, 0] * y + b[t, 0]
        A[0], B[0] = x, y
        return
    for i in range(A.shape[0]):                 # (a loop: A[:] = a[0] took 7 s to compile)
        A[i] = a[0, i]
        B[i] = b[0, i]
    for t in range(1, a.shape[0]):
        _compose_row(a[t], b[t], A, B, tiny)


@njit(parallel=True, **_JIT)
def _chunked(a, b, h0, h, C, G, tiny):
    """Parallel over time, reduce-then-scan, one GROUP of ``G`` chunks of ``C`` steps at a time
    (cache blocking: a group's a and b, read in phase 1, are still in the cores' caches when
    phase 3 reads them again, so memory sees a and b once and h once):

    1. in parallel, each chunk j of the group: its composed map (A_j, B_j) = (Π a, h from 0);
    2. one step per chunk: start_{j+1} = A_j start_j + B_j, from the state before the group;
    3. in parallel, each chunk scanned from start_j (the same static split as in 1: a thread
       rescans the chunks it just reduced).
    """
    T, N = b.shape
    n = (T + C - 1) // C
    A = np.empty((G, N), b.dtype)
    B = np.empty((G, N), b.dtype)
    start = np.empty((G + 1, N), b.dtype)
    for i in range(N):
        start[0, i] = h0[i]
    for g0 in range(0, n, G):
        m = min(n, g0 + G) - g0
        for j in prange(m):                     # 1. the map of every chunk of the group
            t0, t1 = (g0 + j) * C, min(T, (g0 + j + 1) * C)
            _reduce_chunk(a[t0:t1], b[t0:t1], A[j], B[j], tiny)
        for j in range(m):                      # 2. start_{j+1} = A_j start_j + B_j
            _step_row(A[j], B[j], start[j], start[j + 1])
        for j in prange(m):                     # 3. each chunk from its start
            t0, t1 = (g0 + j) * C, min(T, (g0 + j + 1) * C)
            _scan_chunk(a[t0:t1], b[t0:t1], start[j], h[t0:t1])
        for i in range(N):                      # the state before the next group
            start[0, i] = start[m, i]


def _flat(a, b, h0):
    """Broadcast over trailing axes and flatten them: ``a, b (T, N)`` C-contiguous, ``h0 (N,)``,
    in float32 or float64."""
    (a, b), shape = broadcast_time_major(a, b)
    dtype = np.result_type(a, b, np.float32)
    a = np.ascontiguousarray(a, dtype).reshape(shape[0], -1)
    b = np.ascontiguousarray(b, dtype).reshape(shape[0], -1)
    h0 = (np.zeros(b.shape[1], dtype) if h0 is None
          else np.ascontiguousarray(np.broadcast_to(h0, shape[1:]), dtype).reshape(-1))
    return a, b, h0, shape


LINEAR_RECURRENCE_METHODS = ("auto", "sequential", "channels", "chunked")


def choose_method(T, N):
    """What ``method="auto"`` runs for a (T, N) problem (see the module docstring)."""
    if T * N < SMALL or N <= FEW or get_num_threads() < 2:
        return "sequential"
    return "channels" if N >= WIDE else "chunked"


def group_size(T, C, N, itemsize):
    """Chunks per group in :func:`_chunked`: as many as keep each thread's share of a and b
    (2·C·N·itemsize bytes a chunk) within :data:`GROUP_BYTES`, at least one per thread, at
    most all ⌈T/C⌉ chunks."""
    per_thread = max(1, GROUP_BYTES // (2 * C * N * itemsize))
    return min(-(-T // C), get_num_threads() * per_thread)


def linear_recurrence(a, b, h0=None, *, method="auto", chunk_size=None):
    """h_t = a_t h_{t−1} + b_t, as :func:`minirec.scan.reference.linear_recurrence`.

    ``a (T, ...)``, ``b (T, ...)`` (trailing axes broadcast), ``h0 (...)`` or None →
    ``h (T, ...)`` in the inputs' dtype. ``method``: "auto" (see :func:`choose_method`),
    "sequential", "channels" (one block of channels per thread) or "chunked" (over time, chunks
    of ``chunk_size`` steps; default :data:`CHUNK`).
    """
    dtype = np.result_type(a, b)
    a2, b2, h02, shape = _flat(a, b, h0)
    T, N = b2.shape
    if method == "auto":
        method = choose_method(T, N)
    h = np.empty_like(b2)
    if method == "sequential":
        _sequential(a2, b2, h02, h)
    elif method == "channels":
        _channels(a2, b2, h02, h, get_num_threads())
    elif method == "chunked":
        C = max(1, CHUNK if chunk_size is None else int(chunk_size))
        _chunked(a2, b2, h02, h, C, group_size(T, C, N, b2.dtype.itemsize),
                 b2.dtype.type(np.finfo(b2.dtype).tiny))
    else:
        raise ValueError(f"method must be one of {LINEAR_RECURRENCE_METHODS}; got {method!r}")
    return h.reshape(shape).astype(dtype, copy=False)
