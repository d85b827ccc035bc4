"""Wrong answers to ``top_k_route(logits, k) -> (weights, indices)``: softmax over the experts,
the k most probable best first, their probabilities renormalised to sum 1."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(logits, k):
    raise NotImplementedError


def correct(logits, k):
    # the softmax of the k largest logits is p_j / Σ_j p_j over the kept experts
    order = np.argsort(logits, axis=1, kind="stable")[:, ::-1]
    # argsort(logits)[::-1] puts equal logits in reverse index order; no ties in the cases
    indices = order[:, :k]
    top = np.take_along_axis(logits, indices, axis=1)
    e = np.exp(top - top[:, :1])
    return e / e.sum(axis=1, keepdims=True), indices


@mutant(MUTANTS, "softmax over the wrong axis", wrong={"weights", "indices"})
def softmax_over_tokens(logits, k):
    p = np.exp(logits - logits.max(axis=0))
    p = p / p.sum(axis=0)
    idx = np.argsort(-p, axis=1)[:, :k]
    w = np.take_along_axis(p, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx


@mutant(MUTANTS, "not renormalised", wrong={"weights"})
def forgot_to_renormalise(logits, k):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    idx = np.argsort(-p, axis=1)[:, :k]
    return np.take_along_axis(p, idx, axis=1), idx


@mutant(MUTANTS, "LEAST likely", wrong={"weights", "indices"})
def ascending_sort(logits, k):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    idx = np.argsort(p, axis=1)[:, :k]
    w = np.take_along_axis(p, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx


@mutant(MUTANTS, "in index order, not best first", wrong={"weights", "indices"})
def argpartition_then_sort_indices(logits, k):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    idx = np.sort(np.argsort(-p, axis=1)[:, :k], axis=1)
    w = np.take_along_axis(p, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx


@mutant(MUTANTS, "weights contains NaN", wrong={"weights", "indices"})
def no_max_shift(logits, k):
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    idx = np.argsort(-p, axis=1)[:, :k]
    w = np.take_along_axis(p, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx


@mutant(MUTANTS, "raw logits renormalised", wrong={"weights"})
def logits_as_weights(logits, k):
    idx = np.argsort(-logits, axis=1)[:, :k]
    w = np.take_along_axis(logits, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx
