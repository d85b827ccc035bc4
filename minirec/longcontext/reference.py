r"""Just Read Twice (Arora et al. 2024): prefix-linear attention, in NumPy: the specification.

Notation (time first)::

    T  time steps    M  prefix (prompt) length    ...  batch axes    φ  a feature map (d → d_f)
    q, k (T, ..., d_k)   v (T, ..., d_v)   k_enc (M, ..., d_k)   v_enc (M, ..., d_v)

Causal linear attention lets token i see tokens j ≤ i. JRT-RNN reads the prompt (the first M
tokens) *non-causally* through separate encoder keys and values, then runs causally::

    S_enc = Σ_{j<M} φ(k^e_j) v^e_jᵀ        z_enc = Σ_{j<M} φ(k^e_j)
    o_i = φ(q_i)ᵀ [S_enc + Σ_{j≤i} φ(k_j) v_jᵀ] / φ(q_i)ᵀ [z_enc + Σ_{j≤i} φ(k_j)]

so every token, the first included, reads a summary of the whole prompt. The encoder sums are
just the initial state ``(S_0, z_0)`` of ordinary causal linear attention; decoding continues the
recurrence ``S += φ(k) vᵀ, z += φ(k)``. That is how it is computed here: the encoder state, then
:func:`minirec.attention.reference.linear_attention_recurrent` started from it.
"""

from __future__ import annotations

import numpy as np

from minirec.attention.reference import FEATURE_MAPS, linear_attention_recurrent

__all__ = ["prefix_state", "prefix_linear_attention", "prefix_linear_attention_masked"]


def prefix_state(fk_enc, v_enc):
    """The encoder's summary of the prompt: ``fk_enc = φ(k_enc) (M, ..., d_f)``,
    ``v_enc (M, ..., d_v)`` → ``(S_enc (..., d_f, d_v), z_enc (..., d_f))``."""
    S = np.einsum("m...f,m...e->...fe", fk_enc, v_enc)              # Σ_j φ(k^e_j) v^e_jᵀ
    z = fk_enc.sum(axis=0)                                          # Σ_j φ(k^e_j)
    return S, z


def prefix_linear_attention(q, k, v, k_enc, v_enc, *, feature_map="elu+1", normalize=True):
    """JRT's prefix-linear attention: ``q, k (T, ..., d_k)``, ``v (T, ..., d_v)``,
    ``k_enc (M, ..., d_k)``, ``v_enc (M, ..., d_v)`` → ``(o (T, ..., d_v), (S, z))`` with the
    final state (encoder sums plus every token's) to continue decoding. ``feature_map``: a name
    of :data:`minirec.attention.reference.FEATURE_MAPS` or a callable."""
    phi = FEATURE_MAPS[feature_map] if isinstance(feature_map, str) else feature_map
    state = prefix_state(phi(k_enc), v_enc)
    return linear_attention_recurrent(phi(q), phi(k), v, normalize=normalize, state=state)


def prefix_linear_attention_masked(q, k, v, k_enc, v_enc, *, feature_map="elu+1",
                                   normalize=True):
    """The same by one (T, M + T) attention matrix: the prompt's encoder keys are visible to
    every query (mask of ones), the tokens' own keys causally (lower triangle). O(T (M + T)),
    no state; the tests' oracle is written independently of both."""
    phi = FEATURE_MAPS[feature_map] if isinstance(feature_map, str) else feature_map
    T, M = q.shape[0], k_enc.shape[0]
    keys = np.concatenate([phi(k_enc), phi(k)])                     # (M + T, ..., d_f)
    values = np.concatenate([v_enc, v])
    mask = np.concatenate([np.ones((T, M)), np.tril(np.ones((T, T)))], axis=1)
    A = np.einsum("t...f,j...f->...tj", phi(q), keys) * mask        # A_tj = φ(q_t)·φ(k_j), visible
    num = np.moveaxis(np.einsum("...tj,j...e->...te", A, values), -2, 0)
    den = np.moveaxis(A.sum(axis=-1), -1, 0)
    return num / den[..., None] if normalize else num
