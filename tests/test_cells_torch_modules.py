"""minirec's torch modules (RNN, GRU, LSTM built from the gates) against torch.nn.

- the same parameter names, shapes and order, so state dicts load both ways;
- the same outputs and final states (float64, ~1e-12) with and without an initial state;
- the same gradients under autograd for every parameter, the input and the initial state;
- torch.nn's initialisation U(−1/√H, 1/√H); clear errors for inputs of the wrong shape;
- on CUDA (skipped without a GPU): the same results as on the CPU.
"""

import math

import numpy as np
import pytest
import torch

import minirec.cells as cells
from minirec.cells import torch_ops

PAIRS = {"rnn": (torch_ops.RNN, torch.nn.RNN), "gru": (torch_ops.GRU, torch.nn.GRU),
         "lstm": (torch_ops.LSTM, torch.nn.LSTM)}
CELLS = list(PAIRS)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def pair(cell, D=5, H=7, num_layers=1, bias=True, dtype=torch.float64, seed=0):
    """A torch.nn module and a minirec module carrying the torch.nn module's weights."""
    Mine, Peer = PAIRS[cell]
    torch.manual_seed(seed)
    peer = Peer(D, H, num_layers=num_layers, bias=bias, dtype=dtype)
    mine = Mine(D, H, num_layers=num_layers, bias=bias, dtype=dtype)
    mine.load_state_dict(peer.state_dict())
    return mine, peer


def inputs(cell, T=6, B=3, D=5, H=7, num_layers=1, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, D, generator=g, dtype=dtype)
    h = 0.5 * torch.randn(num_layers, B, H, generator=g, dtype=dtype)
    hx = (h, 0.5 * torch.randn(num_layers, B, H, generator=g, dtype=dtype)) if cell == "lstm" else h
    return x, hx


def as_tuple(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_parameters_named_and_shaped_like_torch_nn(cell, num_layers, bias):
    mine, peer = pair(cell, num_layers=num_layers, bias=bias)
    assert [(n, p.shape) for n, p in mine.named_parameters()] == \
        [(n, p.shape) for n, p in peer.named_parameters()]
    peer.load_state_dict(mine.state_dict())                      # and the other way round


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_outputs_match_torch_nn(cell, num_layers, bias, with_hx):
    mine, peer = pair(cell, num_layers=num_layers, bias=bias)
    x, hx = inputs(cell, num_layers=num_layers)
    hx = hx if with_hx else None
    with torch.no_grad():
        out, final = mine(x, hx)
        want_out, want_final = peer(x, hx)
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-12)
    for f, w in zip(as_tuple(final), as_tuple(want_final), strict=True):
        assert f.shape == w.shape == (num_layers, x.shape[1], 7)
        torch.testing.assert_close(f, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_torch_nn(cell, num_layers):
    mine, peer = pair(cell, num_layers=num_layers)
    x0, hx0 = inputs(cell, T=9, num_layers=num_layers)
    g = torch.Generator().manual_seed(2)
    grads = {}
    for name, module in (("mine", mine), ("peer", peer)):
        x = x0.clone().requires_grad_(True)
        hx = tuple(h.clone().requires_grad_(True) for h in as_tuple(hx0))
        out, final = module(x, hx if cell == "lstm" else hx[0])
        g.manual_seed(2)
        loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
        for f in as_tuple(final):
            loss = loss + (f * torch.randn(f.shape, generator=g, dtype=f.dtype)).sum()
        loss.backward()
        grads[name] = {n: p.grad for n, p in module.named_parameters()}
        grads[name]["x"] = x.grad
        for i, h in enumerate(hx):
            grads[name][f"hx[{i}]"] = h.grad
    assert grads["mine"].keys() == grads["peer"].keys()
    for k, want in grads["peer"].items():
        torch.testing.assert_close(grads["mine"][k], want, rtol=1e-11, atol=1e-12, msg=k)


@pytest.mark.parametrize("cell", CELLS)
def test_functions_of_one_layer_equal_the_module(cell):
    """torch_ops.<cell>_forward with a layer's params is what the module runs."""
    mine, _ = pair(cell)
    x, hx = inputs(cell)
    state = tuple(h[0] for h in as_tuple(hx))
    out, final = getattr(torch_ops, f"{cell}_forward")(
        x, state if cell == "lstm" else state[0], mine.layer_params(0))
    want_out, want_final = mine(x, hx)
    torch.testing.assert_close(out, want_out)
    for f, w in zip(as_tuple(final), as_tuple(want_final), strict=True):
        torch.testing.assert_close(f, w[0])


@pytest.mark.parametrize("cell", CELLS)
def test_initialisation_like_torch_nn(cell):
    Mine, _ = PAIRS[cell]
    H = 64
    m = Mine(10, H, num_layers=2)
    bound = 1 / math.sqrt(H)
    for name, p in m.named_parameters():
        p = p.detach()
        assert p.dtype == torch.float32, name
        assert p.abs().max() <= bound, name
        assert p.abs().max() > 0.9 * bound and abs(float(p.mean())) < 0.2 * bound, name
    assert m(torch.zeros(3, 2, 10))[0].dtype == torch.float32


@pytest.mark.parametrize("cell", CELLS)
def test_bad_shapes_are_named(cell):
    Mine, _ = PAIRS[cell]
    m = Mine(5, 7, num_layers=2)
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, D\).*= 5.*\(4, 5\)"):
        m(torch.zeros(4, 5))                                     # unbatched: not supported
    with pytest.raises(ValueError, match=r"x must have shape .*got \(4, 3, 6\)"):
        m(torch.zeros(4, 3, 6))
    bad = torch.zeros(1, 3, 7)                                   # num_layers is 2
    with pytest.raises(ValueError, match=r"hx.* shape \(num_layers, B, H\) = \(2, 3, 7\)"):
        m(torch.zeros(4, 3, 5), (bad, bad) if cell == "lstm" else bad)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        m(np.zeros((4, 3, 5)))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        Mine(5, 0)


