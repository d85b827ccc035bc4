"""A minimal selective state-space layer (Mamba's S6 core): input-dependent Δ, B, C, a diagonal
negative A, the decay exp(Δ A), and the recurrence run as minirec.scan's linear recurrence.

Three implementations, in this folder:

- ``reference.py``  NumPy, the specification: discretisation, one step, the loop and the scan
  form, the layer's selection (Δ, B, C from x) and Mamba's initialisation;
- ``numba_cpu.py``  the scan fused with the discretisation (``@njit(cache=True)``): the
  (T, B, D, N) decays are never stored;
- ``torch_ops.py``  the same maths on tensors, differentiable (the scan's custom backward), and
  :class:`SelectiveSSM`, an ``nn.Module``.

Shapes, time first::

    x, delta (T, B, D)   A (D, N)   B, C (T, B, N)   D (D,)   h0, h_T (B, D, N)   y (T, B, D)

Public functions::

    selective_scan(x, delta, A, B, C, *, D=None, h0=None, return_state=False, backend=None)
    selective_ssm(x, params, *, h0=None, return_state=False, backend=None)
    init_params(d_model, d_state, *, rng) -> params (NumPy), PARAM_SHAPES

``backend=None`` picks Numba for NumPy input and Torch for tensors; ``"numpy"`` runs the
reference. Results have the input's type and dtype.
"""

from __future__ import annotations

from minirec._dispatch import Implementations, same_kind
from minirec._validate import Shapes, require_float, require_keys
from minirec.ssm.reference import PARAM_SHAPES, init_params

__all__ = ["selective_scan", "selective_ssm", "init_params", "PARAM_SHAPES", "SelectiveSSM"]

#: Where each step runs on each backend (minirec._dispatch: the choice, the conversion, the call).
#: The selection (Δ, B, C from x) is three products NumPy already does well.
IMPLEMENTATIONS = Implementations(__name__, {
    #                 numpy        numba        torch
    "selective_scan": ("reference", "numba_cpu", "torch_ops"),
    "ssm_inputs":     ("reference", "reference", "torch_ops"),
})


def __getattr__(name):
    if name == "SelectiveSSM":                                      # torch only when asked for
        from minirec.ssm.torch_ops import SelectiveSSM
        return SelectiveSSM
    raise AttributeError(f"module 'minirec.ssm' has no attribute {name!r}")


def _check(shapes, name, value, spec):
    return shapes.check(name, require_float(name, value), spec)


def _validate_scan(x, delta, A, B, C, D, h0):
    shapes = Shapes()
    x = _check(shapes, "x", x, ("T", "B", "D"))
    if x.shape[0] == 0:
        raise ValueError(f"x must have at least one time step: shape (T, B, D) with T >= 1; got "
                         f"{tuple(x.shape)}")
    delta = _check(shapes, "delta", delta, ("T", "B", "D"))
    A = _check(shapes, "A", A, ("D", "N"))
    B = _check(shapes, "B", B, ("T", "B", "N"))
    C = _check(shapes, "C", C, ("T", "B", "N"))
    D = None if D is None else _check(shapes, "D", D, ("D",))
    h0 = None if h0 is None else _check(shapes, "h0", h0, ("B", "D", "N"))
    same_kind([x, delta, A, B, C, D, h0])
    return x, delta, A, B, C, D, h0


def selective_scan(x, delta, A, B, C, *, D=None, h0=None, return_state=False, backend=None):
    """The selective scan: Ā_t = exp(Δ_t A), h_t = Ā_t ⊙ h_{t−1} + Δ_t B_t x_t,
    y_t = Σ_n h_t[..., n] C_t[n] + D ⊙ x_t.

    ``x, delta (T, B, D)`` (Δ > 0), ``A (D, N)`` (< 0 for a stable system), ``B, C (T, B, N)``,
    ``D (D,)`` or None (no skip), ``h0 (B, D, N)`` or None (zeros) → ``y (T, B, D)``, or
    ``(y, h_T (B, D, N))`` with ``return_state=True``.
    """
    x, delta, A, B, C, D, h0 = _validate_scan(x, delta, A, B, C, D, h0)
    backend = IMPLEMENTATIONS.pick(backend, x)
    y, h = IMPLEMENTATIONS.call(backend, "selective_scan", x, delta, A, B, C, D=D, h0=h0)
    return (y, h) if return_state else y


def selective_ssm(x, params, *, h0=None, return_state=False, backend=None):
    """The selective SSM layer: Δ = softplus(x W_Δᵀ + b_Δ), A = −e^{A_log}, B = x W_Bᵀ,
    C = x W_Cᵀ, then :func:`selective_scan` with the skip D.

    ``x (T, B, D)``; ``params``: a dict with the keys and shapes of :data:`PARAM_SHAPES`
    (``A_log (D, N)``, ``weight_delta (D, D)``, ``bias_delta (D,)``, ``weight_B, weight_C (N, D)``,
    ``D (D,)``), arrays of x's kind and dtype; ``h0 (B, D, N)`` or None → ``y (T, B, D)``, or
    ``(y, h_T)`` with ``return_state=True``.
    """
    require_keys("params", params, list(PARAM_SHAPES),
                 hint="minirec.ssm.init_params(d_model, d_state, rng=...) makes them")
    shapes = Shapes()
    x = _check(shapes, "x", x, ("T", "B", "D"))
    checked = {k: _check(shapes, f"params[{k!r}]", params[k], spec)
               for k, spec in PARAM_SHAPES.items()}
    if h0 is not None:
        h0 = _check(shapes, "h0", h0, ("B", "D", "N"))
    same_kind([x, h0, *checked.values()])
    backend = IMPLEMENTATIONS.pick(backend, x)
    y, h = IMPLEMENTATIONS.run(backend, _selective_ssm, x, checked, h0)
    return (y, h) if return_state else y


def _selective_ssm(impl, x, params, h0):
    """The layer on one backend (``impl``): the selection, then the scan → ``(y, h_T)``."""
    delta, A, B, C = impl.ssm_inputs(x, params)
    return impl.selective_scan(x, delta, A, B, C, D=params["D"], h0=h0)
