r"""The linear recurrence on a GPU with ``numba.cuda``: a Blelloch block scan in shared memory and
a multi-block scan (block scans → scan of the block totals → fix-up).

    h_t = a_t h_{t−1} + b_t   as the scan of the affine pairs  (a1, b1) ∘ (a2, b2) = (a1 a2, a2 b1 + b2)

with left = earlier and identity (1, 0) (see :func:`minirec.scan.reference.affine_combine`). The scanned
pair at t is (A_t, B_t) = (Π_{s≤t} a_s, h_t with h_{−1} = 0), so h_t = A_t h0 + B_t.

Layout: ``a, b (T, N)`` in global memory, time first (N = all trailing axes flattened). The grid
is ``(blocks along time, N)``: CUDA block (k, n) scans the ``2·threads`` steps k·2·threads … of
channel n. Three kernels:

1. :func:`_block_scan` — GPU Gems 3, ch. 39 (Harris, Sengupta, Owens): each thread loads two
   pairs into shared memory; the up-sweep builds the tree in place (log₂(2·threads) levels);
   the root, the block's total, is saved and replaced by the identity; the down-sweep turns the
   tree into the exclusive scan; each position then combines its exclusive prefix with its own
   pair to make the inclusive scan (y_i = excl_i ∘ x_i: the prefix is the EARLIER operand).
   Steps past T are padded with the identity, so any T works.
2. the block totals ``(blocks, N)`` are scanned by the same function, recursively, until they
   fit in one block;
3. :func:`_fix_up` — block k ≥ 1 is combined with the scanned total of blocks 0 … k−1 (the
   carry, on the left), and h = A h0 + B.

This module imports on machines without CUDA (nothing compiles until a kernel is launched).
With ``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported, the kernels run on the CPU in
numba's simulator: that is how the tests check them (slowly: keep T and N small). On a real GPU,
:func:`linear_recurrence_device` takes device arrays (e.g. ``cuda.as_cuda_array(tensor)``), and
this layout is a teaching layout, not the fastest one: channel n's steps are N apart in memory,
so loads are not coalesced; a production kernel would give each warp 32 adjacent channels.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import cuda  # imports without a GPU; the simulator swaps it inside kernels

__all__ = ["linear_recurrence_cuda", "linear_recurrence_device", "is_available", "THREADS"]

THREADS = 128                      # threads per block; each block scans 2·THREADS steps


def is_available() -> bool:
    """True when kernels can run: a CUDA GPU, or numba's simulator (NUMBA_ENABLE_CUDASIM=1)."""
    try:
        return bool(cuda.is_available())
    except Exception:              # a broken driver installation: treat as absent
        return False


@cache
def _kernels(dtype_name: str, threads: int):
    """Compile (lazily, on first launch) the kernels for one dtype and block size: shared
    arrays need both as constants."""
    from numba import from_dtype

    dtype = from_dtype(np.dtype(dtype_name))
    n = 2 * threads                # steps per block

    @cuda.jit
    def block_scan(a, b, A, B, A_total, B_total):
        """Inclusive scan of the pairs of one block, in place in shared memory.
        a, b, A, B: (T, N); A_total, B_total: (blocks, N)."""
        sa = cuda.shared.array(n, dtype)
        sb = cuda.shared.array(n, dtype)
        tid = cuda.threadIdx.x
        blk, ch = cuda.blockIdx.x, cuda.blockIdx.y
        T = a.shape[0]
        base = blk * n
        for i in (2 * tid, 2 * tid + 1):                  # load; past T: the identity (1, 0)
            t = base + i
            if t < T:
                sa[i], sb[i] = a[t, ch], b[t, ch]
            else:
                sa[i], sb[i] = 1, 0
        cuda.syncthreads()

        offset, d = 1, threads                            # up-sweep: node r ← node l ∘ node r
        while d > 0:
            if tid < d:
                l = offset * (2 * tid + 1) - 1
                r = offset * (2 * tid + 2) - 1
                sb[r] = sa[r] * sb[l] + sb[r]             # a2·b1 + b2
                sa[r] = sa[l] * sa[r]                     # a1·a2
            offset *= 2
            d //= 2
            cuda.syncthreads()

        if tid == 0:                                      # the block's total; root ← identity
            A_total[blk, ch], B_total[blk, ch] = sa[n - 1], sb[n - 1]
            sa[n - 1], sb[n - 1] = 1, 0
        cuda.syncthreads()

        d = 1                                             # down-sweep
        while d < n:
            offset //= 2
            if tid < d:
                l = offset * (2 * tid + 1) - 1
                r = offset * (2 * tid + 2) - 1
                la, lb = sa[l], sb[l]                     # left subtree's total
                sa[l], sb[l] = sa[r], sb[r]               # left child: the parent's prefix
                sb[r] = la * sb[r] + lb                   # right child: prefix ∘ left total
                sa[r] = sa[r] * la
            d *= 2
            cuda.syncthreads()

        for i in (2 * tid, 2 * tid + 1):                  # exclusive → inclusive: excl ∘ x
            t = base + i
            if t < T:
                xa, xb = a[t, ch], b[t, ch]
                A[t, ch] = sa[i] * xa
                B[t, ch] = xa * sb[i] + xb

    @cuda.jit
    def fix_up(A, B, A_carry, B_carry):
        """Block k+1 ← (scan of blocks 0 … k) ∘ block k+1, for k = blockIdx.x."""
        tid = cuda.threadIdx.x
        blk, ch = cuda.blockIdx.x + 1, cuda.blockIdx.y
        ca, cb = A_carry[blk - 1, ch], B_carry[blk - 1, ch]
        for i in (2 * tid, 2 * tid + 1):
            t = blk * n + i
            if t < A.shape[0]:
                la = A[t, ch]
                B[t, ch] = la * cb + B[t, ch]             # a2·b1 + b2 with the carry as 1
                A[t, ch] = ca * la

    @cuda.jit
    def apply_h0(A, B, h0):
        """B ← A h0 + B: h_t from the scanned pairs."""
        tid = cuda.threadIdx.x
        blk, ch = cuda.blockIdx.x, cuda.blockIdx.y
        for i in (2 * tid, 2 * tid + 1):
            t = blk * n + i
            if t < A.shape[0]:
                B[t, ch] = A[t, ch] * h0[ch] + B[t, ch]

    return block_scan, fix_up, apply_h0


