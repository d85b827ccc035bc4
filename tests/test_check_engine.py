"""The check engine's diagnoses (minirec/check/_core.py, issue 11): float32 rounding said first,
per-output tolerances, integers compared as integers, matrix products with and without weights,
a dot product where an outer product belongs, the relations the engine finds by itself, the
learner's line when their function raises, IPython's render hook, and the learner's earlier
functions blamed for the first wrong value."""

from __future__ import annotations

import contextlib
import io
import linecache
import sys

import numpy as np
import pytest

from minirec.check import (
    GENERIC,
    Case,
    CheckFailed,
    Exercise,
    NotAttempted,
    check_delta_rule_write,
    check_gru_step,
    check_linear_memory_grad,
    check_recall_accuracy,
    check_titans_step,
    check_viterbi_backtrack,
    run_check,
)
from minirec.check._core import FLOAT32_ROUNDING, OUTER_PRODUCT, one_output, pair_output
from minirec.memory import reference as memory

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.mutants import gru_step as m_gru
    from tests.mutants import hmm_viterbi_backtrack as m_backtrack
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from mutants import gru_step as m_gru
    from mutants import hmm_viterbi_backtrack as m_backtrack


def failure(check, fn) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        check(fn)
    assert not isinstance(info.value, NotAttempted)
    return info.value


