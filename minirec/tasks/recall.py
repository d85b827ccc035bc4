r"""Recall tasks for long-context experiments: what a fixed-size recurrent state can retrieve.

Three generators, each drawing from an explicit ``rng`` (a ``numpy.random.Generator``) and
returning integer token arrays **time first**, as every sequence in minirec::

    inputs (T, B) int64        targets (T, B) int64, IGNORE (−100) where nothing is asked

- :func:`mqar` — multi-query associative recall (Arora et al., *Zoology*; the task of JRT and
  Based): ``N`` key–value pairs, then ``Q`` of the keys again; at each queried key the next
  token to predict is its value.
- :func:`set_disjointness` — JRT's set-disjointness probe: a set A, a separator, a set B, an
  answer marker; A and B share exactly one token, the answer.
- :func:`passkey` — passkey retrieval (Stuffed Mamba): a few digits hidden at some depth in a
  long filler, asked for at the end.

Vocabulary layouts are documented per task; special tokens sit at the top of the vocabulary so
that ``vocab_size`` is the embedding size a model needs. The answers are right by construction:
the tests recompute them from the inputs alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minirec._validate import (
    Shapes,
    is_torch,
    require_float,
    require_generator,
    require_integer,
    require_positive_int,
)

__all__ = ["IGNORE", "Recall", "SetDisjointness", "Passkey", "mqar", "set_disjointness",
           "passkey", "read_twice_tokens", "recall_accuracy"]

#: Target of a position where nothing is asked (``torch.nn.functional.cross_entropy``'s
#: default ``ignore_index``).
IGNORE = -100


def _require_rng(rng) -> np.random.Generator:
    return require_generator("rng", rng)


def _draw_without_replacement(rng, n_rows, population, size):
    """(n_rows, size) ints from range(population), distinct within each row."""
    return np.argsort(rng.random((n_rows, population)), axis=1)[:, :size]


@dataclass(frozen=True)
class Recall:
    """A batch of multi-query associative recall.

    ``inputs (T, B)``, ``targets (T, B)`` (IGNORE except at the queried keys), ``keys (N, B)``
    and ``values (N, B)`` the stored pairs in order, ``queries (Q, B)`` the indices into them of
    the queried pairs, ``query_positions (Q,)`` the time steps of the queried keys; key tokens
    are ``[0, n_keys)``, value tokens ``[n_keys, vocab_size)``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    queries: np.ndarray
    query_positions: np.ndarray
    vocab_size: int
    n_keys: int

    @property
    def mask(self) -> np.ndarray:
        """(T, B) booleans, True where a prediction is scored."""
        return self.targets != IGNORE


def mqar(batch, n_pairs, n_queries, *, n_keys, n_values, rng):
    """Multi-query associative recall.

    Layout (T = 2N + 2Q): ``k_1 v_1 k_2 v_2 … k_N v_N  q_1 a_1 q_2 a_2 … q_Q a_Q``. The keys of
    one sequence are distinct, drawn from tokens ``[0, n_keys)``; values from
    ``[n_keys, n_keys + n_values)``, with replacement; the queries ``q_j`` are ``Q`` distinct
    stored keys in random order, each followed by its value ``a_j`` (teacher forcing). The target
    at ``q_j``'s position is ``a_j``; every other target is :data:`IGNORE`.

    ``batch`` (B), ``n_pairs`` (N), ``n_queries`` (Q ≤ N) positive ints; ``n_keys ≥ N``.
    Returns a :class:`Recall` with ``inputs, targets (T, B)`` int64 and
    ``vocab_size = n_keys + n_values``.
    """
    rng = _require_rng(rng)
    B = require_positive_int("batch", batch)
    N = require_positive_int("n_pairs", n_pairs)
    Q = require_positive_int("n_queries", n_queries)
    n_keys = require_positive_int("n_keys", n_keys)
    n_values = require_positive_int("n_values", n_values)
    if Q > N:
        raise ValueError(f"n_queries must be at most n_pairs = {N} (each query asks a distinct "
                         f"stored key); got {Q}")
    if n_keys < N:
        raise ValueError(f"n_keys must be at least n_pairs = {N} so that the keys of a sequence "
                         f"are distinct; got {n_keys}")
    keys = _draw_without_replacement(rng, B, n_keys, N).T               # (N, B)
    values = n_keys + rng.integers(0, n_values, size=(N, B))            # (N, B)
    queries = _draw_without_replacement(rng, B, N, Q).T                 # (Q, B) indices
    cols = np.arange(B)
    asked_keys = keys[queries, cols]                                    # (Q, B)
    answers = values[queries, cols]                                     # (Q, B)

    T = 2 * N + 2 * Q
    inputs = np.empty((T, B), np.int64)
    inputs[0:2 * N:2], inputs[1:2 * N:2] = keys, values
    inputs[2 * N::2], inputs[2 * N + 1::2] = asked_keys, answers
    targets = np.full((T, B), IGNORE, np.int64)
    query_positions = np.arange(2 * N, T, 2)
    targets[query_positions] = answers
    return Recall(inputs, targets, keys.astype(np.int64), values.astype(np.int64),
                  queries.astype(np.int64), query_positions, n_keys + n_values, n_keys)