def _scan_pairs(a, b, threads):
    """Inclusive scan of the pairs (a, b), device arrays (T, N) → device arrays (A, B)."""
    block_scan, fix_up, _ = _kernels(str(np.dtype(a.dtype)), threads)
    T, N = a.shape
    blocks = math.ceil(T / (2 * threads))
    A, B = cuda.device_array_like(a), cuda.device_array_like(b)
    A_total = cuda.device_array((blocks, N), a.dtype)
    B_total = cuda.device_array((blocks, N), b.dtype)
    block_scan[(blocks, N), threads](a, b, A, B, A_total, B_total)        # 1. block scans
    if blocks > 1:
        A_carry, B_carry = _scan_pairs(A_total, B_total, threads)         # 2. scan the totals
        fix_up[(blocks - 1, N), threads](A, B, A_carry, B_carry)          # 3. fix-up
    return A, B


def linear_recurrence_device(a, b, h0, *, threads=THREADS):
    """h on the device: ``a, b`` (T, N) and ``h0`` (N,) device arrays (or anything with
    ``__cuda_array_interface__``, such as a CUDA torch tensor), one float dtype. Returns a
    device array (T, N). ``threads``: a power of two, at most 1024."""
    if threads < 1 or threads & (threads - 1) or threads > 1024:
        raise ValueError(f"threads must be a power of two in [1, 1024]; got {threads}")
    a, b, h0 = (x if hasattr(x, "copy_to_host") else cuda.as_cuda_array(x) for x in (a, b, h0))
    T, N = b.shape
    if N > 65535:
        raise ValueError(f"at most 65535 channels (the grid's y size); got N = {N}")
    A, B = _scan_pairs(a, b, threads)
    apply_h0 = _kernels(str(np.dtype(b.dtype)), threads)[2]
    apply_h0[(math.ceil(T / (2 * threads)), N), threads](A, B, h0)
    return B


def linear_recurrence_cuda(a, b, h0=None, *, threads=THREADS):
    """h_t = a_t h_{t−1} + b_t on the GPU, NumPy in and out: ``a (T, ...)``, ``b (T, ...)``
    (trailing axes broadcast), ``h0 (...)`` or None → ``h (T, ...)`` in b's dtype. Copies to
    the device and back; time the kernels alone with :func:`linear_recurrence_device`."""
    from minirec.scan.reference import broadcast_time_major

    if not is_available():
        raise RuntimeError("no CUDA GPU (set NUMBA_ENABLE_CUDASIM=1 before importing numba to "
                           "run the kernels in numba's simulator)")
    (a, b), shape = broadcast_time_major(np.asarray(a), np.asarray(b))
    dtype = np.result_type(a, b)
    a2 = np.ascontiguousarray(a, dtype).reshape(shape[0], -1)
    b2 = np.ascontiguousarray(b, dtype).reshape(shape[0], -1)
    h0 = np.zeros(b2.shape[1], dtype) if h0 is None else \
        np.ascontiguousarray(np.broadcast_to(h0, shape[1:]), dtype).reshape(-1)
    h = linear_recurrence_device(cuda.to_device(a2), cuda.to_device(b2), cuda.to_device(h0),
                                 threads=threads)
    return h.copy_to_host().reshape(shape)
