r"""Associative scans and linear recurrences, in NumPy: the specification.

Notation (the same everywhere in minirec)::

    T        time steps: every sequence is time first, (T, ...), and scans run along axis 0
    ...      trailing axes (channels, batch, heads): they broadcast, time never does
    x_t      element t of a sequence;  x_{0..t} its prefix
    ⊕        an associative combine:  (x ⊕ y) ⊕ z = x ⊕ (y ⊕ z); LEFT IS EARLIER
    y_t      the inclusive scan:  y_t = x_0 ⊕ x_1 ⊕ … ⊕ x_t
    a, b     (T, ...) decay and input of the linear recurrence  h_t = a_t h_{t−1} + b_t
    h0       (...) the state before the first step, h_{−1} (zero when None)
    K        states of an HMM / size of the square matrices scanned by log_matmul_combine and max_plus_combine
    d_v      value size of the softmax-attention element (m, u, w)

**Elements.** An element sequence is an array ``(T, ...)`` or a tuple of arrays that share the
leading axis ``T`` (the affine pair ``(a, b)``, the attention triple ``(m, u, w)``). A combine
``combine(left, right)`` takes two such batches of the same length (left = the earlier elements,
right = the later ones) and combines them position by position, broadcasting trailing axes.

**Scans.** Four ways to compute the same inclusive scan, for any T (not only powers of two):

- :func:`sequential`    T − 1 combines, T − 1 rounds: the loop, the specification of the others;
- :func:`hillis_steele` ⌈log₂T⌉ rounds but ~T·log₂T combines (every round combines almost all);
- :func:`blelloch`      ~2T combines in ~2·log₂T rounds: an up-sweep builds a tree of partial
  combines, a down-sweep hands each node the combine of everything to its left;
- :func:`chunked`       the two-level scan a CPU or GPU actually runs: scan inside chunks, scan
  the chunk totals, fix up each chunk with the total of the chunks before it.

:func:`count_combines` counts the work (combine applications) and depth (rounds) of each.

**Linear recurrence.** :func:`linear_recurrence` is the loop; :func:`linear_recurrence_backward`
its gradient (itself a linear recurrence, run backwards in time); :func:`linear_recurrence_log`
a log-space form that stays finite over long sequences; :func:`linear_recurrence_closed_form`
the textbook formula that does not (kept to show what goes wrong).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    # combines
    "add_combine", "affine_combine", "matrix_affine_combine", "logaddexp_combine",
    "log_matmul_combine", "max_plus_combine", "softmax_attention_combine",
    "softmax_attention_elements", "softmax_attention_output", "COMBINES",
    # scans
    "sequential", "hillis_steele", "blelloch", "chunked", "associative_scan",
    "ASSOCIATIVE_SCAN_METHODS",
    "CountingCombine", "count_combines",
    # linear recurrence
    "linear_recurrence", "linear_recurrence_backward", "linear_recurrence_log",
    "linear_recurrence_closed_form", "broadcast_time_major",
]


# ============================================================================================
# Elements: an array (T, ...) or a tuple of arrays sharing the leading axis T.
# ============================================================================================

def _parts(x) -> tuple:
    """The arrays of an element sequence, as a tuple."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _like(template, parts):
    """Pack ``parts`` the way ``template`` is packed (a tuple, or a bare array)."""
    return tuple(parts) if isinstance(template, (tuple, list)) else parts[0]


def _take(x, index):
    """Elements ``index`` (a slice or an index array) of every array of ``x``."""
    return _like(x, [p[index] for p in _parts(x)])


def _length(x) -> int:
    """T, the leading axis every array of ``x`` shares."""
    lengths = {np.shape(p)[0] if np.ndim(p) else None for p in _parts(x)}
    if len(lengths) != 1 or None in lengths:
        shapes = [np.shape(p) for p in _parts(x)]
        raise ValueError(f"elements must be arrays (T, ...) sharing the leading axis T; got shapes {shapes}")
    return lengths.pop()


