"""The NumPy reference cells against oracles that do not depend on them.

- forward: torch.nn.RNN / GRU / LSTM (and their *Cell) with the same weights;
- step backward and BPTT: torch.autograd through torch.nn, and float64 finite differences;
- truncated BPTT: torch.autograd with the state detached every k steps;
- recoding: torch.autograd on the surprisal.
"""

import numpy as np
import pytest
import torch

from minirec.cells import reference as ref
from minirec.gradcheck import numerical_gradient

try:  # `python -m pytest` (the repository root on sys.path) or plain `pytest` (tests/ on it)
    from tests._close import assert_close
except ImportError:
    from _close import assert_close

TORCH_CELLS = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
SIZES = [(1, 1, 1, 1), (7, 3, 5, 4), (5, 2, 6, 6)]  # (T, B, D, H)
#: Gradients against autograd: |got − want| ≤ 1e-10 |want| + 1e-12 (assert_close's bound
#: tol·(|want| + scale) with the scale fixed, not max|want|: an rtol of 1e-10 and an atol of 1e-12).
GRAD_TOL, GRAD_SCALE = 1e-10, 1e-2


def make_case(cell, T, B, D, H, seed=0):
    rng = np.random.default_rng(seed)
    params = ref.init_params(cell, D, H, rng=rng)
    params = {k: 2.0 * v for k, v in params.items()}  # larger weights: nonlinearities matter
    x = rng.normal(size=(T, B, D))
    h0 = rng.normal(size=(B, H)) * 0.5
    state0 = (h0, rng.normal(size=(B, H)) * 0.5) if cell == "lstm" else h0
    return x, state0, params


def torch_module(cell, params):
    D, H = params["weight_ih"].shape[1], params["weight_hh"].shape[1]
    m = TORCH_CELLS[cell](D, H).double()
    with torch.no_grad():
        for k, v in params.items():
            getattr(m, f"{k}_l0").copy_(torch.from_numpy(v))
    return m


def torch_run(cell, module, x, state0):
    """Run torch.nn with leaf tensors for every input; return outputs, final, leaves."""
    xt = torch.tensor(x, requires_grad=True)
    if cell == "lstm":
        hx = tuple(torch.tensor(s[None], requires_grad=True) for s in state0)
    else:
        hx = torch.tensor(state0[None], requires_grad=True)
    out, final = module(xt, hx)
    return out, final, xt, hx


def ref_forward(cell):
    return getattr(ref, f"{cell}_forward")


