"""``minirec grade``: a folder of submissions, each run in isolation, one CSV row each.

The submissions are generated (tests/fixtures/grading): right, blank and wrong answers to a small
lesson, and the bad ones an instructor meets - an endless loop, a kernel that exits or
segfaults, a syntax error, files that are not notebooks, a folder with no or two notebooks, and
a submission that writes outside its folder (into another submission, the grades file and
minirec's check code) and leaves a process behind. Kernels import a copy of minirec (through
PYTHONPATH) whose folder the grader guards, so that no test ever writes into the real package.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from minirec import cli, grading

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.fixtures import grading as fx
    from tests.mutants import affine_combine as m_affine
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from fixtures import grading as fx
    from mutants import affine_combine as m_affine

ROOT = Path(__file__).resolve().parents[1]
WRONG = m_affine.MUTANTS[2]


def wrong_notebook():
    _solution, exercise = fx.lesson_notebooks()
    return fx.fill(exercise, "affine_combine", fx.learner_source(m_affine, WRONG.fn,
                                                                 "affine_combine"))


def released(folder: Path) -> Path:
    """The fixture lesson's released exercise notebook, written as ``minirec build`` would
    (``folder/exercises/00_grading.ipynb``): what every submission is graded against."""
    path = folder / "exercises" / "00_grading.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fx.to_bytes(fx.lesson_notebooks()[1]))
    return path


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def minirec_copy(tmp_path_factory):
    """A copy of the minirec package (with its caches) that kernels import instead of the
    real one; the grader guards this copy."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "minirec", root / "minirec", symlinks=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(root))
        mp.setattr(grading._isolation, "PACKAGE_DIR", root / "minirec")
        yield root / "minirec"


# --------------------------------------------------------------------------------------------
# A folder of every kind of submission, graded once through the command line
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, minirec_copy):
    folder = tmp_path_factory.mktemp("submissions")
    solution, exercise = fx.lesson_notebooks()
    notebooks = {
        "solved.ipynb": solution,
        "blank.ipynb": exercise,
        "wrong.ipynb": wrong_notebook(),
        "syntax.ipynb": fx.fill(exercise, "affine_combine", fx.broken_sources()["syntax"]),
        "crash.ipynb": fx.fill(exercise, "affine_combine", fx.broken_sources()["crash"]),
        "segfault.ipynb": fx.fill(solution, "attention_combine",
                                  fx.broken_sources()["segfault"]),
    }
    faker = fx.fill(wrong_notebook(), "affine_combine",
                    fx.FAKE_CHECK + "\n\n" + wrong_notebook().cells[
                        fx.exercise_cell(exercise, "affine_combine")].source)
    faker.cells[fx.exercise_cell(exercise, "attention_combine") + 1].source = \
        'print("✓ attention_combine: passed on 3 cases")'
    notebooks["faker.ipynb"] = faker
    for name, nb in notebooks.items():
        (folder / name).write_bytes(fx.to_bytes(nb))
    for name, data in fx.not_notebooks().items():
        (folder / f"{name}.ipynb").write_bytes(data)
    half = fx.fill(exercise, "attention_combine",
                   solution.cells[fx.exercise_cell(solution, "attention_combine")].source)
    (folder / "dana" / "lesson" / ".ipynb_checkpoints").mkdir(parents=True)
    (folder / "dana" / "lesson" / "00_grading.ipynb").write_bytes(fx.to_bytes(half))
    (folder / "dana" / "lesson" / ".ipynb_checkpoints" / "00_grading-checkpoint.ipynb") \
        .write_bytes(fx.to_bytes(solution))
    (folder / "empty_folder").mkdir()
    (folder / "two").mkdir()
    for k in (1, 2):
        (folder / "two" / f"try{k}.ipynb").write_bytes(fx.to_bytes(solution))
    (folder / "notes.txt").write_text("not a submission\n")
    (folder / ".hidden.ipynb").write_bytes(fx.to_bytes(solution))
    out = folder / "grades.csv"  # inside the folder: must not be taken for a submission
    feedback = tmp_path_factory.mktemp("feedback")
    release = released(tmp_path_factory.mktemp("course"))
    status, printed = _cli("grade", str(folder), "--out", str(out), "--timeout", "120",
                           "--release", str(release), "--feedback", str(feedback),
                           "--no-progress")
    return status, printed, read_rows(out), out, feedback