def _cat(pieces):
    """Concatenate element sequences along time (their trailing axes are broadcast first)."""
    out = []
    for arrays in zip(*[_parts(p) for p in pieces]):
        trailing = np.broadcast_shapes(*[a.shape[1:] for a in arrays])
        out.append(np.concatenate([np.broadcast_to(a, a.shape[:1] + trailing) for a in arrays]))
    return _like(pieces[0], out)


def _interleave(evens, odds):
    """The sequence e_0, o_0, e_1, o_1, …  (``len(evens)`` is ``len(odds)`` or one more)."""
    n_e, n_o = _length(evens), _length(odds)
    out = []
    for e, o in zip(_parts(evens), _parts(odds)):
        trailing = np.broadcast_shapes(e.shape[1:], o.shape[1:])
        z = np.empty((n_e + n_o,) + trailing, dtype=np.result_type(e, o))
        z[0::2], z[1::2] = e, o
        out.append(z)
    return _like(evens, out)


def _repeat(x, n):
    """One element (a length-1 sequence) repeated n times along time (a broadcast view)."""
    return _like(x, [np.broadcast_to(p, (n,) + p.shape[1:]) for p in _parts(x)])


# ============================================================================================
# Combines. Each has the signature combine(left, right) -> element, left = earlier, and an
# ``identity(like)`` attribute: the element e with e ⊕ x = x ⊕ e = x, shaped like one ``like``.
# ============================================================================================

def _with_identity(identity):
    def attach(combine):
        combine.identity = identity
        return combine
    return attach


def _full(x, value):
    return np.full_like(x[:1], value)


def _eye_log(L):
    """log of the identity matrix, shaped like one element of ``L (T, ..., K, K)``: 0 on the
    diagonal, −inf elsewhere (the unit of both log_matmul_combine and
    max_plus_combine)."""
    K = L.shape[-1]
    return np.broadcast_to(np.where(np.eye(K, dtype=bool), 0.0, -np.inf).astype(L.dtype),
                           L[:1].shape).copy()


@_with_identity(lambda x: _full(x, 0))
def add_combine(x, y):
    """x ⊕ y = x + y: the scan is ``np.cumsum``. Identity 0; associative because + is."""
    return x + y


@_with_identity(lambda e: (_full(e[0], 1), _full(e[1], 0)))
def affine_combine(left, right):
    """Composition of affine maps h ↦ a h + b, the operator of the linear recurrence.

    ``(a1, b1) ⊕ (a2, b2) = (a1·a2, a2·b1 + b2)``: first apply map 1 (the earlier step), then
    map 2, since a2 (a1 h + b1) + b2 = (a1 a2) h + (a2 b1 + b2). Element: ``(a, b)`` with
    ``a (T, ...)`` broadcasting against ``b (T, ...)``. Identity ``(1, 0)``. Associative because
    composition of functions is; NOT commutative — swapping the operands gives a1 b2 + b1, a
    different map. Scanning the pairs ``(a_t, b_t)`` gives ``(Π_{s≤t} a_s, h_t with h_{−1}=0)``.
    """
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


@_with_identity(lambda e: (np.broadcast_to(np.eye(e[0].shape[-1], dtype=e[0].dtype),
                                           e[0][:1].shape).copy(), _full(e[1], 0)))
def matrix_affine_combine(left, right):
    """Composition of affine maps h ↦ A h + b with a matrix A: the linear recurrence with a
    state-to-state matrix (an SSM, DeltaNet's state update written as a map).

    ``(A1, b1) ⊕ (A2, b2) = (A2 A1, A2 b1 + b2)``, since A2 (A1 h + b1) + b2. Element:
    ``A (T, ..., N, N)``, ``b (T, ..., N)``. Identity ``(I, 0)``. Associative because
    composition is (and matrix products are); the order of the product matters.
    """
    A1, b1 = left
    A2, b2 = right
    return A2 @ A1, (A2 @ b1[..., None])[..., 0] + b2