def ref_bptt(cell):
    return getattr(ref, f"{cell}_bptt")


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("T,B,D,H", SIZES)
def test_forward_matches_torch_nn(cell, T, B, D, H):
    x, state0, params = make_case(cell, T, B, D, H)
    outputs, final = ref_forward(cell)(x, state0, params)
    out_t, final_t, _, _ = torch_run(cell, torch_module(cell, params), x, state0)
    np.testing.assert_allclose(outputs, out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(final[0], final_t[0][0].detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(final[1], final_t[1][0].detach().numpy(), atol=1e-12)
    else:
        np.testing.assert_allclose(final, final_t[0].detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_step_matches_torch_cell(cell):
    x, state0, params = make_case(cell, 1, 4, 3, 5, seed=1)
    Cell = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell]
    m = Cell(3, 5).double()
    with torch.no_grad():
        for k, v in params.items():
            getattr(m, k).copy_(torch.from_numpy(v))
    step = getattr(ref, f"{cell}_step")
    if cell == "lstm":
        got = step(x[0], state0, params)
        want = m(torch.from_numpy(x[0]), tuple(torch.from_numpy(s) for s in state0))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.detach().numpy(), atol=1e-12)
    else:
        got = step(x[0], state0, params)
        want = m(torch.from_numpy(x[0]), torch.from_numpy(state0))
        np.testing.assert_allclose(got, want.detach().numpy(), atol=1e-12)


def autograd_grads(cell, x, state0, params, grad_outputs, grad_final=None):
    module = torch_module(cell, params)
    out, final, xt, hx = torch_run(cell, module, x, state0)
    loss = (out * torch.from_numpy(grad_outputs)).sum()
    if grad_final is not None:
        if cell == "lstm":
            loss = loss + sum((f[0] * torch.from_numpy(g)).sum() for f, g in zip(final, grad_final))
        else:
            loss = loss + (final[0] * torch.from_numpy(grad_final)).sum()
    loss.backward()
    grads = {k: getattr(module, f"{k}_l0").grad.numpy() for k in ref.PARAM_NAMES}
    grads["x"] = xt.grad.numpy()
    grads["h0"] = tuple(h.grad[0].numpy() for h in hx) if cell == "lstm" else hx.grad[0].numpy()
    return grads


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("T,B,D,H", SIZES)
@pytest.mark.parametrize("with_final", [False, True])
def test_bptt_matches_autograd(cell, T, B, D, H, with_final):
    x, state0, params = make_case(cell, T, B, D, H, seed=2)
    rng = np.random.default_rng(3)
    grad_outputs = rng.normal(size=(T, B, H))
    grad_final = None
    if with_final:
        grad_final = (rng.normal(size=(B, H)), rng.normal(size=(B, H))) if cell == "lstm" \
            else rng.normal(size=(B, H))
    got = ref_bptt(cell)(x, state0, params, grad_outputs, grad_final=grad_final)
    want = autograd_grads(cell, x, state0, params, grad_outputs, grad_final)
    assert_close("gradients", got, want, tol=GRAD_TOL, scale=GRAD_SCALE)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_bptt_matches_finite_differences(cell):
    """Independent of torch: central differences of L = Σ outputs ⊙ G in float64."""
    T, B, D, H = 4, 2, 3, 3
    x, state0, params = make_case(cell, T, B, D, H, seed=4)
    G = np.random.default_rng(5).normal(size=(T, B, H))
    got = ref_bptt(cell)(x, state0, params, G)

    def loss():
        return float((ref_forward(cell)(x, state0, params)[0] * G).sum())

    for name in ref.PARAM_NAMES:
        num = numerical_gradient(lambda _: loss(), params[name])
        np.testing.assert_allclose(got[name], num, rtol=1e-6, atol=1e-8, err_msg=name)
    np.testing.assert_allclose(got["x"], numerical_gradient(lambda _: loss(), x),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_truncated_bptt_matches_detached_autograd(cell, k):
    T, B, D, H = 7, 2, 3, 4
    x, state0, params = make_case(cell, T, B, D, H, seed=6)
    G = np.random.default_rng(7).normal(size=(T, B, H))
    Cell = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell]
    m = Cell(D, H).double()
    with torch.no_grad():
        for name, v in params.items():
            getattr(m, name).copy_(torch.from_numpy(v))
    xt = torch.tensor(x, requires_grad=True)
    if cell == "lstm":
        s0 = tuple(torch.tensor(s, requires_grad=True) for s in state0)
    else:
        s0 = torch.tensor(state0, requires_grad=True)
    s, loss = s0, 0.0
    for t in range(T):
        if t > 0 and t % k == 0:  # truncated BPTT: the state is detached every k steps
            s = tuple(si.detach() for si in s) if cell == "lstm" else s.detach()
        s = m(xt[t], s)
        h = s[0] if cell == "lstm" else s
        loss = loss + (h * torch.from_numpy(G[t])).sum()
    loss.backward()
    got = ref_bptt(cell)(x, state0, params, G, truncate=k)
    want = {name: getattr(m, name).grad.numpy() for name in ref.PARAM_NAMES}
    want["x"] = xt.grad.numpy()
    want["h0"] = tuple(si.grad.numpy() for si in s0) if cell == "lstm" else s0.grad.numpy()
    assert_close("gradients", got, want, tol=GRAD_TOL, scale=GRAD_SCALE)


def test_truncate_longer_than_sequence_is_full_bptt():
    x, h0, params = make_case("gru", 5, 2, 3, 4, seed=8)
    G = np.random.default_rng(9).normal(size=(5, 2, 4))
    assert_close("gradients", ref.gru_bptt(x, h0, params, G, truncate=5), ref.gru_bptt(x, h0, params, G),
                 tol=GRAD_TOL, scale=GRAD_SCALE)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_hidden_grads_are_total_derivatives(cell):
    """hidden[t] = ∂L/∂h_t: perturbing h_t by ε changes L by ε·hidden[t] (checked by autograd)."""
    T, B, D, H = 6, 2, 3, 4
    x, state0, params = make_case(cell, T, B, D, H, seed=10)
    G = np.random.default_rng(11).normal(size=(T, B, H))
    got = ref_bptt(cell)(x, state0, params, G, return_hidden_grads=True)["hidden"]
    Cell = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell]
    m = Cell(D, H).double()
    with torch.no_grad():
        for name, v in params.items():
            getattr(m, name).copy_(torch.from_numpy(v))
    s = tuple(torch.from_numpy(si) for si in state0) if cell == "lstm" else torch.from_numpy(state0)
    hs, loss = [], 0.0
    for t in range(T):
        s = m(torch.from_numpy(x[t]), s)
        h = s[0] if cell == "lstm" else s
        h.retain_grad()
        hs.append(h)
        loss = loss + (h * torch.from_numpy(G[t])).sum()
    loss.backward()
    np.testing.assert_allclose(got, np.stack([h.grad.numpy() for h in hs]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_step_backward_matches_autograd(cell):
    x, h, params = make_case(cell, 1, 3, 4, 5, seed=12)
    dh_new = np.random.default_rng(13).normal(size=(3, 5))
    got = getattr(ref, f"{cell}_step_backward")(x[0], h, params, dh_new)
    want = autograd_grads(cell, x, h, params, dh_new[None])
    want["h"] = want.pop("h0")
    want["x"] = want["x"][0]
    assert_close("gradients", got, want, tol=GRAD_TOL, scale=GRAD_SCALE)


def test_lstm_step_backward_includes_cell_gradient():
    x, state, params = make_case("lstm", 1, 3, 4, 5, seed=14)
    rng = np.random.default_rng(15)
    dh, dc = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    got = ref.lstm_step_backward(x[0], state, params, (dh, dc))
    want = autograd_grads("lstm", x, state, params, dh[None], (np.zeros_like(dh), dc))
    want["h"], want["c"] = want.pop("h0")
    want["x"] = want["x"][0]
    assert_close("gradients", got, want, tol=GRAD_TOL, scale=GRAD_SCALE)


def test_sigmoid_is_finite_and_exact_far_out():
    a = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    with np.errstate(over="raise"):
        s = ref.sigmoid(a)
    np.testing.assert_allclose(s, torch.sigmoid(torch.from_numpy(a)).numpy(), rtol=1e-14, atol=1e-300)


def test_recoding_step_matches_autograd_and_lowers_surprisal():
    rng = np.random.default_rng(16)
    B, H, V = 4, 6, 5
    h, W, b = rng.normal(size=(B, H)), rng.normal(size=(V, H)), rng.normal(size=V)
    target = rng.integers(0, V, size=B)
    ht = torch.tensor(h, requires_grad=True)
    logits = ht @ torch.from_numpy(W).T + torch.from_numpy(b)
    torch.nn.functional.cross_entropy(logits, torch.from_numpy(target), reduction="sum").backward()
    np.testing.assert_allclose(ref.surprisal(h, W, b, target),
                               torch.nn.functional.cross_entropy(
                                   logits, torch.from_numpy(target), reduction="none"
                               ).detach().numpy(), rtol=1e-12)
    h_new = ref.recoding_step(h, W, b, target, alpha=0.05)
    np.testing.assert_allclose(h_new, h - 0.05 * ht.grad.numpy(), rtol=1e-12)
    assert np.all(ref.surprisal(h_new, W, b, target) < ref.surprisal(h, W, b, target))


def test_init_params_matches_torch_bounds_and_shapes():
    p = ref.init_params("lstm", 3, 16, rng=np.random.default_rng(0))
    m = torch.nn.LSTM(3, 16)
    for k, v in p.items():
        assert v.shape == tuple(getattr(m, f"{k}_l0").shape)
        assert np.abs(v).max() <= 1 / 4 and np.abs(v).max() > 0.2  # U(-1/√H, 1/√H), H = 16
