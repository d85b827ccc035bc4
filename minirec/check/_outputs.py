"""Turning a learner's result into named tensors (an Exercise's ``outputs``), and what a wrong
shape says about the code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from minirec.check._compare import Row, _fmt_shape
from minirec.check._exercise import Case, CheckFailed, Exercise
from minirec.check._traceback import OUTER_PRODUCT

__all__ = ["one_output", "pair_output", "dict_output"]


def _describe(result) -> str:
    """A result in words: ``a tuple of length 3``, ``one array of shape (2, 3)``."""
    if isinstance(result, (tuple, list)):
        return f"a {type(result).__name__} of length {len(result)}"
    if isinstance(result, np.ndarray):
        return f"one array of shape {result.shape}"
    return f"a {type(result).__name__}"


def one_output(name: str):
    """``outputs`` for a function that returns one array, compared as ``name``."""
    def outputs(result, case):
        if isinstance(result, (tuple, list, Mapping)):
            raise CheckFailed(f"the result must be one array {name}; got {_describe(result)}")
        return {name: result}
    return outputs


def pair_output(name: str, first: str, second: str, *, integer: Sequence[str] = ()):
    """``outputs`` for a function ``name`` that returns the pair ``(first, second)``. Integer
    arrays named in ``integer`` (indices) are converted to float64; they are compared exactly
    either way, since the reference's are integers (see :func:`compare`)."""
    def outputs(result, case):
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise CheckFailed(f"{name} must return the pair ({first}, {second}); "
                              f"got {_describe(result)}")
        out = {first: result[0], second: result[1]}
        for key in integer:
            if isinstance(out[key], np.ndarray) and np.issubdtype(out[key].dtype, np.integer):
                out[key] = out[key].astype(np.float64)
        return out
    return outputs


def dict_output(keys: Sequence[str]):
    """``outputs`` for a function that returns a dict with (at least) ``keys``; a missing key
    shows as missing in the table."""
    def outputs(result, case):
        if not isinstance(result, Mapping):
            raise CheckFailed(f"the result must be a dict with keys {', '.join(keys)}; "
                              f"got {type(result).__name__}")
        return {k: result.get(k) for k in keys if k in result}
    return outputs


def _shape_message(ex: Exercise, row: Row, case: Case) -> str:
    """What an output's wrong shape (or a missing output, or a value that is not an array) says
    about the code."""
    spec = ex.shapes.get(row.name)
    expected = _fmt_shape(row.expected_shape)
    if spec is not None:
        expected = f"{_fmt_shape(spec)} = {expected}"
    if row.got_shape is None:
        if row.got_kind == "missing":
            return (f"your result has no {row.name!r}: {ex.name} must return "
                    f"{', '.join(repr(k) for k in ex.shapes)}")
        return f"{row.name} should be an array of shape {expected}; got a {row.got_kind}"
    if row.got_shape != row.expected_shape:
        msg = f"{row.name} should have shape {expected}; yours has {_fmt_shape(row.got_shape)}"
        got, exp = row.got_shape, row.expected_shape
        if len(got) == len(exp) >= 2 and got == exp[::-1]:
            msg += ": it looks transposed"
        elif len(got) == len(exp) + 1 and got[1:] == exp:
            if got[0] == case.sizes.get("B"):
                msg += (": it keeps the batch axis — the gradient of a shared parameter is "
                        "summed over the batch (axis 0)")
            elif got[0] == case.sizes.get("T"):
                msg += (": it keeps a time axis — the gradient of a shared parameter is "
                        "summed over the time steps")
            else:
                msg += f": it has an extra leading axis of size {got[0]}"
        elif len(exp) == len(got) + 1 and exp[1:] == got:
            axis = f"{spec[0]} = {exp[0]}" if spec else f"of size {exp[0]}"
            msg += (f": its leading axis ({axis}) is missing — keep one slice per index along "
                    f"it, not a single slice or their sum")
        elif len(exp) == 2 and got == ():
            msg += f": one number where a matrix belongs — {OUTER_PRODUCT}, or a sum over every axis"
        hint = ex.shape_hints.get(row.name)
        return msg + (f". {hint}" if hint else "")
    return f"{row.name} has dtype {row.got_dtype}, not a number"
