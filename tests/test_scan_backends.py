"""Every implementation of the linear recurrence against the NumPy reference.

Numba (each kernel, and the default), Torch (the autograd.Function, the doubling form, the loop)
through the public ``minirec.scan.linear_recurrence`` and directly: outputs, and for Torch every
gradient — against the reference backward AND against torch.autograd through a Python loop.
T ∈ {1, 2, 7, 63, 1000}, trailing shapes that are not powers of two (and broadcast ones), decays
near 0, near 1 and of both signs, float64 to 1e-10 and float32 to 1e-5 relative to the largest
value (float32 inputs are compared with the float64 reference of the same inputs). Bad input is
refused with a message naming the argument and the expected shape.
"""

import numpy as np
import pytest
import torch

from minirec import scan
from minirec.scan import numba_cpu, torch_ops
from minirec.scan import reference as R

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

STEPS = [1, 2, 7, 63, 1000]
TOL = {np.float64: 1e-10, np.float32: 1e-5}
DECAYS = ["near0", "near1", "signed"]
# (a's shape, b's shape, h0's shape) after T: plain, a broadcast over a batch axis, a scalar
# decay per step, h0 broadcast, one channel
SHAPES = [((5,), (5,), (5,)), ((1, 3), (2, 3), (3,)), ((), (3, 7), None), ((6,), (6,), (1,)),
          ((), (), ())]


def make_case(T, shapes, decay, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a_shape, b_shape, h0_shape = shapes
    u = rng.uniform(size=(T, *a_shape))
    a = {"near0": 1e-3 * u, "near1": 1 - 1e-3 * u, "signed": 2 * u - 1}[decay]
    b = rng.normal(size=(T, *b_shape))
    h0 = None if h0_shape is None else rng.normal(size=h0_shape)
    cast = lambda x: None if x is None else x.astype(dtype)
    return cast(a), cast(b), cast(h0)


def reference_h(a, b, h0):
    f64 = lambda x: None if x is None else x.astype(np.float64)
    return R.linear_recurrence(f64(a), f64(b), f64(h0))


DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])


@DTYPES
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: "x".join(map(str, s[1])) or "1")
@pytest.mark.parametrize("backend", ["numba", "torch", "numpy"])
def test_public_function_matches_reference(backend, shapes, decay, dtype):
    for T in STEPS:
        a, b, h0 = make_case(T, shapes, decay, dtype, seed=T)
        got = scan.linear_recurrence(a, b, h0, backend=backend)
        assert_close(f"{backend} T={T}", got, reference_h(a, b, h0), tol=TOL[dtype], dtype=dtype)


@DTYPES
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("method,chunk", [("sequential", None), ("channels", None),
                                          ("chunked", 3), ("chunked", 16), ("chunked", None)])
def test_every_numba_kernel_matches_reference(method, chunk, decay, dtype):
    for T in STEPS:
        for shapes in SHAPES:
            a, b, h0 = make_case(T, shapes, decay, dtype, seed=T + 1)
            got = numba_cpu.linear_recurrence(a, b, h0, method=method, chunk_size=chunk)
            assert_close(f"{method} chunk={chunk} T={T}", got, reference_h(a, b, h0),
                         tol=TOL[dtype], dtype=dtype)


def test_numba_chunked_many_chunks_and_wide_rows():
    """More chunks than one group holds and rows long enough for the vector loops' tails."""
    rng = np.random.default_rng(3)
    T, N = 5000, 37
    a, b = rng.uniform(0.9, 1.0, size=(T, N)), rng.normal(size=(T, N))
    got = numba_cpu.linear_recurrence(a, b, method="chunked", chunk_size=4)
    assert_close("chunked", got, R.linear_recurrence(a, b), tol=TOL[np.float64], dtype=np.float64)


