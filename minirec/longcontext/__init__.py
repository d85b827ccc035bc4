"""Long context with a fixed-size state: JRT's read-twice input and prefix-linear attention, and
the toy experiments of lesson 13 (set disjointness with bounded memory, recall against state
size, Stuffed Mamba's forget threshold).

- ``reference.py``    NumPy, the specification of prefix-linear attention (the encoder state,
  then causal linear attention from it) and a masked all-at-once form;
- ``experiments.py``  the lesson's toys, every draw from an explicit ``rng``.

There is no ``numba_cpu.py`` or ``torch_ops.py`` here: prefix-linear attention *is* causal
linear attention started from the prompt's encoder state, so the public function computes that
state and hands it to :func:`minirec.attention.linear_attention`, whose Numba and Torch forms
(tested there) do the rest, on NumPy arrays or tensors, differentiably for tensors.

Shapes, time first::

    q, k (T, ..., d_k)   v (T, ..., d_v)   k_enc (M, ..., d_k)   v_enc (M, ..., d_v)   → o (T, ..., d_v)
"""

from __future__ import annotations

from minirec import attention
from minirec._dispatch import same_kind
from minirec._validate import Shapes, is_torch, require_float
from minirec.longcontext import reference
from minirec.tasks.recall import read_twice_tokens

__all__ = ["prefix_linear_attention", "read_twice_tokens"]


def _phi(feature_map, x):
    if callable(feature_map):
        return feature_map(x)
    if feature_map not in attention.FEATURE_MAPS:
        raise ValueError(f"feature_map must be one of {attention.FEATURE_MAPS} or a callable; "
                         f"got {feature_map!r}")
    if is_torch(x):
        from minirec.attention import torch_ops as module
    else:
        module = attention.reference
    return module.FEATURE_MAPS[feature_map](x)


def _encoder_state(fk_enc, v_enc):
    if is_torch(fk_enc):
        import torch
        return torch.einsum("m...f,m...e->...fe", fk_enc, v_enc), fk_enc.sum(0)
    return reference.prefix_state(fk_enc, v_enc)


def prefix_linear_attention(q, k, v, k_enc, v_enc, *, feature_map="elu+1", normalize=True,
                            return_state=False, backend=None):
    """JRT-RNN's prefix-linear attention: the prompt read non-causally, the rest causally::

        o_i = φ(q_i)ᵀ [Σ_{j<M} φ(k^e_j) v^e_jᵀ + Σ_{j≤i} φ(k_j) v_jᵀ]
              / φ(q_i)ᵀ [Σ_{j<M} φ(k^e_j) + Σ_{j≤i} φ(k_j)]

    ``q, k (T, ..., d_k)``, ``v (T, ..., d_v)``: every token's query, key, value;
    ``k_enc (M, ..., d_k)``, ``v_enc (M, ..., d_v)``: the encoder's keys and values of the
    prompt (the first M tokens, through their own projections). Returns ``o (T, ..., d_v)``, or
    ``(o, (S, z))`` with ``return_state=True``: the state to continue decoding with
    ``S += φ(k) vᵀ, z += φ(k)``. ``feature_map``, ``normalize``, ``backend`` as
    :func:`minirec.attention.linear_attention`.
    """
    shapes = Shapes()                                   # (T, ..., d) and (M, ..., d), one batch
    q, k, v, k_enc, v_enc = (
        shapes.check_batched(name, require_float(name, x), (length,), (last,))
        for name, x, length, last in (("q", q, "T", "d_k"), ("k", k, "T", "d_k"),
                                      ("v", v, "T", "d_v"), ("k_enc", k_enc, "M", "d_k"),
                                      ("v_enc", v_enc, "M", "d_v")))
    if k_enc.shape[0] == 0:
        raise ValueError("k_enc must have at least one prompt step: shape (M, ..., d_k) with "
                         "M >= 1 (without a prompt, use minirec.attention.linear_attention)")
    same_kind([q, k, v, k_enc, v_enc])
    state = _encoder_state(_phi(feature_map, k_enc), v_enc)
    return attention.linear_attention(q, k, v, method="recurrent", feature_map=feature_map,
                                      normalize=normalize, state=state,
                                      return_state=return_state, backend=backend)
