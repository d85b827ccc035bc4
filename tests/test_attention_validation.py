"""Bad input to minirec.attention fails at the door, naming the argument and the expected shape."""

import numpy as np
import pytest
import torch

import minirec.attention as att


def qkv(T=5, batch=(2,), d_k=3, d_v=4, dtype=np.float64):
    rng = np.random.default_rng(0)
    draw = lambda *s: rng.normal(size=s).astype(dtype)
    return draw(T, *batch, d_k), draw(T, *batch, d_k), draw(T, *batch, d_v)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_mismatched_batch_is_reported_against_the_first_argument(backend):
    q, k, v = qkv()
    msg = r"v must have shape \(T, B, d_v\) = \(5, 2, d_v\) \(B=2 from q\); got \(5, 3, 4\)"
    with pytest.raises(ValueError, match=msg):
        att.linear_attention(q, k, np.zeros((5, 3, 4)), backend=backend)


def test_mismatched_time_and_key_size():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"k must have shape \(T, B, d_k\) = \(5, 2, 3\) "
                                         r"\(T=5 from q\); got \(6, 2, 3\)"):
        att.softmax_attention(q, np.zeros((6, 2, 3)), v)
    with pytest.raises(ValueError, match=r"k must have shape \(T, B, d_k\) = \(5, 2, 3\) "
                                         r"\(d_k=3 from q\); got \(5, 2, 4\)"):
        att.lightnet(q, np.zeros((5, 2, 4)), v)


def test_wrong_rank():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"v must have shape \(T, B, d_v\): 1 batch axis, as q \(2,\) has; "
                                         r"got shape \(5, 4\)"):
        att.linear_attention(q, k, v[:, 0])
    with pytest.raises(ValueError, match=r"q must have shape \(T, \.\.\., d_k\) with at least 2 "
                                         r"dimensions; got shape \(5,\)"):
        att.softmax_attention(q[:, 0, 0], k, v)


def test_several_batch_axes_are_named():
    q, k, v = qkv(batch=(2, 3))
    with pytest.raises(ValueError, match=r"v must have shape \(T, B1, B2, d_v\) = \(5, 2, 3, d_v\)"):
        att.softmax_attention(q, k, v[:, :, :2])


def test_empty_sequence_is_refused():
    q, k, v = qkv(T=0)
    with pytest.raises(ValueError, match=r"q must have at least one time step"):
        att.linear_attention(q, k, v)
    with pytest.raises(ValueError, match=r"k must have at least one time step"):
        att.aaren(q[0, 0] if len(q) else np.zeros(3), k, v)


def test_integer_and_mixed_inputs():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="k must be a floating-point array"):
        att.linear_attention(q, k.astype(int), v)
    with pytest.raises(TypeError, match="one floating dtype"):
        att.linear_attention(q, k.astype(np.float32), v)
    with pytest.raises(TypeError, match="mix of NumPy arrays and torch tensors"):
        att.lightnet(q, torch.from_numpy(k), v)
    with pytest.raises(TypeError, match="torch tensors need backend='torch'"):
        att.softmax_attention(*(torch.from_numpy(a) for a in (q, k, v)), backend="numba")


def test_aaren_query_shape():
    _, k, v = qkv(batch=(2, 3))
    att.aaren(np.ones(3), k, v)                                     # one query for everything
    att.aaren(np.ones((3, 3)), k, v)                                # one per head
    att.aaren(np.ones((2, 1, 3)), k, v)                             # one per batch element
    with pytest.raises(ValueError, match=r"q must have shape \(d_k,\) or \(\.\.\., d_k\) "
                                         r"broadcastable to k's batch axes.*\(2, 3\).*got \(4, 3\)"):
        att.aaren(np.ones((4, 3)), k, v)
    with pytest.raises(ValueError, match=r"q must have shape .*\(3,\).*got \(4,\)"):
        att.aaren(np.ones(4), k, v)