def _cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli.main(list(args))
    return status, buffer.getvalue()


def test_grade_writes_one_row_per_submission_and_exits_0(mixed):
    status, printed, rows, *_rest = mixed
    assert status == 0, printed
    assert sorted(rows) == sorted([
        "solved.ipynb", "blank.ipynb", "wrong.ipynb", "syntax.ipynb", "crash.ipynb",
        "segfault.ipynb", "empty.ipynb", "bad_json.ipynb", "pdf.ipynb", "json_list.ipynb",
        "dana", "empty_folder", "two", "faker.ipynb"])
    header = list(next(iter(rows.values())))
    assert header == ["submission", "status", "score", "out_of", *fx.EXERCISES, "seconds",
                      "review", "note"]


def test_right_blank_and_wrong_answers(mixed):
    rows = mixed[2]
    assert {k: rows["solved.ipynb"][k] for k in ("status", "score", "out_of", *fx.EXERCISES)} \
        == {"status": "ran", "score": "2", "out_of": "2", "affine_combine": "passed",
            "attention_combine": "passed"}
    assert [rows["blank.ipynb"][e] for e in fx.EXERCISES] == ["not attempted"] * 2
    assert rows["blank.ipynb"]["score"] == "0"
    assert [rows["wrong.ipynb"][e] for e in fx.EXERCISES] == ["failed", "not attempted"]


def test_folder_submission_ignores_checkpoints(mixed):
    row = mixed[2]["dana"]
    assert (row["status"], row["score"], row["affine_combine"], row["attention_combine"]) == \
        ("ran", "1", "not attempted", "passed")


def test_syntax_error_is_recorded_and_the_rest_graded(mixed):
    row = mixed[2]["syntax.ipynb"]
    assert (row["status"], row["affine_combine"], row["attention_combine"]) == \
        ("ran", "error", "not attempted")
    assert row["note"].startswith("affine_combine: the exercise cell raised SyntaxError: "
                                  "invalid syntax (in the exercise cell of affine_combine, "
                                  "line 4")


@pytest.mark.parametrize("name, stopped_in", [("crash.ipynb", "affine_combine"),
                                              ("segfault.ipynb", "attention_combine")])
def test_kernel_crash_is_recorded(mixed, name, stopped_in):
    row = mixed[2][name]
    assert row["status"] == "kernel died"
    assert row["note"] == ("the kernel died (crashed or exited), in the exercise cell of "
                           f"{stopped_in}")
    assert row[stopped_in] == "error"
    if stopped_in == "affine_combine":
        assert row["attention_combine"] == "not run"
    else:
        assert row["affine_combine"] == "passed" and row["score"] == "1"


@pytest.mark.parametrize("name, note", [
    ("empty.ipynb", "empty file"),
    ("bad_json.ipynb", "not valid JSON"),
    ("pdf.ipynb", "a PDF file, not a notebook"),
    ("json_list.ipynb", "JSON, but not a notebook"),
    ("empty_folder", "the folder holds no .ipynb file"),
    ("two", "the folder holds 2 notebooks (try1.ipynb, try2.ipynb): keep one"),
])
def test_not_notebooks_are_recorded(mixed, name, note):
    row = mixed[2][name]
    assert row["status"] == "not a notebook" and row["score"] == "0"
    assert row["note"].startswith(note)
    assert [row[e] for e in fx.EXERCISES] == ["", ""]


