"""The selective SSM reference against oracles that do not depend on it: an explicit loop over
every (batch, channel, state) entry, the closed form of a time-invariant system, and
torch.autograd through a loop for the gradients of the Torch twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec.gradcheck import rel_error
from minirec.ssm import reference as ref
from minirec.ssm import torch_ops


def _inputs(rng, T, B, D, N):
    return (rng.normal(size=(T, B, D)), rng.uniform(0.01, 1.5, size=(T, B, D)),
            -rng.uniform(0.2, 3.0, size=(D, N)), rng.normal(size=(T, B, N)),
            rng.normal(size=(T, B, N)), rng.normal(size=D), rng.normal(size=(B, D, N)))


def _scalar_loop(x, delta, A, B, C, D, h0):
    """Every entry by hand: h[b,d,n] ← exp(Δ A[d,n]) h[b,d,n] + Δ B[n] x[d]; y = Σ_n h C[n]."""
    T, batch, width = x.shape
    h = h0.copy()
    y = np.zeros_like(x)
    for t in range(T):
        for b in range(batch):
            for d in range(width):
                for n in range(A.shape[1]):
                    dt = delta[t, b, d]
                    h[b, d, n] = np.exp(dt * A[d, n]) * h[b, d, n] + dt * B[t, b, n] * x[t, b, d]
                    y[t, b, d] += h[b, d, n] * C[t, b, n]
                y[t, b, d] += D[d] * x[t, b, d]
    return y, h


@pytest.mark.parametrize("T,B,D,N", [(1, 1, 1, 1), (7, 2, 3, 4), (12, 3, 5, 2)])
def test_loop_and_scan_forms_match_the_scalar_loop(T, B, D, N):
    args = _inputs(np.random.default_rng(T), T, B, D, N)
    y_ref, h_ref = _scalar_loop(*args)
    x, delta, A, Bm, C, Dv, h0 = args
    for form in (ref.selective_scan_loop, ref.selective_scan):
        y, h = form(x, delta, A, Bm, C, D=Dv, h0=h0)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-12)


def test_time_invariant_impulse_response_closed_form():
    """Constant Δ, B, C and x = (1, 0, 0, …): y_t = Σ_n C_n e^{t Δ A_n} Δ B_n (S4's kernel)."""
    T, D, N = 20, 2, 3
    rng = np.random.default_rng(0)
    A = -rng.uniform(0.1, 1.0, size=(D, N))
    Bv, Cv, dt = rng.normal(size=N), rng.normal(size=N), 0.3
    x = np.zeros((T, 1, D))
    x[0] = 1.0
    y, _ = ref.selective_scan(x, np.full((T, 1, D), dt), A, np.tile(Bv, (T, 1, 1)),
                              np.tile(Cv, (T, 1, 1)))
    t = np.arange(T)[:, None, None]
    expected = (Cv * np.exp(t * dt * A) * dt * Bv).sum(-1)[:, None]    # (T, 1, D)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)


def test_selectivity_small_step_keeps_the_state_large_step_overwrites_it():
    A = -np.ones((1, 1))
    h0 = np.array([[[5.0]]])
    x, B, C = np.array([[[2.0]]]), np.ones((1, 1, 1)), np.ones((1, 1, 1))
    _, kept = ref.selective_scan(x, np.full((1, 1, 1), 1e-8), A, B, C, h0=h0)
    _, written = ref.selective_scan(x, np.full((1, 1, 1), 50.0), A, B, C, h0=h0)
    assert kept[0, 0, 0] == pytest.approx(5.0, rel=1e-6)            # Δ → 0: ignore x, keep h
    assert written[0, 0, 0] == pytest.approx(50.0 * 2.0)            # Δ large: forget h, write Δx


def test_discretisation():
    delta, A = np.array([[0.5, 2.0]]), np.array([[-1.0, -3.0], [-0.5, -2.0]])
    a, b = ref.discretize(delta, A, np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]]))
    np.testing.assert_allclose(a, np.exp(np.array([[[-0.5, -1.5], [-1.0, -4.0]]])))
    np.testing.assert_allclose(b, [[[1.5, 3.0], [8.0, 16.0]]])
    assert ((0 < a) & (a < 1)).all()


