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
    a = np.exp(mA - m)
    b = np.exp(mB - m)
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
