"""Wrong answers to ``log_matmul_combine(L1, L2) -> L``: L[i, j] = log Σ_k exp(L1[i, k] + L2[k, j])."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(L1, L2):
    raise NotImplementedError


def correct(L1, L2):
    s = L1[..., :, :, None] + L2[..., None, :, :]        # s[..., i, k, j]
    top = s.max(axis=-2, keepdims=True)
    top = np.where(np.isinf(top), 0.0, top)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(s - top).sum(axis=-2, keepdims=True)) + top)[..., 0, :]


@mutant(MUTANTS, "operands in the wrong order", wrong={"L"})
def later_first(L1, L2):
    return correct(L2, L1)


@mutant(MUTANTS, "max instead of logsumexp", wrong={"L"})
def tropical(L1, L2):
    return (L1[..., :, :, None] + L2[..., None, :, :]).max(axis=-2)


@mutant(MUTANTS, "element-wise instead of a matrix product", wrong={"L"})
def hadamard(L1, L2):
    return L1 + L2


@mutant(MUTANTS, "exp underflows: log(exp(L1) @ exp(L2))", wrong={"L"})
def unshifted(L1, L2):
    with np.errstate(divide="ignore"):
        return np.log(np.exp(L1) @ np.exp(L2))


@mutant(MUTANTS, "L2 used transposed", wrong={"L"})
def rows_of_L2(L1, L2):
    return correct(L1, np.swapaxes(L2, -1, -2))
