"""Bad input to the public HMM functions fails at the door with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import minirec.hmm as H


@pytest.fixture
def m():
    return H.linear_chain(3)


def test_shapes_named(m):
    pi, A, B = m
    with pytest.raises(ValueError, match=r"A must have shape \(K, K\) = \(3, 3\) \(K=3 from pi\)"):
        H.log_likelihood(pi, A[:2], B, [0, 1])
    with pytest.raises(ValueError, match=r"B must have shape \(K, M\)"):
        H.log_likelihood(pi, A, B[:2], [0, 1])
    with pytest.raises(ValueError, match=r"pi must have 1 dimensions"):
        H.log_likelihood(pi[None], A, B, [0, 1])


def test_distributions_checked(m):
    pi, A, B = m
    bad = A.copy()
    bad[1, 1] += 0.1
    with pytest.raises(ValueError, match=r"each row of A must sum to 1; A \(row 1\) sums to"):
        H.log_likelihood(pi, bad, B, [0, 1])
    neg = B.copy()
    neg[0, 0], neg[0, 1] = -0.01, 0.02
    with pytest.raises(ValueError, match=r"B must hold probabilities .*B\[0, 0\]"):
        H.viterbi(pi, A, neg, [0, 1])
    with pytest.raises(ValueError, match="pi must sum to 1"):
        H.posteriors(pi * 2, A, B, [0, 1])


def test_observations_checked(m):
    pi, A, B = m
    with pytest.raises(ValueError, match=r"symbols in \[0, M\) = \[0, 3\) .*obs\[1, 2\] = 3"):
        H.log_likelihood(pi, A, B, np.array([[0, 1, 2], [0, 1, 3]]))
    with pytest.raises(ValueError, match="at least one step"):
        H.log_likelihood(pi, A, B, np.zeros(0, dtype=int))
    with pytest.raises(TypeError, match="integer symbols"):
        H.log_likelihood(pi, A, B, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(T,\) or \(N, T\)"):
        H.log_likelihood(pi, A, B, np.zeros((2, 2, 2), dtype=int))
    with pytest.raises(ValueError, match=r"obs\[0\] = -1"):
        H.viterbi(pi, A, B, np.array([-1, 0]))


def test_types_checked(m):
    pi, A, B = m
    import torch
    with pytest.raises(TypeError, match="mix of NumPy arrays and torch tensors"):
        H.log_likelihood(torch.from_numpy(pi), A, B, [0])
    with pytest.raises(TypeError, match="A must be a floating-point array"):
        H.log_likelihood(pi, np.eye(3, dtype=int), B, [0])
    with pytest.raises(ValueError, match="backend must be one of"):
        H.log_likelihood(pi, A, B, [0], backend="cuda")
    with pytest.raises(TypeError, match="rng must be a np.random.Generator"):
        H.sample(pi, A, B, 5, rng=0)
    with pytest.raises(ValueError, match="T must be a positive integer"):
        H.sample(pi, A, B, 0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="init must have K = n_states = 2"):
        H.fit(np.array([[0, 1, 2]]), 2, rng=np.random.default_rng(0), init=m)


def test_torch_observations_checked(m):
    import torch
    pi, A, B = (torch.from_numpy(x) for x in m)
    with pytest.raises(TypeError, match="integer symbols"):
        H.log_likelihood(pi, A, B, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"obs\[1\] = 5"):
        H.viterbi(pi, A, B, torch.tensor([0, 5]))
    assert H.log_likelihood(pi, A, B, torch.tensor([[0, 1], [2, 2]])).shape == (2,)
