"""The engine behind every exercise check: compare, diagnose, report.

An exercise check runs the learner's function and the reference on a few generated cases
(float64, seeded, odd sizes). On the first case where they differ it raises
:class:`CheckFailed` with

- a table, one row per named output tensor: expected shape, the learner's shape, the largest
  absolute error, the first bad index (C order) and ok / ✗, followed by the learner's value and
  the expected one at that index;
- a diagnosis in the learner's terms, the first that applies of: the learner's earlier function
  (``Exercise.calls``) that produced the first wrong value; what a wrong shape or an exception
  says about the code (with the learner's line); float32 rounding; an integer result that is
  the expected value rounded down (integer division); the first *suspect* (a known
  wrong variant of the exercise, with the same signature) whose outputs equal the learner's on
  every case; a relation between the learner's values and the expected ones that the engine
  finds by itself (a sign, a constant factor, a step in time, a transposition, NaN/inf, values
  rounded down, ...); else the generic text.

In IPython a failure shows its message only (``_render_traceback_``), not minirec's traceback.
Nothing here depends on pytest: the messages are meant to be read in a notebook.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import os
import re
import sys
import sysconfig
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minirec._validate import is_torch

__all__ = [
    "RTOL", "ATOL", "FLOAT32_ULPS", "GENERIC", "OUTER_PRODUCT", "FLOAT32_ROUNDING",
    "CheckFailed", "NotAttempted",
    "Row", "Comparison", "compare", "cmp", "bad_mask", "first_bad_index",
    "Case", "Suspect", "Exercise", "run_check", "diagnose",
    "one_output", "pair_output", "dict_output",
]

#: An element is wrong when |yours − expected| > ATOL + RTOL·|expected| (float64 cases).
RTOL = 1e-8
ATOL = 1e-10
#: A value computed in float32 is within FLOAT32_ULPS · 2^-24 · (|expected| + scale) of the
#: float64 one, scale the largest finite |expected| of its tensor (a few roundings of 2^-24).
FLOAT32_ULPS = 64

#: The diagnosis when nothing better is known.
GENERIC = ("no known mistake matches your result; compare your lines with the equations, "
           "starting from the tensor and index the table points to")
OUTER_PRODUCT = "a dot product where an outer product belongs (np.outer / a[:, None] * b[None, :])"
FLOAT32_ROUNDING = ("float32 rounding in your computation: your values agree with the expected "
                    "ones to float32's precision (2^-24 ≈ 6e-8 relative), not to the check's "
                    "1e-8 — a float32 array or tensor somewhere (np.float32, torch.tensor(...) "
                    "of Python floats, .float()) rounds every value it touches; keep float64 "
                    "throughout (or, if you added a small ε for safety, leave it out)")


class CheckFailed(AssertionError):
    """The learner's function ran but its result differs from the reference.

    Besides the message, carries (when raised by a check) ``comparison`` (the :class:`Comparison`
    of the first failing case), ``diagnosis`` (a string or None) and ``case`` (its label).
    """

    def __init__(self, message: str = "", *, comparison: Comparison | None = None,
                 diagnosis: str | None = None, case: str | None = None):
        super().__init__(message)
        self.comparison = comparison
        self.diagnosis = diagnosis
        self.case = case

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this exception: the message (table and diagnosis), not the
        traceback through minirec's checking code (which says nothing about the learner's)."""
        first, *rest = str(self).splitlines() or [""]
        return [f"{type(self).__name__}: {first}", *rest]


class NotAttempted(CheckFailed):
    """The learner's function still raises NotImplementedError (the blank exercise)."""


# ---------------------------------------------------------------------------------------------
# Comparison of named tensors
# ---------------------------------------------------------------------------------------------

def _as_array(value) -> np.ndarray | None:
    """NumPy view of an array-like result (torch tensors included); None for anything else."""
    if is_torch(value):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (float, int, np.number)) and not isinstance(value, bool):
        return np.asarray(value)
    return None


