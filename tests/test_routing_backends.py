"""Every routing backend (Numba, Torch, through the public API) against the NumPy reference:
float64 to ~1e-12, float32 to ~1e-5, integer outputs exactly; capacity, odd sizes, k = E."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minirec.routing as routing
from minirec.routing import reference as ref

BACKENDS = ("numba", "torch")
SIZES = [(1, 1, 1, 1), (7, 5, 2, 3), (63, 8, 2, 5), (33, 3, 3, 4), (20, 6, 1, 7)]  # N, E, k, d
TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-5, atol=1e-6)}


def _case(N, E, k, d, dtype, seed=0):
    rng = np.random.default_rng(seed + 1000 * N + E)
    logits = rng.normal(size=(N, E)).astype(dtype)
    x = rng.normal(size=(N, d)).astype(dtype)
    return logits, x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N,E,k,d", SIZES)
def test_top_k_route(backend, dtype, N, E, k, d):
    logits, _ = _case(N, E, k, d, dtype)
    for normalize in (True, False):
        w_ref, i_ref = routing.top_k_route(logits, k, normalize=normalize, backend="numpy")
        w, i = routing.top_k_route(logits, k, normalize=normalize, backend=backend)
        assert w.dtype == dtype and i.dtype == np.int64
        np.testing.assert_array_equal(i, i_ref)
        np.testing.assert_allclose(w, w_ref, **TOL[dtype])
    w, _ = routing.top_k_route(logits, k, backend=backend)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, **TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("capacity", [None, 1, 3, 1000])
@pytest.mark.parametrize("N,E,k,d", SIZES)
def test_dispatch_combine_slots(backend, capacity, N, E, k, d):
    logits, x = _case(N, E, k, d, np.float64)
    w, idx = ref.top_k_route(logits, k)
    slots_ref = ref.expert_slots(idx, E, capacity)
    np.testing.assert_array_equal(routing.expert_slots(idx, E, capacity, backend=backend),
                                  slots_ref)
    buf_ref, s_ref = ref.dispatch(x, idx, E, capacity)
    buf, s = routing.dispatch(x, idx, E, capacity, backend=backend)
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(buf, buf_ref)
    out = np.tanh(buf_ref) * 1.5
    np.testing.assert_allclose(routing.combine(out, w, idx, s_ref, backend=backend),
                               ref.combine(out, w, idx, s_ref), **TOL[np.float64])


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_dispatch_combine(backend):
    logits, x = _case(40, 6, 2, 9, np.float32)
    w, idx = ref.top_k_route(logits, 2)
    buf, s = routing.dispatch(x, idx, 6, 5, backend=backend)
    assert buf.dtype == np.float32
    np.testing.assert_array_equal(buf, ref.dispatch(x, idx, 6, 5)[0])
    y = routing.combine(buf, w, idx, s, backend=backend)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref.combine(buf, w, idx, s), **TOL[np.float32])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("N,E,k,d", SIZES)
def test_load_balance_loss(backend, N, E, k, d):
    logits, _ = _case(N, E, k, d, np.float64)
    probs = ref.softmax(logits)
    idx = ref.top_k_route(logits, k)[1]
    loss = routing.load_balance_loss(probs, idx, backend=backend)
    assert np.ndim(loss) == 0
    assert float(loss) == pytest.approx(ref.load_balance_loss(probs, idx), rel=1e-13)


def test_default_backend_is_numba_for_numpy_and_torch_for_tensors():
    logits, x = _case(9, 4, 2, 3, np.float64)
    w, idx = routing.top_k_route(logits, 2)
    assert isinstance(w, np.ndarray)
    wt, it = routing.top_k_route(torch.as_tensor(logits), 2)
    assert isinstance(wt, torch.Tensor) and it.dtype == torch.int64
    np.testing.assert_allclose(wt.numpy(), w, rtol=1e-13)
    buf, s = routing.dispatch(torch.as_tensor(x), it, 4)
    np.testing.assert_array_equal(buf.numpy(), ref.dispatch(x, idx, 4)[0])
    y = routing.combine(buf, wt, it, s)
    np.testing.assert_allclose(y.numpy(), ref.combine(buf.numpy(), w, idx, s.numpy()), rtol=1e-13)


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 30), E=st.integers(1, 6), k_frac=st.floats(0, 1),
       capacity=st.one_of(st.none(), st.integers(1, 12)), seed=st.integers(0, 2**16))
def test_property_backends_agree_and_capacity_is_respected(N, E, k_frac, capacity, seed):
    k = 1 + int(k_frac * (E - 1))
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N, E))
    _, idx = ref.top_k_route(logits, k)
    slots = ref.expert_slots(idx, E, capacity)
    for backend in BACKENDS:
        np.testing.assert_array_equal(routing.expert_slots(idx, E, capacity, backend=backend),
                                      slots)
    kept = slots >= 0
    loads = np.bincount(idx[kept], minlength=E)
    if capacity is not None:
        assert loads.max(initial=0) <= capacity
        # an expert drops a choice only when it is full
        full = np.bincount(idx.ravel(), minlength=E) > capacity
        assert np.all(full[idx[~kept]])
        np.testing.assert_array_equal(loads, np.minimum(np.bincount(idx.ravel(), minlength=E),
                                                        capacity))
    else:
        assert kept.all()
    for e in range(E):                                      # slots of an expert are 0 … load−1
        assert sorted(slots[kept & (idx == e)]) == list(range(loads[e]))


def test_numba_kernels_are_cached():
    from minirec.routing import numba_cpu
    kernels = [numba_cpu._top_k_kernel, numba_cpu._slots_kernel, numba_cpu._dispatch_kernel,
               numba_cpu._combine_kernel]
    assert all(type(kernel._cache).__name__ != "NullCache" for kernel in kernels)
