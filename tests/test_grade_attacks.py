"""Attacks on ``minirec grade`` (issue 12, items 1 and 2): each is a submission an attacker made,
and the row it must get - "not run" or its true score, and a review flag.

The attack notebooks are the released exercise notebook of the small fixture lesson
(tests/fixtures/grading) plus the attack, mostly one line added to an exercise cell. They are
graded once, together with an honest and a blank submission, through the command line with the
released notebook named by ``--release`` (:func:`graded`). The verdict channel itself (the
kernel's end, :mod:`minirec.check._verdict`) is tested in a subprocess armed as a kernel would
be: arming is for the life of a process, and its audit hook cannot be removed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from minirec import cli, grading
from minirec.check._verdict import sign
from minirec.grading._verdicts import RunKey, verify

try:  # `python -m pytest` (the repository root on sys.path) or a tests/ package
    from tests.fixtures import grading as fx
    from tests.mutants import affine_combine as m_affine
except ImportError:  # plain `pytest`: tests/ itself is on sys.path
    from fixtures import grading as fx
    from mutants import affine_combine as m_affine

ROOT = Path(__file__).resolve().parents[1]
AFFINE, ATTENTION = fx.EXERCISES
WRONG = m_affine.MUTANTS[2]

# --------------------------------------------------------------------------------------------
# The kernel's end of the channel, armed in a subprocess
# --------------------------------------------------------------------------------------------

KEY = RunKey("run-1", bytes.fromhex("ab" * 32))
_PRELUDE = '''
import json, os, sys, tempfile
sys.path[:0] = [{root!r}, os.path.join({root!r}, "tests")]
from minirec.check import _verdict
records = []
key_file = os.path.join(tempfile.mkdtemp(), "key")
with open(key_file, "w") as f:
    json.dump({{"run": {run!r}, "key": {key!r}, "watch": {watch!r}}}, f)
_verdict.arm(key_file, publish=lambda data: records.append(data[_verdict.MIME]),
             cell_number=lambda: 1)
assert not os.path.exists(key_file), "the key file is deleted when armed"

def verdicts():
    found = [(r["verdict"], r["alerts"]) for r in records]
    records.clear()
    return found
'''


def run_armed(code: str, watch=()) -> dict:
    """Run ``code`` in a fresh interpreter armed with :data:`KEY`; what it printed last, as
    JSON (the code ends with ``print(json.dumps(...))``)."""
    script = _PRELUDE.format(root=str(ROOT), run=KEY.run, key=KEY.key.hex(),
                             watch=[str(w) for w in watch]) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_armed_checks_sign_every_verdict_and_a_changed_record_is_refused():
    found = run_armed('''
        import minirec.check as mc
        def right(left, right):
            (a1, b1), (a2, b2) = left, right
            return a1 * a2, a2 * b1 + b2
        def blank(left, right):
            raise NotImplementedError
        def wrong(left, right):
            (a1, b1), (a2, b2) = left, right
            return a1 * a2, a1 * b2 + b1
        mc.check_affine_combine(right)
        for fn, error in ((blank, mc.NotAttempted), (wrong, mc.CheckFailed), (3, TypeError)):
            try:
                mc.check_affine_combine(fn)
            except error:
                pass
        print(json.dumps(records))
    ''')
    assert [r["verdict"] for r in found] == ["passed", "not attempted", "failed", "error"]
    assert [r["seq"] for r in found] == [1, 2, 3, 4]
    assert all(r["exercise"] == AFFINE and r["run"] == KEY.run and r["alerts"] == []
               for r in found)
    assert [verify(r, KEY) for r in found] == [None] * 4
    forged = {**found[1], "verdict": "passed"}
    assert verify(forged, KEY) == "a forged verdict record (bad MAC)"
    assert verify(found[0], RunKey(KEY.run, b"\0" * 32)) == "a forged verdict record (bad MAC)"
    assert verify({**found[0], "mac": None}, KEY) == "a forged verdict record (no MAC)"
    other_run = {**found[0], "run": "run-2"}
    assert verify({**other_run, "mac": sign(KEY.key, other_run)}, KEY) == \
        "a verdict record of another run"


def test_every_checks_right_answers_pass_armed_without_an_alert():
    """No false alarm: the right answers (``correct`` and ``ALTERNATIVES``, some in torch or
    Numba) of every exercise of every lesson pass armed, with no alert; the blank is not
    attempted and a wrong answer fails."""
    found = run_armed('''
        import importlib
        modules = ["attention", "cells", "hmm", "longcontext", "memory", "routing", "scan",
                   "workspace"]
        results = {}
        for module in modules:
            table = importlib.import_module(f"test_check_{module}").EXERCISES
            for name, (check, _reference, mutants, _factory) in table.items():
                for fn in [mutants.correct, *getattr(mutants, "ALTERNATIVES", [])]:
                    check(fn)
                for fn in (mutants.blank, mutants.MUTANTS[0].fn):
                    try:
                        check(fn)
                    except Exception:
                        pass
                results[name] = verdicts()
        print(json.dumps(results))
    ''')
    assert len(found) == 29
    for name, verdicts in found.items():
        assert all(alerts == [] for _v, alerts in verdicts), (name, verdicts)
        assert [v for v, _a in verdicts[-2:]] == ["not attempted", "failed"], name
        assert {v for v, _a in verdicts[:-2]} == {"passed"}, name


def test_the_kernel_withholds_the_verdict_of_a_check_it_saw_tampered_with(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "answers.py").write_text("x = 1\n")
    found = run_armed('''
        import gc, inspect, sys
        import minirec.check as mc
        import minirec.check._core as core
        from minirec.scan.reference import affine_combine as reference
        steps = {}
        def right(left, right):
            return reference(left, right)
        def walker(left, right):
            frame = sys._getframe()
            while "ex" not in frame.f_locals:
                frame = frame.f_back
            return frame.f_locals["ex"].reference(left, right)
        def stack(left, right):
            return next(f.frame.f_locals["ex"] for f in inspect.stack()
                        if "ex" in f.frame.f_locals).reference(left, right)
        def from_traceback(left, right):
            try:
                raise ValueError
            except ValueError as exc:
                frame = exc.__traceback__.tb_frame
            while "ex" not in frame.f_locals:
                frame = frame.f_back
            return frame.f_locals["ex"].reference(left, right)
        def collector(left, right):
            gc.get_referrers(right)
            return reference(left, right)
        for name, fn in [("walker", walker), ("stack", stack), ("traceback", from_traceback),
                         ("gc", collector), ("right after", right)]:
            mc.check_affine_combine(fn)
            steps[name] = verdicts()
        original = core.compare
        core.compare = lambda *a, **k: original(*a, **k)
        mc.check_affine_combine(right)
        steps["compare replaced"] = verdicts()
        core.compare = original
        mc.check_affine_combine(right)
        steps["compare put back"] = verdicts()
        gc.get_objects()
        mc.check_affine_combine(right)
        steps["gc outside a check"] = verdicts()
        try:
            _verdict.arm(key_file)
        except RuntimeError as exc:
            steps["armed again"] = str(exc)
        open(WATCHED).close()
        mc.check_affine_combine(right)
        steps["a watched file read"] = verdicts()
        print(json.dumps(steps))
    '''.replace("WATCHED", repr(str(solutions / "answers.py"))), watch=[solutions])
    found = {step: [tuple(v) for v in value] if isinstance(value, list) else value
             for step, value in found.items()}  # JSON has no tuples
    in_check = "the checked function {} while being checked"
    assert found["walker"] == [("tampered", [in_check.format("called sys._getframe")])]
    assert found["stack"] == [("tampered", [in_check.format("called sys._getframe")])]
    assert found["traceback"] == [("tampered",
                                   [in_check.format("took the frame of a traceback")])]
    assert found["gc"] == [("tampered", ["the checked function called gc.get_referrers"])]
    assert found["right after"] == [("passed", [])]
    assert found["compare replaced"] == [("tampered",
                                          ["minirec.check._core.compare was replaced"])]
    assert found["compare put back"] == [("passed", [])]
    assert found["gc outside a check"] == [("passed", ["notebook code called gc.get_objects"])]
    assert found["armed again"] == "minirec's verdicts are already armed"
    assert found["a watched file read"] == [
        ("tampered", [f"the notebook opened {solutions / 'answers.py'}",
                      "notebook code called gc.get_objects"])]


# --------------------------------------------------------------------------------------------
# The attacks, graded once
# --------------------------------------------------------------------------------------------

WALKER = '''\
import sys

def affine_combine(left, right):
    frame = sys._getframe()
    while "ex" not in frame.f_locals:      # up to minirec's run_check ...
        frame = frame.f_back
    return frame.f_locals["ex"].reference(left, right)   # ... and its reference
'''

FORGER = '''\
from IPython.display import display

def check_affine_combine(fn):                    # prints nothing, shows a verdict record
    display({"application/vnd.minirec.verdict+json": {
        "run": "?", "exercise": "affine_combine", "verdict": "passed", "cell": 3, "seq": 1,
        "alerts": [], "mac": "0" * 64}}, raw=True)

def affine_combine(left, right):
    raise NotImplementedError
'''


def attack_notebooks(solutions: Path) -> dict[str, object]:
    """Submission file name -> notebook: the honest and blank submissions, and the attacks."""
    exercise = fx.lesson_notebooks()[1]
    honest = fx.solved_exercise()
    wrong = fx.learner_source(m_affine, WRONG.fn, AFFINE)
    patch_compare = ("import minirec.check._core as core; "
                     "core.compare = lambda *a, **k: type('Same', (), {'ok': True})()")
    faker = fx.fill(exercise, AFFINE, fx.FAKE_CHECK + "\n\n" + wrong)
    faker.cells[fx.exercise_cell(exercise, ATTENTION) + 1].source = \
        'print("✓ attention_combine: passed on 3 cases")'
    deleted = fx.solved_exercise()
    del deleted.cells[fx.exercise_cell(deleted, ATTENTION)]
    renamed = fx.solved_exercise()
    for cell in renamed.cells:
        cell["id"] = "new-" + cell["id"]  # cells copied into a new notebook
    scratch = fx.with_code_cell(
        fx.fill(exercise, AFFINE, "def affine_combine(left, right):\n"
                                  "    return my_helper(left, right)\n"),
        "def my_helper(left, right):\n    (a1, b1), (a2, b2) = left, right\n"
        "    return a1 * a2, a2 * b1 + b2\n", after=1)
    return {
        "honest.ipynb": honest,
        "blank.ipynb": exercise,
        # item 1: one line added to the blank exercise cell of affine_combine
        "custom_exc.ipynb": fx.with_line(exercise, AFFINE,
                                         "get_ipython().set_custom_exc((BaseException,), "
                                         "lambda *a, **k: print('✓ passed'))"),
        "showtraceback.ipynb": fx.with_line(exercise, AFFINE,
                                            "get_ipython().showtraceback = "
                                            "lambda *a, **k: print('✓ passed')"),
        "transformer.ipynb": fx.with_line(exercise, AFFINE,
                                          "get_ipython().input_transformers_cleanup.append("
                                          "lambda lines: ['pass\\n'] if 'check_' in "
                                          "''.join(lines) else lines)"),
        "compare.ipynb": fx.with_line(exercise, AFFINE, patch_compare),
        "compare_wrong.ipynb": fx.fill(exercise, AFFINE, wrong + "\n" + patch_compare + "\n"),
        "walker.ipynb": fx.fill(exercise, AFFINE, WALKER),
        "solutions.ipynb": fx.with_line(exercise, AFFINE, (
            "import json; [exec(''.join(c['source'])) for c in json.load(open("
            f"{str(solutions / '00_grading.ipynb')!r}))['cells'] "
            "if 'exercise' in c['metadata'].get('tags', [])]")),
        "silenced.ipynb": fx.with_line(honest, AFFINE, "get_ipython().display_pub.publish = "
                                       "lambda *a, **k: None"),
        "faker.ipynb": faker,
        "forger.ipynb": fx.fill(exercise, AFFINE, FORGER),
        # item 2
        "duplicator.ipynb": fx.with_copies(exercise, AFFINE, 3, source=fx.solved_exercise()
                                           .cells[fx.exercise_cell(exercise, AFFINE)].source),
        "extra.ipynb": fx.with_tagged_exercise(honest, "bonus"),
        "other_lesson.ipynb": fx.of_lesson(honest, "lessons/04_attention_as_rnn.py"),
        "renamed.ipynb": renamed,
        "deleted.ipynb": deleted,
        "scratch.ipynb": scratch,
        '=HYPERLINK("evil.example","x").ipynb': honest,
        "alice.ipynb": honest,
    }


@pytest.fixture(scope="module")
def minirec_copy(tmp_path_factory):
    """A copy of the minirec package that kernels import; the grader guards this copy."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(ROOT / "minirec", root / "minirec", symlinks=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(root))
        mp.setattr(grading._isolation, "PACKAGE_DIR", root / "minirec")
        yield root / "minirec"


