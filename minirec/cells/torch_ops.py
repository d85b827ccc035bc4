r"""Recurrent cells in PyTorch, built from the gates: differentiable, and on CUDA when it is there.

The same maths as :mod:`minirec.cells.reference` (the specification), written with torch ops so
that autograd differentiates it and the tensors' device decides where it runs. Nothing here wraps
``torch.nn.GRU/LSTM/RNN`` or their cells: the modules below are the gates themselves, with
torch.nn's parameter names, shapes, gate order and initialisation, so that
``GRU(...).load_state_dict(torch.nn.GRU(...).state_dict())`` works and gives the same outputs.

Notation as in the reference::

    T  time steps    B  batch    D  input size    H  hidden size    G  gates (RNN 1, GRU 3, LSTM 4)
    x (T, B, D)      h (B, H)    params: weight_ih (G*H, D), weight_hh (G*H, H),
                                         bias_ih (G*H,), bias_hh (G*H,)  (biases may be None)

Functions: ``rnn_forward``, ``gru_forward``, ``lstm_forward`` → ``(outputs (T, B, H), final)``;
``rnn_bptt``, ``gru_bptt``, ``lstm_bptt`` → the gradient dict of the reference, computed by
``torch.autograd``. Modules: :class:`RNN`, :class:`GRU`, :class:`LSTM`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "rnn_forward", "gru_forward", "lstm_forward",
    "rnn_bptt", "gru_bptt", "lstm_bptt",
    "RNN", "GRU", "LSTM",
]

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# --------------------------------------------------------------------------------------------
# One step of each cell. ``gi_t (B, G*H)`` is the input term W_ih x_t + b_ih, precomputed for
# all steps by one matmul in :func:`_unroll`; the state is a tuple of (B, H) tensors.
# --------------------------------------------------------------------------------------------

def _rnn_step(gi_t, state, p):
    (h,) = state
    return (torch.tanh(gi_t + F.linear(h, p["weight_hh"], p.get("bias_hh"))),)  # tanh(a)


def _gru_step(gi_t, state, p):
    (h,) = state
    gh = F.linear(h, p["weight_hh"], p.get("bias_hh"))          # W_hh h + b_hh: (B, 3H)
    i_r, i_z, i_n = gi_t.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)                                 # reset gate
    z = torch.sigmoid(i_z + h_z)                                 # update gate
    n = torch.tanh(i_n + r * h_n)                                # candidate, r ⊙ (W_hn h + b_hn)
    return (torch.lerp(n, h, z),)                                # h' = (1 − z) ⊙ n + z ⊙ h


def _lstm_step(gi_t, state, p):
    h, c = state
    a_i, a_f, a_g, a_o = (gi_t + F.linear(h, p["weight_hh"], p.get("bias_hh"))).chunk(4, dim=-1)
    c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)   # c' = f ⊙ c + i ⊙ g
    h = torch.sigmoid(a_o) * torch.tanh(c)                               # h' = o ⊙ tanh(c')
    return h, c


def _unroll(step, x, state, p, truncate=None):
    """Run ``step`` over ``x (T, B, D)`` from the state tuple; the input terms of all steps are one
    matmul. With ``truncate=k`` the state entering step t is detached at t = k, 2k, ….

    Returns ``(outputs (T, B, H), final state tuple, [h_1 … h_T])``.
    """
    gi = F.linear(x, p["weight_ih"], p.get("bias_ih"))          # (T, B, G*H) in one product
    hs = []
    # unbind, not gi[t]: the backward of gi[t] writes a full-size zero tensor for every t (T²)
    for t, gi_t in enumerate(gi.unbind(0)):
        if truncate and t > 0 and t % truncate == 0:
            state = tuple(s.detach() for s in state)             # truncated BPTT: cut here
        state = step(gi_t, state, p)
        hs.append(state[0])
    outputs = torch.stack(hs) if hs else x.new_zeros((0, *state[0].shape))
    return outputs, state, hs


def rnn_forward(x, h0, params):
    """tanh RNN over ``x (T, B, D)`` from ``h0 (B, H)`` → ``(outputs (T, B, H), h_T (B, H))``."""
    outputs, (h,), _ = _unroll(_rnn_step, x, (h0,), params)
    return outputs, h


def gru_forward(x, h0, params):
    """GRU over ``x (T, B, D)`` from ``h0 (B, H)`` → ``(outputs (T, B, H), h_T (B, H))``."""
    outputs, (h,), _ = _unroll(_gru_step, x, (h0,), params)
    return outputs, h


def lstm_forward(x, state0, params):
    """LSTM over ``x (T, B, D)`` from ``state0 = (h0, c0)`` → ``(outputs, (h_T, c_T))``."""
    outputs, state, _ = _unroll(_lstm_step, x, tuple(state0), params)
    return outputs, state


# --------------------------------------------------------------------------------------------
# BPTT by autograd: the reference's gradient dict, as detached tensors
# --------------------------------------------------------------------------------------------

def _bptt(step, x, state0, params, grad_outputs, grad_final, truncate, return_hidden_grads):
    with torch.enable_grad():
        leaf = lambda t: t.detach().requires_grad_(True)
        p = {k: leaf(params[k]) for k in PARAM_NAMES}
        x_, s0 = leaf(x), tuple(leaf(s) for s in state0)
        outputs, final, hs = _unroll(step, x_, s0, p, truncate)
        ys, gys = [outputs], [grad_outputs]
        if grad_final is not None:                               # ∂L/∂(final state) beyond y
            ys += list(final)
            gys += list(grad_final)
        wrt = [p[k] for k in PARAM_NAMES] + [x_, *s0] + (hs if return_hidden_grads else [])
        grads = torch.autograd.grad(ys, wrt, gys, allow_unused=True)
    grads = [torch.zeros_like(w) if g is None else g.detach()
             for g, w in zip(grads, wrt, strict=True)]
    out = dict(zip(PARAM_NAMES, grads[:4], strict=True))
    out["x"] = grads[4]
    n = len(s0)
    out["h0"] = tuple(grads[5:5 + n]) if n == 2 else grads[5]
    if return_hidden_grads:
        hidden = grads[5 + n:]
        out["hidden"] = torch.stack(hidden) if hidden else torch.zeros_like(grad_outputs)
    return out


def rnn_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False):
    """Gradients of L = Σ_t ⟨grad_outputs_t, h_t⟩ + ⟨grad_final, h_T⟩ through a tanh RNN.

    ``x (T, B, D)``, ``h0 (B, H)``, ``grad_outputs (T, B, H)``, ``grad_final (B, H)`` or None;
    ``truncate=k`` detaches the state every k steps. Returns a dict: the four parameter names,
    ``x (T, B, D)``, ``h0 (B, H)`` and, with ``return_hidden_grads``, ``hidden (T, B, H)`` =
    ∂L/∂h_t. All detached.
    """
    gf = None if grad_final is None else (grad_final,)
    return _bptt(_rnn_step, x, (h0,), params, grad_outputs, gf, truncate, return_hidden_grads)


def gru_bptt(x, h0, params, grad_outputs, *, grad_final=None, truncate=None,
             return_hidden_grads=False):
    """Gradients of L through a GRU; arguments and result as :func:`rnn_bptt`."""
    gf = None if grad_final is None else (grad_final,)
    return _bptt(_gru_step, x, (h0,), params, grad_outputs, gf, truncate, return_hidden_grads)


def lstm_bptt(x, state0, params, grad_outputs, *, grad_final=None, truncate=None,
              return_hidden_grads=False):
    """Gradients of L through an LSTM; as :func:`rnn_bptt` with pairs: ``state0 = (h0, c0)``,
    ``grad_final = (dh_T, dc_T)`` or None, and the result's ``h0`` is ``(dh0, dc0)``."""
    gf = None if grad_final is None else tuple(grad_final)
    return _bptt(_lstm_step, x, tuple(state0), params, grad_outputs, gf, truncate,
                 return_hidden_grads)


