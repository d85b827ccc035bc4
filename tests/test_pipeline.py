"""The lesson pipeline: lessons/*.py -> solutions/ + exercises/ (+ book/lessons/) -> website.

Every property is tested on a small fixture lesson (tests/fixtures/lessons/00_demo.py, built
into a temporary copy of the repository) and on every real lesson in lessons/, whose committed
notebooks must be in sync with it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from minirec import cli, notebooks
from minirec.notebooks import (
    BookBuildError,
    LessonError,
    blank_isolation_problems,
    blank_run_cells,
    build,
    build_book,
    check_exercise,
    split_lesson,
    stale,
)

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests._leaks import counts, find_leaks, visible_above
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from _leaks import counts, find_leaks, visible_above

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "lessons" / "00_demo.py"
REAL = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
CASES = ["fixture:00_demo"] + [p.stem for p in REAL]

MARKER_LINE = re.compile(r"^\s*#\s*(BEGIN|END) SOLUTION")
MARKER_ANYWHERE = re.compile(r"\b(BEGIN|END)[ _]SOLUTION")


def _quiet(_message: str) -> None:
    pass


def _make_repo(tmp: Path, lessons=(FIXTURE,)) -> Path:
    """A minimal repository: pyproject.toml, lessons/, and the book's configuration and pages
    (without what builds generate)."""
    (tmp / "lessons").mkdir(parents=True)
    (tmp / "pyproject.toml").write_text("")
    for lesson in lessons:
        shutil.copy(lesson, tmp / "lessons" / lesson.name)
    shutil.copytree(ROOT / "book", tmp / "book", ignore=shutil.ignore_patterns(
        "_build", "lessons", "_generated", "api", "performance", "lesson_times.json", "__pycache__"))
    return tmp


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = _make_repo(tmp_path_factory.mktemp("repo"))
    build(root=root, log=_quiet)
    return root


class Case:
    def __init__(self, root: Path, stem: str):
        self.root, self.stem = root, stem
        self.lesson = root / "lessons" / f"{stem}.py"
        self.solution = root / "solutions" / f"{stem}.ipynb"
        self.exercise = root / "exercises" / f"{stem}.ipynb"

    def read(self, path: Path):
        assert path.is_file(), f"{path} is missing: run `minirec build {self.stem}`"
        return nbformat.read(path, as_version=4)


@pytest.fixture(params=CASES)
def case(request) -> Case:
    if request.param.startswith("fixture:"):
        return Case(request.getfixturevalue("demo_root"), request.param.split(":", 1)[1])
    return Case(ROOT, request.param)


def _regions(lesson_text: str):
    """Per exercise cell of the lesson (read with jupytext, independently of the pipeline):
    (lines inside solution regions, lines outside them), stripped and non-blank."""
    cells = []
    for cell in jupytext.reads(lesson_text, fmt="py:percent").cells:
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        inside, outside, open_ = set(), set(), False
        for line in cell.source.split("\n"):
            if MARKER_LINE.match(line):
                open_ = "BEGIN" in line
                continue
            if line.strip():
                (inside if open_ else outside).add(line.strip())
        cells.append((inside, outside))
    return cells


def _lines(nb) -> set[str]:
    return {line.strip() for cell in nb.cells for line in cell.source.split("\n") if line.strip()}


def _exercise_name(source: str, index: int) -> str:
    match = re.search(r"^def (\w+)", source, re.MULTILINE)
    return match.group(1) if match else f"exercise{index}"


def _exercises(lesson: Path) -> list[tuple[str, int, str]]:
    """(lesson stem, index among the lesson's exercise cells, the function it asks for)."""
    cells = [c for c in jupytext.read(lesson).cells if "exercise" in c.metadata.get("tags", [])]
    return [(lesson.stem, k, _exercise_name(c.source, k)) for k, c in enumerate(cells)]


EXERCISES = [exercise for lesson in REAL for exercise in _exercises(lesson)]
GLUED_CELL_MARKER = re.compile(r"#\s*%%")


# --------------------------------------------------------------------------------------------
# Every lesson: the fixture and the real ones
# --------------------------------------------------------------------------------------------


def test_generated_notebooks_are_in_sync_with_the_lesson(case):
    problems = stale([case.stem], root=case.root)
    assert problems == [], "\n".join(problems)


def test_no_solution_text_leaks_into_the_exercise_notebook(case):
    text = case.lesson.read_text(encoding="utf-8")
    exercise, solution = case.read(case.exercise), case.read(case.solution)
    regions = _regions(text)
    assert regions, "the lesson has no exercise cell"
    exercise_cells = [c for c in exercise.cells if "exercise" in c.metadata.get("tags", [])]
    assert len(exercise_cells) == len(regions)
    # In its own cell, no solution line may survive (unless the cell also has it outside).
    for (inside, outside), cell in zip(regions, exercise_cells, strict=True):
        assert inside, "an exercise cell with an empty solution region"
        cell_lines = {line.strip() for line in cell.source.split("\n")}
        assert not (inside - outside) & cell_lines, cell.source
        assert "raise NotImplementedError(" in cell.source
    # Anywhere in the notebook, no solution line that the lesson shows nowhere else.
    visible = set()
    in_region = False
    for line in text.split("\n"):
        if MARKER_LINE.match(line):
            in_region = "BEGIN" in line
        elif not in_region and line.strip():
            visible.add(line.strip())
    secret = set().union(*(inside for inside, _ in regions)) - visible
    assert not secret & _lines(exercise)
    # No marker in either notebook.
    for nb in (exercise, solution):
        for cell in nb.cells:
            assert not MARKER_ANYWHERE.search(cell.source), cell.source


def test_exercise_notebook_has_no_outputs(case):
    nb = case.read(case.exercise)
    assert nb.nbformat == 4 and nb.nbformat_minor == 5
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata


def test_solution_notebook_is_executed_with_outputs(case):
    nb = case.read(case.solution)
    assert nb.nbformat == 4 and nb.nbformat_minor == 5
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        "not executed top to bottom in one kernel: run `minirec build`"
    )
    assert any(c.outputs for c in code), "no outputs at all"
    for cell in code:
        assert "execution" not in cell.metadata  # no timing metadata: stable bytes
        if "raises-exception" not in cell.metadata.get("tags", []):
            assert all(o.output_type != "error" for o in cell.outputs), cell.source
    # Every check passes in the solution notebook (it printed, it did not raise).
    checks = [c for c in code if "check" in c.metadata.get("tags", [])]
    assert checks


