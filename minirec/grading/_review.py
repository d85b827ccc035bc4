"""Review notes: signs in a submission that it fakes its checks, for the instructor to read.

A tripwire, not a guard (the threat model in :mod:`minirec.grading`): code can hide its intent
(``exec``), so a surprising pass still deserves a look at its code. The notes go into the
``note`` column of the grades and the summary.
"""

from __future__ import annotations

import ast

from ._notebook import ExerciseSpec, call_name


def review_notes(nb, specs: list[ExerciseSpec]) -> list[str]:
    """Signs that a notebook fakes its checks, for the instructor to read (a tripwire: code can
    hide its intent, e.g. in ``exec``): a check cell that is not just calls of ``check_...``
    functions, or another cell that binds a ``check_...`` name (def, assignment, import from
    outside minirec or under another name) or ``run_check``."""
    notes = []
    owner = {i: s.name for s in specs for i in s.check_cells}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index in owner:
            if not _only_check_calls(cell.source):
                first = cell.source.strip().split("\n")[0][:60]
                notes.append(f"the check cell of {owner[index]} was edited (`{first}`)")
            continue
        for name in _bound_check_names(cell.source):
            notes.append(f"cell {index + 1} rebinds {name}")
    return notes


def _only_check_calls(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return bool(tree.body) and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        and call_name(node.value).startswith("check_") for node in tree.body)


def _is_guarded(name: str) -> bool:
    return name.startswith("check_") or name == "run_check"


def _bound_check_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found += [node.name] if _is_guarded(node.name) else []
        elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Store):
            name = node.id if isinstance(node, ast.Name) else node.attr
            found += [name] if _is_guarded(name) else []
        elif isinstance(node, ast.ImportFrom):
            trusted = (node.module or "").split(".")[0] == "minirec"
            for alias in node.names:
                bound = alias.asname or alias.name
                if _is_guarded(bound) and (not trusted or alias.name != bound):
                    found.append(bound)
        elif isinstance(node, ast.Call) and call_name(node) == "setattr" and len(node.args) > 1:
            key = node.args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                    and _is_guarded(key.value):
                found.append(key.value)
    return list(dict.fromkeys(found))
