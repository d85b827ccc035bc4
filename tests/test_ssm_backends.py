"""Every backend of minirec.ssm against the NumPy reference (float64 to ~1e-10, float32 to
~1e-5, T ∈ {1, 2, 7, 63}, odd sizes), results in the input's kind and dtype, and bad input
refused at the door with the argument's name and expected shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec import ssm
from minirec.ssm import reference as ref


def _inputs(T, B, D, N, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    arrays = (rng.normal(size=(T, B, D)), rng.uniform(0.01, 1.5, size=(T, B, D)),
              -rng.uniform(0.2, 3.0, size=(D, N)), rng.normal(size=(T, B, N)),
              rng.normal(size=(T, B, N)), rng.normal(size=D), rng.normal(size=(B, D, N)))
    return [a.astype(dtype) for a in arrays]


SIZES = [(1, 1, 1, 1), (2, 3, 5, 2), (7, 2, 3, 4), (63, 3, 7, 5)]


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("T,B,D,N", SIZES)
@pytest.mark.parametrize("with_h0", [False, True])
def test_backend_matches_reference_float64(backend, T, B, D, N, with_h0):
    x, delta, A, Bm, C, Dv, h0 = _inputs(T, B, D, N)
    h0 = h0 if with_h0 else None
    y_ref, h_ref = ref.selective_scan(x, delta, A, Bm, C, D=Dv, h0=h0)
    y, h = ssm.selective_scan(x, delta, A, Bm, C, D=Dv, h0=h0, return_state=True,
                              backend=backend)
    assert type(y) is np.ndarray and y.dtype == np.float64
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_backend_float32(backend):
    x, delta, A, Bm, C, Dv, h0 = _inputs(63, 3, 7, 5, dtype=np.float32)
    y_ref, h_ref = ref.selective_scan(*(a.astype(np.float64) for a in (x, delta, A, Bm, C)),
                                      D=Dv.astype(np.float64), h0=h0.astype(np.float64))
    y, h = ssm.selective_scan(x, delta, A, Bm, C, D=Dv, h0=h0, return_state=True,
                              backend=backend)
    assert y.dtype == h.dtype == np.float32
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-5)


def test_tensors_in_tensors_out():
    arrays = _inputs(7, 2, 3, 4)
    tensors = [torch.tensor(a) for a in arrays]
    y = ssm.selective_scan(*tensors[:5], D=tensors[5], h0=tensors[6])
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), ref.selective_scan(*arrays[:5], D=arrays[5],
                                                             h0=arrays[6])[0], rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_layer_every_backend(backend):
    rng = np.random.default_rng(2)
    params = ssm.init_params(5, 3, rng=rng, dt_min=0.01, dt_max=1.0)
    x = rng.normal(size=(11, 2, 5))
    y_ref, h_ref = ref.selective_ssm(x, params)
    y, h = ssm.selective_ssm(x, params, return_state=True, backend=backend)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-12)


def test_numba_leaves_h0_unchanged():
    x, delta, A, Bm, C, Dv, h0 = _inputs(5, 2, 3, 4)
    before = h0.copy()
    ssm.selective_scan(x, delta, A, Bm, C, h0=h0, backend="numba")
    np.testing.assert_array_equal(h0, before)


# --- validation ----------------------------------------------------------------------------------

def test_shape_errors_name_the_argument():
    x, delta, A, Bm, C, Dv, h0 = _inputs(5, 2, 3, 4)
    with pytest.raises(ValueError, match=r"delta must have shape \(T, B, D\) = \(5, 2, 3\) "
                                         r"\(T=5 from x\); got \(4, 2, 3\)"):
        ssm.selective_scan(x, delta[:4], A, Bm, C)
    with pytest.raises(ValueError, match=r"A must have shape \(D, N\) = \(3, N\)"):
        ssm.selective_scan(x, delta, A.T, Bm, C)
    with pytest.raises(ValueError, match=r"C must have shape \(T, B, N\) = \(5, 2, 4\) "
                                         r"\(N=4 from A\); got \(5, 2, 3\)"):
        ssm.selective_scan(x, delta, A, Bm, C[..., :3])
    with pytest.raises(ValueError, match=r"h0 must have 3 dimensions \(B, D, N\)"):
        ssm.selective_scan(x, delta, A, Bm, C, h0=h0[0])
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(T, B, D\)"):
        ssm.selective_scan(x[:, 0], delta, A, Bm, C)
    with pytest.raises(ValueError, match="at least one time step"):
        ssm.selective_scan(x[:0], delta[:0], A, Bm[:0], C[:0])


def test_type_errors():
    x, delta, A, Bm, C, *_ = _inputs(5, 2, 3, 4)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        ssm.selective_scan(x.astype(int), delta, A, Bm, C)
    with pytest.raises(TypeError, match="share one floating dtype"):
        ssm.selective_scan(x.astype(np.float32), delta, A, Bm, C)
    with pytest.raises(TypeError, match="mix of NumPy arrays and torch tensors"):
        ssm.selective_scan(torch.tensor(x), delta, A, Bm, C)


def test_layer_parameter_errors():
    params = ssm.init_params(4, 2, rng=np.random.default_rng(0))
    x = np.zeros((3, 1, 4))
    with pytest.raises(ValueError, match=r"params is missing \['D'\]"):
        ssm.selective_ssm(x, {k: v for k, v in params.items() if k != "D"})
    bad = dict(params, weight_B=params["weight_B"].T)
    with pytest.raises(ValueError, match=r"params\['weight_B'\] must have shape \(N, D\) = "
                                         r"\(2, 4\)"):
        ssm.selective_ssm(x, bad)
    with pytest.raises(ValueError, match=r"params\['A_log'\] must have shape \(D, N\) = \(5, N\)"):
        ssm.selective_ssm(np.zeros((3, 1, 5)), params)


def test_numba_parallel_path_matches_the_reference(monkeypatch):
    from minirec.ssm import numba_cpu
    monkeypatch.setattr(numba_cpu, "PARALLEL_MIN_WORK", 1)
    x, delta, A, Bm, C, Dv, h0 = _inputs(9, 3, 5, 2)
    y, h = numba_cpu.selective_scan(x, delta, A, Bm, C, D=Dv, h0=h0)
    y_ref, h_ref = ref.selective_scan(x, delta, A, Bm, C, D=Dv, h0=h0)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_on_cuda_matches_the_reference_with_gradients():
    arrays = _inputs(63, 3, 7, 5)
    cuda = [torch.tensor(a, device="cuda", requires_grad=True) for a in arrays]
    cpu = [torch.tensor(a, requires_grad=True) for a in arrays]
    from minirec.ssm import torch_ops
    y_gpu, h_gpu = torch_ops.selective_scan(*cuda[:5], D=cuda[5], h0=cuda[6])
    y_cpu, h_cpu = torch_ops.selective_scan_loop(*cpu[:5], D=cpu[5], h0=cpu[6])
    np.testing.assert_allclose(y_gpu.detach().cpu().numpy(), y_cpu.detach().numpy(), rtol=1e-10)
    (y_gpu.sum() + h_gpu.sum()).backward()
    (y_cpu.sum() + h_cpu.sum()).backward()
    for g, c in zip(cuda, cpu, strict=True):
        np.testing.assert_allclose(g.grad.cpu().numpy(), c.grad.numpy(), rtol=1e-9, atol=1e-11)
