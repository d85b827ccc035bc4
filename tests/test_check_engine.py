"""The check engine's diagnoses (minirec/check/_core.py and the modules it runs on, issue 11):
infinities and NaN in the comparison, float32 rounding said first, per-output tolerances,
integers compared as integers, matrix products with and without weights, a dot product where an
outer product belongs, a boolean mask of the wrong shape, the relations the engine finds by
itself (each claiming only what the values show), the case split over every argument, the
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
    Suspect,
    check_delta_rule_write,
    check_gru_step,
    check_linear_memory_grad,
    check_recall_accuracy,
    check_titans_step,
    check_viterbi_backtrack,
    compare,
    diagnose,
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


def test_nan_where_the_expected_is_finite_names_every_cause():
    def overflows(x):
        y = np.cumsum(x, axis=0)
        y[-1, 0] = np.nan
        return y
    diagnosis = toy_diagnosis(overflows)
    assert "NaN or inf where the expected value is finite (case 1, at [2, 0])" in diagnosis
    assert ("a division by zero, an overflow (exp of a large value: a missing max shift), or an "
            "unguarded −inf") in diagnosis


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


# ---------------------------------------------------------------------------------------------
# Infinities and NaN in the comparison (probe 1): no ±1e300 stand-ins
# ---------------------------------------------------------------------------------------------

def test_equal_infinities_agree_and_nan_never_does():
    inf = np.inf
    assert compare({"y": np.array([-inf, 1.0, inf])}, {"y": np.array([-inf, 1.0, inf])}).ok
    for got in ([-inf, 1.0, -inf], [np.nan, 1.0, inf], [-inf, 1.0, 1e300]):
        assert not compare({"y": np.array([-inf, 1.0, inf])}, {"y": np.array(got)}).ok, got
    assert not compare({"y": np.array([np.nan])}, {"y": np.array([np.nan])}).ok
    assert not compare({"y": np.array([2.0])}, {"y": np.array([-inf])}).ok


def test_the_table_shows_nan_and_minus_inf_as_they_are():
    table = compare({"L": np.array([[0.5, -np.inf]])}, {"L": np.array([[0.5, np.nan]])}).table()
    assert "L[0, 1]: yours nan, expected -inf" in table
    assert "1e+300" not in table and " nan " in table.splitlines()[1]


def log_ref(x):
    with np.errstate(divide="ignore"):
        return np.log(np.cumsum(np.abs(x), axis=0) * (x > 0))      # −inf where x ≤ 0


def test_nan_where_minus_inf_is_expected_is_an_unguarded_minus_inf():
    ex = toy(reference=log_ref)

    def unguarded(x):
        y = log_ref(x)
        return np.where(np.isneginf(y), np.nan, y)
    diagnosis = toy_diagnosis(unguarded, ex)
    assert diagnosis.startswith("your y is NaN where the expected value is −inf (case 1, at ")
    assert "an unguarded −inf" in diagnosis and "overflow" not in diagnosis
    run_check(ex, log_ref)                                        # −inf where −inf: right


def test_a_suspect_that_returns_minus_inf_matches_a_learner_who_does():
    ex = toy(reference=log_ref)
    wrong = lambda x: log_ref(x) + 1.0                             # noqa: E731
    ex = Exercise(**{**ex.__dict__, "suspects": (Suspect("one too many", wrong),)})
    assert toy_diagnosis(wrong, ex) == "one too many"


# ---------------------------------------------------------------------------------------------
# Detectors claim only what the values show (probe 1)
# ---------------------------------------------------------------------------------------------

def pair_toy():
    return toy(reference=lambda x: (np.cumsum(x, axis=0), x ** 2),
               outputs=pair_output("running_sum", "y", "z"),
               shapes={"y": ("T", "D"), "z": ("T", "D")})


def test_one_output_copied_from_another_is_not_the_wrong_order():
    diagnosis = toy_diagnosis(lambda x: (np.cumsum(x, axis=0), np.cumsum(x, axis=0)), pair_toy())
    assert "wrong order" not in diagnosis
    assert diagnosis.startswith("your z equals the expected y: you computed z the way y is "
                                "computed (or returned the same array twice)")


def test_zeros_name_integer_division_among_the_causes():
    assert "integer division" in toy_diagnosis(lambda x: np.zeros_like(x))


def test_an_input_returned_unchanged_does_not_claim_why():
    diagnosis = toy_diagnosis(lambda x: x.copy())
    assert diagnosis.startswith("your y is the input x, unchanged: nothing was applied to it")


@pytest.mark.parametrize("wrong, phrase", [
    (lambda x: np.exp(np.cumsum(x, 0)) / np.exp(np.cumsum(x, 0)).sum(-1, keepdims=True),
     "your y is the softmax of the expected value (along its last axis)"),
    (lambda x: np.cumsum(x, axis=0)[:, ::-1],
     "your y is the expected value in reverse order along its last axis"),
    (lambda x: np.where(np.arange(len(x))[:, None] == 0, 7.0, np.cumsum(x, axis=0)),
     "your y is right at every step but the first (T index 0)"),
    (lambda x: np.where(np.arange(len(x))[:, None] == len(x) - 1, 7.0, np.cumsum(x, axis=0)),
     "your y is right at every step but the last"),
])
def test_more_relations_the_engine_finds_by_itself(wrong, phrase):
    assert phrase in toy_diagnosis(wrong)


def test_every_example_given_example_0():
    ex = toy(reference=lambda x: np.cumsum(x, axis=1), shapes={"y": ("B", "D")})
    diagnosis = toy_diagnosis(lambda x: np.broadcast_to(np.cumsum(x, axis=1)[:1], x.shape).copy(),
                              ex)
    assert diagnosis.startswith("every example of your y (along B) is example 0's")


# ---------------------------------------------------------------------------------------------
# The case split considers every argument, not only the sizes (probe 1)
# ---------------------------------------------------------------------------------------------

def scaled_toy(thetas, sizes, *, neg_inf_in=()):
    rng = np.random.default_rng(1)
    cases = []
    for n, (theta, (T, D)) in enumerate(zip(thetas, sizes, strict=True)):
        x = rng.normal(size=(T, D))
        if n in neg_inf_in:
            x[0, 0] = -np.inf
        cases.append(Case((x, theta), {"T": T, "D": D}))
    return Exercise(name="scaled_sum", reference=lambda x, theta: theta * np.cumsum(x, axis=0),
                    cases=tuple(cases), suspects=(), outputs=one_output("y"),
                    shapes={"y": ("T", "D")}, arg_names=("x", "theta"))


def not_proportional(x, theta):
    """θ y + θ − 1: right where θ = 1 only, and neither a factor nor an offset."""
    return theta * np.cumsum(x, axis=0) + theta - 1.0


def test_a_factor_that_is_a_scalar_argument_is_named():
    ex = scaled_toy((0.3, 1.0, 0.7), ((4, 3), (4, 3), (4, 3)))
    assert toy_diagnosis(lambda x, theta: np.cumsum(x, axis=0), ex).startswith(
        "your y is the expected value divided by theta on every case: a 1/theta too many (a "
        "factor theta missing, or a division by theta)")


def test_a_scalar_argument_that_alone_differs_is_named():
    ex = scaled_toy((0.3, 1.0, 0.7), ((4, 3), (4, 3), (4, 3)))
    diagnosis = toy_diagnosis(not_proportional, ex)
    assert diagnosis == ("right on case 2 but wrong on cases 1, 3: what differs is theta "
                         "(theta = 1 where right, 0.3/0.7 where wrong) — look at the lines "
                         "where theta matters (where theta = 1 a factor theta that is missing "
                         "or applied twice makes no difference)")


def test_a_size_is_not_blamed_alone_when_a_scalar_differs_too():
    ex = scaled_toy((0.3, 1.0, 0.7), ((4, 3), (1, 3), (5, 3)))
    diagnosis = toy_diagnosis(not_proportional, ex)
    assert "what differs is T" not in diagnosis
    assert diagnosis.startswith("right on case 2 but wrong on cases 1, 3: two things differ, "
                                "T (T = 1 where right, 4/5 where wrong) and theta (theta = 1 "
                                "where right, 0.3/0.7 where wrong)")


def test_the_minus_inf_content_of_a_case_is_named():
    ex = scaled_toy((0.5, 0.5, 0.5), ((4, 3), (4, 3), (4, 3)), neg_inf_in=(2,))

    def wrong_with_minus_inf(x, theta):
        y = theta * np.cumsum(x, axis=0)
        bump = np.isneginf(x).any() * np.cos(np.where(np.isfinite(y), y, 0.0))
        return y + bump                                               # −inf stays −inf
    diagnosis = toy_diagnosis(wrong_with_minus_inf, ex)
    assert diagnosis.startswith("right on cases 1, 2 but wrong on case 3: what differs is x "
                                "holds −inf where wrong, not where right — look at the lines "
                                "where x matters")


def test_a_number_where_minus_inf_is_expected_and_right_elsewhere_is_named():
    ex = scaled_toy((0.5, 0.5, 0.5), ((4, 3), (4, 3), (4, 3)), neg_inf_in=(2,))

    def guard_returned(x, theta):
        y = theta * np.cumsum(x, axis=0)
        return np.where(np.isneginf(y), 0.0, y)
    assert toy_diagnosis(guard_returned, ex).startswith(
        "your y is a number (0) where the expected value is −inf (case 3, at [0, 0]), and right "
        "everywhere else: the infinity was replaced")


# ---------------------------------------------------------------------------------------------
# Exceptions: a boolean mask of the wrong shape, a transposed operand, suspects' shape errors
# ---------------------------------------------------------------------------------------------

def test_a_boolean_mask_of_the_wrong_shape_names_both_shapes():
    source = ("def recall_accuracy(logits, targets):\n"
              "    asked = targets != -100\n"
              "    guess = logits.argmax(axis=0)\n"
              "    return float((guess[asked] == targets[asked]).mean())\n")
    fn = learner_function(source, "recall_accuracy", {"np": np}, "<cell-mask>")
    exc = failure(check_recall_accuracy, fn)
    assert exc.diagnosis.startswith("`guess[asked]` indexes an array of shape (1, 3) with a "
                                    "boolean mask of shape (4, 1): a mask must have the shape "
                                    "of the axes it selects")


def test_a_transposed_operand_that_fits_without_its_T_is_named():
    fn = learner_function("def delta_rule_write(M, k, v, theta):\n"
                          "    return M + theta * np.outer(v - M.T @ k, k)\n",
                          "delta_rule_write", {"np": np}, "<cell-T>")
    exc = failure(check_delta_rule_write, fn)
    assert ("`M.T @ k` multiplies (5, 3) and (5,): M.T is a transpose, (5, 3); without the .T, "
            "M (3, 5) fits") in exc.diagnosis


def test_a_suspects_shape_error_stands_for_the_learners_of_another_type():
    ex = toy()
    suspect = Suspect("the same wrong shape", lambda x: x @ np.ones(len(x) + 1))   # ValueError
    learner_raised = [IndexError("boolean index did not match")] * len(ex.cases)
    assert diagnose((suspect,), ex.cases, learner_raised, ex.outputs) is suspect
    assert diagnose((suspect,), ex.cases, [KeyError("k")] * len(ex.cases), ex.outputs) is None


# ---------------------------------------------------------------------------------------------
# Probe 2: a small ε, a permuted row, one example everywhere, the step that goes wrong, a
# factor of an argument's length, NaN only where every wrong case shows it, guard suspects
# ---------------------------------------------------------------------------------------------

def test_an_epsilon_in_a_denominator_is_named_before_float32():
    ex = toy(reference=lambda x: np.cumsum(x, axis=0) / (1.0 + x * x))
    diagnosis = toy_diagnosis(lambda x: np.cumsum(x, axis=0) / (1.0 + x * x + 1e-7), ex)
    assert diagnosis.startswith("your y is slightly smaller in magnitude than the expected value")
    assert "an ε added to a denominator" in diagnosis and diagnosis != FLOAT32_ROUNDING


def test_an_epsilon_that_enlarges_is_named_too():
    diagnosis = toy_diagnosis(lambda x: np.cumsum(x, axis=0) * (1 + 3e-7))
    assert diagnosis.startswith("your y is slightly larger in magnitude")


def test_float32_rounding_errs_both_ways_and_is_not_an_epsilon():
    diagnosis = toy_diagnosis(lambda x: np.cumsum(x.astype(np.float32), axis=0).astype(np.float64))
    assert diagnosis == FLOAT32_ROUNDING


def test_rows_in_another_order_are_named_but_not_one_hot_rows():
    ex = toy(sizes=((3, 5), (4, 6)), reference=lambda x: np.sort(x, axis=1)[:, ::-1],
             shapes={"y": ("T", "D")})
    rng = np.random.default_rng(9)
    diagnosis = toy_diagnosis(lambda x: rng.permuted(np.sort(x, axis=1), axis=1), ex)
    assert diagnosis.startswith("each row of your y (along its last axis) holds the expected "
                                "values, in another order")
    hot = toy(sizes=((3, 5), (4, 6)), reference=lambda x: np.eye(x.shape[1])[x.argmax(axis=1)])
    assert "another order" not in toy_diagnosis(
        lambda x: np.eye(x.shape[1])[x.argmin(axis=1)], hot)


def per_example_toy():
    """y[k, b] = k < n_b: one column per example, n a count per example."""
    rng = np.random.default_rng(3)
    cases = tuple(Case((rng.permutation(B) + 1, K), {"K": K, "B": B}) for K, B in ((6, 4), (7, 5)))
    return Exercise(name="counts", reference=lambda n, K: (np.arange(K)[:, None] < n) * 1.0,
                    cases=cases, suspects=(), outputs=one_output("y"), shapes={"y": ("K", "B")},
                    arg_names=("n", "K"))


def test_the_example_with_the_largest_argument_given_to_all_is_named():
    diagnosis = toy_diagnosis(lambda n, K: (np.arange(K)[:, None] < np.full_like(n, n.max())) * 1.0,
                              per_example_toy())
    assert diagnosis.startswith("every example of your y (along B) is that of the example with "
                                "the largest n, on every case")


def test_a_step_that_goes_wrong_is_named():
    late = toy_diagnosis(lambda x: np.cumsum(x, axis=0)
                         * np.where(np.arange(len(x))[:, None] == 0, 1.0, 1.5))
    assert late.startswith("your y is right at step 0 and wrong from step 1 on (along T, on "
                           "every case)")


def chunked_toy():
    rng = np.random.default_rng(5)
    cases = tuple(Case((rng.normal(size=(T, 2)), C), {"T": T, "C": C, "D": 2})
                  for T, C in ((7, 2), (9, 3), (8, 4)))
    return Exercise(name="running_sum", reference=lambda x, C: np.cumsum(x, axis=0), cases=cases,
                    suspects=(), outputs=one_output("y"), shapes={"y": ("T", "D")},
                    arg_names=("x", "C"))


def test_a_chunk_that_goes_wrong_is_named_by_its_size():
    def first_chunk_only(x, C):
        y = np.cumsum(x, axis=0)
        return np.where(np.arange(len(x))[:, None] < C, y, y + x)
    assert toy_diagnosis(first_chunk_only, chunked_toy()).startswith(
        "your y is right at steps 0 … C − 1 and wrong from step C on")


def test_a_wrong_first_step_names_the_outputs_without_a_time_axis_as_wrong_too():
    ex = toy(reference=lambda x: (np.cumsum(x, axis=0), x.sum(axis=0)),
             outputs=pair_output("running_sum", "y", "total"),
             shapes={"y": ("T", "D"), "total": ("D",)})

    def skips_step_0(x):
        y = np.cumsum(x, axis=0)
        y[0] = 0.0
        return y, x[1:].sum(axis=0)
    diagnosis = toy_diagnosis(skips_step_0, ex)
    assert diagnosis.startswith("your y is right at every step but the first (T index 0), where "
                                "it is all zeros; total is wrong too: the first step is left "
                                "out or computed apart from the others")


def test_a_factor_that_is_an_arguments_length_is_named_per_tensor():
    rng = np.random.default_rng(2)
    cases = tuple(Case((rng.normal(size=(n, 3)), rng.normal(size=(m, 3))), {"N": n, "D": 3})
                  for n, m in ((2, 3), (4, 2), (3, 5)))
    ex = Exercise(name="means", reference=lambda a, b: (a.mean(0), b.mean(0), a.mean() - b.mean()),
                  cases=cases, suspects=(), outputs=lambda r, c: dict(zip("uvd", r, strict=True)),
                  shapes={"u": ("D",), "v": ("D",), "d": ()}, arg_names=("a", "b"))
    diagnosis = toy_diagnosis(lambda a, b: (a.sum(0), b.sum(0), a.mean() - b.mean() + 1), ex)
    assert diagnosis.startswith("your u is the expected value multiplied by N on every case")
    assert "your v is the expected value multiplied by b.shape[0] on every case" in diagnosis
    assert diagnosis.endswith("d is wrong too")


def test_nan_is_not_blamed_for_a_case_that_is_wrong_without_it():
    def nan_on_one_case_wrong_on_all(x):
        y = 2.0 * np.cumsum(x, axis=0) + 1.0
        if len(x) == 5:
            y[0, 0] = np.nan
        return y
    assert "NaN or inf" not in toy_diagnosis(nan_on_one_case_wrong_on_all)


def test_a_floating_point_error_is_matched_to_a_suspect_that_raises_the_same():
    from minirec.check._guards import raising, run_guarded_check
    rng = np.random.default_rng(4)
    cases = (Case((rng.normal(size=(3, 4)),), {"N": 3, "E": 4}),
             Case((rng.normal(size=(4, 4)) + 800.0 * (np.arange(4) % 2)[:, None],), {"N": 4, "E": 4}))

    def softmax(z, shift):
        e = np.exp(z - shift(z))
        return e / e.sum(axis=1, keepdims=True)
    suspects = (Suspect("no shift at all", raising(lambda z: softmax(z, lambda z: 0.0), quiet=True)),
                Suspect("one shift for the batch", raising(lambda z: softmax(z, np.max), quiet=True)))
    ex = Exercise(name="softmax", cases=cases, suspects=suspects, outputs=one_output("p"),
                  reference=lambda z: softmax(z, lambda z: z.max(axis=1, keepdims=True)),
                  shapes={"p": ("N", "E")}, arg_names=("z",))
    with pytest.raises(CheckFailed) as info:
        run_guarded_check(ex, lambda z: softmax(z, np.max), (("invalid value", "no shift"),))
    assert info.value.diagnosis == "one shift for the batch"
    with pytest.raises(CheckFailed) as info:
        run_guarded_check(ex, lambda z: softmax(z, lambda z: 0.0), ())
    assert info.value.diagnosis == "no shift at all"        # an overflow, not the invalid 0/0


def test_zeros_at_the_last_step_and_wrong_elsewhere_are_named():
    def last_step_left_out(x):
        y = np.cumsum(x[::-1][1:], axis=0)[::-1]          # a suffix sum that misses x[T − 1]
        return np.concatenate([y, np.zeros_like(x[:1])])
    ex = toy(reference=lambda x: np.cumsum(x[::-1], axis=0)[::-1])
    assert toy_diagnosis(last_step_left_out, ex).startswith(
        "your y is all zeros at the last step (T index T − 1), where the expected value is not, "
        "and wrong at other steps too: zeros are what a step that is never computed or written "
        "leaves")


def test_a_step_that_goes_wrong_later_each_case_is_named_with_its_steps():
    def wrong_from_the_middle(x):
        y = np.cumsum(x, axis=0)
        return np.where(np.arange(len(x))[:, None] >= len(x) // 2, y + 1.0 + x ** 2, y)
    assert toy_diagnosis(wrong_from_the_middle).startswith(
        "your y is right up to a step and wrong at every step from it to the end (along T: from "
        "step 1 on case 1, 2 on case 2")
