"""The lesson-13 exercise checks discriminate: right answers pass, blanks are "not attempted",
and every typical wrong answer (tests/mutants/longctx_*) is rejected with the right diagnosis
and the right tensors marked in the table."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.check import CheckFailed
from minirec.check import long_context as checks
from minirec.check.long_context import (
    check_prefix_linear_attention,
    check_recall_accuracy,
    check_selective_scan_step,
)
from minirec.ssm import reference as ssm
from minirec.tasks import IGNORE

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import assert_blank_not_attempted, assert_rejected_with_diagnosis
    from tests.mutants import longctx_prefix_linear_attention as m_prefix
    from tests.mutants import longctx_recall_accuracy as m_recall
    from tests.mutants import longctx_selective_scan_step as m_ssm
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import assert_blank_not_attempted, assert_rejected_with_diagnosis
    from mutants import longctx_prefix_linear_attention as m_prefix
    from mutants import longctx_recall_accuracy as m_recall
    from mutants import longctx_selective_scan_step as m_ssm


EXERCISES = {
    "selective_scan_step": (check_selective_scan_step, ssm.selective_scan_step, m_ssm,
                            checks._selective_scan_step_exercise),
    "prefix_linear_attention": (check_prefix_linear_attention, checks._prefix_reference,
                                m_prefix, checks._prefix_linear_attention_exercise),
    "recall_accuracy": (check_recall_accuracy, checks.recall_accuracy, m_recall,
                        checks._recall_accuracy_exercise),
}
MUTANTS = [(name, m) for name, spec in EXERCISES.items() for m in spec[2].MUTANTS]
SUSPECTS = [(name, i) for name, spec in EXERCISES.items() for i in range(len(spec[3]().suspects))]


def test_mutant_library_is_large_enough():
    assert all(len(spec[2].MUTANTS) >= 5 for spec in EXERCISES.values())


@pytest.mark.parametrize("name", list(EXERCISES))
def test_reference_passes(name, capsys):
    check, reference, *_ = EXERCISES[name]
    assert check(reference) is None
    assert capsys.readouterr().out == f"✓ {name}: passed on 4 cases\n"


@pytest.mark.parametrize("name", list(EXERCISES))
def test_independent_correct_solution_passes(name, capsys):
    check, _ref, module, _ex = EXERCISES[name]
    check(module.correct)
    assert capsys.readouterr().out.startswith(f"✓ {name}: passed")


@pytest.mark.parametrize("name", list(EXERCISES))
def test_blank_is_not_attempted(name):
    check, _ref, module, _ex = EXERCISES[name]
    assert_blank_not_attempted(check, module.blank)


@pytest.mark.parametrize("name,mutant", MUTANTS, ids=[f"{n}-{m.name}" for n, m in MUTANTS])
def test_mutant_is_rejected_with_its_diagnosis(name, mutant):
    assert_rejected_with_diagnosis(EXERCISES[name][0], name, mutant)


@pytest.mark.parametrize("name,index", SUSPECTS, ids=[f"{n}-{i}" for n, i in SUSPECTS])
def test_every_suspect_diagnoses_itself(name, index):
    """Each suspect is wrong, and reachable: no earlier suspect shadows it."""
    check, _ref, _m, exercise = EXERCISES[name]
    suspect = exercise().suspects[index]
    with pytest.raises(CheckFailed) as info:
        check(suspect.fn)
    assert info.value.diagnosis.endswith(suspect.message), suspect.message


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