def bad_mask(expected, actual, *, rtol: float = RTOL, atol: float = ATOL) -> np.ndarray:
    """Boolean array, True where ``|actual − expected| > atol + rtol·|expected|`` or either
    side is NaN. Shapes must agree."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"bad_mask needs equal shapes; got {e.shape} and {a.shape}")
    with np.errstate(invalid="ignore"):
        good = np.abs(a - e) <= atol + rtol * np.abs(e)
    return ~good


def first_bad_index(expected, actual, *, rtol: float = RTOL, atol: float = ATOL):
    """Index tuple of the first wrong element in C (row-major) order, or None if all are ok."""
    mask = bad_mask(expected, actual, rtol=rtol, atol=atol)
    if not mask.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


@dataclass(frozen=True)
class Row:
    """One tensor of a comparison. ``got_shape`` is None when the learner's value is not an
    array; ``got_kind`` then says what it is (``"missing"``, ``"NoneType"``, ...)."""

    name: str
    expected_shape: tuple
    got_shape: tuple | None
    got_kind: str
    max_abs_err: float | None
    first_bad: tuple | None
    ok: bool
    got_value: float | None = None
    expected_value: float | None = None
    got_dtype: str | None = None
    expected_dtype: str | None = None

    @property
    def shape_ok(self) -> bool:
        return self.got_shape == self.expected_shape


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _fmt_index(index) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


@dataclass(frozen=True)
class Comparison:
    """Per-tensor comparison of a result with the expected one; its repr is the table."""

    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failed(self) -> list[str]:
        """Names of the tensors that are wrong, in table order."""
        return [r.name for r in self.rows if not r.ok]

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def table(self) -> str:
        head = ("tensor", "expected shape", "your shape", "max abs err", "first bad", "")
        body = []
        for r in self.rows:
            got = _fmt_shape(r.got_shape) if r.got_shape is not None else r.got_kind
            if r.max_abs_err is None:
                err = "—"
            else:
                err = f"{r.max_abs_err:.1e}"
            if r.ok:
                bad = "—"
            elif r.first_bad is not None:
                bad = str(r.first_bad)
            else:
                bad = "shape" if r.got_shape is not None else "—"
            body.append((r.name, _fmt_shape(r.expected_shape), got, err, bad,
                         "ok" if r.ok else "✗"))
        widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in (head, *body)]
        for r in self.rows:
            if r.first_bad is not None and r.got_value is not None:
                lines.append(f"{r.name}{_fmt_index(r.first_bad)}: yours {r.got_value:.10g}, "
                             f"expected {r.expected_value:.10g}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__


_MISSING = object()


def _tolerance(name: str, expected: np.ndarray, rtol: float, atol: float,
               tolerances: Mapping[str, tuple[float, float]] | None) -> tuple[float, float]:
    """(rtol, atol) for one tensor: its own entry in ``tolerances``; exact for an integer
    expected tensor (indices, paths: compared as integers); else the common ``rtol, atol``."""
    if tolerances and name in tolerances:
        return tolerances[name]
    if np.issubdtype(expected.dtype, np.integer):
        return 0.0, 0.0
    return rtol, atol


def compare(expected: Mapping[str, Any], actual: Mapping[str, Any], *, rtol: float = RTOL,
            atol: float = ATOL, tolerances: Mapping[str, tuple[float, float]] | None = None
            ) -> Comparison:
    """Compare named tensors. ``expected`` fixes the names and their order; a name absent from
    ``actual`` is reported as missing, extra names in ``actual`` are ignored. ``tolerances``
    gives some names their own ``(rtol, atol)``; integer expected tensors are compared
    exactly. Returns a :class:`Comparison`, whose ``repr`` (what a notebook shows) is the
    table."""
    rows = []
    for name, exp in expected.items():
        e_raw = np.asarray(_as_array(exp))
        e = e_raw.astype(np.float64)
        e_dtype = str(e_raw.dtype)
        raw = actual.get(name, _MISSING) if isinstance(actual, Mapping) else _MISSING
        a = None if raw is _MISSING else _as_array(raw)
        if a is None:
            kind = "missing" if raw is _MISSING else type(raw).__name__
            rows.append(Row(name, e.shape, None, kind, None, None, False, expected_dtype=e_dtype))
            continue
        dtype = str(a.dtype)
        if a.shape != e.shape or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            rows.append(Row(name, e.shape, a.shape, "", None, None, False, got_dtype=dtype,
                            expected_dtype=e_dtype))
            continue
        a64 = a.astype(np.float64)
        r_tol, a_tol = _tolerance(name, e_raw, rtol, atol, tolerances)
        mask = bad_mask(e, a64, rtol=r_tol, atol=a_tol)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a64 - e)
        max_err = float(np.max(diff)) if diff.size else 0.0
        if np.isnan(diff).any():
            max_err = float("nan")
        if mask.any():
            idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))
            rows.append(Row(name, e.shape, a.shape, "", max_err, idx, False,
                            float(a64[idx]), float(e[idx]), dtype, e_dtype))
        else:
            rows.append(Row(name, e.shape, a.shape, "", max_err, None, True, got_dtype=dtype,
                            expected_dtype=e_dtype))
    return Comparison(tuple(rows))


def cmp(expected: Mapping[str, Any], actual: Mapping[str, Any], *, rtol: float = RTOL,
        atol: float = ATOL) -> bool:
    """Print the comparison table of named tensors (as micrograd's ``cmp``); return True when
    every tensor matches."""
    result = compare(expected, actual, rtol=rtol, atol=atol)
    print(result.table())
    return result.ok


# ---------------------------------------------------------------------------------------------
# Cases, suspects, exercises
# ---------------------------------------------------------------------------------------------

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
    - ``matmul_hint`` is appended to the diagnosis of a matrix product with mismatched shapes;
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


def _resolve(symbol: str, sizes: Mapping[str, int]) -> int | str:
    m = re.fullmatch(r"(\d*)([A-Za-z_]\w*)", symbol)
    if m and m.group(2) in sizes:
        return int(m.group(1) or 1) * sizes[m.group(2)]
    return symbol


def _shape_message(ex: Exercise, row: Row, case: Case) -> str:
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


# --- where and why the learner's code raised -------------------------------------------------

_MINIREC_DIR = str(Path(__file__).resolve().parents[1])
_STDLIB_DIRS = tuple(sorted({os.path.realpath(sysconfig.get_paths()[k])
                             for k in ("stdlib", "platstdlib")}))


def _is_library(filename: str) -> bool:
    """True for minirec's own files, the standard library and installed packages (NumPy, Torch,
    SciPy, ...): frames that are not the learner's code."""
    if filename.startswith("<frozen"):
        return True
    path = os.path.realpath(filename)
    parts = Path(path).parts
    return (path.startswith(_MINIREC_DIR + os.sep) or "site-packages" in parts
            or "dist-packages" in parts
            or any(path.startswith(d + os.sep) for d in _STDLIB_DIRS))