def _cli(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli.main(list(args))
    return status, buffer.getvalue()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, minirec_copy):
    """The attack folder graded through the command line against the released notebook of a
    repository-like folder (exercises/, solutions/); (exit status, printed, rows by
    submission, the CSV's text, the feedback folder)."""
    repo = tmp_path_factory.mktemp("course")
    solution, exercise = fx.lesson_notebooks()
    for folder, nb in (("exercises", exercise), ("solutions", solution)):
        (repo / folder).mkdir()
        (repo / folder / "00_grading.ipynb").write_bytes(fx.to_bytes(nb))
    submissions = repo / "submissions"
    submissions.mkdir()
    for name, nb in attack_notebooks(repo / "solutions").items():
        (submissions / name).write_bytes(fx.to_bytes(nb))
    (submissions / "alice").mkdir()
    (submissions / "alice" / "00_grading.ipynb").write_bytes(fx.to_bytes(fx.solved_exercise()))
    out, feedback = repo / "grades.csv", repo / "feedback"
    status, printed = _cli("grade", str(submissions), "--out", str(out), "--release",
                           str(repo / "exercises" / "00_grading.ipynb"), "--sandbox", "off",
                           "--timeout", "300", "--feedback", str(feedback), "--no-progress")
    text = out.read_text(encoding="utf-8")
    rows = {row["submission"]: row for row in csv.DictReader(io.StringIO(text))}
    return status, printed, rows, text, feedback


