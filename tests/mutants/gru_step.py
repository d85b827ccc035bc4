"""Wrong answers to the GRU step: ``gru_step(x (B, D), h (B, H), params) -> h_new (B, H)``."""

import numpy as np

from . import mutant

MUTANTS: list = []


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def blank(x, h, params):
    raise NotImplementedError


def _blocks(params):
    W_ir, W_iz, W_in = np.split(params["weight_ih"], 3)
    W_hr, W_hz, W_hn = np.split(params["weight_hh"], 3)
    b_ir, b_iz, b_in = np.split(params["bias_ih"], 3)
    b_hr, b_hz, b_hn = np.split(params["bias_hh"], 3)
    return W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn


def correct(x, h, params):
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


@mutant(MUTANTS, "a weight looks transposed (weight_ih is (G*H, D)")
def whole_weight_not_transposed(x, h, params):
    gi = x @ params["weight_ih"] + params["bias_ih"]
    gh = h @ params["weight_hh"] + params["bias_hh"]
    i_r, i_z, i_n = np.split(gi, 3, axis=1)
    h_r, h_z, h_n = np.split(gh, 3, axis=1)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


@mutant(MUTANTS, "weight_hh looks transposed", wrong={"h_new"})
def recurrent_blocks_not_transposed(x, h, params):
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr + b_hr)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz + b_hz)
    n = np.tanh(x @ W_in.T + b_in + r * (h @ W_hn + b_hn))
    return (1 - z) * n + z * h


@mutant(MUTANTS, "More precisely: weight_ih looks transposed")
def input_blocks_not_transposed(x, h, params):
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    r = sigmoid(x @ W_ir + b_ir + h @ W_hr.T + b_hr)
    z = sigmoid(x @ W_iz + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(x @ W_in + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


@mutant(MUTANTS, "bias missing: bias_ih and bias_hh are both missing", wrong={"h_new"})
def no_biases(x, h, params):
    gi = x @ params["weight_ih"].T
    gh = h @ params["weight_hh"].T
    H = h.shape[1]
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


@mutant(MUTANTS, "bias missing: bias_hh is missing", wrong={"h_new"})
def forgot_recurrent_bias(x, h, params):
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    gh = h @ params["weight_hh"].T
    H = h.shape[1]
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


@mutant(MUTANTS, "reset gate applied", wrong={"h_new"})
def reset_gate_as_in_cho_2014(x, h, params):
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    return (1 - z) * n + z * h


@mutant(MUTANTS, "update gate interpolation reversed", wrong={"h_new"})
def interpolation_reversed(x, h, params):
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return z * n + (1 - z) * h


@mutant(MUTANTS, "gate order swapped", wrong={"h_new"})
def update_gate_first(x, h, params):
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    gh = h @ params["weight_hh"].T + params["bias_hh"]
    i_z, i_r, i_n = np.split(gi, 3, axis=1)
    h_z, h_r, h_n = np.split(gh, 3, axis=1)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


@mutant(MUTANTS, "tanh and sigmoid swapped", wrong={"h_new"})
def activations_swapped(x, h, params):
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    gh = h @ params["weight_hh"].T + params["bias_hh"]
    i_r, i_z, i_n = np.split(gi, 3, axis=1)
    h_r, h_z, h_n = np.split(gh, 3, axis=1)
    r = np.tanh(i_r + h_r)
    z = np.tanh(i_z + h_z)
    n = sigmoid(i_n + r * h_n)
    return (1 - z) * n + z * h


@mutant(MUTANTS, "h_new should have shape (B, H) = (3, 7); yours has (7, 3): it looks transposed",
        wrong={"h_new"})
def returns_transposed_state(x, h, params):
    gi = params["weight_ih"] @ x.T + params["bias_ih"][:, None]      # (3H, B)
    gh = params["weight_hh"] @ h.T + params["bias_hh"][:, None]
    i_r, i_z, i_n = np.split(gi, 3)
    h_r, h_z, h_n = np.split(gh, 3)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h.T                                   # (H, B): never transposed back


@mutant(MUTANTS, "h_new should have shape (B, H) = (1, 1); yours has (1, 3)", wrong={"h_new"})
def returns_all_gates(x, h, params):
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    gh = h @ params["weight_hh"].T + params["bias_hh"]
    return np.tanh(gi + gh)


@mutant(MUTANTS, "changed its argument h in place", wrong=set())
def updates_h_in_place(x, h, params):
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    gh = h @ params["weight_hh"].T + params["bias_hh"]
    i_r, i_z, i_n = np.split(gi, 3, axis=1)
    h_r, h_z, h_n = np.split(gh, 3, axis=1)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    h -= (1 - z) * (h - n)           # h' = h − (1 − z)(h − n) = (1 − z) n + z h, but in place
    return h


# --- engine diagnoses (issue 11): wrong answers the check engine names by itself ----------------

@mutant(MUTANTS, "float32 rounding in your computation", wrong={"h_new"})
def torch_default_float32(x, h, params):
    # torch.tensor(...).float() gives float32 tensors: right equations, float32 digits
    import torch
    t = {k: torch.tensor(v).float() for k, v in params.items()}
    xt, ht = torch.tensor(x).float(), torch.tensor(h).float()
    gi = xt @ t["weight_ih"].T + t["bias_ih"]
    gh = ht @ t["weight_hh"].T + t["bias_hh"]
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * ht).numpy()


# --- the wrong gate (issue 11), more wrong answers and right answers written differently ----

@mutant(MUTANTS, "the wrong gate: r where z belongs", wrong={"h_new"})
def reset_gate_interpolates(x, h, params):
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    n = np.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - r) * n + r * h