@pytest.mark.parametrize("group_bytes", [1, 3000, 1 << 40])
def test_numba_chunked_groups_carry_the_state(group_bytes, monkeypatch):
    """Groups of one chunk per thread, groups with a ragged last chunk and a partial last group,
    and one group for everything: the state crosses group boundaries exactly."""
    monkeypatch.setattr(numba_cpu, "GROUP_BYTES", group_bytes)
    rng = np.random.default_rng(5)
    T, N = 1001, 5
    a, b, h0 = rng.uniform(0.5, 1.0, size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=N)
    got = numba_cpu.linear_recurrence(a, b, h0, method="chunked", chunk_size=7)
    assert_close(f"chunked GROUP_BYTES={group_bytes}", got, reference_h(a, b, h0),
                 tol=TOL[np.float64], dtype=np.float64)


def test_numba_products_that_underflow_are_flushed_not_slow_or_wrong():
    """Π a over a chunk falls below the smallest normal float32: flushed to 0 (its weight on the
    carried state is < 1e−38), and the result still matches."""
    rng = np.random.default_rng(4)
    a = rng.uniform(0.0, 0.1, size=(4096, 8)).astype(np.float32)
    b = rng.normal(size=(4096, 8)).astype(np.float32)
    h0 = np.full(8, 1e30, np.float32)
    got = numba_cpu.linear_recurrence(a, b, h0, method="chunked", chunk_size=512)
    assert_close("chunked", got, reference_h(a, b, h0), tol=TOL[np.float32], scale=1.0, dtype=np.float32)


@pytest.mark.parametrize("T,N,expected", [(7, 3, "sequential"), (1 << 20, 1, "sequential"),
                                           (4096, 1024, "channels"), (65536, 16, "chunked")])
def test_auto_method(T, N, expected, monkeypatch):
    monkeypatch.setattr(numba_cpu, "get_num_threads", lambda: 2)
    assert numba_cpu.choose_method(T, N) == expected
    monkeypatch.setattr(numba_cpu, "get_num_threads", lambda: 1)
    assert numba_cpu.choose_method(T, N) == "sequential"


def test_default_backend_is_numba_for_numpy(monkeypatch):
    called = []
    real = numba_cpu.linear_recurrence
    monkeypatch.setattr(numba_cpu, "linear_recurrence", lambda *a: called.append(1) or real(*a))
    scan.linear_recurrence(np.ones((3, 2)), np.ones((3, 2)))
    assert called


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_half_precision_is_refused(backend):
    a, b = np.full((5, 3), 0.5, np.float16), np.ones((5, 3), np.float16)
    with pytest.raises(TypeError, match=r"must be .*float32 or float64.*got dtype float16"):
        scan.linear_recurrence(a, b, backend=backend)


# --------------------------------------------------------------------------------------------
# Torch: outputs, and gradients against the reference backward and autograd through the loop.
# --------------------------------------------------------------------------------------------

TORCH_FNS = {
    "function": torch_ops.linear_recurrence,                     # the compiled scan, on a CPU
    "function_loop": lambda a, b, h0: torch_ops.linear_recurrence(a, b, h0, method="loop"),
    "function_chunked": lambda a, b, h0: torch_ops.linear_recurrence(a, b, h0, method="chunked"),
    "doubling": torch_ops.linear_recurrence_doubling,
    "loop": torch_ops.linear_recurrence_loop,
}


def torch_grads(fn, a, b, h0, g):
    ts = [None if x is None else torch.tensor(x, requires_grad=True) for x in (a, b, h0)]
    h = fn(*ts)
    h.backward(torch.from_numpy(g))
    # an input that h does not depend on gets no .grad (a_0 when T = 1 and h0 = None): zero
    grads = [None if t is None else (torch.zeros_like(t) if t.grad is None else t.grad).numpy()
             for t in ts]
    return h.detach().numpy(), grads


