"""What a check is made of: its exceptions (defined in the leaf :mod:`minirec._errors`), the
cases it runs, the suspects it matches and the :class:`Exercise` that holds them; running a
function on a copy of a case's arguments, and finding the arguments it changed in place."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minirec._errors import CheckFailed, NotAttempted

__all__ = ["CheckFailed", "NotAttempted", "Case", "Suspect", "Exercise"]


@dataclass(frozen=True)
class Case:
    """One set of arguments for the learner's function. ``sizes`` names the symbols of the
    case (``{"B": 3, "D": 5, "H": 7}``): they label the case and resolve symbolic shapes."""

    args: tuple
    sizes: Mapping[str, int]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.sizes.items())


@dataclass(frozen=True)
class Suspect:
    """A known wrong variant of an exercise: ``fn`` has the learner's signature, ``message``
    says what is wrong in the learner's terms."""

    message: str
    fn: Callable


@dataclass(frozen=True)
class Exercise:
    """Everything a check needs.

    - ``outputs(result, case)`` turns a return value into named tensors (a dict), or raises
      :class:`CheckFailed` with a message when its structure is wrong (not a pair, not a dict);
    - ``shapes`` gives each output's symbolic shape, e.g. ``{"h_new": ("B", "H")}``;
    - ``matmul_hint`` (a string, or a function of the case) is appended to the diagnosis of a
      matrix product with mismatched shapes; ``shape_hints`` to that of an output's wrong shape;
    - ``weights``: the exercise multiplies by weight matrices, so that a mismatched product may
      be a transposed weight (without weights the diagnosis names the operands' shapes);
    - ``tolerances`` gives outputs their own ``(rtol, atol)``, e.g. a metric that a float32
      computation may give: ``{"accuracy": (1e-6, 0.0)}``;
    - ``calls`` names the learner's earlier functions that this one may call, each with its
      reference, e.g. ``{"linear_memory_grad": reference.linear_memory_grad}``: a failure says
      which of them produced the first wrong value.
    """

    name: str
    reference: Callable
    cases: Sequence[Case]
    suspects: Sequence[Suspect]
    outputs: Callable[[Any, Case], dict]
    shapes: Mapping[str, tuple]
    arg_names: tuple[str, ...]
    matmul_hint: str | Callable[[Case], str] = ""
    shape_hints: Mapping[str, str] = field(default_factory=dict)
    weights: bool = False
    tolerances: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    calls: Mapping[str, Callable] = field(default_factory=dict)


def _copy(value):
    """Deep copy of nested arrays / tuples / dicts, so that a function cannot alter a case."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    return value


def _changed(before, after, path: str) -> list[str]:
    """Paths of the arrays in ``after`` that differ from ``before`` (an in-place change)."""
    if isinstance(before, np.ndarray):
        same = (isinstance(after, np.ndarray) and after.shape == before.shape
                and np.array_equal(after, before, equal_nan=True))
        return [] if same else [path]
    if isinstance(before, dict):
        out = []
        for k in before:
            out += _changed(before[k], after.get(k) if isinstance(after, dict) else None,
                            f"{path}[{k!r}]")
        return out
    if isinstance(before, (tuple, list)):
        out = []
        for i, b in enumerate(before):
            a = after[i] if isinstance(after, (tuple, list)) and i < len(after) else None
            out += _changed(b, a, f"{path}[{i}]")
        return out
    return []


def _run(fn, case: Case):
    """``fn`` on a copy of the case's arguments: (its result, the copy, as ``fn`` left it)."""
    args = _copy(case.args)
    return fn(*args), args
