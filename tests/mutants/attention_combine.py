"""Wrong answers to the (m, u, w) combine of Aaren:
``attention_combine((mA, uA, wA), (mB, uB, wB)) -> (m, u, w)``, m, u (B,), w (B, d_v)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(left, right):
    raise NotImplementedError


def correct(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.where(mA > mB, mA, mB)
    shift = np.where(m == -np.inf, 0.0, m)              # two empty prefixes: e^{−inf} = 0
    a = np.exp(mA - shift)
    b = np.exp(mB - shift)
    return m, a * uA + b * uB, a[:, None] * wA + b[:, None] * wB


@mutant(MUTANTS, "no max shift: exp overflows for large scores", wrong={"u", "w"})
def raw_exponentials(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    eA, eB = np.exp(mA), np.exp(mB)
    return np.maximum(mA, mB), uA * eA + uB * eB, wA * eA[:, None] + wB * eB[:, None]


@mutant(MUTANTS, "no max shift: exp overflows for large scores")
def shift_after_summing(left, right):
    # right on small scores, but e^{mA} is formed before the max is subtracted
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.maximum(mA, mB)
    U = uA * np.exp(mA) + uB * np.exp(mB)
    W = wA * np.exp(mA)[:, None] + wB * np.exp(mB)[:, None]
    return m, U / np.exp(m), W / np.exp(m)[:, None]


@mutant(MUTANTS, "rescaled by the wrong side's max", wrong={"u", "w"})
def factors_swapped(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.maximum(mA, mB)
    return (m, uA * np.exp(mB - m) + uB * np.exp(mA - m),
            wA * np.exp(mB - m)[:, None] + wB * np.exp(mA - m)[:, None])


@mutant(MUTANTS, "m taken as a sum instead of a max", wrong={"m", "u", "w"})
def m_summed(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    m = mA + mB
    sA, sB = np.exp(mA - m), np.exp(mB - m)
    return m, uA * sA + uB * sB, wA * sA[:, None] + wB * sB[:, None]


@mutant(MUTANTS, "w not rescaled", wrong={"w"})
def only_u_rescaled(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.maximum(mA, mB)
    return m, uA * np.exp(mA - m) + uB * np.exp(mB - m), wA + wB


@mutant(MUTANTS, "broadcast along the wrong axis")
def factor_not_expanded(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.maximum(mA, mB)
    sA, sB = np.exp(mA - m), np.exp(mB - m)
    return m, uA * sA + uB * sB, wA * sA + wB * sB


# --- the −inf guard (issue 11), more wrong answers and right answers written differently ----

@mutant(MUTANTS, "no −inf guard: when both sides are the empty prefix")
def shift_without_guard(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.maximum(mA, mB)
    fA, fB = np.exp(mA - m), np.exp(mB - m)               # NaN where mA = mB = −inf
    return m, uA * fA + uB * fB, wA * fA[..., None] + wB * fB[..., None]


@mutant(MUTANTS, "u and w are added without rescaling", wrong={"u", "w"})
def plain_sums(left, right):
    (mA, uA, wA), (mB, uB, wB) = left, right
    return np.maximum(mA, mB), uA + uB, wA + wB


@mutant(MUTANTS, "shifted by the smaller max", wrong={"m", "u", "w"})
def shifted_by_the_smaller(left, right):
    (mA, uA, wA), (mB, uB, wB) = left, right
    m = np.minimum(mA, mB)
    shift = np.where(np.isfinite(m), m, 0.0)
    fA, fB = np.exp(mA - shift), np.exp(mB - shift)
    return m, uA * fA + uB * fB, wA * fA[:, None] + wB * fB[:, None]


def combine_row_by_row(left, right):
    """Right, one row at a time with Python's math (the empty prefix handled by hand)."""
    import math
    (mA, uA, wA), (mB, uB, wB) = left, right
    m, u, w = np.empty_like(mA), np.empty_like(uA), np.empty_like(wA)
    for b in range(len(mA)):
        m[b] = max(mA[b], mB[b])
        if m[b] == -math.inf:
            u[b], w[b] = 0.0, 0.0
            continue
        fA, fB = math.exp(mA[b] - m[b]), math.exp(mB[b] - m[b])
        u[b], w[b] = uA[b] * fA + uB[b] * fB, wA[b] * fA + wB[b] * fB
    return m, u, w


def combine_with_torch(left, right):
    """Right, with torch tensors (torch.where for the guard), converted back to NumPy."""
    import torch
    (mA, uA, wA), (mB, uB, wB) = [[torch.from_numpy(x) for x in side] for side in (left, right)]
    m = torch.maximum(mA, mB)
    shift = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    fA, fB = torch.exp(mA - shift), torch.exp(mB - shift)
    return (m.numpy(), (uA * fA + uB * fB).numpy(),
            (wA * fA[:, None] + wB * fB[:, None]).numpy())


ALTERNATIVES = [combine_row_by_row, combine_with_torch]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "only the right side was rescaled", wrong={"u", "w"})
def left_assumed_to_hold_the_max(left, right):
    # the left prefix is taken as it is, as if its max were always the larger one
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.fmax(mA, mB)
    g = np.exp(mB - np.where(np.isneginf(m), 0.0, m))
    return m, uA + g * uB, wA + g[:, None] * wB


@mutant(MUTANTS, "the exponent's sign is flipped", wrong={"u", "w"})
def factors_upside_down(left, right):
    mA, uA, wA = left
    mB, uB, wB = right
    m = np.fmax(mA, mB)
    top = np.where(np.isneginf(m), 0.0, m)
    fA, fB = np.exp(top - mA), np.exp(top - mB)           # e^{m − mA}: ≥ 1, inf for an empty side
    return m, fA * uA + fB * uB, fA[:, None] * wA + fB[:, None] * wB


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "one shift for the whole batch", wrong={"m", "u", "w"})
def batch_max_as_the_shift(left, right):
    # every row rescaled by the largest finite max of the batch, which is also returned as m
    (mA, uA, wA), (mB, uB, wB) = left, right
    both = np.maximum(mA, mB)
    top = both[np.isfinite(both)].max()
    fA, fB = np.exp(mA - top), np.exp(mB - top)
    return np.full_like(both, top), uA * fA + uB * fB, wA * fA[:, None] + wB * fB[:, None]


@mutant(MUTANTS, "where the expected value is −inf", wrong={"m"})
def shift_returned_as_the_max(left, right):
    # the guarded shift (0 where both sides are empty) returned in place of m
    (mA, uA, wA), (mB, uB, wB) = left, right
    shift = np.maximum(mA, mB)
    shift[~np.isfinite(shift)] = 0.0
    fA, fB = np.exp(mA - shift), np.exp(mB - shift)
    return shift, uA * fA + uB * fB, wA * fA[:, None] + wB * fB[:, None]
