"""The memory reference (minirec.memory.reference) against oracles that do not depend on it:
closed forms (Hebbian = causal linear attention; delta rule = Titans without momentum and
forgetting), torch.autograd for every gradient, an autograd-driven Titans loop, and the exact
conditions under which the chunked update equals the per-token one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.memory import reference as ref
from minirec.tasks.streams import random_writes


def _inputs(T, d_k, d_v, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, d_k)), rng.normal(size=(T, d_v)), rng.normal(size=(T, d_k)), rng


def _gates(T, rng, theta_max=0.2):
    return rng.uniform(0, 1, T), rng.uniform(0, theta_max, T), rng.uniform(0, 0.3, T)


@pytest.mark.parametrize("T", [1, 2, 7, 63])
def test_hebbian_is_causal_linear_attention(T):
    k, v, q, rng = _inputs(T, 5, 3, T)
    M0 = rng.normal(size=(3, 5))
    y, M = ref.hebbian_memory(k, v, q, M0)
    np.testing.assert_allclose(y, np.tril(q @ k.T) @ v + q @ M0.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M, M0 + v.T @ k, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T", [1, 7, 63])
def test_delta_rule_is_titans_without_momentum_or_forgetting(T):
    k, v, q, rng = _inputs(T, 6, 4, T)
    theta = rng.uniform(0, 0.2, T)
    y, M = ref.delta_rule_memory(k, v, q, theta)
    y2, (M2, S2) = ref.titans_linear(k, v, q, np.zeros(T), theta / 2, np.zeros(T))
    np.testing.assert_allclose(y, y2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M, M2, rtol=1e-12, atol=1e-12)


def test_delta_rule_theta_one_recalls_the_most_recent_write_exactly():
    rng = np.random.default_rng(0)
    k, v = random_writes(200, 16, rng=rng)                   # n >> d: the memory is overfull
    _, M = ref.delta_rule_memory(k, v, k, np.ones(200))
    np.testing.assert_allclose(M @ k[-1], v[-1], rtol=0, atol=1e-13)
    y, _ = ref.delta_rule_memory(k, v, k, np.ones(200))
    np.testing.assert_allclose(y, v, rtol=0, atol=1e-12)     # y_t = M_t k_t = v_t at every t
    assert np.abs(M @ k[0] - v[0]).max() > 0.1              # ... and old writes are overwritten


def test_linear_memory_gradient_equals_autograd():
    rng = np.random.default_rng(1)
    M, k, v = rng.normal(size=(4, 7)), rng.normal(size=7), rng.normal(size=4)
    Mt = torch.tensor(M, requires_grad=True)
    loss = ((Mt @ torch.tensor(k) - torch.tensor(v)) ** 2).sum()
    (g,) = torch.autograd.grad(loss, Mt)
    np.testing.assert_allclose(ref.linear_memory_grad(M, k, v), g.numpy(), rtol=1e-12, atol=1e-13)
    batch = ref.linear_memory_grads({"M": M}, np.stack([k, 2 * k]), np.stack([v, v]))["M"]
    np.testing.assert_allclose(batch[0], g.numpy(), rtol=1e-12, atol=1e-13)


def test_gelu_and_its_derivative_match_torch():
    z = np.linspace(-6, 6, 101)
    zt = torch.tensor(z, requires_grad=True)
    out = torch.nn.functional.gelu(zt, approximate="tanh")
    (g,) = torch.autograd.grad(out.sum(), zt)
    np.testing.assert_allclose(ref.gelu(z), out.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ref.gelu_grad(z), g.numpy(), rtol=1e-12, atol=1e-14)


def test_mlp_memory_gradients_equal_autograd():
    rng = np.random.default_rng(2)
    params = ref.init_mlp_memory(5, 3, 11, rng=rng)
    k, v = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    grads = ref.mlp_memory_grads(params, k, v)
    for t in range(4):
        W1, W2 = (torch.tensor(params[n], requires_grad=True) for n in ("W1", "W2"))
        pred = torch.nn.functional.gelu(W1 @ torch.tensor(k[t]), approximate="tanh") @ W2.T
        g1, g2 = torch.autograd.grad(((pred - torch.tensor(v[t])) ** 2).sum(), (W1, W2))
        np.testing.assert_allclose(grads["W1"][t], g1.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads["W2"][t], g2.numpy(), rtol=1e-10, atol=1e-12)


def _titans_by_autograd(k, v, q, eta, theta, alpha, apply, params):
    """Titans per token with the gradient taken by torch.autograd: an independent oracle."""
    params = {n: torch.tensor(p) for n, p in params.items()}
    momentum = {n: torch.zeros_like(p) for n, p in params.items()}
    ys = []
    for t in range(len(k)):
        live = {n: p.clone().requires_grad_(True) for n, p in params.items()}
        loss = ((apply(live, torch.tensor(k[t])) - torch.tensor(v[t])) ** 2).sum()
        grads = dict(zip(live, torch.autograd.grad(loss, list(live.values()))))
        for n in params:
            momentum[n] = eta[t] * momentum[n] - theta[t] * grads[n]
            params[n] = (1 - alpha[t]) * params[n] + momentum[n]
        ys.append(apply(params, torch.tensor(q[t])).numpy())
    return np.stack(ys), params, momentum


@pytest.mark.parametrize("T", [1, 7, 63])
def test_titans_linear_equals_the_autograd_loop(T):
    k, v, q, rng = _inputs(T, 5, 3, 10 + T)
    gates = _gates(T, rng, theta_max=0.05)
    y, (M, S) = ref.titans_linear(k, v, q, *gates)
    y2, params, momentum = _titans_by_autograd(k, v, q, *gates, lambda p, x: p["M"] @ x,
                                               {"M": np.zeros((3, 5))})
    np.testing.assert_allclose(y, y2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(M, params["M"].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(S, momentum["M"].numpy(), rtol=1e-10, atol=1e-12)


def test_titans_mlp_per_token_equals_the_autograd_loop():
    k, v, q, rng = _inputs(9, 4, 3, 5)
    gates = _gates(9, rng, theta_max=0.05)
    params = ref.init_mlp_memory(4, 3, 8, rng=rng)
    y, (p_T, s_T) = ref.titans_mlp(k, v, q, *gates, params)

    def apply(p, x):
        return torch.nn.functional.gelu(p["W1"] @ x, approximate="tanh") @ p["W2"].T

    y2, p2, s2 = _titans_by_autograd(k, v, q, *gates, apply, params)
    np.testing.assert_allclose(y, y2, rtol=1e-10, atol=1e-12)
    for n in ("W1", "W2"):
        np.testing.assert_allclose(p_T[n], p2[n].numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s_T[n], s2[n].numpy(), rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_chunk_size_one_is_the_per_token_update(T, seed):
    k, v, q, rng = _inputs(T, 4, 3, seed)
    gates = _gates(T, rng)
    state = (rng.normal(size=(3, 4)), rng.normal(size=(3, 4)))
    y, (M, S) = ref.titans_linear(k, v, q, *gates, state)
    y1, (M1, S1) = ref.titans_linear_chunked(k, v, q, *gates, 1, state)
    np.testing.assert_allclose(y1, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M1, M, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S1, S, rtol=1e-12, atol=1e-12)


def _orthonormal_keys(T, d, rng):
    return np.linalg.qr(rng.normal(size=(d, d)))[0][:T]


@pytest.mark.parametrize("chunk", [2, 3, 5, 8])
def test_chunked_equals_sequential_for_orthogonal_keys_from_an_empty_memory(chunk):
    """M_{−1} = S_{−1} = 0 and mutually orthogonal keys: every M_t is a sum of rows ∝ earlier
    keys, so M k_t = 0 at the chunk's start and at step t alike — equal for any gates."""
    rng = np.random.default_rng(chunk)
    T, d = 8, 8
    k = _orthonormal_keys(T, d, rng)
    v, q = rng.normal(size=(T, 3)), rng.normal(size=(T, d))
    gates = _gates(T, rng, theta_max=1.0)
    y, (M, S) = ref.titans_linear(k, v, q, *gates)
    yc, (Mc, Sc) = ref.titans_linear_chunked(k, v, q, *gates, chunk)
    np.testing.assert_allclose(yc, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Mc, M, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Sc, S, rtol=1e-12, atol=1e-12)


