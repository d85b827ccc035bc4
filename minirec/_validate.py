"""Input validation shared by every mechanism.

A bad input should fail at the door with a message that names the argument, the shape that was
expected (in the package's symbols, e.g. ``(T, B, D)``) and what was received, not as a
broadcasting error or a Numba typing dump three calls deep.

:class:`Shapes` binds symbolic sizes as arguments are checked, so that a mismatch is reported
against the argument that fixed the size first::

    shapes = Shapes()
    shapes.check("x", x, ("T", "B", "D"))
    shapes.check("h0", h0, ("B", "H"))     # B must agree with x
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["SUPPORTED_DTYPES", "Shapes", "batch_names", "is_torch", "require_float",
           "require_generator", "require_integer", "require_keys", "require_positive_int"]


def is_torch(value) -> bool:
    """True when ``value`` is a ``torch.Tensor`` (without importing torch when it is not)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _dtype_name(value) -> str:
    return str(value.dtype).replace("torch.", "")


SUPPORTED_DTYPES = ("float32", "float64")


def require_float(name: str, value):
    """Return ``value`` as a float32 or float64 array (NumPy) or tensor (torch), or raise
    TypeError naming ``name``, its dtype and the supported ones.

    Lists are converted with ``np.asarray``. Integer and boolean arrays are refused rather than
    silently promoted: an integer input to a recurrent cell is almost always a bug (token ids
    where embeddings were meant). float16, bfloat16 and complex are refused the same way in
    every mechanism (the convention sheet, rule 6): a recurrence over many steps in half
    precision is not what these kernels are written or tested for.
    """
    if is_torch(value):
        kind = "tensor"
    else:
        value = np.asarray(value)
        kind = "array"
    if _dtype_name(value) not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must be a floating-point {kind} (float32 or float64); "
                        f"got dtype {_dtype_name(value)}")
    return value


def require_integer(name: str, value):
    """Return ``value`` as an integer array (NumPy) or tensor (torch), or raise TypeError naming
    ``name`` and its dtype. Lists are converted with ``np.asarray``; floats holding whole numbers
    and booleans are refused (token ids, indices and counts are integers)."""
    if not is_torch(value):
        value = np.asarray(value)
    dtype = _dtype_name(value)
    if not (dtype.startswith("int") or dtype.startswith("uint")):
        kind = "tensor" if is_torch(value) else "array"
        raise TypeError(f"{name} must be an integer {kind} (token ids, indices); got dtype {dtype}")
    return value


def require_generator(name: str, rng) -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``; the legacy ``np.random`` module and
    ``RandomState`` are refused (rule 8 of the convention sheet: randomness is explicit)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)); "
                        f"got {type(rng).__name__}")
    return rng


def require_keys(name: str, mapping, keys: Sequence[str], hint: str = ""):
    """Raise if ``mapping`` is not a mapping holding every one of ``keys``."""
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"{name} must be a dict of arrays keyed by {list(keys)}; got {type(mapping).__name__}"
        )
    missing = [k for k in keys if k not in mapping]
    if missing:
        msg = f"{name} is missing {missing}; expected keys {list(keys)}, got {sorted(mapping)}"
        raise ValueError(msg + (f". {hint}" if hint else ""))


def require_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _fmt(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + (",)" if len(dims) == 1 else ")")


def batch_names(n: int) -> tuple[str, ...]:
    """Symbols of ``n`` batch axes: ``("B",)``, or ``("B1", "B2", ...)``."""
    return ("B",) if n == 1 else tuple(f"B{i + 1}" for i in range(n))


class Shapes:
    """Checks arrays against symbolic shapes and remembers what each symbol was bound to.

    A symbol is a string (``"T"``, ``"B"``) or an expression over bound symbols written as a
    ``(factor, symbol)`` pair, e.g. ``(3, "H")`` for the stacked gates of a GRU. An int is a
    literal size.
    """

    def __init__(self):
        self.sizes: dict[str, int] = {}
        self.bound_by: dict[str, str] = {}
        self.batch: int | None = None          # how many batch axes (check_batched)
        self.batch_from: str | None = None     # the argument that fixed it

    def _expected(self, spec) -> str:
        names = []
        for s in spec:
            if isinstance(s, tuple):
                names.append(f"{s[0]}*{s[1]}")
            else:
                names.append(str(s))
        return _fmt(names)

    def _resolved(self, spec) -> str:
        out = []
        for s in spec:
            if isinstance(s, tuple):
                k, sym = s
                out.append(k * self.sizes[sym] if sym in self.sizes else f"{k}*{sym}")
            elif isinstance(s, str):
                out.append(self.sizes.get(s, s))
            else:
                out.append(s)
        return _fmt(out)

    def check_batched(self, name: str, value, head: Sequence, tail: Sequence):
        """Check ``value`` against ``(*head, ..., *tail)``, where ``...`` is any number of batch
        axes: the first array checked fixes how many (named B, or B1, B2, ...) and their sizes;
        every later one must have the same. A mismatch names both arguments."""
        n = len(value.shape) - len(head) - len(tail)
        if n < 0:
            raise ValueError(
                f"{name} must have shape {_fmt([*head, '...', *tail])} with at least "
                f"{len(head) + len(tail)} dimensions; got shape {_fmt(tuple(value.shape))}")
        if self.batch is None:
            self.batch, self.batch_from = n, name
        spec = (*head, *batch_names(self.batch), *tail)
        if n != self.batch:
            raise ValueError(
                f"{name} must have shape {self._expected(spec)}: {self.batch} batch "
                f"{'axis' if self.batch == 1 else 'axes'}, as {self.batch_from} "
                f"{_fmt(self._batch_sizes())} has; got shape "
                f"{_fmt(tuple(value.shape))}")
        return self.check(name, value, spec)

    def _batch_sizes(self):
        return [self.sizes.get(s, s) for s in batch_names(self.batch)] if self.batch else []

    def check(self, name: str, value, spec: Sequence):
        """Check ``value`` (already an array or tensor) against ``spec``; return it unchanged."""
        shape = tuple(value.shape)
        if len(shape) != len(spec):
            raise ValueError(
                f"{name} must have {len(spec)} dimensions {self._expected(spec)}; "
                f"got shape {_fmt(shape)}"
            )
        for axis, (s, n) in enumerate(zip(spec, shape)):
            if isinstance(s, int):
                want, sym = s, None
            elif isinstance(s, tuple):
                k, sym = s
                if sym not in self.sizes:
                    if n % k:
                        raise ValueError(
                            f"{name} must have shape {self._expected(spec)}: axis {axis} has "
                            f"size {n}, not a multiple of {k}"
                        )
                    self.sizes[sym], self.bound_by[sym] = n // k, name
                want = k * self.sizes[sym]
            else:
                sym = s
                if sym not in self.sizes:
                    self.sizes[sym], self.bound_by[sym] = n, name
                want = self.sizes[sym]
            if n != want:
                origin = f" ({sym}={self.sizes[sym]} from {self.bound_by[sym]})" if sym else ""
                raise ValueError(
                    f"{name} must have shape {self._expected(spec)} = {self._resolved(spec)}"
                    f"{origin}; got {_fmt(shape)}"
                )
        return value