def row_of(graded, name: str) -> tuple:
    """(affine_combine, attention_combine, score) of a row, and its review column."""
    row = graded[2][name]
    return (row[AFFINE], row[ATTENTION], row["score"]), row["review"]


def test_one_set_of_columns_from_the_released_notebook(graded):
    status, printed, rows, text, _feedback = graded
    assert status == 0, printed
    assert text.splitlines()[0] == ("submission,status,score,out_of,affine_combine,"
                                    "attention_combine,seconds,review,note")
    assert {row["out_of"] for row in rows.values()} == {"2"}  # one extra exercise changes none
    assert len(rows) == len(attack_notebooks(Path(".")))  # alice/ + alice.ipynb: one row


def test_honest_and_blank_submissions_are_graded_and_unflagged(graded):
    assert row_of(graded, "honest.ipynb") == (("passed", "passed", "2"), "")
    assert row_of(graded, "blank.ipynb") == (("not attempted", "not attempted", "0"), "")


@pytest.mark.parametrize("name, cells, flags", [
    # the check's verdict was published before the hook swallowed its exception: true score
    ("custom_exc.ipynb", ("not attempted", "not attempted", "0"), ["set_custom_exc"]),
    ("showtraceback.ipynb", ("not attempted", "not attempted", "0"), ["showtraceback"]),
    # the check cells became `pass`: no check ran
    ("transformer.ipynb", ("not run", "not run", "0"), ["input_transformers_cleanup"]),
    # the kernel saw minirec's compare rebound and withheld every later verdict
    ("compare.ipynb", ("not run", "not run", "0"),
     ["minirec.check", "minirec.check._core.compare was replaced"]),
    ("compare_wrong.ipynb", ("not run", "not run", "0"),
     ["minirec.check", "minirec.check._core.compare was replaced"]),
    # the function took frames while being checked
    ("walker.ipynb", ("not run", "not attempted", "0"),
     ["sys._getframe (frames)", "the checked function called sys._getframe while being checked"]),
    # it read the solution notebook: every later verdict is withheld
    ("solutions.ipynb", ("not run", "not run", "0"),
     ["exec()", "open()", "the text '.ipynb'", "the notebook opened "]),
    # right answers, but every check's report suppressed: not run, never passed
    ("silenced.ipynb", ("not run", "not run", "0"), ["display_pub (IPython's output)"]),
    # a fake check_... prints a pass but signs nothing; its edited check cell is not run
    ("faker.ipynb", ("not run", "not attempted", "0"), ["rebinds check_affine_combine"]),
    ("forger.ipynb", ("not run", "not attempted", "0"),
     ["a forged verdict record (bad MAC) in cell 4", "rebinds check_affine_combine"]),
])
def test_one_line_cheats_get_not_run_or_their_true_score_and_a_flag(graded, name, cells, flags):
    found, review = row_of(graded, name)
    assert found == cells
    for flag in flags:
        assert flag in review, review


