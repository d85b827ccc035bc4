"""Wrong answers to ``affine_combine((a1, b1), (a2, b2)) -> (a, b)``: apply h ↦ a1 h + b1, then
h ↦ a2 h + b2."""

from . import mutant

MUTANTS: list = []


def blank(left, right):
    raise NotImplementedError


def correct(left, right):
    a1, b1 = left
    a2, b2 = right
    h_coef = a2 * a1              # a2 (a1 h + b1) + b2, expanded
    return h_coef, b2 + b1 * a2


@mutant(MUTANTS, "order swapped (right ∘ left)", wrong={"b"})
def second_map_applied_first(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a1 * b2 + b1


@mutant(MUTANTS, "not associative: a2·b1 + b1", wrong={"b"})
def b2_forgotten(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b1


@mutant(MUTANTS, "b terms added without the decay", wrong={"b"})
def plain_sum_of_b(left, right):
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, b1 + b2


@mutant(MUTANTS, "b2 decayed too", wrong={"b"})
def decay_on_everything(left, right):
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, a2 * (b1 + b2)


@mutant(MUTANTS, "the pair is returned in the wrong order", wrong={"a", "b"})
def b_first(left, right):
    (a1, b1), (a2, b2) = left, right
    return a2 * b1 + b2, a1 * a2


# --- more wrong answers (issue 11) and right answers written differently -----------------

@mutant(MUTANTS, "decays added", wrong={"a"})
def decays_summed(left, right):
    (a1, b1), (a2, b2) = left, right
    return a1 + a2, a2 * b1 + b2


@mutant(MUTANTS, "b1 decayed by its own a1", wrong={"b"})
def own_decay_on_b1(left, right):
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, a1 * b1 + b2


@mutant(MUTANTS, "the decay multiplies the wrong b", wrong={"b"})
def decay_on_the_later_b(left, right):
    (a1, b1), (a2, b2) = left, right
    return a1 * a2, b1 + a2 * b2


def affine_by_matrices(left, right):
    """Right: each map as the 2 × 2 matrix [[a, b], [0, 1]], composed by a matrix product."""
    import numpy as np
    (a1, b1), (a2, b2) = left, right
    m1 = np.stack([np.stack([a1, b1], -1), np.stack([0 * a1, 0 * a1 + 1], -1)], -2)
    m2 = np.stack([np.stack([a2, b2], -1), np.stack([0 * a2, 0 * a2 + 1], -1)], -2)
    m = m2 @ m1                                                 # map 1 first, then map 2
    return m[..., 0, 0], m[..., 0, 1]


def affine_with_torch(left, right):
    """Right, with torch tensors, converted back to NumPy."""
    import torch
    (a1, b1), (a2, b2) = [[torch.from_numpy(x) for x in pair] for pair in (left, right)]
    return (a1 * a2).numpy(), torch.addcmul(b2, a2, b1).numpy()


ALTERNATIVES = [affine_by_matrices, affine_with_torch]