@cuda
@pytest.mark.parametrize("cell", CELLS)
def test_cuda_matches_cpu_and_torch_nn(cell):
    mine, peer = pair(cell, num_layers=2)
    x, hx = inputs(cell, num_layers=2)
    to_gpu = lambda s: tuple(h.cuda() for h in s) if cell == "lstm" else s.cuda()
    with torch.no_grad():
        want_out, want_final = mine(x, hx)
        out, final = mine.to("cuda")(x.cuda(), to_gpu(hx))
        peer_out, _ = peer.to("cuda")(x.cuda(), to_gpu(hx))
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), want_out, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out, peer_out, rtol=1e-10, atol=1e-10)
    for f, w in zip(as_tuple(final), as_tuple(want_final), strict=True):
        torch.testing.assert_close(f.cpu(), w, rtol=1e-10, atol=1e-10)


@cuda
@pytest.mark.parametrize("cell", CELLS)
def test_cuda_public_api_bptt_matches_reference(cell):
    """torch tensors on the GPU through minirec.cells: results stay on the GPU and agree with
    the NumPy reference."""
    rng = np.random.default_rng(0)
    T, B, D, H = 7, 3, 5, 6
    p = cells.init_params(cell, D, H, rng=rng)
    x = rng.normal(size=(T, B, D))
    h0 = rng.normal(size=(B, H))
    s0 = (h0, rng.normal(size=(B, H))) if cell == "lstm" else h0
    go = rng.normal(size=(T, B, H))
    want = getattr(cells, f"{cell}_bptt")(x, s0, p, go, truncate=3, backend="numpy")
    dev = lambda a: torch.tensor(a, device="cuda")
    got = getattr(cells, f"{cell}_bptt")(
        dev(x), tuple(map(dev, s0)) if cell == "lstm" else dev(s0),
        {k: dev(v) for k, v in p.items()}, dev(go), truncate=3)
    for k, w in want.items():
        for g_, w_ in zip(as_tuple(got[k]), as_tuple(w), strict=True):
            assert g_.device.type == "cuda"
            np.testing.assert_allclose(g_.cpu().numpy(), w_, rtol=1e-10, atol=1e-12, err_msg=k)