def _learner_traceback(exc: BaseException):
    """The innermost entry of ``exc``'s traceback that runs the learner's code, or None."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        if not _is_library(tb.tb_frame.f_code.co_filename):
            found = tb
        tb = tb.tb_next
    return found


def _place(filename: str, lineno: int) -> str:
    """``Cell In[5], line 7`` for a notebook cell (IPython's own label), else ``file, line 7``."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        label = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # noqa: BLE001 - an IPython without this API: the file name will do
        label = None
    if label:
        return f"{label[0]} {label[1]}, line {lineno}"
    return f"{filename}, line {lineno}"


def _learner_line(tb) -> str:
    """``at <place>, in <function>: <source line>`` for a traceback entry."""
    code = tb.tb_frame.f_code
    source = linecache.getline(code.co_filename, tb.tb_lineno, tb.tb_frame.f_globals).strip()
    where = f"at {_place(code.co_filename, tb.tb_lineno)}, in {code.co_name}"
    return f"{where}: {source}" if source else where


def _failing_source(tb) -> str | None:
    """The source of the expression that raised in a traceback entry (its instruction's
    position, Python ≥ 3.11), or its whole line."""
    code = tb.tb_frame.f_code
    lines = linecache.getlines(code.co_filename, tb.tb_frame.f_globals)
    try:
        start, end, col, end_col = list(code.co_positions())[tb.tb_lasti // 2]
    except (AttributeError, IndexError, ValueError):
        start = None
    if not lines or start is None or end is None or col is None or end_col is None:
        text = linecache.getline(code.co_filename, tb.tb_lineno, tb.tb_frame.f_globals)
        return text.strip() or None
    chunk = [line.encode() for line in lines[start - 1:end]]   # columns count UTF-8 bytes
    if not chunk:
        return None
    if len(chunk) == 1:
        return chunk[0][col:end_col].decode(errors="replace").strip()
    chunk[0], chunk[-1] = chunk[0][col:], chunk[-1][:end_col]
    return b"".join(chunk).decode(errors="replace").strip()


_PRODUCTS = {"dot", "matmul", "mm", "mv", "bmm", "inner"}
_SAFE_NODES = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.Attribute, ast.Subscript,
               ast.Slice, ast.Tuple, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop,
               ast.Call)


#: Words in the names of NumPy / Torch functions that draw random numbers or write in place.
_IMPURE_WORDS = ("rand", "seed", "normal", "uniform", "shuffle", "permutation", "choice",
                 "fill", "put", "sort", "resize", "copyto", "place", "setflags")


def _is_pure_array_function(f, n_args: int) -> bool:
    """A NumPy / Torch function, ufunc or array method that computes without side effects (no
    random draw, no in-place write, no ``out`` argument), so that it may be called again."""
    name = getattr(f, "__name__", "") or ""
    module = getattr(f, "__module__", None) or ""
    if name.endswith("_") or "random" in module or any(w in name for w in _IMPURE_WORDS):
        return False
    if isinstance(f, np.ufunc):
        return n_args <= f.nin
    owner = getattr(f, "__self__", None)
    return (module.split(".")[0] in ("numpy", "torch") or isinstance(owner, np.ndarray)
            or is_torch(owner))


def _dotted(node) -> bool:
    return isinstance(node, ast.Name) or (isinstance(node, ast.Attribute) and _dotted(node.value))


def _evaluate(node: ast.expr, frame) -> Any:
    """The value of an operand in the learner's frame, when it is side-effect free (names,
    attributes, indexing, arithmetic, NumPy / Torch calls); None otherwise."""
    def run(n):
        return eval(compile(ast.Expression(n), "<operand>", "eval"),  # noqa: S307 - checked
                    frame.f_globals, frame.f_locals)
    try:
        for n in ast.walk(node):
            if not isinstance(n, _SAFE_NODES):
                return None
            if isinstance(n, ast.Call) and not (
                    _dotted(n.func) and not n.keywords
                    and _is_pure_array_function(run(n.func), len(n.args))):
                return None
        return run(node)
    except Exception:  # noqa: BLE001 - an operand we cannot evaluate is simply not reported
        return None


def _shape(value) -> tuple | None:
    return tuple(value.shape) if isinstance(value, np.ndarray) or is_torch(value) else None


@dataclass(frozen=True)
class _Operands:
    """The two operands of the product or element-wise operation that raised."""

    source: str
    left: tuple
    right: tuple
    kind: str              # "matmul", "mul" (element-wise *) or "other"

    @property
    def vectors(self) -> bool:
        """Two vectors of different lengths (where a matrix product needs an outer one)."""
        return len(self.left) == len(self.right) == 1 and self.left != self.right

    def text(self) -> str:
        verb = "multiplies" if self.kind == "matmul" else "combines"
        return f"`{self.source}` {verb} {_fmt_shape(self.left)} and {_fmt_shape(self.right)}"


def _operand_pairs(tree: ast.AST) -> Iterator[tuple[ast.AST, ast.expr, ast.expr, str]]:
    """(operation, left, right, kind) for the binary operations in a syntax tree, outermost
    first: "matmul" for a @ b, np.dot(a, b), a.dot(b), torch.matmul(a, b); "mul" for a * b;
    "other" for the rest (a + b, ...)."""
    for n in ast.walk(tree):
        if isinstance(n, ast.BinOp):
            kind = {ast.MatMult: "matmul", ast.Mult: "mul"}.get(type(n.op), "other")
            yield n, n.left, n.right, kind
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
              and n.func.attr in _PRODUCTS and not n.keywords):
            if len(n.args) == 2:
                yield n, n.args[0], n.args[1], "matmul"
            elif len(n.args) == 1:
                yield n, n.func.value, n.args[0], "matmul"


def _mismatched(left: tuple, right: tuple, matmul: bool) -> bool:
    if matmul:
        if not left or not right:
            return False
        return left[-1] != (right[0] if len(right) == 1 else right[-2])
    try:
        np.broadcast_shapes(left, right)
    except ValueError:
        return True
    return False