@dataclass(frozen=True)
class SetDisjointness:
    """A batch of JRT's set-disjointness probe.

    ``inputs (T, B)``, T = n_A + n_B + 2; ``a (n_A, B)`` and ``b (n_B, B)`` the two sets in the
    order they appear; ``answer (B,)`` the one token they share; ``vocab_size``; ``sep`` and
    ``ask`` the separator and the answer marker.
    """

    inputs: np.ndarray
    a: np.ndarray
    b: np.ndarray
    answer: np.ndarray
    vocab_size: int
    sep: int
    ask: int

    @property
    def targets(self) -> np.ndarray:
        """(T, B): the shared token at the answer marker (the last step), IGNORE elsewhere."""
        t = np.full(self.inputs.shape, IGNORE, np.int64)
        t[-1] = self.answer
        return t


def set_disjointness(batch, size_a, size_b, *, n_items, rng):
    """Two sets that share exactly one item; the task is to name it.

    Layout: ``A_1 … A_nA  SEP  B_1 … B_nB  ASK`` (n_A = ``size_a``, n_B = ``size_b``). Items are
    tokens ``[0, n_items)``; the n_A + n_B − 1 distinct items of one sequence are drawn without
    replacement, one of A's items (at a random place in A) is also placed at a random place in B.
    ``SEP = n_items``, ``ASK = n_items + 1``, ``vocab_size = n_items + 2``. A streaming reader
    that keeps the set it reads first needs memory for n_A items: putting the short set first is
    the cheap order.

    Returns a :class:`SetDisjointness`, ``inputs (n_A + n_B + 2, B)`` int64.
    """
    rng = _require_rng(rng)
    B = require_positive_int("batch", batch)
    na = require_positive_int("size_a", size_a)
    nb = require_positive_int("size_b", size_b)
    n_items = require_positive_int("n_items", n_items)
    if n_items < na + nb - 1:
        raise ValueError(f"n_items must be at least size_a + size_b - 1 = {na + nb - 1} (the "
                         f"sets share exactly one item); got {n_items}")
    items = _draw_without_replacement(rng, B, n_items, na + nb - 1)     # (B, na + nb − 1)
    cols = np.arange(B)
    a = items[:, :na]                                                   # (B, na)
    shared = a[cols, rng.integers(0, na, size=B)]                       # (B,)
    b = np.concatenate([items[:, na:], shared[:, None]], axis=1)        # (B, nb)
    b = np.take_along_axis(b, np.argsort(rng.random((B, nb)), axis=1), axis=1)
    sep, ask = n_items, n_items + 1
    inputs = np.concatenate([a.T, np.full((1, B), sep), b.T, np.full((1, B), ask)])
    return SetDisjointness(inputs.astype(np.int64), a.T.astype(np.int64),
                           b.T.astype(np.int64), shared.astype(np.int64), n_items + 2, sep, ask)


@dataclass(frozen=True)
class Passkey:
    """A batch of passkey retrieval: ``inputs (T, B)``, ``targets (T, B)`` (the digits, at the
    steps that predict them), ``key (L, B)`` the digits, ``depth (B,)`` where the marker sits."""

    inputs: np.ndarray
    targets: np.ndarray
    key: np.ndarray
    depth: np.ndarray
    vocab_size: int
    mark: int
    ask: int