def test_blank_exercise_fails_exactly_at_its_check_cells(case):
    """Run as shipped, its exercise and check cells and the cells they use: each check cell
    raises NotAttempted; no other cell raises anything. (The other cells run in the solution
    notebook, which strict nbval executes; the next test shows they behave the same here.)"""
    nb = case.read(case.exercise)
    assert check_exercise(nb, cwd=case.exercise.parent) == []


def test_cells_the_blank_run_skips_use_nothing_an_exercise_defines(case):
    assert blank_isolation_problems(case.read(case.solution)) == []


def test_no_cell_marker_inside_markdown(case):
    """A `# %%` glued to prose (`...train in.# %% [markdown]`) is no cell break: jupytext keeps it
    in the markdown, and the page shows it literally."""
    for cell in case.read(case.solution).cells:
        if cell.cell_type == "markdown":
            assert not GLUED_CELL_MARKER.search(cell.source), (
                f"{case.lesson.name}: a `# %%` cell marker inside a markdown cell (put it on a "
                f"line of its own): {cell.source[:200]!r}"
            )


def test_a_glued_cell_marker_stays_in_the_markdown():
    """What the test above looks for: the marker does not start a cell, it stays in the text."""
    solution, _ = split_lesson("# %% [markdown]\n# Some prose.# %% [markdown]\n# More prose.\n")
    assert len(solution.cells) == 1 and GLUED_CELL_MARKER.search(solution.cells[0].source)


