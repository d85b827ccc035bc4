"""The learner's install (README: ``pip install -e ".[lab]"``) gives everything the lessons import:
every third-party module imported anywhere in ``lessons/*.py`` comes from a distribution named in
pyproject.toml's core ``dependencies`` or its ``lab`` extra; and every extra the README tells
someone to install exists."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")                          # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``Jupyter_Book`` → ``jupyter-book``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """``"hmmlearn>=0.3"`` → ``"hmmlearn"``."""
    return normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0))


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def learner_distributions() -> set[str]:
    """The distributions ``pip install ".[lab]"`` asks for by name: core and lab."""
    p = project()
    return {requirement_name(r) for r in p["dependencies"] + p["optional-dependencies"]["lab"]}


def lesson_imports() -> dict[str, set[str]]:
    """``{top-level module: {lesson files}}`` for every absolute import in lessons/*.py (at any
    depth: inside functions too), the standard library and minirec left out."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "lessons").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "minirec":
                    found.setdefault(top, set()).add(path.name)
    return found


def test_the_lessons_import_third_party_modules():
    """The scan sees the lessons' imports (numpy in every lesson, hmmlearn in lesson 10)."""
    imports = lesson_imports()
    assert {"numpy", "torch", "hmmlearn"} <= set(imports)
    assert "10_hmm_rnns.py" in imports["hmmlearn"]


def test_every_module_the_lessons_import_is_in_the_learner_install():
    provided_by = metadata.packages_distributions()             # module -> distributions
    allowed = learner_distributions()
    missing = {}
    for module, lessons in sorted(lesson_imports().items()):
        dists = provided_by.get(module)
        if not dists:
            missing[module] = f"not installed here, so its distribution is unknown ({sorted(lessons)})"
        elif not {normalized(d) for d in dists} & allowed:
            missing[module] = (f"from {sorted(dists)}, in neither the dependencies nor the lab "
                               f"extra of pyproject.toml ({sorted(lessons)})")
    assert not missing, f"lessons import modules a learner's install lacks: {missing}"


def test_every_extra_the_readme_names_exists():
    extras = set(project()["optional-dependencies"])
    named = {e.strip() for group in re.findall(r'"\.\[([^\]]+)\]"', (ROOT / "README.md").read_text())
             for e in group.split(",")}
    assert "lab" in named, "the README documents no learner install (.[lab])"
    assert named <= extras, f"the README names extras pyproject.toml lacks: {sorted(named - extras)}"
