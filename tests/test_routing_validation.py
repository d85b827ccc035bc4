"""Bad input to the routing functions gets a clear error naming the argument and the shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minirec.routing as routing


def test_k_larger_than_the_number_of_experts():
    with pytest.raises(ValueError, match=r"k must be at most the number of experts E = 3 .*k = 4"):
        routing.top_k_route(np.zeros((5, 3)), 4)
    with pytest.raises(ValueError, match="k must be a positive integer; got 0"):
        routing.top_k_route(np.zeros((5, 3)), 0)


@pytest.mark.parametrize("shape", [(5,), (2, 5, 3), ()])
def test_logits_of_the_wrong_rank(shape):
    with pytest.raises(ValueError, match=r"logits must have 2 dimensions \(N, E\); got shape"):
        routing.top_k_route(np.zeros(shape), 1)


def test_integer_logits_are_refused():
    with pytest.raises(TypeError, match="logits must be a floating-point array"):
        routing.top_k_route(np.zeros((3, 2), dtype=int), 1)


def test_indices_must_be_integers_in_range_and_match_x():
    x = np.zeros((4, 3))
    with pytest.raises(TypeError, match="indices must be an integer array"):
        routing.dispatch(x, np.zeros((4, 2)), 3)
    with pytest.raises(ValueError, match=r"indices must hold expert numbers in \[0, 3\)"):
        routing.dispatch(x, np.full((4, 1), 3), 3)
    with pytest.raises(ValueError, match=r"indices must have shape \(N, k\) = \(4, k\) "
                                         r"\(N=4 from x\); got \(5, 1\)"):
        routing.dispatch(x, np.zeros((5, 1), dtype=int), 3)
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        routing.dispatch(x, np.zeros((4, 1), dtype=int), 3, capacity=0)
    with pytest.raises(TypeError, match="mix of NumPy arrays and torch tensors"):
        routing.dispatch(x, torch.zeros((4, 1), dtype=torch.int64), 3)


def test_combine_checks_every_argument():
    out = np.zeros((3, 2, 4))
    w, idx, slots = np.ones((5, 2)), np.zeros((5, 2), dtype=int), np.zeros((5, 2), dtype=int)
    routing.combine(out, w, idx, slots)                          # fine
    with pytest.raises(ValueError, match=r"weights must have 2 dimensions \(N, k\)"):
        routing.combine(out, np.ones(5), idx, slots)
    with pytest.raises(ValueError, match=r"slots must have shape \(N, k\) = \(5, 2\)"):
        routing.combine(out, w, idx, np.zeros((5, 1), dtype=int))
    with pytest.raises(ValueError, match=r"slots must hold buffer positions \(−1 for dropped, "
                                         r"C from expert_out\) in \[-1, 2\)"):
        routing.combine(out, w, idx, np.full((5, 2), 2))
    with pytest.raises(ValueError, match=r"expert_out must have 3 dimensions \(E, C, d_out\)"):
        routing.combine(np.zeros((3, 4)), w, idx, slots)
    with pytest.raises(TypeError, match="inputs must share one floating dtype"):
        routing.combine(out.astype(np.float32), w, idx, slots)


def test_balance_loss_and_dense_mixture_shapes():
    with pytest.raises(ValueError, match=r"indices must hold expert numbers in \[0, 4\)"):
        routing.load_balance_loss(np.full((3, 4), 0.25), np.full((3, 1), 7))
    with pytest.raises(ValueError, match=r"indices must have shape \(N, k\) = \(3, k\)"):
        routing.load_balance_loss(np.full((3, 4), 0.25), np.zeros((2, 1), dtype=int))
    with pytest.raises(ValueError, match="experts must hold E = 2 experts .*; got 1"):
        routing.dense_mixture(np.zeros((3, 2)), np.zeros((3, 2)), [lambda x: x])
    with pytest.raises(ValueError, match=r"probs must hold at least one token: shape \(N, E\)"):
        routing.load_balance_loss(np.zeros((0, 4)), np.zeros((0, 1), dtype=int))


def test_torch_dense_mixture_counts_its_experts():
    """It summed over the experts given and dropped the gates beyond them."""
    x, probs = torch.zeros(3, 2, dtype=torch.float64), torch.full((3, 3), 1 / 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="experts must hold E = 3 experts .*; got 2"):
        routing.dense_mixture(x, probs, [lambda z: z, lambda z: z])
    experts = routing.SwiGLUExperts(2, 2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="experts must hold E = 3 experts .*; got 2"):
        routing.dense_mixture(x, probs, experts)


def test_torch_input_needs_the_torch_backend():
    with pytest.raises(TypeError, match="torch tensors need backend='torch'"):
        routing.top_k_route(torch.zeros(3, 2), 1, backend="numba")
