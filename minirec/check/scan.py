r"""Checks for the exercises on scans (lesson 03: the loop, parallel scans, linear recurrences).

Each ``check_*`` function takes the learner's function, runs it and the reference
(:mod:`minirec.scan.reference`) on a few float64 cases, prints ``✓ <name>: passed on N cases``
when they agree, and otherwise raises :class:`~minirec.check.CheckFailed` with a per-tensor
table and a diagnosis.

The sequence lengths are T = 1 (where most mistakes vanish), 5, 7 and 13 (odd: a parallel scan
must handle a level with an unpaired node, a chunked scan a short last chunk) and 8 (a power of
two, where an "even lengths only" tree still works). Combines are non-commutative wherever the
order of the operands matters (2 × 2 matrix products, the affine map), so that an operand swap
cannot hide.

Exercise signatures::

    blelloch_down_sweep(combine, levels, identity) -> y (T, ...)        the inclusive scan
    affine_combine((a1, b1), (a2, b2)) -> (a, b)                          h ↦ a2 (a1 h + b1) + b2
    linear_recurrence_backward(a, h, h0, grad_h) -> {"a", "b", "h0"}      ∂L/∂a, ∂L/∂b, ∂L/∂h0
    chunk_fixup(local_a, local_b, C) -> (a, b)                           the affine scan, fixed up

The *suspects* below are written from the equations, one mistake each, and named in the
learner's terms. A learner's result that equals a suspect's on every case gets its message.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from minirec.check._core import (
    Case,
    Exercise,
    Suspect,
    dict_output,
    one_output,
    pair_output,
    run_check,
)
from minirec.scan import reference as ref

__all__ = [
    "check_blelloch_down_sweep", "check_affine_combine", "check_linear_recurrence_backward",
    "check_chunk_fixup", "SCAN_LENGTHS", "matmul_combine",
]

#: The sequence lengths every scan exercise is checked on.
SCAN_LENGTHS = (1, 5, 7, 13, 8)


def matmul_combine(left, right):
    """x ⊕ y = x @ y for elements ``(T, ..., K, K)``: associative, not commutative."""
    return left @ right


matmul_combine.identity = lambda x: np.broadcast_to(np.eye(x.shape[-1]), x[:1].shape).copy()


# ---------------------------------------------------------------------------------------------
# Blelloch's down-sweep
# ---------------------------------------------------------------------------------------------

def _down_sweep_variant(combine, levels, identity, *, right="left_sibling", swap_children=False,
                        swap_operands=False, result="inclusive"):
    """The down-sweep written level by level, with one mistake switched on.

    ``before`` holds, for every node of the current level, the combine of all leaves to its left
    (the identity for node 0). Going down: left child 2j gets before(j), right child 2j+1 gets
    before(j) ⊕ node(2j). ``right="itself"`` uses node(2j+1) there, ``right="parent"`` gives
    it before(j) alone (no sibling); ``swap_children`` gives the left child the right child's
    value and vice versa; ``swap_operands`` computes node(2j) ⊕ before(j);
    ``result="exclusive"`` returns before itself, ``result="swapped"`` x_t ⊕ before(t).
    """
    before = identity
    for level in reversed(levels[:-1]):
        L = level.shape[0]
        n_left, n_right = (L + 1) // 2, L // 2
        sib = level[1:L:2] if right == "itself" else level[0:L - 1:2]
        parent = before[:n_right]
        rights = combine(sib, parent) if swap_operands else combine(parent, sib)
        if right == "parent":
            rights = parent
        lefts = before[:n_left]
        new = np.empty(np.broadcast_shapes(level.shape, before[:1].shape), dtype=level.dtype)
        if swap_children:
            new[0::2] = np.concatenate([rights, before[n_right:n_left]])
            new[1::2] = lefts[:n_right]
        else:
            new[0::2] = lefts
            new[1::2] = rights
        before = new
    if result == "exclusive":
        return before
    if result == "swapped":
        return combine(levels[0], before)
    return combine(before, levels[0])


def _down_sweep_suspect(message, **mistake):
    return Suspect(message, lambda combine, levels, identity:
                   _down_sweep_variant(combine, levels, identity, **mistake))


def _down_sweep_suspects():
    return (
        _down_sweep_suspect("exclusive instead of inclusive: the down-sweep leaves at leaf t the "
                            "combine of the leaves BEFORE t (x_0 ⊕ … ⊕ x_{t−1}, the identity at "
                            "t = 0); the inclusive scan is that ⊕ x_t", result="exclusive"),
        _down_sweep_suspect("off by one position: the right child 2j+1 must get before(j) ⊕ "
                            "node(2j), its LEFT sibling; you combined node(2j+1), the right "
                            "child itself, so it counts itself twice", right="itself"),
        _down_sweep_suspect("left and right children swapped: the left child 2j has the same "
                            "leaves to its left as its parent, before(2j) = before(j); the right "
                            "child adds its left sibling, before(2j+1) = before(j) ⊕ node(2j)",
                            swap_children=True),
        _down_sweep_suspect("operands of ⊕ in the wrong order: left is earlier, so the right "
                            "child gets before(j) ⊕ node(2j), not node(2j) ⊕ before(j) (a sum "
                            "does not mind; a matrix product does)", swap_operands=True),
        _down_sweep_suspect("the right child got its parent's prefix alone: before(2j+1) = "
                            "before(j) ⊕ node(2j), the parent's prefix combined with the LEFT "
                            "sibling; without it every prefix stays the identity",
                            right="parent"),
        _down_sweep_suspect("operands of the final ⊕ in the wrong order: the leaf's prefix is "
                            "earlier, so y_t = before(t) ⊕ x_t, not x_t ⊕ before(t) (a sum does "
                            "not mind; a matrix product does)", result="swapped"),
    )


def _down_sweep_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for T in SCAN_LENGTHS:
        x = rng.normal(scale=0.8, size=(T, 2, 2))            # 2 × 2 matrices: order matters
        cases.append(Case((matmul_combine, ref._up_sweep(matmul_combine, x),
                           matmul_combine.identity(x)), {"T": T, "K": 2}))
    for T, D in ((6, 3), (7, 1)):                            # sums of vectors: any trailing shape
        x = rng.normal(size=(T, D))
        cases.append(Case((ref.add_combine, ref._up_sweep(ref.add_combine, x), ref.add_combine.identity(x)),
                          {"T": T, "D": D}))
    return tuple(cases)


def _down_sweep_reference(combine, levels, identity):
    return ref.blelloch(combine, levels[0])


@cache
def _down_sweep_exercise():
    return Exercise(
        name="blelloch_down_sweep", reference=_down_sweep_reference,
        cases=_down_sweep_cases(seed=1990), suspects=_down_sweep_suspects(),
        outputs=one_output("y"), shapes={"y": ("T", "...")},
        arg_names=("combine", "levels", "identity"),
        shape_hints={"y": "Return one element per leaf: the scan has the length of levels[0]"},
    )


def check_blelloch_down_sweep(blelloch_down_sweep) -> None:
    """Check ``blelloch_down_sweep(combine, levels, identity) -> y (T, ...)``: from the
    up-sweep's ``levels`` (``levels[0]`` the leaves x, ``levels[-1]`` the root), the inclusive
    scan y_t = x_0 ⊕ … ⊕ x_t; ``identity (1, ...)`` is the element e with e ⊕ x = x."""
    run_check(_down_sweep_exercise(), blelloch_down_sweep)


# ---------------------------------------------------------------------------------------------
# The affine combine
# ---------------------------------------------------------------------------------------------

def _affine_variant(left, right, *, kind="right"):
    a1, b1 = left
    a2, b2 = right
    b = {"right": a2 * b1 + b2,
         "swapped": a1 * b2 + b1,
         "no_b2": a2 * b1 + b1,
         "no_decay": b1 + b2,
         "decay_on_b2": b1 + a2 * b2,
         "own_decay": a1 * b1 + b2,
         "both_decayed": a2 * (b1 + b2)}[kind]
    return a1 * a2, b


def _affine_suspect(message, **mistake):
    return Suspect(message, lambda left, right: _affine_variant(left, right, **mistake))


def _affine_suspects():
    return (
        _affine_suspect("order swapped (right ∘ left): you applied map 2 first and then map 1, "
                        "b = a1·b2 + b1; left is the EARLIER step, so map 1 acts first and "
                        "a2 (a1 h + b1) + b2 gives b = a2·b1 + b2", kind="swapped"),
        _affine_suspect("not associative: a2·b1 + b1 — b2 is missing (b1 appears twice); "
                        "a2 (a1 h + b1) + b2 gives b = a2·b1 + b2", kind="no_b2"),
        _affine_suspect("b terms added without the decay: b1 must pass through map 2 before b2 "
                        "is added, b = a2·b1 + b2, not b1 + b2", kind="no_decay"),
        _affine_suspect("the decay multiplies the wrong b: map 2 decays what came before it, "
                        "b = a2·b1 + b2, not b1 + a2·b2", kind="decay_on_b2"),
        _affine_suspect("b1 decayed by its own a1: map 1 already contains a1 (it is a1 h + b1); "
                        "what map 2 does to it is multiply by a2, b = a2·b1 + b2",
                        kind="own_decay"),
        _affine_suspect("b2 decayed too: map 2 is a2 h + b2, its own input b2 is added after the "
                        "decay, b = a2·b1 + b2, not a2·(b1 + b2)", kind="both_decayed"),
        Suspect("the pair is returned in the wrong order: return (a, b), the decay first",
                lambda left, right: _affine_variant(left, right)[::-1]),
        Suspect("decays added: composing h ↦ a1 h and h ↦ a2 h multiplies them, a = a1·a2",
                lambda left, right: (left[0] + right[0], right[0] * left[1] + right[1])),
    )


def _affine_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for T, D in ((1, 1), (5, 3), (7, 2), (13, 4)):
        a1, a2 = rng.uniform(-1.2, 1.2, size=(2, T, D))
        b1, b2 = rng.normal(size=(2, T, D))
        cases.append(Case(((a1, b1), (a2, b2)), {"T": T, "D": D}))
    return tuple(cases)


@cache
def _affine_exercise():
    return Exercise(
        name="affine_combine", reference=ref.affine_combine, cases=_affine_cases(seed=2405),
        suspects=_affine_suspects(), outputs=pair_output("affine_combine", "a", "b"),
        shapes={"a": ("T", "D"), "b": ("T", "D")}, arg_names=("left", "right"),
    )


def check_affine_combine(affine_combine) -> None:
    """Check ``affine_combine((a1, b1), (a2, b2)) -> (a, b)``: the map h ↦ a h + b that applies
    h ↦ a1 h + b1 (the earlier step) and then h ↦ a2 h + b2. Arrays ``(T, D)``."""
    run_check(_affine_exercise(), affine_combine)


# ---------------------------------------------------------------------------------------------
# The backward pass of the linear recurrence
# ---------------------------------------------------------------------------------------------

BACKWARD_KEYS = ("a", "b", "h0")


def _backward_variant(a, h, h0, grad_h, *, carry=True, decay="next", h_for_a="prev",
                      h0_decay=True, direction="backward"):
    """g_t = grad_h_t + a_{t+1} g_{t+1} and the three gradients, with one mistake switched on."""
    T = a.shape[0]
    g = np.zeros_like(grad_h)
    steps = range(T - 1, -1, -1) if direction == "backward" else range(T)
    for t in steps:
        g[t] = grad_h[t]
        if carry and direction == "backward" and t + 1 < T:
            g[t] = g[t] + (a[t + 1] if decay == "next" else a[t]) * g[t + 1]
        if carry and direction == "forward" and t > 0:
            g[t] = g[t] + a[t] * g[t - 1]
    h_prev = np.concatenate([h0[None], h[:-1]]) if h_for_a == "prev" else h
    return {"a": g * h_prev, "b": g.copy(), "h0": a[0] * g[0] if h0_decay else g[0].copy()}


def _backward_suspect(message, **mistake):
    return Suspect(message, lambda a, h, h0, grad_h:
                   _backward_variant(a, h, h0, grad_h, **mistake))


def _backward_suspects():
    return (
        _backward_suspect("gradient not carried backwards in time (g_t = grad_h_t only): h_t "
                          "also reaches the loss through h_{t+1} = a_{t+1} h_t + b_{t+1}, so "
                          "g_t = grad_h_t + a_{t+1} g_{t+1}", carry=False),
        _backward_suspect("decay taken at the wrong step (a_t instead of a_{t+1}): h_t enters "
                          "the NEXT step, h_{t+1} = a_{t+1} h_t + b_{t+1}, so "
                          "g_t = grad_h_t + a_{t+1} g_{t+1}", decay="this"),
        _backward_suspect("∂a uses h_t instead of h_{t−1}: a_t multiplies the state it "
                          "receives, h_t = a_t h_{t−1} + b_t, so ∂L/∂a_t = g_t h_{t−1} "
                          "(h0 at t = 0)", h_for_a="this"),
        _backward_suspect("∂h0 misses the decay a_0: h_0 = a_0 h0 + b_0, so ∂L/∂h0 = a_0 g_0",
                          h0_decay=False),
        _backward_suspect("the loop runs forwards in time: g_t needs g_{t+1}, so walk "
                          "t = T − 1 down to 0", direction="forward"),
    )


def _backward_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for T, D in ((1, 1), (5, 3), (7, 2), (13, 4), (8, 1)):
        a = rng.uniform(-1.1, 1.1, size=(T, D))
        b = rng.normal(size=(T, D))
        h0 = rng.normal(size=(D,))
        h = ref.linear_recurrence(a, b, h0)
        grad_h = rng.normal(size=(T, D))
        cases.append(Case((a, h, h0, grad_h), {"T": T, "D": D}))
    return tuple(cases)


def _backward_reference(a, h, h0, grad_h):
    return ref.linear_recurrence_backward(a, h, h0, grad_h)


@cache
def _backward_exercise():
    return Exercise(
        name="linear_recurrence_backward", reference=_backward_reference,
        cases=_backward_cases(seed=1805), suspects=_backward_suspects(),
        outputs=dict_output(BACKWARD_KEYS),
        shapes={"a": ("T", "D"), "b": ("T", "D"), "h0": ("D",)},
        arg_names=("a", "h", "h0", "grad_h"),
        shape_hints={"h0": "h0 is one state (D,): its gradient is a_0 g_0, not a sequence"},
    )


def check_linear_recurrence_backward(linear_recurrence_backward) -> None:
    """Check ``linear_recurrence_backward(a (T, D), h (T, D), h0 (D,), grad_h (T, D)) -> dict``
    with the gradients ``"a"``, ``"b"`` (T, D) and ``"h0"`` (D,) of L through
    h_t = a_t h_{t−1} + b_t, given grad_h = ∂L/∂h."""
    run_check(_backward_exercise(), linear_recurrence_backward)


# ---------------------------------------------------------------------------------------------
# The chunked scan's carry fix-up
# ---------------------------------------------------------------------------------------------

def _chunk_starts(T, C):
    return list(range(0, T, C))


def _fixup_variant(local_a, local_b, C, *, first=False, shift=0, decay=True, accumulate=True,
                   order="carry_first", offset=0, b_with="local"):
    """Chunk k (steps kC … kC + C − 1) composed with carry(k) = the combine of every earlier
    chunk, with one mistake switched on: ``first`` also fixes chunk 0 (with the carry
    ``a[-1], b[-1]`` that Python's index −1 wraps to); ``shift=1`` gives chunk k the carry of
    chunk k − 1; ``decay=False`` adds carry_b to b without local_a; ``accumulate=False`` uses
    the previous chunk's LOCAL total as the carry; ``order="local_first"`` composes local ∘ carry;
    ``offset=1`` fixes steps kC + 1 … kC + C (the chunk's slice one step late) with the carry
    read at kC − 1; ``b_with="fixed"`` decays carry_b by the already fixed a (A·a_i) instead of
    the local a_i.
    """
    T = local_a.shape[0]
    a, b = local_a.copy(), local_b.copy()
    if shift:                                                      # the true carries, one late
        true_a, true_b = _fixup_reference(local_a, local_b, C)
    for k, s in enumerate(_chunk_starts(T, C)):
        if k == 0 and not first:
            continue
        src = s - 1                                                # end of the chunk before
        if shift:
            if k == 1:
                continue                                           # identity carry
            ca, cb = true_a[s - C - 1], true_b[s - C - 1]          # carry(k − 1)
        elif accumulate:
            ca, cb = a[src].copy(), b[src].copy()                  # src = −1 wraps when k = 0
        else:
            ca, cb = local_a[src], local_b[src]
        span = slice(s + offset, s + C + offset)
        la, lb = local_a[span], local_b[span]
        if order == "local_first":
            a[span], b[span] = ca * la, ca * lb + cb
        else:
            a[span] = ca * la
            decay_by = a[span] if b_with == "fixed" else la
            b[span] = decay_by * cb + lb if decay else cb + lb
    return a, b


def _fixup_suspect(message, **mistake):
    return Suspect(message, lambda local_a, local_b, C:
                   _fixup_variant(local_a, local_b, C, **mistake))


def _fixup_suspects():
    return (
        _fixup_suspect("carry applied to the first chunk too: nothing comes before chunk 0, its "
                       "local scan is already the scan (with start 0, index start − 1 = −1 "
                       "wraps around to the END of the sequence)", first=True),
        _fixup_suspect("off-by-one carry (the carry of chunk k applied to chunk k+1): chunk k "
                       "must be composed with the combine of chunks 0 … k − 1, i.e. the fixed "
                       "result just before it, at kC − 1", shift=1),
        _fixup_suspect("carry not composed with the decay (added to b only): the carry (A, B) "
                       "is the map of everything before, so position i of the chunk gets "
                       "(A·a_i, a_i·B + b_i) — B decays through the chunk's own a", decay=False),
        _fixup_suspect("carry not accumulated: chunk k needs the combine of ALL earlier "
                       "chunks — the already FIXED value at kC − 1 — not only the local total "
                       "of chunk k − 1", accumulate=False),
        _fixup_suspect("composed in the wrong order: the carry is earlier, so it acts first, "
                       "carry ⊕ local = (A·a_i, a_i·B + b_i), not local ∘ carry",
                       order="local_first"),
        _fixup_suspect("the chunk's slice is off by one: chunk k is steps kC … kC + C − 1, "
                       "[start:start + C]; you fixed start + 1 … start + C, so the chunk's first "
                       "step keeps its local value and the next chunk's first step gets this "
                       "chunk's carry", offset=1),
        _fixup_suspect("b was decayed by the already fixed a: position i of a chunk becomes "
                       "(A·a_i, a_i·B + b_i) with the LOCAL a_i; you multiplied B by the new "
                       "A·a_i (fix b before a, or keep the local a)", b_with="fixed"),
    )


def _local_scan(a, b, C):
    """The affine scan inside every chunk of C steps (the last may be shorter), state 0 at each
    chunk start."""
    la, lb = np.empty_like(a), np.empty_like(b)
    for s in _chunk_starts(a.shape[0], C):
        la[s:s + C], lb[s:s + C] = ref.sequential(ref.affine_combine, (a[s:s + C], b[s:s + C]))
    return la, lb


def _fixup_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for T, C, D in ((1, 2, 1), (5, 2, 3), (7, 3, 2), (13, 4, 2), (13, 3, 1), (8, 4, 2)):
        a = rng.uniform(-1.1, 1.1, size=(T, D))
        b = rng.normal(size=(T, D))
        la, lb = _local_scan(a, b, C)
        cases.append(Case((la, lb, C), {"T": T, "C": C, "D": D}))
    return tuple(cases)


def _fixup_reference(local_a, local_b, C):
    """Scan the chunk totals (exclusive), then compose chunk k with its carry."""
    starts = _chunk_starts(local_a.shape[0], C)
    a, b = local_a.copy(), local_b.copy()
    if len(starts) == 1:
        return a, b
    ends = [s - 1 for s in starts[1:]]                                  # last step of chunks 0 … n−2
    carry_a, carry_b = ref.sequential(ref.affine_combine, (local_a[ends], local_b[ends]))
    for k, s in enumerate(starts[1:]):
        a[s:s + C], b[s:s + C] = ref.affine_combine((carry_a[k], carry_b[k]),
                                            (local_a[s:s + C], local_b[s:s + C]))
    return a, b


@cache
def _fixup_exercise():
    return Exercise(
        name="chunk_fixup", reference=_fixup_reference, cases=_fixup_cases(seed=1986),
        suspects=_fixup_suspects(), outputs=pair_output("chunk_fixup", "a", "b"),
        shapes={"a": ("T", "D"), "b": ("T", "D")}, arg_names=("local_a", "local_b", "C"),
        calls={"affine_combine": ref.affine_combine},
    )


def check_chunk_fixup(chunk_fixup) -> None:
    """Check ``chunk_fixup(local_a (T, D), local_b (T, D), C) -> (a, b)``: from the affine scan
    inside every chunk of C steps (state 0 at each chunk start), the scan of the whole sequence
    a_t = Π_{s≤t} a_s, b_t = h_t (h_{−1} = 0)."""
    run_check(_fixup_exercise(), chunk_fixup)
