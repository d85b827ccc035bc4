"""The learner's earlier functions that an exercise calls (``Exercise.calls``): while a check
runs, each is wrapped so that a failure can say which of them produced the first wrong value."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from minirec.check._compare import _as_array, bad_mask
from minirec.check._exercise import _copy

__all__ = ["recording_calls", "calls_diagnosis"]


def _same_values(expected, actual) -> bool:
    """Nested arrays / numbers (tuples, lists, dicts of them) equal to the check's tolerance."""
    if isinstance(expected, Mapping):
        return (isinstance(actual, Mapping) and set(expected) <= set(actual)
                and all(_same_values(v, actual[k]) for k, v in expected.items()))
    if isinstance(expected, (tuple, list)):
        return (isinstance(actual, (tuple, list)) and len(actual) == len(expected)
                and all(_same_values(e, a) for e, a in zip(expected, actual, strict=True)))
    e = _as_array(expected)
    if e is None:
        return True                                   # not a value the check compares
    a = _as_array(actual)
    return (a is not None and a.shape == e.shape
            and not bad_mask(np.asarray(e, dtype=np.float64), np.asarray(a, dtype=np.float64)).any())


def _recorder(name: str, original: Callable, reference: Callable, wrong: list[str]) -> Callable:
    """``original`` (the learner's function), which also runs ``reference`` on a copy of the
    same arguments and appends ``name`` to ``wrong`` when the two results differ."""
    @functools.wraps(original)
    def recorded(*args, **kwargs):
        copies = _copy(args), _copy(kwargs)
        result = original(*args, **kwargs)
        try:
            expected = reference(*copies[0], **copies[1])
        except Exception:  # noqa: BLE001 - arguments the reference refuses: no verdict
            return result
        if not _same_values(expected, result) and name not in wrong:
            wrong.append(name)
        return result
    return recorded


@contextmanager
def recording_calls(fn: Callable, calls: Mapping[str, Callable]) -> Iterator[list[str]]:
    """While active, each learner function named in ``calls`` and found in ``fn``'s globals (a
    notebook's namespace) is replaced by a :func:`_recorder`; yields the list of the names whose
    result was wrong, in the order found. The learner's functions are put back afterwards,
    even on error."""
    wrong: list[str] = []
    namespace = getattr(inspect.unwrap(fn), "__globals__", None)
    saved: dict[str, Any] = {}
    if isinstance(namespace, dict):
        for name, reference in calls.items():
            original = namespace.get(name)
            if callable(original) and original is not reference:
                saved[name] = original
                namespace[name] = _recorder(name, original, reference, wrong)
    try:
        yield wrong
    finally:
        for name, original in saved.items():
            namespace[name] = original


def calls_diagnosis(name: str, fn_name: str) -> str:
    """The diagnosis that blames the learner's earlier function ``name``."""
    return (f"the first wrong value came from your {name} (called by {fn_name}): fix it first "
            f"— check_{name} shows how")
