"""Wrong answers to ``recoding_step(h (B, H), W_out (V, H), b_out (V,), target (B,), alpha)``:
one gradient step on h against the surprisal −log p(target | h)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def blank(h, W_out, b_out, target, alpha):
    raise NotImplementedError


def _softmax(logits, axis=-1):
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _onehot(target, V):
    return np.eye(V)[target]


def correct(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T + b_out)
    dlogits = p - _onehot(target, W_out.shape[0])
    return h - alpha * dlogits @ W_out


@mutant(MUTANTS, "gradient ascent", wrong={"h_new"})
def gradient_ascent(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T + b_out)
    return h + alpha * (p - _onehot(target, W_out.shape[0])) @ W_out


@mutant(MUTANTS, "onehot(target) not subtracted", wrong={"h_new"})
def softmax_gradient_without_onehot(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T + b_out)
    return h - alpha * p @ W_out


@mutant(MUTANTS, "gradient averaged over the batch (divided by B)", wrong={"h_new"})
def mean_over_batch(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T + b_out)
    dlogits = (p - _onehot(target, W_out.shape[0])) / len(h)   # as for a mean loss
    return h - alpha * dlogits @ W_out


@mutant(MUTANTS, "softmax over the wrong axis", wrong={"h_new"})
def softmax_over_batch(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T + b_out, axis=0)
    return h - alpha * (p - _onehot(target, W_out.shape[0])) @ W_out


@mutant(MUTANTS, "a weight looks transposed (W_out is (V, H) = (2, 1)")
def logits_with_w_out_untransposed(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out + b_out)
    return h - alpha * (p - _onehot(target, W_out.shape[0])) @ W_out


@mutant(MUTANTS, "changed its argument h in place", wrong=set())
def recodes_in_place(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T + b_out)
    h -= alpha * (p - _onehot(target, W_out.shape[0])) @ W_out
    return h