def _failing_operands(exc: BaseException, matmul: bool) -> _Operands | None:
    """The operands, with their shapes, of the learner's product (``matmul``) or element-wise
    operation whose shapes do not fit, found in the expression that raised."""
    tb = _learner_traceback(exc)
    source = _failing_source(tb) if tb is not None else None
    if not source:
        return None
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        try:                                            # a whole line: a statement
            tree = ast.parse(source)
        except SyntaxError:
            return None
    for node, left, right, kind in _operand_pairs(tree):
        if (kind == "matmul") != matmul:
            continue
        shapes = _shape(_evaluate(left, tb.tb_frame)), _shape(_evaluate(right, tb.tb_frame))
        if None not in shapes and _mismatched(*shapes, matmul):
            return _Operands(ast.get_source_segment(source, node) or source, *shapes, kind)
    return None


_MATMUL_WORDS = ("matmul", "not aligned", "core dimension", "cannot be multiplied",
                 "size mismatch", "inconsistent tensor size")
_BROADCAST_WORDS = ("broadcast", "must match the size of tensor")


def _vector_dot_in_message(text: str) -> bool:
    """numpy's ``np.dot`` or torch's ``dot`` of two vectors of different lengths."""
    return bool(re.search(r"shapes \(\d+,\) and \(\d+,\) not aligned", text)
                or re.search(r"inconsistent tensor size, expected tensor \[\d+\] and src \[\d+\]",
                             text))


def _matmul_diagnosis(ex: Exercise, exc: BaseException, hint_text: str) -> str:
    ops = _failing_operands(exc, matmul=True)
    if (ops is not None and ops.vectors) or (ops is None and _vector_dot_in_message(str(exc))):
        where = f": {ops.text()}" if ops is not None else ""
        return f"{OUTER_PRODUCT}{where}"
    if ex.weights:
        hint = f" ({hint_text})" if hint_text else ""
        found = f"; {ops.text()}" if ops is not None else ""
        return f"a matrix product has mismatched shapes: a weight looks transposed{hint}{found}"
    hint = f"; {hint_text}" if hint_text else ""
    if ops is None:
        return ("a matrix product has mismatched shapes: the left operand's last axis must "
                f"equal the right operand's first (a vector) or second-to-last axis{hint}")
    axis = "first" if len(ops.right) == 1 else "second-to-last"
    return (f"a matrix product has mismatched shapes: {ops.text()} — the left operand's last "
            f"axis ({ops.left[-1]}) must equal the right operand's {axis} axis "
            f"({ops.right[0] if len(ops.right) == 1 else ops.right[-2]}){hint}")


def _broadcast_diagnosis(ex: Exercise, exc: BaseException, hint_text: str) -> str:
    ops = _failing_operands(exc, matmul=False)
    if ops is not None and ops.vectors and ops.kind == "mul":
        return (f"an element-wise product where an outer product belongs (np.outer / "
                f"a[:, None] * b[None, :]): {ops.text()}, two vectors of different lengths")
    found = f" ({ops.text()})" if ops is not None else ""
    text = (f"two arrays of different shapes were combined element by element{found}: check "
            f"the shape of each term and which axis each split or sum runs along")
    if ex.weights:
        hint = f"; {hint_text}" if hint_text else ""
        return f"{text} (a weight may be transposed{hint})"
    return f"{text} ({hint_text})" if hint_text else text


def _exception_message(ex: Exercise, fn_name: str, exc: BaseException,
                       case: Case) -> tuple[str, str | None]:
    """(what happened, diagnosis or None) for an exception raised by the learner's function;
    what happened names the learner's line that raised."""
    text = f"{fn_name} raised {type(exc).__name__}: {exc}"
    tb = _learner_traceback(exc)
    if tb is not None:
        text += f"\n  {_learner_line(tb)}"
    text += f"\nThe case's shapes: {_case_shapes(ex, case)}"
    lower = str(exc).lower()
    hint_text = ex.matmul_hint(case) if callable(ex.matmul_hint) else ex.matmul_hint
    if isinstance(exc, (ValueError, RuntimeError)) and any(w in lower for w in _MATMUL_WORDS):
        return text, _matmul_diagnosis(ex, exc, hint_text)
    if isinstance(exc, (ValueError, RuntimeError)) and any(w in lower for w in _BROADCAST_WORDS):
        return text, _broadcast_diagnosis(ex, exc, hint_text)
    return text, None


def _case_shapes(ex: Exercise, case: Case) -> str:
    parts = []

    def walk(name, value):
        if isinstance(value, np.ndarray):
            parts.append(f"{name} {_fmt_shape(value.shape)}")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{name}[{k!r}]", v)
        elif isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                walk(f"{name}[{i}]", v)
        else:
            parts.append(f"{name}={value!r}")

    for name, value in zip(ex.arg_names, case.args, strict=True):
        walk(name, value)
    return ", ".join(parts)


def _run(fn, case: Case):
    args = _copy(case.args)
    return fn(*args), args


def diagnose(suspects: Sequence[Suspect], cases: Sequence[Case],
             learner: Sequence[dict | BaseException | None],
             outputs: Callable[[Any, Case], dict], *, rtol: float = RTOL,
             atol: float = ATOL, tolerances: Mapping[str, tuple[float, float]] | None = None
             ) -> Suspect | None:
    """The first suspect that behaves as the learner's function on every case.

    ``learner[i]`` is the learner's named tensors on ``cases[i]``, the exception it raised
    there, or None (not compared). A suspect matches when its tensors equal the learner's
    (to ``rtol, atol``, or a name's own entry in ``tolerances``) wherever the learner returned,
    and it raises the same type of exception wherever the learner raised.
    """
    for suspect in suspects:
        matched = True
        for case, mine in zip(cases, learner, strict=True):
            if mine is None:
                continue
            try:
                theirs = outputs(_run(suspect.fn, case)[0], case)
            except Exception as exc:  # noqa: BLE001 - a suspect's failure is information
                matched = isinstance(mine, BaseException) and type(exc) is type(mine)
            else:
                matched = (not isinstance(mine, BaseException)
                           and compare(theirs, mine, rtol=rtol, atol=atol,
                                       tolerances=tolerances).ok)
            if not matched:
                break
        if matched:
            return suspect
    return None


