"""Wrong answers to ``gru_step_backward(x, h, params, dh_new) -> dict`` (gradients of one step)."""

import numpy as np

from . import mutant

MUTANTS: list = []


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def blank(x, h, params, dh_new):
    raise NotImplementedError


def _forward(x, h, params):
    H = h.shape[1]
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    gh = h @ params["weight_hh"].T + params["bias_hh"]
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    hn = gh[:, 2 * H:]
    n = np.tanh(gi[:, 2 * H:] + r * hn)
    return r, z, n, hn


def _learner(x, h, params, dh_new, *, direct=True, flip_dz=False, r_on_recurrent_n=True,
             reset=True, sum_bias=True, weight_grad_transposed=False, keys=None):
    """One learner's solution with switches for the slips they made on different days."""
    r, z, n, hn = _forward(x, h, params)
    dn = dh_new * (1 - z)
    dz = dh_new * (n - h) if flip_dz else dh_new * (h - n)
    dan = dn * (1 - n * n)
    daz = dz * z * (1 - z)
    dar = dan * hn * r * (1 - r) if reset else np.zeros_like(dan)
    d_in = np.hstack([dar, daz, dan])
    d_rec = np.hstack([dar, daz, dan * r if r_on_recurrent_n else dan])
    dh = d_rec @ params["weight_hh"]
    if direct:
        dh = dh + dh_new * z
    grads = {
        "x": d_in @ params["weight_ih"],
        "h": dh,
        "weight_ih": x.T @ d_in if weight_grad_transposed else d_in.T @ x,
        "weight_hh": h.T @ d_rec if weight_grad_transposed else d_rec.T @ h,
        "bias_ih": d_in.sum(0) if sum_bias else d_in,
        "bias_hh": d_rec.sum(0) if sum_bias else d_rec,
    }
    return {k: grads[k] for k in (keys or grads)}


def correct(x, h, params, dh_new):
    return _learner(x, h, params, dh_new)


@mutant(MUTANTS, "direct path is missing", wrong={"h"})
def forgot_direct_path(x, h, params, dh_new):
    return _learner(x, h, params, dh_new, direct=False)


@mutant(MUTANTS, "dz has the wrong sign",
        wrong={"x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"})
def dz_sign_flipped(x, h, params, dh_new):
    return _learner(x, h, params, dh_new, flip_dz=True)


@mutant(MUTANTS, "recurrent gradient of the n-gate is not multiplied by r",
        wrong={"h", "weight_hh", "bias_hh"})
def recurrent_n_without_r(x, h, params, dh_new):
    return _learner(x, h, params, dh_new, r_on_recurrent_n=False)


@mutant(MUTANTS, "reset-gate gradient is missing",
        wrong={"x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"})
def no_reset_gradient(x, h, params, dh_new):
    return _learner(x, h, params, dh_new, reset=False)


@mutant(MUTANTS, "it keeps the batch axis", wrong={"bias_ih", "bias_hh"})
def bias_not_summed_over_batch(x, h, params, dh_new):
    return _learner(x, h, params, dh_new, sum_bias=False)


@mutant(MUTANTS, "weight_ih should have shape (3H, D) = (3, 1); yours has (1, 3): it looks "
                 "transposed", wrong={"weight_ih", "weight_hh"})
def weight_gradient_transposed(x, h, params, dh_new):
    return _learner(x, h, params, dh_new, weight_grad_transposed=True)


@mutant(MUTANTS, "your result has no 'bias_hh'", wrong={"bias_hh"})
def forgot_a_key(x, h, params, dh_new):
    return _learner(x, h, params, dh_new, keys=("x", "h", "weight_ih", "weight_hh", "bias_ih"))


@mutant(MUTANTS, "the result must be a dict with keys x, h, weight_ih")
def returns_a_tuple(x, h, params, dh_new):
    g = _learner(x, h, params, dh_new)
    return g["x"], g["h"]


# --- more wrong answers (issue 11) and right answers written differently ------------------

def _slipped(x, h, params, dh_new, *, tanh_slip=False, sigmoid_slip=False):
    """The backward pass written by another learner: σ' and tanh' spelled out."""
    r, z, n, hn = _forward(x, h, params)
    dan = dh_new * (1 - z) * (1 if tanh_slip else 1 - n ** 2)
    daz = dh_new * (h - n) * (1 if sigmoid_slip else z * (1 - z))
    dar = dan * hn * r * (1 - r)
    d_in = np.concatenate([dar, daz, dan], axis=1)
    d_rec = np.concatenate([dar, daz, dan * r], axis=1)
    return {"x": d_in @ params["weight_ih"], "h": d_rec @ params["weight_hh"] + dh_new * z,
            "weight_ih": d_in.T @ x, "weight_hh": d_rec.T @ h,
            "bias_ih": d_in.sum(axis=0), "bias_hh": d_rec.sum(axis=0)}


@mutant(MUTANTS, "the derivative of tanh is missing",
        wrong={"x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"})
def candidate_derivative_forgotten(x, h, params, dh_new):
    return _slipped(x, h, params, dh_new, tanh_slip=True)


@mutant(MUTANTS, "the derivative of σ is missing from the update gate",
        wrong={"x", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"})
def update_gate_derivative_forgotten(x, h, params, dh_new):
    return _slipped(x, h, params, dh_new, sigmoid_slip=True)


def gru_backward_with_torch_autograd(x, h, params, dh_new):
    """Right: torch.nn.GRUCell in float64, the gradients by autograd."""
    import torch
    cell = torch.nn.GRUCell(x.shape[1], h.shape[1]).double()
    with torch.no_grad():
        for name, value in params.items():
            getattr(cell, name).copy_(torch.from_numpy(value))
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    (cell(xt, ht) * torch.from_numpy(dh_new)).sum().backward()
    return {"x": xt.grad.numpy(), "h": ht.grad.numpy(),
            **{name: getattr(cell, name).grad.numpy() for name in params}}


ALTERNATIVES = [gru_backward_with_torch_autograd]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "bias_hh was taken from the input side", wrong={"bias_hh"})
def bias_gradients_copied(x, h, params, dh_new):
    # bias_hh given the same gradient as bias_ih (r forgotten on the hidden n block)
    grads = correct(x, h, params, dh_new)
    grads["bias_hh"] = grads["bias_ih"].copy()
    return grads
