r"""Toy experiments of lesson 13, sized for two CPU cores; every draw from an explicit ``rng``.

- :func:`slot_reader` — JRT's streaming view of set disjointness: a reader with ``slots`` memory
  slots keeps the first set it reads (as much of it as fits) and looks the second set up in it.
  Read once, it needs as many slots as the first set has items; read twice it can keep the
  smaller set: min(len(A), len(B)).
- :func:`mqar_linear_attention_logits` — multi-query associative recall by a hand-wired causal
  linear attention whose state ``S = Σ k vᵀ`` has d_key × d_value numbers: recall against the
  number of pairs per state size.
- :func:`decayed_recall` / :func:`forget_threshold_sweep` — Stuffed Mamba's question at toy
  scale: a memory ``S_t = λ S_{t−1} + v_t k_tᵀ`` (a selective SSM's Ā = exp(ΔA) held fixed), λ
  chosen on sequences of the training length, tested on sequences 8 times longer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minirec import attention

__all__ = ["slot_reader", "slot_reader_accuracy", "memory_needed", "unit_vectors",
           "mqar_linear_attention_logits", "decayed_recall", "choose_decay", "forget_threshold_sweep",
           "SweepRow"]


# --------------------------------------------------------------------------------------------
# Set disjointness with a bounded memory (JRT, section 3)
# --------------------------------------------------------------------------------------------

def _lookup(stored, probe):
    """For each column: the item of ``probe (P, B)`` found in ``stored (S, B)``, else −1."""
    hit = (probe[:, None, :] == stored[None, :, :]).any(axis=1)     # (P, B)
    found = hit.any(axis=0)
    return np.where(found, probe[hit.argmax(axis=0), np.arange(probe.shape[1])], -1)


def slot_reader(a, b, slots, *, read_twice=False):
    """A streaming reader with ``slots`` memory slots answers "which item do A and B share?".

    ``a (n_A, B)``, ``b (n_B, B)`` item tokens in reading order (A first) → ``(B,)`` the shared
    item, or −1 when it was not kept. Read once, the reader keeps the first ``slots`` items of A
    and checks each item of B against them. Read twice (``A B A B``) it knows both sizes after
    the first pass and keeps the first ``slots`` items of the smaller set, then checks the other
    set on its second reading.
    """
    if read_twice and b.shape[0] < a.shape[0]:
        return _lookup(b[:slots], a)
    return _lookup(a[:slots], b)


def slot_reader_accuracy(task, slots, *, read_twice=False):
    """Fraction of a :class:`minirec.tasks.SetDisjointness` batch answered right."""
    return float(np.mean(slot_reader(task.a, task.b, slots, read_twice=read_twice) == task.answer))


def memory_needed(size_a, size_b, *, read_twice=False):
    """Slots a reader needs to be always right: ``size_a`` read once (A first),
    ``min(size_a, size_b)`` read twice."""
    return min(size_a, size_b) if read_twice else size_a


# --------------------------------------------------------------------------------------------
# Recall from an outer-product state against the state size
# --------------------------------------------------------------------------------------------

def unit_vectors(rng, *shape):
    """Random directions: Gaussian ``shape``, each last-axis vector scaled to norm 1."""
    x = rng.normal(size=shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def mqar_linear_attention_logits(task, d_key, *, rng, d_value=64):
    """A hand-wired one-layer linear attention that solves MQAR as far as its state allows.

    Every token gets a random unit embedding e(x) ∈ R^{d_key} (its key and query) and a random
    unit code u(x) ∈ R^{d_value}. At a value token x_t the layer writes the pair (previous
    token, this token): k_t = e(x_{t−1}), v_t = u(x_t) (zero elsewhere); every token queries
    with q_t = e(x_t). So S_t = Σ_{value tokens j ≤ t} e(x_{j−1}) u(x_j)ᵀ, a d_key × d_value
    state, and o_t = S_tᵀ q_t (:func:`minirec.attention.linear_attention`, identity map, no
    normaliser). The logits score o_t against every value token's code (key tokens get −∞).

    ``task``: a :class:`minirec.tasks.Recall` with ``inputs (T, B)`` → ``logits (T, B, V)``.
    """
    x = task.inputs                                                 # (T, B)
    embed = unit_vectors(rng, task.vocab_size, d_key)               # e(x)
    code = unit_vectors(rng, task.vocab_size, d_value)              # u(x)
    is_value = np.arange(task.vocab_size) >= task.n_keys            # tokens n_keys … V − 1
    value_step = is_value[x]                                        # (T, B)
    previous = np.concatenate([x[:1], x[:-1]])
    k = embed[previous] * value_step[..., None]                     # k_t = e(x_{t−1}) at values
    v = code[x] * value_step[..., None]                             # v_t = u(x_t) at values
    o = attention.linear_attention(embed[x], k, v, method="recurrent", feature_map="identity",
                                   normalize=False)                 # o_t = S_tᵀ e(x_t)
    logits = o @ code.T                                             # (T, B, V)
    logits[..., ~is_value] = -np.inf
    return logits


# --------------------------------------------------------------------------------------------
# State collapse and the forget threshold (Stuffed Mamba, toy)
# --------------------------------------------------------------------------------------------

def decayed_recall(T, d, decay, *, rng, window=4, n_decoys=31, trials=150):
    """Accuracy of recalling a recent item from ``S_T = Σ_t λ^{T−1−t} v_t k_tᵀ``.

    ``T`` unit random pairs (k_t, v_t) ∈ R^d are written with decay λ (one float or an array of
    them: one accuracy each). The query is the key of one of the last ``window`` items; the
    read-out ``r = S_T k_p`` must be closer (dot product) to v_p than to ``n_decoys`` random unit
    vectors. Old items are noise for the recent ones: λ = 1 keeps all T of them, λ < 1 lets them
    fade. Returns accuracies, shape of ``decay``.
    """
    lam = np.asarray(decay, dtype=np.float64)
    window = min(window, T)
    K = unit_vectors(rng, trials, T, d)
    V = unit_vectors(rng, trials, T, d)
    p = T - 1 - rng.integers(0, window, size=trials)                 # the queried step
    rows = np.arange(trials)
    overlap = np.einsum("rtd,rd->rt", K, K[rows, p])                 # k_t · k_p
    candidates = np.concatenate([V[rows, p][:, None], unit_vectors(rng, trials, n_decoys, d)], 1)
    age = np.arange(T - 1, -1, -1, dtype=np.float64)                 # T − 1 − t
    acc = []
    for lam_i in lam.ravel():
        weights = lam_i ** age * overlap                             # λ^{T−1−t} (k_t·k_p)
        r = np.einsum("rt,rtd->rd", weights, V)                      # r = S_T k_p
        scores = np.einsum("rcd,rd->rc", candidates, r)
        acc.append(np.mean(np.argmax(scores, axis=1) == 0))
    return np.asarray(acc).reshape(lam.shape)


def choose_decay(acc, decays, *, tolerance=0.02):
    """"Training" without gradients: the largest decay whose accuracy at the training length is
    within ``tolerance`` of the best — nothing pushes the choice to forget unless it must."""
    decays = np.asarray(decays)
    ok = np.asarray(acc) >= np.max(acc) - tolerance
    return float(decays[ok].max())


@dataclass(frozen=True)
class SweepRow:
    d: int
    T_train: int
    decay: float           # λ* chosen at T_train
    acc_train: float       # its accuracy at T_train
    acc_long: float        # its accuracy at 8 T_train (or ``long_factor``)


def forget_threshold_sweep(dims, train_lengths, decays, *, rng, long_factor=8, trials=150,
                           decay_max=None):
    """For each state size d and training length: pick λ* at T_train (:func:`choose_decay`,
    optionally capped at ``decay_max``: the forced-forgetting mitigation) and test it at
    ``long_factor · T_train``. Returns a list of :class:`SweepRow`."""
    decays = np.asarray(decays, dtype=np.float64)
    if decay_max is not None:
        decays = decays[decays <= decay_max]
    rows = []
    for d in dims:
        for T in train_lengths:
            acc = decayed_recall(T, d, decays, rng=rng, trials=trials)
            lam = choose_decay(acc, decays)
            long = decayed_recall(long_factor * T, d, lam, rng=rng, trials=trials)
            rows.append(SweepRow(d, T, lam, float(acc[decays == lam][0]), float(long)))
    return rows