# --- the learner's earlier functions, called by this one (Exercise.calls) -------------------

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
def _recording_calls(fn: Callable, calls: Mapping[str, Callable]) -> Iterator[list[str]]:
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


def _calls_diagnosis(name: str, fn_name: str) -> str:
    return (f"the first wrong value came from your {name} (called by {fn_name}): fix it first "
            f"— check_{name} shows how")


# --- relations between the learner's values and the expected ones ---------------------------
# Used when no suspect matches. Each detector claims only what the values show, on every case
# where the tensor is wrong.

_HUGE = 1e300          # the HMM checks show ±inf as ±1e300
_TIME_AXES = ("T", "C")


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


def _evidence(ex: Exercise, expected: Sequence[dict],
              learner: Sequence[dict | BaseException | None]) -> _Evidence:
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
    return np.isfinite(x) & (np.abs(x) < _HUGE)


def _scale(x: np.ndarray) -> float:
    """The largest finite |x| (0 for none)."""
    finite = np.abs(x[_finite(x)])
    return float(finite.max()) if finite.size else 0.0


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """a equals b to the check's tolerance, relative to b's scale; equal infinities match."""
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore"):
        ok = (np.abs(a - b) <= ATOL + RTOL * (np.abs(b) + _scale(b))) | (a == b)
    return bool(ok.all())


def _all(pairs: Sequence[_Pair], relation: Callable[[_Pair], bool]) -> bool:
    return bool(pairs) and all(relation(p) for p in pairs)


def _float32_rounding(ev: _Evidence) -> bool:
    """Every wrong tensor of every case is within float32 rounding of the expected one (and the
    learner returned right shapes everywhere)."""
    if any(isinstance(m, BaseException) for m in ev.learner):
        return False
    compared = sum(len(exp) for exp, m in zip(ev.expected, ev.learner, strict=True)
                   if isinstance(m, dict))
    wrong = ev.wrong
    if not wrong or len(ev.pairs) < compared:       # a missing tensor or a wrong shape somewhere
        return False

    def rounded(p: _Pair) -> bool:
        fin = _finite(p.expected)
        if not np.array_equal(fin, _finite(p.got)) or np.issubdtype(np.dtype(p.got_dtype),
                                                                    np.integer):
            return False
        e, a = p.expected[fin], p.got[fin]
        return bool((np.abs(a - e) <= FLOAT32_ULPS * 2.0**-24 * (np.abs(e) + _scale(e))).all())
    return _all(wrong, rounded)


def _float32_tolerances(ev: _Evidence) -> dict[str, tuple[float, float]] | None:
    """Tolerances that admit float32 rounding, for matching suspects against a learner whose
    outputs are float32 (None when they are not)."""
    if not any(np.dtype(p.got_dtype) in (np.float32, np.float16) for p in ev.pairs):
        return None
    tol = FLOAT32_ULPS * 2.0**-24
    return {name: (tol, tol) for name in ev.ex.shapes}


def _nonfinite(ev: _Evidence) -> str | None:
    """NaN or ±inf where the expected value is finite."""
    for p in ev.wrong:
        if (~_finite(p.got) & _finite(p.expected)).any():
            return (f"your {p.name} has NaN or inf where the expected values are finite (case "
                    f"{p.case_no + 1}): overflow — a missing max shift (subtract the largest "
                    f"value before exp) or a missing −inf guard (where every term is −inf the "
                    f"max is −inf and x − max is NaN: shift by 0 there)")
    return None


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


def _unchanged_input(ev: _Evidence) -> str | None:
    """The learner returned one of the inputs unchanged (an update not applied)."""
    found = []
    for p in ev.wrong:
        case = ev.ex.cases[p.case_no]
        paths = [path for name, arg in zip(ev.ex.arg_names, case.args, strict=True)
                 for path, arr in _leaves(arg, name)
                 if np.issubdtype(arr.dtype, np.number) and _close(p.got, arr.astype(np.float64))]
        if not paths:
            return None
        found.append((p.name, paths[0]))
    which = ", ".join(f"your {name} is the input {path}"
                      for name, path in dict.fromkeys(found))
    return (f"{which}, unchanged: the update is not applied, or the old value is returned "
            f"instead of the new one")


def _swapped_outputs(ev: _Evidence) -> str | None:
    """Each wrong tensor holds another output's expected value (results in the wrong order)."""
    found = []
    for p in ev.wrong:
        others = [q for q, value in ev.expected[p.case_no].items() if q != p.name
                  and _close(p.got, np.asarray(_as_array(value), np.float64))]
        if not others:
            return None
        found.append((p.name, others[0]))
    which = ", ".join(f"your {a} holds the expected {b}" for a, b in dict.fromkeys(found))
    order = ", ".join(ev.ex.shapes)
    return f"{which}: the results are in the wrong order — {ev.ex.name} returns ({order})"


def _rounded_down(ev: _Evidence) -> str | None:
    """yours = ⌊expected⌋ where the expected value is not a whole number: integer division."""
    wrong = ev.wrong
    if not _all(wrong, lambda p: _close(p.got, np.floor(p.expected))):
        return None
    if not any((p.expected != np.floor(p.expected)).any() for p in wrong):
        return None
    if not any(p.got.any() or np.issubdtype(np.dtype(p.got_dtype), np.integer) for p in wrong):
        return None                                    # zeros alone: see _all_zero
    return (f"your {ev.names(wrong)} is the expected value rounded down to a whole number: an "
            f"integer division (// or int(...) of a ratio) where a true division / belongs")