@pytest.mark.parametrize("stem, index, name", EXERCISES, ids=[f"{s}-{n}" for s, _, n in EXERCISES])
def test_no_answer_is_readable_above_its_exercise(stem, index, name):
    """CONTRIBUTING.md, the arc of a lesson, item 5: nothing above an exercise - no cell's
    source as the exercise notebook shows it, no output of the solution notebook (what
    `show(...)` printed) - contains a line of its solution, compared as tests/_leaks.py says
    (thresholds documented there)."""
    case = Case(ROOT, stem)
    solution, exercise = case.read(case.solution), case.read(case.exercise)
    inside, outside = _regions(case.lesson.read_text(encoding="utf-8"))[index]
    position = [k for k, c in enumerate(solution.cells)
                if "exercise" in c.metadata.get("tags", [])][index]
    above = visible_above(solution.cells, {c.id: c for c in exercise.cells}, position)
    leaks = find_leaks(sorted(inside), sorted(outside), above)
    assert not leaks, f"the answer to `{name}` can be read above it in {stem}:\n" + "\n".join(
        f"  {leak.where}: {leak.seen!r}\n    reads like the solution's {leak.solution_line!r}"
        for leak in leaks
    ) + ("\nshow the package's version after the exercise's check cell (CONTRIBUTING.md, the arc "
          "of a lesson, item 5)")


# The exercises whose answer a `show(...)` cell printed above them before issue 11 (its item 1), as
# the detector found them on the committed notebooks of that day: the exercise's lines and the
# cells above it that matched, copied into tests/fixtures/leaks/. The issue's "03 cell 35"
# (`show(ref.chunked)` above `chunk_fixup`) is not among them: it prints the generic
# `combine(carry, local)`, no line of the affine fix-up the exercise asks for, so a comparison of
# lines cannot see it; it was moved below the check all the same.
BEFORE_ISSUE_11 = json.loads(
    (ROOT / "tests" / "fixtures" / "leaks" / "before_issue_11.json").read_text(encoding="utf-8"))
ISSUE_11_LEAKS = {
    ("04_attention_as_rnn", "attention_combine"),  # show(scan.softmax_attention_combine)
    ("07_moe_routing", "top_k_route"),  # show(ref.top_k_route)
    ("09_neural_memory", "delta_rule_write"),  # show(ref.delta_rule_memory)
    ("09_neural_memory", "titans_step"),  # show(ref.titans_linear)
    ("09_neural_memory", "titans_chunk"),  # show(ref.titans_chunked), partly
    ("13_long_context", "selective_scan_step"),  # show(ssm_ref.discretize), partly
}


def test_the_leak_fixtures_are_the_cases_of_issue_11():
    assert {(s["lesson"], s["exercise"]) for s in BEFORE_ISSUE_11} == ISSUE_11_LEAKS


@pytest.mark.parametrize("snippet", BEFORE_ISSUE_11,
                         ids=[f"{s['lesson']}-{s['exercise']}" for s in BEFORE_ISSUE_11])
def test_the_leak_detector_fires_on_the_show_cells_of_issue_11(snippet):
    leaks = find_leaks(snippet["solution"], snippet["stub"], list(snippet["above"].items()))
    found = [[leak.solution_line, leak.seen] for leak in leaks]
    assert found and found == snippet["leaks"]
    # and not once the printed reference is gone
    sources = [(where, text) for where, text in snippet["above"].items() if "source" in where]
    assert find_leaks(snippet["solution"], snippet["stub"], sources) == []


@pytest.mark.parametrize("line", [
    "return out", "h = h0", "for t in range(T):", "dx = np.zeros_like(x)", "T = len(a)",
    "carry_a, carry_b = a[start - 1], b[start - 1]", 'with np.errstate(divide="ignore"):',
    "    # a comment: error = v - M @ k", '"""M_new = M + θ (v − M k) kᵀ."""',
])
def test_trivial_lines_do_not_count_as_leaks(line):
    assert not counts(line)


@pytest.mark.parametrize("line", ["m = np.maximum(mA, mB)", "error = v - M @ k",
                                  "return M + theta * np.outer(error, k)"])
def test_substantive_lines_count(line):
    assert counts(line)


def test_leaks_are_found_through_formatting_subscripts_and_targets_not_in_the_stub():
    solution = ["        S = S + np.outer(phi(k[t]), v[t])", "        o[t] = phi(q[t]) @ S / z"]
    shown = "def f(k, v):\n    S_next = S+np.outer( phi(k[:, i]), v[i] )   # Σ φ(k) vᵀ\n"
    leaks = find_leaks(solution, ["def f(k, v):"], [("cell 3 output", shown)])
    assert [(leak.solution_line, leak.where) for leak in leaks] == [
        ("S = S + np.outer(phi(k[t]), v[t])", "cell 3 output")]
    # a line the exercise's own stub shows is no leak
    assert find_leaks(solution, ["S = S + np.outer(phi(k[t]), v[t])  # given"],
                      [("cell 3 output", shown)]) == []
    # near-identical (one name differs) still is; a different computation is not
    assert find_leaks(["M_all = linear_recurrence((1.0 - alpha).reshape(C, 1, 1), S_all, M)"], [],
                      [("x", "M_seq[n] = linear_recurrence(1.0 - alpha[c], S_seq[n], M)")])
    assert not find_leaks(["error = v - M @ k"], [], [("x", "error = v + M @ k.T - 1")])