def test_layer_selection_and_initialisation():
    rng = np.random.default_rng(1)
    p = ref.init_params(6, 4, rng=rng, dt_min=1e-3, dt_max=1e-1)
    assert {k: v.shape for k, v in p.items()} == {
        "A_log": (6, 4), "weight_delta": (6, 6), "bias_delta": (6,), "weight_B": (4, 6),
        "weight_C": (4, 6), "D": (6,)}
    np.testing.assert_allclose(-np.exp(p["A_log"]), -np.tile(np.arange(1, 5), (6, 1)))
    dt = ref.softplus(p["bias_delta"])
    assert ((dt >= 1e-3) & (dt <= 1e-1)).all()
    np.testing.assert_allclose(ref.softplus(ref.inverse_softplus(dt)), dt, rtol=1e-12)
    x = rng.normal(size=(5, 2, 6))
    delta, A, B, C = ref.ssm_inputs(x, p)
    np.testing.assert_allclose(delta, np.log1p(np.exp(x @ p["weight_delta"].T + p["bias_delta"])))
    assert (delta > 0).all() and (A < 0).all() and B.shape == C.shape == (5, 2, 4)


def test_softplus_does_not_overflow():
    assert ref.softplus(np.array([1000.0]))[0] == 1000.0
    assert 0 < ref.softplus(np.array([-1000.0]))[0] < 1e-300 or ref.softplus(-1000.0) == 0.0


# --- the Torch twin: forward against the reference, gradients against autograd ----------------

def _torch_inputs(seed, T=9, B=2, D=3, N=4):
    args = _inputs(np.random.default_rng(seed), T, B, D, N)
    return [torch.tensor(a, requires_grad=True) for a in args]


@pytest.mark.parametrize("method", [None, "loop", "chunked"])
def test_torch_gradients_equal_autograd_through_the_loop(method):
    """The scan's custom backward (reverse-time recurrence) against autograd through T steps,
    for every input: x, Δ, A, B, C, D, h0."""
    inputs = _torch_inputs(3)
    x, delta, A, B, C, D, h0 = inputs
    g_y = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g_h = torch.randn(h0.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def grads(fn, **kw):
        y, h = fn(x, delta, A, B, C, D=D, h0=h0, **kw)
        return torch.autograd.grad((y * g_y).sum() + (h * g_h).sum(), inputs)

    for got, want in zip(grads(torch_ops.selective_scan, method=method),
                         grads(torch_ops.selective_scan_loop), strict=True):
        assert rel_error(got.numpy(), want.numpy()) < 1e-10


def test_torch_forward_matches_the_reference():
    x, delta, A, B, C, D, h0 = (t.detach() for t in _torch_inputs(4))
    y, h = torch_ops.selective_scan(x, delta, A, B, C, D=D, h0=h0)
    y_ref, h_ref = ref.selective_scan(*(t.numpy() for t in (x, delta, A, B, C)), D=D.numpy(),
                                      h0=h0.numpy())
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), h_ref, rtol=1e-12, atol=1e-12)


def test_torch_gradcheck_of_the_layer():
    rng = np.random.default_rng(5)
    params = {k: torch.tensor(v, requires_grad=True)
              for k, v in ref.init_params(3, 2, rng=rng, dt_min=0.1, dt_max=1.0).items()}
    x = torch.tensor(rng.normal(size=(5, 2, 3)), requires_grad=True)

    def layer(x, *values):
        return torch_ops.selective_ssm(x, dict(zip(params, values, strict=True)))[0]

    assert torch.autograd.gradcheck(layer, (x, *params.values()), eps=1e-6, atol=1e-7)


def test_module_matches_the_numpy_layer_with_copied_parameters():
    module = torch_ops.SelectiveSSM(5, 3, generator=torch.Generator().manual_seed(0),
                                    dtype=torch.float64)
    x = np.random.default_rng(6).normal(size=(8, 2, 5))
    y, h = module(torch.tensor(x))
    params = {k: v.detach().numpy() for k, v in module.params().items()}
    y_ref, h_ref = ref.selective_ssm(x, params)
    np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.detach().numpy(), h_ref, rtol=1e-12, atol=1e-12)
    dt = torch.nn.functional.softplus(module.bias_delta)
    assert ((dt >= 1e-3 - 1e-12) & (dt <= 1e-1 + 1e-12)).all()
