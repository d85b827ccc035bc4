"""The HMM exercise checks (lesson 10) discriminate: right answers pass, blanks are "not
attempted", every typical wrong answer (tests/mutants/hmm_*.py) is rejected with its diagnosis
and the right tensors marked, and every suspect is reachable."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.check import hmm as checks
from minirec.check.hmm import (
    check_compare_emissions,
    check_forward_step,
    check_log_matmul_combine,
    check_viterbi_backtrack,
)
from minirec.hmm import reference as hmm
from minirec.scan import reference as scan

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import hmm_compare_emissions as m_emissions
    from tests.mutants import hmm_forward_step as m_forward
    from tests.mutants import hmm_log_matmul_combine as m_log_matmul
    from tests.mutants import hmm_viterbi_backtrack as m_backtrack
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import hmm_compare_emissions as m_emissions
    from mutants import hmm_forward_step as m_forward
    from mutants import hmm_log_matmul_combine as m_log_matmul
    from mutants import hmm_viterbi_backtrack as m_backtrack

EXERCISES = {
    "forward_step": (check_forward_step, hmm.forward_step, m_forward,
                     checks._forward_step_exercise),
    "viterbi_backtrack": (check_viterbi_backtrack, hmm.viterbi_backtrack, m_backtrack,
                          checks._backtrack_exercise),
    "log_matmul_combine": (check_log_matmul_combine, scan.log_matmul, m_log_matmul,
                           checks._log_matmul_exercise),
    "compare_emissions": (check_compare_emissions, hmm.compare_emissions, m_emissions,
                          checks._emissions_exercise),
}


class TestHmmChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES
    MIN_MUTANTS = 4


def _deepest(case):
    first = case.args[0]
    return first[np.isfinite(first)].max()


def test_underflow_cases_have_finite_answers():
    """The −800 cases exist to catch a missing max shift: the right answer must be finite
    there, and the naive one not."""
    for ex in (checks._forward_step_exercise(), checks._log_matmul_exercise()):
        deep = [c for c in ex.cases if _deepest(c) < -700]
        assert deep and all(np.isfinite(ex.reference(*c.args)).all() for c in deep)
        naive = [s for s in ex.suspects if s.message.startswith("exp underflows")][0]
        assert any(not np.isfinite(naive.fn(*c.args)).all() for c in deep)


def test_forward_step_has_sequences_far_apart_in_one_call():
    """One sequence near −800 beside one near 0: one max shift for the batch underflows."""
    cases = checks._forward_step_exercise().cases
    assert any(np.isfinite(c.args[0]).all() and np.ptp(c.args[0].max(axis=1)) > 745
               for c in cases)


def test_guard_cases_sum_only_minus_inf_somewhere():
    """A case where every term of some sum is −inf: the answer is −inf there (never NaN), and
    the max shift without its −inf guard raises (the check runs with invalid values raised)."""
    for ex in (checks._forward_step_exercise(), checks._log_matmul_exercise()):
        results = [ex.reference(*c.args) for c in ex.cases]
        assert not any(np.isnan(r).any() for r in results)
        guarded = [c for c, r in zip(ex.cases, results, strict=True) if np.isneginf(r).any()]
        unguarded = ex.suspects[-1]
        assert unguarded.message == checks.NEG_INF_GUARD
        for case in guarded:
            with pytest.raises(FloatingPointError):
                unguarded.fn(*case.args)
        assert guarded


def test_forward_step_chains_to_the_forward_pass():
    rng = np.random.default_rng(4)
    pi, A, B = hmm.random_model(3, 4, rng=rng)
    _, obs = hmm.sample(pi, A, B, 6, rng=rng, n=2)
    log_alpha = np.log(pi) + np.log(B[:, obs[:, 0]].T)
    for t in range(1, 6):
        log_alpha = m_forward.correct(log_alpha, np.log(A), np.log(B[:, obs[:, t]].T))
    np.testing.assert_allclose(log_alpha, hmm.forward_log(pi, A, B, obs)[:, -1], rtol=1e-12)