@pytest.mark.parametrize("lesson", REAL, ids=[p.stem for p in REAL])
def test_real_lesson_has_at_least_three_exercises(lesson):
    cells = jupytext.read(lesson).cells
    exercises = [c for c in cells if "exercise" in c.metadata.get("tags", [])]
    assert len(exercises) >= 3, "CONTRIBUTING.md, the arc of a lesson: at least three exercises"


# --------------------------------------------------------------------------------------------
# The splitter
# --------------------------------------------------------------------------------------------


def test_stubs_replace_each_region_at_its_indentation():
    solution, exercise = split_lesson(FIXTURE.read_text(encoding="utf-8"), path="00_demo.py")
    ex = [c.source for c in exercise.cells if "exercise" in c.metadata.get("tags", [])]
    assert '        raise NotImplementedError("Exercise: update h from h and x[t]")' in ex[0]
    assert ex[0].count("raise NotImplementedError") == 1
    assert '    raise NotImplementedError("Exercise: replace this line with your code")' in ex[1]
    assert '    raise NotImplementedError("Exercise: return the weighted sum over time")' in ex[1]
    assert ex[1].count("raise NotImplementedError") == 2
    for source in ex:
        compile(source, "<exercise>", "exec")  # still valid Python
    # solution-only cells are dropped from the exercise notebook only
    only = [c for c in solution.cells if "solution-only" in c.metadata.get("tags", [])]
    assert len(only) == 1 and len(solution.cells) == len(exercise.cells) + 1
    # other tags pass through; ids are stable and shared by the two notebooks
    assert any("nbval-ignore-output" in c.metadata.get("tags", []) for c in exercise.cells)
    assert {c.id for c in exercise.cells} <= {c.id for c in solution.cells}
    again, _ = split_lesson(FIXTURE.read_text(encoding="utf-8"), path="00_demo.py")
    assert [c.id for c in again.cells] == [c.id for c in solution.cells]
    for cell in solution.cells:
        assert set(cell.metadata) <= {"tags"}, cell.metadata  # no jupytext bookkeeping


def test_hint_is_quoted_safely():
    text = (
        '# %% tags=["exercise"]\ndef f():\n'
        '    # BEGIN SOLUTION: say "hi" \\ twice\n    return 1\n    # END SOLUTION\n\n'
        '# %% tags=["check"]\nf\n'
    )
    _, exercise = split_lesson(text)
    source = exercise.cells[0].source
    namespace = {}
    exec(source, namespace)
    with pytest.raises(NotImplementedError, match=r'Exercise: say "hi" \\ twice'):
        namespace["f"]()


def _lesson(body: str) -> str:
    return '# %% [markdown]\n# # Title\n\n# %% tags=["exercise"]\n' + body + (
        '\n\n# %% tags=["check"]\ncheck()\n'
    )


BAD = {
    "begin without end": (
        _lesson("def f():\n    # BEGIN SOLUTION\n    return 1\n"),
        6,
        "no `# END SOLUTION`",
    ),
    "end without begin": (
        _lesson("def f():\n    return 1\n    # END SOLUTION\n"),
        7,
        "without a `# BEGIN SOLUTION`",
    ),
    "nested begin": (
        _lesson(
            "def f():\n    # BEGIN SOLUTION\n    x = 1\n    # BEGIN SOLUTION\n"
            "    return x\n    # END SOLUTION\n"
        ),
        8,
        "inside an open region",
    ),
    "marker outside an exercise cell": (
        "# %%\ndef f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n",
        3,
        "outside an exercise cell",
    ),
    "marker on a code line": (
        _lesson("def f():\n    # BEGIN SOLUTION\n    return 1  # END SOLUTION\n"),
        7,
        "malformed solution marker",
    ),
    "malformed hint": (
        _lesson("def f():\n    # BEGIN SOLUTION - add one\n    return 1\n    # END SOLUTION\n"),
        6,
        "malformed marker",
    ),
    "misspelt marker": (
        _lesson("def f():\n    # BEGIN SOLUTIONS\n    return 1\n    # END SOLUTION\n"),
        6,
        "malformed marker",
    ),
    "empty region": (
        _lesson("def f():\n    # BEGIN SOLUTION\n    # END SOLUTION\n    return 1\n"),
        6,
        "empty solution region",
    ),
    "exercise without region": (_lesson("def f():\n    return 1\n"), 4, "needs at least one"),
    "exercise without check": (
        '# %% tags=["exercise"]\ndef f():\n    # BEGIN SOLUTION\n    return 1\n'
        "    # END SOLUTION\n\n# %%\nf()\n",
        7,
        "must be its `check` cell",
    ),
    "check without exercise": ('# %%\nx = 1\n\n# %% tags=["check"]\ncheck()\n', 4, "must follow"),
}