@DTYPES
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: "x".join(map(str, s[1])) or "1")
@pytest.mark.parametrize("fn", ["function", "function_chunked", "doubling"])
def test_torch_gradients_match_reference_backward_and_autograd_loop(fn, shapes, decay, dtype):
    for T in STEPS:
        a, b, h0 = make_case(T, shapes, decay, dtype, seed=T + 2)
        g = np.random.default_rng(T).normal(size=reference_h(a, b, h0).shape).astype(dtype)
        want_h = reference_h(a, b, h0)
        want = R.linear_recurrence_backward(a.astype(np.float64), want_h,
                                            None if h0 is None else h0.astype(np.float64),
                                            g.astype(np.float64), b_shape=b.shape)
        h, (ga, gb, gh0) = torch_grads(TORCH_FNS[fn], a, b, h0, g)
        assert_close(f"{fn} h T={T}", h, want_h, tol=TOL[dtype], dtype=dtype)
        assert_close(f"{fn} ∂a T={T}", ga, want["a"], tol=TOL[dtype], dtype=dtype)
        assert_close(f"{fn} ∂b T={T}", gb, want["b"], tol=TOL[dtype], dtype=dtype)
        if h0 is not None:
            assert_close(f"{fn} ∂h0 T={T}", gh0, want["h0"], tol=TOL[dtype], dtype=dtype)
        if T <= 63:                                                # the loop: T autograd nodes
            _, (la, lb, lh0) = torch_grads(TORCH_FNS["loop"], a, b, h0, g)
            assert_close(f"{fn} ∂a vs loop T={T}", ga, la.astype(np.float64), tol=TOL[dtype], dtype=dtype)
            assert_close(f"{fn} ∂b vs loop T={T}", gb, lb.astype(np.float64), tol=TOL[dtype], dtype=dtype)
            if h0 is not None:
                assert_close(f"{fn} ∂h0 vs loop T={T}", gh0, lh0.astype(np.float64),
                             tol=TOL[dtype], dtype=dtype)


