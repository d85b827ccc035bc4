"""The exercise checks discriminate: right answers pass, blanks are "not attempted", and every
typical wrong answer (tests/mutants/) is rejected with the right diagnosis and the right
tensors marked in the table."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minirec.cells import reference as ref
from minirec.check import (
    ATOL,
    RTOL,
    Case,
    CheckFailed,
    Exercise,
    NotAttempted,
    Suspect,
    check_gru_step,
    check_gru_step_backward,
    check_lstm_step,
    check_recoding_step,
    check_rnn_bptt,
    cmp,
    compare,
    diagnose,
    first_bad_index,
    run_check,
)
from minirec.check import cells as checks

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import CheckContract
    from tests.mutants import gru_step as m_gru
    from tests.mutants import gru_step_backward as m_gru_back
    from tests.mutants import lstm_step as m_lstm
    from tests.mutants import recoding_step as m_recoding
    from tests.mutants import rnn_bptt as m_bptt
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import CheckContract
    from mutants import gru_step as m_gru
    from mutants import gru_step_backward as m_gru_back
    from mutants import lstm_step as m_lstm
    from mutants import recoding_step as m_recoding
    from mutants import rnn_bptt as m_bptt

EXERCISES = {
    "gru_step": (check_gru_step, ref.gru_step, m_gru, checks._gru_step_exercise),
    "gru_step_backward": (check_gru_step_backward, ref.gru_step_backward, m_gru_back,
                          checks._gru_step_backward_exercise),
    "rnn_bptt": (check_rnn_bptt, ref.rnn_bptt, m_bptt, checks._rnn_bptt_exercise),
    "lstm_step": (check_lstm_step, ref.lstm_step, m_lstm, checks._lstm_step_exercise),
    "recoding_step": (check_recoding_step, ref.recoding_step, m_recoding,
                      checks._recoding_step_exercise),
}


class TestCellChecks(CheckContract):
    """Right answers pass, blanks are not attempted, every mutant is rejected with its
    diagnosis, every suspect is reachable (tests/mutants/__init__.py)."""

    EXERCISES = EXERCISES


def test_cell_exercises_have_at_least_fifteen_mutants():
    assert sum(len(spec[2].MUTANTS) for spec in EXERCISES.values()) >= 15


def test_not_attempted_is_a_check_failure():
    assert issubclass(NotAttempted, CheckFailed)
    assert issubclass(CheckFailed, AssertionError)


# ---------------------------------------------------------------------------------------------
# Wrong answers are rejected with the right diagnosis and the right tensors
# ---------------------------------------------------------------------------------------------


def test_transposed_gru_weight_message():
    with pytest.raises(CheckFailed) as info:
        check_gru_step(m_gru.whole_weight_not_transposed)
    message = str(info.value)
    assert ("a matrix product has mismatched shapes: a weight looks transposed (weight_ih is "
            "(G*H, D) = (3, 1)") in message
    assert "use x @ W.T" in message
    assert "The case's shapes: x (1, 1), h (1, 1), params['weight_ih'] (3, 1)" in message
    assert isinstance(info.value.__cause__, ValueError)     # the learner's traceback is kept


def test_square_case_catches_transposed_recurrent_weight_by_value():
    with pytest.raises(CheckFailed) as info:
        check_gru_step(m_gru.recurrent_blocks_not_transposed)
    # (1, 1, 1) cannot show it; (3, 5, 7) is the first case where W_hr ≠ W_hrᵀ
    assert info.value.case == "B=3, D=5, H=7"
    row = info.value.comparison.row("h_new")
    expected = ref.gru_step(*checks._gru_step_exercise().cases[1].args)
    assert row.first_bad == first_bad_index(expected, m_gru.recurrent_blocks_not_transposed(
        *checks._gru_step_exercise().cases[1].args))
    assert row.expected_value == pytest.approx(expected[row.first_bad], rel=1e-15)


def test_bptt_without_accumulation_names_weights_only():
    with pytest.raises(CheckFailed) as info:
        check_rnn_bptt(m_bptt.weights_overwritten)
    exc = info.value
    assert exc.diagnosis.startswith("gradient not accumulated across steps")
    assert exc.case.startswith("T=5")        # T = 1 cannot show it
    assert exc.comparison.row("x").ok and exc.comparison.row("h0").ok


def test_other_exceptions_report_type_message_and_shapes():
    def crashes(x, h, params):
        raise KeyError("weight_xh")

    with pytest.raises(CheckFailed) as info:
        check_gru_step(crashes)
    message = str(info.value)
    assert "crashes raised KeyError: 'weight_xh'" in message
    assert "params['bias_hh'] (3,)" in message
    assert info.value.diagnosis is None


def test_an_unknown_mistake_is_not_given_a_false_diagnosis():
    def two_mistakes(x, h, params):            # no bias_hh AND a stray offset
        return m_gru.forgot_recurrent_bias(x, h, params) + 0.01

    with pytest.raises(CheckFailed) as info:
        check_gru_step(two_mistakes)
    assert "no known mistake matches" in info.value.diagnosis


def test_float32_result_gets_a_note():
    with pytest.raises(CheckFailed, match="h_new has dtype float32"):
        check_recoding_step(lambda *a: ref.recoding_step(*a).astype(np.float32))


def test_check_needs_a_function():
    with pytest.raises(TypeError, match="needs your function"):
        check_gru_step(None)


# ---------------------------------------------------------------------------------------------
# The suspects: each is wrong, and each is reachable (no earlier suspect shadows it)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXERCISES))
def test_cases_are_float64_with_a_square_case(name):
    ex = EXERCISES[name][3]()
    sizes = [c.sizes for c in ex.cases]
    assert any(s.get("D", s.get("V")) == s["H"] and s["H"] > 1 for s in sizes)
    assert any(s["B"] > 1 and s["H"] > 1 and s.get("D", 0) != s["H"] for s in sizes)
    for case in ex.cases:
        for a in case.args:
            arrays = a.values() if isinstance(a, dict) else a if isinstance(a, tuple) else [a]
            for arr in arrays:
                if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
                    assert arr.dtype == np.float64


def test_sequence_cases_include_t1_and_t_at_least_3():
    Ts = {c.sizes["T"] for c in checks._rnn_bptt_exercise().cases}
    assert 1 in Ts and max(Ts) >= 3


# ---------------------------------------------------------------------------------------------
# The comparison engine
# ---------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_first_bad_index_is_the_first_true_of_the_error_mask(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))
    expected = data.draw(hnp.arrays(np.float64, shape,
                                    elements=st.floats(-1e3, 1e3, allow_nan=False)))
    noise = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from(
        [0.0, 0.0, 0.0, 1e-13, 1e-6, -0.5, 3.0, np.nan])))
    actual = expected + noise
    mask = ~(np.abs(actual - expected) <= ATOL + RTOL * np.abs(expected))
    result = compare({"y": expected}, {"y": actual})
    if mask.any():
        want = np.unravel_index(np.argmax(mask), shape)
        assert first_bad_index(expected, actual) == tuple(int(i) for i in want)
        assert result.row("y").first_bad == tuple(int(i) for i in want)
        assert not result.ok and result.failed == ["y"]
    else:
        assert first_bad_index(expected, actual) is None
        assert result.ok


def test_compare_table_reports_values_shapes_and_missing():
    e = {"a": np.zeros((2, 3)), "b": np.ones(4), "c": np.eye(2), "d": np.ones(2)}
    got_a = np.zeros((2, 3))
    got_a[1, 2] = 0.25
    result = compare(e, {"a": got_a, "b": np.ones(4), "c": np.eye(3), "d": None})
    assert result.failed == ["a", "c", "d"]
    a = result.row("a")
    assert (a.first_bad, a.max_abs_err, a.got_value, a.expected_value) == ((1, 2), 0.25, 0.25, 0)
    table = str(result)
    assert "a[1, 2]: yours 0.25, expected 0" in table
    assert re.search(r"^c\s+\(2, 2\)\s+\(3, 3\)\s+—\s+shape\s+✗$", table, re.M), table
    assert re.search(r"^d\s+\(2,\)\s+NoneType\s", table, re.M), table
    assert re.search(r"^b\s+\(4,\)\s+\(4,\)\s+0\.0e\+00\s+—\s+ok$", table, re.M), table
    assert compare({"z": np.ones(1)}, {}).row("z").got_kind == "missing"


def test_compare_flags_nan_and_tolerates_rounding():
    e = np.linspace(-1, 1, 7)
    assert compare({"y": e}, {"y": e * (1 + 1e-12)}).ok
    assert not compare({"y": e}, {"y": e + 1e-6}).ok
    bad = e.copy()
    bad[3] = np.nan
    row = compare({"y": e}, {"y": bad}).row("y")
    assert row.first_bad == (3,) and not row.ok


def test_compare_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    e = np.arange(6.0).reshape(2, 3)
    assert compare({"y": e}, {"y": torch.tensor(e)}).ok


def test_cmp_prints_the_table(capsys):
    assert cmp({"y": np.ones(2)}, {"y": np.ones(2)}) is True
    assert cmp({"y": np.ones(2)}, {"y": np.zeros(2)}) is False
    out = capsys.readouterr().out
    assert out.count("tensor") == 2 and "y[0]: yours 0, expected 1" in out


def test_diagnose_picks_the_first_matching_suspect_on_every_case():
    cases = [Case((np.array([0.0, 2.0]),), {"N": 2}), Case((np.array([1.0, 3.0]),), {"N": 2})]
    outputs = lambda result, case: {"y": result}  # noqa: E731
    double = Suspect("doubled", lambda v: 2 * v)
    square = Suspect("squared", lambda v: v**2)   # equals 2v on case 0 only
    learner = [{"y": 2 * c.args[0]} for c in cases]
    assert diagnose([square, double], cases, learner, outputs) is double
    assert diagnose([square, double], cases[:1], learner[:1], outputs) is square
    assert diagnose([square], cases, learner, outputs) is None


def test_run_check_does_not_let_a_function_alter_its_cases():
    ex = Exercise(name="scale", reference=lambda v: 3 * v,
                  cases=(Case((np.array([1.0, 2.0]),), {"N": 2}),),
                  suspects=(), outputs=lambda r, c: {"y": r}, shapes={"y": ("N",)},
                  arg_names=("v",))

    def in_place(v):
        v *= 3
        return v

    with pytest.raises(CheckFailed, match="changed its argument v in place"):
        run_check(ex, in_place)
    np.testing.assert_array_equal(ex.cases[0].args[0], [1.0, 2.0])


def test_output_adapters_name_what_came_back():
    from minirec.check._core import dict_output, one_output, pair_output
    with pytest.raises(CheckFailed, match=r"the result must be one array o; got a tuple of length 2"):
        one_output("o")((np.zeros(2), np.zeros(2)), None)
    with pytest.raises(CheckFailed, match=r"f must return the pair \(a, b\); got one array of shape \(3,\)"):
        pair_output("f", "a", "b")(np.zeros(3), None)
    with pytest.raises(CheckFailed, match=r"the result must be a dict with keys x, h; got list"):
        dict_output(["x", "h"])([1], None)
    out = pair_output("f", "w", "i", integer=("i",))((np.ones(2), np.array([1, 0])), None)
    assert out["i"].dtype == np.float64 and out["w"].dtype == np.float64
    assert dict_output(["x", "h"])({"x": 1}, None) == {"x": 1}        # a missing key stays missing