@pytest.mark.parametrize("text, line, message", BAD.values(), ids=BAD.keys())
def test_bad_markers_give_a_clear_error_with_file_and_line(text, line, message):
    with pytest.raises(LessonError) as info:
        split_lesson(text, path="lessons/99_bad.py")
    assert str(info.value).startswith(f"lessons/99_bad.py:{line}: "), str(info.value)
    assert message in str(info.value)
    assert info.value.line == line


def test_line_numbers_count_the_jupytext_header():
    text = FIXTURE.read_text(encoding="utf-8").replace(
        "        # END SOLUTION\n        out[t] = h", "        out[t] = h", 1
    )
    begin = next(
        i + 1
        for i, line in enumerate(text.split("\n"))
        if "BEGIN SOLUTION: update h" in line
    )
    with pytest.raises(LessonError, match=rf"^00_demo\.py:{begin}: "):
        split_lesson(text, path="00_demo.py")


# --------------------------------------------------------------------------------------------
# The blank exercise notebook: which cells run, and what the cells not run may use
# --------------------------------------------------------------------------------------------

BLANK_LESSON = '''# %%
import numpy as np
from minirec.check import NotAttempted

# %%
data = np.arange(3.0)

# %%
{before}

# %% tags=["exercise"]
def double(x):
    x = unit * x
    # BEGIN SOLUTION
    return scale * x
    # END SOLUTION


# %% tags=["check"]
{check}
try:
    double(data)
except NotImplementedError:
    raise NotAttempted("double") from None

# %% tags=["solution-only"]
agree = double(data)

# %%
{after}
'''


def _blank(before="scale, unit = 2.0, 1.0", check="", after="print(data)"):
    return split_lesson(BLANK_LESSON.format(before=before, check=check, after=after))


def test_the_blank_run_takes_the_exercises_their_checks_and_what_they_use():
    # the check uses data (cell 1, which uses np: cell 0) and the blank's body `unit` (cell 2);
    # the cell after it is not run (the solution-only cell is not in the exercise notebook)
    _, exercise = _blank(after="slow = sum(range(10**6))")
    assert blank_run_cells(exercise) == [0, 1, 2, 3, 4]
    # `scale` is in the solution's lines only: a cell 2 that binds only it is not needed
    _, exercise = _blank(before="scale = 2.0")
    assert blank_run_cells(exercise) == [0, 1, 3, 4]
    # the last cell above that binds a name is the one that counts
    _, exercise = _blank(before="scale, unit = 2.0, 1.0\ndata = np.ones(3)")
    assert blank_run_cells(exercise) == [0, 2, 3, 4]


@pytest.mark.parametrize("before, check, after, name, binder", [
    ("scale = 2.0", "", "print(double(data))", "double", "the exercise cell 3"),
    ("scale = 2.0", "", "def twice(x):\n    return double(double(x))", "double",
     "the exercise cell 3"),
    ("def go():\n    return double(data)\nscale = 2.0", "", "go()", "double", "the exercise cell 3"),
    ("scale = 2.0", "expected = 2 * data", "print(expected)", "expected", "the check cell 4"),
    ("scale = 2.0", "", "print(agree)", "agree", "the solution-only cell 5"),
], ids=["a later call", "inside a later function", "inside an earlier function",
        "a check's variable", "a solution-only variable"])
