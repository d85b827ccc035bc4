"""The torch global workspace against the NumPy reference; soft gates against hard ones; the
trainable model (autograd against finite differences, a short training run, CUDA when there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec import workspace as ws
from minirec.workspace import experiments as ex
from minirec.workspace import reference as ref
from minirec.workspace import torch_ops as tops


@pytest.fixture(autouse=True)
def one_thread():
    """The models are tiny: one thread is as fast, and does not fight the other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def _t(x, dtype):
    return torch.as_tensor(x, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_write_and_program_match_reference(dtype):
    rng = np.random.default_rng(10)
    B, N, K = 5, 7, 6
    w = rng.uniform(size=(B, N))
    gates = ref.soft_gates(rng.normal(size=(B, 3)))
    a = rng.integers(0, N, size=B)
    a1h = ref.one_hot(a, N)
    np.testing.assert_allclose(tops.workspace_write(_t(w, dtype), _t(gates, dtype), _t(a1h, dtype)),
                               ref.workspace_write(w, gates, a1h), **TOL[dtype])
    program = ref.soft_gates(rng.normal(size=(K, B, 3)))
    np.testing.assert_allclose(ws.run_program(torch.as_tensor(a), _t(program, dtype), n_digits=N),
                               ws.run_program(a, program, n_digits=N), **TOL[dtype])
    np.testing.assert_allclose(tops.module_proposals(_t(w, dtype), _t(a1h, dtype)),
                               ref.module_proposals(w, a1h), **TOL[dtype])


@pytest.mark.parametrize("reads_workspace", [False, True])
@pytest.mark.parametrize("hard", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_controller_run_matches_reference(dtype, hard, reads_workspace):
    rng = np.random.default_rng(11)
    B, N, H, K = 7, 5, 6, 7
    params = ref.init_controller_params(N, H, rng=rng, reads_workspace=reads_workspace)
    params["weight_out"] *= 6.0
    a, b = rng.integers(0, N, size=B), rng.integers(0, K - 1, size=B)
    kw = dict(n_digits=N, n_steps=K, hard=hard, reads_workspace=reads_workspace)
    expected = ws.controller_run(a, b, params, **kw)
    got = ws.controller_run(a, b, {k: _t(v, dtype) for k, v in params.items()}, **kw)
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g.numpy(), e, **TOL[dtype])


def test_module_matches_reference_with_copied_params():
    rng = np.random.default_rng(12)
    N, K, H = 8, 6, 5
    params = ref.init_controller_params(N, H, rng=rng)
    params["weight_out"] *= 6.0
    model = tops.GlobalWorkspace(N, K, H, dtype=torch.float64)
    model.load_params(params)
    for k, v in model.params().items():
        np.testing.assert_array_equal(v.detach().numpy(), params[k])
    a, b = rng.integers(0, N, size=9), rng.integers(0, K - 1, size=9)
    model.eval()
    run = model(torch.as_tensor(a), torch.as_tensor(b))                      # eval: hard gates
    expected = ref.controller_run(ref.one_hot(a, N), ref.cue_of(b), params, K, hard=True)
    for e, g in zip(expected, run, strict=True):
        np.testing.assert_allclose(g.detach().numpy(), e, rtol=1e-12, atol=1e-13)
    model.train()
    soft = model(torch.as_tensor(a), torch.as_tensor(b))                     # train: soft gates
    expected = ref.controller_run(ref.one_hot(a, N), ref.cue_of(b), params, K, hard=False)
    np.testing.assert_allclose(soft.workspace.detach().numpy(), expected[0], rtol=1e-12, atol=1e-13)


def test_soft_gates_given_one_hot_gates_equal_hard_gates():
    """The soft write, fed one-hot gates, runs exactly the chosen module: the model trained with
    soft gates computes what the hard model computes wherever its softmax has saturated."""
    rng = np.random.default_rng(13)
    B, N = 6, 9
    w = torch.as_tensor(rng.uniform(size=(B, N)))
    a1h = torch.as_tensor(ref.one_hot(rng.integers(0, N, size=B), N))
    logits = torch.as_tensor(rng.normal(size=(B, 3)))
    one_hot = tops.hard_gates(logits)
    np.testing.assert_array_equal(one_hot.sum(-1).numpy(), 1.0)
    by_soft_write = tops.workspace_write(w, one_hot, a1h)
    chosen = tops.module_proposals(w, a1h)[torch.arange(B), logits.argmax(-1)]
    assert torch.equal(by_soft_write, chosen)
    saturated = tops.soft_gates(logits * 1e4)
    assert torch.equal(saturated, one_hot)


def test_soft_run_gradients_match_finite_differences():
    torch.manual_seed(0)
    N, K, H = 4, 4, 2
    params = {k: torch.as_tensor(v).requires_grad_()
              for k, v in ref.init_controller_params(N, H, rng=np.random.default_rng(14),
                                                     reads_workspace=True).items()}
    a1h = torch.as_tensor(ref.one_hot([1, 3, 0], N))
    cue = torch.tensor([[0.0], [2.0], [1.0]], dtype=torch.float64)
    target = torch.tensor([1, 1, 1])

    def loss(*values):
        p = dict(zip(params, values, strict=True))
        run = tops.controller_run(a1h, cue, p, K, hard=False, reads_workspace=True)
        return torch.nn.functional.nll_loss(torch.log(run.workspace[-1]), target)

    assert torch.autograd.gradcheck(loss, tuple(params.values()))


def test_training_learns_the_program_and_hard_gates_follow_it():
    """A small split trains to exact answers with hard gates on the training pairs, and the
    learned gate sequence is a program that adds: after the last input step, exactly b
    increments (the order of the others is free: output is a no-op, a repeated input rewrites
    a)."""
    split = ex.addition_split(6, 3, rng=np.random.default_rng(0))
    result = ex.train_workspace(split, hidden_size=8, steps=150, lr=0.05, seed=0)
    assert result.losses[-1] < 0.1 * result.losses[0]
    assert not result.model.training
    assert ex.accuracy(result.model, split.train, 6) == 1.0
    a, b = (torch.as_tensor(x) for x in split.train)
    run = result.model(a, b)
    choices = run.gates.argmax(-1).numpy().T                                # (B, K)
    for steps, b_i in zip(choices, split.train[1], strict=True):
        last_input = np.flatnonzero(steps == ref.INPUT).max()
        assert (steps[last_input:] == ref.INCREMENT).sum() == b_i, steps


def test_direct_lstm_baseline_fits_its_training_set():
    split = ex.addition_split(6, 3, rng=np.random.default_rng(0))
    result = ex.train_direct(split, hidden_size=16, steps=150, seed=0)
    assert ex.accuracy(result.model, split.train, 6) == 1.0
    tokens = result.model.tokens(torch.tensor([2]), torch.tensor([3]))
    np.testing.assert_array_equal(tokens[:, 0].numpy(),
                                  [[0, 0, 1, 0, 0, 0, 2], [0, 0, 0, 1, 0, 0, 3]])


def test_addition_split_partitions_the_pairs():
    split = ex.addition_split(20, 9, rng=np.random.default_rng(0))
    pairs = [set(zip(*map(list, s), strict=True))
             for s in (split.train, split.interpolation, split.extrapolation)]
    assert sum(map(len, pairs)) == 200 and len(set.union(*pairs)) == 200
    assert all(b == 9 for _, b in pairs[2]) and len(pairs[2]) == 20
    assert len(pairs[1]) == 36 and all(b < 9 for _, b in pairs[1] | pairs[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_module_on_cuda_matches_cpu():
    torch.manual_seed(0)
    model = tops.GlobalWorkspace(12, 8, 16, dtype=torch.float64)
    a, b = torch.arange(12), torch.arange(12) % 7
    cpu = model.eval()(a, b)
    gpu = model.to("cuda")(a.cuda(), b.cuda())
    for c, g in zip(cpu, gpu, strict=True):
        assert g.device.type == "cuda"
        np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-10, atol=1e-12)
    model.train()
    loss = model.log_answer(model(a.cuda(), b.cuda())).sum()
    loss.backward()
    assert model.readout.weight.grad.device.type == "cuda"