@_with_identity(lambda x: _full(x, -np.inf))
def logaddexp_combine(x, y):
    """x ⊕ y = log(eˣ + eʸ): addition carried out in log space; the scan is a cumulative
    log-sum-exp. Identity −inf (log 0). Associative because + is. ``np.logaddexp`` shifts by
    the larger argument, so nothing overflows."""
    return np.logaddexp(x, y)


def _finite_or_zero(m):
    """The max shift, with ±inf replaced by 0 (a row that is all −inf stays −inf, without NaN)."""
    return np.where(np.isfinite(m), m, 0.0)


@_with_identity(_eye_log)
def log_matmul_combine(L1, L2):
    """Matrix product in log space: ``(L1 ⊕ L2)[i, j] = log Σ_k exp(L1[i, k] + L2[k, j])``.

    Element: ``(T, ..., K, K)`` log matrices. For the HMM forward pass with row vectors,
    ``α_t = α_{t−1} M_t`` with ``M_t[i, j] = log A[i, j] + log B[j, x_t]``: the scan gives the
    products ``M_0 M_1 … M_t`` (left = earlier, so the product is L1 @ L2, in that order).
    Identity: log I (0 on the diagonal, −inf elsewhere). Associative because the matrix product
    is (it is the matrix product of the (+, ×) semiring, carried to log space).

    Stability: with the row maxima r_i = max_k L1[i, k] and column maxima c_j = max_k L2[k, j],
    ``log(exp(L1 − r) @ exp(L2 − c)) + r_i + c_j``: every exponential is ≤ 1, nothing overflows,
    and the product is one BLAS call. It returns −inf (exact value finite) only if, for some
    (i, j), every path i → k → j lies more than ~700 (float64; ~87 in float32) below r_i + c_j.
    """
    r = _finite_or_zero(L1.max(axis=-1, keepdims=True))        # (..., K, 1) row maxima
    c = _finite_or_zero(L2.max(axis=-2, keepdims=True))        # (..., 1, K) column maxima
    with np.errstate(divide="ignore"):                          # log 0 = −inf is the answer
        return np.log(np.exp(L1 - r) @ np.exp(L2 - c)) + r + c


@_with_identity(_eye_log)
def max_plus_combine(L1, L2):
    """Tropical matrix product: ``(L1 ⊕ L2)[i, j] = max_k L1[i, k] + L2[k, j]`` (Viterbi).

    Element: ``(T, ..., K, K)``, log scores. The scan of Viterbi's ``M_t`` gives the score of the
    best path between every pair of states. Identity: 0 on the diagonal, −inf elsewhere.
    Associative because (max, +) is a semiring: + distributes over max, as × over +.
    """
    K = L1.shape[-1]
    out = L1[..., :, 0:1] + L2[..., 0:1, :]                     # paths through k = 0
    for k in range(1, K):                                       # best over every middle state k
        out = np.maximum(out, L1[..., :, k:k + 1] + L2[..., k:k + 1, :])
    return out


def _attention_identity(e):
    m, u, w = e
    return _full(m, -np.inf), _full(u, 0), _full(w, 0)