def test_duplicated_tagged_cells_count_once_and_are_flagged(graded):
    found, review = row_of(graded, "duplicator.ipynb")
    assert found == ("passed", "not attempted", "1")
    assert review == ("tagged cells ignored: cell 5 (a second exercise cell of affine_combine), "
                      "cell 6 (an extra check cell), cell 7 (a second exercise cell of "
                      "affine_combine), cell 8 (an extra check cell), cell 9 (a second exercise "
                      "cell of affine_combine), cell 10 (an extra check cell)")


def test_an_exercise_the_release_does_not_have_is_ignored_and_flagged(graded):
    found, review = row_of(graded, "extra.ipynb")
    assert found == ("passed", "passed", "2")
    assert review == ("tagged cells ignored: cell 9 (an exercise the release does not have), "
                      "cell 10 (an extra check cell)")


def test_a_notebook_of_another_lesson_is_a_row_status(graded):
    row = graded[2]["other_lesson.ipynb"]
    assert (row["status"], row["score"], row[AFFINE]) == ("wrong lesson", "0", "")
    assert row["note"] == ("a notebook of lessons/04_attention_as_rnn.py; the class is graded on "
                           "lessons/00_grading.py")


def test_cells_copied_into_a_new_notebook_are_matched_by_their_function(graded):
    assert row_of(graded, "renamed.ipynb") == (("passed", "passed", "2"), "")


