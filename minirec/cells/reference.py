r"""Recurrent cells and backpropagation through time, in NumPy: the specification.

Notation (the same everywhere in minirec)::

    T  time steps      B  batch size      D  input size      H  hidden size
    x       (T, B, D)  a sequence, time first (as torch.nn.GRU with batch_first=False)
    x_t     (B, D)     one step of it
    h       (B, H)     hidden state; the LSTM also carries a cell state c (B, H)
    params  dict of arrays with torch.nn's names and gate order:
              weight_ih (G*H, D), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,)
              G = 1 for the tanh RNN, 4 for the LSTM (gates i, f, g, o), 3 for the GRU (r, z, n)

Every function here reads like the equations in its docstring; loops over time are explicit.
The backward functions recompute the forward step they differentiate, so each one can be read
(and checked) on its own. Fast versions live in ``numba_cpu.py`` and ``torch_ops.py`` and are
tested against these.
"""

from __future__ import annotations

import numpy as np

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}) = exp(−log(1 + e^{−a})): logaddexp never overflows, and the tails
    keep full relative precision (0.5·(1 + tanh(a/2)) would cancel for a ≪ 0)."""
    return np.exp(-np.logaddexp(0.0, -a))


def _affine(x, h, params):
    """x W_ihᵀ + b_ih + h W_hhᵀ + b_hh: the pre-activations of all gates, (B, G*H)."""
    return x @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T + params["bias_hh"]


def _param_grads(x, h, dgi, dgh):
    """Weight gradients from the gradients of the two affine maps (B, G*H) of one step."""
    return {
        "weight_ih": dgi.T @ x,          # ∂L/∂W_ih = Σ_b dgi_bᵀ x_b
        "weight_hh": dgh.T @ h,          # ∂L/∂W_hh = Σ_b dgh_bᵀ h_b
        "bias_ih": dgi.sum(axis=0),
        "bias_hh": dgh.sum(axis=0),
    }


# --------------------------------------------------------------------------------------------
# tanh RNN:  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
# --------------------------------------------------------------------------------------------

def rnn_step(x, h, params):
    """One step of the tanh RNN. ``x (B, D)``, ``h (B, H)`` → ``h_new (B, H)``."""
    return np.tanh(_affine(x, h, params))


def rnn_step_backward(x, h, params, dh_new):
    """Gradients of one RNN step, given ``dh_new = ∂L/∂h_new (B, H)``.

    Returns a dict with ``x (B, D)``, ``h (B, H)`` and one entry per parameter::

        a = W_ih x + b_ih + W_hh h + b_hh,   h_new = tanh(a)
        da = dh_new ⊙ (1 − h_new²)
        dx = da W_ih,   dh = da W_hh,   dW_ih = daᵀ x,   dW_hh = daᵀ h,   db = Σ_b da
    """
    h_new = rnn_step(x, h, params)
    da = dh_new * (1.0 - h_new**2)
    grads = _param_grads(x, h, da, da)
    grads["x"] = da @ params["weight_ih"]
    grads["h"] = da @ params["weight_hh"]
    return grads


# --------------------------------------------------------------------------------------------
# GRU (torch.nn.GRU's convention: the reset gate multiplies W_hn h + b_hn, after the product)
#   r = σ(W_ir x + b_ir + W_hr h + b_hr)
#   z = σ(W_iz x + b_iz + W_hz h + b_hz)
#   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
#   h' = (1 − z) ⊙ n + z ⊙ h
# --------------------------------------------------------------------------------------------

def _gru_gates(x, h, params):
    """(r, z, n) of one GRU step, and the recurrent candidate term W_hn h + b_hn."""
    gi = x @ params["weight_ih"].T + params["bias_ih"]   # (B, 3H): input part of r, z, n
    gh = h @ params["weight_hh"].T + params["bias_hh"]   # (B, 3H): recurrent part
    gi_r, gi_z, gi_n = np.split(gi, 3, axis=1)
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=1)
    r = sigmoid(gi_r + gh_r)
    z = sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    return r, z, n, gh_n


def gru_step(x, h, params):
    """One GRU step. ``x (B, D)``, ``h (B, H)`` → ``h_new (B, H)``."""
    r, z, n, _ = _gru_gates(x, h, params)
    return (1.0 - z) * n + z * h


def gru_step_backward(x, h, params, dh_new):
    """Gradients of one GRU step, given ``dh_new = ∂L/∂h' (B, H)``.

    Returns a dict with ``x (B, D)``, ``h (B, H)`` and one entry per parameter::

        dn = dh' ⊙ (1 − z)          dz = dh' ⊙ (h − n)          (direct path: dh' ⊙ z)
        da_n = dn ⊙ (1 − n²)        da_z = dz ⊙ z(1 − z)
        dr = da_n ⊙ (W_hn h + b_hn) da_r = dr ⊙ r(1 − r)
        input side:     dgi = [da_r, da_z, da_n]
        recurrent side: dgh = [da_r, da_z, da_n ⊙ r]
    """
    r, z, n, gh_n = _gru_gates(x, h, params)
    dn = dh_new * (1.0 - z)
    dz = dh_new * (h - n)
    da_n = dn * (1.0 - n**2)
    da_z = dz * z * (1.0 - z)
    da_r = da_n * gh_n * r * (1.0 - r)
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)
    dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)
    grads = _param_grads(x, h, dgi, dgh)
    grads["x"] = dgi @ params["weight_ih"]
    grads["h"] = dgh @ params["weight_hh"] + dh_new * z
    return grads


# --------------------------------------------------------------------------------------------
# LSTM (torch.nn.LSTM's gate order i, f, g, o)
#   [a_i, a_f, a_g, a_o] = W_ih x + b_ih + W_hh h + b_hh
#   i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
#   c' = f ⊙ c + i ⊙ g,     h' = o ⊙ tanh(c')
# --------------------------------------------------------------------------------------------

def _lstm_gates(x, h, params):
    a_i, a_f, a_g, a_o = np.split(_affine(x, h, params), 4, axis=1)
    return sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)


def lstm_step(x, state, params):
    """One LSTM step. ``x (B, D)``, ``state = (h, c)`` each ``(B, H)`` → ``(h_new, c_new)``."""
    h, c = state
    i, f, g, o = _lstm_gates(x, h, params)
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new


def lstm_step_backward(x, state, params, dstate_new):
    """Gradients of one LSTM step, given ``dstate_new = (∂L/∂h', ∂L/∂c')``, each ``(B, H)``.

    Returns a dict with ``x``, ``h``, ``c`` and one entry per parameter::

        dc_total = dc' + dh' ⊙ o ⊙ (1 − tanh²(c'))       (c' reaches L directly and through h')
        do = dh' ⊙ tanh(c'),  di = dc_total ⊙ g,  dg = dc_total ⊙ i,  df = dc_total ⊙ c
        dc = dc_total ⊙ f
    """
    h, c = state
    dh_new, dc_new = dstate_new
    i, f, g, o = _lstm_gates(x, h, params)
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    dc_total = dc_new + dh_new * o * (1.0 - tanh_c**2)
    da = np.concatenate(
        [
            dc_total * g * i * (1.0 - i),        # da_i
            dc_total * c * f * (1.0 - f),        # da_f
            dc_total * i * (1.0 - g**2),         # da_g
            dh_new * tanh_c * o * (1.0 - o),     # da_o
        ],
        axis=1,
    )
    grads = _param_grads(x, h, da, da)
    grads["x"] = da @ params["weight_ih"]
    grads["h"] = da @ params["weight_hh"]
    grads["c"] = dc_total * f
    return grads


# --------------------------------------------------------------------------------------------
# Sequences: the same step applied T times, and BPTT as the same loop run backwards.
# --------------------------------------------------------------------------------------------

def rnn_forward(x, h0, params):
    """tanh RNN over a sequence. ``x (T, B, D)``, ``h0 (B, H)`` → ``(outputs (T, B, H), h_T)``."""
    h, outputs = h0, []
    for x_t in x:
        h = rnn_step(x_t, h, params)
        outputs.append(h)
    return np.stack(outputs), h


def gru_forward(x, h0, params):
    """GRU over a sequence. ``x (T, B, D)``, ``h0 (B, H)`` → ``(outputs (T, B, H), h_T)``."""
    h, outputs = h0, []
    for x_t in x:
        h = gru_step(x_t, h, params)
        outputs.append(h)
    return np.stack(outputs), h


def lstm_forward(x, state0, params):
    """LSTM over a sequence. ``x (T, B, D)``, ``state0 = (h0, c0)`` → ``(outputs, (h_T, c_T))``."""
    state, outputs = state0, []
    for x_t in x:
        state = lstm_step(x_t, state, params)
        outputs.append(state[0])
    return np.stack(outputs), state


def _bptt(step, step_backward, x, state0, params, grad_outputs, grad_final, truncate, state_keys):
    """Backpropagation through time for any cell whose state is a tuple of (B, H) arrays.

    The forward pass stores the state entering every step. The backward pass walks t = T−1 … 0:
    it adds the output's gradient ∂L/∂y_t to the state gradient, differentiates step t, **adds**
    the step's parameter gradients to the running totals (the weights are shared by all steps),
    and carries the state gradient to step t − 1. With ``truncate=k`` the state is treated as
    detached at t = k, 2k, …: the carried gradient is dropped there.
    """
    states = [state0]
    for x_t in x:
        states.append(step(x_t, states[-1]))

    grads = {name: np.zeros_like(params[name]) for name in PARAM_NAMES}
    dx = np.zeros_like(x)
    dstate = list(grad_final) if grad_final is not None else [np.zeros_like(s) for s in state0]
    hidden_grads = np.zeros_like(grad_outputs)
    for t in reversed(range(x.shape[0])):
        dstate[0] = dstate[0] + grad_outputs[t]          # ∂L/∂h_t: from y_t and from step t+1
        hidden_grads[t] = dstate[0]
        g = step_backward(x[t], states[t], dstate)
        for name in PARAM_NAMES:
            grads[name] += g[name]                       # accumulate over time
        dx[t] = g["x"]
        dstate = [g[k] for k in state_keys]              # ∂L/∂state_{t-1} through step t
        if truncate is not None and t > 0 and t % truncate == 0:
            dstate = [np.zeros_like(d) for d in dstate]  # chunk boundary: state was detached
    grads["x"] = dx
    return grads, dstate, hidden_grads


def _finish(grads, dstate, hidden_grads, return_hidden_grads, pair):
    grads["h0"] = tuple(dstate) if pair else dstate[0]
    if return_hidden_grads:
        grads["hidden"] = hidden_grads
    return grads


def rnn_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False):
    """Gradients of L through a tanh RNN over a sequence.

    ``grad_outputs (T, B, H)`` is ∂L/∂outputs, ``grad_final (B, H)`` (optional) is ∂L/∂h_T from
    any use of the final state beyond the outputs. ``truncate=k`` stops gradients every k steps.
    Returns a dict keyed by the parameter names plus ``x (T, B, D)`` and ``h0 (B, H)``;
    ``return_hidden_grads=True`` adds ``hidden (T, B, H)``, the total ∂L/∂h_t at every step.
    """
    grads, dstate, hg = _bptt(
        lambda x_t, s: (rnn_step(x_t, s[0], params),),
        lambda x_t, s, ds: rnn_step_backward(x_t, s[0], params, ds[0]),
        x, (h0,), params, grad_outputs, None if grad_final is None else (grad_final,),
        truncate, ("h",),
    )
    return _finish(grads, dstate, hg, return_hidden_grads, pair=False)


def gru_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False):
    """Gradients of L through a GRU over a sequence; arguments and result as :func:`rnn_bptt`."""
    grads, dstate, hg = _bptt(
        lambda x_t, s: (gru_step(x_t, s[0], params),),
        lambda x_t, s, ds: gru_step_backward(x_t, s[0], params, ds[0]),
        x, (h0,), params, grad_outputs, None if grad_final is None else (grad_final,),
        truncate, ("h",),
    )
    return _finish(grads, dstate, hg, return_hidden_grads, pair=False)


def lstm_bptt(x, state0, params, grad_outputs, *, grad_final=None, truncate=None,
              return_hidden_grads=False):
    """Gradients of L through an LSTM over a sequence.

    As :func:`rnn_bptt`, with the state a pair: ``state0 = (h0, c0)``, ``grad_final = (dh_T,
    dc_T)`` (optional), and the gradient ``h0`` returned as the pair ``(dh0, dc0)``.
    """
    grads, dstate, hg = _bptt(
        lambda x_t, s: lstm_step(x_t, s, params),
        lambda x_t, s, ds: lstm_step_backward(x_t, s, params, ds),
        x, tuple(state0), params, grad_outputs, grad_final, truncate, ("h", "c"),
    )
    return _finish(grads, dstate, hg, return_hidden_grads, pair=True)


def init_params(cell: str, input_size: int, hidden_size: int, *, rng, dtype=np.float64):
    """Parameters drawn as torch.nn does: U(−1/√H, 1/√H) for every weight and bias."""
    G = GATES[cell]
    bound = 1.0 / np.sqrt(hidden_size)
    shapes = {
        "weight_ih": (G * hidden_size, input_size),
        "weight_hh": (G * hidden_size, hidden_size),
        "bias_ih": (G * hidden_size,),
        "bias_hh": (G * hidden_size,),
    }
    return {k: rng.uniform(-bound, bound, size=s).astype(dtype) for k, s in shapes.items()}


# --------------------------------------------------------------------------------------------
# Recoding (paper #8): a gradient step on the hidden state, not on the weights.
#   p = softmax(W_out h + b_out),   δ = −log p[target]          (surprisal of the next token)
#   ∂δ/∂h = W_outᵀ (p − onehot(target)),      h ← h − α ∂δ/∂h
# --------------------------------------------------------------------------------------------

def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def surprisal(h, W_out, b_out, target):
    """−log p(target | h) per row. ``h (B, H)``, ``W_out (V, H)``, ``b_out (V,)``, ``target (B,)``
    integer class indices → ``(B,)``."""
    logp = _log_softmax(h @ W_out.T + b_out)
    return -logp[np.arange(h.shape[0]), target]


def recoding_step(h, W_out, b_out, target, alpha):
    """One recoding step: ``h − α ∂δ/∂h`` with δ the surprisal of ``target``; shapes as
    :func:`surprisal`, result ``(B, H)``. Each row moves only by its own surprisal's gradient."""
    p = np.exp(_log_softmax(h @ W_out.T + b_out))
    p[np.arange(h.shape[0]), target] -= 1.0          # p − onehot(target)
    return h - alpha * (p @ W_out)