def test_chunked_equals_sequential_for_orthogonal_keys_without_forgetting():
    """α = 0, S_{−1} = 0 and orthogonal keys: the memory changes only by rows ∝ earlier keys,
    so (M_{t−1} − M_{t0−1}) k_t = 0 from any starting memory M_{−1}."""
    rng = np.random.default_rng(3)
    k = _orthonormal_keys(6, 6, rng)
    v, q = rng.normal(size=(6, 2)), rng.normal(size=(6, 6))
    eta, theta, _ = _gates(6, rng, theta_max=1.0)
    state = (rng.normal(size=(2, 6)), np.zeros((2, 6)))
    y, _ = ref.titans_linear(k, v, q, eta, theta, np.zeros(6), state)
    yc, _ = ref.titans_linear_chunked(k, v, q, eta, theta, np.zeros(6), 3, state)
    np.testing.assert_allclose(yc, y, rtol=1e-12, atol=1e-12)


def test_chunked_differs_from_sequential_otherwise():
    """Forgetting with a non-zero start, or correlated keys, break the equality: the chunked
    form is a different (mini-batch) algorithm, not a faster way to the same numbers."""
    rng = np.random.default_rng(4)
    k = _orthonormal_keys(6, 6, rng)
    v, q = rng.normal(size=(6, 2)), rng.normal(size=(6, 6))
    eta, theta, alpha = _gates(6, rng, theta_max=1.0)
    state = (rng.normal(size=(2, 6)), np.zeros((2, 6)))
    y, _ = ref.titans_linear(k, v, q, eta, theta, alpha + 0.1, state)
    yc, _ = ref.titans_linear_chunked(k, v, q, eta, theta, alpha + 0.1, 3, state)
    assert np.abs(yc - y).max() > 1e-3
    k2, v2, q2, rng = _inputs(12, 4, 3, 5)
    g = _gates(12, rng)
    assert np.abs(ref.titans_linear_chunked(k2, v2, q2, *g, 4)[0]
                  - ref.titans_linear(k2, v2, q2, *g)[0]).max() > 1e-3


