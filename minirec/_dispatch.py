"""How a public function reaches a backend: the choice, the conversion, the call.

Each mechanism's ``__init__.py`` checks its inputs, then hands the call to its table of
implementations (:class:`Implementations`), one row per kernel, one column per backend::

    IMPLEMENTATIONS = Implementations(__name__, {
        #                  numpy        numba        torch
        "rnn_forward":    ("reference", "numba_cpu", "torch_ops"),
        "aaren_scores":   ("reference", "reference", "torch_ops"),    # no Numba kernel
    })
    backend = IMPLEMENTATIONS.pick(backend, x)
    outputs, h_T = IMPLEMENTATIONS.call(backend, "rnn_forward", x, h0, params)

An entry names the module of the mechanism's package that runs the kernel (the function of the
row's name), or ``"module.function"`` where the name differs. **A backend with no implementation
of its own names the reference** in its column: that is the one way to say "Numba has nothing
to compile here, run the NumPy reference". Modules are imported on the first call, so importing
a mechanism imports neither torch nor Numba.

The rules of :meth:`Implementations.call` (and :meth:`~Implementations.run`, for a public
function that chains several kernels on one backend):

- ``backend=None`` picks Numba for NumPy input (the reference where the table has no Numba
  column) and Torch for tensors; ``"numpy"`` runs the reference; tensors need ``"torch"``.
- On the torch backend, NumPy arrays anywhere in the arguments (nested in tuples, lists, dicts,
  named tuples, dataclasses) become tensors of the same dtype and memory, on the device of the
  tensor arguments (the CPU when there are none). If no argument was a tensor, every tensor in
  the result comes back as a NumPy array, again in its dtype. The conversion happens once each
  way, around the whole call.
- Where the Torch implementation on a CPU is itself a NumPy kernel (``torch_on_numpy``: the
  linear recurrence runs minirec's compiled Numba scan on the tensors' memory), NumPy input on
  the torch backend calls that kernel directly, without crossing to tensors and back.

Inputs must all be one kind (NumPy or torch) and one floating dtype (:func:`same_kind`).
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import warnings

import numpy as np

from minirec._validate import is_torch

__all__ = ["BACKENDS", "Implementations", "numpy_dtype", "pick_backend", "same_kind", "to_numpy",
           "to_torch"]

BACKENDS = ("numpy", "numba", "torch")
#: The modules a table entry may name, in each mechanism's package.
MODULES = ("reference", "numba_cpu", "torch_ops", "numba_cuda")
#: The dtypes the compiled kernels take (a ``torch_on_numpy`` kernel runs only for these).
COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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
    """The backend to run for input ``x``: ``backend`` checked, or the default for x's kind
    (Torch for tensors; Numba for NumPy arrays, or the reference where ``backends`` has no
    Numba)."""
    if backend is None:
        if is_torch(x):
            return "torch"
        return "numba" if "numba" in backends else "numpy"
    if backend not in backends:
        raise ValueError(f"backend must be one of {tuple(backends)} or None; got {backend!r}")
    if is_torch(x) and backend != "torch":
        raise TypeError(f"torch tensors need backend='torch' (or None); got backend={backend!r}")
    return backend


def numpy_dtype(x) -> np.dtype:
    """``x``'s dtype as a NumPy dtype (a tensor's ``torch.float32`` → ``float32``), for an array
    an ``__init__`` builds beside its inputs (a one-hot, a constant gate)."""
    name = str(x.dtype).removeprefix("torch.")
    try:
        return np.dtype(name)
    except TypeError:
        raise TypeError(f"dtype {name} has no NumPy equivalent; minirec supports float32 and "
                        "float64") from None


# --------------------------------------------------------------------------------------------
# NumPy ↔ Torch, both ways, through nested containers
# --------------------------------------------------------------------------------------------

def _map_leaves(fn, tree):
    """``tree`` with ``fn`` applied to every leaf: the same tuples (named ones too), lists,
    dicts and dataclass instances around the results."""
    if isinstance(tree, np.ndarray):
        return fn(tree)
    if isinstance(tree, dict):
        return {key: _map_leaves(fn, value) for key, value in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_make"):                     # a NamedTuple
        return tree._make(_map_leaves(fn, value) for value in tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_map_leaves(fn, value) for value in tree)
    if _is_dataclass_instance(tree):
        return dataclasses.replace(tree, **{f.name: _map_leaves(fn, getattr(tree, f.name))
                                            for f in dataclasses.fields(tree) if f.init})
    return fn(tree)


def _is_dataclass_instance(value) -> bool:
    return hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type)


def _leaves(tree):
    """Every leaf of ``tree``, in the order :func:`_map_leaves` visits them (a walk that builds
    nothing: it runs on every call)."""
    if isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    if isinstance(tree, (tuple, list)):
        return [leaf for value in tree for leaf in _leaves(value)]
    if _is_dataclass_instance(tree):
        return [leaf for f in dataclasses.fields(tree) if f.init
                for leaf in _leaves(getattr(tree, f.name))]
    return [tree]


def _tensor_of(array, device):
    """A NumPy array as a tensor of the same dtype: its own memory on the CPU (a copy where
    torch cannot share it: negative strides)."""
    import torch

    if any(stride < 0 for stride in array.strides):
        array = array.copy()
    if array.flags.writeable:
        tensor = torch.from_numpy(array)
    else:
        with warnings.catch_warnings():
            # a read-only array (np.broadcast_to) is shared as it is: minirec's torch ops never
            # write to their inputs (tests/test_no_mutation.py)
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensor = torch.from_numpy(array)
    return tensor if device is None else tensor.to(device)


def to_torch(tree, device=None):
    """Every NumPy array in ``tree`` as a tensor of its dtype (on ``device``; the CPU, sharing
    the array's memory, when None); everything else unchanged."""
    return _map_leaves(lambda x: _tensor_of(x, device) if isinstance(x, np.ndarray) else x, tree)


def to_numpy(tree):
    """Every tensor in ``tree`` as a NumPy array of its dtype (detached, on the CPU)."""
    return _map_leaves(lambda x: x.detach().cpu().numpy() if is_torch(x) else x, tree)


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

class _Backend:
    """The functions of one backend, by kernel name: ``impl.aaren_scores(q, k)``."""

    def __init__(self, table, backend):
        self._table, self._backend = table, backend

    def __getattr__(self, name):
        return self._table.function(self._backend, name)


class Implementations:
    """One mechanism's implementations: ``rows`` maps a kernel's name to one entry per backend
    (in the order of ``backends``), each a module of ``package`` (``"reference"``,
    ``"numba_cpu"``, ``"torch_ops"``, ``"numba_cuda"``) or ``"module.function"``.
    ``torch_on_numpy`` maps a kernel to the NumPy-array kernel that its Torch implementation runs
    on a CPU (see the module docstring)."""

    def __init__(self, package: str, rows: dict, *, backends=BACKENDS, torch_on_numpy=None):
        self.package, self.backends = package, tuple(backends)
        self.rows = {name: dict(zip(self.backends, self._checked(name, entries)))
                     for name, entries in rows.items()}
        self.torch_on_numpy = dict(torch_on_numpy or {})
        for name, entry in self.torch_on_numpy.items():
            if name not in self.rows:
                raise ValueError(f"torch_on_numpy names {name!r}, which has no row")
            self._target(name, entry)

    def _checked(self, name, entries):
        if not (isinstance(entries, tuple) and len(entries) == len(self.backends)):
            raise ValueError(f"row {name!r} must give one entry per backend {self.backends}; "
                             f"got {entries!r}")
        for entry in entries:
            self._target(name, entry)
        return entries

    def _target(self, name, entry):
        """``(module, function)`` that ``entry`` of row ``name`` names."""
        module, _, function = entry.partition(".")
        if module not in MODULES:
            raise ValueError(f"row {name!r}: {entry!r} must name one of the modules {MODULES}")
        return module, function or name

    def pick(self, backend, like) -> str:
        """The backend to run: ``backend`` checked against the table's backends, or the default
        for ``like``'s kind (:func:`pick_backend`)."""
        return pick_backend(backend, like, self.backends)

    def function(self, backend, name):
        """The function that runs kernel ``name`` on ``backend`` (imported on first use)."""
        return self._resolve(name, self.rows[name][backend])

    def _resolve(self, name, entry):
        """The function ``entry`` names, looked up on its module at each call (so that a
        monkeypatched kernel is the one that runs)."""
        module, function = self._target(name, entry)
        module = f"{self.package}.{module}"
        return getattr(sys.modules.get(module) or importlib.import_module(module), function)

    def call(self, backend, name, *args, **kwargs):
        """Kernel ``name`` on ``backend`` (a name :meth:`pick` returned), the arguments and the
        result converted as the module docstring says."""
        if backend == "torch" and name in self.torch_on_numpy and _numpy_compiled(args, kwargs):
            return self._resolve(name, self.torch_on_numpy[name])(*args, **kwargs)
        return self.run(backend, _kernel(name), *args, **kwargs)

    def run(self, backend, chain, *args, **kwargs):
        """``chain(impl, *args, **kwargs)`` with ``impl.<kernel>`` the backend's functions: a
        public function that runs several kernels, converted once around all of them."""
        impl = _Backend(self, backend)
        if backend != "torch":
            return chain(impl, *args, **kwargs)
        leaves = _leaves((args, kwargs))
        if not any(isinstance(x, np.ndarray) for x in leaves):
            return chain(impl, *args, **kwargs)
        tensor = next((x for x in leaves if is_torch(x)), None)
        if tensor is not None:                       # tensors in: arrays built beside them follow
            args, kwargs = to_torch((args, kwargs), tensor.device)
            return chain(impl, *args, **kwargs)
        args, kwargs = to_torch((args, kwargs))
        return to_numpy(chain(impl, *args, **kwargs))


def _kernel(name):
    """The chain of one kernel: ``impl.<name>(*args, **kwargs)``."""
    return lambda impl, *args, **kwargs: getattr(impl, name)(*args, **kwargs)


def _numpy_compiled(args, kwargs) -> bool:
    """True when the arguments hold no tensor and every NumPy array is one the compiled kernels
    take (float32 or float64)."""
    leaves = _leaves((args, kwargs))
    arrays = [x for x in leaves if isinstance(x, np.ndarray)]
    return (not any(is_torch(x) for x in leaves) and bool(arrays)
            and all(x.dtype in COMPILED_DTYPES for x in arrays))