def test_torch_function_backward_is_the_reverse_recurrence_not_a_graph():
    """The Function saves a, h, h0 only: its graph is one node, whatever T."""
    a = torch.rand(100, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(100, 3, dtype=torch.float64, requires_grad=True)
    for method in ["compiled", "loop", "chunked"]:
        h = torch_ops.linear_recurrence(a, b, method=method)
        assert type(h.grad_fn).__name__ == "LinearRecurrenceBackward"
        f = lambda a, b: torch_ops.linear_recurrence(a, b, method=method)  # noqa: B023
        assert torch.autograd.gradcheck(f, (a[:9], b[:9]))
    with pytest.raises(ValueError, match="method must be one of"):
        torch_ops.linear_recurrence(a, b, method="fast")


def test_torch_gradcheck_with_h0_and_broadcasting():
    rng = np.random.default_rng(5)
    a = torch.tensor(rng.uniform(-1, 1, size=(6, 1, 3)), requires_grad=True)
    b = torch.tensor(rng.normal(size=(6, 2, 3)), requires_grad=True)
    h0 = torch.tensor(rng.normal(size=(3,)), requires_grad=True)
    assert torch.autograd.gradcheck(scan.linear_recurrence, (a, b, h0))
    assert torch.autograd.gradgradcheck(torch_ops.linear_recurrence_doubling, (a, b, h0))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_torch_tensors_in_torch_tensors_out(dtype):
    a, b = torch.rand(7, 3, dtype=dtype), torch.randn(7, 3, dtype=dtype)
    h = scan.linear_recurrence(a, b)
    assert isinstance(h, torch.Tensor) and h.dtype == dtype and h.device == a.device
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert_close("h", h.numpy(), reference_h(a.numpy(), b.numpy(), None), tol=TOL[np_dtype], dtype=np_dtype)
    # NumPy in, backend="torch": NumPy out
    out = scan.linear_recurrence(a.numpy(), b.numpy(), backend="torch")
    assert isinstance(out, np.ndarray) and out.dtype == np_dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_torch_on_cuda_matches_cpu():
    a, b = torch.rand(1000, 33, dtype=torch.float64), torch.randn(1000, 33, dtype=torch.float64)
    h = scan.linear_recurrence(a.cuda(), b.cuda())
    assert h.device.type == "cuda"
    assert_close("h", h.cpu().numpy(), reference_h(a.numpy(), b.numpy(), None),
                 tol=TOL[np.float64], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_time_is_never_broadcast(backend):
    with pytest.raises(ValueError, match=r"b must have shape \(T, \.\.\.\) = \(4, \.\.\.\) "
                                         r"\(T=4 from a\); got \(1, 3\)"):
        scan.linear_recurrence(np.ones((4, 3)), np.ones((1, 3)), backend=backend)
    with pytest.raises(ValueError, match=r"a must have shape \(T, \.\.\.\) with time first; got a scalar"):
        scan.linear_recurrence(np.float64(0.5), np.ones((4, 3)), backend=backend)


def test_bad_shapes_and_types_are_named():
    with pytest.raises(ValueError, match=r"trailing axes of a \(T, \.\.\.\) = \(4, 2\) and b "
                                         r"\(T, \.\.\.\) = \(4, 3\) do not broadcast"):
        scan.linear_recurrence(np.ones((4, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"h0 must broadcast to the state shape \(\.\.\.\) = "
                                         r"\(3,\) of a and b; got \(2, 3\)"):
        scan.linear_recurrence(np.ones((4, 3)), np.ones((4, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"at least one time step"):
        scan.linear_recurrence(np.ones((0, 3)), np.ones((0, 3)))
    with pytest.raises(TypeError, match=r"b must be a floating-point array"):
        scan.linear_recurrence(np.ones((4, 3)), np.ones((4, 3), int))
    with pytest.raises(TypeError, match=r"share one floating dtype"):
        scan.linear_recurrence(np.ones((4, 3)), np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match=r"mix of NumPy arrays and torch tensors"):
        scan.linear_recurrence(np.ones((4, 3)), torch.ones(4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"torch tensors need backend='torch'"):
        scan.linear_recurrence(torch.ones(4, 3), torch.ones(4, 3), backend="numba")
    with pytest.raises(ValueError, match=r"backend must be one of"):
        scan.linear_recurrence(np.ones((4, 3)), np.ones((4, 3)), backend="jax")
    with pytest.raises(ValueError, match=r"method must be one of"):
        numba_cpu.linear_recurrence(np.ones((4, 3)), np.ones((4, 3)), method="fast")


def test_associative_scan_validates_and_dispatches():
    x = np.arange(1.0, 8.0)
    for method in scan.ASSOCIATIVE_SCAN_METHODS:
        np.testing.assert_allclose(scan.associative_scan(scan.add_combine, x, method=method), np.cumsum(x))
    with pytest.raises(ValueError, match=r"method must be one of"):
        scan.associative_scan(scan.add_combine, x, method="fast")
    with pytest.raises(TypeError, match=r"combine must be a function"):
        scan.associative_scan("add", x)
    with pytest.raises(ValueError, match=r"elems\[1\] must have shape \(T, \.\.\.\) = \(7, \.\.\.\) "
                                         r"\(T=7 from elems\[0\]\); got \(6,\)"):
        scan.associative_scan(scan.affine_combine, (x, x[:6]))
    with pytest.raises(TypeError, match=r"elems must be a floating-point array"):
        scan.associative_scan(scan.add_combine, np.arange(7))
    with pytest.raises(TypeError, match=r"runs in NumPy"):
        scan.associative_scan(scan.add_combine, torch.ones(3))
    assert set(scan.COMBINES) == {"add_combine", "affine_combine", "matrix_affine_combine",
                                  "logaddexp_combine", "log_matmul_combine", "max_plus_combine",
                                  "softmax_attention_combine"}
