"""The gradient checker, against closed forms; and it flags wrong gradients."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minirec.cells import reference as ref
from minirec.check import CheckFailed, NotAttempted
from minirec.gradcheck import TINY, check_gradients, numerical_gradient, rel_error


def f_sin(x):
    """f(x) = Σ sin(x) x²,  ∂f/∂x = cos(x) x² + 2 x sin(x)."""
    return np.sum(np.sin(x) * x**2)


def grad_sin(x):
    return np.cos(x) * x**2 + 2 * x * np.sin(x)


def test_numerical_gradient_matches_closed_form():
    x = np.random.default_rng(0).normal(size=(3, 4))
    num = numerical_gradient(f_sin, x)
    assert rel_error(num, grad_sin(x)) < 1e-9
    # and it is not trivially close: the error of a forward difference is far larger
    fwd = np.array([(f_sin(x + 1e-3 * e.reshape(x.shape)) - f_sin(x)) / 1e-3
                    for e in np.eye(x.size)]).reshape(x.shape)
    assert rel_error(fwd, grad_sin(x)) > 1e-5


def test_numerical_gradient_of_a_quadratic_form():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(5, 5))
    x = rng.normal(size=5)
    num = numerical_gradient(lambda v: 0.5 * v @ A @ v, x)
    np.testing.assert_allclose(num, 0.5 * (A + A.T) @ x, rtol=1e-8, atol=1e-9)


def test_numerical_gradient_restores_x_exactly_even_when_f_raises():
    x = np.random.default_rng(2).normal(size=(2, 3))
    before = x.copy()
    numerical_gradient(f_sin, x)
    assert np.array_equal(x, before)

    calls = []

    def explodes(v):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return f_sin(v)

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(explodes, x)
    assert np.array_equal(x, before)


def test_numerical_gradient_refuses_float32_and_integers():
    with pytest.raises(TypeError, match="finite differences need float64"):
        numerical_gradient(f_sin, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(f_sin, np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match="NumPy float64 array"):
        numerical_gradient(f_sin, [1.0, 2.0])
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        numerical_gradient(f_sin, ro)


def test_numerical_gradient_needs_a_scalar_f():
    with pytest.raises(TypeError, match="f must return a scalar"):
        numerical_gradient(lambda v: v * 2, np.ones(3))


def test_rel_error_definition():
    a = np.array([1.0, -2.0, 0.0])
    b = np.array([1.5, -2.0, 0.1])
    # max |a − b| / max(|a| + |b|) = 0.5 / 4
    assert rel_error(a, b) == pytest.approx(0.5 / 4.0, rel=1e-15)
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == 1.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.zeros(2), np.array([0.0, TINY])) == 1.0
    with pytest.raises(ValueError, match="equal shapes"):
        rel_error(np.ones(2), np.ones(3))


@settings(max_examples=100, deadline=None)
@given(a=hnp.arrays(np.float64, st.integers(1, 6), elements=st.one_of(
           st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))),
       scale=st.floats(1e-3, 1e3))
def test_rel_error_is_scale_free_symmetric_and_bounded(a, scale):
    b = a[::-1].copy()
    e = rel_error(a, b)
    assert 0.0 <= e <= 1.0
    assert rel_error(b, a) == e
    assert rel_error(scale * a, scale * b) == pytest.approx(e, rel=1e-12, abs=1e-300)


def test_check_gradients_passes_and_reports():
    x = np.random.default_rng(3).normal(size=(4,))
    y = np.random.default_rng(4).normal(size=(2, 2))
    report = check_gradients(lambda: f_sin(x) + np.sum(y**3),
                             {"x": x, "y": y}, {"x": grad_sin(x), "y": 3 * y**2, "z": None})
    assert report.ok and report.failed == []
    assert [r.name for r in report.rows] == ["x", "y"]
    assert all(r.rel_error < 1e-9 for r in report.rows)
    assert "rel error" in str(report)


def test_check_gradients_flags_a_wrong_gradient():
    x = np.random.default_rng(5).normal(size=(3, 2))
    y = np.random.default_rng(6).normal(size=(3,))
    wrong = np.cos(x) * x**2 + x * np.sin(x)           # the product rule's factor 2 is lost
    with pytest.raises(CheckFailed) as info:
        check_gradients(lambda: f_sin(x) + np.sum(y), {"x": x, "y": y},
                        {"x": wrong, "y": np.ones(3)})
    message = str(info.value)
    assert message.startswith("gradient check failed for x:")
    lines = {line.split()[0]: line for line in message.splitlines()[1:] if line.strip()}
    assert lines["x"].endswith("✗") and lines["y"].endswith("ok")


def test_check_gradients_flags_missing_and_misshaped_gradients():
    x = np.ones(3)
    with pytest.raises(CheckFailed, match=r"analytic missing"):
        check_gradients(lambda: f_sin(x), {"x": x}, {})
    with pytest.raises(CheckFailed, match=r"analytic shape \(1, 3\)"):
        check_gradients(lambda: f_sin(x), {"x": x}, {"x": grad_sin(x)[None]})


def test_check_gradients_refuses_float32():
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="inputs\\['x'\\] has dtype float32"):
        check_gradients(lambda: f_sin(x), {"x": x}, {"x": grad_sin(x)})


def _gru_case(seed=7, B=3, D=5, H=4):
    rng = np.random.default_rng(seed)
    x, h = rng.normal(size=(B, D)), rng.normal(size=(B, H))
    params = ref.init_params("gru", D, H, rng=rng)
    dh_new = rng.normal(size=(B, H))
    return x, h, params, dh_new


def test_check_gradients_accepts_the_reference_gru_backward():
    x, h, params, dh_new = _gru_case()
    loss = lambda: np.sum(ref.gru_step(x, h, params) * dh_new)  # noqa: E731
    report = check_gradients(loss, {"x": x, "h": h, **params},
                             ref.gru_step_backward(x, h, params, dh_new))
    assert report.ok and len(report.rows) == 6


def test_check_gradients_finds_the_tensor_a_gru_backward_gets_wrong():
    from minirec.check.cells import _gru_backward_variant

    x, h, params, dh_new = _gru_case()
    loss = lambda: np.sum(ref.gru_step(x, h, params) * dh_new)  # noqa: E731
    no_direct_path = _gru_backward_variant(x, h, params, dh_new, direct=False)
    with pytest.raises(CheckFailed) as info:
        check_gradients(loss, {"x": x, "h": h, **params}, no_direct_path)
    assert str(info.value).startswith("gradient check failed for h:")


def test_importing_gradcheck_loads_none_of_the_check_engine():
    """gradcheck raises ``CheckFailed`` from the leaf ``minirec._errors``: importing it alone (in
    a fresh interpreter) loads no ``minirec.check`` module, and the class is minirec.check's."""
    code = ("import sys, minirec.gradcheck; "
            "print(sorted(m for m in sys.modules if m.startswith('minirec.check')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert run.stdout.strip() == "[]", run.stdout
    from minirec import _errors
    from minirec.check import _core

    assert CheckFailed is _errors.CheckFailed is _core.CheckFailed
    assert NotAttempted is _errors.NotAttempted is _core.NotAttempted
    assert issubclass(NotAttempted, CheckFailed) and issubclass(CheckFailed, AssertionError)


def test_check_exceptions_survive_pickling():
    for cls in (CheckFailed, NotAttempted):
        err = pickle.loads(pickle.dumps(cls("table", diagnosis="a transposed weight", case="B=3")))
        assert type(err) is cls and str(err) == "table"
        assert (err.diagnosis, err.case, err.comparison) == ("a transposed weight", "B=3", None)
