"""Sphinx extension of the minirec website: the pages that are computed from the repository.

Jupyter Book loads it through ``sphinx.local_extensions`` in ``book/_config.yml``. When the
build starts (``config-inited``, before the table of contents is read) it writes:

- ``book/_generated/lessons.md``: every lesson with its execution time, read from
  ``book/lesson_times.json`` (written by ``minirec build``; "not measured" where a lesson has no
  time) and a download link to its exercise notebook (included by ``intro.md``);
- ``book/_generated/papers.md``: the 34 papers (``book/_data/papers.json``) with the lessons
  that cover them; whether a lesson exists is read from ``lessons/`` now (``papers.md``);
- ``book/_generated/performance.md``: the benchmarks' results as ``python benchmarks/run_all.py``
  left them in ``book/performance/`` (``performance.md``);
- ``book/api/minirec.<module>.rst``: one autodoc page per public module of the package,
  found by walking ``minirec/`` (``api.md`` lists them), so a new mechanism gets its page.

Everything it writes is generated (gitignored) and rewritten only when its text changes.
Docstrings that docutils cannot parse cleanly are shown as preformatted text instead of failing
the ``-W`` build; the build log lists them (``minirec-site: docstring shown verbatim``).
"""

from __future__ import annotations

import ast
import io
import json
import pkgutil
import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

GENERATED = "_generated"
API = "api"
PERFORMANCE = "performance"
TIMES_FILE = "lesson_times.json"
PAPERS_FILE = Path("_data") / "papers.json"
SKIP_MODULES = {"cli", "__main__"}  # the command line is documented in "How to use"
_LESSON = re.compile(r"^(\d{2})_[A-Za-z0-9_]+$")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; return whether it wrote."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def cell(text) -> str:
    """Text made safe for one cell of a Markdown pipe table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def lesson_title(notebook: Path) -> str | None:
    """The first Markdown heading of a notebook, without its ``#``s (None if it has none)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return None
    for c in cells:
        if c.get("cell_type") != "markdown":
            continue
        source = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        for line in source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return None


def lessons_found(root: Path) -> dict[str, dict]:
    """Lessons by stem (``01_cells``): their number, source, built page and exercise notebook."""
    book = root / "book"
    stems = {p.stem for p in (root / "lessons").glob("[0-9][0-9]_*.py")}
    stems |= {p.stem for p in (book / "lessons").glob("[0-9][0-9]_*.ipynb")}
    found = {}
    for stem in sorted(s for s in stems if _LESSON.match(s)):
        page = book / "lessons" / f"{stem}.ipynb"
        exercise = root / "exercises" / f"{stem}.ipynb"
        found[stem] = {
            "number": stem[:2],
            "source": (root / "lessons" / f"{stem}.py").is_file(),
            "page": page.is_file(),
            "exercise": exercise.is_file(),
            "title": lesson_title(page) if page.is_file() else None,
        }
    return found


# --------------------------------------------------------------------------------------------
# Front page: the lessons and their execution times
# --------------------------------------------------------------------------------------------