@_with_identity(_attention_identity)
def softmax_attention_combine(left, right):
    """Causal softmax attention as a scan (Aaren, Feng et al. 2024): the element ``(m, u, w)``.

    Shapes: ``m (T, ...)``, ``u (T, ...)``, ``w (T, ..., d_v)`` — m and u share one shape, w has
    one more axis, the value axis, last. Token i with score s_i = q·k_i and value v_i is the
    element ``(s_i, 1, v_i)`` (:func:`softmax_attention_elements`); the scan's element t is

        m_t = max_{i≤t} s_i,   u_t = Σ_{i≤t} e^{s_i − m_t},   w_t = Σ_{i≤t} e^{s_i − m_t} v_i,

    and the output o_t = w_t / u_t = Σ_{i≤t} softmax(s_{0..t})_i v_i
    (:func:`softmax_attention_output`). The combine rescales both sides to the common maximum:

        (mA, uA, wA) ⊕ (mB, uB, wB) = (m, uA e^{mA−m} + uB e^{mB−m}, wA e^{mA−m} + wB e^{mB−m}),
        m = max(mA, mB).

    Identity ``(−inf, 0, 0)`` (no tokens). With m = −inf on both sides e^{mA−m} would be
    e^{−inf+inf} = NaN: the shift m is replaced by 0 there, and e^{−inf} = 0 gives the identity
    again. Associative because (m, u, w) stands for the pair of sums (U, W) = (u eᵐ, w eᵐ),
    which the combine adds; m only keeps every exponential ≤ 1. Commutative too, as sums are.
    """
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.maximum(mA, mB)
    shift = _finite_or_zero(m)                                  # m = −inf on both sides → 0
    sA, sB = np.exp(mA - shift), np.exp(mB - shift)             # e^{mA−m}, e^{mB−m} ≤ 1
    return m, uA * sA + uB * sB, wA * sA[..., None] + wB * sB[..., None]


def softmax_attention_elements(scores, values):
    """Leaves of the attention scan: ``scores (T, ...)``, ``values (T, ..., d_v)`` → the
    elements ``(m, u, w) = (scores, 1, values)``. A masked token (score −inf) becomes the
    identity ``(−inf, 0, 0)``: it has weight e^{−inf} = 0."""
    masked = np.isneginf(scores)
    u = np.where(masked, 0.0, 1.0).astype(scores.dtype)
    return scores, u, np.where(masked[..., None], 0.0, values).astype(values.dtype)


def softmax_attention_output(elems):
    """o = w / u: ``(m (T, ...), u (T, ...), w (T, ..., d_v))`` → ``o (T, ..., d_v)``."""
    _, u, w = elems
    return w / u[..., None]


COMBINES = {f.__name__: f for f in (add_combine, affine_combine, matrix_affine_combine,
                                    logaddexp_combine, log_matmul_combine, max_plus_combine,
                                    softmax_attention_combine)}


# ============================================================================================
# Scans: y_t = x_0 ⊕ x_1 ⊕ … ⊕ x_t along axis 0.
# ============================================================================================

def sequential(combine, elems):
    """The loop: y_0 = x_0, y_t = y_{t−1} ⊕ x_t. T − 1 combines in T − 1 rounds.

    ``elems``: an array ``(T, ...)`` or a tuple of them; returns the same structure.
    """
    T = _length(elems)
    y = [_take(elems, slice(0, 1))]                             # y_0 = x_0
    for t in range(1, T):
        y.append(combine(y[-1], _take(elems, slice(t, t + 1))))  # y_t = y_{t−1} ⊕ x_t
    return _cat(y)


def hillis_steele(combine, elems):
    """Hillis & Steele (1986): in round d = 1, 2, 4, …, every y_t with t ≥ d becomes
    y_{t−d} ⊕ y_t, all at once (one combine on two shifted slices).

    After the round with offset d, y_t covers x_{max(0, t−2d+1)..t}: ⌈log₂T⌉ rounds, but
    Σ_d (T − d) ≈ T·log₂T combines — not work-efficient.
    """
    y = elems
    T = _length(elems)
    d = 1
    while d < T:
        head = _take(y, slice(0, d))                            # y_0 … y_{d−1} are complete
        tail = combine(_take(y, slice(0, T - d)), _take(y, slice(d, T)))  # y_t ← y_{t−d} ⊕ y_t
        y = _cat([head, tail])
        d *= 2
    return y


def _up_sweep(combine, x):
    """The tree, leaves first: level 0 is x; node j of level k+1 is (node 2j) ⊕ (node 2j+1) of
    level k. A node without a partner (odd length) moves up unchanged — as if paired with the
    identity, which we never need to know. Stops at the root, the combine of everything."""
    levels = [x]
    while _length(levels[-1]) > 1:
        level = levels[-1]
        L = _length(level)
        pairs = combine(_take(level, slice(0, L - 1, 2)), _take(level, slice(1, L, 2)))
        orphan = [_take(level, slice(L - 1, L))] if L % 2 else []
        levels.append(_cat([pairs, *orphan]))
    return levels


