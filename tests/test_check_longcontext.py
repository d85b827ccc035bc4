"""The lesson-13 exercise checks discriminate: right answers pass, blanks are "not attempted",
and every typical wrong answer (tests/mutants/longcontext_*) is rejected with the right diagnosis
and the right tensors marked in the table."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.check import longcontext as checks
from minirec.check.longcontext import (
    check_prefix_linear_attention,
    check_recall_accuracy,
    check_selective_scan_step,
)
from minirec.ssm import reference as ssm
from minirec.tasks import IGNORE

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import longcontext_prefix_linear_attention as m_prefix
    from tests.mutants import longcontext_recall_accuracy as m_recall
    from tests.mutants import longcontext_selective_scan_step as m_ssm
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import longcontext_prefix_linear_attention as m_prefix
    from mutants import longcontext_recall_accuracy as m_recall
    from mutants import longcontext_selective_scan_step as m_ssm


EXERCISES = {
    "selective_scan_step": (check_selective_scan_step, ssm.selective_scan_step, m_ssm,
                            checks._selective_scan_step_exercise),
    "prefix_linear_attention": (check_prefix_linear_attention, checks._prefix_reference,
                                m_prefix, checks._prefix_linear_attention_exercise),
    "recall_accuracy": (check_recall_accuracy, checks.recall_accuracy, m_recall,
                        checks._recall_accuracy_exercise),
}


class TestLongContextChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES
    MIN_MUTANTS = 5


@pytest.mark.parametrize("name", list(EXERCISES))
def test_cases_have_a_square_and_a_distinct_size(name):
    """One case where a transposition runs (equal sizes), one where it fails on shapes."""
    sizes = [c.sizes for c in EXERCISES[name][3]().cases]
    pair = {"selective_scan_step": ("D", "N"), "prefix_linear_attention": ("d_k", "d_v"),
            "recall_accuracy": ("B", "V")}[name]
    assert any(s[pair[0]] == s[pair[1]] > 1 for s in sizes)
    assert any(s[pair[0]] != s[pair[1]] for s in sizes)


def test_ssm_cases_have_a_stable_negative_A_and_positive_steps():
    for case in checks._selective_scan_step_exercise().cases:
        _h, _x, delta, A, _B, _C = case.args
        assert (A < 0).all() and (delta > 0).all()
        assert (delta[..., None] * A < -1).any()          # where 1 + ΔA and exp(ΔA) differ in sign


def test_recall_cases_score_neither_none_nor_all():
    for case in checks._recall_accuracy_exercise().cases[1:]:
        logits, targets = case.args
        acc = checks.recall_accuracy(logits, targets)
        assert 0.2 < acc < 0.9
        assert (targets == IGNORE).any() and (targets[-1] != IGNORE).all()


def test_recall_accuracy_by_hand():
    logits = np.zeros((3, 1, 4))
    logits[0, 0, 2] = logits[1, 0, 1] = logits[2, 0, 3] = 1.0
    targets = np.array([[2], [IGNORE], [0]])
    assert checks.recall_accuracy(logits, targets) == 0.5
