"""Every memory backend against the reference: outputs and final memory (float64 ~1e-10,
float32 ~1e-5, T ∈ {1, 2, 7, 63}, odd sizes), and the Torch forms' gradients against each other
and against float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec import memory
from minirec.gradcheck import numerical_gradient
from minirec.memory import numba_cpu, torch_ops
from minirec.memory import reference as ref

SIZES = [(1, 3, 2), (2, 5, 4), (7, 6, 3), (63, 5, 7)]


def _inputs(T, d_k, d_v, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(T, d_k)) / np.sqrt(d_k)
    v, q = rng.normal(size=(T, d_v)), rng.normal(size=(T, d_k)) / np.sqrt(d_k)
    gates = (rng.uniform(0, 1, T), rng.uniform(0, 0.5, T), rng.uniform(0, 0.2, T))
    state = (rng.normal(size=(d_v, d_k)), 0.1 * rng.normal(size=(d_v, d_k)))
    cast = (lambda x: x.astype(dtype))
    return (*map(cast, (k, v, q)), tuple(map(cast, gates)), tuple(map(cast, state)))


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)


def _torch(*arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T,d_k,d_v", SIZES)
def test_numba_equals_reference(T, d_k, d_v, dtype):
    k, v, q, gates, state = _inputs(T, d_k, d_v, T, dtype)
    for got, want in [
        (numba_cpu.hebbian_memory(k, v, q, state[0]), ref.hebbian_memory(k, v, q, state[0])),
        (numba_cpu.delta_rule_memory(k, v, q, gates[1], state[0]),
         ref.delta_rule_memory(k, v, q, gates[1], state[0])),
    ]:
        assert got[0].dtype == dtype and got[1].dtype == dtype
        np.testing.assert_allclose(got[0], want[0], **_tol(dtype))
        np.testing.assert_allclose(got[1], want[1], **_tol(dtype))
    y, (M, S) = numba_cpu.titans_linear(k, v, q, *gates, state)
    y0, (M0, S0) = ref.titans_linear(k, v, q, *gates, state)
    assert y.dtype == M.dtype == S.dtype == dtype
    for a, b in ((y, y0), (M, M0), (S, S0)):
        np.testing.assert_allclose(a, b, **_tol(dtype))


def test_numba_does_not_modify_the_initial_state():
    k, v, q, gates, state = _inputs(7, 4, 3, 0)
    before = [s.copy() for s in state]
    numba_cpu.titans_linear(k, v, q, *gates, state)
    numba_cpu.delta_rule_memory(k, v, q, gates[1], state[0])
    for a, b in zip(state, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T,d_k,d_v", SIZES)
def test_torch_equals_reference(T, d_k, d_v, dtype):
    k, v, q, gates, state = _inputs(T, d_k, d_v, 100 + T, dtype)
    kt, vt, qt, *rest = _torch(k, v, q, *gates, *state)
    gt, st = rest[:3], rest[3:]
    pairs = [
        (torch_ops.hebbian_memory(kt, vt, qt, st[0]), ref.hebbian_memory(k, v, q, state[0])),
        (torch_ops.delta_rule_memory(kt, vt, qt, gt[1], st[0]),
         ref.delta_rule_memory(k, v, q, gates[1], state[0])),
    ]
    y, (M, S) = torch_ops.titans_linear(kt, vt, qt, *gt, tuple(st))
    pairs.append(((y, M, S), (lambda r: (r[0], *r[1]))(ref.titans_linear(k, v, q, *gates, state))))
    for C in (1, 3, 64):
        y, (M, S) = torch_ops.titans_linear_chunked(kt, vt, qt, *gt, C, tuple(st))
        want = ref.titans_linear_chunked(k, v, q, *gates, C, state)
        pairs.append(((y, M, S), (want[0], *want[1])))
    for got, want in pairs:
        for a, b in zip(got, want):
            assert a.dtype == getattr(torch, np.dtype(dtype).name)
            np.testing.assert_allclose(a.numpy(), b, **_tol(dtype))


@pytest.mark.parametrize("C", [1, 4])
def test_torch_mlp_memory_equals_reference(C):
    k, v, q, gates, _ = _inputs(11, 5, 3, 7)
    params = ref.init_mlp_memory(5, 3, 9, rng=np.random.default_rng(1))
    y, (p, s) = ref.titans_mlp(k, v, q, *gates, params, chunk_size=C)
    kt, vt, qt, *gt = _torch(k, v, q, *gates)
    pt = {n: torch.from_numpy(w) for n, w in params.items()}
    y2, (p2, s2) = torch_ops.titans_mlp(kt, vt, qt, *gt, pt, chunk_size=C)
    np.testing.assert_allclose(y2.numpy(), y, rtol=1e-10, atol=1e-10)
    for n in params:
        np.testing.assert_allclose(p2[n].numpy(), p[n], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(s2[n].numpy(), s[n], rtol=1e-10, atol=1e-10)


def _loss_and_grads(fn, inputs, seed=0):
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    y, (M, S) = fn(*inputs)
    g = torch.Generator().manual_seed(seed)
    w_y = torch.randn(y.shape, generator=g, dtype=y.dtype)
    w_M = torch.randn(M.shape, generator=g, dtype=y.dtype)
    loss = (y * w_y).sum() + (M * w_M).sum() + (S * w_M).sum()
    return loss, torch.autograd.grad(loss, inputs)


def test_torch_chunked_gradients_equal_the_per_token_loop_at_chunk_one():
    k, v, q, gates, state = _inputs(9, 4, 3, 3)
    inputs = _torch(k, v, q, *gates, *state)

    def loop(k, v, q, e, t, a, M, S):
        return torch_ops.titans_linear(k, v, q, e, t, a, (M, S))

    def chunked(k, v, q, e, t, a, M, S):
        return torch_ops.titans_linear_chunked(k, v, q, e, t, a, 1, (M, S))

    _, g_loop = _loss_and_grads(loop, inputs)
    _, g_chunk = _loss_and_grads(chunked, inputs)
    for a, b in zip(g_chunk, g_loop):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("C", [1, 3])
def test_torch_chunked_gradients_equal_finite_differences_of_the_reference(C):
    """Autograd through the chunked Torch form against central differences of the NumPy
    reference (float64): gradients for keys, values, queries, every gate and the state."""
    k, v, q, gates, state = _inputs(5, 3, 2, 11 + C)
    names = ["k", "v", "q", "eta", "theta", "alpha", "M0", "S0"]
    arrays = [k, v, q, *gates, *state]

    def fn(k, v, q, e, t, a, M, S):
        return torch_ops.titans_linear_chunked(k, v, q, e, t, a, C, (M, S))

    _, grads = _loss_and_grads(fn, _torch(*arrays))
    g = torch.Generator().manual_seed(0)
    w_y = torch.randn((5, 2), generator=g, dtype=torch.float64).numpy()
    w_M = torch.randn((2, 3), generator=g, dtype=torch.float64).numpy()

    def loss():
        y, (M, S) = ref.titans_linear_chunked(*arrays[:6], C, (arrays[6], arrays[7]))
        return float((y * w_y).sum() + (M * w_M).sum() + (S * w_M).sum())

    for name, x, got in zip(names, arrays, grads):
        num = numerical_gradient(lambda _: loss(), x)
        np.testing.assert_allclose(got.numpy(), num, rtol=1e-6, atol=1e-7, err_msg=name)


def test_titans_layer_trains_its_gates_through_the_memory():
    torch.manual_seed(0)
    layer = torch_ops.TitansMemory(6, 4, 3, chunk_size=2).double()
    x = torch.randn(10, 6, dtype=torch.float64)
    y, (M, S) = layer(x, return_state=True)
    assert y.shape == (10, 3) and M.shape == S.shape == (3, 4)
    y.pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    eta, theta, alpha = layer.gates(x)
    assert ((0 < eta) & (eta < 1) & (0 < alpha) & (alpha < 1) & (theta > 0)).all()


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_public_api_backends_agree(backend):
    k, v, q, gates, state = _inputs(13, 5, 4, 21)
    want = ref.titans_linear(k, v, q, *gates, state)
    y, (M, S) = memory.titans_memory(k, v, q, eta=gates[0], theta=gates[1], alpha=gates[2],
                                     state=state, return_state=True, backend=backend)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, want[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(M, want[1][0], rtol=1e-10, atol=1e-10)
    y4 = memory.titans_memory(k, v, q, eta=0.3, theta=0.2, alpha=0.1, chunk_size=4,
                              backend=backend)
    T = 13
    np.testing.assert_allclose(
        y4, ref.titans_linear_chunked(k, v, q, np.full(T, 0.3), np.full(T, 0.2), np.full(T, 0.1),
                                      4)[0], rtol=1e-10, atol=1e-10)
    ym = memory.titans_memory(k, v, q, eta=0.3, theta=0.05, alpha=0.1, memory="mlp", hidden=7,
                              seed=3, backend=backend)
    params = ref.init_mlp_memory(5, 4, 7, rng=np.random.default_rng(3))
    np.testing.assert_allclose(
        ym, ref.titans_mlp(k, v, q, np.full(T, 0.3), np.full(T, 0.05), np.full(T, 0.1),
                           params)[0], rtol=1e-10, atol=1e-10)
    h, Mh = memory.hebbian_memory(k, v, q, return_state=True, backend=backend)
    np.testing.assert_allclose(h, ref.hebbian_memory(k, v, q)[0], rtol=1e-10, atol=1e-10)
    d = memory.delta_rule_memory(k, v, q, theta=gates[1], backend=backend)
    np.testing.assert_allclose(d, ref.delta_rule_memory(k, v, q, gates[1])[0], rtol=1e-10,
                               atol=1e-10)


def test_public_api_keeps_torch_tensors_and_their_gradients():
    k, v, q, gates, _ = _inputs(6, 3, 2, 1)
    kt, vt, qt, et, tt, at = (x.requires_grad_(True) for x in _torch(k, v, q, *gates))
    y = memory.titans_memory(kt, vt, qt, eta=et, theta=tt, alpha=at, chunk_size=2)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    y.sum().backward()
    assert all(x.grad is not None for x in (kt, vt, qt, et, tt, at))
    y32 = memory.titans_memory(kt.detach().float(), vt.detach().float(), qt.detach().float(),
                               eta=0.5, theta=0.1, alpha=0.0)
    assert y32.dtype == torch.float32


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 30), C=st.integers(1, 12), seed=st.integers(0, 10_000),
       extremes=st.booleans())
def test_torch_parallel_chunk_form_equals_the_reference_scans(T, C, seed, extremes):
    """The (C, C) decay-matrix form against the reference's two scans, any T and C (short last
    chunk included), with gates at their limits (η = 0, α = 1, θ = 0) when ``extremes``."""
    k, v, q, gates, state = _inputs(T, 3, 2, seed)
    if extremes:
        rng = np.random.default_rng(seed)
        gates = tuple(np.where(rng.uniform(size=T) < 0.3, edge, g)
                      for g, edge in zip(gates, (0.0, 0.0, 1.0)))
    want = ref.titans_linear_chunked(k, v, q, *gates, C, state)
    y, (M, S) = torch_ops.titans_linear_chunked(*_torch(k, v, q, *gates), C,
                                                tuple(_torch(*state)))
    np.testing.assert_allclose(y.numpy(), want[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(M.numpy(), want[1][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(S.numpy(), want[1][1], rtol=1e-10, atol=1e-10)


def test_decay_weights_are_products_of_the_gate():
    g = torch.tensor([[0.5, 0.0, 0.8, 0.9]], dtype=torch.float64)
    W, w = torch_ops.decay_weights(g)
    want = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0.8, 1, 0], [0, 0.72, 0.9, 1]])
    np.testing.assert_allclose(W[0].numpy(), want, rtol=1e-15, atol=0)
    np.testing.assert_allclose(w[0].numpy(), [0.5, 0, 0, 0], rtol=1e-15, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_forms_on_cuda_equal_the_reference():
    k, v, q, gates, state = _inputs(37, 6, 5, 9)
    dev = [x.cuda() for x in _torch(k, v, q, *gates)]
    st_dev = tuple(x.cuda() for x in _torch(*state))
    for C in (1, 8):
        y, (M, S) = torch_ops.titans_linear_chunked(*dev, C, st_dev)
        want = ref.titans_linear_chunked(k, v, q, *gates, C, state)
        np.testing.assert_allclose(y.cpu().numpy(), want[0], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(M.cpu().numpy(), want[1][0], rtol=1e-10, atol=1e-10)
    y, _ = torch_ops.titans_linear(*dev, st_dev)
    np.testing.assert_allclose(y.cpu().numpy(), ref.titans_linear(k, v, q, *gates, state)[0],
                               rtol=1e-10, atol=1e-10)
