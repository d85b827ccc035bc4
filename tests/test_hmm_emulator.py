"""The HMM-emulating RNN's pieces: the distances against independent computations (a double
loop for MMD, an exact assignment for optimal transport), the hard Gumbel-softmax against its
definition, the model against torch.nn.RNN's equations, a short training run, the analysis
tools on constructed inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from minirec.hmm import emulator as em
from minirec.hmm import reference as ref


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small sequential ops: one thread is faster than two, and fights no one on a shared box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_mmd_equals_a_double_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64) + 0.5
    bw = (0.7, 2.0)

    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2 * s * s)) for s in bw)

    X, Y = x.numpy(), y.numpy()
    want = (np.mean([[k(a, b) for b in X] for a in X]) + np.mean([[k(a, b) for b in Y] for a in Y])
            - 2 * np.mean([[k(a, b) for b in Y] for a in X]))
    assert em.mmd(x, y, bandwidths=bw).item() == pytest.approx(want, rel=1e-12)
    assert em.mmd(x, x, bandwidths=bw).item() == pytest.approx(0.0, abs=1e-12)


def test_sinkhorn_approaches_the_assignment_cost_and_is_debiased():
    """For n = m uniform points and a small blur, OT is the optimal assignment with cost
    |a − b|²/2 (an independent solver: the Hungarian algorithm)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 2, generator=g, dtype=torch.float64)
    y = torch.randn(12, 2, generator=g, dtype=torch.float64) + torch.tensor([1.0, -0.5],
                                                                              dtype=torch.float64)
    C = 0.5 * torch.cdist(x, y).pow(2).numpy()
    rows, cols = linear_sum_assignment(C)
    exact = C[rows, cols].mean()
    s = em.sinkhorn_divergence(x, y, blur=0.02, n_final=200).item()
    assert s == pytest.approx(exact, rel=0.05)                 # self terms ~ 0 at small blur
    assert em.sinkhorn_divergence(x, x, blur=0.2).item() == pytest.approx(0.0, abs=1e-9)
    assert em.sinkhorn_divergence(x, y, blur=0.2).item() > 0


def test_sinkhorn_gradient_moves_points_towards_the_target():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(10, 2, generator=g, dtype=torch.float64) + 3.0
    em.sinkhorn_divergence(x, y).backward()
    assert torch.all(x.grad.sum(0) < 0)                        # descent moves x up, towards y


def test_gumbel_hard_is_one_hot_with_the_softmax_frequencies_and_soft_gradient():
    g = torch.Generator().manual_seed(3)
    logits = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)).repeat(20000, 1)
    y = em.gumbel_hard(logits, generator=g)
    assert torch.all(y.sum(-1) == 1) and set(y.unique().tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(y.mean(0).numpy(), [0.2, 0.5, 0.3], atol=0.01)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (em.gumbel_hard(w[None], generator=g)[0] * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


def test_emulator_follows_its_equations():
    torch.manual_seed(0)
    model = em.HMMEmulator(3, hidden=6, d_in=2).double()
    g = torch.Generator().manual_seed(4)
    noise = torch.randn(5, 2, 2, generator=g, dtype=torch.float64)
    h0 = torch.randn(2, 6, generator=g, dtype=torch.float64)
    logits, h = model(noise, h0)
    W_in, W_hh = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0
    prev = h0
    for t in range(5):
        prev = torch.relu(noise[t] @ W_in.T + prev @ W_hh.T)
        torch.testing.assert_close(h[t], prev)
        torch.testing.assert_close(logits[t], prev @ model.readout.weight.T)


def test_short_training_lowers_the_loss_and_is_seeded():
    pi, A, B = ref.linear_chain(2)

    def run():
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        model = em.HMMEmulator(3, hidden=16, d_in=4)
        losses = em.train_emulator(model, lambda s: ref.sample(pi, A, B, 10, rng=rng, n=64)[1],
                                   steps=40, batch=64, T=10, generator=torch.Generator().manual_seed(0),
                                   lr=1e-2, bandwidths=(1.0, 2.0, 4.0))
        return losses

    first, second = run(), run()
    assert first == second
    assert np.mean(first[-10:]) < 0.8 * np.mean(first[:10])


def test_zero_input_trajectory_of_a_contracting_network_reaches_one_point():
    torch.manual_seed(1)
    model = em.HMMEmulator(3, hidden=8, d_in=2).double()
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(0.3 / torch.linalg.matrix_norm(model.rnn.weight_hh_l0, 2))
    h0 = torch.rand(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = em.zero_input_trajectory(model, 60, h0)
    assert h.shape == (60, 4, 8)
    assert np.abs(h[-1] - h[-1][0]).max() < 1e-12             # every start, one fixed point


def test_pca_recovers_a_planted_plane():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(5, 2)))[0].T          # (2, 5) orthonormal
    coords = rng.normal(size=(400, 2)) * [3.0, 1.0]
    points = coords @ basis + 0.01 * rng.normal(size=(400, 5)) + 7.0
    proj, comps, ratio, mean = em.pca(points, 2)
    assert ratio.sum() > 0.999 and ratio[0] > ratio[1]
    np.testing.assert_allclose(np.abs(comps @ basis.T), np.eye(2), atol=1e-3)
    np.testing.assert_allclose(mean, points.mean(0))
    assert proj.shape == (400, 2)


def test_kick_scores_single_out_the_unit_that_jumps_at_switches():
    rng = np.random.default_rng(0)
    T, N, H = 200, 3, 4
    symbols = (rng.random((T, N)) < 0.1).cumsum(0) % 2
    h = rng.normal(scale=0.1, size=(T, N, H)).cumsum(0)
    switch = np.zeros((T, N))
    switch[1:] = symbols[1:] != symbols[:-1]
    h[:, :, 2] += 5 * np.cumsum(switch, 0)                     # unit 2 jumps at every switch
    scores = em.kick_scores(h, symbols)
    assert np.argmax(scores) == 2 and scores[2] > 10 * np.median(scores)