# --------------------------------------------------------------------------------------------
# nn.Modules with torch.nn's interface and parameter names
# --------------------------------------------------------------------------------------------

def _fmt(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


class _Recurrent(nn.Module):
    """Shared by :class:`RNN`, :class:`GRU` and :class:`LSTM`: a stack of ``num_layers`` cells,
    time first (``batch_first=False``), unidirectional, no dropout."""

    _gates: int
    _pair = False                                                # LSTM: state is (h, c)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 *, device=None, dtype=None):
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bias = num_layers, bool(bias)
        kw = {"device": device, "dtype": dtype}
        G, H = self._gates, hidden_size
        for layer in range(num_layers):
            d = input_size if layer == 0 else hidden_size
            shapes = {"weight_ih": (G * H, d), "weight_hh": (G * H, H)}
            if self.bias:
                shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
            for name, shape in shapes.items():                   # torch.nn's names and order
                self.register_parameter(f"{name}_l{layer}", nn.Parameter(torch.empty(shape, **kw)))
        self.reset_parameters()

    def reset_parameters(self):
        """U(−1/√H, 1/√H) for every weight and bias, as torch.nn does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            nn.init.uniform_(w, -bound, bound)

    def layer_params(self, layer: int) -> dict:
        """One layer's params dict (``weight_ih_l1`` → ``weight_ih``), as the functions take it."""
        return {k: getattr(self, f"{k}_l{layer}", None) for k in PARAM_NAMES}

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        return s + ("" if self.bias else ", bias=False")

    def _initial_state(self, hx, x):
        L, B, H = self.num_layers, x.shape[1], self.hidden_size
        expected = f"(num_layers, B, H) = {_fmt((L, B, H))}"
        if hx is None:
            zeros = x.new_zeros((L, B, H))
            return (zeros, zeros) if self._pair else (zeros,)
        if self._pair:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"hx of an LSTM must be the pair (h0, c0), each {expected}")
            states = tuple(hx)
        else:
            states = (hx,)
        for name, s in zip(("hx[0]", "hx[1]") if self._pair else ("hx",), states, strict=True):
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != (L, B, H):
                got = _fmt(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"{name} must have shape {expected}; got {got}")
        return states

    def forward(self, x, hx=None):
        """``x (T, B, input_size)``, ``hx (num_layers, B, H)`` or None (zeros) →
        ``(output (T, B, H), h_n (num_layers, B, H))``; LSTM: ``hx`` and ``h_n`` are pairs."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (T, B, D); got {type(x).__name__}")
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must have shape (T, B, D) with D = input_size = {self.input_size} "
                             f"(time first, as torch.nn with batch_first=False); "
                             f"got {_fmt(x.shape)}")
        states = self._initial_state(hx, x)
        finals, out = [], x
        for layer in range(self.num_layers):
            s0 = tuple(s[layer] for s in states)
            out, final, _ = _unroll(self._step, out, s0, self.layer_params(layer))
            finals.append(final)
        stacked = tuple(torch.stack(f) for f in zip(*finals, strict=True))
        return out, (stacked if self._pair else stacked[0])


class RNN(_Recurrent):
    """tanh RNN, ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)``; torch.nn.RNN's interface
    (``nonlinearity="tanh"``, time first)."""

    _gates = 1
    _step = staticmethod(_rnn_step)


class GRU(_Recurrent):
    """GRU with torch.nn.GRU's equations, parameter names and gate order (r, z, n)."""

    _gates = 3
    _step = staticmethod(_gru_step)


class LSTM(_Recurrent):
    """LSTM with torch.nn.LSTM's equations, parameter names and gate order (i, f, g, o);
    ``forward(x, (h0, c0))`` → ``(output, (h_n, c_n))``."""

    _gates = 4
    _pair = True
    _step = staticmethod(_lstm_step)