def test_summary(mixed):
    printed = mixed[1]
    assert printed.startswith("Graded 14 submissions in ")
    assert "  ran               6" in printed
    assert "  kernel died       2: crash.ipynb, segfault.ipynb" in printed
    assert "Exercises passed:" in printed and "  affine_combine       2 / 14" in printed
    assert "Ignored: notes.txt (not a .ipynb file or a folder)" in printed
    assert ".hidden" not in printed
    assert "Review (the machinery reached into, tagged cells ignored or verdicts forged: see " \
        "the review column): faker.ipynb, segfault.ipynb, solved.ipynb" in printed
    assert printed.rstrip().endswith(f"Wrote {mixed[3]}")


def test_feedback_files_hold_each_learners_report(mixed):
    feedback = mixed[4]
    assert sorted(p.name for p in feedback.iterdir()) == sorted(f"{n}.txt" for n in mixed[2])
    wrong = (feedback / "wrong.ipynb.txt").read_text()
    assert "✗ affine_combine     failed" in wrong and WRONG.phrase in wrong
    assert "Diagnosis: " in wrong and "Traceback" not in wrong
    assert (feedback / "pdf.ipynb.txt").read_text() == \
        "pdf.ipynb: not a notebook: a PDF file, not a notebook\n"
    assert "✓ affine_combine     passed" in (feedback / "solved.ipynb.txt").read_text()
    assert f"Wrote 14 feedback files into {feedback}" in mixed[1]


def test_faked_checks_are_not_run_and_flagged_for_review(mixed):
    """A check_... of the learner's prints a pass but signs no verdict: not run, and flagged;
    the edited check cell is not run (the released one is), so attention_combine gets its true
    status. More attacks: tests/test_grade_attacks.py."""
    row = mixed[2]["faker.ipynb"]
    assert [row[e] for e in fx.EXERCISES] == ["not run", "not attempted"]
    assert row["review"] == ("the exercise cell of affine_combine: rebinds "
                             "check_affine_combine")
    assert mixed[2]["solved.ipynb"]["review"] == ("the submission is minirec's solution "
                                                  "notebook (its metadata says so)")


# --------------------------------------------------------------------------------------------
# Time limit
# --------------------------------------------------------------------------------------------


def test_endless_loop_is_stopped_at_the_time_limit_and_grading_goes_on(tmp_path, minirec_copy):
    _solution, exercise = fx.lesson_notebooks()
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "a_loop.ipynb").write_bytes(
        fx.to_bytes(fx.fill(exercise, "affine_combine", fx.broken_sources()["loop"])))
    (folder / "b_after.ipynb").write_bytes(b"{}")
    start = time.monotonic()
    report = grading.grade(folder, release=released(tmp_path / "course"), time_limit=6,
                           progress=False)
    elapsed = time.monotonic() - start
    result = dict((s.name, r) for s, r in report.rows)
    loop = result["a_loop.ipynb"]
    assert loop.status == "timed out"
    assert loop.detail.startswith("ran past the time limit of 6 s, in ")
    assert [e.status for e in loop.exercises] in (["error", "not run"], ["not run", "not run"])
    assert result["b_after.ipynb"].status == "not a notebook"
    assert elapsed < 6 + 30  # the kernel was killed, not waited for


# --------------------------------------------------------------------------------------------
# Isolation: a submission that writes outside its folder
# --------------------------------------------------------------------------------------------

SANDBOX = grading.sandbox_available()