def _integer_division(ev: _Evidence) -> str | None:
    """An integer result where a float is expected, equal to the expected value rounded down
    (said before any suspect: a suspect computed in floats cannot explain an integer)."""
    def integer_for_float(p: _Pair) -> bool:
        expected = np.asarray(_as_array(ev.expected[p.case_no][p.name]))
        return np.dtype(p.got_dtype).kind in "iu" and expected.dtype.kind == "f"
    return _rounded_down(ev) if _all(ev.wrong, integer_for_float) else None


def _all_zero(ev: _Evidence) -> str | None:
    wrong = ev.wrong
    if not _all(wrong, lambda p: not p.got.any()):
        return None
    return (f"your {ev.names(wrong)} is all zeros where the expected values are not: it is "
            f"never written (an array of zeros not filled in) or it is multiplied by 0")


def _negated(ev: _Evidence) -> str | None:
    wrong = ev.wrong
    if not _all(wrong, lambda p: _close(p.got, -p.expected)):
        return None
    return (f"the sign is flipped: your {ev.names(wrong)} is −1 × the expected value (a − b "
            f"where b − a belongs, or a minus where a plus belongs)")


def _complement(ev: _Evidence) -> str | None:
    """yours = 1 − expected (a miss rate for a hit rate, 1 − p for p)."""
    wrong = ev.wrong
    if sum(p.expected.size for p in wrong) < 2 or not _all(
            wrong, lambda p: _close(p.got, 1.0 - p.expected)):
        return None
    return (f"your {ev.names(wrong)} is 1 − the expected value: the complement (what is missed "
            f"instead of what is hit, or 1 − p for p)")


def _factor(p: _Pair) -> float | None:
    """c with yours = c · expected on this tensor (least squares, then verified), or None."""
    if not (_finite(p.expected).all() and _finite(p.got).all()):
        return None
    norm = float(np.sum(p.expected * p.expected))
    if norm == 0.0:
        return None
    c = float(np.sum(p.got * p.expected)) / norm
    return c if _close(p.got, c * p.expected) else None


_NAMED_FACTORS = (
    (100.0, "a percentage instead of a fraction: your {names} is 100 × the expected value — "
            "return the fraction itself, without the × 100"),
    (0.01, "your {names} is the expected value / 100: a fraction where a percentage belongs"),
    (2.0, "your {names} is twice the expected value: a factor 2 too many"),
    (0.5, "your {names} is half the expected value: a factor 2 missing (or a ½ too many)"),
)


def _scaled(ev: _Evidence) -> str | None:
    """yours = c · expected, c a named constant, a size of the case, or any constant."""
    wrong = ev.wrong
    factors = [_factor(p) for p in wrong]
    if not wrong or None in factors or any(abs(c - 1.0) < 1e-6 or abs(c) < 1e-12
                                           for c in factors):
        return None
    if sum(int(np.count_nonzero(p.expected)) for p in wrong) < 2:
        return None                                    # one number cannot show a factor
    names = ev.names(wrong)
    sizes = [ev.ex.cases[p.case_no].sizes for p in wrong]
    for sym in sizes[0]:
        values = [s.get(sym) for s in sizes]
        if None in values or len(set(values)) < 2:
            continue                                   # a size that does not vary tells nothing
        if all(abs(c * v - 1.0) <= 1e-9 for c, v in zip(factors, values, strict=True)):
            return (f"your {names} is the expected value divided by {sym} on every case: a "
                    f"1/{sym} too many (a mean over {sym} where a sum belongs?)")
        if all(abs(c / v - 1.0) <= 1e-9 for c, v in zip(factors, values, strict=True)):
            return (f"your {names} is the expected value multiplied by {sym} on every case: a "
                    f"1/{sym} missing (a sum over {sym} where a mean belongs?)")
    c = factors[0]
    if all(abs(f - c) <= 1e-9 * abs(c) for f in factors):
        for value, text in _NAMED_FACTORS:
            if abs(c - value) <= 1e-9 * value:
                return text.format(names=names)
        return f"your {names} is {c:.6g} × the expected value on every case: a constant factor is wrong"
    if all(np.count_nonzero(p.expected) >= 2 for p in wrong):
        shown = ", ".join(f"{f:.4g}" for f in factors)
        return (f"your {names} is proportional to the expected value, by a factor that changes "
                f"from case to case ({shown}): a scale or normalisation is wrong")
    return None


def _offset(ev: _Evidence) -> str | None:
    """yours = expected + d with the same constant d everywhere."""
    wrong = ev.wrong
    if sum(p.expected.size for p in wrong) < 2 or not _all(
            wrong, lambda p: _finite(p.got).all() and _finite(p.expected).all()):
        return None
    d = float(np.mean(wrong[0].got - wrong[0].expected))
    if not _all(wrong, lambda p: _close(p.got, p.expected + d)):
        return None
    return (f"your {ev.names(wrong)} is the expected value {'+' if d > 0 else '−'} {abs(d):.6g} "
            f"everywhere: a constant term is added or missing")


def _transposed(ev: _Evidence) -> str | None:
    wrong = ev.wrong
    if not _all(wrong, lambda p: p.got.ndim >= 2 and p.got.shape[-1] == p.got.shape[-2]
                and _close(p.got, np.swapaxes(p.expected, -1, -2))):
        return None
    return (f"your {ev.names(wrong)} is the expected value transposed (its last two axes "
            f"swapped): check which axis is which in your indexing or outer product")


def _time_axis(ex: Exercise, name: str) -> tuple[int, str] | None:
    spec = tuple(ex.shapes.get(name, ()))
    return next(((spec.index(s), s) for s in _TIME_AXES if s in spec), None)


