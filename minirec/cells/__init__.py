"""Recurrent cells — tanh RNN, LSTM, GRU — and backpropagation through time.

Three implementations of the same maths, in this folder:

- ``reference.py``  NumPy, loops over time, the equations in the code: the specification;
- ``numba_cpu.py``  compiled kernels (``@njit(cache=True)``) for the sequence forward and BPTT;
- ``torch_ops.py``  ``torch.nn.Module`` s built from the gates, loadable from ``torch.nn.GRU``,
  ``torch.nn.LSTM`` and ``torch.nn.RNN`` state dicts; they run on CUDA when it is available.

The public functions below take NumPy arrays or torch tensors. ``backend=None`` picks Numba for
NumPy input and Torch for tensors; ``backend="numpy"`` runs the reference. Results have the
input's type and dtype. Shapes: ``x (T, B, D)``, ``h0 (B, H)`` (LSTM: ``(h0, c0)``), parameters
``weight_ih (G*H, D)``, ``weight_hh (G*H, H)``, ``bias_ih (G*H,)``, ``bias_hh (G*H,)`` with
G = 1 (RNN), 4 (LSTM, gates i f g o), 3 (GRU, gates r z n).
"""

from __future__ import annotations

import numpy as np

from minirec._dispatch import Implementations, same_kind
from minirec._validate import Shapes, require_float, require_keys, require_positive_int
from minirec.cells.reference import GATES, PARAM_NAMES, init_params

__all__ = [
    "rnn_forward", "lstm_forward", "gru_forward",
    "rnn_bptt", "lstm_bptt", "gru_bptt",
    "init_params", "params_from_torch", "PARAM_NAMES", "GATES",
]

#: Where each cell runs on each backend (minirec._dispatch: the choice, the conversion, the call).
IMPLEMENTATIONS = Implementations(__name__, {
    #              numpy        numba        torch
    "rnn_forward":  ("reference", "numba_cpu", "torch_ops"),
    "gru_forward":  ("reference", "numba_cpu", "torch_ops"),
    "lstm_forward": ("reference", "numba_cpu", "torch_ops"),
    "rnn_bptt":     ("reference", "numba_cpu", "torch_ops"),
    "gru_bptt":     ("reference", "numba_cpu", "torch_ops"),
    "lstm_bptt":    ("reference", "numba_cpu", "torch_ops"),
})


def params_from_torch(module_or_state_dict, layer: int = 0) -> dict:
    """The params dict of one layer of a ``torch.nn.RNN/GRU/LSTM`` (or their ``*Cell``), as NumPy.

    Strips torch.nn's ``_l{layer}`` suffix: ``weight_ih_l0`` → ``weight_ih``. A module built with
    ``bias=False`` has no biases; they are returned as zeros, which computes the same function.
    """
    sd = module_or_state_dict
    if hasattr(sd, "state_dict"):
        sd = sd.state_dict()
    out = {}
    for name in PARAM_NAMES:
        key = name if name in sd else f"{name}_l{layer}"
        if key in sd:
            out[name] = sd[key].detach().cpu().numpy()
        elif name.startswith("bias") and "weight_hh" in out:
            out[name] = np.zeros(out["weight_hh"].shape[0], out["weight_hh"].dtype)
        else:
            raise ValueError(f"state dict has no {name!r} or {key!r}; got keys {sorted(sd)}")
    return out


def _validate(cell, x, state0, params, grad_outputs=None, grad_final=None):
    """Check types and shapes; return x, state0 (tuple), params, grad_outputs, grad_final."""
    G = GATES[cell]
    pair = cell == "lstm"
    shapes = Shapes()
    x = shapes.check("x", require_float("x", x), ("T", "B", "D"))
    if x.shape[0] == 0:
        raise ValueError("x must have at least one time step: shape (T, B, D) with T >= 1; "
                         f"got {tuple(x.shape)}")
    require_keys("params", params, PARAM_NAMES,
                 hint="Use minirec.cells.params_from_torch(module) to convert a torch.nn module")
    p = {k: require_float(f"params[{k!r}]", params[k]) for k in PARAM_NAMES}
    shapes.check("params['weight_ih']", p["weight_ih"], ((G, "H"), "D"))
    shapes.check("params['weight_hh']", p["weight_hh"], ((G, "H"), "H"))
    shapes.check("params['bias_ih']", p["bias_ih"], ((G, "H"),))
    shapes.check("params['bias_hh']", p["bias_hh"], ((G, "H"),))
    if pair:
        if not (isinstance(state0, (tuple, list)) and len(state0) == 2):
            raise TypeError("h0 of an LSTM must be the pair (h0, c0), each of shape (B, H); "
                            f"got {type(state0).__name__}")
        state0 = (shapes.check("h0[0]", require_float("h0[0]", state0[0]), ("B", "H")),
                  shapes.check("h0[1]", require_float("h0[1]", state0[1]), ("B", "H")))
    else:
        state0 = (shapes.check("h0", require_float("h0", state0), ("B", "H")),)
    if grad_outputs is not None:
        grad_outputs = shapes.check("grad_outputs", require_float("grad_outputs", grad_outputs),
                                    ("T", "B", "H"))
    if grad_final is not None:
        if pair:
            if not (isinstance(grad_final, (tuple, list)) and len(grad_final) == 2):
                raise TypeError("grad_final of an LSTM must be the pair (dh_T, dc_T)")
            grad_final = tuple(
                shapes.check(f"grad_final[{i}]", require_float(f"grad_final[{i}]", g), ("B", "H"))
                for i, g in enumerate(grad_final))
        else:
            grad_final = (shapes.check("grad_final", require_float("grad_final", grad_final),
                                       ("B", "H")),)
    same_kind([x, *state0, *p.values(), *([grad_outputs] if grad_outputs is not None else []),
                *(grad_final or ())])
    return x, state0, p, grad_outputs, grad_final