@mutant(MUTANTS, "the wrong gate: z where r belongs", wrong={"h_new"})
def update_gate_resets(x, h, params):
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(x @ W_in.T + b_in + z * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


@mutant(MUTANTS, "the reset gate is not used", wrong={"h_new"})
def candidate_without_reset(x, h, params):
    gi = x @ params["weight_ih"].T + params["bias_ih"]
    gh = h @ params["weight_hh"].T + params["bias_hh"]
    H = h.shape[1]
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + gh[:, 2 * H:])
    return (1 - z) * n + z * h


@mutant(MUTANTS, "no known mistake matches your result", wrong={"h_new"})
def reset_inside_the_tanh_twice(x, h, params):
    # r applied to the input side of the candidate as well as to the recurrent side: no suspect
    W_ir, W_iz, W_in, W_hr, W_hz, W_hn, b_ir, b_iz, b_in, b_hr, b_hz, b_hn = _blocks(params)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(r * (x @ W_in.T + b_in + h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


def gru_with_torch_cell(x, h, params):
    """Right: torch.nn.GRUCell in float64 with the case's weights, converted back to NumPy."""
    import torch
    cell = torch.nn.GRUCell(x.shape[1], h.shape[1]).double()
    with torch.no_grad():
        for name, value in params.items():
            getattr(cell, name).copy_(torch.from_numpy(value))
        return cell(torch.from_numpy(x), torch.from_numpy(h)).numpy()


def gru_in_a_loop(x, h, params):
    """Right, one example and one unit at a time."""
    H = h.shape[1]
    out = np.empty_like(h)
    for b in range(h.shape[0]):
        a_i = params["weight_ih"] @ x[b] + params["bias_ih"]
        a_h = params["weight_hh"] @ h[b] + params["bias_hh"]
        for j in range(H):
            r = sigmoid(a_i[j] + a_h[j])
            z = sigmoid(a_i[H + j] + a_h[H + j])
            n = np.tanh(a_i[2 * H + j] + r * a_h[2 * H + j])
            out[b, j] = (1 - z) * n + z * h[b, j]
    return out


ALTERNATIVES = [gru_with_torch_cell, gru_in_a_loop]


# --- probe 1 (issue 11): mistakes an independent learner made, written anew -----------------

@mutant(MUTANTS, "sigmoid where tanh belongs", wrong={"h_new"})
def candidate_squashed_into_zero_one(x, h, params):
    # the candidate goes through the logistic function like the gates
    H = h.shape[1]
    a = x @ params["weight_ih"].T + params["bias_ih"]
    b = h @ params["weight_hh"].T + params["bias_hh"]
    r = 1.0 / (1.0 + np.exp(-(a[:, :H] + b[:, :H])))
    z = 1.0 / (1.0 + np.exp(-(a[:, H:2 * H] + b[:, H:2 * H])))
    n = 1.0 / (1.0 + np.exp(-(a[:, 2 * H:] + r * b[:, 2 * H:])))
    return z * h + (1.0 - z) * n
