"""Wrong answers to ``blelloch_down_sweep(combine, levels, identity) -> y (T, ...)``.

The learner is given the up-sweep's levels (``levels[0]`` the leaves, ``levels[k+1][j] =
levels[k][2j] ⊕ levels[k][2j+1]``, an unpaired last node moving up unchanged, ``levels[-1]`` the
root) and walks down, handing every node the combine of the leaves to its left.
"""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(combine, levels, identity):
    raise NotImplementedError


def correct(combine, levels, identity):
    # the other route: y_t = before(t + 1) for t < T − 1, and the root last (no final combine)
    before = identity
    for level in levels[-2::-1]:
        L = len(level)
        out = [None] * L
        for j in range(L):
            parent = before[j // 2:j // 2 + 1]
            out[j] = parent if j % 2 == 0 else combine(parent, level[j - 1:j])
        before = np.concatenate(out)
    return np.concatenate([before[1:], levels[-1]])


def _walk(combine, levels, identity, right_of):
    before = identity
    for level in reversed(levels[:-1]):
        L = level.shape[0]
        new = np.empty_like(level)
        new[0::2] = before[:(L + 1) // 2]
        new[1::2] = right_of(before[:L // 2], level, L)
        before = new
    return before


@mutant(MUTANTS, "exclusive instead of inclusive", wrong={"y"})
def returns_the_exclusive_scan(combine, levels, identity):
    return _walk(combine, levels, identity,
                 lambda parent, level, L: combine(parent, level[0:L - 1:2]))


@mutant(MUTANTS, "off by one position", wrong={"y"})
def right_child_adds_itself(combine, levels, identity):
    before = _walk(combine, levels, identity,
                   lambda parent, level, L: combine(parent, level[1::2]))
    return combine(before, levels[0])


@mutant(MUTANTS, "left and right children swapped", wrong={"y"})
def children_swapped(combine, levels, identity):
    before = identity
    for level in reversed(levels[:-1]):
        L = level.shape[0]
        new = np.empty_like(level)
        pairs = combine(before[:L // 2], level[0:L - 1:2])
        new[0::2] = np.concatenate([pairs, before[L // 2:(L + 1) // 2]])
        new[1::2] = before[:L // 2]
        before = new
    return combine(before, levels[0])


@mutant(MUTANTS, "operands of ⊕ in the wrong order", wrong={"y"})
def sibling_combined_before_parent(combine, levels, identity):
    before = _walk(combine, levels, identity,
                   lambda parent, level, L: combine(level[0:L - 1:2], parent))
    return combine(before, levels[0])


# --- right answers written differently (issue 11) ----------------------------------------

def down_sweep_recursive(combine, levels, identity):
    """Right: the down-sweep as a recursion from the root, each node handed what lies left of it."""
    def descend(depth, j, before):
        if depth == 0:
            return [combine(before, levels[0][j:j + 1])]
        level = levels[depth - 1]
        out = descend(depth - 1, 2 * j, before)
        if 2 * j + 1 < len(level):
            out += descend(depth - 1, 2 * j + 1, combine(before, level[2 * j:2 * j + 1]))
        return out
    return np.concatenate(descend(len(levels) - 1, 0, identity))


ALTERNATIVES = [down_sweep_recursive]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

def _prefixes(combine, levels, identity, right_child):
    """The exclusive prefixes of the leaves, going down level by level; ``right_child(parent,
    sibling)`` is what a right child receives."""
    before = identity
    for depth in range(len(levels) - 2, -1, -1):
        level = levels[depth]
        children = []
        for j in range(len(level)):
            parent = before[j // 2:j // 2 + 1]
            children.append(parent if j % 2 == 0 else right_child(parent, level[j - 1:j]))
        before = np.concatenate(children)
    return before


@mutant(MUTANTS, "operands of the final ⊕ in the wrong order", wrong={"y"})
def leaf_combined_first(combine, levels, identity):
    before = _prefixes(combine, levels, identity, combine)
    return combine(levels[0], before)                    # x_t ⊕ prefix instead of prefix ⊕ x_t


@mutant(MUTANTS, "the right child got its parent's prefix alone", wrong={"y"})
def right_child_inherits_only(combine, levels, identity):
    before = _prefixes(combine, levels, identity, lambda parent, sibling: parent)
    return combine(before, levels[0])
