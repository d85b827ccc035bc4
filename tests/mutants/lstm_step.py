"""Wrong answers to ``lstm_step(x (B, D), (h, c), params) -> (h_new, c_new)``."""

import numpy as np

from . import mutant

MUTANTS: list = []


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def blank(x, state, params):
    raise NotImplementedError


def _pre(x, h, params):
    return (x @ params["weight_ih"].T + params["bias_ih"]
            + h @ params["weight_hh"].T + params["bias_hh"])


def correct(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new


@mutant(MUTANTS, "gate order: you read the four blocks of weight_ih, weight_hh and the biases "
                 "as i, f, o, g", wrong={"h_new", "c_new"})
def output_gate_third(x, state, params):
    h, c = state
    a_i, a_f, a_o, a_g = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new


@mutant(MUTANTS, "the tanh is missing from the output", wrong={"h_new"})
def no_tanh_on_the_cell(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * c_new, c_new


@mutant(MUTANTS, "forget gate applied to the candidate instead of c", wrong={"h_new", "c_new"})
def forget_gate_on_candidate(x, state, params):
    h, c = state
    i, f, g, o = np.split(_pre(x, h, params), 4, axis=1)
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c_new = i * c + f * g
    return o * np.tanh(c_new), c_new


@mutant(MUTANTS, "bias missing: bias_ih and bias_hh are both missing", wrong={"h_new", "c_new"})
def no_biases(x, state, params):
    h, c = state
    a = x @ params["weight_ih"].T + h @ params["weight_hh"].T
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new


@mutant(MUTANTS, "a weight looks transposed (weight_ih is (G*H, D) = (4, 1) and weight_hh is "
                 "(G*H, H) = (4, 1)")
def recurrent_weight_not_transposed(x, state, params):
    h, c = state
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"] + params["bias_hh"]
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new


@mutant(MUTANTS, "the pair is returned in the wrong order", wrong={"h_new", "c_new"})
def returns_cell_first(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return c_new, sigmoid(a_o) * np.tanh(c_new)


@mutant(MUTANTS, "lstm_step must return the pair (h_new, c_new); got one array of shape (1, 1)")
def returns_only_h(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new)


@mutant(MUTANTS, "changed its argument state[1] in place", wrong=set())
def cell_updated_in_place(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c *= sigmoid(a_f)
    c += sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c), c


# --- the wrong gate (issue 11), more wrong answers and right answers written differently ----

@mutant(MUTANTS, "the wrong gate: i where o belongs", wrong={"h_new"})
def input_gate_on_the_output(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    i = sigmoid(a_i)
    c_new = sigmoid(a_f) * c + i * np.tanh(a_g)
    return i * np.tanh(c_new), c_new


@mutant(MUTANTS, "the wrong gate: o where i belongs", wrong={"h_new", "c_new"})
def output_gate_writes(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    o = sigmoid(a_o)
    c_new = sigmoid(a_f) * c + o * np.tanh(a_g)
    return o * np.tanh(c_new), c_new


@mutant(MUTANTS, "the input gate is missing", wrong={"h_new", "c_new"})
def candidate_ungated(x, state, params):
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f) * c + np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new


@mutant(MUTANTS, "bias missing: bias_hh is missing", wrong={"h_new", "c_new"})
def recurrent_bias_forgotten(x, state, params):
    h, c = state
    a = x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new


@mutant(MUTANTS, "no known mistake matches your result", wrong={"h_new", "c_new"})
def forget_gate_complement(x, state, params):
    # a coupled input-forget gate (c' = f c + (1 − f) g, as in some GRU-like variants): no suspect
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    f = sigmoid(a_f)
    c_new = f * c + (1 - f) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new


def lstm_with_torch_cell(x, state, params):
    """Right: torch.nn.LSTMCell in float64 with the case's weights, converted back to NumPy."""
    import torch
    h, c = state
    cell = torch.nn.LSTMCell(x.shape[1], h.shape[1]).double()
    with torch.no_grad():
        for name, value in params.items():
            getattr(cell, name).copy_(torch.from_numpy(value))
        h_new, c_new = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    return h_new.numpy(), c_new.numpy()


def lstm_by_einsum(x, state, params):
    """Right, the four gates as one (B, 4, H) einsum."""
    h, c = state
    B, H = h.shape
    W_i = params["weight_ih"].reshape(4, H, -1)
    W_h = params["weight_hh"].reshape(4, H, H)
    a = (np.einsum("ghd,bd->bgh", W_i, x) + np.einsum("ghk,bk->bgh", W_h, h)
         + (params["bias_ih"] + params["bias_hh"]).reshape(4, H))
    i, f, o = sigmoid(a[:, 0]), sigmoid(a[:, 1]), sigmoid(a[:, 3])
    c_new = f * c + i * np.tanh(a[:, 2])
    return o * np.tanh(c_new), c_new


ALTERNATIVES = [lstm_with_torch_cell, lstm_by_einsum]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "sigmoid where tanh belongs", wrong={"h_new"})
def cell_state_through_sigmoid(x, state, params):
    # h' = o ⊙ σ(c'): the output squashes the cell with the gates' function
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * sigmoid(c_new), c_new


# --- probe 2 (issue 11): the causes behind a second learner's mistakes, written anew ------

@mutant(MUTANTS, "a constant forget bias inside the step", wrong={"h_new", "c_new"})
def built_in_forget_bias(x, state, params):
    # a keep bias of +1 added by the step itself
    h, c = state
    a_i, a_f, a_g, a_o = np.split(_pre(x, h, params), 4, axis=1)
    c_new = sigmoid(a_f + 1.0) * c + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_new), c_new
