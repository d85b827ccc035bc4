"""Wrong answers to ``chunk_fixup(local_a, local_b, C) -> (a, b)``: the affine scan inside every
chunk of C steps (state 0 at each chunk start) → the scan of the whole sequence."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(local_a, local_b, C):
    raise NotImplementedError


def correct(local_a, local_b, C):
    # the carries first (an exclusive scan of the chunk totals), then every chunk at once
    T = len(local_a)
    A, B = np.ones_like(local_a[0]), np.zeros_like(local_b[0])
    carry_a, carry_b = np.empty_like(local_a), np.empty_like(local_b)
    for s in range(0, T, C):
        carry_a[s:s + C], carry_b[s:s + C] = A, B
        end = min(s + C, T) - 1
        A, B = A * local_a[end], local_a[end] * B + local_b[end]
    return carry_a * local_a, local_a * carry_b + local_b


@mutant(MUTANTS, "carry applied to the first chunk too", wrong={"a", "b"})
def loop_starts_at_chunk_zero(local_a, local_b, C):
    a, b = local_a.copy(), local_b.copy()
    for s in range(0, len(a), C):
        ca, cb = a[s - 1].copy(), b[s - 1].copy()
        a[s:s + C] = ca * local_a[s:s + C]
        b[s:s + C] = local_a[s:s + C] * cb + local_b[s:s + C]
    return a, b


@mutant(MUTANTS, "off-by-one carry (the carry of chunk k applied to chunk k+1)", wrong={"a", "b"})
def carry_updated_after_use(local_a, local_b, C):
    a, b = local_a.copy(), local_b.copy()
    A, B = np.ones_like(a[0]), np.zeros_like(b[0])
    for s in range(C, len(a), C):
        a[s:s + C] = A * local_a[s:s + C]
        b[s:s + C] = local_a[s:s + C] * B + local_b[s:s + C]
        A, B = A * local_a[s - 1], local_a[s - 1] * B + local_b[s - 1]   # one chunk late
    return a, b


@mutant(MUTANTS, "carry not composed with the decay (added to b only)", wrong={"b"})
def carry_added_to_b(local_a, local_b, C):
    a, b = local_a.copy(), local_b.copy()
    for s in range(C, len(a), C):
        a[s:s + C] = a[s - 1] * local_a[s:s + C]
        b[s:s + C] = b[s - 1] + local_b[s:s + C]
    return a, b


@mutant(MUTANTS, "carry not accumulated", wrong={"a", "b"})
def previous_chunk_only(local_a, local_b, C):
    a, b = local_a.copy(), local_b.copy()
    for s in range(C, len(a), C):
        a[s:s + C] = local_a[s - 1] * local_a[s:s + C]
        b[s:s + C] = local_a[s:s + C] * local_b[s - 1] + local_b[s:s + C]
    return a, b


# --- engine diagnoses (issue 11): wrong answers the check engine names by itself ----------------

def affine_combine(left, right):
    """The learner's earlier exercise, wrong (map 2 applied first): chunk_fixup below calls it
    as the notebook's global, and the check must blame it."""
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, a1 * b2 + b1


@mutant(MUTANTS, "the first wrong value came from your affine_combine (called by chunk_fixup)",
        wrong={"b"})
def calls_a_wrong_combine(local_a, local_b, C):
    a, b = local_a.copy(), local_b.copy()
    for s in range(C, len(a), C):
        a[s:s + C], b[s:s + C] = affine_combine((a[s - 1], b[s - 1]),
                                                (local_a[s:s + C], local_b[s:s + C]))
    return a, b


def fixup_with_the_right_combine(local_a, local_b, C):
    """Right, calling a (right) affine_combine of the learner's own."""
    a, b = local_a.copy(), local_b.copy()
    for s in range(C, len(a), C):
        carry = (a[s - 1], b[s - 1])
        a[s:s + C], b[s:s + C] = _right_combine(carry, (local_a[s:s + C], local_b[s:s + C]))
    return a, b


def _right_combine(left, right):
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, a2 * b1 + b2


ALTERNATIVES = [fixup_with_the_right_combine]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "the chunk's slice is off by one", wrong={"a", "b"})
def chunks_shifted_by_one_step(local_a, local_b, C):
    # every chunk boundary read at start − 1 but the chunk taken one step late
    a, b = local_a.copy(), local_b.copy()
    T = len(a)
    for k in range(1, (T + C - 1) // C):
        start = k * C
        A, B = a[start - 1].copy(), b[start - 1].copy()
        for t in range(start + 1, min(start + C + 1, T)):
            a[t] = A * local_a[t]
            b[t] = local_a[t] * B + local_b[t]
    return a, b


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "b was decayed by the already fixed a", wrong={"b"})
def b_decayed_by_the_fixed_a(local_a, local_b, C):
    a, b = local_a.copy(), local_b.copy()
    for start in range(C, len(a), C):
        end = start + C
        a[start:end] = a[start - 1] * a[start:end]
        b[start:end] = a[start:end] * b[start - 1] + b[start:end]
    return a, b


@mutant(MUTANTS, "right at steps 0 … C − 1 and wrong from step C on", wrong={"a", "b"})
def carry_read_at_the_chunk_start(local_a, local_b, C):
    # the carry read at the chunk's own first step (start) instead of the step before it
    a, b = local_a.copy(), local_b.copy()
    for start in range(C, len(a), C):
        end = start + C
        carry_a, carry_b = a[start].copy(), b[start].copy()
        a[start:end] = carry_a * local_a[start:end]
        b[start:end] = local_a[start:end] * carry_b + local_b[start:end]
    return a, b


@mutant(MUTANTS, "right up to a step and wrong at every step from it to the end",
        wrong={"a", "b"})
def last_chunk_never_fixed(local_a, local_b, C):
    # the loop over chunk starts stops one chunk short
    a, b = local_a.copy(), local_b.copy()
    starts = range(C, len(a), C)
    for start in list(starts)[:-1]:
        end = start + C
        b[start:end] = local_a[start:end] * b[start - 1] + local_b[start:end]
        a[start:end] = a[start - 1] * local_a[start:end]
    return a, b
