"""Every backend of minirec.cells against the NumPy reference, through the public API.

For 'numba' and 'torch': outputs, final states and every gradient of BPTT (plain, with
grad_final, with truncate, with the hidden-state gradients), on awkward sizes, in float64
(to ~1e-10) and float32 (to ~1e-5), relative to each array's magnitude. The result has the
input's type and dtype: NumPy in → NumPy out, torch tensors in → torch tensors out.
"""

import numpy as np
import pytest
import torch

import minirec.cells as cells
from minirec.cells import numba_cpu
from minirec.cells import reference as ref

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

CELLS = ["rnn", "gru", "lstm"]
BACKENDS = ["numba", "torch"]
STEPS = [1, 2, 7, 63]
SHAPES = [(1, 1, 1), (3, 5, 7), (2, 6, 6)]  # (B, D, H)
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def make_case(cell, T, B, D, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = ref.init_params(cell, D, H, rng=rng)
    params = {k: (2.0 * v).astype(dtype) for k, v in params.items()}  # gates off their linear part
    x = rng.normal(size=(T, B, D)).astype(dtype)
    h0 = (0.5 * rng.normal(size=(B, H))).astype(dtype)
    state0 = (h0, (0.5 * rng.normal(size=(B, H))).astype(dtype)) if cell == "lstm" else h0
    go = rng.normal(size=(T, B, H)).astype(dtype)
    if cell == "lstm":
        gf = tuple(rng.normal(size=(B, H)).astype(dtype) for _ in range(2))
    else:
        gf = rng.normal(size=(B, H)).astype(dtype)
    return x, state0, params, go, gf


def gradient_floor(dtype, grad_outputs) -> float:
    """The lower bound of a gradient's error scale (``assert_close``'s ``floor``): in float32,
    max|grad_outputs|; in float64, none.

    The float32 floor is for gradients that saturated gates make tiny: 1 − tanh²(a) keeps few
    float32 digits when tanh(a) ≈ ±1, in any implementation, so what float32 can promise there
    is an error small against the gradient flowing in, not against the tiny result. (With
    B = D = H = 1, a dh0 of 3e−4 differed by 8e−5 relative between the float32 reference and
    both backends; float64, held to 1e−10 with no floor, checks the same formulas strictly.)
    """
    return float(np.abs(grad_outputs).max()) if dtype == np.float32 else 0.0


def run(fn_name, backend, *args, **kw):
    return getattr(cells, fn_name)(*args, backend=backend, **kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("B,D,H", SHAPES)
@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_matches_reference(backend, cell, T, B, D, H, dtype):
    x, state0, params, _, _ = make_case(cell, T, B, D, H, dtype)
    want_out, want_final = run(f"{cell}_forward", "numpy", x, state0, params)
    got_out, got_final = run(f"{cell}_forward", backend, x, state0, params)
    assert_close("outputs", got_out, want_out, tol=TOL[dtype], dtype=dtype)
    assert_close("final", got_final, want_final, tol=TOL[dtype], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("B,D,H", SHAPES)
@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bptt_matches_reference(backend, cell, T, B, D, H, dtype):
    x, state0, params, go, gf = make_case(cell, T, B, D, H, dtype)
    variants = [
        {},
        {"grad_final": gf},
        {"truncate": 3, "return_hidden_grads": True},
        {"grad_final": gf, "truncate": 2, "return_hidden_grads": True},
        {"grad_final": gf, "truncate": 1},
    ]
    for kw in variants:
        want = run(f"{cell}_bptt", "numpy", x, state0, params, go, **kw)
        got = run(f"{cell}_bptt", backend, x, state0, params, go, **kw)
        assert_close(f"gradients {kw}", got, want, tol=TOL[dtype],
                     floor=gradient_floor(dtype, go), dtype=dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_default_backend_is_numba_for_numpy(cell, monkeypatch):
    """backend=None on NumPy input runs the Numba kernels."""
    x, state0, params, _, _ = make_case(cell, 3, 2, 4, 5, np.float64)
    called = []
    real = getattr(numba_cpu, f"{cell}_forward")
    monkeypatch.setattr(numba_cpu, f"{cell}_forward",
                        lambda *a: called.append(1) or real(*a))
    getattr(cells, f"{cell}_forward")(x, state0, params)
    assert called


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cell", CELLS)
def test_torch_tensors_in_torch_tensors_out(cell, dtype):
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    x, state0, params, go, gf = make_case(cell, 7, 3, 5, 7, np_dtype)
    t = torch.from_numpy
    tstate = tuple(map(t, state0)) if cell == "lstm" else t(state0)
    tgf = tuple(map(t, gf)) if cell == "lstm" else t(gf)
    tparams = {k: t(v) for k, v in params.items()}
    want_out, want_final = run(f"{cell}_forward", "numpy", x, state0, params)
    out, final = getattr(cells, f"{cell}_forward")(t(x), tstate, tparams)  # backend=None
    assert isinstance(out, torch.Tensor) and out.dtype == dtype
    assert_close("outputs", out.numpy(), want_out, tol=TOL[np_dtype], dtype=np_dtype)
    finals = final if cell == "lstm" else (final,)
    want_finals = want_final if cell == "lstm" else (want_final,)
    for f, w in zip(finals, want_finals, strict=True):
        assert isinstance(f, torch.Tensor) and f.dtype == dtype
        assert_close("final", f.numpy(), w, tol=TOL[np_dtype], dtype=np_dtype)

    want = run(f"{cell}_bptt", "numpy", x, state0, params, go, grad_final=gf, truncate=3,
               return_hidden_grads=True)
    got = getattr(cells, f"{cell}_bptt")(t(x), tstate, tparams, t(go), grad_final=tgf,
                                         truncate=3, return_hidden_grads=True)
    for k in want:
        g = got[k] if isinstance(got[k], tuple) else (got[k],)
        assert all(isinstance(v, torch.Tensor) and v.dtype == dtype and not v.requires_grad
                   for v in g), k
        assert_close(k, tuple(v.numpy() for v in g),
                     want[k] if isinstance(want[k], tuple) else (want[k],), tol=TOL[np_dtype],
                     dtype=np_dtype)


def test_torch_forward_is_differentiable():
    """Through the public API, torch tensors that require grad give a graph to backpropagate."""
    x, h0, params, go, _ = make_case("gru", 5, 2, 3, 4, np.float64)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    out, _ = cells.gru_forward(torch.tensor(x), torch.tensor(h0), tp)
    (out * torch.from_numpy(go)).sum().backward()
    want = cells.gru_bptt(x, h0, params, go, backend="numpy")
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert_close(k, tp[k].grad.numpy(), want[k], tol=TOL[np.float64], dtype=np.float64)


@pytest.mark.parametrize("cell", CELLS)
def test_numba_accepts_non_contiguous_input(cell):
    """Strided views and Fortran-order weights give the reference's result."""
    x, state0, params, _, _ = make_case(cell, 6, 3, 4, 5, np.float64)
    xs = np.ascontiguousarray(np.swapaxes(x, 0, 1)).swapaxes(0, 1)  # same values, strided
    params_f = {k: np.asfortranarray(v) if v.ndim == 2 else v for k, v in params.items()}
    want_out, _ = run(f"{cell}_forward", "numpy", x, state0, params)
    got_out, _ = run(f"{cell}_forward", "numba", xs, state0, params_f)
    assert_close("outputs", got_out, want_out, tol=TOL[np.float64], dtype=np.float64)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
@pytest.mark.parametrize("cell", CELLS)
def test_half_precision_is_refused_naming_the_supported_dtypes(cell, backend):
    """float16 is a TypeError naming the argument and float32/float64 (convention rule 6)."""
    x, state0, params, _, _ = make_case(cell, 6, 3, 4, 5, np.float64)
    with pytest.raises(TypeError, match=r"x must be .*float32 or float64.*got dtype float16"):
        run(f"{cell}_forward", backend, x.astype(np.float16), state0, params)


@pytest.mark.parametrize("dtype,ulps", [(np.float32, 8), (np.float64, 8)])
def test_numba_tanh_is_accurate(dtype, ulps):
    """The vectorisable tanh of the Numba kernels, against np.tanh in float64 (long double
    where there is one), over tiny, ordinary, saturating and infinite arguments."""
    from numba import njit

    @njit
    def apply(a, out):
        for i in range(a.size):
            out[i] = numba_cpu._tanh(a[i])

    @njit
    def apply_sigmoid(a, out):
        for i in range(a.size):
            out[i] = numba_cpu._sigmoid(a[i])

    a = np.concatenate([np.linspace(-12, 12, 200_001), np.geomspace(1e-30, 1, 2001),
                        -np.geomspace(1e-30, 1, 2001), [0.0, 25.0, -40.0, 1e30, np.inf, -np.inf]])
    a = a.astype(dtype)
    out = np.empty_like(a)
    apply(a, out)
    exact = np.tanh(a.astype(np.longdouble))
    err_ulps = np.abs(out - exact) / np.spacing(np.abs(exact).astype(dtype) + np.finfo(dtype).tiny)
    assert err_ulps.max() <= ulps, (err_ulps.max(), a[err_ulps.argmax()])
    assert out.dtype == dtype and np.all(np.abs(out) <= 1)

    apply_sigmoid(a, out)
    exact = 0.5 * (1 + np.tanh(a.astype(np.longdouble) / 2))
    np.testing.assert_allclose(out, exact.astype(np.float64), rtol=0,
                               atol=ulps * np.finfo(dtype).eps)


def test_numba_tanh32_coefficients_are_reproducible():
    """The float32 rational tanh's coefficients are what the documented fit produces."""
    P, Q = numba_cpu._fit_tanh_rational()
    # (to a few float32 ulps: another LAPACK may round the least-squares solves differently)
    np.testing.assert_allclose(np.array(numba_cpu._P32), P, rtol=1e-6)
    np.testing.assert_allclose(np.array(numba_cpu._Q32), Q, rtol=1e-6)