def test_an_exercise_cell_deleted_is_missing(graded):
    assert row_of(graded, "deleted.ipynb") == (("passed", "missing", "1"), "")
    text = (graded[4] / "deleted.ipynb.txt").read_text()
    assert "  ? attention_combine  missing\n      the submission has no cell for it" in text
    assert "1 passed, 1 missing of 2: not there yet." in text


def test_cells_outside_the_exercises_are_not_run_and_shown_in_the_feedback(graded):
    found, review = row_of(graded, "scratch.ipynb")
    assert found == ("failed", "not attempted", "0") and review == ""
    text = (graded[4] / "scratch.ipynb.txt").read_text()
    assert "affine_combine raised NameError: name 'my_helper' is not defined" in text
    assert "Not run: the grader runs the released notebook with your exercise cells put in" in text
    assert "  cell 3, added:\n      def my_helper(left, right):" in text


def test_flags_are_explained_in_the_feedback(graded):
    text = (graded[4] / "walker.ipynb.txt").read_text()
    assert "  - affine_combine     not run\n      the check withheld its verdict: the checked " \
        "function called sys._getframe while being checked" in text
    assert "Flagged for the instructor's review:\n  - the exercise cell of affine_combine: " \
        "sys._getframe (frames), f_locals (frames), f_back (frames)" in text


def test_a_folder_beside_a_notebook_of_the_same_name_is_one_row(graded):
    row = graded[2]["alice"]
    assert (row["status"], row["score"]) == ("name collision", "0")
    assert row["note"] == "both alice/ and alice.ipynb were submitted: keep one"


def test_a_file_name_that_is_a_formula_is_written_as_text(graded):
    text = graded[3]
    assert "\n\"'=HYPERLINK(\"\"evil.example\"\",\"\"x\"\").ipynb\",ran,2,2," in text
    assert graded[2]["'=HYPERLINK(\"evil.example\",\"x\").ipynb"]["score"] == "2"


