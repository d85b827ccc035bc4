"""The attention exercise checks discriminate: right answers pass, blanks are "not attempted",
and every typical wrong answer (tests/mutants/) is rejected with the right diagnosis and the
right tensors marked in the table."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.attention import reference as ref
from minirec.check import attention as checks
from minirec.check import (
    check_aaren_stream_step,
    check_attention_combine,
    check_linear_attention_recurrent,
    run_check,
)
from minirec.scan.reference import softmax_attention_combine as combine_reference

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import aaren_stream_step as m_stream
    from tests.mutants import attention_combine as m_combine
    from tests.mutants import linear_attention_recurrent as m_la
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import aaren_stream_step as m_stream
    from mutants import attention_combine as m_combine
    from mutants import linear_attention_recurrent as m_la


def _la_reference(q, k, v, state):
    phi = ref.elu_plus_one
    return ref.linear_attention_recurrent(phi(q), phi(k), v, state=state)


EXERCISES = {
    "attention_combine": (check_attention_combine, combine_reference, m_combine,
                          checks._attention_combine_exercise),
    "aaren_stream_step": (check_aaren_stream_step, ref.aaren_stream_step, m_stream,
                          checks._aaren_stream_step_exercise),
    "linear_attention_recurrent": (check_linear_attention_recurrent, _la_reference, m_la,
                                   checks._linear_attention_recurrent_exercise),
}


class TestAttentionChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES


@pytest.mark.parametrize("name", list(EXERCISES))
def test_cases_are_float64_with_square_and_distinct_sizes(name):
    ex = EXERCISES[name][3]()
    sizes = [c.sizes for c in ex.cases]
    first = "B" if "B" in sizes[0] else "d_k"
    assert any(s[first] == s["d_v"] > 1 for s in sizes)
    assert any(s[first] != s["d_v"] for s in sizes)
    for case in ex.cases:
        arrays = [a for arg in case.args
                  for a in (arg if isinstance(arg, tuple) else (arg,))]
        assert all(a.dtype == np.float64 for a in arrays)


def test_large_scores_overflow_without_the_max_shift():
    """The last combine case has scores whose exponential is inf in float64."""
    left, right = checks._attention_combine_exercise().cases[-1].args
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(left[0])).all()
    m, u, w = combine_reference(left, right)
    assert np.isfinite(u).all() and np.isfinite(w).all()


def test_stream_cases_contain_a_growing_and_a_shrinking_max():
    for case in checks._aaren_stream_step_exercise().cases[1:]:
        (m, _u, _w), s_t, _v = case.args
        assert (s_t > m).any() and (s_t < m).any()


def test_learner_floating_point_state_is_restored():
    before = np.geterr()
    check_attention_combine(combine_reference)
    assert np.geterr() == before


def test_checks_need_a_function():
    ex = checks._attention_combine_exercise()
    with pytest.raises(TypeError, match="needs your function"):
        run_check(ex, None)
