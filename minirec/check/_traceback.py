"""Where and why the learner's code raised: the learner's own line (not minirec's, NumPy's or
Torch's), the operands of the product or element-wise operation whose shapes do not fit, and
the diagnosis of an exception raised inside a check."""

from __future__ import annotations

import ast
import linecache
import os
import re
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minirec._validate import is_torch
from minirec.check._compare import _fmt_shape
from minirec.check._exercise import Case, Exercise

__all__ = ["OUTER_PRODUCT", "exception_message", "learner_traceback"]

OUTER_PRODUCT = "a dot product where an outer product belongs (np.outer / a[:, None] * b[None, :])"

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


def learner_traceback(exc: BaseException):
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
    """A name or a dotted attribute path (``np.linalg.norm``)."""
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
    """The shape of an array or tensor, else None."""
    return tuple(value.shape) if isinstance(value, np.ndarray) or is_torch(value) else None


@dataclass(frozen=True)
class _Operands:
    """The two operands of the product or element-wise operation that raised."""

    source: str
    left: tuple
    right: tuple
    kind: str              # "matmul", "mul" (element-wise *) or "other"
    left_source: str = ""
    right_source: str = ""

    @property
    def vectors(self) -> bool:
        """Two vectors of different lengths (where a matrix product needs an outer one)."""
        return len(self.left) == len(self.right) == 1 and self.left != self.right

    def text(self) -> str:
        verb = "multiplies" if self.kind == "matmul" else "combines"
        return f"`{self.source}` {verb} {_fmt_shape(self.left)} and {_fmt_shape(self.right)}"

    def transposed_operand(self) -> str | None:
        """When an operand is written ``X.T`` and the product fits without the ``.T``: what
        to say about it."""
        for src, shape, other, left in ((self.left_source, self.left, self.right, True),
                                        (self.right_source, self.right, self.left, False)):
            if not (src.endswith(".T") and len(shape) == 2):
                continue
            plain = shape[::-1]
            shapes = (plain, other) if left else (other, plain)
            if not _mismatched(*shapes, matmul=True):
                return (f"{src} is a transpose, {_fmt_shape(shape)}; without the .T, "
                        f"{src[:-2]} {_fmt_shape(plain)} fits")
        return None


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
    """The two shapes do not fit a matrix product (``matmul``) or do not broadcast."""
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
    tb = learner_traceback(exc)
    source = _failing_source(tb) if tb is not None else None
    if not source:
        return None
    tree = _parse(source)
    if tree is None:
        return None
    for node, left, right, kind in _operand_pairs(tree):
        if (kind == "matmul") != matmul:
            continue
        shapes = _shape(_evaluate(left, tb.tb_frame)), _shape(_evaluate(right, tb.tb_frame))
        if None not in shapes and _mismatched(*shapes, matmul):
            return _Operands(ast.get_source_segment(source, node) or source, *shapes, kind,
                             ast.get_source_segment(source, left) or "",
                             ast.get_source_segment(source, right) or "")
    return None


def _parse(source: str) -> ast.AST | None:
    """The syntax tree of an expression, or of a whole line (a statement); None if neither."""
    for mode in ("eval", "exec"):
        try:
            return ast.parse(source, mode=mode)
        except SyntaxError:
            continue
    return None


def _failing_mask(exc: BaseException) -> tuple[str, tuple, tuple] | None:
    """(source, array shape, mask shape) of the learner's indexing by a boolean mask whose
    shape does not fit, found in the expression that raised."""
    tb = learner_traceback(exc)
    source = _failing_source(tb) if tb is not None else None
    tree = _parse(source) if source else None
    if tree is None:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Subscript):
            continue
        value, mask = _evaluate(node.value, tb.tb_frame), _evaluate(node.slice, tb.tb_frame)
        shapes = _shape(value), _shape(mask)
        if None in shapes or getattr(mask, "dtype", None) not in (np.bool_, _torch_bool()):
            continue
        if shapes[0][:len(shapes[1])] != shapes[1]:
            return ast.get_source_segment(source, node) or source, *shapes
    return None


def _torch_bool():
    """torch.bool when torch is loaded (np.bool_ otherwise)."""
    torch = sys.modules.get("torch")
    return torch.bool if torch is not None else np.bool_


_MASK_WORDS = ("boolean index did not match", "shape of the mask")