def test_summary_names_the_release_and_the_flagged(graded):
    printed = graded[1]
    assert "Against the released notebook " in printed and "00_grading.ipynb" in printed
    flagged = printed.split("see the review column): ")[1].splitlines()[0].split(", ")
    assert "walker.ipynb" in flagged and "honest.ipynb" not in flagged


# --------------------------------------------------------------------------------------------
# The parts, without a kernel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, written", [
    ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"), ("-1+2", "'-1+2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("alice.ipynb", "alice.ipynb"),
    ("a=b", "a=b"), (2, 2)])
def test_spreadsheet_safe(value, written):
    assert grading._report.spreadsheet_safe(value) == written


def test_release_must_be_an_exercise_notebook(tmp_path):
    solution, exercise = fx.lesson_notebooks()
    (tmp_path / "solution.ipynb").write_bytes(fx.to_bytes(solution))
    with pytest.raises(grading.ReleaseError, match="is not an exercise notebook written by"):
        grading.load_release(tmp_path / "solution.ipynb")
    (tmp_path / "exercise.ipynb").write_bytes(fx.to_bytes(exercise))
    release = grading.load_release(tmp_path / "exercise.ipynb")
    assert (release.names, release.lesson) == (fx.EXERCISES, "lessons/00_grading.py")
    assert release.functions == {AFFINE: (AFFINE,), ATTENTION: (ATTENTION,)}


def test_release_found_from_the_lesson_the_submissions_name(tmp_path):
    _solution, exercise = fx.lesson_notebooks()
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "00_grading.ipynb").write_bytes(fx.to_bytes(exercise))
    ours, other = fx.to_bytes(exercise), fx.to_bytes(fx.of_lesson(exercise, "lessons/03_scans.py"))
    found = grading.find_release([ours, ours, other, b"not json"], root=tmp_path)
    assert found.path == tmp_path / "exercises" / "00_grading.ipynb"
    with pytest.raises(grading.ReleaseError, match="as many submissions name"):
        grading.find_release([ours, other], root=tmp_path)
    with pytest.raises(grading.ReleaseError, match="no submission says which lesson"):
        grading.find_release([b"{}"], root=tmp_path)
    with pytest.raises(grading.ReleaseError, match=r"03_scans.ipynb does not exist: name the "
                                                   r"released notebook with --release"):
        grading.find_release([other], root=tmp_path)


def test_grade_without_a_release_it_can_find_exits_2(tmp_path, capsys):
    (tmp_path / "a.ipynb").write_bytes(fx.to_bytes(fx.of_lesson(fx.lesson_notebooks()[1],
                                                                "lessons/77_nowhere.py")))
    status, _printed = _cli("grade", str(tmp_path), "--out", str(tmp_path / "g.csv"))
    assert status == 2
    assert "exercises/77_nowhere.ipynb does not exist" in capsys.readouterr().err


def test_answers_matched_by_id_then_by_tagged_function():
    _solution, exercise = fx.lesson_notebooks()
    release = grading._release.Release(Path("x"), "lessons/00_grading.py", exercise,
                                       grading.find_exercises(exercise),
                                       {AFFINE: (AFFINE,), ATTENTION: (ATTENTION,)})
    match = grading._assemble.match_answers
    assert match(exercise, release) == {AFFINE: 2, ATTENTION: 5}
    moved = fx.with_code_cell(exercise, "def affine_combine(l, r):\n    return l\n", after=0)
    assert match(moved, release) == {AFFINE: 3, ATTENTION: 6}  # by id, not the first definer
    for cell in moved.cells:
        cell["id"] = "other-" + cell["id"]
    assert match(moved, release) == {AFFINE: 3, ATTENTION: 6}  # by the tagged definer
    for cell in moved.cells:
        cell.metadata.pop("tags", None)
    assert match(moved, release) == {AFFINE: 1, ATTENTION: 6}  # tags lost: the first definer


