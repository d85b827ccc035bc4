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


# --- the max shift (issue 11): the check has logits near 800 --------------------------------

@mutant(MUTANTS, "softmax without the max shift")
def softmax_without_max_shift(h, W_out, b_out, target, alpha):
    e = np.exp(h @ W_out.T + b_out)                             # inf once a logit is > 709
    p = e / e.sum(axis=1, keepdims=True)
    return h - alpha * (p - _onehot(target, W_out.shape[0])) @ W_out


@mutant(MUTANTS, "gradient ascent: the sign is flipped. Recoding moves h down the surprisal's "
                 "gradient, h − α ∂δ/∂h; adding it makes the target less likely; and the "
                 "softmax has no max shift", wrong={"h_new"})
def ascent_without_max_shift(h, W_out, b_out, target, alpha):
    e = np.exp(h @ W_out.T + b_out)
    p = e / e.sum(axis=-1, keepdims=True)
    return h + alpha * (p - _onehot(target, W_out.shape[0])) @ W_out


@mutant(MUTANTS, "b_out is missing from the logits", wrong={"h_new"})
def logits_without_bias(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T)
    return h - alpha * (p - _onehot(target, W_out.shape[0])) @ W_out


@mutant(MUTANTS, "p is missing from the gradient", wrong={"h_new"})
def only_the_target_pulls(h, W_out, b_out, target, alpha):
    return h + alpha * _onehot(target, W_out.shape[0]) @ W_out


@mutant(MUTANTS, "p[:, target] -= 1 subtracts 1 in every row", wrong={"h_new"})
def onehot_by_column_indexing(h, W_out, b_out, target, alpha):
    p = _softmax(h @ W_out.T + b_out)
    p[:, target] -= 1.0                       # every row loses 1 at every row's target
    return h - alpha * p @ W_out


@mutant(MUTANTS, "no known mistake matches your result", wrong={"h_new"})
def normalised_step(h, W_out, b_out, target, alpha):
    # a step of length α along the gradient's direction (as gradient clipping would): no suspect
    g = (_softmax(h @ W_out.T + b_out) - _onehot(target, W_out.shape[0])) @ W_out
    return h - alpha * g / np.linalg.norm(g, axis=1, keepdims=True)


def _log_softmax_loop(logits):
    out = np.empty_like(logits)
    for b, row in enumerate(logits):
        top = row.max()
        out[b] = row - top - np.log(np.sum(np.exp(row - top)))
    return out


def recoding_in_a_loop(h, W_out, b_out, target, alpha):
    """Right, one row at a time through the log-softmax."""
    h_new = np.empty_like(h)
    for b in range(h.shape[0]):
        p = np.exp(_log_softmax_loop((h[b] @ W_out.T + b_out)[None])[0])
        p[target[b]] -= 1.0
        h_new[b] = h[b] - alpha * p @ W_out
    return h_new


def recoding_with_scipy(h, W_out, b_out, target, alpha):
    """Right, with scipy's softmax (which shifts by the max itself)."""
    from scipy.special import softmax
    p = softmax(h @ W_out.T + b_out, axis=1)
    return h - alpha * (p - _onehot(target, W_out.shape[0])) @ W_out


def recoding_with_torch_autograd(h, W_out, b_out, target, alpha):
    """Right, the gradient by torch's autograd, converted back to NumPy."""
    import torch
    ht = torch.tensor(h, requires_grad=True)
    logits = ht @ torch.tensor(W_out).T + torch.tensor(b_out)
    surprisal = torch.nn.functional.cross_entropy(logits, torch.tensor(target), reduction="sum")
    surprisal.backward()
    return (ht - alpha * ht.grad).detach().numpy()


ALTERNATIVES = [recoding_in_a_loop, recoding_with_scipy, recoding_with_torch_autograd]
