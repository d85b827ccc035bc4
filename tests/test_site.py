"""The website's computed pages (book/_ext/minirec_site.py) and its data, without a browser.

The extension's pieces are tested on small made-up repositories; one test builds the whole site
the way a fresh clone would (no recorded lesson times) with warnings as errors. Nothing here
reads outside the repository: the papers-to-lessons map is ``book/_data/papers.json``, checked
against the lessons' own title paragraphs.
The browser test (tests/test_browser.py) then checks the built site page by page.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))
import minirec_site as site  # noqa: E402


def notebook(*markdown: str) -> str:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": m} for m in markdown]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def make_repo(tmp: Path, lessons: dict[str, dict]) -> Path:
    """``lessons``: stem -> {"source", "page", "exercise": bool, "title": str}."""
    for folder in ("lessons", "exercises", "book/lessons", "benchmarks"):
        (tmp / folder).mkdir(parents=True, exist_ok=True)
    shutil.copytree(BOOK / "_data", tmp / "book" / "_data")
    for stem, spec in lessons.items():
        if spec.get("source", True):
            (tmp / "lessons" / f"{stem}.py").write_text("# %%\n")
        if spec.get("page", True):
            (tmp / "book" / "lessons" / f"{stem}.ipynb").write_text(
                notebook("Some text", f"# {spec.get('title', stem)}\n\nmore")
            )
        if spec.get("exercise", True):
            (tmp / "exercises" / f"{stem}.ipynb").write_text(notebook("x"))
    return tmp


# --------------------------------------------------------------------------------------------
# The papers' data shipped in the repository
# --------------------------------------------------------------------------------------------


def test_papers_data_has_the_34_papers_each_in_a_lesson():
    data = site.load_papers(BOOK)
    papers = data["papers"]
    assert [p["number"] for p in papers] == list(range(1, 35))
    assert len({p["title"] for p in papers}) == 34
    for paper in papers:
        assert paper["class"] in {"CORE", "SEC", "CTX"}, paper
        assert paper["mechanism"].strip(), paper
        assert paper["lessons"] and set(paper["lessons"]) <= set(data["lessons"]), paper
    assert sorted(data["lessons"]) == [f"{n:02d}" for n in range(1, 16)]


def title_paragraph_papers(lesson: Path) -> dict[int, str]:
    """The papers a lesson's title paragraph names, ``**Papers.** #7 Feng et al., *Attention as
    an RNN* (Aaren); #10 ...``: {number: the title in italics after it}."""
    import jupytext

    heading = jupytext.read(lesson).cells[0].source
    paragraph = re.search(r"^\*\*Papers?\.\*\*(.*?)(?:\n\s*\n|\Z)", heading, re.M | re.S)
    assert paragraph, f"{lesson.name}: no **Paper.** / **Papers.** paragraph in its first cell"
    named = re.findall(r"#(\d+)\b[^#*]*\*([^*]+)\*", paragraph.group(1))
    return {int(number): " ".join(title.split()) for number, title in named}


