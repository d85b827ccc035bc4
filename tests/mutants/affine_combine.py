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
