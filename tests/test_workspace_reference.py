"""The global-workspace reference against computations that do not depend on it: integer
addition mod N, an explicit permutation matrix, a per-module loop, torch.nn.LSTMCell with copied
weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec import workspace as ws
from minirec.workspace import reference as ref


def _all_pairs(n_digits, b_max):
    a, b = np.meshgrid(np.arange(n_digits), np.arange(b_max + 1), indexing="ij")
    return a.ravel(), b.ravel()


@pytest.mark.parametrize("n_digits,n_steps", [(20, 11), (7, 12), (2, 2), (10, 3)])
def test_hand_set_program_adds_every_pair_exactly(n_digits, n_steps):
    a, b = _all_pairs(n_digits, n_steps - 2)
    np.testing.assert_array_equal(ws.add(a, b, n_digits=n_digits, n_steps=n_steps),
                                  (a + b) % n_digits)


def test_hand_set_program_workspace_counts_one_digit_per_increment():
    """After the input, the workspace is exactly onehot(a + s) after s increments, and stays
    there through the output steps; nothing leaks (every row stays one-hot)."""
    N, K = 9, 8
    a, b = _all_pairs(N, K - 2)
    trajectory = ref.run_program(ref.one_hot(a, N), ref.hand_set_program(b, K))
    np.testing.assert_allclose(trajectory[0], np.full((len(a), N), 1 / N))
    for k in range(1, K + 1):
        increments = np.minimum(k - 1, b)
        np.testing.assert_array_equal(trajectory[k], np.eye(N)[(a + increments) % N])


def test_hand_set_program_layout():
    program = ref.hand_set_program(np.array([0, 2, 4]), 6)
    assert program.shape == (6, 3, 3)
    choices = program.argmax(-1).T                            # (B, K)
    np.testing.assert_array_equal(choices, [[0, 2, 2, 2, 2, 2],
                                            [0, 1, 1, 2, 2, 2],
                                            [0, 1, 1, 1, 1, 2]])
    np.testing.assert_array_equal(program.sum(-1), 1.0)


def _shift_matrix(n):
    """P with P[j, i] = 1 iff i = j − 1 mod n, built entry by entry."""
    P = np.zeros((n, n))
    for j in range(n):
        P[j, (j - 1) % n] = 1.0
    return P


@pytest.mark.parametrize("n", [1, 2, 5, 20])
def test_increment_is_the_cyclic_shift_matrix(n):
    w = np.random.default_rng(n).normal(size=(3, n))
    np.testing.assert_array_equal(ref.increment_module(w), w @ _shift_matrix(n).T)
    for j in range(n):
        np.testing.assert_array_equal(ref.increment_module(np.eye(n)[[j]]), np.eye(n)[[(j + 1) % n]])
    shifted = w
    for _ in range(n):
        shifted = ref.increment_module(shifted)
    np.testing.assert_array_equal(shifted, w)


def test_write_with_one_hot_gates_runs_exactly_one_module():
    rng = np.random.default_rng(1)
    w = rng.uniform(size=(4, 6))
    a_onehot = ref.one_hot(rng.integers(0, 6, size=4), 6)
    expected = [a_onehot, np.roll(w, 1, axis=1), w]
    for m in range(3):
        gates = np.zeros((4, 3))
        gates[:, m] = 1.0
        np.testing.assert_array_equal(ref.workspace_write(w, gates, a_onehot), expected[m])


def test_soft_write_is_the_per_example_mixture_and_keeps_a_distribution():
    rng = np.random.default_rng(2)
    B, N = 5, 7
    w = rng.uniform(size=(B, N))
    w /= w.sum(1, keepdims=True)
    gates = ref.soft_gates(rng.normal(size=(B, 3)))
    a = rng.integers(0, N, size=B)
    new = ref.workspace_write(w, gates, ref.one_hot(a, N))
    for i in range(B):                                        # one example at a time, by hand
        shifted = [w[i, (j - 1) % N] for j in range(N)]
        for j in range(N):
            want = gates[i, 0] * (j == a[i]) + gates[i, 1] * shifted[j] + gates[i, 2] * w[i, j]
            assert new[i, j] == pytest.approx(want, rel=1e-14, abs=1e-16)
    np.testing.assert_allclose(new.sum(1), 1.0, rtol=1e-14)
    assert (new >= 0).all()


def test_gates():
    logits = np.array([[0.3, 2.0, -1.0], [1.0, 1.0, 0.0], [-5.0, -5.0, -4.0]])
    np.testing.assert_allclose(ref.soft_gates(logits),
                               torch.softmax(torch.tensor(logits), -1).numpy(), rtol=1e-14)
    np.testing.assert_array_equal(ref.hard_gates(logits), np.eye(3)[[1, 0, 2]])   # tie → first
    big = ref.soft_gates(np.array([[800.0, 0.0, -800.0]]))
    np.testing.assert_array_equal(big, [[1.0, 0.0, 0.0]])                       # no overflow


def _torch_controller(params, C, H):
    cell = torch.nn.LSTMCell(C, H, dtype=torch.float64)
    out = torch.nn.Linear(H, 3, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(torch.tensor(params[name]))
        out.weight.copy_(torch.tensor(params["weight_out"]))
        out.bias.copy_(torch.tensor(params["bias_out"]))
    return cell, out


@pytest.mark.parametrize("reads_workspace", [False, True])
def test_controller_step_is_lstm_cell_then_linear(reads_workspace):
    rng = np.random.default_rng(3)
    B, N, H = 4, 5, 6
    params = ref.init_controller_params(N, H, rng=rng, reads_workspace=reads_workspace)
    C = ref.controller_input_size(N, reads_workspace)
    assert params["weight_ih"].shape == (4 * H, C)
    w = rng.uniform(size=(B, N))
    cue = ref.cue_of(rng.integers(0, 4, size=B))
    state = (rng.normal(size=(B, H)), rng.normal(size=(B, H)))
    logits, (h, c) = ref.controller_step(w, cue, state, params, reads_workspace=reads_workspace)
    cell, out = _torch_controller(params, C, H)
    x = torch.tensor(np.concatenate([w, cue], 1) if reads_workspace else cue)
    h_t, c_t = cell(x, tuple(torch.tensor(s) for s in state))
    np.testing.assert_allclose(h, h_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, c_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(logits, out(h_t).detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reads_workspace", [False, True])
def test_controller_run_against_a_loop_over_lstm_cell(reads_workspace):
    """The whole hard-gated run, rebuilt with torch.nn.LSTMCell and the module chosen by index,
    example by example."""
    rng = np.random.default_rng(4)
    B, N, H, K = 6, 7, 5, 6
    params = ref.init_controller_params(N, H, rng=rng, reads_workspace=reads_workspace)
    params["weight_out"] *= 8.0                                  # let the gates vary over steps
    a, b = rng.integers(0, N, size=B), rng.integers(0, K - 1, size=B)
    traj, gates, logits = ref.controller_run(ref.one_hot(a, N), ref.cue_of(b), params, K,
                                             reads_workspace=reads_workspace)
    cell, out = _torch_controller(params, ref.controller_input_size(N, reads_workspace), H)
    for i in range(B):
        w = torch.full((1, N), 1.0 / N, dtype=torch.float64)
        state = (torch.zeros(1, H, dtype=torch.float64), torch.zeros(1, H, dtype=torch.float64))
        for k in range(K):
            cue = torch.tensor([[float(b[i])]], dtype=torch.float64)
            state = cell(torch.cat([w, cue], 1) if reads_workspace else cue, state)
            scores = out(state[0])
            choice = int(scores.argmax())
            w = {0: torch.eye(N, dtype=torch.float64)[[a[i]]],
                 1: torch.roll(w, 1, 1), 2: w}[choice]
            np.testing.assert_allclose(logits[k, i], scores[0].detach().numpy(), rtol=1e-12,
                                       atol=1e-13)
            assert gates[k, i].argmax() == choice
            np.testing.assert_array_equal(traj[k + 1, i], w[0].detach().numpy())
    assert len({tuple(g) for g in gates.argmax(-1).T}) > 1, "the test should see several programs"


def test_soft_run_with_saturated_logits_is_the_hard_run():
    rng = np.random.default_rng(5)
    N, H, K = 6, 4, 5
    params = ref.init_controller_params(N, H, rng=rng)
    params["weight_out"] *= 1e4
    params["bias_out"] *= 1e4
    a, b = np.arange(N), np.arange(N) % (K - 1)
    hard = ref.controller_run(ref.one_hot(a, N), ref.cue_of(b), params, K, hard=True)
    soft = ref.controller_run(ref.one_hot(a, N), ref.cue_of(b), params, K, hard=False)
    top2 = np.sort(hard[2], axis=-1)[..., -2:]
    assert (top2[..., 1] - top2[..., 0]).min() > 50               # softmax is one-hot in float64
    np.testing.assert_allclose(soft[0], hard[0], atol=1e-15)
    np.testing.assert_allclose(soft[1], hard[1], atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(n_digits=st.integers(2, 12), n_steps=st.integers(2, 9), batch=st.integers(1, 6),
       seed=st.integers(0, 10_000))
def test_any_program_ending_in_b_increments_after_the_last_input_adds(n_digits, n_steps, batch,
                                                                      seed):
    """Property: a one-hot program whose last input step is followed by exactly b increments
    (other steps anything) leaves onehot((a + b) mod N) — the rule the lesson uses to read a
    learned controller's program."""
    rng = np.random.default_rng(seed)
    choice = rng.integers(0, 3, size=(n_steps, batch))
    last_input = rng.integers(0, n_steps, size=batch)
    choice[last_input, np.arange(batch)] = ref.INPUT
    later = np.arange(n_steps)[:, None] > last_input[None, :]
    choice[later & (choice == ref.INPUT)] = ref.OUTPUT
    b = ((choice == ref.INCREMENT) & later).sum(axis=0)
    a = rng.integers(0, n_digits, size=batch)
    final = ref.run_program(ref.one_hot(a, n_digits), np.eye(3)[choice])[-1]
    np.testing.assert_array_equal(final, np.eye(n_digits)[(a + b) % n_digits])
