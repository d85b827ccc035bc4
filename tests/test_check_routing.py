"""The routing exercise checks (lesson 07) discriminate: right answers pass, blanks are "not
attempted", every typical wrong answer (tests/mutants/routing_*.py) is rejected with its
diagnosis and the right tensors marked, and every suspect is reachable."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.check import routing as checks
from minirec.check.routing import (
    check_gru_router_step,
    check_load_balance_loss,
    check_top_k_route,
)
from minirec.routing import reference as ref

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import routing_gru_router_step as m_router
    from tests.mutants import routing_load_balance_loss as m_balance
    from tests.mutants import routing_top_k_route as m_top_k
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import routing_gru_router_step as m_router
    from mutants import routing_load_balance_loss as m_balance
    from mutants import routing_top_k_route as m_top_k

EXERCISES = {
    "top_k_route": (check_top_k_route, checks._top_k_reference, m_top_k,
                    checks._top_k_exercise),
    "load_balance_loss": (check_load_balance_loss, ref.load_balance_loss, m_balance,
                          checks._balance_exercise),
    "gru_router_step": (check_gru_router_step, ref.gru_router_step, m_router,
                        checks._router_exercise),
}


class TestRoutingChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES
    MIN_MUTANTS = 5


@pytest.mark.parametrize("name", list(EXERCISES))
def test_cases_are_float64(name):
    for case in EXERCISES[name][3]().cases:
        for arg in case.args:
            if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
                assert arg.dtype == np.float64


def test_top_k_cases_include_k_equal_e_and_overflowing_logits():
    cases = checks._top_k_exercise().cases
    assert any(c.sizes["k"] == c.sizes["E"] for c in cases)
    assert any(np.abs(c.args[0]).max() > 710 for c in cases)       # exp would overflow float64
    assert all(np.ptp(c.args[0], axis=1).max() < 700 for c in cases)  # p never underflows to 0
    assert all(c.sizes["N"] != c.sizes["E"] for c in cases)        # a wrong softmax axis shows


def test_top_k_cases_put_rows_far_apart_in_one_call():
    """Rows near 800 beside rows near 0: one max shift for the whole batch makes 0 / 0."""
    cases = checks._top_k_exercise().cases
    assert any(np.ptp(c.args[0].max(axis=1)) > 745 for c in cases)


def test_many_experts_case_is_left_unsorted_by_argpartition():
    """NumPy's argpartition happens to return the k best sorted for a few experts; the case
    with E = 1000 must really leave them unsorted, in every row, however it is called."""
    many = [c for c in checks._top_k_exercise().cases if c.sizes["E"] >= 1000]
    assert many
    for case in many:
        logits, k = case.args
        for idx in (np.argpartition(-logits, k - 1, axis=1)[:, :k],
                    np.argpartition(logits, -k, axis=1)[:, -k:]):
            steps = np.diff(np.take_along_axis(logits, idx, axis=1), axis=1)
            assert not ((steps <= 0).all(axis=1) | (steps >= 0).all(axis=1)).any()


def test_balance_cases_have_k_above_one():
    assert any(c.sizes["k"] > 1 for c in checks._balance_exercise().cases)


def test_router_cases_carry_a_state_and_start_from_zero():
    cases = checks._router_exercise().cases
    assert any(np.any(c.args[1] != 0) for c in cases)
    assert any(np.all(c.args[1] == 0) for c in cases)
    assert all(len({c.sizes["d"], c.sizes["H_r"], c.sizes["E"]}) == 3 for c in cases)