def _along_time(ev: _Evidence, transform: Callable[[_Pair, int], bool]) -> bool:
    """``transform(pair, axis)`` holds on every wrong tensor with a time axis of length ≥ 2,
    there is one, and no wrong tensor lacks a time axis."""
    wrong = ev.wrong
    axes = [_time_axis(ev.ex, p.name) for p in wrong]
    if not wrong or None in axes:
        return False
    usable = [(p, ax) for p, (ax, _sym) in zip(wrong, axes, strict=True) if p.got.shape[ax] >= 2]
    return bool(usable) and all(transform(p, ax) for p, ax in usable)


def _shifted_in_time(ev: _Evidence) -> str | None:
    """yours[t] = expected[t − 1] (one step late) or expected[t + 1] (one step early)."""
    def late(p, ax):
        n = p.got.shape[ax]
        return _close(np.take(p.got, range(1, n), ax), np.take(p.expected, range(n - 1), ax))

    def early(p, ax):
        n = p.got.shape[ax]
        return _close(np.take(p.got, range(n - 1), ax), np.take(p.expected, range(1, n), ax))
    sym = next((_time_axis(ev.ex, p.name)[1] for p in ev.wrong
                if _time_axis(ev.ex, p.name)), "T")
    names = ev.names(ev.wrong)
    if _along_time(ev, late):
        return (f"off by one step in time: your {names} at step t is the expected value at "
                f"step t − 1 (along {sym}), one step late")
    if _along_time(ev, early):
        return (f"off by one step in time: your {names} at step t is the expected value at "
                f"step t + 1 (along {sym}), one step early")
    return None


def _reversed_in_time(ev: _Evidence) -> str | None:
    if not _along_time(ev, lambda p, ax: _close(p.got, np.flip(p.expected, ax))):
        return None
    return (f"your {ev.names(ev.wrong)} is the expected one reversed in time: built from the "
            f"end, it must be written back to front (or reversed once at the end)")


_SIZE_HINTS = {"B": "the batch axis: a sum, mean, index or broadcast along the wrong axis",
               "T": "the steps after the first: what is carried from one step to the next",
               "C": "the steps after the first: what is carried from one step to the next"}


def _case_split(ev: _Evidence) -> str | None:
    """Right on some cases, wrong on others, and a size of the cases tells them apart."""
    verdicts = [(i, ev.case_ok(i)) for i in range(len(ev.ex.cases))]
    right = [i for i, ok in verdicts if ok]
    wrong = [i for i, ok in verdicts if ok is False]
    if not right or not wrong:
        return None
    cases = ev.ex.cases
    parts = []
    for sym in cases[right[0]].sizes:
        good = {cases[i].sizes.get(sym) for i in right}
        bad = {cases[i].sizes.get(sym) for i in wrong}
        if None not in good | bad and good.isdisjoint(bad):
            parts.append((sym, good, bad))
    if len(parts) != 1:
        return None                                    # several sizes differ: no one culprit
    sym, good, bad = parts[0]

    def values(vs):
        return "/".join(str(v) for v in sorted(vs))
    hint = _SIZE_HINTS.get(sym, f"an axis or a loop whose length is {sym}")
    return (f"right on case{'s' if len(right) > 1 else ''} {_numbers(right)} but wrong on "
            f"case{'s' if len(wrong) > 1 else ''} {_numbers(wrong)}: what differs is {sym} "
            f"({sym} = {values(good)} where right, {values(bad)} where wrong) — look at the "
            f"lines where {sym} matters ({hint})")


def _numbers(indices: Sequence[int]) -> str:
    return ", ".join(str(i + 1) for i in indices)


#: The detectors, most specific first.
RELATIONS: tuple[Callable[[_Evidence], str | None], ...] = (
    _nonfinite, _unchanged_input, _swapped_outputs, _rounded_down, _all_zero, _negated,
    _complement, _scaled, _offset, _transposed, _shifted_in_time, _reversed_in_time, _case_split,
)


def _relation(ev: _Evidence) -> str | None:
    """The first detector's finding, or None."""
    for detector in RELATIONS:
        found = detector(ev)
        if found:
            return found
    return None


def _generic(ev: _Evidence) -> str:
    """The generic diagnosis, with the cases where the function is right, if any."""
    verdicts = [(i, ev.case_ok(i)) for i in range(len(ev.ex.cases))]
    right = [i for i, ok in verdicts if ok]
    wrong = [i for i, ok in verdicts if ok is False]
    if right and wrong:
        return f"{GENERIC} (right on case(s) {_numbers(right)}, wrong on {_numbers(wrong)})"
    return GENERIC


def _fail(ex: Exercise, case_no: int, case: Case, comparison: Comparison | None,
          diagnosis: str | None, notes: Sequence[str], exc: BaseException | None = None,
          what: str | None = None):
    parts = [f"{ex.name} is wrong on case {case_no + 1} of {len(ex.cases)} ({case.label}):"]
    if what:
        parts.append(what)
    if comparison is not None:
        parts.append(comparison.table())
    if diagnosis:
        parts.append(f"Diagnosis: {diagnosis}")
    parts += [f"Note: {n}" for n in notes]
    err = CheckFailed("\n".join(parts), comparison=comparison, diagnosis=diagnosis,
                      case=case.label)
    if exc is not None:
        raise err from exc
    raise err


# --- turning a learner's result into named tensors (an Exercise's ``outputs``) -------------

def _describe(result) -> str:
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


