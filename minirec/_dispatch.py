"""Backend choice shared by every mechanism's public functions.

``backend=None`` picks Numba for NumPy input and Torch for tensors; ``"numpy"`` runs the
reference. Inputs must all be one kind (NumPy or torch) and one floating dtype.
"""

from __future__ import annotations

import importlib

from minirec._validate import is_torch

__all__ = ["BACKENDS", "backend_module", "pick_backend", "same_kind"]

BACKENDS = ("numpy", "numba", "torch")
_MODULES = {"numpy": "reference", "numba": "numba_cpu", "torch": "torch_ops"}


def same_kind(arrays):
    """Raise TypeError unless the arrays (``None`` entries skipped) are all NumPy or all torch,
    with one dtype."""
    arrays = [a for a in arrays if a is not None]
    if len({is_torch(a) for a in arrays}) > 1:
        raise TypeError("mix of NumPy arrays and torch tensors: pass all inputs as one kind")
    dtypes = {str(a.dtype) for a in arrays}
    if len(dtypes) > 1:
        raise TypeError(f"inputs must share one floating dtype; got {sorted(dtypes)}")


def pick_backend(backend, x, backends=BACKENDS):
    """The backend to run for input ``x``: ``backend`` checked, or the default for x's kind."""
    if backend is None:
        return "torch" if is_torch(x) else "numba"
    if backend not in backends:
        raise ValueError(f"backend must be one of {tuple(backends)} or None; got {backend!r}")
    if is_torch(x) and backend != "torch":
        raise TypeError(f"torch tensors need backend='torch' (or None); got backend={backend!r}")
    return backend


def backend_module(package: str, backend: str):
    """``minirec.<package>.reference | numba_cpu | torch_ops`` for ``backend``."""
    return importlib.import_module(f"minirec.{package}.{_MODULES[backend]}")
