"""Review flags: signs, in the exercise cells the grader runs, that a submission reaches into the
grading machinery or takes its answer from minirec, for the instructor to read.

Only the learner's exercise cells are run (:mod:`._assemble`), so only they are read. A flag
is not a verdict: the grades stand, and the ``review`` column of the CSV and the feedback say
why the submission deserves a look. What is flagged, read from the cell's syntax tree (or its
words, where it does not parse):

- IPython's machinery: ``get_ipython``, ``import IPython`` / ``ipykernel``, the shell's hooks
  (``set_custom_exc``, ``showtraceback``, ``input_transformers_*``, ``ast_transformers``,
  ``display_pub``, ``user_ns``);
- minirec's checks: ``minirec.check`` or its modules imported or reached, a ``check_...`` or
  ``run_check`` name rebound, a check called from the exercise cell, minirec's own version of
  the exercise's function used (``ref.affine_combine``);
- the interpreter's: ``sys.modules``, frames (``sys._getframe``, ``inspect``, ``f_back``,
  ``tb_frame``, ...), ``gc``, ``builtins`` / ``__builtins__``, ``globals()`` / ``vars()``,
  ``__code__`` / ``__globals__`` / ``__closure__`` / ``__dict__``, ``sys.settrace``,
  ``importlib``, ``ctypes``, ``subprocess``;
- text run as code (``exec``, ``eval``, ``compile``, ``__import__``) and files read
  (``open``, ``read_text`` / ``read_bytes``, the words ``.ipynb`` or ``solutions``).

Code can hide its intent from a reader (a string decoded at run time): the kernel watches too
(:mod:`minirec.check._verdict`), and its alerts become flags of their own (:mod:`._results`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping

from ._notebook import call_name

_NAMES = {
    "get_ipython": "get_ipython (IPython's shell)",
    "__builtins__": "__builtins__",
    "__import__": "__import__",
    "globals": "globals()",
    "vars": "vars()",
    "exec": "exec()",
    "eval": "eval()",
    "compile": "compile()",
    "open": "open()",
    "breakpoint": "breakpoint()",
    "setattr": "setattr()",
    "delattr": "delattr()",
}
_ATTRIBUTES = {
    "_getframe": "sys._getframe (frames)",
    "_current_frames": "sys._current_frames (frames)",
    "f_back": "f_back (frames)", "f_locals": "f_locals (frames)", "f_globals": "f_globals (frames)",
    "tb_frame": "tb_frame (frames)", "gi_frame": "gi_frame (frames)",
    "__globals__": "__globals__", "__code__": "__code__", "__closure__": "__closure__",
    "__dict__": "__dict__", "__subclasses__": "__subclasses__", "__builtins__": "__builtins__",
    "settrace": "settrace", "setprofile": "setprofile",
    "set_custom_exc": "set_custom_exc (IPython's hook)",
    "showtraceback": "showtraceback (IPython's hook)",
    "input_transformers_cleanup": "input_transformers_cleanup (IPython's hook)",
    "input_transformers_post": "input_transformers_post (IPython's hook)",
    "ast_transformers": "ast_transformers (IPython's hook)",
    "display_pub": "display_pub (IPython's output)",
    "user_ns": "user_ns (IPython's namespace)",
    "read_text": "read_text() (a file)", "read_bytes": "read_bytes() (a file)",
}
_MODULES = {
    "IPython": "IPython", "ipykernel": "ipykernel", "inspect": "inspect (frames)",
    "gc": "gc", "builtins": "builtins", "importlib": "importlib", "ctypes": "ctypes",
    "subprocess": "subprocess", "traceback": "traceback (frames)",
    "minirec.check": "minirec.check",
}
_WORDS = {".ipynb": "the text '.ipynb' (a notebook file)",
          "solutions": "the word 'solutions'"}


def review_exercise_cells(sources: Mapping[str, str],
                          functions: Mapping[str, Iterable[str]]) -> list[str]:
    """One flag per exercise cell (``sources``: exercise → the learner's source that is run)
    that reaches into the machinery; ``functions``: exercise → the functions it asks for."""
    flags = []
    for name, source in sources.items():
        reasons = cell_reasons(source, tuple(functions.get(name, ())))
        if reasons:
            flags.append(f"the exercise cell of {name}: {', '.join(reasons)}")
    return flags


def cell_reasons(source: str, own: tuple[str, ...] = ()) -> list[str]:
    """What in ``source`` reaches into the machinery or takes the answer from minirec (the
    rules: the module's docstring), in the order found, each said once."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return _word_reasons(source, own)
    found: list[str] = []
    for node in ast.walk(tree):
        found += _node_reasons(node, own)
    found += [f"rebinds {n}" for n in _bound_check_names(tree)]
    found += [text for word, text in _WORDS.items() if _mentions(tree, word)]
    return list(dict.fromkeys(found))


def _node_reasons(node: ast.AST, own: tuple[str, ...]) -> list[str]:
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return [_NAMES[node.id]]
    if isinstance(node, ast.Attribute):
        return _attribute_reasons(node, own)
    if isinstance(node, ast.Import):
        return [r for alias in node.names if (r := _module_reason(alias.name))]
    if isinstance(node, ast.ImportFrom):
        return _import_from_reasons(node, own)
    if isinstance(node, ast.Call):
        called = call_name(node)
        if called.startswith("check_") or called == "run_check":
            return [f"calls {called} itself"]
    return []


def _attribute_reasons(node: ast.Attribute, own: tuple[str, ...]) -> list[str]:
    base = node.value.id if isinstance(node.value, ast.Name) else None
    if node.attr in _ATTRIBUTES:
        return [_ATTRIBUTES[node.attr]]
    if base == "sys" and node.attr == "modules":
        return ["sys.modules"]
    if base == "minirec" and node.attr == "check":
        return ["minirec.check"]
    if node.attr in own and isinstance(node.ctx, ast.Load):
        return [f"minirec's own {node.attr} ({base or '...'}.{node.attr})"]
    return []


def _module_reason(module: str) -> str | None:
    for name, text in _MODULES.items():
        if module == name or module.startswith(name + "."):
            return f"import {module}" if module != name else f"import {text}"
    return None


def _import_from_reasons(node: ast.ImportFrom, own: tuple[str, ...]) -> list[str]:
    module = node.module or ""
    reasons = [r] if (r := _module_reason(module)) else []
    if module == "minirec" and any(a.name == "check" for a in node.names):
        reasons.append("minirec.check")
    if module.split(".")[0] == "minirec":
        reasons += [f"minirec's own {a.name} (from {module})" for a in node.names if a.name in own]
    return reasons


def _mentions(tree: ast.AST, word: str) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and word in n.value
               for n in ast.walk(tree))


def _word_reasons(source: str, own: tuple[str, ...]) -> list[str]:
    """A cell that does not parse: the flagged names and words that appear in it."""
    found = [text for word, text in {**_NAMES, **_ATTRIBUTES}.items()
             if re.search(rf"(?<![\w.]){re.escape(word)}\b" if word in _NAMES
                          else rf"\.{re.escape(word)}\b", source)]
    found += [f"import {m}" for m in _MODULES if re.search(rf"\bimport\s+{re.escape(m)}\b|"
                                                          rf"\bfrom\s+{re.escape(m)}\b", source)]
    found += [text for word, text in _WORDS.items() if word in source]
    found += [f"minirec's own {f}" for f in own if re.search(rf"\.{re.escape(f)}\b", source)]
    return list(dict.fromkeys(found))


def _is_guarded(name: str) -> bool:
    return name.startswith("check_") or name == "run_check"


def _bound_check_names(tree: ast.AST) -> list[str]:
    """``check_...`` and ``run_check`` names the code binds: def, class, assignment, import from
    outside minirec or under another name, ``setattr(..., "check_...", ...)``."""
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