def words(title: str) -> str:
    """A title compared without case, punctuation or dashes ("—", "--")."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", title.lower()).split())


LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_papers_data_agrees_with_each_lessons_title_paragraph(lesson):
    """The papers a lesson's title paragraph names are exactly those papers.json maps to it, under
    the titles papers.json gives (a lesson may shorten a title, not change it)."""
    data = site.load_papers(BOOK)
    number = lesson.stem[:2]
    assert number in data["lessons"], f"{lesson.stem}: no planned title in papers.json"
    mapped = {p["number"]: p["title"] for p in data["papers"] if number in p["lessons"]}
    named = title_paragraph_papers(lesson)
    assert set(named) == set(mapped), (
        f"{lesson.stem} names papers {sorted(named)}; papers.json maps {sorted(mapped)} to it")
    for paper, title in named.items():
        assert words(mapped[paper]).startswith(words(title)), (paper, title, mapped[paper])


def test_the_title_paragraph_reader_finds_numbers_and_titles(tmp_path):
    lesson = tmp_path / "01_x.py"
    lesson.write_text("# %% [markdown]\n# # 01 · X\n#\n# **Papers.** #9 Lipton et al., *A Critical\n"
                      "# Review* (notation); #8 *Recoding latent* (the sidebar).\n#\n"
                      "# **Builds on:** #3 *Not a paper of this lesson*.\n")
    assert title_paragraph_papers(lesson) == {9: "A Critical Review", 8: "Recoding latent"}
    assert words("Recoding latent -- Dynamic") == words("recoding latent — dynamic")


# --------------------------------------------------------------------------------------------
# Front page: lessons and their execution times
# --------------------------------------------------------------------------------------------


def test_lesson_table_reads_times_and_says_not_measured(tmp_path):
    root = make_repo(tmp_path, {
        "01_cells": {"title": "01 · Cells"},
        "02_time": {"title": "02 · Time", "exercise": False},
        "03_slow": {"title": "03 · Slow"},
        "05_new": {"page": False},
    })
    (root / "book" / "lesson_times.json").write_text(json.dumps({"01_cells": 12.34, "03_slow": 1e4}))
    table = site.lessons_markdown(root)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "{doc}`01 · Cells </lessons/01_cells>`" in rows
    assert "12.3 s" in rows["{doc}`01 · Cells </lessons/01_cells>`"]
    assert "{download}`01_cells.ipynb <../exercises/01_cells.ipynb>`" in table
    time_row = rows["{doc}`02 · Time </lessons/02_time>`"]
    assert "not measured" in time_row and "{download}" not in time_row
    assert "over the" in rows["{doc}`03 · Slow </lessons/03_slow>`"]
    assert "05_new (not built)" in rows
    (root / "book" / "lesson_times.json").unlink()
    assert site.lessons_markdown(root).count("not measured") == 4
    assert "No time was recorded" in site.lessons_markdown(root)


def test_lesson_title_is_the_first_heading(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text(notebook("no heading", "## 07 · Routing\ntext", "# later"))
    assert site.lesson_title(path) == "07 · Routing"
    path.write_text("not json")
    assert site.lesson_title(path) is None


# --------------------------------------------------------------------------------------------
# Papers page: existence computed from lessons/
# --------------------------------------------------------------------------------------------


def test_papers_table_links_existing_lessons_and_names_planned_ones(tmp_path):
    root = make_repo(tmp_path, {"04_attention": {}, "10_hmm": {"page": False}})
    table = site.papers_markdown(root)
    rows = {int(line.split("|")[1]): line for line in table.splitlines() if re.match(r"^\| \d+ \|", line)}
    assert len(rows) == 34
    assert "{doc}`L04 </lessons/04_attention>`" in rows[7]  # Aaren
    assert "L10 (written, not built)" in rows[20]  # HMM-RNNs
    assert "L07 Routing I" in rows[2] and "(planned)" in rows[2]  # RMoE, no lesson 07 here
    assert table.startswith("4 of the 34 papers")  # #7, #10, #18 (L04) and #20 (L10)


def test_cells_are_escaped():
    assert site.cell("a|b\nc") == "a\\|b c"


# --------------------------------------------------------------------------------------------
# Performance page: from book/performance/ and the scripts in benchmarks/
# --------------------------------------------------------------------------------------------


def write_result(folder: Path, stem: str, **extra):
    result = {"benchmark": stem, "date": "2026-01-01T00:00:00+00:00",
              "machine": {"cpu": "Test CPU", "logical_cpus": 2, "numpy": "2.0",
                          "load_avg_1min": {"start": 0.5, "end": 1.0}},
              "rows": [{"method": "a", "best_ms": 1.0}], **extra}
    (folder / f"{stem}.json").write_text(json.dumps(result))
    (folder / f"{stem}.txt").write_text(f"{stem} table\n")


def test_performance_page_shows_goals_status_and_output(tmp_path):
    root = make_repo(tmp_path, {})
    for name in ("bench_a", "bench_b", "bench_c", "bench_d"):
        (root / "benchmarks" / f"{name}.py").write_text(f'"""{name.upper()} on the CPU.\n\nmore"""\n')
    perf = root / "book" / "performance"
    perf.mkdir()
    write_result(perf, "bench_a", goals=[
        {"goal": "fast enough", "met": True, "detail": "3 ms"},
        {"goal": "faster still", "met": False, "detail": "needs 1 ms"},
        {"fast": "numba", "slow": "numpy", "goal": 20, "ratio": 31.5, "met": True},
    ])
    (perf / "bench_a.png").write_bytes(b"png")
    write_result(perf, "bench_b", goals=[], no_goal="it shows ratios only")
    run = {"started": "s", "finished": "f", "command": "python benchmarks/run_all.py", "quick": False,
           "machine": {"description": "Test CPU, 2 logical CPUs"}, "load_start": 0.1, "load_end": 0.2,
           "scripts": {"bench_c": {"returncode": 2, "tail": "Boom: it broke"}}}
    (perf / "run.json").write_text(json.dumps(run))
    page = site.performance_markdown(root)
    assert "Test CPU, 2 logical CPUs" in page and "python benchmarks/run_all.py" in page
    assert "| [bench_a](#bench-a) | 2026-01-01T00:00:00+00:00 | 2 of 3 | ok |" in page
    assert "✅ met** — fast enough: 3 ms" in page and "❌ missed** — faster still: needs 1 ms" in page
    assert "numba ≥ 20× faster than numpy: 31.5× in this run" in page
    assert "![bench_a](performance/bench_a.png)" in page and "bench_a table" in page
    assert "No numeric goal: it shows ratios only." in page
    assert "| failed |" in page and "Boom: it broke" in page
    assert "| [bench_d](#bench-d) | — | — | not run yet |" in page
    assert "## `bench_a.py`: BENCH_A on the CPU" in page
    assert "load average (1 min) 0.50 at start, 1.00 at end" in page
    run["quick"] = True
    (perf / "run.json").write_text(json.dumps(run))
    assert "{warning}" in site.performance_markdown(root)


def test_performance_page_without_any_run(tmp_path):
    root = make_repo(tmp_path, {})
    (root / "benchmarks" / "bench_x.py").write_text("")
    page = site.performance_markdown(root)
    assert "No benchmark run is recorded" in page and "not run yet" in page


def test_quick_goals_are_not_judged():
    assert "— not judged" in site.goals_markdown({"goals": [{"goal": "g", "met": None}]})[0]
    assert "No goal is recorded" in site.goals_markdown({})[0]


# --------------------------------------------------------------------------------------------
# API reference: modules found by walking the package
# --------------------------------------------------------------------------------------------


def test_api_covers_every_public_module_of_the_package():
    modules = site.public_modules()
    folder = ROOT / "minirec"
    top = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir()
                                                    if (p / "__init__.py").is_file()}
    expected = {f"minirec.{n}" for n in top if not n.startswith("_") and n not in site.SKIP_MODULES}
    assert set(modules) == expected
    assert {"minirec.scan.reference", "minirec.scan.numba_cpu", "minirec.scan.torch_ops"} <= set(
        modules["minirec.scan"])
    assert all(not any(part.startswith("_") for part in n.split(".")) for ns in modules.values() for n in ns)


def test_api_page_documents_modules_and_reports_one_that_does_not_import():
    page = site.api_page("minirec.scan", ["minirec.scan", "minirec.no_such_module"])
    assert ".. automodule:: minirec.scan\n   :members:" in page
    assert ".. automodule:: minirec.no_such_module" not in page
    assert ".. error::" in page and "ModuleNotFoundError" in page


def test_a_broken_docstring_is_shown_verbatim_and_a_good_one_is_kept():
    class Env:
        pass

    class App:
        env = Env()

    good = ["Sum of ``x``.", "", "Shapes: x (T, B, D) -> (B, D); see :func:`minirec.scan.add`."]
    lines = list(good)
    site.verbatim_if_broken(App, "function", "good", None, {}, lines)
    assert lines == good
    broken = ["Norm |h| of h.", "  unexpected indent"]
    lines = list(broken)
    site.verbatim_if_broken(App, "function", "broken", None, {}, lines)
    assert lines[0] == "::" and "    Norm |h| of h." in lines
    assert App.env.minirec_verbatim == ["broken"]


# --------------------------------------------------------------------------------------------
# The whole site, as a fresh clone builds it (no lesson times): -W stays green
# --------------------------------------------------------------------------------------------


def test_book_builds_from_a_fresh_clone(tmp_path):
    pytest.importorskip("jupyter_book")
    from minirec.notebooks import build_book

    book = tmp_path / "repo" / "book"
    shutil.copytree(BOOK, book, ignore=shutil.ignore_patterns(
        "_build", "lessons", "_generated", "api", "lesson_times.json", "__pycache__"))
    for folder in ("lessons", "exercises", "benchmarks"):
        shutil.copytree(ROOT / folder, tmp_path / "repo" / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "results"))
    shutil.copytree(ROOT / "solutions", book / "lessons")
    index = build_book(book_dir=book, quiet=True)
    html = index.parent
    front = (html / "intro.html").read_text(encoding="utf-8")
    assert "not measured" in front and "_downloads/" in front
    papers = (html / "papers.html").read_text(encoding="utf-8")
    assert "(planned)" in papers and "lessons/" in papers
    for top in site.public_modules():
        assert (html / "api" / f"{top}.html").is_file(), top
    assert "performance/" in (html / "performance.html").read_text(encoding="utf-8") or not any(
        (BOOK / "performance").glob("*.json"))
