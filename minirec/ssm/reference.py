r"""A minimal selective state-space layer (the Mamba "S6" core), in NumPy: the specification.

Notation (time first, as everywhere in minirec)::

    T  time steps    B  batch    D  channels (the layer's width)    N  state size per channel
    x (T, B, D)      Δ (T, B, D) > 0      A (D, N) < 0      B_t, C_t (T, B, N)      h (B, D, N)

Each channel d carries N numbers. The continuous system h'(τ) = A h(τ) + B x(τ) is
discretised over a step of length Δ_t — exactly for A (zero-order hold), to first order for B,
as Mamba does::

    Ā_t = exp(Δ_t A)                    (T, B, D, N), every entry in (0, 1) since A < 0, Δ > 0
    B̄_t x_t = Δ_t B_t x_t               (T, B, D, N)
    h_t = Ā_t ⊙ h_{t−1} + B̄_t x_t        a diagonal linear recurrence: minirec.scan's
    y_t = Σ_n h_t[..., n] C_t[n] + D ⊙ x_t

It is *selective* because Δ, B and C are functions of the input (:func:`selective_ssm`)::

    Δ_t = softplus(x_t W_Δᵀ + b_Δ)      B_t = x_t W_Bᵀ      C_t = x_t W_Cᵀ

A large Δ_t forgets the past and writes x_t (Ā → 0); Δ_t → 0 keeps the state and ignores x_t
(Ā → 1, B̄ → 0). With Δ fixed the layer is a linear time-invariant filter, as S4.
"""

from __future__ import annotations

import numpy as np

from minirec.scan.reference import linear_recurrence

__all__ = ["softplus", "inverse_softplus", "discretize", "selective_scan_step",
           "selective_scan_loop", "selective_scan", "ssm_inputs", "selective_ssm",
           "init_params", "PARAM_SHAPES"]

#: The layer's parameters and their shapes (D channels, N state size per channel).
PARAM_SHAPES = {"A_log": ("D", "N"), "weight_delta": ("D", "D"), "bias_delta": ("D",),
                "weight_B": ("N", "D"), "weight_C": ("N", "D"), "D": ("D",)}


def softplus(a):
    """log(1 + e^a), without overflow for large a."""
    return np.logaddexp(0.0, a)


def inverse_softplus(y):
    """The a with softplus(a) = y > 0: log(e^y − 1) = y + log(1 − e^{−y})."""
    return y + np.log(-np.expm1(-y))


def discretize(delta, A, B, x):
    """Zero-order hold for A, Euler for B: ``(Ā, B̄x)``, both ``(..., D, N)``.

    ``delta (..., D)``, ``A (D, N)``, ``B (..., N)``, ``x (..., D)``; ``...`` any leading axes
    shared by delta, B and x ((T, B) or (B,)).
    """
    a = np.exp(delta[..., :, None] * A)                             # Ā = exp(Δ A)
    b = (delta * x)[..., :, None] * B[..., None, :]                 # B̄ x = Δ B x
    return a, b


def selective_scan_step(h, x_t, delta_t, A, B_t, C_t):
    """One step: ``h (B, D, N)``, ``x_t, delta_t (B, D)``, ``A (D, N)``, ``B_t, C_t (B, N)`` →
    ``(h_new (B, D, N), y_t (B, D))`` (without the skip term D ⊙ x_t)."""
    a, b = discretize(delta_t, A, B_t, x_t)
    h_new = a * h + b                                               # h_t = Ā_t h_{t−1} + B̄_t x_t
    y_t = np.einsum("bdn,bn->bd", h_new, C_t)                       # y_t = h_t C_t
    return h_new, y_t


def _skip(y, x, D):
    return y if D is None else y + D * x                            # + D ⊙ x_t


def selective_scan_loop(x, delta, A, B, C, *, D=None, h0=None):
    """The recurrence one step at a time. ``x, delta (T, B, D)``, ``A (D, N)``,
    ``B, C (T, B, N)``, ``D (D,)`` or None, ``h0 (B, D, N)`` or None (zeros) →
    ``(y (T, B, D), h_T (B, D, N))``."""
    T, batch, width = x.shape
    h = np.zeros((batch, width, A.shape[1]), x.dtype) if h0 is None else h0
    y = np.empty_like(x)
    for t in range(T):
        h, y[t] = selective_scan_step(h, x[t], delta[t], A, B[t], C[t])
    return _skip(y, x, D), h


def selective_scan(x, delta, A, B, C, *, D=None, h0=None):
    """The same, as one diagonal linear recurrence over the (B, D, N) state (minirec.scan):
    all Ā_t, B̄_t x_t at once ``(T, B, D, N)``, then h by the scan, then y. Arguments and
    result as :func:`selective_scan_loop`."""
    a, b = discretize(delta, A, B, x)
    h = linear_recurrence(a, b, h0)                                 # (T, B, D, N)
    y = np.einsum("tbdn,tbn->tbd", h, C)
    return _skip(y, x, D), h[-1]


def ssm_inputs(x, params):
    """The selection: ``x (T, B, D)`` → ``(Δ (T, B, D), A (D, N), B (T, B, N), C (T, B, N))``."""
    delta = softplus(x @ params["weight_delta"].T + params["bias_delta"])
    A = -np.exp(params["A_log"])                                    # A < 0: a stable system
    return delta, A, x @ params["weight_B"].T, x @ params["weight_C"].T


def selective_ssm(x, params, *, h0=None):
    """The selective SSM layer: ``x (T, B, D)``, ``params`` as :data:`PARAM_SHAPES` →
    ``(y (T, B, D), h_T (B, D, N))``."""
    delta, A, B, C = ssm_inputs(x, params)
    return selective_scan(x, delta, A, B, C, D=params["D"], h0=h0)


def init_params(d_model, d_state, *, rng, dt_min=1e-3, dt_max=1e-1, dtype=np.float64):
    """Mamba's initialisation: A = −(1, 2, …, N) per channel (S4D-real), b_Δ such that
    softplus(b_Δ) is log-uniform in [dt_min, dt_max], projections ~ U(±1/√D), D = 1."""
    bound = 1.0 / np.sqrt(d_model)
    dt = np.exp(rng.uniform(np.log(dt_min), np.log(dt_max), size=d_model))
    params = {
        "A_log": np.log(np.tile(np.arange(1, d_state + 1, dtype=np.float64), (d_model, 1))),
        "weight_delta": rng.uniform(-bound, bound, size=(d_model, d_model)),
        "bias_delta": inverse_softplus(dt),
        "weight_B": rng.uniform(-bound, bound, size=(d_state, d_model)),
        "weight_C": rng.uniform(-bound, bound, size=(d_state, d_model)),
        "D": np.ones(d_model),
    }
    return {k: v.astype(dtype) for k, v in params.items()}
