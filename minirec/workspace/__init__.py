"""A global workspace that chains modules to add numbers (paper #34, lesson 08).

Modules propose a new workspace; gates choose which proposal is written; an LSTM controller
(lesson 01's cell, from :mod:`minirec.cells`) sets the gates step by step. In this folder:

- ``reference.py``    NumPy, the equations in the code: the specification;
- ``torch_ops.py``    the same maths in torch, and the trainable :class:`GlobalWorkspace` (soft
  gates in training, hard gates at test, any device) and the :class:`DirectLSTM` baseline;
- ``experiments.py``  the addition toy: data split, training loops, accuracy.

There is no ``numba_cpu.py``: one step is three products of ``(B, 1)`` by ``(B, N)`` and an LSTM
step on a state of a few dozen numbers, K ≈ 10 times. Nothing here is a loop over many cheap
elements that a compiler would speed up: NumPy already does each step in a handful of calls, and
the model that learns runs in torch for autograd. ``backend=None`` therefore runs the reference
for NumPy input and torch for tensors.

Shapes (N digits, B batch, K steps, M = 3 modules in the order :data:`MODULES`)::

    w (B, N)   a_onehot (B, N)   gates (B, M)   program (K, B, M)   a, b (B,) integer digits
    run_program / controller_run → workspace (K + 1, B, N)   (gates, logits (K, B, M))

Gates and workspaces are float32 or float64; digits are integers (a float digit is refused).
"""

from __future__ import annotations

import numpy as np

from minirec._dispatch import Implementations, numpy_dtype, same_kind
from minirec._validate import Shapes, is_torch, require_float, require_keys, require_positive_int
from minirec.workspace import reference
from minirec.workspace.reference import (
    CONTROLLER_KEYS,
    INCREMENT,
    INPUT,
    MODULES,
    OUTPUT,
    blank_workspace,
    controller_input_size,
    init_controller_params,
)

__all__ = [
    "workspace_write", "run_program", "hand_set_program", "add", "controller_run",
    "MODULES", "INPUT", "INCREMENT", "OUTPUT", "CONTROLLER_KEYS",
    "one_hot", "blank_workspace", "read_out", "init_controller_params", "controller_input_size",
    "GlobalWorkspace", "DirectLSTM",
]

M = len(MODULES)

#: Where each step runs on each backend (minirec._dispatch: the choice, the conversion, the call).
#: No Numba column: ``backend=None`` runs the reference for NumPy input (see above).
IMPLEMENTATIONS = Implementations(__name__, {
    #                  numpy        torch
    "workspace_write": ("reference", "torch_ops"),
    "run_program":     ("reference", "torch_ops"),
    "controller_run":  ("reference", "torch_ops"),
}, backends=("numpy", "torch"))


def __getattr__(name):
    if name in ("GlobalWorkspace", "DirectLSTM"):                   # torch only when asked for
        from minirec.workspace import torch_ops
        return getattr(torch_ops, name)
    raise AttributeError(f"module 'minirec.workspace' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _digits(name: str, value, high: int, shapes: Shapes, what: str):
    """An integer array (or tensor) of shape (B,) with values in [0, high), as NumPy. Digits
    are data, not parameters: NumPy digits with torch gates or params (and the reverse) are
    taken, as they select one-hot rows in the gates' kind."""
    if is_torch(value):
        if value.dtype.is_floating_point or value.dtype.is_complex or str(value.dtype) == "torch.bool":
            raise TypeError(f"{name} must be an integer tensor of digits, shape (B,); "
                            f"got dtype {str(value.dtype).replace('torch.', '')}")
        arr = value.detach().cpu().numpy()
    else:
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array of digits, shape (B,); "
                            f"got dtype {arr.dtype}")
    shapes.check(name, arr, ("B",))
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        raise ValueError(f"{name} must hold {what} in [0, {high}); got values from {arr.min()} "
                         f"to {arr.max()}")
    return arr


def _positive(name, value, low=1):
    value = require_positive_int(name, value)
    if value < low:
        raise ValueError(f"{name} must be at least {low}; got {value}")
    return value


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

def workspace_write(w, gates, a_onehot, *, backend=None):
    """One gated write, ``w_new = Σ_m gates[:, m] · M_m(w)`` with the modules input, increment,
    output. ``w (B, N)``, ``gates (B, M)``, ``a_onehot (B, N)`` → ``(B, N)``."""
    shapes = Shapes()
    w = shapes.check("w", require_float("w", w), ("B", "N"))
    gates = shapes.check("gates", require_float("gates", gates), ("B", M))
    a_onehot = shapes.check("a_onehot", require_float("a_onehot", a_onehot), ("B", "N"))
    same_kind([w, gates, a_onehot])
    return IMPLEMENTATIONS.call(IMPLEMENTATIONS.pick(backend, w), "workspace_write", w, gates,
                                a_onehot)


