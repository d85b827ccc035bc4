"""Every HMM backend (Numba, Torch) against the NumPy reference, batched and unbatched, and the
public API's dispatch; Torch's log-likelihood gradient against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minirec.hmm as H
from minirec.hmm import numba_cpu, torch_ops
from minirec.hmm import reference as ref


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small sequential ops: one thread is faster than two, and fights no one on a shared box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def setup(K, M, T, N, seed):
    rng = np.random.default_rng(seed)
    pi, A, B = ref.random_model(K, M, rng=rng, concentration=0.7)
    return pi, A, B, ref.sample(pi, A, B, T, rng=rng, n=N)[1]


SIZES = [(1, 2, 1, 1), (3, 2, 7, 2), (5, 3, 63, 3), (7, 4, 2, 5), (64, 8, 40, 3)]


@pytest.mark.parametrize("K,M,T,N", SIZES)
def test_numba_matches_reference(K, M, T, N):
    pi, A, B, obs = setup(K, M, T, N, seed=K + T)
    want = ref.log_likelihood(pi, A, B, obs)
    for method in ("scaled", "log"):
        np.testing.assert_allclose(numba_cpu.log_likelihood(pi, A, B, obs, method=method), want,
                                   rtol=1e-11)
    np.testing.assert_allclose(numba_cpu.forward_log(pi, A, B, obs), ref.forward_log(pi, A, B, obs),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(numba_cpu.backward_log(A, B, obs), ref.backward_log(A, B, obs),
                               rtol=1e-10, atol=1e-10)
    alpha, c = numba_cpu.forward_scaled(pi, A, B, obs)
    ra, rc = ref.forward_scaled(pi, A, B, obs)
    np.testing.assert_allclose(alpha, ra, atol=1e-12)
    np.testing.assert_allclose(c, rc, rtol=1e-12)
    np.testing.assert_allclose(numba_cpu.posteriors(pi, A, B, obs), ref.posteriors(pi, A, B, obs),
                               atol=1e-11)
    path, lp = numba_cpu.viterbi(pi, A, B, obs)
    rpath, rlp = ref.viterbi(pi, A, B, obs)
    np.testing.assert_array_equal(path, rpath)
    np.testing.assert_allclose(lp, rlp, rtol=1e-12)


@pytest.mark.parametrize("K,M,T,N", SIZES)
def test_torch_matches_reference(K, M, T, N):
    pi, A, B, obs = setup(K, M, T, N, seed=K * T)
    t = [torch.from_numpy(x) for x in (pi, A, B, obs)]
    np.testing.assert_allclose(torch_ops.log_likelihood(*t).numpy(),
                               ref.log_likelihood(pi, A, B, obs), rtol=1e-11)
    np.testing.assert_allclose(torch_ops.posteriors(*t).numpy(), ref.posteriors(pi, A, B, obs),
                               atol=1e-10)
    np.testing.assert_allclose(torch_ops.backward_log(*t[1:]).numpy(), ref.backward_log(A, B, obs),
                               rtol=1e-10, atol=1e-10)
    path, lp = torch_ops.viterbi(*t)
    rpath, rlp = ref.viterbi(pi, A, B, obs)
    np.testing.assert_array_equal(path.numpy(), rpath)
    np.testing.assert_allclose(lp.numpy(), rlp, rtol=1e-12)


def test_torch_float32_close_to_reference():
    pi, A, B, obs = setup(6, 3, 50, 2, seed=3)
    t = [torch.from_numpy(x).float() for x in (pi, A, B)] + [torch.from_numpy(obs)]
    np.testing.assert_allclose(torch_ops.log_likelihood(*t).double().numpy(),
                               ref.log_likelihood(pi, A, B, obs), rtol=1e-5)


def test_torch_gradient_matches_finite_differences():
    """∂ log P / ∂ logits of softmax-parametrised rows: autograd vs central differences."""
    rng = np.random.default_rng(5)
    K, M = 3, 4
    logits = [torch.tensor(rng.normal(size=s), requires_grad=True) for s in ((K,), (K, K), (K, M))]
    obs = torch.from_numpy(ref.sample(*ref.random_model(K, M, rng=rng), 9, rng=rng, n=2)[1])

    def f(ls):
        return torch_ops.log_likelihood(*(torch.softmax(x, -1) for x in ls), obs).sum()

    f(logits).backward()
    eps = 1e-6
    for idx, x in enumerate(logits):
        num = np.zeros(x.shape)
        for i in np.ndindex(*x.shape):
            plus = [y.detach().clone() for y in logits]
            minus = [y.detach().clone() for y in logits]
            plus[idx][i] += eps
            minus[idx][i] -= eps
            num[i] = (f(plus) - f(minus)).item() / (2 * eps)
        np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_gradient_ascent_improves_the_likelihood():
    rng = np.random.default_rng(2)
    pi, A, B = ref.linear_chain(2)
    obs = torch.from_numpy(ref.sample(pi, A, B, 50, rng=rng, n=8)[1])
    torch.manual_seed(0)
    params = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in ((2,), (2, 2), (2, 3))]
    opt = torch.optim.Adam(params, lr=0.1)
    first = None
    for _ in range(40):
        ll = torch_ops.log_likelihood(*(torch.softmax(p, -1) for p in params), obs).sum()
        first = first if first is not None else ll.item()
        opt.zero_grad()
        (-ll).backward()
        opt.step()
    assert ll.item() > first + 50


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_public_api_unbatched_and_batched(backend):
    pi, A, B, obs = setup(4, 3, 11, 3, seed=9)
    want_ll = ref.log_likelihood(pi, A, B, obs)
    ll = H.log_likelihood(pi, A, B, obs, backend=backend)
    assert isinstance(ll, np.ndarray) and ll.shape == (3,) and ll.dtype == np.float64
    np.testing.assert_allclose(ll, want_ll, rtol=1e-11)
    one = H.log_likelihood(pi, A, B, obs[1], backend=backend)
    assert np.shape(one) == ()
    np.testing.assert_allclose(one, want_ll[1], rtol=1e-11)
    path, lp = H.viterbi(pi, A, B, obs[2], backend=backend)
    assert path.shape == (11,) and np.shape(lp) == ()
    np.testing.assert_array_equal(path, ref.viterbi(pi, A, B, obs[2])[0])
    gamma = H.posteriors(pi, A, B, obs, backend=backend)
    assert gamma.shape == (3, 11, 4)
    np.testing.assert_allclose(gamma, ref.posteriors(pi, A, B, obs), atol=1e-10)


def test_public_api_tensors_in_tensors_out():
    pi, A, B, obs = setup(4, 3, 11, 2, seed=10)
    t = [torch.from_numpy(x) for x in (pi, A, B, obs)]
    ll = H.log_likelihood(*t)
    assert isinstance(ll, torch.Tensor) and ll.shape == (2,)
    np.testing.assert_allclose(ll.numpy(), ref.log_likelihood(pi, A, B, obs), rtol=1e-11)
    path, lp = H.viterbi(*t[:3], t[3][0])
    assert isinstance(path, torch.Tensor) and path.shape == (11,)
    assert H.posteriors(*t).shape == (2, 11, 4)


def test_public_fit_and_sample():
    pi, A, B = H.linear_chain(2)
    states, obs = H.sample(pi, A, B, 200, rng=np.random.default_rng(0), n=10)
    assert states.shape == obs.shape == (10, 200)
    fit = H.fit(obs, 2, rng=np.random.default_rng(1), n_iter=30)
    assert fit.A.shape == (2, 2) and fit.B.shape == (2, 3)
    assert np.all(np.diff(fit.log_likelihoods) >= -1e-8)


def test_long_sequence_every_backend_finite():
    pi, A, B = ref.linear_chain(3)
    obs = ref.sample(pi, A, B, 100_000, rng=np.random.default_rng(3))[1]
    lls = [H.log_likelihood(pi, A, B, obs, backend=b) for b in ("numba", "torch")]
    lls.append(numba_cpu.log_likelihood(pi, A, B, obs[None], method="log")[0])
    assert np.all(np.isfinite(lls))
    np.testing.assert_allclose(lls, lls[0], rtol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_on_cuda_matches_reference():
    pi, A, B, obs = setup(16, 5, 200, 4, seed=12)
    t = [torch.from_numpy(x).cuda() for x in (pi, A, B, obs)]
    np.testing.assert_allclose(H.log_likelihood(*t).cpu().numpy(), ref.log_likelihood(pi, A, B, obs),
                               rtol=1e-11)
    path, lp = H.viterbi(*t)
    np.testing.assert_array_equal(path.cpu().numpy(), ref.viterbi(pi, A, B, obs)[0])
    np.testing.assert_allclose(H.posteriors(*t).cpu().numpy(), ref.posteriors(pi, A, B, obs), atol=1e-10)