def read_times(book: Path) -> dict[str, float]:
    """``book/lesson_times.json`` as ``{stem: seconds}``; {} when absent or unreadable."""
    try:
        times = json.loads((book / TIMES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in times.items() if isinstance(v, (int, float))}


def lesson_budget() -> float | None:
    """The per-lesson time budget of ``minirec.notebooks`` (None if it defines none)."""
    try:
        from minirec import notebooks
    except ImportError:  # pragma: no cover - the book is built from an installed minirec
        return None
    budget = getattr(notebooks, "LESSON_BUDGET_S", None)
    return float(budget) if isinstance(budget, (int, float)) else None


def lessons_markdown(root: Path) -> str:
    """The front page's table: lesson, execution time (or "not measured"), exercise notebook."""
    lessons = lessons_found(root)
    times = read_times(root / "book")
    budget = lesson_budget()
    if not lessons:
        return "No lesson is built yet: run `minirec build`.\n"
    lines = [
        "| lesson | execution time | exercise notebook |",
        "|---|---|---|",
    ]
    for stem, lesson in lessons.items():
        title = lesson["title"] or stem
        name = f"{{doc}}`{cell(title)} </lessons/{stem}>`" if lesson["page"] else f"{cell(title)} (not built)"
        seconds = times.get(stem)
        if seconds is None:
            shown = "not measured"
        else:
            shown = f"{seconds:.1f} s"
            if budget is not None and seconds > budget:
                shown += f" (over the {budget:.0f} s budget)"
        exercise = (
            f"{{download}}`{stem}.ipynb <../exercises/{stem}.ipynb>`" if lesson["exercise"] else "—"
        )
        lines.append(f"| {name} | {shown} | {exercise} |")
    note = (
        "Execution time: the seconds `minirec build` took to run the lesson's notebook top to bottom "
        "on the machine that built this site (recorded in `book/lesson_times.json`)"
    )
    note += f"; a lesson's budget is {budget:.0f} s on two CPU cores." if budget else "."
    if not times:
        note += " No time was recorded for this build: run `minirec build` to measure them."
    return "\n".join(lines) + "\n\n" + note + "\n"


# --------------------------------------------------------------------------------------------
# The papers and the lessons that cover them
# --------------------------------------------------------------------------------------------


def load_papers(book: Path) -> dict:
    """``book/_data/papers.json``: ``{"lessons": {NN: title}, "papers": [...]}``."""
    return json.loads((book / PAPERS_FILE).read_text(encoding="utf-8"))


def papers_markdown(root: Path) -> str:
    """The table of the 34 papers: number, title, class, mechanism, lessons (existing or planned)."""
    data = load_papers(root / "book")
    lessons = lessons_found(root)
    by_number: dict[str, list[str]] = {}
    for stem, lesson in lessons.items():
        if lesson["source"] or lesson["page"]:
            by_number.setdefault(lesson["number"], []).append(stem)
    lines = ["| # | paper | class | mechanism | lessons |", "|---|---|---|---|---|"]
    covered = 0
    for paper in data["papers"]:
        shown = []
        exists = False
        for number in paper["lessons"]:
            stems = by_number.get(number, [])
            if stems:
                exists = True
                for stem in stems:
                    if lessons[stem]["page"]:
                        shown.append(f"{{doc}}`L{number} </lessons/{stem}>`")
                    else:
                        shown.append(f"L{number} (written, not built)")
            else:
                title = data["lessons"].get(number, "")
                shown.append(f"L{number} {cell(title)} (planned)" if title else f"L{number} (planned)")
        covered += exists
        lines.append(
            f"| {paper['number']} | {cell(paper['title'])} | {paper['class']} | "
            f"{cell(paper['mechanism'])} | {'; '.join(shown)} |"
        )
    summary = (
        f"{covered} of the {len(data['papers'])} papers are covered by a lesson that exists in this "
        f"build ({len(by_number)} lesson(s) in `lessons/`); the others name the planned lesson."
    )
    return summary + "\n\n" + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# The performance page
# --------------------------------------------------------------------------------------------


def script_title(script: Path) -> str:
    """First line of a benchmark script's docstring (its name if it has none)."""
    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except (OSError, SyntaxError):
        doc = None
    return doc.strip().splitlines()[0].rstrip(".") if doc else script.stem


GOAL_WORD = {True: "✅ met", False: "❌ missed", None: "— not judged"}


def machine_line(result: dict) -> str:
    """One line: CPU, cores, library versions and load average of a benchmark's JSON."""
    machine = result.get("machine") or {}
    parts = []
    if result.get("gpu"):
        parts.append(f"GPU {result['gpu']}")
    if machine.get("cpu"):
        parts.append(f"{machine['cpu']}, {machine.get('logical_cpus', '?')} logical CPUs")
    versions = [f"{k} {machine[k]}" for k in ("python", "numpy", "numba", "torch", "scipy") if k in machine]
    if versions:
        parts.append(", ".join(versions))
    load = machine.get("load_avg_1min")
    if isinstance(load, dict) and "start" in load:
        end = load.get('end', float('nan'))
        parts.append(f"load average (1 min) {load['start']:.2f} at start, {end:.2f} at end")
    elif isinstance(machine.get("load_average"), str):
        parts.append(f"load average {machine['load_average']} at start")
    return "; ".join(parts) if parts else "machine not recorded"


def measured(result: dict, status: dict) -> str:
    """When a benchmark ran: its JSON's ``date`` (or its machine's), else when run_all saw it finish."""
    date = result.get("date") or (result.get("machine") or {}).get("date")
    if date:
        return str(date)
    if status.get("finished"):
        return f"{status['finished']} (finished; the JSON has no date)"
    return "?"


def goals_markdown(result: dict) -> list[str]:
    """The goals of one benchmark as list items, or the reason it has none."""
    goals = result.get("goals")
    if goals is None:
        return ["- No goal is recorded in this benchmark's JSON (see `benchmarks/README.md`)."]
    if not goals:
        reason = result.get("no_goal") or "this benchmark has no numeric goal"
        return [f"- No numeric goal: {cell(reason)}."]
    return [f"- **{GOAL_WORD.get(g.get('met'), '— not judged')}** — {goal_text(g)}" for g in goals]


def goal_text(goal: dict) -> str:
    """What a goal asks and what the run measured, from the keys its benchmark gave it.

    The convention is ``{"goal": "<what>", "met": true|false|null, "detail": "<the numbers>"}``;
    ``{"fast", "slow", "goal": <ratio>, "ratio"}`` (a speed-up goal) is read too, and any other
    shape is shown as its JSON.
    """
    if isinstance(goal.get("goal"), str):
        text = goal["goal"]
        return f"{text}: {goal['detail']}" if goal.get("detail") else text
    if {"fast", "slow", "goal"} <= goal.keys():
        text = f"{goal['fast']} ≥ {goal['goal']:g}× faster than {goal['slow']}"
        if isinstance(goal.get("ratio"), (int, float)):
            text += f": {goal['ratio']:.1f}× in this run"
        return text
    shown = {k: v for k, v in goal.items() if k != "met"}
    return f"`{json.dumps(shown, ensure_ascii=False)}`"


def performance_markdown(root: Path) -> str:
    """The performance page body from ``book/performance/`` and the scripts in ``benchmarks/``."""
    folder = root / "book" / PERFORMANCE
    scripts = sorted((root / "benchmarks").glob("bench_*.py"))
    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = None
    out = []
    if run is None:
        out.append(
            "No benchmark run is recorded in `book/performance/` yet: run "
            "`python benchmarks/run_all.py` and rebuild the site.\n"
        )
    else:
        described = (run.get("machine") or {}).get("description", "a machine not recorded")
        out.append(
            f"Last run: `{run.get('command', '?')}`, from {run.get('started', '?')} to "
            f"{run.get('finished', '?')}, on {cell(described)}; load average (1 min) "
            f"{run.get('load_start', float('nan')):.2f} at the start and "
            f"{run.get('load_end', float('nan')):.2f} at the end (other jobs on the machine slow "
            "the 2-thread timings most). Each section gives its own date and machine.\n"
        )
        if run.get("quick"):
            out.append(
                "```{warning}\nThese results come from `--quick` runs (tiny sizes, a smoke test): "
                "they measure nothing. Run `python benchmarks/run_all.py` for the real sizes.\n```\n"
            )
    results = {}
    for script in scripts:
        try:
            results[script.stem] = json.loads((folder / f"{script.stem}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results[script.stem] = None
    statuses = (run or {}).get("scripts", {})
    out += ["| benchmark | measured | goals met | status |", "|---|---|---|---|"]
    for script in scripts:
        result, status = results[script.stem], statuses.get(script.stem, {})
        if result is None:
            state = "failed" if status.get("returncode") else "not run yet"
            out.append(f"| [{script.stem}](#{script.stem.replace('_', '-')}) | — | — | {state} |")
            continue
        goals = result.get("goals") or []
        judged = [g for g in goals if g.get("met") is not None]
        met = f"{sum(bool(g['met']) for g in judged)} of {len(judged)}" if judged else "no numeric goal"
        if goals and not judged:
            met = "not judged (quick sizes)"
        state = "no GPU: nothing measured" if result.get("message") and not result.get("rows") else "ok"
        out.append(
            f"| [{script.stem}](#{script.stem.replace('_', '-')}) | {cell(measured(result, status))} | "
            f"{met} | {state} |"
        )
    out.append("")
    for script in scripts:
        out += script_section(script, results[script.stem], statuses.get(script.stem, {}), folder)
    return "\n".join(out) + "\n"


def script_section(script: Path, result: dict | None, status: dict, folder: Path) -> list[str]:
    """One benchmark's section: what it measures, machine and date, goals, its table, its plot."""
    out = [f"({script.stem.replace('_', '-')})=", f"## `{script.name}`: {script_title(script)}", ""]
    if result is None:
        if status.get("returncode"):
            out += [
                f"The last run failed (exit status {status['returncode']}); the end of its output:",
                "",
                "```text",
                status.get("tail", "").rstrip(),
                "```",
                "",
            ]
        else:
            out += ["Not run yet: `python benchmarks/run_all.py` measures it.", ""]
        return out
    out += [f"Measured {measured(result, status)} — {machine_line(result)}.", ""]
    if result.get("message"):
        out += [f"**{cell(result['message'])}**", ""]
    out += ["Goals:", ""] + goals_markdown(result) + [""]
    for summary in result.get("summary") or []:
        if isinstance(summary, dict) and summary.get("text"):
            out.append(f"- {summary['text']}")
    if result.get("summary"):
        out.append("")
    plot = folder / f"{script.stem}.png"
    if plot.is_file():
        out += [f"![{script.stem}]({PERFORMANCE}/{plot.name})", ""]
    text = folder / f"{script.stem}.txt"
    if text.is_file():
        out += [
            "The script's own output (times in ms, ratios to the peers and limits named in the header):",
            "",
            "```text",
            text.read_text(encoding="utf-8").rstrip(),
            "```",
            "",
        ]
    return out


# --------------------------------------------------------------------------------------------
# API reference: one page per public module of minirec, found by walking the package
# --------------------------------------------------------------------------------------------


def public_modules() -> dict[str, list[str]]:
    """``{top-level module: [it and its public submodules]}`` for every public module of minirec.

    Found from the files (no import): names starting with ``_`` and the command line are skipped.
    """
    import minirec

    found: dict[str, list[str]] = {}
    for info in sorted(pkgutil.iter_modules(minirec.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in SKIP_MODULES:
            continue
        name = f"minirec.{info.name}"
        found[name] = [name]
        if info.ispkg:
            package_path = [str(Path(p) / info.name) for p in minirec.__path__]
            for sub in pkgutil.walk_packages(package_path, prefix=f"{name}."):
                if not any(part.startswith("_") for part in sub.name.split(".")):
                    found[name].append(sub.name)
    return found


def import_problem(name: str) -> str | None:
    """Why ``name`` cannot be imported (the exception's last line), or None if it imports."""
    import importlib

    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any failure is shown on the page instead
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def api_page(top: str, modules: list[str]) -> str:
    """The reStructuredText of one API page: the module, then each public submodule.

    A module that does not import (work in progress elsewhere) gets an error box with the
    reason instead of failing the whole build; its own tests are where it must be fixed.
    """
    lines = [top, "=" * len(top), ""]
    for name in modules:
        if name != top:
            lines += [name, "-" * len(name), ""]
        problem = import_problem(name)
        if problem is None:
            lines += [f".. automodule:: {name}", "   :members:", "   :member-order: bysource", ""]
        else:
            logger.info(f"minirec-site: {name} does not import: {problem}")
            lines += [".. error::", "", f"   ``{name}`` could not be imported when this site was built::",
                      "", f"      {problem}", ""]
    return "\n".join(lines)


def api_index_markdown(modules: dict[str, list[str]]) -> str:
    """The list of API pages with each module's first docstring line."""
    lines = []
    for top, names in modules.items():
        subs = ", ".join(f"`{n.rsplit('.', 1)[1]}`" for n in names if n != top)
        lines.append(f"- {{doc}}`{top} </api/{top}>`" + (f" (and {subs})" if subs else ""))
    return "\n".join(lines) + "\n"


def write_api(book: Path) -> None:
    """Write ``book/api/<module>.rst`` for each public module; remove pages of modules gone."""
    modules = public_modules()
    folder = book / API
    wanted = set()
    for top, names in modules.items():
        path = folder / f"{top}.rst"
        wanted.add(path.name)
        write_if_changed(path, api_page(top, names))
    for old in folder.glob("*.rst"):
        if old.name not in wanted:
            old.unlink()
    write_if_changed(book / GENERATED / "api.md", api_index_markdown(modules))


# --------------------------------------------------------------------------------------------
# Docstrings that docutils cannot parse are shown verbatim instead of failing the build
# --------------------------------------------------------------------------------------------


def docstring_problems(lines: list[str]) -> list[str]:
    """The docutils warnings and errors that ``lines`` (a docstring) raise on their own."""
    from docutils.core import publish_doctree
    from docutils.utils import Reporter

    stream = io.StringIO()
    text = "\n".join(lines)
    # Sphinx roles (:func:, :math:, ...) are unknown to plain docutils: mask them first.
    text = re.sub(r":[a-z:+-]+:`", "`", text)
    publish_doctree(
        text,
        settings_overrides={
            "report_level": Reporter.WARNING_LEVEL,
            "halt_level": Reporter.SEVERE_LEVEL + 1,
            "warning_stream": stream,
            "file_insertion_enabled": False,
            "raw_enabled": False,
        },
    )
    return [line for line in stream.getvalue().splitlines() if "(WARNING/" in line or "(ERROR/" in line]


def verbatim_if_broken(app, what, name, obj, options, lines: list[str]) -> None:
    """``autodoc-process-docstring``: a docstring docutils rejects becomes a literal block."""
    if not lines:
        return
    problems = docstring_problems(lines)
    if not problems:
        return
    logger.info(f"minirec-site: docstring shown verbatim: {name}: {problems[0]}")
    app.env.minirec_verbatim = getattr(app.env, "minirec_verbatim", []) + [name]
    body = ["::", ""] + [f"    {line}" if line.strip() else "" for line in lines] + [""]
    lines[:] = body


# --------------------------------------------------------------------------------------------
# Sphinx wiring
# --------------------------------------------------------------------------------------------


def generate(app, config) -> None:
    """``config-inited`` (before the table of contents is read): write every generated page."""
    book = Path(app.srcdir)
    root = book.parent
    generated = book / GENERATED
    write_if_changed(generated / "lessons.md", lessons_markdown(root))
    if (book / PAPERS_FILE).is_file():
        write_if_changed(generated / "papers.md", papers_markdown(root))
    write_if_changed(generated / "performance.md", performance_markdown(root))
    write_api(book)


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context``: each script once. sphinx-thebe and sphinx-togglebutton add their
    inline configuration twice (the second ``const THEBE_JS_URL = ...`` is a JavaScript error
    on every page)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # the copies differ only in filename None / "" (an inline script either way)
        name = getattr(script, "filename", str(script)) or ""
        key = (name, repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept  # in place: later handlers (MathJax's) add to this very list


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("config-inited", generate, priority=100)  # the toc is read at 900
    app.connect("autodoc-process-docstring", verbatim_if_broken)
    # Early: emit_firstresult stops at the first handler that returns a template (a theme's).
    app.connect("html-page-context", unique_scripts, priority=100)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
