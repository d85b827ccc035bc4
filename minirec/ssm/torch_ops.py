r"""The selective SSM in PyTorch: differentiable, on the tensors' device.

The same maths as :mod:`minirec.ssm.reference` (the specification)::

    Ā_t = exp(Δ_t A),  B̄_t x_t = Δ_t B_t x_t,  h_t = Ā_t ⊙ h_{t−1} + B̄_t x_t,
    y_t = Σ_n h_t[..., n] C_t[n] + D ⊙ x_t
    x, Δ (T, B, D)   A (D, N)   B, C (T, B, N)   h (B, D, N)

:func:`selective_scan` materialises Ā and B̄x ``(T, B, D, N)`` and runs them through
``minirec.scan.torch_ops.linear_recurrence`` (an ``autograd.Function`` whose backward is the
reverse-time recurrence; on a CPU its forward and backward are minirec's compiled kernel, on a GPU
a chunked scan). Mamba's CUDA kernel fuses the discretisation into the scan so that the
(T, B, D, N) tensors never reach main memory; here they do, which is fine at lesson sizes.
:func:`selective_scan_loop` is the loop over time with autograd through it: the oracle in tests.
:class:`SelectiveSSM` is the layer as an ``nn.Module`` with the reference's parameter names.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from minirec.scan.torch_ops import linear_recurrence

__all__ = ["discretize", "selective_scan", "selective_scan_loop", "ssm_inputs", "selective_ssm",
           "SelectiveSSM"]


def discretize(delta, A, B, x):
    """``(Ā, B̄x)``, both ``(..., D, N)``: Ā = exp(Δ A), B̄x = Δ B x."""
    return torch.exp(delta[..., :, None] * A), (delta * x)[..., :, None] * B[..., None, :]


def _skip(y, x, D):
    return y if D is None else y + D * x


def selective_scan(x, delta, A, B, C, *, D=None, h0=None, method=None):
    """``x, delta (T, B, D)``, ``A (D, N)``, ``B, C (T, B, N)``, ``D (D,)`` or None,
    ``h0 (B, D, N)`` or None → ``(y (T, B, D), h_T (B, D, N))``; ``method`` is passed to
    ``minirec.scan.torch_ops.linear_recurrence`` (None: its default for the device)."""
    a, b = discretize(delta, A, B, x)
    h = linear_recurrence(a, b, h0, method=method)                  # (T, B, D, N)
    y = torch.einsum("tbdn,tbn->tbd", h, C)
    return _skip(y, x, D), h[-1]


def selective_scan_loop(x, delta, A, B, C, *, D=None, h0=None):
    """The same by a Python loop over time, autograd through every step (the slow oracle)."""
    h = x.new_zeros(x.shape[1:] + A.shape[1:]) if h0 is None else h0
    ys = []
    for t in range(x.shape[0]):
        a, b = discretize(delta[t], A, B[t], x[t])
        h = a * h + b                                               # h_t = Ā_t h_{t−1} + B̄_t x_t
        ys.append(torch.einsum("bdn,bn->bd", h, C[t]))              # y_t = h_t C_t
    return _skip(torch.stack(ys), x, D), h


def ssm_inputs(x, params):
    """``x (T, B, D)`` → ``(Δ, A, B, C)`` as :func:`minirec.ssm.reference.ssm_inputs`."""
    delta = F.softplus(x @ params["weight_delta"].T + params["bias_delta"])
    return delta, -torch.exp(params["A_log"]), x @ params["weight_B"].T, x @ params["weight_C"].T


def selective_ssm(x, params, *, h0=None, method=None):
    """The layer on tensors: ``x (T, B, D)``, ``params`` a dict of tensors (names and shapes of
    :data:`minirec.ssm.reference.PARAM_SHAPES`) → ``(y (T, B, D), h_T (B, D, N))``."""
    delta, A, B, C = ssm_inputs(x, params)
    return selective_scan(x, delta, A, B, C, D=params["D"], h0=h0, method=method)


class SelectiveSSM(nn.Module):
    """The selective SSM layer: ``forward(x (T, B, D), h0=None) -> (y (T, B, D), h_T (B, D, N))``.

    Parameters (as :data:`minirec.ssm.reference.PARAM_SHAPES`): ``A_log (D, N)`` (A = −e^{A_log}),
    ``weight_delta (D, D)``, ``bias_delta (D,)``, ``weight_B, weight_C (N, D)``, ``D (D,)``;
    initialised as :func:`minirec.ssm.reference.init_params` (Mamba's scheme) from
    ``generator``. ``params()`` returns them as the dict the functional API takes.
    """

    def __init__(self, d_model, d_state, *, generator=None, dt_min=1e-3, dt_max=1e-1,
                 dtype=torch.float32):
        super().__init__()
        self.d_model, self.d_state = d_model, d_state
        bound = 1.0 / math.sqrt(d_model)

        def uniform(*shape):
            return (torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound

        log_dt = torch.rand(d_model, generator=generator, dtype=torch.float64) \
            * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt)
        values = {
            "A_log": torch.log(torch.arange(1, d_state + 1, dtype=torch.float64)).repeat(d_model, 1),
            "weight_delta": uniform(d_model, d_model),
            "bias_delta": dt + torch.log(-torch.expm1(-dt)),                # inverse softplus
            "weight_B": uniform(d_state, d_model),
            "weight_C": uniform(d_state, d_model),
            "D": torch.ones(d_model, dtype=torch.float64),
        }
        for name, value in values.items():
            self.register_parameter(name, nn.Parameter(value.to(dtype)))

    def params(self):
        return {name: getattr(self, name) for name in
                ("A_log", "weight_delta", "bias_delta", "weight_B", "weight_C", "D")}

    def forward(self, x, h0=None):
        return selective_ssm(x, self.params(), h0=h0)