def test_states_are_checked():
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"state must be the triple \(m, u, w\)"):
        att.aaren(q[0], k, v, method="stream", state=np.zeros(2))
    with pytest.raises(ValueError, match=r"state\[2\] \(w\) must have shape \(B, d_v\) = \(2, 4\)"):
        att.aaren(q[0], k, v, method="stream", state=(np.zeros(2), np.ones(2), np.zeros((2, 5))))
    with pytest.raises(ValueError, match="state needs method='scan' or 'stream'"):
        att.aaren(q[0], k, v, method="direct", state=(np.zeros(2), np.ones(2), np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"state\[0\] \(S\) must have shape \(B, d_f, d_v\) = "
                                         r"\(2, 3, 4\)"):
        att.linear_attention(q, k, v, state=(np.zeros((2, 4, 4)), np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"state\[0\] \(S\) must have shape \(B, d_f, d_v\) = "
                                         r"\(2, 13, 4\)"):                # taylor: 1 + 3 + 9
        att.linear_attention(q, k, v, feature_map="taylor",
                             state=(np.zeros((2, 3, 4)), np.zeros((2, 3))))
    with pytest.raises(TypeError, match=r"state must be the pair \(S \(\.\.\., d_k, d_v\), z"):
        att.lightnet(q, k, v, state=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"state \(S\) must have shape \(B, d_k, d_v\) = \(2, 3, 4\)"):
        att.lightnet(q, k, v, decay=np.ones_like(k), state=np.zeros((2, 4, 3)))


def test_options_are_checked():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="method must be one of"):
        att.aaren(q[0], k, v, method="fast")
    with pytest.raises(ValueError, match="torch backend's scan is 'scan'"):
        att.aaren(q[0], k, v, method="blelloch", backend="torch")
    with pytest.raises(ValueError, match="method must be one of"):
        att.linear_attention(q, k, v, method="fast")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer; got 0"):
        att.linear_attention(q, k, v, method="chunked", chunk_size=0)
    with pytest.raises(ValueError, match="feature_map must be one of"):
        att.linear_attention(q, k, v, feature_map="relu")
    with pytest.raises(ValueError, match="backend must be one of"):
        att.lightnet(q, k, v, backend="jax")
    with pytest.raises(ValueError, match=r"decay must have shape \(T, B, d_k\) = \(5, 2, 3\)"):
        att.lightnet(q, k, v, decay=np.ones((5, 2, 4)))
    with pytest.raises(ValueError, match="order must be one of"):
        att.scan_order("snake", 2, 2)
    with pytest.raises(TypeError, match="needs rng, a numpy Generator"):
        att.scan_order("random", 2, 2)


def test_numpy_in_numpy_out_of_the_same_dtype():
    q, k, v = qkv(dtype=np.float32)
    for backend in ("numpy", "numba", "torch"):
        outs = [att.softmax_attention(q, k, v, backend=backend),
                att.aaren(q[0], k, v, method="stream", backend=backend),
                att.linear_attention(q, k, v, method="recurrent", backend=backend),
                att.lightnet(q, k, v, backend=backend)]
        for o in outs:
            assert isinstance(o, np.ndarray) and o.dtype == np.float32 and o.shape == v.shape


def test_aaren_layer_is_exported_lazily():
    from minirec.attention.torch_ops import AarenLayer
    assert att.AarenLayer is AarenLayer
    with pytest.raises(AttributeError):
        att.no_such_thing  # noqa: B018


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
@pytest.mark.parametrize("method", att.LINEAR_ATTENTION_METHODS)
def test_elu_features_of_very_negative_queries_do_not_underflow_into_nan(method, backend):
    """q ≈ −1e3: e^q is 0 in float64 and the normaliser 0/0; the output is finite (a positive
    factor per query cancels) and equals the output for the shifted queries q − max_f q, whose
    elu+1 features are exactly e^{q − max q}."""
    rng = np.random.default_rng(5)
    q, k, v = (rng.normal(size=(9, 2, d)) for d in (3, 3, 4))
    shifted = q - q.max(-1, keepdims=True)                       # ≤ 0: φ = e^{shifted}
    want = att.linear_attention(shifted, k, v, method=method, backend="numpy", chunk_size=4)
    args = (q - 1000.0, k, v)
    if backend == "torch":
        args = tuple(torch.from_numpy(a) for a in args)
    got = att.linear_attention(*args, method=method, backend=backend, chunk_size=4)
    got = got.numpy() if backend == "torch" else got
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_keys_whose_features_all_underflow_are_refused(backend):
    rng = np.random.default_rng(6)
    q, k, v = (rng.normal(size=(5, d)) for d in (3, 3, 2))
    args = (q, k - 1000.0, v)
    if backend == "torch":
        args = tuple(torch.from_numpy(a) for a in args)
    with pytest.raises(ValueError, match=r"elu\+1 features of k underflowed"):
        att.linear_attention(*args, backend=backend)


def test_scale_is_one_positive_number_never_an_array():
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"scale must be a positive real number; got ndarray of "
                                        r"shape \(5,\)"):
        att.softmax_attention(q, k, v, scale=np.full(5, 0.5))
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="scale must be a positive, finite number"):
            att.softmax_attention(q, k, v, scale=bad)


def test_the_legacy_global_rng_is_refused():
    with pytest.raises(TypeError, match="needs rng, a numpy Generator .*got module"):
        att.scan_order("random", 2, 2, rng=np.random)
