"""Reading a notebook: bytes -> an nbformat 4 notebook, or why the bytes are not one; and finding
its exercises (an exercise cell and the check cells that follow it, by the tags
:mod:`minirec.notebooks` writes; by the ``check_...`` calls where the tags were lost)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

import nbformat

from minirec.notebooks import CHECK_TAG, EXERCISE_TAG

_CHECK_CALL = re.compile(r"\bcheck_(\w+)\s*\(")


class NotANotebook(ValueError):
    """The bytes are not a Jupyter notebook; ``str()`` says what they are instead."""


def read_notebook(data: bytes):
    """Parse a notebook (nbformat 4) from bytes; raise :class:`NotANotebook` saying why not."""
    if not data.strip():
        raise NotANotebook("empty file")
    if data.startswith(b"%PDF"):
        raise NotANotebook("a PDF file, not a notebook")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotANotebook("a binary file, not a notebook (not UTF-8 text)") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotANotebook(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise NotANotebook("JSON, but not a notebook (no list of cells)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds on bad input
        raise NotANotebook(f"a malformed notebook ({type(exc).__name__}: {exc})") from None
    for cell in nb.cells:
        if not isinstance(cell.get("source"), str) or cell.get("cell_type") not in (
                "code", "markdown", "raw"):
            raise NotANotebook("a malformed notebook (a cell without source or type)")
    return nb


@dataclass(frozen=True)
class ExerciseSpec:
    """An exercise of a notebook: its name, the index of its exercise cell (None when it was
    found without tags) and the indices of its check cells."""

    name: str
    exercise_cell: int | None
    check_cells: tuple[int, ...]


def cell_tags(cell) -> list[str]:
    """The cell's tags; none where the metadata is malformed (a submission's may be)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _defined_functions(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.findall(r"^def\s+(\w+)", source, flags=re.M)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _checked_name(check_source: str, defined: list[str]) -> str | None:
    """The function a check cell checks: ``check_<name>`` when the exercise defines ``name`` (or
    when nothing else is known), else the name passed as the first argument."""
    try:
        tree = ast.parse(check_source)
    except SyntaxError:
        match = _CHECK_CALL.search(check_source)
        return match.group(1) if match else None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = call_name(node)
        if not called.startswith("check_"):
            continue
        name = called.removeprefix("check_")
        first = node.args[0].id if node.args and isinstance(node.args[0], ast.Name) else None
        if name in defined or first is None:
            return name
        return first
    return None


def find_exercises(nb) -> list[ExerciseSpec]:
    """The exercises of a notebook, in order (the rules: :mod:`minirec.grading`, "Exercises")."""
    cells = nb.cells
    tagged = any(CHECK_TAG in cell_tags(c) for c in cells if c.cell_type == "code")
    groups: list[tuple[int | None, list[int]]] = []
    current: int | None = None
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        tags = cell_tags(cell)
        if tagged:
            if EXERCISE_TAG in tags:
                current = index
                groups.append((index, []))
            elif CHECK_TAG in tags:
                if not groups or groups[-1][0] != current or current is None:
                    groups.append((None, []))
                    current = None
                groups[-1][1].append(index)
            else:
                current = None
        elif _CHECK_CALL.search(cell.source) and _is_check_call(cell.source):
            groups.append((None, [index]))
    specs, seen = [], {}
    for exercise_cell, checks in groups:
        if not checks:
            continue
        defined = _defined_functions(cells[exercise_cell].source) if exercise_cell is not None \
            else []
        name = _checked_name(cells[checks[0]].source, defined) or (defined[0] if defined else
                                                                   f"exercise {len(specs) + 1}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        specs.append(ExerciseSpec(name, exercise_cell, tuple(checks)))
    return specs


def _is_check_call(source: str) -> bool:
    """Untagged fallback: a cell whose code is a call of a ``check_...`` function."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) for n in tree.body) \
        and _checked_name(source, []) is not None




def call_name(call: ast.Call) -> str:
    """The name a call calls: ``f`` of ``f(...)`` and of ``module.f(...)``."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