def _mask_diagnosis(exc: BaseException) -> str:
    """A boolean mask whose shape does not fit the array it indexes."""
    found = _failing_mask(exc)
    cause = ("one of the two was reduced along the wrong axis (an argmax, sum or mean over the "
             "wrong axis) or built from a differently shaped array")
    if found is None:
        return ("a boolean mask does not fit the array it indexes: its shape must equal the "
                f"array's leading axes — {cause}")
    source, shape, mask = found
    return (f"`{source}` indexes an array of shape {_fmt_shape(shape)} with a boolean mask of "
            f"shape {_fmt_shape(mask)}: a mask must have the shape of the axes it selects — "
            f"{cause}")


_MATMUL_WORDS = ("matmul", "not aligned", "core dimension", "cannot be multiplied",
                 "size mismatch", "inconsistent tensor size")
_BROADCAST_WORDS = ("broadcast", "must match the size of tensor")


def _vector_dot_in_message(text: str) -> bool:
    """numpy's ``np.dot`` or torch's ``dot`` of two vectors of different lengths."""
    return bool(re.search(r"shapes \(\d+,\) and \(\d+,\) not aligned", text)
                or re.search(r"inconsistent tensor size, expected tensor \[\d+\] and src \[\d+\]",
                             text))


def _matmul_diagnosis(ex: Exercise, exc: BaseException, hint_text: str) -> str:
    """The diagnosis of a matrix product whose shapes do not fit: an outer product, a transposed
    weight or operand, or the two axes that must agree."""
    ops = _failing_operands(exc, matmul=True)
    if (ops is not None and ops.vectors) or (ops is None and _vector_dot_in_message(str(exc))):
        where = f": {ops.text()}" if ops is not None else ""
        return f"{OUTER_PRODUCT}{where}"
    transposed = ops.transposed_operand() if ops is not None else None
    if ex.weights:
        hint = f" ({hint_text})" if hint_text else ""
        found = f"; {ops.text()}" if ops is not None else ""
        found += f": {transposed}" if transposed else ""
        return f"a matrix product has mismatched shapes: a weight looks transposed{hint}{found}"
    hint = f"; {hint_text}" if hint_text else ""
    if ops is None:
        return ("a matrix product has mismatched shapes: the left operand's last axis must "
                f"equal the right operand's first (a vector) or second-to-last axis{hint}")
    if transposed:
        return f"a matrix product has mismatched shapes: {ops.text()}: {transposed}{hint}"
    axis = "first" if len(ops.right) == 1 else "second-to-last"
    return (f"a matrix product has mismatched shapes: {ops.text()} — the left operand's last "
            f"axis ({ops.left[-1]}) must equal the right operand's {axis} axis "
            f"({ops.right[0] if len(ops.right) == 1 else ops.right[-2]}){hint}")


def _broadcast_diagnosis(ex: Exercise, exc: BaseException, hint_text: str) -> str:
    """The diagnosis of an element-wise operation whose shapes do not broadcast."""
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


def exception_message(ex: Exercise, fn_name: str, exc: BaseException,
                       case: Case) -> tuple[str, str | None]:
    """(what happened, diagnosis or None) for an exception raised by the learner's function;
    what happened names the learner's line that raised."""
    text = f"{fn_name} raised {type(exc).__name__}: {exc}"
    tb = learner_traceback(exc)
    if tb is not None:
        text += f"\n  {_learner_line(tb)}"
    text += f"\nThe case's shapes: {_case_shapes(ex, case)}"
    lower = str(exc).lower()
    hint_text = ex.matmul_hint(case) if callable(ex.matmul_hint) else ex.matmul_hint
    if isinstance(exc, (ValueError, RuntimeError)) and any(w in lower for w in _MATMUL_WORDS):
        return text, _matmul_diagnosis(ex, exc, hint_text)
    if isinstance(exc, (ValueError, RuntimeError)) and any(w in lower for w in _BROADCAST_WORDS):
        return text, _broadcast_diagnosis(ex, exc, hint_text)
    if isinstance(exc, IndexError) and any(w in lower for w in _MASK_WORDS):
        return text, _mask_diagnosis(exc)
    return text, None


def _case_shapes(ex: Exercise, case: Case) -> str:
    """The shapes (and scalar values) of a case's arguments: ``M (3, 5), k (5,), theta=0.3``."""
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
