"""Bad input to the memories gets a clear error naming the argument and the expected shape or
range; nothing broadcasts silently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minirec import memory


def _kvq(T=5, d_k=4, d_v=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(T, d_k)), rng.normal(size=(T, d_v)), rng.normal(size=(T, d_k))


GATES = dict(eta=0.5, theta=0.1, alpha=0.1)


@pytest.mark.parametrize("name,value,message", [
    ("theta", -0.1, r"theta must be >= 0; got values from -0\.1"),
    ("alpha", 1.5, r"alpha must be in \[0, 1\]; got values from 1\.5"),
    ("alpha", -0.01, r"alpha must be in \[0, 1\]"),
    ("eta", 1.01, r"eta must be in \[0, 1\]"),
    ("theta", np.array([0.1, 0.1, np.nan, 0.1, 0.1]), r"theta must be >= 0.* and NaN"),
    ("alpha", np.linspace(0, 1.2, 5), r"alpha must be in \[0, 1\]; got values from 0 to 1\.2"),
])
def test_gates_out_of_range_are_rejected(name, value, message):
    k, v, q = _kvq()
    with pytest.raises(ValueError, match=message):
        memory.titans_memory(k, v, q, **{**GATES, name: value})


def test_delta_rule_rejects_a_negative_step_also_as_a_tensor():
    k, v, q = (torch.from_numpy(x) for x in _kvq())
    with pytest.raises(ValueError, match="theta must be >= 0"):
        memory.delta_rule_memory(k, v, q, theta=torch.full((5,), -1.0, dtype=torch.float64))


def test_gate_of_the_wrong_length_names_T():
    k, v, q = _kvq()
    with pytest.raises(ValueError, match=r"eta must be a scalar or have shape \(T,\) = \(5,\) "
                                         r"\(T=5 from k\); got \(4,\)"):
        memory.titans_memory(k, v, q, **{**GATES, "eta": np.full(4, 0.5)})
    with pytest.raises(ValueError, match=r"theta must be a scalar or have shape \(T,\)"):
        memory.titans_memory(k, v, q, **{**GATES, "theta": np.full((5, 1), 0.1)})


@pytest.mark.parametrize("fn,kw", [(memory.hebbian_memory, {}),
                                   (memory.delta_rule_memory, {"theta": 1.0}),
                                   (memory.titans_memory, GATES)])
def test_shapes_are_named(fn, kw):
    k, v, q = _kvq()
    with pytest.raises(ValueError, match=r"v must have shape \(T, d_v\) = \(5, d_v\) \(T=5 from "
                                         r"k\); got \(4, 3\)"):
        fn(k, v[:4], q, **kw)
    with pytest.raises(ValueError, match=r"q must have shape \(T, d_k\) = \(5, 4\) \(d_k=4 from "
                                         r"k\); got \(5, 3\)"):
        fn(k, v, q[:, :3], **kw)
    with pytest.raises(ValueError, match=r"k must have 2 dimensions \(T, d_k\); got shape"):
        fn(k[None], v, q, **kw)
    with pytest.raises(TypeError, match="k must be a floating-point array"):
        fn(k.astype(int), v, q, **kw)
    with pytest.raises(TypeError, match="mix of NumPy arrays and torch tensors"):
        fn(k, torch.from_numpy(v), q, **kw)
    with pytest.raises(ValueError, match=r"at least one time step"):
        fn(k[:0], v[:0], q[:0], **kw)


def test_state_shapes_are_named():
    k, v, q = _kvq()
    with pytest.raises(ValueError, match=r"state must have shape \(d_v, d_k\) = \(3, 4\) "
                                         r"\(d_v=3 from v\); got \(4, 3\)"):
        memory.hebbian_memory(k, v, q, state=np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"state must be the pair \(M, S\)"):
        memory.titans_memory(k, v, q, **GATES, state=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"state\[1\] \(S\) must have shape \(d_v, d_k\)"):
        memory.titans_memory(k, v, q, **GATES, state=(np.zeros((3, 4)), np.zeros((3, 5))))
    bad = {"W1": np.zeros((8, 4)), "W2": np.zeros((3, 7))}
    with pytest.raises(ValueError, match=r"state\[0\]\['W2'\] must have shape \(d_v, H\) = "
                                         r"\(3, 8\) \(H=8 from state\[0\]\['W1'\]\)"):
        memory.titans_memory(k, v, q, **GATES, memory="mlp", state=(bad, bad))


def test_options_are_checked():
    k, v, q = _kvq()
    with pytest.raises(ValueError, match=r"memory must be one of \('linear', 'mlp'\)"):
        memory.titans_memory(k, v, q, **GATES, memory="deep")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer; got 0"):
        memory.titans_memory(k, v, q, **GATES, chunk_size=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        memory.titans_memory(k, v, q, **GATES, backend="jax")
