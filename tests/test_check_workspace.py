"""The workspace exercise checks (lesson 08) discriminate: right answers pass, blanks are "not
attempted", every typical wrong answer (tests/mutants/workspace_*.py) is rejected with its
diagnosis and the right tensors marked, and every suspect is reachable."""

from __future__ import annotations

import numpy as np

from minirec.check import workspace as checks
from minirec.check.workspace import (
    check_hand_set_program,
    check_increment_module,
    check_workspace_write,
)
from minirec.workspace import reference as ref

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import workspace_hand_set_program as m_program
    from tests.mutants import workspace_increment as m_increment
    from tests.mutants import workspace_write as m_write
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import workspace_hand_set_program as m_program
    from mutants import workspace_increment as m_increment
    from mutants import workspace_write as m_write

EXERCISES = {
    "increment_module": (check_increment_module, ref.increment_module, m_increment,
                         checks._increment_exercise),
    "workspace_write": (check_workspace_write, ref.workspace_write, m_write,
                        checks._write_exercise),
    "hand_set_program": (check_hand_set_program, ref.hand_set_program, m_program,
                         checks._program_exercise),
}


class TestWorkspaceChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES
    MIN_MUTANTS = 5
    MIN_SUSPECTS = 5


def test_cases_cover_a_single_example_and_several():
    for name in EXERCISES:
        sizes = {c.sizes["B"] for c in EXERCISES[name][3]().cases}
        assert 1 in sizes and max(sizes) >= 4, (name, sizes)


def test_program_cases_hold_the_extreme_addends():
    for case in checks._program_exercise().cases:
        b, K = case.args
        assert b.max() == K - 2
        assert len(b) == 1 or b.min() == 0


def test_the_longest_program_is_not_example_0s():
    """So that example 0's program given to all and the longest given to all differ."""
    assert any(len(b) > 1 and b[0] != b.max()
               for b, _K in (c.args for c in checks._program_exercise().cases))


def test_the_program_placed_last_still_adds():
    """The suspect that puts the increments after the outputs is rejected for its order, not
    for its sum: the diagnosis says it still adds, and it does."""
    suspect = checks._program_suspects()[-1]
    b, K = np.array([0, 3, 5]), 7
    a = np.array([4, 9, 6])
    out = ref.run_program(ref.one_hot(a, 10), suspect.fn(b, K))
    np.testing.assert_array_equal(ref.read_out(out[-1]), (a + b) % 10)
    assert "still adds" in suspect.message