@pytest.mark.parametrize("mode", [
    pytest.param("on", marks=pytest.mark.skipif(not SANDBOX[0], reason=f"no sandbox: "
                                                                       f"{SANDBOX[1]}")),
    "off",
])
def test_a_writer_cannot_change_another_submissions_result(tmp_path, minirec_copy, mode):
    folder = tmp_path / "submissions"
    folder.mkdir()
    solution, exercise = fx.lesson_notebooks()
    out = tmp_path / "grades.csv"
    out.write_text("the previous grades\n")
    check_code = minirec_copy / "check" / "__init__.py"
    original_check = check_code.read_bytes()
    victim = folder / "c_solved.ipynb"
    targets = {"other": str(victim), "grades": str(out), "minirec": str(check_code)}
    (folder / "a_writer.ipynb").write_bytes(
        fx.to_bytes(fx.fill(exercise, "affine_combine", fx.writer_source(targets))))
    (folder / "b_wrong.ipynb").write_bytes(fx.to_bytes(wrong_notebook()))
    victim.write_bytes(fx.to_bytes(solution))
    original_victim = victim.read_bytes()
    stray = f"{os.getpid() % 1000}.{time.time_ns() % 10**6:06d}"
    (folder / "d_stray.ipynb").write_bytes(
        fx.to_bytes(fx.fill(exercise, "affine_combine", fx.stray_source(stray))))

    report = grading.grade(folder, release=released(tmp_path / "course"), time_limit=120,
                           sandbox=mode, progress=False)
    grading.write_csv(report, out)
    rows = read_rows(out)

    # the wrong answer graded after the writer is still failed; the victim graded from the copy
    assert rows["b_wrong.ipynb"]["affine_combine"] == "failed"
    assert rows["c_solved.ipynb"]["score"] == "2"
    assert rows["d_stray.ipynb"]["affine_combine"] == "passed"
    assert check_code.read_bytes() == original_check  # minirec's copy is as it was
    assert not fx.processes_running(stray)  # the detached process died with its run
    assert out.read_text().startswith("submission,status,score")
    if mode == "on":
        assert report.sandboxed
        assert victim.read_bytes() == original_victim  # the write was refused
        assert rows["a_writer.ipynb"]["status"] == "ran"  # its write hit a throw-away overlay
        assert report.changed_on_disk == [] and report.changed_outside == []
    else:
        assert not report.sandboxed
        assert rows["a_writer.ipynb"]["status"] == "tampered"
        assert rows["a_writer.ipynb"]["score"] == "0"
        assert rows["a_writer.ipynb"]["note"] == ("changed minirec's files "
                                                  "(minirec/check/__init__.py); restored")
        assert report.changed_on_disk == ["c_solved.ipynb"]
        assert "Warning: c_solved.ipynb changed on disk during grading" in \
            grading.format_summary(report)


def test_sandbox_mode_on_refuses_without_a_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(grading._isolation, "sandbox_available", lambda: (False, "no unshare here"))
    with pytest.raises(RuntimeError, match="the sandbox does not work on this machine: no "
                                           "unshare here"):
        grading.grade(tmp_path, sandbox="on", progress=False)


# --------------------------------------------------------------------------------------------
# The parts, without a kernel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("empty", "empty file"), ("bad_json", "not valid JSON: Unterminated string starting at: line 1 column"),
    ("pdf", "a PDF file, not a notebook"), ("json_list", "JSON, but not a notebook")])
def test_read_notebook_says_what_a_file_is_instead(name, message):
    with pytest.raises(grading.NotANotebook, match=message.replace("(", r"\(")):
        grading.read_notebook(fx.not_notebooks()[name])


def test_read_notebook_rejects_binary_and_malformed_cells():
    with pytest.raises(grading.NotANotebook, match="binary file"):
        grading.read_notebook(b"\xff\xfe\x00garbage")
    with pytest.raises(grading.NotANotebook, match="malformed"):
        grading.read_notebook(b'{"cells": [{"cell_type": "code"}], "nbformat": 4, '
                              b'"nbformat_minor": 5, "metadata": {}}')


def test_exercises_are_named_by_the_checked_function():
    _solution, exercise = fx.lesson_notebooks()
    specs = grading.find_exercises(exercise)
    assert [s.name for s in specs] == fx.EXERCISES
    for spec in specs:
        assert "exercise" in exercise.cells[spec.exercise_cell].metadata["tags"]
        assert spec.check_cells == (spec.exercise_cell + 1,)


def test_exercise_name_when_the_check_is_not_check_of_the_function():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def running_average(x, a):\n    return x",
                                  metadata={"tags": ["exercise"]}),
        nbformat.v4.new_code_cell("check_against(running_average, reference, x, 0.5)",
                                  metadata={"tags": ["check"]}),
        nbformat.v4.new_code_cell("check_against(running_average, reference, x, 0.9)",
                                  metadata={"tags": ["check"]}),
    ])
    specs = grading.find_exercises(nb)
    assert [(s.name, s.exercise_cell, s.check_cells) for s in specs] == \
        [("running_average", 0, (1, 2))]


