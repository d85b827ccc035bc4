"""The key–value streams of lesson 09 and the recall score."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.tasks.streams import random_writes, retrieval_hits, surprise_burst, unit_vectors


def test_random_writes_are_unit_and_seeded():
    k, v = random_writes(50, 8, 3, rng=np.random.default_rng(1))
    assert k.shape == (50, 8) and v.shape == (50, 3)
    np.testing.assert_allclose(np.linalg.norm(k, axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-12)
    k2, _ = random_writes(50, 8, 3, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(k, k2)
    assert abs((k @ k.T)[np.triu_indices(50, 1)].mean()) < 0.05   # no common direction


def test_surprise_burst_layout_and_correlations():
    s = surprise_burst(10, 6, 4, 16, rng=np.random.default_rng(2), similarity=0.8)
    assert s.T == 21 and s.novel == 10 and s.burst == slice(11, 17)
    np.testing.assert_allclose(np.linalg.norm(s.k, axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(s.k[s.burst] @ s.k[s.novel], 0.8, rtol=1e-12)
    np.testing.assert_allclose(s.v[s.burst] @ s.v[s.novel], 0.8, rtol=1e-12)
    assert np.abs(s.k[:10] @ s.k[s.novel]).max() < 0.8            # the novel key is new
    with pytest.raises(ValueError, match=r"similarity must be in \[0, 1\]"):
        surprise_burst(1, 1, 1, 4, rng=np.random.default_rng(0), similarity=1.5)


def test_recall_accuracy_counts_argmax_hits():
    values = np.eye(4)
    retrieved = np.array([[1.0, 0.2, 0, 0], [0.9, 0.1, 0, 0], [0, 0, 0.3, 0.1]])
    np.testing.assert_array_equal(retrieval_hits(retrieved, values), [True, False, True])
    np.testing.assert_array_equal(retrieval_hits(retrieved, values, [0, 0, 3]),
                                  [True, True, False])
    with pytest.raises(ValueError, match="targets must have shape"):
        retrieval_hits(retrieved, values, [0, 1])
    with pytest.raises(ValueError, match=r"values must have shape \(m, d_v\) = \(4, 4\) "
                                         r"\(d_v=4 from retrieved\); got \(4, 3\)"):
        retrieval_hits(retrieved, values[:, :3])


def test_retrieval_hits_refuses_targets_outside_the_values():
    with pytest.raises(ValueError, match=r"targets must index values: entries in \[0, m\) = \[0, 2\)"):
        retrieval_hits(np.eye(3)[:, :2], np.eye(2))
    with pytest.raises(TypeError, match="targets must be an integer array"):
        retrieval_hits(np.eye(2), np.eye(2), [0.0, 1.0])


def test_unit_vectors_rejects_empty_dimension():
    with pytest.raises(ValueError, match="d >= 1"):
        unit_vectors(3, 0, rng=np.random.default_rng(0))


def test_the_legacy_global_rng_is_refused():
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator .*got module"):
        unit_vectors(3, 2, rng=np.random)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator .*got RandomState"):
        surprise_burst(1, 1, 1, 4, rng=np.random.RandomState(0))
