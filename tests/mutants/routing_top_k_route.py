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


@mutant(MUTANTS, "softmax without the max shift")
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


# --- more wrong answers, and right answers written differently (issue 11) -------------------

@mutant(MUTANTS, "sum to 1; and the softmax has no max shift", wrong={"weights"})
def unshifted_and_not_renormalised(logits, k):
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    idx = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(p, idx, axis=1), idx


@mutant(MUTANTS, "holds the expected values, in another order", wrong={"weights", "indices"})
def argpartition_order(logits, k):
    # the k best experts, but in the order np.argpartition leaves them, not best first (for a
    # few experts NumPy happens to leave them in rising order; for 1000 in no order at all)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    idx = np.argpartition(p, -k, axis=1)[:, -k:]
    w = np.take_along_axis(p, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx


def top_k_with_torch(logits, k):
    """Right, with torch.softmax and torch.topk, converted back to NumPy."""
    import torch
    p = torch.softmax(torch.from_numpy(logits), dim=1)
    w, idx = torch.topk(p, k, dim=1)
    return (w / w.sum(dim=1, keepdim=True)).numpy(), idx.numpy()


def top_k_with_scipy(logits, k):
    """Right, with scipy's softmax."""
    from scipy.special import softmax
    p = softmax(logits, axis=1)
    idx = np.argsort(-p, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(p, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx


def top_k_in_a_loop(logits, k):
    """Right, token by token with Python's sorted."""
    weights, indices = [], []
    for row in logits:
        p = np.exp(row - row.max())
        p /= p.sum()
        best = sorted(range(len(row)), key=lambda e: -p[e])[:k]
        weights.append(p[best] / p[best].sum())
        indices.append(best)
    return np.array(weights), np.array(indices)


ALTERNATIVES = [top_k_with_torch, top_k_with_scipy, top_k_in_a_loop]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "the k best experts, worst of them first", wrong={"weights", "indices"})
def best_k_in_rising_order(logits, k):
    # the last k columns of an ascending sort: the right experts, smallest first
    E = logits.shape[1]
    idx = np.argsort(logits, axis=1)[:, E - k:]
    top = np.take_along_axis(logits, idx, axis=1)
    e = np.exp(top - top.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), idx


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "the max shift is one number for the whole batch")
def one_shift_for_all_tokens(logits, k):
    # the largest logit of the whole call subtracted from every row
    e = np.exp(logits - np.max(logits))
    p = e / e.sum(axis=1, keepdims=True)
    idx = np.argsort(-p, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(p, idx, axis=1)
    return w / w.sum(axis=1, keepdims=True), idx


@mutant(MUTANTS, "holds the expected values, in another order", wrong={"weights", "indices"})
def partition_without_a_sort(logits, k):
    # the k largest logits found by a partition, kept in the order it leaves them
    idx = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(logits, idx, axis=1)
    e = np.exp(top - top.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), idx
