"""The scan exercise checks (lesson 03) discriminate: right answers pass, blanks are "not
attempted", every typical wrong answer (tests/mutants/) is rejected with its diagnosis and the
right tensors marked, and every suspect is reachable."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.check import (
    check_affine_combine,
    check_blelloch_down_sweep,
    check_chunk_fixup,
    check_linear_recurrence_backward,
)
from minirec.check import scan as checks
from minirec.scan import reference as ref

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import affine_combine as m_affine
    from tests.mutants import blelloch_down_sweep as m_down
    from tests.mutants import chunk_fixup as m_fixup
    from tests.mutants import linear_recurrence_backward as m_backward
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import affine_combine as m_affine
    from mutants import blelloch_down_sweep as m_down
    from mutants import chunk_fixup as m_fixup
    from mutants import linear_recurrence_backward as m_backward

EXERCISES = {
    "blelloch_down_sweep": (check_blelloch_down_sweep, checks._down_sweep_reference, m_down,
                            checks._down_sweep_exercise),
    "affine_combine": (check_affine_combine, ref.affine_combine, m_affine, checks._affine_exercise),
    "linear_recurrence_backward": (check_linear_recurrence_backward,
                                   checks._backward_reference, m_backward,
                                   checks._backward_exercise),
    "chunk_fixup": (check_chunk_fixup, checks._fixup_reference, m_fixup,
                    checks._fixup_exercise),
}


class TestScanChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES


@pytest.mark.parametrize("name", list(EXERCISES))
def test_cases_are_float64_at_odd_lengths(name):
    ex = EXERCISES[name][3]()
    assert {1, 5, 7, 13} <= {c.sizes["T"] for c in ex.cases}

    def arrays(value):
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, (tuple, list)):
            for v in value:
                yield from arrays(v)

    for case in ex.cases:
        for arr in arrays(case.args):
            assert arr.dtype == np.float64


def test_down_sweep_cases_use_a_non_commutative_combine():
    x = np.random.default_rng(0).normal(size=(2, 2, 2))
    assert not np.allclose(checks.matmul_combine(x[:1], x[1:]), checks.matmul_combine(x[1:], x[:1]))
    ex = checks._down_sweep_exercise()
    assert any(c.args[0] is checks.matmul_combine and c.sizes["T"] == 13 for c in ex.cases)


@pytest.mark.parametrize("T,C", [(1, 2), (5, 2), (7, 3), (13, 4), (12, 4), (9, 16)])
def test_fixup_reference_is_the_whole_scan(T, C):
    rng = np.random.default_rng(T * 100 + C)
    a, b = rng.uniform(-1, 1, size=(2, T, 3))
    fixed = checks._fixup_reference(*checks._local_scan(a, b, C), C)
    whole = ref.sequential(ref.affine_combine, (a, b))
    np.testing.assert_allclose(fixed[0], whole[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fixed[1], whole[1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fixed[1], ref.linear_recurrence(a, b), rtol=1e-12, atol=1e-14)


def test_down_sweep_reference_is_the_sequential_scan():
    for case in checks._down_sweep_exercise().cases:
        combine, levels, identity = case.args
        np.testing.assert_allclose(checks._down_sweep_reference(*case.args),
                                   ref.sequential(combine, levels[0]), rtol=1e-12, atol=1e-14)