def _down_sweep_level(combine, level, before_up):
    """One level of the down-sweep. ``before_up`` holds, for nodes 1, 2, … of the level above,
    the combine of every leaf left of that node (its exclusive prefix; node 0 has none: the
    identity, never stored). Returns the same for nodes 1, 2, … of ``level``:

        left child  2j:    before(2j)   = before_up(j)                  (same leaves to its left)
        right child 2j+1:  before(2j+1) = before_up(j) ⊕ node(2j)       (plus its left sibling)
                           before(1)    = node(0)                       (j = 0: identity ⊕ node 0)
    """
    L = _length(level)
    P = L // 2                                                   # pairs on this level
    right_0 = _take(level, slice(0, 1))                          # before(1) = node 0
    rights = right_0                                             # before(1), before(3), …
    if P > 1:
        right_j = combine(_take(before_up, slice(0, P - 1)), _take(level, slice(2, 2 * P, 2)))
        rights = _cat([right_0, right_j])
    lefts = _take(before_up, slice(0, (L - 1) // 2))             # before(2), before(4), …
    return _interleave(rights, lefts)


def blelloch(combine, elems):
    """Blelloch (1990), work-efficient: an up-sweep builds the tree of partial combines (T − 1
    combines), a down-sweep hands every node the combine of all leaves to its left (~T more),
    each in ⌈log₂T⌉ rounds. Any T: an unpaired node moves up a level unchanged.

    For x_0 … x_4 (T = 5)::

        up-sweep      level 0:  x0   x1   x2   x3   x4
                      level 1:  x01       x23       x4      (x4 has no partner: moves up)
                      level 2:  x0123               x4
                      level 3:  x01234                      (root: the total)
        down-sweep    before(node) = combine of every leaf left of it, top to bottom:
                      level 2:  —    x0123
                      level 1:  —    x01   x0123
                      level 0:  —    x0    x01   x012  x0123

    The down-sweep gives the EXCLUSIVE scan (before(0) is the empty prefix). The inclusive scan
    is that shifted by one, with the root last: y_t = before(t + 1) for t < T − 1, y_{T−1} =
    root. (The other route, y_t = before(t) ⊕ x_t, costs T more combines and needs the
    identity for t = 0.)
    """
    levels = _up_sweep(combine, elems)
    T = _length(elems)
    if T == 1:
        return elems
    before = _take(levels[-2], slice(0, 1))                      # level just below the root:
    for level in reversed(levels[:-2]):                          # before(1) = node 0
        before = _down_sweep_level(combine, level, before)
    return _cat([before, levels[-1]])                            # y_t = before(t+1); y_{T−1} = root


# --- the two-level scan --------------------------------------------------------------------

def _to_chunks(x, chunk, n_chunks):
    """(T, ...) → (chunk, n_chunks, ...): position i of chunk k at [i, k]. T is padded at the
    end with copies of the last element: a scan is causal, so what follows position t never
    changes y_t, and the padded results are cut off again."""
    out = []
    for p in _parts(x):
        pad = n_chunks * chunk - p.shape[0]
        p = np.concatenate([p, np.repeat(p[-1:], pad, axis=0)]) if pad else p
        out.append(np.swapaxes(p.reshape((n_chunks, chunk) + p.shape[1:]), 0, 1))
    return _like(x, out)


def _from_chunks(x, T):
    return _like(x, [np.swapaxes(p, 0, 1).reshape((-1,) + p.shape[2:])[:T] for p in _parts(x)])


def _carry_in(combine, local):
    """For chunks 1 … n−1: the combine of every chunk before it, scanned from the chunk totals
    (the last element of each local scan): carry(k) = total_0 ⊕ … ⊕ total_{k−1}.
    ``local (C, n, ...)`` → ``(1, n − 1, ...)``."""
    totals = _like(local, [p[-1, :-1] for p in _parts(local)])   # (n − 1, ...)
    carries = sequential(combine, totals)                        # scan of the chunk totals
    return _like(local, [p[None] for p in _parts(carries)])


def chunked(combine, elems, chunk_size=16, method="sequential"):
    """The two-level scan: (1) scan inside every chunk of ``chunk_size`` steps, all chunks at once
    (with ``method``); (2) scan the chunk totals; (3) fix up chunk k with the combine of the
    chunks before it: y = carry(k) ⊕ local. This is how a multicore CPU (one chunk per thread)
    or a GPU (one chunk per block) scans: the work is ~2T combines; the rounds are
    chunk_size − 1 + n_chunks − 2 + 1.
    """
    T = _length(elems)
    C = min(int(chunk_size), T)
    n = -(-T // C)                                               # ⌈T / C⌉ chunks
    local = _SCANS[method](combine, _to_chunks(elems, C, n))    # (1) (C, n, ...)
    if n == 1:
        return _from_chunks(local, T)
    carry = _carry_in(combine, local)                            # (2) (1, n − 1, ...)
    later = _take(local, (slice(None), slice(1, None)))          # chunks 1 … n−1
    fixed = combine(_repeat(carry, C), later)                    # (3) carry(k) ⊕ local_k
    first = _take(local, (slice(None), slice(0, 1)))
    return _from_chunks(_like(elems, [np.concatenate([f, g], axis=1) for f, g in
                                      zip(_parts(first), _parts(fixed))]), T)


_SCANS = {"sequential": sequential, "hillis_steele": hillis_steele, "blelloch": blelloch}
#: The ``method=`` choices of :func:`associative_scan` (all compute the same scan).
ASSOCIATIVE_SCAN_METHODS = (*_SCANS, "chunked")


def associative_scan(combine, elems, *, method="sequential"):
    """Inclusive scan y_t = x_0 ⊕ … ⊕ x_t of ``elems`` (an array ``(T, ...)`` or a tuple of
    arrays sharing T) along axis 0, with ``method`` one of "sequential", "hillis_steele",
    "blelloch", "chunked". Every method gives the same result when ``combine`` is associative
    (up to rounding)."""
    if method == "chunked":
        return chunked(combine, elems)
    if method not in ASSOCIATIVE_SCAN_METHODS:
        raise ValueError(f"method must be one of {ASSOCIATIVE_SCAN_METHODS}; got {method!r}")
    return _SCANS[method](combine, elems)


# --- counting ------------------------------------------------------------------------------

class CountingCombine:
    """Wraps a combine and counts its use: ``rounds`` = calls (one call combines a whole batch
    at once: one parallel round), ``work`` = combine applications. An application is one
    position of the leading axis, or with ``scalar=True`` (elements are 0-d) one entry of the
    result, which also counts the chunks that :func:`chunked` combines side by side."""

    def __init__(self, combine, scalar=False):
        self.combine, self.scalar, self.rounds, self.work = combine, scalar, 0, 0

    def __call__(self, left, right):
        out = self.combine(left, right)
        self.rounds += 1
        self.work += _parts(out)[0].size if self.scalar else _length(out)
        return out


def count_combines(method, T, chunk_size=16):
    """``{"work": combine applications, "depth": rounds}`` of scanning T elements with
    ``method`` ("sequential", "hillis_steele", "blelloch" or "chunked"; ``chunk_size`` is the chunk
    length of the last, whose work includes the padding of the last chunk)."""
    counter = CountingCombine(add_combine, scalar=True)
    x = np.zeros(int(T))
    if method == "chunked":
        chunked(counter, x, chunk_size=chunk_size)
    else:
        associative_scan(counter, x, method=method)
    return {"work": counter.work, "depth": counter.rounds}


# ============================================================================================
# The linear recurrence h_t = a_t h_{t−1} + b_t, h_{−1} = h0 (or 0).
# ============================================================================================

def broadcast_time_major(*arrays):
    """Broadcast arrays that all have the time axis first, ``(T, ...)``, over their TRAILING axes
    only: ``(T,)`` and ``(T, B, D)`` give ``(T, 1, 1)`` and ``(T, B, D)`` (plain NumPy
    broadcasting would align T with D). Returns views and the common shape ``(T, ...)``."""
    trailing = np.broadcast_shapes(*[x.shape[1:] for x in arrays])
    out = [np.broadcast_to(x.reshape(x.shape[:1] + (1,) * (len(trailing) - x.ndim + 1)
                                     + x.shape[1:]), x.shape[:1] + trailing) for x in arrays]
    return out, arrays[0].shape[:1] + trailing


def _check_time_major(a, b):
    for name, x in (("a", a), ("b", b)):
        if x.ndim < 1:
            raise ValueError(f"{name} must have shape (T, ...) with time first; got a scalar")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must share the time axis: a (T, ...) = {a.shape}, "
                         f"b (T, ...) = {b.shape}")


def linear_recurrence(a, b, h0=None):
    """h_t = a_t h_{t−1} + b_t for t = 0 … T−1, with h_{−1} = h0 (zero when None).

    ``a (T, ...)``, ``b (T, ...)``: both time first; their trailing axes broadcast. ``h0``
    broadcasts to the trailing shape. Returns ``h (T, ...)``, the broadcast shape.
    """
    a, b = np.asarray(a), np.asarray(b)
    _check_time_major(a, b)
    (a, b), shape = broadcast_time_major(a, b)
    h = np.empty(shape, dtype=np.result_type(a, b, *([] if h0 is None else [h0])))
    prev = np.zeros(shape[1:], h.dtype) if h0 is None else np.broadcast_to(h0, shape[1:])
    for t in range(shape[0]):
        h[t] = a[t] * prev + b[t]                                # h_t = a_t h_{t−1} + b_t
        prev = h[t]
    return h


def _sum_to_shape(g, shape):
    """Sum ``g`` over the axes along which an array of ``shape`` was broadcast to g's shape
    (NumPy's rule: missing leading axes, and axes of size 1)."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _sum_to_time_major(g, shape):
    """As :func:`_sum_to_shape` for an input ``(T, ...)`` broadcast by
    :func:`broadcast_time_major` (trailing axes only)."""
    expanded = shape[:1] + (1,) * (g.ndim - len(shape)) + tuple(shape[1:])
    return _sum_to_shape(g, expanded).reshape(shape)


def linear_recurrence_backward(a, h, h0, grad_h, *, b_shape=None):
    """Gradients of L through h = linear_recurrence(a, b, h0), given ``grad_h = ∂L/∂h (T, ...)``.

    The total gradient g_t = ∂L/∂h_t (through every later step) is itself a linear recurrence,
    run backwards in time::

        g_{T−1} = grad_h_{T−1},   g_t = grad_h_t + a_{t+1} g_{t+1}
        ∂L/∂b_t = g_t,   ∂L/∂a_t = g_t h_{t−1} (h_{−1} = h0 or 0),   ∂L/∂h0 = a_0 g_0

    each summed back over the axes its input was broadcast along. ``h (T, ...)`` is the forward
    result; ``b_shape`` is b's shape (default: h's). Returns ``{"a", "b", "h0"}`` (``"h0"`` is
    None when h0 is None).
    """
    a, h, grad_h = np.asarray(a), np.asarray(h), np.asarray(grad_h)
    a_full = broadcast_time_major(a, h)[0][0]                          # a as (T, ...) of h
    a_next = np.concatenate([a_full[1:], np.zeros_like(a_full[:1])])   # a_{t+1}, 0 after the end
    g = linear_recurrence(a_next[::-1], grad_h[::-1])[::-1]            # g_t = grad_h_t + a_{t+1} g_{t+1}
    prev = np.zeros_like(h[:1]) if h0 is None else np.broadcast_to(h0, h.shape[1:])[None]
    h_prev = np.concatenate([prev, h[:-1]])                            # h_{t−1}
    return {
        "a": _sum_to_time_major(g * h_prev, a.shape),                  # ∂a_t = g_t h_{t−1}
        "b": _sum_to_time_major(g, h.shape if b_shape is None else tuple(b_shape)),
        "h0": None if h0 is None else _sum_to_shape(a_full[0] * g[0], np.shape(h0)),
    }


def linear_recurrence_closed_form(a, b, h0=None):
    """The textbook closed form — kept to show what goes wrong. With P_t = Π_{s≤t} a_s::

        h_t = P_t (h0 + Σ_{s≤t} b_s / P_s)

    is exact in exact arithmetic and parallel (a cumprod and a cumsum). In floating point P_t
    underflows to 0 after a few hundred steps of a < 1 (0.9^7100 < 1e−308, 0.5^150 in float32),
    b_s / P_s then overflows to inf, and h = 0·inf = NaN; long before that, b_s / P_s is huge
    and the sum loses every digit of its small terms. Use :func:`linear_recurrence_log` or a
    scan instead.
    """
    a, b = np.asarray(a), np.asarray(b)
    _check_time_major(a, b)
    (a, b), shape = broadcast_time_major(a, b)
    P = np.cumprod(a, axis=0)
    start = 0.0 if h0 is None else np.asarray(h0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return P * (start + np.cumsum(b / P, axis=0))


def linear_recurrence_log(log_a, b, h0=None):
    """h_t = a_t h_{t−1} + b_t with a = exp(log_a) > 0 given in log space, b of any sign:
    a parallel form (two cumulative sums) that stays finite where the closed form fails.

    With A_t = Σ_{s≤t} log a_s, the closed form h_t = Σ_{s≤t} e^{A_t − A_s} b_s + e^{A_t} h0 is
    evaluated in log space. Split b = b⁺ − b⁻ (b⁺, b⁻ ≥ 0; h0 likewise, as a step s = −1 with
    A_{−1} = 0), then

        log h±_t = A_t + logcumsumexp_s (log b±_s − A_s),     h_t = exp(log h⁺_t) − exp(log h⁻_t).

    −A_s grows linearly with s, but as a logarithm: nothing under- or overflows while h itself
    is finite. The price: where b changes sign and h⁺ ≈ h⁻, the difference loses relative
    precision (the error is ~eps·(h⁺ + h⁻), not eps·abs(h)). ``log_a (T, ...)``, ``b (T, ...)``
    (time first, trailing axes broadcast), ``h0 (...)`` → ``h (T, ...)``.
    """
    log_a, b = np.asarray(log_a), np.asarray(b)
    _check_time_major(log_a, b)
    (log_a, b), shape = broadcast_time_major(log_a, b)
    if h0 is not None:                                           # h0 as the step s = −1
        log_a = np.concatenate([np.zeros_like(log_a[:1]), log_a])
        b = np.concatenate([np.broadcast_to(h0, shape[1:])[None].astype(b.dtype), b])
    A = np.cumsum(log_a, axis=0)                                  # A_t = log Π_{s≤t} a_s
    with np.errstate(divide="ignore"):                            # log 0 = −inf: a missing part
        log_pos, log_neg = np.log(np.maximum(b, 0)), np.log(np.maximum(-b, 0))
        h_pos = np.exp(A + np.logaddexp.accumulate(log_pos - A, axis=0))
        h_neg = np.exp(A + np.logaddexp.accumulate(log_neg - A, axis=0))
    h = h_pos - h_neg
    return h[1:] if h0 is not None else h


# Old names, kept only while minirec.hmm moves to the new ones (removed in the same change).
log_matmul = log_matmul_combine
max_plus = max_plus_combine
