"""The neural-memory exercise checks (lesson 09) discriminate: right answers pass, blanks are
"not attempted", every typical wrong answer (tests/mutants/memory_*.py) is rejected with its
diagnosis and the right tensors marked, and every suspect is reachable."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.check import memory as checks
from minirec.check.memory import (
    check_delta_rule_write,
    check_linear_memory_grad,
    check_titans_chunk,
    check_titans_step,
)
from minirec.memory import reference as ref

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import memory_delta_rule_write as m_delta
    from tests.mutants import memory_linear_memory_grad as m_grad
    from tests.mutants import memory_titans_chunk as m_chunk
    from tests.mutants import memory_titans_step as m_step
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import memory_delta_rule_write as m_delta
    from mutants import memory_linear_memory_grad as m_grad
    from mutants import memory_titans_chunk as m_chunk
    from mutants import memory_titans_step as m_step

EXERCISES = {
    "delta_rule_write": (check_delta_rule_write, checks._delta_reference, m_delta,
                         checks._delta_exercise),
    "linear_memory_grad": (check_linear_memory_grad, ref.linear_memory_grad, m_grad,
                           checks._grad_exercise),
    "titans_step": (check_titans_step, checks._step_reference, m_step, checks._step_exercise),
    "titans_chunk": (check_titans_chunk, checks._chunk_reference, m_chunk,
                     checks._chunk_exercise),
}


class TestMemoryChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES
    MIN_MUTANTS = 4


@pytest.mark.parametrize("name", list(EXERCISES))
def test_cases_are_float64_and_rectangular(name):
    ex = EXERCISES[name][3]()
    assert any(c.sizes["d_v"] != c.sizes["d_k"] for c in ex.cases)
    for case in ex.cases:
        for arr in case.args:
            if isinstance(arr, np.ndarray):
                assert arr.dtype == np.float64


def test_chunk_cases_include_one_token_and_long_chunks():
    assert {c.sizes["C"] for c in checks._chunk_exercise().cases} >= {1, 5, 7}


def test_per_token_suspect_differs_from_the_chunked_reference_on_long_chunks():
    """Otherwise the chunk exercise would not test the chunked rule at all."""
    case = next(c for c in checks._chunk_exercise().cases if c.sizes["C"] == 7)
    y_chunk = checks._chunk_reference(*case.args)[0]
    y_token = checks._chunk_loop(*case.args, kind="per_token")[0]
    assert np.abs(y_chunk - y_token).max() > 1e-3


def test_step_reference_is_one_token_of_the_sequence_reference():
    case = checks._step_exercise().cases[0]
    M, S, k, v, eta, theta, alpha = case.args
    G = 2 * np.outer(M @ k - v, k)
    S_new = eta * S - theta * G
    np.testing.assert_allclose(checks._step_reference(*case.args)[1], S_new, rtol=1e-13)
    np.testing.assert_allclose(checks._step_reference(*case.args)[0], (1 - alpha) * M + S_new,
                               rtol=1e-13)