def passkey(batch, seq_len, *, key_len=1, n_digits=10, n_filler=1, depth=None, rng):
    """Passkey retrieval: filler, ``MARK d_1 … d_L`` at some depth, filler, ``ASK d_1 … d_L``.

    Digits are tokens ``[0, n_digits)``, filler tokens ``[n_digits, n_digits + n_filler)``
    (``n_filler = 1``: one repeated token, as the repeated sentence of the paper's haystack),
    ``MARK = n_digits + n_filler``, ``ASK = MARK + 1``. The last ``L + 1`` steps are ``ASK`` and
    the digits again (teacher forcing); the target at ``ASK`` is ``d_1``, at ``d_i`` it is
    ``d_{i+1}``. ``depth``: the step of ``MARK`` — an int, an array ``(B,)``, or None for a
    uniform draw in ``[0, T − 2L − 2]``. ``seq_len`` (T) ≥ 2L + 2.

    Returns a :class:`Passkey`, ``inputs, targets (T, B)`` int64.
    """
    rng = _require_rng(rng)
    B = require_positive_int("batch", batch)
    T = require_positive_int("seq_len", seq_len)
    L = require_positive_int("key_len", key_len)
    n_digits = require_positive_int("n_digits", n_digits)
    n_filler = require_positive_int("n_filler", n_filler)
    last = T - 2 * L - 2                                                # deepest MARK position
    if last < 0:
        raise ValueError(f"seq_len must be at least 2 * key_len + 2 = {2 * L + 2}; got {T}")
    if depth is None:
        depth = rng.integers(0, last + 1, size=B)
    else:
        depth = np.broadcast_to(np.asarray(depth), (B,)) if np.ndim(depth) == 0 else \
            np.asarray(depth)
        if depth.shape != (B,) or not np.issubdtype(depth.dtype, np.integer):
            raise ValueError(f"depth must be an int or an int array of shape (B,) = ({B},); got "
                             f"{np.asarray(depth).dtype} {np.shape(depth)}")
        if depth.min() < 0 or depth.max() > last:
            raise ValueError(f"depth must lie in [0, seq_len - 2 * key_len - 2] = [0, {last}]; "
                             f"got values in [{depth.min()}, {depth.max()}]")
    mark, ask = n_digits + n_filler, n_digits + n_filler + 1
    key = rng.integers(0, n_digits, size=(L, B))
    inputs = n_digits + rng.integers(0, n_filler, size=(T, B))
    cols = np.arange(B)
    inputs[depth, cols] = mark
    for i in range(L):
        inputs[depth + 1 + i, cols] = key[i]
    inputs[T - L - 1] = ask
    inputs[T - L:] = key
    targets = np.full((T, B), IGNORE, np.int64)
    targets[T - L - 1:T - 1] = key                                      # ASK → d_1, d_i → d_{i+1}
    return Passkey(inputs.astype(np.int64), targets, key.astype(np.int64),
                   np.asarray(depth, np.int64).copy(), ask + 1, mark, ask)


def read_twice_tokens(context, question):
    """JRT-Prompt's input: the context twice, then the question: ``[context; context; question]``.

    ``context (T_c, ...)``, ``question (T_q, ...)`` arrays (tokens or embeddings) with the same
    trailing axes → ``(2 T_c + T_q, ...)``. Read once, a causal model has seen the question's
    subject only after the context; read twice, the second copy is read knowing all of it.
    """
    context, question = (_sequence_like(name, x) for name, x in
                         (("context", context), ("question", question)))
    if is_torch(context) != is_torch(question):
        raise TypeError("context and question must both be NumPy arrays or both torch tensors")
    if tuple(context.shape[1:]) != tuple(question.shape[1:]):
        raise ValueError(f"question must have shape (T_q, ...) = (T_q, "
                         f"{', '.join(map(str, context.shape[1:]))}) (the trailing axes of "
                         f"context); got {tuple(question.shape)}")
    if context.dtype != question.dtype:
        raise TypeError(f"question must have context's dtype {context.dtype}; got {question.dtype}")
    if is_torch(context):
        import torch
        return torch.cat([context, context, question])
    return np.concatenate([context, context, question])


def _sequence_like(name, x):
    """An array or tensor with a time axis first (tokens or embeddings)."""
    x = x if is_torch(x) else np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name} must be a sequence (T, ...) with time first; got a scalar")
    return x


def recall_accuracy(logits, targets):
    """Fraction of the asked positions (``targets != IGNORE``) whose most likely token is the
    target: ``logits (T, ..., V)``, ``targets (T, ...)`` → a float in [0, 1]. NumPy arrays or
    torch tensors (both of one kind); at least one position must be asked."""
    if is_torch(logits) != is_torch(targets):
        raise TypeError("logits and targets must both be NumPy arrays or both torch tensors")
    if is_torch(logits):
        logits, targets = logits.detach().cpu().numpy(), targets.detach().cpu().numpy()
    logits, targets = require_float("logits", logits), require_integer("targets", targets)
    shapes = Shapes()
    shapes.check_batched("targets", targets, ("T",), ())
    shapes.check_batched("logits", logits, ("T",), ("V",))
    asked = targets != IGNORE
    if not asked.any():
        raise ValueError("targets must ask at least one position (an entry other than IGNORE = "
                         f"{IGNORE}); got none: the accuracy of nothing is undefined")
    if ((targets[asked] < 0) | (targets[asked] >= logits.shape[-1])).any():
        raise ValueError(f"targets must hold token ids in [0, V) = [0, {logits.shape[-1]}) "
                         f"(V={logits.shape[-1]} from logits) or IGNORE = {IGNORE}; got values "
                         f"from {targets.min()} to {targets.max()}")
    predicted = logits.argmax(axis=-1)                              # (T, B)
    return float((predicted[asked] == targets[asked]).mean())