def test_a_cell_the_blank_run_skips_may_not_use_what_an_exercise_defines(
        before, check, after, name, binder):
    solution, _ = _blank(before, check, after)
    problems = blank_isolation_problems(solution)
    assert len(problems) == 1 and f"uses `{name}`, which {binder} defines" in problems[0], problems


def test_a_name_bound_again_after_the_exercise_is_the_new_one():
    after = "from numpy import square as double\n\n# %%\nprint(double(data))"
    solution, _ = _blank(after=after)
    assert blank_isolation_problems(solution) == []
    assert blank_isolation_problems(_blank()[0]) == []


@pytest.mark.parametrize("magic", ["%time print(double(data))", "%timeit -n 3 double(data)",
                                   "%%time\ny = double(data)"])
def test_the_code_of_magics_is_read_as_python(magic):
    solution, _ = _blank(after=magic)
    problems = blank_isolation_problems(solution)
    assert len(problems) == 1 and "uses `double`" in problems[0], problems


def test_build_check_reads_then_runs_the_blank_exercise(tmp_path):
    root = _make_repo(tmp_path / "repo")
    logged = []
    build(root=root, execute=False, book=False, check=True, log=logged.append)
    assert logged[-1] == ("lessons/00_demo.py: exercise notebook fails exactly at its check cells "
                          "(NotAttempted)")
    lesson = root / "lessons" / "00_demo.py"
    lesson.write_text(lesson.read_text(encoding="utf-8") + "\n# %%\nrunning_average(x, 0.1)\n")
    with pytest.raises(LessonError, match=r"breaks the contract:\n  cell \d+ \('running_average\(x, "
                       r"0.1\)'\) uses `running_average`, which the exercise cell \d+ defines"):
        build(root=root, execute=False, book=False, check=True, log=_quiet)


def test_a_magic_that_reads_as_no_python_is_reported():
    problems = blank_isolation_problems(_blank(after="%sx echo )(")[0])
    assert problems == ["cell 6 ('%sx echo )(') runs a magic whose code does not read as Python: "
                        "'echo )('"]


# --------------------------------------------------------------------------------------------
# build(), stale(), the CLI
# --------------------------------------------------------------------------------------------


def test_rebuild_is_byte_for_byte_stable(demo_root, tmp_path):
    root = _make_repo(tmp_path / "again")
    build(root=root, book=False, log=_quiet)
    assert (root / "exercises/00_demo.ipynb").read_bytes() == (
        demo_root / "exercises/00_demo.ipynb"
    ).read_bytes()

    def without_ignored_outputs(path):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if "nbval-ignore-output" in cell["metadata"].get("tags", []):
                cell["outputs"] = []
        return nb

    assert without_ignored_outputs(root / "solutions/00_demo.ipynb") == without_ignored_outputs(
        demo_root / "solutions/00_demo.ipynb"
    )
    times = json.loads((root / "book" / "lesson_times.json").read_text())
    assert set(times) == {"00_demo"} and 0 < times["00_demo"] < 60


def test_stale_reports_edits_missing_and_orphan_notebooks(demo_root, tmp_path):
    root = _make_repo(tmp_path / "repo")
    for folder in ("solutions", "exercises"):
        shutil.copytree(demo_root / folder, root / folder)
    assert stale(root=root) == []
    lesson = root / "lessons" / "00_demo.py"
    lesson.write_text(lesson.read_text().replace("update h from h", "update the state h from h"))
    problems = stale(root=root)
    assert problems == [
        "exercises/00_demo.ipynb: out of sync with lessons/00_demo.py "
        "(cell 3: source differs; run `minirec build 00_demo`)"
    ]
    shutil.copy(root / "solutions/00_demo.ipynb", root / "solutions/07_gone.ipynb")
    (root / "exercises/00_demo.ipynb").unlink()
    problems = stale(root=root)
    assert any(p.startswith("exercises/00_demo.ipynb: missing") for p in problems)
    assert "solutions/07_gone.ipynb: no lesson lessons/07_gone.py" in problems
    # a full build removes the orphan and brings everything back in sync
    build(root=root, execute=False, book=False, log=_quiet)
    assert not (root / "solutions/07_gone.ipynb").exists()
    assert stale(root=root) == []


