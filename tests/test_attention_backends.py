"""Every backend of minirec.attention against the NumPy reference, through the public API.

Numba (streaming Aaren, recurrent linear attention) and Torch (every form) on T ∈ {1, 2, 7, 63,
300}, with batch axes, in float64 (to 1e-10) and float32 (to 1e-5, against the float64 reference
of the same float32 inputs), relative to the result's magnitude. NumPy in → NumPy out of the
input's dtype; tensors in → tensors out. The carried state, and whole == chunk by chunk, for
every backend.
"""

import numpy as np
import pytest
import torch

import minirec.attention as att
from minirec.attention import reference as ref

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

STEPS = [1, 2, 7, 63, 300]
TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])


def inputs(T, dtype, batch=(2, 3), d_k=4, d_v=5, seed=0):
    rng = np.random.default_rng(seed)
    draw = lambda *shape: rng.normal(size=shape).astype(dtype)
    return draw(T, *batch, d_k), draw(T, *batch, d_k), draw(T, *batch, d_v)


def f64(x):
    if isinstance(x, tuple):
        return tuple(f64(y) for y in x)
    return np.asarray(x, np.float64)


def as_numpy(x):
    if isinstance(x, tuple):
        return tuple(as_numpy(y) for y in x)
    assert isinstance(x, torch.Tensor), type(x)
    return x.detach().numpy()


# --------------------------------------------------------------------------------------------
# softmax attention, Aaren
# --------------------------------------------------------------------------------------------

@DTYPES
@pytest.mark.parametrize("T", STEPS)
def test_softmax_attention_torch(T, dtype):
    q, k, v = inputs(T, dtype)
    want = att.softmax_attention(*f64((q, k, v)), backend="numpy")
    assert_close("o", att.softmax_attention(q, k, v, backend="torch"), want, tol=TOL[dtype],
                 dtype=dtype)
    got = att.softmax_attention(*(torch.from_numpy(a) for a in (q, k, v)))
    assert_close("o from tensors", as_numpy(got), want, tol=TOL[dtype], dtype=dtype)


AAREN_CASES = [("numba", "stream"), ("torch", "stream"), ("torch", "scan"), ("torch", "direct"),
               ("numpy", "scan"), ("numpy", "stream"), ("numpy", "blelloch")]


@DTYPES
@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("backend,method", AAREN_CASES)
def test_aaren_backends(backend, method, T, dtype):
    q, k, v = inputs(T, dtype)
    q = q[0, 0]                                                     # (heads, d_k): one per head
    want, want_state = att.aaren(*f64((q, k, v)), method="direct", return_state=True,
                                 backend="numpy")
    got, state = att.aaren(q, k, v, method=method, return_state=True, backend=backend)
    assert_close("o", got, want, tol=TOL[dtype], dtype=dtype)
    assert_close("state", state, want_state, tol=TOL[dtype], dtype=dtype)


@pytest.mark.parametrize("backend,method", AAREN_CASES)
def test_aaren_logits_times_100(backend, method):
    q, k, v = inputs(63, np.float64)
    q = 100 * q[0, 0]
    want = ref.aaren_direct(ref.aaren_scores(q, k), v)
    assert_close("o", att.aaren(q, k, v, method=method, backend=backend), want,
                 tol=TOL[np.float64], dtype=np.float64)


@pytest.mark.parametrize("backend,method", [c for c in AAREN_CASES if c[1] != "direct"])
def test_aaren_whole_equals_pieces(backend, method):
    q, k, v = inputs(63, np.float64)
    q = q[0, 0]
    whole, final = att.aaren(q, k, v, method=method, return_state=True, backend=backend)
    outs, state = [], None
    for a, b in [(0, 1), (1, 30), (30, 63)]:
        o, state = att.aaren(q, k[a:b], v[a:b], method=method, state=state, return_state=True,
                             backend=backend)
        outs.append(o)
    assert_close("o in pieces", np.concatenate(outs), whole, tol=TOL[np.float64], dtype=np.float64)
    assert_close("state", state, final, tol=TOL[np.float64], dtype=np.float64)


def test_aaren_tensors_in_tensors_out():
    q, k, v = (torch.from_numpy(a) for a in inputs(7, np.float32))
    o, state = att.aaren(q[0, 0], k, v, method="stream", return_state=True)
    assert isinstance(o, torch.Tensor) and o.dtype == torch.float32 and o.shape == v.shape
    assert all(isinstance(x, torch.Tensor) for x in state)


# --------------------------------------------------------------------------------------------
# linear attention
# --------------------------------------------------------------------------------------------

LA_CASES = [("numba", "recurrent"), ("numba", "parallel"), ("numba", "chunked"),
            ("torch", "recurrent"), ("torch", "parallel"), ("torch", "chunked")]


