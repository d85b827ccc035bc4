"""Wrong answers to ``rnn_bptt(x (T, B, D), h0 (B, H), params, grad_outputs (T, B, H)) -> dict``.

The learner writes the time loop around ``rnn_step`` and ``rnn_step_backward``.
"""

import numpy as np

from minirec.cells.reference import rnn_step, rnn_step_backward

from . import mutant

MUTANTS: list = []
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def blank(x, h0, params, grad_outputs):
    raise NotImplementedError


def _states(x, h0, params):
    hs = [h0]
    for x_t in x:
        hs.append(rnn_step(x_t, hs[-1], params))
    return hs


def correct(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh_next = np.zeros_like(h0)
    for t in range(len(x) - 1, -1, -1):
        g = rnn_step_backward(x[t], hs[t], params, grad_outputs[t] + dh_next)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh_next = g["h"]
    return {**grads, "x": dx, "h0": dh_next}


@mutant(MUTANTS, "gradient not accumulated across steps", wrong=set(WEIGHTS))
def weights_overwritten(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {}
    dx = np.zeros_like(x)
    dh = np.zeros_like(h0)
    for t in reversed(range(len(x))):
        dh = dh + grad_outputs[t]
        g = rnn_step_backward(x[t], hs[t], params, dh)
        for k in WEIGHTS:
            grads[k] = g[k]
        dx[t] = g["x"]
        dh = g["h"]
    grads["x"] = dx
    grads["h0"] = dh
    return grads


@mutant(MUTANTS, "off by one step in time", wrong={*WEIGHTS, "x", "h0"})
def states_without_h0(x, h0, params, grad_outputs):
    hs = []                     # hs[t] = h_t, the output of step t
    h = h0
    for x_t in x:
        h = rnn_step(x_t, h, params)
        hs.append(h)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh = np.zeros_like(h0)
    for t in reversed(range(len(x))):
        dh = dh + grad_outputs[t]
        g = rnn_step_backward(x[t], hs[t], params, dh)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh = g["h"]
    return {**grads, "x": dx, "h0": dh}


@mutant(MUTANTS, "off by one step in time", wrong={*WEIGHTS, "x", "h0"})
def output_gradient_added_after_the_step(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh = np.zeros_like(h0)
    for t in reversed(range(len(x))):
        g = rnn_step_backward(x[t], hs[t], params, dh)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh = g["h"] + grad_outputs[t]
    return {**grads, "x": dx, "h0": dh}


@mutant(MUTANTS, "the gradient is not carried to the previous step", wrong={*WEIGHTS, "x", "h0"})
def nothing_carried(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    for t in reversed(range(len(x))):
        g = rnn_step_backward(x[t], hs[t], params, grad_outputs[t])
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
    return {**grads, "x": dx, "h0": g["h"]}


@mutant(MUTANTS, "output gradient not added", wrong={*WEIGHTS, "x", "h0"})
def only_the_last_output(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh = grad_outputs[-1]
    for t in reversed(range(len(x))):
        g = rnn_step_backward(x[t], hs[t], params, dh)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh = g["h"]
    return {**grads, "x": dx, "h0": dh}


@mutant(MUTANTS, "time loop runs forwards", wrong={*WEIGHTS, "x", "h0"})
def loops_forwards(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh = np.zeros_like(h0)
    for t in range(len(x)):
        dh = dh + grad_outputs[t]
        g = rnn_step_backward(x[t], hs[t], params, dh)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh = g["h"]
    return {**grads, "x": dx, "h0": dh}


@mutant(MUTANTS, "x should have shape (T, B, D) = (1, 1, 1); yours has (1, 1): its leading "
                 "axis (T = 1) is missing", wrong={"x"})
def input_gradient_summed_over_time(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x[0])
    dh = np.zeros_like(h0)
    for t in reversed(range(len(x))):
        g = rnn_step_backward(x[t], hs[t], params, dh + grad_outputs[t])
        for k in WEIGHTS:
            grads[k] += g[k]
        dx += g["x"]
        dh = g["h"]
    return {**grads, "x": dx, "h0": dh}


@mutant(MUTANTS, "changed its argument grad_outputs in place", wrong=set())
def adds_into_grad_outputs(x, h0, params, grad_outputs):
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(len(x))):
        dh = grad_outputs[t]
        dh += dh_next                      # a view: this writes into grad_outputs
        g = rnn_step_backward(x[t], hs[t], params, dh)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh_next = g["h"]
    return {**grads, "x": dx, "h0": dh_next}


# --- more wrong answers (issue 11) and right answers written differently ------------------

@mutant(MUTANTS, "averaged over time (divided by T)", wrong=set(WEIGHTS))
def weight_gradients_averaged(x, h0, params, grad_outputs):
    out = correct(x, h0, params, grad_outputs)
    return {k: v / len(x) if k in WEIGHTS else v for k, v in out.items()}


@mutant(MUTANTS, "no known mistake matches your result", wrong={"h0"})
def h0_gradient_through_the_weights(x, h0, params, grad_outputs):
    # ∂L/∂h0 taken as the last step's ∂/∂h times W_hh once more: a step too many, no suspect
    out = correct(x, h0, params, grad_outputs)
    out["h0"] = out["h0"] @ params["weight_hh"]
    return out


def bptt_with_torch_autograd(x, h0, params, grad_outputs):
    """Right: the forward loop in torch (float64), the gradients by autograd."""
    import torch
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt, h = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    h_first, outputs = h, []
    for t in range(len(x)):
        h = torch.tanh(xt[t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T
                       + p["bias_hh"])
        outputs.append(h)
    (torch.stack(outputs) * torch.from_numpy(grad_outputs)).sum().backward()
    return {**{k: v.grad.numpy() for k, v in p.items()}, "x": xt.grad.numpy(),
            "h0": h_first.grad.numpy()}


ALTERNATIVES = [bptt_with_torch_autograd]


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "right at every step but the first (T index 0)", wrong={*WEIGHTS, "x", "h0"})
def backward_loop_misses_step_zero(x, h0, params, grad_outputs):
    # the loop ends at t = 1: step 0 is never differentiated
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh_next = np.zeros_like(h0)
    for t in range(len(x) - 1, 0, -1):
        g = rnn_step_backward(x[t], hs[t], params, grad_outputs[t] + dh_next)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh_next = g["h"]
    return {**grads, "x": dx, "h0": dh_next}


@mutant(MUTANTS, "all zeros at the last step (T index T − 1)", wrong={*WEIGHTS, "x", "h0"})
def backward_loop_starts_one_step_early(x, h0, params, grad_outputs):
    # the loop starts at t = T − 2: the last step is never differentiated
    hs = _states(x, h0, params)
    grads = {k: np.zeros_like(params[k]) for k in WEIGHTS}
    dx = np.zeros_like(x)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(len(x) - 1)):
        g = rnn_step_backward(x[t], hs[t], params, grad_outputs[t] + dh_next)
        for k in WEIGHTS:
            grads[k] += g[k]
        dx[t] = g["x"]
        dh_next = g["h"]
    return {**grads, "x": dx, "h0": dh_next}
