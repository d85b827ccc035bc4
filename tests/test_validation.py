"""Bad input fails at the door with a message naming the argument, the expected and received shape."""

import numpy as np
import pytest
import torch

from minirec import cells
from minirec._validate import Shapes


def case(cell="gru", T=4, B=2, D=3, H=5, dtype=np.float64):
    rng = np.random.default_rng(0)
    params = cells.init_params(cell, D, H, rng=rng, dtype=dtype)
    x = rng.normal(size=(T, B, D)).astype(dtype)
    h0 = np.zeros((B, H), dtype)
    return x, ((h0, h0.copy()) if cell == "lstm" else h0), params


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_wrong_rank_names_argument_and_expected_shape(backend):
    x, h0, params = case()
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(T, B, D\); got shape \(4, 3\)"):
        cells.gru_forward(x[:, 0], h0, params, backend=backend)


def test_mismatched_batch_is_reported_against_x():
    x, h0, params = case()
    msg = r"h0 must have shape \(B, H\) = \(2, 5\) \(B=2 from x\); got \(3, 5\)"
    with pytest.raises(ValueError, match=msg):
        cells.gru_forward(x, np.zeros((3, 5)), params)


def test_mismatched_input_size_is_reported_against_weight():
    x, h0, params = case()
    params["weight_ih"] = params["weight_ih"][:, :2]
    with pytest.raises(ValueError, match=r"params\['weight_ih'\] must have shape \(3\*H, D\) = \(15, 3\)"):
        cells.gru_forward(x, h0, params)


def test_gate_count_is_checked():
    x, h0, params = case("lstm")
    with pytest.raises(ValueError, match=r"weight_ih.*not a multiple of 4"):
        cells.lstm_forward(x, h0, case("gru")[2])


def test_missing_param_key_lists_expected_keys():
    x, h0, params = case()
    del params["bias_hh"]
    with pytest.raises(ValueError, match=r"params is missing \['bias_hh'\]; expected keys"):
        cells.gru_forward(x, h0, params)


def test_torch_nn_names_get_a_hint():
    x, h0, _ = case()
    sd = {f"{k}_l0": v for k, v in case()[2].items()}
    with pytest.raises(ValueError, match="params_from_torch"):
        cells.gru_forward(x, h0, sd)


@pytest.mark.parametrize("bad", ["x", "h0", "param"])
def test_integer_dtype_is_a_type_error(bad):
    x, h0, params = case()
    if bad == "x":
        x = np.ones(x.shape, dtype=np.int64)
    elif bad == "h0":
        h0 = np.zeros(h0.shape, dtype=np.int32)
    else:
        params["weight_hh"] = params["weight_hh"].astype(int)
    with pytest.raises(TypeError, match=r"must be a floating-point array.*got dtype int"):
        cells.gru_forward(x, h0, params)


def test_integer_tensor_is_a_type_error():
    x, h0, params = case()
    tp = {k: torch.from_numpy(v) for k, v in params.items()}
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        cells.gru_forward(torch.ones(x.shape, dtype=torch.long), torch.from_numpy(h0), tp)


def test_lstm_state_must_be_a_pair():
    x, (h0, _), params = case("lstm")
    with pytest.raises(TypeError, match=r"h0 of an LSTM must be the pair \(h0, c0\)"):
        cells.lstm_forward(x, h0, params)


def test_mixed_dtypes_and_kinds_are_refused():
    x, h0, params = case()
    with pytest.raises(TypeError, match="one floating dtype"):
        cells.gru_forward(x.astype(np.float32), h0, params)
    with pytest.raises(TypeError, match="mix of NumPy arrays and torch tensors"):
        cells.gru_forward(torch.from_numpy(x), h0, params)


def test_grad_outputs_shape_and_truncate_value():
    x, h0, params = case()
    with pytest.raises(ValueError, match=r"grad_outputs must have shape \(T, B, H\) = \(4, 2, 5\)"):
        cells.gru_bptt(x, h0, params, np.zeros((4, 2, 4)))
    with pytest.raises(ValueError, match="truncate must be a positive integer; got 0"):
        cells.gru_bptt(x, h0, params, np.zeros((4, 2, 5)), truncate=0)


def test_unknown_backend():
    x, h0, params = case()
    with pytest.raises(ValueError, match="backend must be one of"):
        cells.rnn_forward(x, h0, case("rnn")[2], backend="jax")


def test_shapes_binds_symbols_in_order():
    s = Shapes()
    s.check("a", np.zeros((2, 6)), ("B", (3, "H")))
    assert s.sizes == {"B": 2, "H": 2}
    msg = r"b must have shape \(B, H\) = \(2, 2\) \(H=2 from a\); got \(2, 3\)"
    with pytest.raises(ValueError, match=msg):
        s.check("b", np.zeros((2, 3)), ("B", "H"))


def test_empty_sequence_is_refused():
    x, h0, params = case()
    with pytest.raises(ValueError, match=r"x must have at least one time step.*got \(0, 2, 3\)"):
        cells.gru_forward(x[:0], h0, params)


def test_params_from_torch_without_bias_gives_zero_biases():
    m = torch.nn.GRU(3, 4, bias=False).double()
    p = cells.params_from_torch(m)
    assert np.array_equal(p["bias_ih"], np.zeros(12)) and np.array_equal(p["bias_hh"], np.zeros(12))
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    out, _ = cells.gru_forward(x, np.zeros((2, 4)), p, backend="numpy")
    np.testing.assert_allclose(out, m(torch.from_numpy(x))[0].detach().numpy(), atol=1e-12)