def run_check(ex: Exercise, fn: Callable) -> None:
    """Run ``fn`` on every case of ``ex``. Print ``✓ <name>: passed on N cases`` when all agree
    with the reference; otherwise raise :class:`CheckFailed` (or :class:`NotAttempted` for a
    function that still raises NotImplementedError) for the first failing case."""
    if not callable(fn):
        raise TypeError(f"check_{ex.name} needs your function {ex.name}; got {type(fn).__name__}")
    fn_name = getattr(fn, "__name__", ex.name)
    expected = [ex.outputs(ex.reference(*_copy(case.args)), case) for case in ex.cases]
    with _recording_calls(fn, ex.calls) as wrong_calls:
        learner, first_fail = _run_cases(ex, fn, fn_name, expected)
    if first_fail is None:
        print(f"✓ {ex.name}: passed on {len(ex.cases)} cases")
        return
    _report(ex, fn_name, expected, learner, first_fail, wrong_calls)


def _run_cases(ex: Exercise, fn: Callable, fn_name: str, expected: Sequence[dict]):
    """The learner's outputs on every case (a dict, an exception, or None where its result had
    the wrong structure) and the first failure: (case index, comparison or None, exception or
    None, notes), or None when every case passes."""
    learner: list[dict | BaseException | None] = []
    first_fail = None
    for i, case in enumerate(ex.cases):
        try:
            result, used_args = _run(fn, case)
        except NotImplementedError as exc:
            raise NotAttempted(_not_attempted(ex, fn_name, exc)) from None
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the learner with a diagnosis
            learner.append(exc)
            if first_fail is None:
                first_fail = (i, None, exc, [])
            continue
        changed = [p for name, before, after in zip(ex.arg_names, case.args, used_args, strict=True)
                   for p in _changed(before, after, name)]
        notes = [f"{fn_name} changed its argument {p} in place (+=, *= or [...] = on it, or on "
                 f"a view of it such as a[t]); the caller still needs the old value: build a "
                 f"new array instead (a = a + b rather than a += b)"
                 for p in changed]
        try:
            mine = ex.outputs(result, case)
        except CheckFailed as bad:
            if first_fail is None:
                _fail(ex, i, case, None, str(bad), notes)
            learner.append(None)
            continue
        learner.append(mine)
        comparison = compare(expected[i], mine, tolerances=ex.tolerances)
        if first_fail is None and (not comparison.ok or notes):
            first_fail = (i, comparison, None, notes)
    return learner, first_fail


def _not_attempted(ex: Exercise, fn_name: str, exc: NotImplementedError) -> str:
    """The NotAttempted message: the learner's function is still the stub, or it calls one of
    the learner's earlier functions (``Exercise.calls``) that is."""
    tb = _learner_traceback(exc)
    inner = tb.tb_frame.f_code.co_name if tb is not None else None
    if inner in ex.calls and inner != ex.name:
        return (f"not yet attempted: {fn_name} calls your {inner}, which still raises "
                f"NotImplementedError — write {inner} first (check_{inner} checks it)")
    return (f"not yet attempted: {fn_name} still raises NotImplementedError — write the "
            f"exercise's lines in place of the `raise NotImplementedError`")


def _report(ex: Exercise, fn_name: str, expected: Sequence[dict],
            learner: Sequence[dict | BaseException | None], first_fail, wrong_calls: list[str]):
    """Raise the CheckFailed of the first failing case, with the best diagnosis found."""
    i, comparison, exc, notes = first_fail
    case = ex.cases[i]
    ev = _evidence(ex, expected, learner)
    wrong_value = any(ev.case_ok(j) is False for j, m in enumerate(learner) if isinstance(m, dict))
    calls = _calls_diagnosis(wrong_calls[0], ex.name) if wrong_calls else None
    if exc is not None:
        what, diagnosis = _exception_message(ex, fn_name, exc, case)
        suspect = diagnose(ex.suspects, ex.cases, learner, ex.outputs,
                           tolerances=ex.tolerances) if wrong_value else None
        if suspect is not None:
            diagnosis = f"{diagnosis}. More precisely: {suspect.message}" if diagnosis \
                else suspect.message
        _fail(ex, i, case, None, calls or diagnosis, notes, exc, what)
    if comparison.ok and not calls:  # values right, but an argument was modified in place
        _fail(ex, i, case, comparison, notes[0], [])
    shape_rows = [r for r in comparison.rows if not r.ok and r.max_abs_err is None]
    if calls:
        diagnosis = calls
    elif shape_rows:
        diagnosis = "; ".join(_shape_message(ex, r, case) for r in shape_rows)
    elif _float32_rounding(ev):
        diagnosis = FLOAT32_ROUNDING
    elif found := _integer_division(ev):
        diagnosis = found
    else:
        suspect = diagnose(ex.suspects, ex.cases, learner, ex.outputs,
                           tolerances=_float32_tolerances(ev) or ex.tolerances)
        diagnosis = suspect.message if suspect is not None else (_relation(ev) or _generic(ev))
    _fail(ex, i, case, comparison, diagnosis, notes + _value_notes(comparison))


def _value_notes(comparison: Comparison) -> list[str]:
    """Notes on the dtypes and NaNs of the learner's tensors (float results only: an integer
    output that should be an integer, a path or indices, gets none)."""
    notes = []
    for r in comparison.rows:
        expected_float = r.expected_dtype is None or np.issubdtype(np.dtype(r.expected_dtype),
                                                                   np.floating)
        got = np.dtype(r.got_dtype) if r.got_dtype is not None else None
        if expected_float and got is not None and got.kind == "f" and got != np.float64:
            notes.append(f"{r.name} has dtype {r.got_dtype}; the case is float64 and the "
                         f"tolerance is {RTOL:g} relative: keep float64 throughout")
        elif expected_float and got is not None and got.kind in "iub":
            notes.append(f"{r.name} has dtype {r.got_dtype} where a float is expected: its "
                         f"values were made whole numbers (an integer division //, int(...), "
                         f"or floats written into an integer array)")
        if r.max_abs_err is not None and np.isnan(r.max_abs_err):
            notes.append(f"{r.name} contains NaN")
    return notes
