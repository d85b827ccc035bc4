"""Bad input to the workspace's public functions and modules gets a clear error that names the
argument and the expected shape or range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec import workspace as ws

N, K, H = 6, 5, 4


@pytest.fixture
def params():
    return ws.init_controller_params(N, H, rng=np.random.default_rng(0))


def test_write_shapes_are_checked():
    w, gates, a1h = np.zeros((3, N)), np.zeros((3, 3)), np.zeros((3, N))
    with pytest.raises(ValueError, match=r"gates must have shape \(B, 3\) = \(3, 3\); got \(3, 4\)"):
        ws.workspace_write(w, np.zeros((3, 4)), a1h)
    with pytest.raises(ValueError, match=r"a_onehot must have shape \(B, N\) = \(3, 6\) "
                                         r"\(B=3 from w\); got \(2, 6\)"):
        ws.workspace_write(w, gates, np.zeros((2, N)))
    with pytest.raises(ValueError, match=r"w must have 2 dimensions \(B, N\); got shape \(6,\)"):
        ws.workspace_write(np.zeros(N), gates, a1h)
    with pytest.raises(TypeError, match="gates must be a floating-point array"):
        ws.workspace_write(w, np.zeros((3, 3), int), a1h)
    with pytest.raises(TypeError, match="mix of NumPy arrays and torch tensors"):
        ws.workspace_write(torch.zeros(3, N), gates, a1h)
    with pytest.raises(TypeError, match="share one floating dtype"):
        ws.workspace_write(w, gates.astype(np.float32), a1h)


def test_digits_must_be_integers_in_range():
    program = ws.hand_set_program(np.array([1, 2]), K)
    with pytest.raises(TypeError, match=r"a must be an integer array of digits, shape \(B,\); "
                                        r"got dtype float64"):
        ws.run_program(np.array([1.0, 2.0]), program, n_digits=N)
    with pytest.raises(ValueError, match=r"a must hold digits in \[0, 6\); got values from 0 to 6"):
        ws.run_program(np.array([0, 6]), program, n_digits=N)
    with pytest.raises(ValueError, match=r"a must have shape \(B,\) = \(2,\) \(B=2 from program\)"):
        ws.run_program(np.array([0, 1, 2]), program, n_digits=N)
    with pytest.raises(TypeError, match="b must be an integer array"):
        ws.hand_set_program(np.array([True, False]), K)


def test_program_length_bounds_the_second_addend():
    with pytest.raises(ValueError, match=r"b must hold second addends \(at most n_steps − 2"):
        ws.hand_set_program(np.array([0, 4]), K)
    with pytest.raises(ValueError, match="n_steps must be at least 2; got 1"):
        ws.hand_set_program(np.array([0]), 1)
    with pytest.raises(ValueError, match="n_digits must be a positive integer; got 2.0"):
        ws.add(np.array([1]), np.array([1]), n_digits=2.0, n_steps=K)


def test_controller_params_are_checked(params):
    a, b = np.array([1, 2]), np.array([0, 3])
    kw = dict(n_digits=N, n_steps=K)
    with pytest.raises(ValueError, match=r"params is missing \['bias_out'\]"):
        ws.controller_run(a, b, {k: v for k, v in params.items() if k != "bias_out"}, **kw)
    with pytest.raises(ValueError, match=r"params\['weight_ih'\] must have shape \(4\*H, C\) = "
                                         r"\(16, 7\) \(C=7 from n_digits \+ 1"):
        ws.controller_run(a, b, params, reads_workspace=True, **kw)
    bad = dict(params, weight_out=np.zeros((H, 3)))
    with pytest.raises(ValueError, match=r"params\['weight_out'\] must have shape \(3, H\) = "
                                         r"\(3, 4\); got \(4, 3\)"):
        ws.controller_run(a, b, bad, **kw)
    with pytest.raises(ValueError, match=r"b must have shape \(B,\) = \(2,\) \(B=2 from a\)"):
        ws.controller_run(a, np.array([1]), params, **kw)
    with pytest.raises(ValueError, match="backend must be one of"):
        ws.controller_run(a, b, params, backend="numba", **kw)
    torch_params = {k: torch.as_tensor(v) for k, v in params.items()}
    with pytest.raises(TypeError, match="torch tensors need backend='torch'"):
        ws.controller_run(a, b, torch_params, backend="numpy", **kw)


def test_module_rejects_bad_digits():
    model = ws.GlobalWorkspace(N, K, H)
    with pytest.raises(TypeError, match=r"a must be an integer tensor of digits, shape \(B,\)"):
        model(torch.tensor([1.0]), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"b must hold digits in \[0, 4\); got values from 0 to 4"):
        model(torch.tensor([1, 2]), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"a and b must have the same shape"):
        model(torch.tensor([1, 2]), torch.tensor([0]))
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        ws.GlobalWorkspace(N, 0)
    with pytest.raises(ValueError, match=r"params\['bias_out'\] must have shape \(3,\)"):
        model.load_params(dict(ws.init_controller_params(N, H, rng=np.random.default_rng(1)),
                               bias_out=np.zeros(4)))