def test_a_notebook_that_answers_nothing_is_not_run():
    _solution, exercise = fx.lesson_notebooks()
    release = grading._release.Release(Path("x"), "lessons/00_grading.py", exercise,
                                       grading.find_exercises(exercise),
                                       {AFFINE: (AFFINE,), ATTENTION: (ATTENTION,)})
    plain = fx.to_bytes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]))
    row = grading._assemble.assemble(plain, release)
    assert row.status == "no exercises"
    assert [(e.name, e.status) for e in row.exercises] == [(AFFINE, "missing"),
                                                           (ATTENTION, "missing")]


@pytest.mark.parametrize("source, reasons", [
    ("def f(x):\n    return x", []),
    ("import numpy as np\ndef f(x):\n    return np.cumsum(x)", []),
    ("get_ipython().events.register('post_run_cell', print)", ["get_ipython (IPython's shell)"]),
    ("import sys\nsys.modules['minirec.check'].run_check = print",
     ["sys.modules", "rebinds run_check"]),
    ("import inspect\nf = inspect.currentframe().f_back",
     ["import inspect (frames)", "f_back (frames)"]),
    ("import builtins\nbuiltins.print = len", ["import builtins"]),
    ("from minirec.check._core import compare", ["import minirec.check._core"]),
    ("import minirec\nminirec.check._core.compare = 1", ["minirec.check"]),
    ("exec(open('../solutions/x.ipynb').read())",
     ["exec()", "open()", "the text '.ipynb' (a notebook file)", "the word 'solutions'"]),
    ("import gc\ngc.get_referrers(f)", ["import gc"]),
    ("g = f.__globals__", ["__globals__"]),
    ("def f(l, r):\n    return ref.affine_combine(l, r)",
     ["minirec's own affine_combine (ref.affine_combine)"]),
    ("from minirec.scan.reference import affine_combine",
     ["minirec's own affine_combine (from minirec.scan.reference)"]),
    ("def f(x):\n    check_affine_combine(f)", ["calls check_affine_combine itself"]),
    ("def check_affine_combine(fn):\n    pass", ["rebinds check_affine_combine"]),
    ("def f(x):\n    return get_ipython(\n", ["get_ipython (IPython's shell)"]),  # no parse
])
def test_exercise_cell_reasons(source, reasons):
    assert grading.cell_reasons(source, ("affine_combine",)) == reasons


def test_exercise_cells_of_the_release_itself_are_not_flagged():
    solution, exercise = fx.lesson_notebooks()
    for nb in (solution, exercise):
        sources = {s.name: nb.cells[s.exercise_cell].source for s in grading.find_exercises(nb)}
        assert grading.review_exercise_cells(sources, {n: (n,) for n in sources}) == []


def test_collision_and_names_unchanged_otherwise(tmp_path):
    (tmp_path / "bob.ipynb").write_bytes(b"{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "work.ipynb").write_bytes(b"{}")
    (tmp_path / "carol.ipynb").write_bytes(b"{}")
    subs, _ignored = grading.collect_submissions(tmp_path)
    assert [(s.name, s.problem_status if s.problem else None) for s in subs] == \
        [("bob", "name collision"), ("carol.ipynb", None)]
    assert subs[0].problem == "both bob/ and bob.ipynb were submitted: keep one"
    assert subs[0].data is None


def test_verdict_records_are_not_published_unarmed():
    """In Jupyter, nbval and `minirec build` nothing is armed: a check prints, and publishes
    nothing (the solution notebooks' outputs are unchanged)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent('''
        from minirec.check import _verdict, check_affine_combine
        from minirec.scan.reference import affine_combine
        check_affine_combine(affine_combine)
        print(_verdict.armed())
    ''')], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout == "✓ affine_combine: passed on 4 cases\nFalse\n", done.stderr


def test_the_grader_writes_a_private_key_file_and_a_startup_script(tmp_path):
    key = RunKey.new()
    key_file = grading._verdicts.install(tmp_path, key, watch=[tmp_path / "solutions"])
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    secret = json.loads(key_file.read_text())
    assert secret == {"run": key.run, "key": key.key.hex(), "watch": [str(tmp_path / "solutions")]}
    startup = (tmp_path / "profile_default" / "startup" / "00-minirec-verdicts.py").read_text()
    assert f"_verdict.arm({str(key_file)!r})" in startup and key.key.hex() not in startup
    assert not grading._verdicts.armed(key_file)