def test_untagged_notebook_falls_back_to_check_calls_and_names_are_unique():
    solution, _exercise = fx.lesson_notebooks()
    for cell in solution.cells:
        cell.metadata.pop("tags", None)
    solution.cells.append(nbformat.v4.new_code_cell("check_affine_combine(affine_combine)"))
    assert [s.name for s in grading.find_exercises(solution)] == \
        ["affine_combine", "attention_combine", "affine_combine (2)"]


def test_collect_submissions(tmp_path):
    (tmp_path / "a.ipynb").write_bytes(b"{}")
    (tmp_path / "big.ipynb").write_bytes(b"x" * 100)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep").mkdir()
    (tmp_path / "b" / "deep" / "work.ipynb").write_bytes(b"{}")
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "a.ipynb")
    (tmp_path / "grades.csv").write_text("")
    subs, ignored = grading.collect_submissions(tmp_path, max_bytes=50,
                                                exclude=[tmp_path / "grades.csv"])
    by_name = {s.name: s for s in subs}
    assert sorted(by_name) == ["a.ipynb", "b", "big.ipynb"]
    assert by_name["a.ipynb"].data == b"{}" and by_name["b"].data == b"{}"
    assert by_name["big.ipynb"].problem_status == "too large"
    assert ignored == ["link.ipynb (a symbolic link)"]


def test_package_guard_finds_and_restores_changes(tmp_path):
    (tmp_path / "check").mkdir()
    (tmp_path / "check" / "__pycache__").mkdir()
    code = tmp_path / "check" / "scan.py"
    code.write_text("def check(): ...\n")
    (tmp_path / "gone.py").write_text("x = 1\n")
    guard = grading.PackageGuard(tmp_path)
    assert guard.changes() == []
    code.write_text("def check(): print('passed')\n")
    (tmp_path / "gone.py").unlink()
    (tmp_path / "check" / "__pycache__" / "scan.nbi").write_bytes(b"cache")
    (tmp_path / "link.py").symlink_to(code)
    changed = guard.changes()
    assert changed == ["check/__pycache__/scan.nbi", "check/scan.py", "gone.py", "link.py"]
    assert not guard.only_caches(changed)
    assert guard.only_caches(["check/__pycache__/scan.nbi"])
    guard.restore(changed)
    assert guard.changes() == []
    assert code.read_text() == "def check(): ...\n" and not (tmp_path / "link.py").exists()


def test_endless_output_is_capped(tmp_path, monkeypatch):
    """A notebook that prints without end cannot fill the grader's memory: outputs past the
    limit are dropped (and said so), the checks are still read."""
    monkeypatch.setattr(grading._kernel, "MAX_OUTPUT_CHARS", 10_000)
    solution, _exercise = fx.lesson_notebooks()
    path = tmp_path / "chatty.ipynb"
    path.write_bytes(fx.to_bytes(fx.with_code_cell(solution, "for i in range(2000):\n"
                                                             "    print('x' * 50)\n")))
    result = grading.check_notebook(path, time_limit=120)
    assert [e.status for e in result.exercises] == ["passed", "passed"]
    assert result.detail == "outputs over the limit were dropped"


def test_progress_bar_on_a_terminal(tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    folder = tmp_path / "submissions"
    folder.mkdir()
    for name, data in fx.not_notebooks().items():
        (folder / f"{name}.ipynb").write_bytes(data)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    release = released(tmp_path / "course")
    grading.grade(folder, release=release, progress=True)
    assert "grading: 100%" in terminal.getvalue() and "4/4" in terminal.getvalue()
    terminal.truncate(0)
    grading.grade(folder, release=release, progress=False)
    assert terminal.getvalue().strip("\0") == ""