def learner_function(source: str, name: str, namespace: dict, filename: str):
    """``name`` defined from ``source`` as a notebook cell is: compiled under ``filename`` with
    its lines registered in linecache (as IPython registers a cell's)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the test's own source
    return namespace[name]


# ---------------------------------------------------------------------------------------------
# A toy exercise: the running sum along time, y = cumsum(x) (T, D)
# ---------------------------------------------------------------------------------------------

def running_sum(x):
    return np.cumsum(x, axis=0)


def toy(sizes=((3, 2), (5, 3), (4, 4)), *, reference=running_sum, outputs=None, shapes=None,
        tolerances=None) -> Exercise:
    rng = np.random.default_rng(0)
    cases = tuple(Case((rng.normal(size=(T, D)),), {"T": T, "D": D}) for T, D in sizes)
    return Exercise(name="running_sum", reference=reference, cases=cases, suspects=(),
                    outputs=outputs or one_output("y"), shapes=shapes or {"y": ("T", "D")},
                    arg_names=("x",), tolerances=tolerances or {})


def toy_diagnosis(fn, ex=None) -> str:
    with pytest.raises(CheckFailed) as info:
        run_check(ex or toy(), fn)
    return info.value.diagnosis


@pytest.mark.parametrize("wrong, phrase", [
    (lambda x: -np.cumsum(x, axis=0), "the sign is flipped: your y is −1 × the expected value"),
    (lambda x: 2 * np.cumsum(x, axis=0), "your y is twice the expected value"),
    (lambda x: 1 - np.cumsum(x, axis=0), "your y is 1 − the expected value: the complement"),
    (lambda x: np.cumsum(x, axis=0) / 2, "your y is half the expected value"),
    (lambda x: 100 * np.cumsum(x, axis=0), "a percentage instead of a fraction"),
    (lambda x: 1.5 * np.cumsum(x, axis=0), "your y is 1.5 × the expected value on every case"),
    (lambda x: np.cumsum(x, axis=0) / len(x), "divided by T on every case"),
    (lambda x: np.cumsum(x, axis=0) * x.shape[1], "multiplied by D on every case"),
    (lambda x: np.cumsum(x, axis=0) + 0.25, "is the expected value + 0.25 everywhere"),
    (lambda x: np.zeros_like(x), "your y is all zeros"),
    (lambda x: x.copy(), "your y is the input x, unchanged"),
    (lambda x: np.concatenate([np.zeros_like(x[:1]), np.cumsum(x, axis=0)[:-1]]),
     "your y at step t is the expected value at step t − 1 (along T), one step late"),
    (lambda x: np.concatenate([np.cumsum(x, axis=0)[1:], np.zeros_like(x[:1])]),
     "step t + 1 (along T), one step early"),
    (lambda x: np.cumsum(x, axis=0)[::-1], "reversed in time"),
    (lambda x: np.floor(np.cumsum(x, axis=0)), "rounded down to a whole number: an integer division"),
])
def test_relations_the_engine_finds_by_itself(wrong, phrase):
    assert phrase in toy_diagnosis(wrong)


def test_nan_where_the_expected_is_finite_is_an_overflow():
    def overflows(x):
        y = np.cumsum(x, axis=0)
        y[-1, 0] = np.nan
        return y
    diagnosis = toy_diagnosis(overflows)
    assert "NaN or inf where the expected values are finite" in diagnosis
    assert "overflow — a missing max shift" in diagnosis and "−inf guard" in diagnosis


def test_transposed_on_square_cases():
    ex = toy(sizes=((3, 3), (4, 4)), reference=lambda x: x @ x.T @ x, shapes={"y": ("D", "D")})
    assert "transposed (its last two axes swapped)" in toy_diagnosis(lambda x: (x @ x.T @ x).T, ex)


def test_results_in_the_wrong_order():
    ex = toy(reference=lambda x: (np.cumsum(x, axis=0), x ** 2),
             outputs=pair_output("running_sum", "y", "z"),
             shapes={"y": ("T", "D"), "z": ("T", "D")})
    diagnosis = toy_diagnosis(lambda x: (x ** 2, np.cumsum(x, axis=0)), ex)
    assert ("your y holds the expected z, your z holds the expected y: the results are in the "
            "wrong order — running_sum returns (y, z)") in diagnosis


def test_right_on_small_cases_wrong_where_one_size_grows():
    ex = toy(sizes=((1, 3), (1, 4), (5, 3), (6, 4)))
    diagnosis = toy_diagnosis(lambda x: x.copy() if len(x) == 1 else x[::-1].cumsum(axis=0), ex)
    assert diagnosis.startswith("right on cases 1, 2 but wrong on cases 3, 4: what differs is T "
                                "(T = 1 where right, 5/6 where wrong)")


def test_several_sizes_that_differ_are_not_blamed():
    ex = toy(sizes=((1, 1), (5, 3), (6, 4)))
    diagnosis = toy_diagnosis(lambda x: x.copy() if len(x) == 1 else x[::-1].cumsum(axis=0), ex)
    assert diagnosis == f"{GENERIC} (right on case(s) 1, wrong on 2, 3)"


def test_one_wrong_number_is_not_given_a_factor():
    """A single scalar on a single wrong case cannot show a constant factor."""
    ex = toy(sizes=((3, 2),), reference=lambda x: float(x.sum()), shapes={"y": ()})
    assert toy_diagnosis(lambda x: float(x.sum()) * 3, ex) == GENERIC


# ---------------------------------------------------------------------------------------------
# float32, tolerances, integers
# ---------------------------------------------------------------------------------------------

def test_float32_result_is_float32_rounding_first():
    exc = failure(check_gru_step, lambda *a: m_gru.correct(*a).astype(np.float32))
    assert exc.diagnosis == FLOAT32_ROUNDING
    assert "Note: h_new has dtype float32" in str(exc)


def test_a_float32_step_in_a_float64_function_is_float32_rounding():
    def grad(M, k, v):
        return 2 * np.outer((M @ k - v).astype(np.float32), k)      # a float64 result
    exc = failure(check_linear_memory_grad, grad)
    assert exc.diagnosis == FLOAT32_ROUNDING and "dtype" not in str(exc)


def test_a_real_mistake_in_float32_still_gets_its_suspect():
    exc = failure(check_gru_step,
                  lambda *a: m_gru.forgot_recurrent_bias(*a).astype(np.float32))
    assert "bias_hh is missing" in exc.diagnosis


def test_a_small_real_mistake_is_not_float32_rounding():
    exc = failure(check_linear_memory_grad, lambda M, k, v: memory.linear_memory_grad(M, k, v) + 1e-3)
    assert exc.diagnosis != FLOAT32_ROUNDING


def test_per_output_tolerance_admits_a_float32_metric(capsys):
    torch = pytest.importorskip("torch")

    def accuracy(logits, targets):
        pred, tgt = torch.from_numpy(logits).argmax(-1), torch.from_numpy(targets)
        asked = tgt != -100
        return (pred[asked] == tgt[asked]).float().mean().item()
    check_recall_accuracy(accuracy)
    assert capsys.readouterr().out.startswith("✓ recall_accuracy: passed")
    ex = toy(tolerances={"y": (1e-3, 0.0)})
    run_check(ex, lambda x: np.cumsum(x, axis=0) * (1 + 1e-4))          # within its own rtol


def test_integer_division_of_a_metric_is_named_before_any_suspect():
    def accuracy(logits, targets):
        asked = targets != -100
        return int((logits.argmax(-1) == targets)[asked].sum()) // int(asked.sum())
    exc = failure(check_recall_accuracy, accuracy)
    assert exc.diagnosis.startswith("your accuracy is the expected value rounded down")
    assert "int64 where a float is expected" in str(exc)


def test_integer_outputs_are_compared_as_integers_without_a_dtype_note():
    exc = failure(check_viterbi_backtrack, m_backtrack.MUTANTS[0].fn)
    assert exc.comparison.row("path").expected_dtype == "int64"
    assert "dtype" not in str(exc)
    ex = toy(reference=lambda x: np.argsort(x, axis=0), shapes={"y": ("T", "D")})
    run_check(ex, lambda x: np.argsort(x, axis=0).astype(np.int32))      # the same integers
    with pytest.raises(CheckFailed):                                      # exact: no tolerance
        run_check(ex, lambda x: np.argsort(x, axis=0) + 1e-9)


# ---------------------------------------------------------------------------------------------
# Exceptions: matrix products, outer products, the learner's line
# ---------------------------------------------------------------------------------------------

def test_without_weights_a_mismatched_product_names_its_operands():
    exc = failure(check_delta_rule_write, lambda M, k, v, theta: M + theta * np.outer(v - k @ M, k))
    assert "weight" not in exc.diagnosis
    assert exc.diagnosis.startswith("a matrix product has mismatched shapes: `k @ M` multiplies "
                                    "(5,) and (3, 5) — the left operand's last axis (5) must "
                                    "equal the right operand's second-to-last axis (3)")


def test_with_weights_a_mismatched_product_may_be_a_transposed_weight():
    exc = failure(check_gru_step, m_gru.whole_weight_not_transposed)
    assert "a weight looks transposed" in exc.diagnosis
    assert "`x @ params[\"weight_ih\"]` multiplies (1, 1) and (3, 1)" in exc.diagnosis


@pytest.mark.parametrize("body, phrase", [
    ("M + theta * (v - M @ k) @ k", f"{OUTER_PRODUCT}: `theta * (v - M @ k) @ k` multiplies "
                                    "(3,) and (5,)"),
    ("M + theta * np.dot(v - M.dot(k), k)", f"{OUTER_PRODUCT}: `np.dot(v - M.dot(k), k)`"),
    ("M + theta * (v - M @ k) * k", "an element-wise product where an outer product belongs"),
    ("M + theta * ((v - M @ k) + k)", "two arrays of different shapes were combined element by "
                                      "element (`(v - M @ k) + k` combines (3,) and (5,))"),
])
def test_a_dot_product_where_an_outer_product_belongs(body, phrase):
    fn = learner_function(f"def delta_rule_write(M, k, v, theta):\n    return {body}\n",
                          "delta_rule_write", {"np": np}, "<cell-outer>")
    exc = failure(check_delta_rule_write, fn)
    assert phrase in exc.diagnosis
    assert "weight" not in exc.diagnosis


def test_the_learners_line_is_named_when_their_function_raises():
    source = ("def delta_rule_write(M, k, v, theta):\n"
              "    error = v - M @ k\n"
              "    return M + theta * lookup[error.size]\n")
    fn = learner_function(source, "delta_rule_write", {"np": np, "lookup": {}}, "<cell-7>")
    message = str(failure(check_delta_rule_write, fn))
    assert ("delta_rule_write raised KeyError: 3\n"
            "  at <cell-7>, line 3, in delta_rule_write: return M + theta * lookup[error.size]\n"
            "The case's shapes: M (3, 5)") in message


def test_the_learners_innermost_line_is_named_below_library_code():
    def delta_rule_write(M, k, v, theta):
        return M + theta * np.outer(v - M @ k, k).reshape(7)
    message = str(failure(check_delta_rule_write, delta_rule_write))
    assert "in delta_rule_write: return M + theta * np.outer(v - M @ k, k).reshape(7)" in message


# ---------------------------------------------------------------------------------------------
# IPython shows the check's message, not minirec's traceback
# ---------------------------------------------------------------------------------------------

def test_render_traceback_is_the_message():
    exc = failure(check_gru_step, m_gru.forgot_recurrent_bias)
    lines = exc._render_traceback_()
    assert lines[0] == f"CheckFailed: {str(exc).splitlines()[0]}"
    assert lines[1:] == str(exc).splitlines()[1:]
    with pytest.raises(NotAttempted) as info:
        check_gru_step(m_gru.blank)
    assert info.value._render_traceback_()[0].startswith("NotAttempted: not yet attempted")


def test_ipython_shows_the_table_diagnosis_and_cell_line_only():
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell
    hooks = sys.displayhook, sys.excepthook
    shell = InteractiveShell.instance()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            shell.run_cell("import numpy as np\n"
                           "from minirec.check import check_delta_rule_write\n"
                           "def delta_rule_write(M, k, v, theta):\n"
                           "    return M + theta * (v - M @ k) @ k\n"
                           "check_delta_rule_write(delta_rule_write)\n")
    finally:
        InteractiveShell.clear_instance()
        sys.displayhook, sys.excepthook = hooks
    text = out.getvalue()
    assert text.startswith("CheckFailed: delta_rule_write is wrong on case 1 of 4")
    assert "at Cell In[1], line 4, in delta_rule_write: return M + theta * (v - M @ k) @ k" in text
    assert f"Diagnosis: {OUTER_PRODUCT}" in text
    assert "Traceback" not in text and "_core.py" not in text


# ---------------------------------------------------------------------------------------------
# The learner's earlier functions (Exercise.calls)
# ---------------------------------------------------------------------------------------------

TITANS_STEP = ("def titans_step(M, S, k, v, eta, theta, alpha):\n"
               "    S_new = eta * S - theta * linear_memory_grad(M, k, v)\n"
               "    return (1 - alpha) * M + S_new, S_new\n")


def test_a_wrong_earlier_function_is_blamed_and_restored():
    def linear_memory_grad(M, k, v):          # the learner's, without the factor 2
        return np.outer(M @ k - v, k)
    ns = {"np": np, "linear_memory_grad": linear_memory_grad}
    exc = failure(check_titans_step, learner_function(TITANS_STEP, "titans_step", ns, "<c1>"))
    assert exc.diagnosis == ("the first wrong value came from your linear_memory_grad (called by "
                             "titans_step): fix it first — check_linear_memory_grad shows how")
    assert ns["linear_memory_grad"] is linear_memory_grad


def test_a_right_earlier_function_is_not_blamed(capsys):
    ns = {"np": np, "linear_memory_grad": lambda M, k, v: 2 * np.outer(M @ k - v, k)}
    check_titans_step(learner_function(TITANS_STEP, "titans_step", ns, "<c2>"))
    assert capsys.readouterr().out.startswith("✓ titans_step: passed")
    wrong_step = TITANS_STEP.replace("(1 - alpha) * M", "alpha * M")
    exc = failure(check_titans_step, learner_function(wrong_step, "titans_step", ns, "<c3>"))
    assert "not the retention" in exc.diagnosis


def test_earlier_functions_are_restored_when_the_check_stops():
    def linear_memory_grad(M, k, v):
        raise NotImplementedError
    ns = {"np": np, "linear_memory_grad": linear_memory_grad}
    with pytest.raises(NotAttempted, match=r"not yet attempted: titans_step calls your "
                                           r"linear_memory_grad, which still raises "
                                           r"NotImplementedError — write linear_memory_grad first"):
        check_titans_step(learner_function(TITANS_STEP, "titans_step", ns, "<c4>"))
    assert ns["linear_memory_grad"] is linear_memory_grad
