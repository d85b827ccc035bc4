"""The case split: the learner's function is right on some cases and wrong on others, and one
thing tells them apart — a size, a scalar argument (θ = 1), or what an array argument holds
(−inf, large values, only zeros). Every such feature of the cases is considered before a size
is named."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from minirec.check._evidence import _Evidence, _leaves, _numbers, _scalars
from minirec.check._exercise import Exercise

__all__ = ["case_split"]


_SIZE_HINTS = {"B": "the batch axis: a sum, mean, index or broadcast along the wrong axis",
               "T": "the steps after the first: what is carried from one step to the next",
               "C": "the steps after the first: what is carried from one step to the next"}


#: What an array argument may hold that a case split can point to, and where to look then.
_CONTENTS = (
    ("holds −inf", lambda x: bool(np.isneginf(x).any()),
     "a max over terms that are all −inf is −inf, and x − max is then NaN: shift by 0 there"),
    ("holds +inf", lambda x: bool(np.isposinf(x).any()), "inf − inf and 0 · inf are NaN"),
    ("holds NaN", lambda x: bool(np.isnan(x).any()), "NaN spreads through every operation"),
    ("holds values beyond ±100", lambda x: bool((np.abs(x[np.isfinite(x)]) > 100).any()),
     "exp overflows above 709 and underflows below −745: shift by the max before exp"),
    ("is all zeros", lambda x: x.size > 0 and not x.any(),
     "a term it multiplies vanishes there, and a division by it fails"),
)


@dataclass(frozen=True)
class _Feature:
    """Something that describes a case besides its outputs: a size (``T``), a scalar argument
    (``theta``, or a function's name), or what an array argument holds (``L1 holds −inf``)."""

    label: str
    kind: str                  # "size", "scalar" or "content"
    hint: str = ""


def _features(ex: Exercise, case) -> dict[_Feature, object]:
    """Every feature of a case with its value: sizes, scalar arguments (unless a size has their
    name), and for each array argument whether it holds −inf, +inf, NaN, large values or only
    zeros."""
    out: dict[_Feature, object] = {_Feature(sym, "size"): v for sym, v in case.sizes.items()}
    for name, arg in zip(ex.arg_names, case.args, strict=True):
        for path, value in _scalars(arg, name):
            if path not in case.sizes:
                out[_Feature(path, "scalar")] = value
        for path, arr in _leaves(arg, name):
            if np.issubdtype(arr.dtype, np.number):
                for what, test, hint in _CONTENTS:
                    out[_Feature(f"{path} {what}", "content", hint)] = test(arr)
    return out


def _separating(ex: Exercise, right: Sequence[int], wrong: Sequence[int]):
    """(feature, values where right, values where wrong) for every feature whose values on the
    right cases and on the wrong ones do not overlap; of features with the same values on every
    case (a size M and the argument n_symbols = M) only the first counts."""
    features = [_features(ex, ex.cases[i]) for i in range(len(ex.cases))]
    found, seen = [], set()
    for f in features[right[0]]:
        if not all(f in features[i] for i in (*right, *wrong)):
            continue
        column = tuple(_hashable(features[i][f]) for i in (*right, *wrong))
        good, bad = set(column[:len(right)]), set(column[len(right):])
        if good.isdisjoint(bad) and column not in seen:
            found.append((f, good, bad))
        seen.add(column)
    return found


def _hashable(value):
    """A NumPy scalar as the Python number it holds (so that 1 and np.int64(1) are one value)."""
    return value.item() if isinstance(value, np.generic) else value


def _values(vs) -> str:
    """Values as a case split prints them: ``5/7``."""
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(vs, key=str))


def _describe_split(f: _Feature, good: set, bad: set) -> str:
    """One separating feature in words: ``T (T = 1 where right, 5/7 where wrong)``."""
    if f.kind == "content":
        where = "wrong" if bad == {True} else "right"
        return f"{f.label} where {where}, not where {'right' if where == 'wrong' else 'wrong'}"
    return f"{f.label} ({f.label} = {_values(good)} where right, {_values(bad)} where wrong)"


def _split_hint(f: _Feature, good: set) -> str:
    """Where to look when one feature separates the cases."""
    if f.kind == "size":
        return _SIZE_HINTS.get(f.label, f"an axis or a loop whose length is {f.label}")
    if f.kind == "content":
        return f.hint
    if good in ({1}, {1.0}):
        return (f"where {f.label} = 1 a factor {f.label} that is missing or applied twice "
                f"makes no difference")
    if good in ({0}, {0.0}):
        return f"where {f.label} = 0 the term it multiplies vanishes"
    return f"the terms that {f.label} scales or selects"


def case_split(ev: _Evidence) -> str | None:
    """Right on some cases, wrong on others, and what tells them apart: a size, a scalar
    argument or what an array holds. All are considered: one is named; two are named together
    when one of them is not a size (sizes grow together from case to case, a scalar such as
    θ = 1 or an array of −inf is chosen); otherwise none is blamed."""
    verdicts = [(i, ev.case_ok(i)) for i in range(len(ev.ex.cases))]
    right = [i for i, ok in verdicts if ok]
    wrong = [i for i, ok in verdicts if ok is False]
    if not right or not wrong:
        return None
    found = _separating(ev.ex, right, wrong)
    head = (f"right on case{'s' if len(right) > 1 else ''} {_numbers(right)} but wrong on "
            f"case{'s' if len(wrong) > 1 else ''} {_numbers(wrong)}")
    if len(found) == 1:
        f, good, bad = found[0]
        label = f.label if f.kind != "content" else f.label.split(" ")[0]
        return (f"{head}: what differs is {_describe_split(f, good, bad)} — look at the lines "
                f"where {label} matters ({_split_hint(f, good)})")
    chosen = [(f, good) for f, good, _bad in found if f.kind != "size"]
    if len(found) != 2 or not chosen:
        return None                                    # nothing, or too much, differs
    both = " and ".join(_describe_split(f, good, bad) for f, good, bad in found)
    f, good = chosen[0]
    return f"{head}: two things differ, {both} — {_split_hint(f, good)}"
