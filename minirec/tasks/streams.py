r"""Streams of key–value writes for the memories of lesson 09, and how to score recall.

- :func:`random_writes`: n random unit keys and unit values, the stream written into a memory
  one pair at a time; recall asks the memory for each value back at its key.
- :func:`surprise_burst`: random writes, then a *novel* pair, then a burst of pairs whose keys
  and values are correlated with the novel pair's, then random writes again. The novel token is
  surprising (a large gradient); the burst that follows is less so, because the memory already
  half-predicts it — the situation Titans' momentum is meant for (paper #14, §3.1).
- :func:`retrieval_hits`: the retrieved vector counts as recalled when, among all the stream's
  values, the stored one has the largest dot product with it (argmax over n values).

Shapes, time first: ``k (T, d_k)``, ``v (T, d_v)``. Every draw comes from the ``rng`` given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minirec._validate import Shapes, is_torch, require_float, require_generator, require_integer

__all__ = ["random_writes", "unit_vectors", "surprise_burst", "SurpriseBurst", "retrieval_hits"]


def unit_vectors(n, d, *, rng, dtype=np.float64):
    """``(n, d)`` rows drawn uniformly on the unit sphere."""
    if n < 0 or d < 1:
        raise ValueError(f"need n >= 0 and d >= 1; got n={n}, d={d}")
    x = require_generator("rng", rng).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


def random_writes(n, d_k, d_v=None, *, rng, dtype=np.float64):
    """n pairs of random unit keys ``(n, d_k)`` and unit values ``(n, d_v)`` (d_v = d_k by
    default). Returns ``(k, v)``."""
    d_v = d_k if d_v is None else d_v
    return unit_vectors(n, d_k, rng=rng, dtype=dtype), unit_vectors(n, d_v, rng=rng, dtype=dtype)


def _correlated(center, n, similarity, rng):
    """n unit vectors with expected cosine ``similarity`` to the unit vector ``center``."""
    noise = rng.standard_normal((n, center.shape[0]))
    noise -= np.outer(noise @ center, center)                 # orthogonal to the center
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return similarity * center + np.sqrt(1.0 - similarity ** 2) * noise


@dataclass(frozen=True)
class SurpriseBurst:
    """A surprise-burst stream: ``k (T, d)``, ``v (T, d)``, the novel pair at ``novel``, the
    correlated burst at ``burst`` (a slice, right after ``novel``)."""

    k: np.ndarray
    v: np.ndarray
    novel: int
    burst: slice

    @property
    def T(self) -> int:
        return self.k.shape[0]


def surprise_burst(n_before, burst_len, n_after, d, *, rng, similarity=0.9, dtype=np.float64):
    """Random unit pairs (``n_before``), one novel pair, ``burst_len`` pairs whose keys and
    values have cosine ``similarity`` with the novel key and value, then ``n_after`` random pairs.
    Returns a :class:`SurpriseBurst` with T = n_before + 1 + burst_len + n_after."""
    if not 0.0 <= similarity <= 1.0:
        raise ValueError(f"similarity must be in [0, 1]; got {similarity}")
    require_generator("rng", rng)
    k_before, v_before = random_writes(n_before, d, rng=rng)
    k_novel, v_novel = random_writes(1, d, rng=rng)
    k_burst = _correlated(k_novel[0], burst_len, similarity, rng)
    v_burst = _correlated(v_novel[0], burst_len, similarity, rng)
    k_after, v_after = random_writes(n_after, d, rng=rng)
    k = np.concatenate([k_before, k_novel, k_burst, k_after]).astype(dtype)
    v = np.concatenate([v_before, v_novel, v_burst, v_after]).astype(dtype)
    return SurpriseBurst(k, v, n_before, slice(n_before + 1, n_before + 1 + burst_len))


def retrieval_hits(retrieved, values, targets=None):
    """Per-item recall: True where ``argmax_j retrieved_i · values_j == targets_i``.

    ``retrieved (n, d_v)`` (what the memory returned for each cue), ``values (m, d_v)`` the
    candidates (all values written), ``targets (n,)`` the index of the right one (default
    ``arange(n)``). Returns a boolean array ``(n,)``; its mean is the recall accuracy.
    """
    if any(is_torch(x) for x in (retrieved, values, targets)):
        raise TypeError("retrieved, values and targets must be NumPy arrays (call .numpy() on "
                        "tensors)")
    shapes = Shapes()
    retrieved = shapes.check("retrieved", require_float("retrieved", retrieved), ("n", "d_v"))
    values = shapes.check("values", require_float("values", values), ("m", "d_v"))
    if targets is None:
        targets = np.arange(retrieved.shape[0])
    targets = shapes.check("targets", require_integer("targets", targets), ("n",))
    m = values.shape[0]
    if targets.size and (targets.min() < 0 or targets.max() >= m):
        raise ValueError(f"targets must index values: entries in [0, m) = [0, {m}) (m={m} from "
                         f"values); got values from {targets.min()} to {targets.max()}")
    return np.argmax(retrieved @ values.T, axis=1) == targets