def run_program(a, program, *, n_digits: int, backend=None):
    """Run a gate program from the blank workspace: ``a (B,)`` integer digits, ``program (K, B,
    M)`` gates → the workspace after every step, ``(K + 1, B, N)`` (``[0]`` is the blank one)."""
    n_digits = _positive("n_digits", n_digits, 2)
    shapes = Shapes()
    program = shapes.check("program", require_float("program", program), ("K", "B", M))
    a = _digits("a", a, n_digits, shapes, "digits")
    backend = IMPLEMENTATIONS.pick(backend, program)
    a_onehot = reference.one_hot(a, n_digits, numpy_dtype(program))
    return IMPLEMENTATIONS.call(backend, "run_program", a_onehot, program)


def hand_set_program(b, n_steps: int, dtype=np.float64):
    """The gate program that adds b: input at step 0, increment at steps 1 … b, output at the
    rest. ``b (B,)`` integers in [0, K − 1), ``K = n_steps ≥ 2`` → ``(K, B, M)`` one-hot gates
    (NumPy)."""
    n_steps = _positive("n_steps", n_steps, 2)
    b = _digits("b", b, n_steps - 1, Shapes(), "second addends (at most n_steps − 2: one input "
                "step, b increments, at least one output step)")
    return reference.hand_set_program(b, n_steps, dtype)


def add(a, b, *, n_digits: int, n_steps: int):
    """a + b mod N, computed by the workspace under :func:`hand_set_program`: ``(B,)`` integers."""
    n_digits = _positive("n_digits", n_digits, 2)
    n_steps = _positive("n_steps", n_steps, 2)
    shapes = Shapes()
    a = _digits("a", a, n_digits, shapes, "digits")
    b = _digits("b", b, n_steps - 1, shapes, "second addends (at most n_steps − 2)")
    program = hand_set_program(b, n_steps)
    return reference.read_out(run_program(a, program, n_digits=n_digits, backend="numpy")[-1])


def one_hot(digits, n_digits: int, dtype=np.float64):
    """``digits (B,)`` integers in [0, N) → ``(B, N)`` one-hot rows of ``dtype`` (NumPy)."""
    n_digits = _positive("n_digits", n_digits)
    digits = _digits("digits", digits, n_digits, Shapes(), "digits")
    return reference.one_hot(digits, n_digits, dtype)


def read_out(w):
    """The digit a workspace holds: ``argmax_j w[:, j]``: ``w (B, N)`` → ``(B,)`` integers, of
    w's kind (NumPy or torch)."""
    w = Shapes().check("w", require_float("w", w), ("B", "N"))
    if w.shape[1] == 0:
        raise ValueError("w must have at least one digit: shape (B, N) with N >= 1; got "
                         f"{tuple(w.shape)}")
    return w.argmax(-1) if is_torch(w) else reference.read_out(w)


def controller_run(a, b, params, *, n_digits: int, n_steps: int, hard: bool = True,
                   reads_workspace: bool = False, backend=None):
    """The global-workspace model with the LSTM controller ``params`` (keys
    :data:`CONTROLLER_KEYS`, lesson 01's LSTM names plus ``weight_out (M, H)``, ``bias_out
    (M,)``): ``a, b (B,)`` integer digits → ``(workspace (K + 1, B, N), gates (K, B, M), logits
    (K, B, M))``. ``hard=True``: onehot(argmax) gates; ``False``: softmax gates. The controller
    reads the cue b, and the workspace too when ``reads_workspace``."""
    n_digits = _positive("n_digits", n_digits, 2)
    n_steps = _positive("n_steps", n_steps, 2)
    require_keys("params", params, CONTROLLER_KEYS,
                 hint="GlobalWorkspace.params() or init_controller_params(...) make one")
    p = {k: require_float(f"params[{k!r}]", params[k]) for k in CONTROLLER_KEYS}
    C = controller_input_size(n_digits, reads_workspace)
    shapes = Shapes()
    shapes.sizes["C"], shapes.bound_by["C"] = C, ("n_digits + 1 (reads_workspace=True)"
                                                 if reads_workspace else "reads_workspace=False")
    shapes.check("params['weight_hh']", p["weight_hh"], ((4, "H"), "H"))
    shapes.check("params['weight_ih']", p["weight_ih"], ((4, "H"), "C"))
    shapes.check("params['bias_ih']", p["bias_ih"], ((4, "H"),))
    shapes.check("params['bias_hh']", p["bias_hh"], ((4, "H"),))
    shapes.check("params['weight_out']", p["weight_out"], (M, "H"))
    shapes.check("params['bias_out']", p["bias_out"], (M,))
    same_kind(list(p.values()))
    a = _digits("a", a, n_digits, shapes, "digits")
    b = _digits("b", b, n_steps - 1, shapes, "second addends (at most n_steps − 2)")
    like = p["weight_ih"]
    backend = IMPLEMENTATIONS.pick(backend, like)
    a_onehot = reference.one_hot(a, n_digits, numpy_dtype(like))
    cue = reference.cue_of(b, numpy_dtype(like))
    return tuple(IMPLEMENTATIONS.call(backend, "controller_run", a_onehot, cue, p, n_steps,
                                      hard=hard, reads_workspace=reads_workspace))
