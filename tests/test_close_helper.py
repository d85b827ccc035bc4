"""tests/_close.assert_close, the comparison every numerical test uses: it accepts what its bound
|got − want| ≤ tol·(|want| + scale) allows, refuses a wrong value, and says where it is wrong."""

import re

import numpy as np
import pytest
import torch

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

WANT = np.array([[1.0, -2.0, 4.0], [0.0, 0.5, -1e-3]])  # max|want| = 4


def with_error(index, delta):
    got = WANT.copy()
    got[index] += delta
    return got


def test_accepts_an_error_up_to_its_bound_and_refuses_one_just_above():
    tol = 1e-6
    bound = tol * (abs(WANT[1, 2]) + 4.0)                  # an entry near 0: held to tol·max|want|
    assert_close("x", with_error((1, 2), 0.99 * bound), WANT, tol=tol)
    with pytest.raises(AssertionError):
        assert_close("x", with_error((1, 2), 1.01 * bound), WANT, tol=tol)


def test_the_message_names_the_quantity_the_error_where_and_the_tolerance():
    with pytest.raises(AssertionError) as info:
        assert_close("∂W", with_error((0, 1), 1e-3), WANT, tol=1e-8)
    message = str(info.value)
    assert message.startswith("∂W: max |got − want| = 0.001 at index (0, 1)")
    assert "1 of 6 entries exceed" in message and "tol = 1e-08" in message
    assert "scale = 4" in message and re.search(r"got -1\.999.*want -2\.0", message)


def test_a_wrong_value_fails_in_every_dtype_and_kind():
    wrong = with_error((0, 0), 1e-4)
    for got, want in [(wrong, WANT), (torch.from_numpy(wrong), torch.from_numpy(WANT)),
                      (wrong.astype(np.float32), WANT)]:
        with pytest.raises(AssertionError, match="x: max"):
            assert_close("x", got, want, tol=1e-6)
        assert_close("x", got, want, tol=1e-4)


def test_scale_replaces_the_largest_value_and_floor_bounds_it_below():
    got = with_error((1, 2), 1e-9)                          # 1e-9 off an entry of 1e-3
    assert_close("x", got, WANT, tol=1e-9)                  # 1e-9·(1e-3 + 4)
    with pytest.raises(AssertionError, match="scale = 0.01"):
        assert_close("x", got, WANT, tol=1e-9, scale=1e-2)  # 1e-9·(1e-3 + 1e-2) = 1.1e-11
    tiny = WANT * 1e-6
    with pytest.raises(AssertionError):
        assert_close("x", tiny + 1e-9, tiny, tol=1e-5)
    assert_close("x", tiny + 1e-9, tiny, tol=1e-5, floor=1.0)


def test_all_zero_expected_requires_zeros():
    assert_close("x", np.zeros(3), np.zeros(3), tol=1e-5)
    with pytest.raises(AssertionError, match="scale = 0"):
        assert_close("x", np.array([0.0, 1e-300, 0.0]), np.zeros(3), tol=1e-5)


def test_non_finite_values_must_match_exactly():
    want = np.array([1.0, -np.inf, np.nan])
    assert_close("x", want.copy(), want, tol=1e-12)
    for got in ([1.0, np.inf, np.nan], [1.0, -np.inf, 0.0], [np.nan, -np.inf, np.nan]):
        with pytest.raises(AssertionError, match="non-finite values differ"):
            assert_close("x", np.array(got), want, tol=1e-12)


def test_shape_dtype_and_kind_are_checked():
    with pytest.raises(AssertionError, match=r"shape \(3, 2\), expected \(2, 3\)"):
        assert_close("x", WANT.T, WANT, tol=1.0)
    with pytest.raises(AssertionError, match="dtype float32, expected float64"):
        assert_close("x", WANT.astype(np.float32), WANT, tol=1.0, dtype=np.float64)
    with pytest.raises(AssertionError, match="Tensor, not a NumPy array"):
        assert_close("x", torch.from_numpy(WANT), WANT, tol=1.0, dtype=np.float64)
    assert_close("x", WANT.astype(np.float32), WANT, tol=1e-6, dtype=np.float32)


def test_tuples_and_dicts_are_compared_part_by_part():
    want = {"h": (WANT, 2 * WANT), "x": WANT}
    assert_close("grads", {"x": WANT, "h": (WANT, 2 * WANT)}, want, tol=1e-15)
    with pytest.raises(AssertionError, match=r"grads\[h\]\[1\]: max"):
        assert_close("grads", {"x": WANT, "h": (WANT, 2 * with_error(0, 1))}, want, tol=1e-6)
    with pytest.raises(AssertionError, match=r"grads: keys \['h'\], expected \['h', 'x'\]"):
        assert_close("grads", {"h": (WANT, 2 * WANT)}, want, tol=1e-6)
    with pytest.raises(AssertionError, match=r"grads\[h\]: 1 parts, expected 2"):
        assert_close("grads", {"x": WANT, "h": (WANT,)}, want, tol=1e-6)
    with pytest.raises(AssertionError, match=r"state: list, expected a tuple"):
        assert_close("state", [WANT], (WANT,), tol=1e-6)