def _forward(cell, x, h0, params, backend):
    x, state0, p, _, _ = _validate(cell, x, h0, params)
    backend = IMPLEMENTATIONS.pick(backend, x)
    return IMPLEMENTATIONS.call(backend, f"{cell}_forward", x,
                                state0 if cell == "lstm" else state0[0], p)


def _bptt(cell, x, h0, params, grad_outputs, grad_final, truncate, return_hidden_grads, backend):
    x, state0, p, grad_outputs, grad_final = _validate(cell, x, h0, params, grad_outputs, grad_final)
    if grad_outputs is None:
        raise ValueError("grad_outputs (T, B, H) is required")
    if truncate is not None:
        truncate = require_positive_int("truncate", truncate)
    backend = IMPLEMENTATIONS.pick(backend, x)
    if cell != "lstm":
        state0 = state0[0]
        grad_final = None if grad_final is None else grad_final[0]
    return IMPLEMENTATIONS.call(backend, f"{cell}_bptt", x, state0, p, grad_outputs,
                                grad_final=grad_final, truncate=truncate,
                                return_hidden_grads=return_hidden_grads)


def rnn_forward(x, h0, params, *, backend=None):
    """tanh RNN over ``x (T, B, D)`` from ``h0 (B, H)`` → ``(outputs (T, B, H), h_T (B, H))``.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)
    """
    return _forward("rnn", x, h0, params, backend)


def gru_forward(x, h0, params, *, backend=None):
    """GRU over ``x (T, B, D)`` from ``h0 (B, H)`` → ``(outputs (T, B, H), h_T (B, H))``.

    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h
    """
    return _forward("gru", x, h0, params, backend)


def lstm_forward(x, h0, params, *, backend=None):
    """LSTM over ``x (T, B, D)`` from ``h0 = (h0, c0)`` → ``(outputs (T, B, H), (h_T, c_T))``.

    i, f, o = σ(·), g = tanh(·) of W_ih x + b_ih + W_hh h + b_hh (gate order i f g o);
    c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')
    """
    return _forward("lstm", x, h0, params, backend)


def rnn_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False, backend=None):
    """Backpropagation through time for the tanh RNN.

    ``grad_outputs (T, B, H)`` = ∂L/∂outputs; ``grad_final (B, H)`` (optional) = ∂L/∂h_T beyond
    the outputs; ``truncate=k`` detaches the state every k steps (truncated BPTT).
    Returns a dict: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, ``x (T, B, D)``,
    ``h0 (B, H)``, and with ``return_hidden_grads=True`` also ``hidden (T, B, H)`` = ∂L/∂h_t.
    """
    return _bptt("rnn", x, h0, params, grad_outputs, grad_final, truncate,
                 return_hidden_grads, backend)


def gru_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False, backend=None):
    """Backpropagation through time for the GRU; arguments and result as :func:`rnn_bptt`."""
    return _bptt("gru", x, h0, params, grad_outputs, grad_final, truncate,
                 return_hidden_grads, backend)


def lstm_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
              return_hidden_grads=False, backend=None):
    """Backpropagation through time for the LSTM; as :func:`rnn_bptt` with pairs for the state:
    ``h0 = (h0, c0)``, ``grad_final = (dh_T, dc_T)``, and the result's ``h0`` is ``(dh0, dc0)``.
    """
    return _bptt("lstm", x, h0, params, grad_outputs, grad_final, truncate,
                 return_hidden_grads, backend)