def test_cli_build_without_execution_and_errors(tmp_path, monkeypatch, capsys):
    root = _make_repo(tmp_path / "repo")
    monkeypatch.chdir(root / "lessons")  # any folder inside the repository works
    assert cli.main(["build", "--no-execute", "--no-book", "00"]) == 0
    nb = nbformat.read(root / "solutions/00_demo.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells)  # --no-execute: no outputs
    assert (root / "exercises/00_demo.ipynb").is_file()
    assert not (root / "book" / "lessons").exists()  # --no-book
    capsys.readouterr()

    assert cli.main(["build", "--no-book", "42"]) == 1
    assert "no single lesson matches '42'" in capsys.readouterr().err

    (root / "lessons/01_bad.py").write_text(
        '# %% tags=["exercise"]\ndef f():\n    # BEGIN SOLUTION\n    return 1\n'
    )
    assert cli.main(["build", "--no-execute", "--no-book", "01_bad"]) == 1
    assert "lessons/01_bad.py:3: `# BEGIN SOLUTION` has no" in capsys.readouterr().err


def test_a_failing_lesson_names_its_line(tmp_path):
    root = _make_repo(tmp_path / "repo", lessons=())
    (root / "lessons/01_fails.py").write_text("# %%\nx = 1\n\n# %%\n1 / 0\n")
    with pytest.raises(LessonError, match=r"(?s)^lessons/01_fails\.py:4: .*ZeroDivisionError"):
        build(root=root, book=False, log=_quiet)


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_lesson_over_the_time_limit_fails_the_build_on_ci(tmp_path, monkeypatch, ci):
    root = _make_repo(tmp_path / "repo", lessons=())
    (root / "lessons/01_slow.py").write_text("# %%\nimport time\ntime.sleep(0.3)\n")
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(notebooks, "LESSON_LIMIT_S", 0.2)
    if ci:
        with pytest.raises(LessonError, match=r"over the time limit of 0.2 s per lesson: 01_slow"):
            build(root=root, book=False, log=_quiet)
    else:
        build(root=root, book=False, log=_quiet)
    assert (root / "solutions/01_slow.ipynb").is_file()           # written and timed all the same
    assert json.loads((root / "book/lesson_times.json").read_text())["01_slow"] >= 0.3
    with pytest.raises(LessonError, match="over the time limit"):
        build(root=root, book=False, max_seconds=0.1, log=_quiet)


SLOW_LESSON = '''# %% tags=["exercise"]
def f():
    # BEGIN SOLUTION
    return 1
    # END SOLUTION


# %% tags=["check"]
from minirec.check import NotAttempted
try:
    f()
except NotImplementedError:
    raise NotAttempted("f") from None

# %%
import time
time.sleep(20)
'''


def test_a_cell_past_the_timeout_names_the_lesson_the_cell_and_what_to_try(
        tmp_path, monkeypatch, capsys):
    root = _make_repo(tmp_path / "repo", lessons=())
    monkeypatch.chdir(root)
    (root / "lessons/01_slow.py").write_text(SLOW_LESSON)
    assert cli.main(["build", "--no-book", "--timeout", "1", "01_slow"]) == 1
    message = capsys.readouterr().err
    assert message.startswith(
        "minirec build: lessons/01_slow.py:15: cell 2 ('import time') of solutions/01_slow.ipynb "
        "ran past the per-cell time limit of 1 s."), message
    assert "other programs probably keep the cores busy" in message
    assert "`minirec build 01_slow --timeout 600`" in message
    assert "`python benchmarks/lesson_times.py 01_slow --cells`" in message
    _, exercise = split_lesson(SLOW_LESSON, path="lessons/01_slow.py")
    # the blank run needs only the exercise and its check: the slow cell is not run
    assert check_exercise(exercise, cwd=root / "lessons", timeout=1) == []
    problems = check_exercise(exercise, cwd=root / "lessons", timeout=1, whole=True)
    assert len(problems) == 1 and problems[0].startswith(
        "cell 2 ('import time') of exercises/01_slow.ipynb ran past the per-cell time limit of 1 s")
    assert "`minirec build 01_slow --check --timeout 600`" in problems[0]
    assert cli.main(["build", "--no-book", "--timeout", "0", "01_slow"]) == 2
    assert "--timeout must be a positive number" in capsys.readouterr().err


def test_learner_command_nbval_lax_wins_over_the_strict_addopts(demo_root, tmp_path):
    """`python -m pytest --nbval-lax NB` (pyproject's addopts say --nbval) compares no outputs."""
    nb = nbformat.read(demo_root / "solutions/00_demo.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.outputs[0]["text"] = "not what the cell prints\n"
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)

    def pytest_on(*args):
        command = [sys.executable, "-m", "pytest", "-q", "-c", str(ROOT / "pyproject.toml")]
        command += ["--rootdir", str(tmp_path), *args, str(path)]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)

    lax = pytest_on("--nbval-lax")
    assert lax.returncode == 0, lax.stdout + lax.stderr
    strict = pytest_on()
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "not what the cell prints" in strict.stdout


