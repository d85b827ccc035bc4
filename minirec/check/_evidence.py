"""The evidence the relation detectors look at: for every case, each output tensor the learner
returned with the right shape, beside the expected one (:class:`_Pair`, :class:`_Evidence`), and
the small tools every detector uses (closeness, scale, the arrays and scalars of an argument)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from minirec.check._compare import ATOL, RTOL, _as_array, compare
from minirec.check._exercise import Exercise

__all__ = ["evidence"]


@dataclass(frozen=True)
class _Pair:
    """One output tensor on one case, where the learner returned it with the right shape."""

    case_no: int
    name: str
    expected: np.ndarray       # float64
    got: np.ndarray            # float64
    got_dtype: str
    ok: bool


@dataclass(frozen=True)
class _Evidence:
    """What the detectors look at: the exercise, the expected and the learner's outputs of
    every case (a dict, an exception, or None where not compared) and their pairs."""

    ex: Exercise
    expected: Sequence[dict]
    learner: Sequence[dict | BaseException | None]
    pairs: tuple[_Pair, ...]

    @property
    def wrong(self) -> list[_Pair]:
        return [p for p in self.pairs if not p.ok]

    def names(self, pairs: Sequence[_Pair]) -> str:
        """The tensors' names, each once: ``M_new`` or ``M_new and S_new``."""
        names = list(dict.fromkeys(p.name for p in pairs))
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def case_ok(self, i: int) -> bool | None:
        """Whether the learner's function was right on case i (None: not compared)."""
        mine = self.learner[i]
        if mine is None:
            return None
        if isinstance(mine, BaseException):
            return False
        return compare(self.expected[i], mine, tolerances=self.ex.tolerances).ok


def evidence(ex: Exercise, expected: Sequence[dict],
              learner: Sequence[dict | BaseException | None]) -> _Evidence:
    """The evidence of every case: a pair for each output the learner returned with the right
    shape."""
    pairs = []
    for i, (exp, mine) in enumerate(zip(expected, learner, strict=True)):
        if not isinstance(mine, dict):
            continue
        for row in compare(exp, mine, tolerances=ex.tolerances).rows:
            if row.max_abs_err is None and not row.ok:       # missing, wrong shape, not numbers
                continue
            pairs.append(_Pair(i, row.name, np.asarray(_as_array(exp[row.name]), np.float64),
                               np.asarray(_as_array(mine[row.name]), np.float64),
                               row.got_dtype or "float64", row.ok))
    return _Evidence(ex, expected, learner, tuple(pairs))


def _finite(x: np.ndarray) -> np.ndarray:
    """Where x is finite (neither NaN nor ±inf)."""
    return np.isfinite(x)


def _scale(x: np.ndarray) -> float:
    """The largest finite |x| (0 for none)."""
    finite = np.abs(x[_finite(x)])
    return float(finite.max()) if finite.size else 0.0


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """a equals b to the check's tolerance, relative to b's scale; where b is ±inf, a must be
    the same infinity; NaN matches nothing."""
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore"):
        near = np.abs(a - b) <= ATOL + RTOL * (np.abs(b) + _scale(b))
    return bool(np.where(np.isfinite(b), near, a == b).all())


def _all(pairs: Sequence[_Pair], holds: Callable[[_Pair], bool]) -> bool:
    """``holds`` is true of every pair, and there is one."""
    return bool(pairs) and all(holds(p) for p in pairs)


def _first_index(mask: np.ndarray) -> str:
    """The first True index of a mask, as the table prints it: ``[0, 2]``."""
    index = np.unravel_index(int(np.argmax(mask)), mask.shape)
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _leaves(value, path: str) -> Iterator[tuple[str, np.ndarray]]:
    """(path, array) for every array in a nested argument, e.g. ``state[0]``, ``params['W']``."""
    if isinstance(value, np.ndarray):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}[{k!r}]")
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")


def _scalars(value, path: str) -> Iterator[tuple[str, object]]:
    """(path, value) for every number or function in a nested argument (a function by name)."""
    if isinstance(value, (bool, int, float, np.number)):
        yield path, value
    elif callable(value) and not isinstance(value, np.ndarray):
        yield path, getattr(value, "__name__", type(value).__name__)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _scalars(v, f"{path}[{k!r}]")
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _scalars(v, f"{path}[{i}]")


def _numbers(indices: Sequence[int]) -> str:
    """Case indices as the report numbers them: ``1, 3``."""
    return ", ".join(str(i + 1) for i in indices)