@DTYPES
@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("backend,form", LA_CASES)
def test_linear_attention_backends(backend, form, T, dtype):
    q, k, v = inputs(T, dtype)
    want, want_state = att.linear_attention(*f64((q, k, v)), method="recurrent", return_state=True,
                                            backend="numpy")
    got, state = att.linear_attention(q, k, v, method=form, chunk_size=16, return_state=True,
                                      backend=backend)
    assert_close("o", got, want, tol=TOL[dtype], dtype=dtype)
    assert_close("state", state, want_state, tol=TOL[dtype], dtype=dtype)


@pytest.mark.parametrize("backend,form", LA_CASES)
@pytest.mark.parametrize("fmap,normalize", [("taylor", True), ("identity", False),
                                            ("elu+1", False)])
def test_linear_attention_feature_maps(backend, form, fmap, normalize):
    q, k, v = inputs(63, np.float64, d_k=3)
    kw = {"feature_map": fmap, "normalize": normalize}
    want = att.linear_attention(q, k, v, method="recurrent", backend="numpy", **kw)
    assert_close("o", att.linear_attention(q, k, v, method=form, backend=backend, **kw), want,
                 tol=TOL[np.float64], dtype=np.float64)


@pytest.mark.parametrize("backend,form", LA_CASES)
def test_linear_attention_whole_equals_pieces(backend, form):
    q, k, v = inputs(63, np.float64)
    whole, final = att.linear_attention(q, k, v, method=form, chunk_size=8, return_state=True,
                                        backend=backend)
    outs, state = [], None
    for a, b in [(0, 1), (1, 30), (30, 63)]:
        o, state = att.linear_attention(q[a:b], k[a:b], v[a:b], method=form, chunk_size=8,
                                        state=state, return_state=True, backend=backend)
        outs.append(o)
    assert_close("o in pieces", np.concatenate(outs), whole, tol=TOL[np.float64], dtype=np.float64)
    assert_close("state", state, final, tol=TOL[np.float64], dtype=np.float64)


def test_linear_attention_callable_feature_map_and_tensors():
    q, k, v = (torch.from_numpy(a) for a in inputs(7, np.float64))
    phi = lambda x: torch.nn.functional.softplus(x)
    got = att.linear_attention(q, k, v, feature_map=phi, method="chunked", chunk_size=3)
    assert isinstance(got, torch.Tensor)
    fq, fk = (np.log1p(np.exp(a.numpy())) for a in (q, k))
    want = ref.linear_attention_recurrent(fq, fk, v.numpy())[0]
    assert_close("o", got.numpy(), want, tol=TOL[np.float64], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# LightNet
# --------------------------------------------------------------------------------------------

@DTYPES
@pytest.mark.parametrize("T", STEPS)
@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_lightnet_backends(kind, backend, T, dtype):
    q, k, v = inputs(T, dtype)
    decay = None
    if kind == "multiplicative":
        decay = np.random.default_rng(1).uniform(0.5, 1.0, size=k.shape).astype(dtype)
    want, want_state = att.lightnet(*f64((q, k, v)), decay=None if decay is None else f64(decay),
                                    return_state=True, backend="numpy")
    got, state = att.lightnet(q, k, v, decay=decay, return_state=True, backend=backend)
    assert_close("o", got, want, tol=TOL[dtype], dtype=dtype)
    assert_close("state", state, want_state, tol=TOL[dtype], dtype=dtype)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_lightnet_whole_equals_pieces(backend):
    q, k, v = inputs(63, np.float64)
    lam = np.random.default_rng(1).uniform(0.5, 1.0, size=k.shape)
    for decay in (None, lam):
        whole, final = att.lightnet(q, k, v, decay=decay, return_state=True, backend=backend)
        outs, state = [], None
        for a, b in [(0, 1), (1, 30), (30, 63)]:
            d = None if decay is None else decay[a:b]
            o, state = att.lightnet(q[a:b], k[a:b], v[a:b], decay=d, state=state,
                                    return_state=True, backend=backend)
            outs.append(o)
        assert_close("o in pieces", np.concatenate(outs), whole, tol=TOL[np.float64], dtype=np.float64)
        assert_close("state", state, final, tol=TOL[np.float64], dtype=np.float64)


def test_lightnet_torch_large_keys_finite():
    q, k, v = inputs(63, np.float32)
    k = 400 * k                                                     # e^k overflows float32 and float64
    o = att.lightnet(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v))
    assert torch.isfinite(o).all()
    assert_close("o", o.numpy(), att.lightnet(*f64((q, k, v)), backend="numpy"),
                 tol=TOL[np.float32], dtype=np.float32)