# --------------------------------------------------------------------------------------------
# The website
# --------------------------------------------------------------------------------------------


def test_book_builds_offline_with_local_mathjax(demo_root):
    index = build_book(root=demo_root, quiet=True)
    html = index.parent
    assert index == demo_root / "book/_build/html/index.html" and index.is_file()
    page = (html / "lessons/00_demo.html").read_text(encoding="utf-8")
    assert "running_average" in page and "1000 steps in" in page  # code and outputs
    assert 'class="math notranslate nohighlight"' in page  # display maths for MathJax
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page, re.IGNORECASE)
    assert scripts == ["../_static/mathjax/tex-chtml.js"], scripts
    assert (html / "_static/mathjax/tex-chtml.js").is_file()
    for name in ("lessons/00_demo.html", "intro.html", "how_to_use.html"):
        text = (html / name).read_text(encoding="utf-8")
        assert not re.search(r'src="(https?:)?//', text), f"{name} loads a remote script"
    assert "NotImplementedError(\"Exercise" not in page  # the book shows the solutions


def test_book_build_fails_on_a_warning(demo_root, tmp_path):
    book = tmp_path / "book"
    shutil.copytree(demo_root / "book", book, ignore=shutil.ignore_patterns("_build"))
    with (book / "intro.md").open("a") as f:
        f.write("\nA reference to {doc}`no-such-page`.\n")
    with pytest.raises(BookBuildError, match="warnings count as errors"):
        build_book(book_dir=book, quiet=True)


# --------------------------------------------------------------------------------------------
# CI's time summary (.ci/times.py)
# --------------------------------------------------------------------------------------------


def _ci_times():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ci_times", ROOT / ".ci" / "times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JUNIT = """<testsuites><testsuite>
<testcase classname="solutions.01_cells.ipynb" name="Cell 0" time="3.0"/>
<testcase classname="solutions.01_cells.ipynb" name="Cell 1" time="95.5"/>
<testcase classname="solutions.03_scans.ipynb" name="Cell 0" time="4.0"/>
<testcase classname="tests.test_pipeline" name="test_generated[01_cells]" time="1.0"/>
<testcase classname="tests.test_pipeline" name="test_no_answer[03_scans-affine_combine]" time="0.5"/>
<testcase classname="tests.test_pipeline" name="test_generated[fixture:00_demo]" time="9.0"/>
<testcase classname="tests.test_site" name="test_site" time="20.0"/>
</testsuite></testsuites>"""


def test_ci_time_summary_per_phase_per_lesson_and_projected():
    times = _ci_times()
    phases = times.read_phases("0\tcreate .venv\n10\tinstall minirec\n130\tchromium\n"
                               "140\trun every test\n740\tbuild the website\n800\tend\n")
    assert phases == [("create .venv", 10), ("install minirec", 120), ("chromium", 10),
                      ("run every test", 600), ("build the website", 60)]
    costs = times.lesson_costs(times.read_cases(JUNIT))
    assert costs == {"01_cells": {"nbval": 98.5, "pipeline": 1.0},
                     "03_scans": {"nbval": 4.0, "pipeline": 0.5}}
    # install phases as measured (140 s), the other 660 s scaled by 15/2
    assert times.projection(phases, 2, 15) == 140 + 660 * 15 / 2
    lines, over = times.report(phases, costs, lessons_now=2, lessons_then=15, goal_min=25,
                               limit=90)
    assert over == {"01_cells": 98.5}
    text = "\n".join(lines)
    assert "total" in text and "84.8 min: does NOT fit in 25 min" in text
    assert "this run + 13 x the mean lesson" in text
    # a run that stopped early: the phases that started, no lesson table
    assert times.read_phases("0\tcreate .venv\n7\tinstall\n") == [("create .venv", 7)]