def test_chunked_scans_equal_an_explicit_loop_within_the_chunk():
    """The scans of one chunk are the loop S_t = η S − θ G_t, M_t = (1 − α) M + S_t with every
    G_t taken at the chunk's first memory."""
    k, v, q, rng = _inputs(5, 4, 3, 6)
    eta, theta, alpha = _gates(5, rng)
    M0, S0 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    M, S, ys = M0, S0, []
    for t in range(5):
        S = eta[t] * S - theta[t] * ref.linear_memory_grad(M0, k[t], v[t])
        M = (1 - alpha[t]) * M + S
        ys.append(M @ q[t])
    y, (Mc, Sc) = ref.titans_linear_chunked(k, v, q, eta, theta, alpha, 5, (M0, S0))
    np.testing.assert_allclose(y, np.stack(ys), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Mc, M, rtol=1e-12, atol=1e-12)


def test_mlp_chunked_last_chunk_may_be_short():
    k, v, q, rng = _inputs(7, 3, 2, 8)
    gates = _gates(7, rng, theta_max=0.05)
    params = ref.init_mlp_memory(3, 2, 5, rng=rng)
    y, _ = ref.titans_mlp(k, v, q, *gates, params, chunk_size=3)
    assert y.shape == (7, 2) and np.isfinite(y).all()
    y1, _ = ref.titans_mlp(k, v, q, *gates, params, chunk_size=1)
    np.testing.assert_allclose(y[0], y1[0], rtol=1e-12)       # the first token sees no chunk-mate
