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


# --- the −inf guard (issue 11): a row of L1 and a column of L2 that are −inf everywhere -----

@mutant(MUTANTS, "the max shift has no −inf guard")
def shift_without_guard(L1, L2):
    r = L1.max(axis=-1, keepdims=True)                      # −inf on a row of −inf
    c = L2.max(axis=-2, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(L1 - r) @ np.exp(L2 - c)) + r + c


@mutant(MUTANTS, "operands in the wrong order", wrong={"L"})
def later_first_by_matmul(L1, L2):
    r = np.where(np.isfinite(L2.max(axis=-1, keepdims=True)), L2.max(axis=-1, keepdims=True), 0)
    c = np.where(np.isfinite(L1.max(axis=-2, keepdims=True)), L1.max(axis=-2, keepdims=True), 0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(L2 - r) @ np.exp(L1 - c)) + r + c


@mutant(MUTANTS, "only the row maxima were added back", wrong={"L"})
def column_shift_not_added_back(L1, L2):
    r = np.max(L1, axis=2, keepdims=True)
    c = np.max(L2, axis=1, keepdims=True)
    r, c = np.where(np.isinf(r), 0.0, r), np.where(np.isinf(c), 0.0, c)
    with np.errstate(divide="ignore"):
        return np.log(np.matmul(np.exp(L1 - r), np.exp(L2 - c))) + r


def log_matmul_with_scipy(L1, L2):
    """Right, by scipy's logsumexp over the middle index."""
    from scipy.special import logsumexp
    return logsumexp(L1[..., :, :, None] + L2[..., None, :, :], axis=-2)


def log_matmul_in_a_loop(L1, L2):
    """Right, entry by entry with np.logaddexp.reduce."""
    T, K, _ = L1.shape
    out = np.empty_like(L1)
    for t in range(T):
        for i in range(K):
            for j in range(K):
                out[t, i, j] = np.logaddexp.reduce(L1[t, i, :] + L2[t, :, j])
    return out


def log_matmul_with_torch(L1, L2):
    """Right, with torch.logsumexp, converted back to NumPy."""
    import torch
    s = torch.from_numpy(L1)[..., :, :, None] + torch.from_numpy(L2)[..., None, :, :]
    return torch.logsumexp(s, dim=-2).numpy()


ALTERNATIVES = [log_matmul_with_scipy, log_matmul_in_a_loop, log_matmul_with_torch]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

def _shifted_product(L1, L2, r, c):
    with np.errstate(divide="ignore"):
        return np.log(np.matmul(np.exp(L1 - r), np.exp(L2 - c))) + r + c


@mutant(MUTANTS, "one number for a whole operand", wrong={"L"})
def one_shift_each(L1, L2):
    return _shifted_product(L1, L2, L1.max(), L2.max())


@mutant(MUTANTS, "one number per matrix", wrong={"L"})
def one_shift_per_matrix(L1, L2):
    r = L1.reshape(len(L1), -1).max(axis=1)[:, None, None]
    c = L2.reshape(len(L2), -1).max(axis=1)[:, None, None]
    return _shifted_product(L1, L2, r, c)


@mutant(MUTANTS, "the shifts are taken along the wrong axes", wrong={"L"})
def shifts_on_the_middle_index(L1, L2):
    r = np.max(L1, axis=1, keepdims=True)                  # L1's column maxima
    c = np.max(L2, axis=2, keepdims=True)                  # L2's row maxima
    r, c = np.nan_to_num(r, neginf=0.0), np.nan_to_num(c, neginf=0.0)
    return _shifted_product(L1, L2, r, c)


@mutant(MUTANTS, "NaN where the expected value is −inf", wrong={"L"})
def unguarded_shifts_with_warnings_off(L1, L2):
    r, c = L1.max(axis=-1, keepdims=True), L2.max(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore"):
        return _shifted_product(L1, L2, r, c)


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "L1 is shifted along the wrong axis", wrong={"L"})
def first_operand_shifted_by_columns(L1, L2):
    # L1's shift taken over its rows (axis −2) instead of over k; both guarded
    r = L1.max(axis=-2, keepdims=True)
    c = L2.max(axis=-2, keepdims=True)
    r = np.where(np.isfinite(r), r, 0.0)
    c = np.where(np.isfinite(c), c, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(L1 - r) @ np.exp(L2 - c)) + r + c


@mutant(MUTANTS, "L2 is shifted along the wrong axis", wrong={"L"})
def second_operand_shifted_by_rows(L1, L2):
    # L2's shift taken over its columns (axis −1) instead of over k; both guarded
    r = L1.max(axis=-1, keepdims=True)
    c = L2.max(axis=-1, keepdims=True)
    r = np.where(np.isfinite(r), r, 0.0)
    c = np.where(np.isfinite(c), c, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(L1 - r) @ np.exp(L2 - c)) + r + c
