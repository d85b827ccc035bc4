"""The website in a real browser: build it, serve it on localhost, visit every page in Chromium.

The site is built as ``minirec book`` builds it (``book/_build/html``, from the notebooks in
``solutions/``) and served by a local HTTP server; Debian's Chromium, driven headless by
Playwright with the system browser (never a downloaded one), follows every internal link from
the front page. Over every page: it loads, the console shows no error, no request leaves
localhost, maths is typeset (MathJax output wherever the page has maths, and no TeX error), no
Python traceback shows, every internal link and anchor resolves. Lesson pages show executed
outputs and at least one figure. The site shows the solutions; what it hands out as exercises
are the exercise notebooks it links for download, and those must hold no solution code: each is
compared with a fresh split of its lesson. Screenshots of the front page and of a lesson page
are saved next to the build, in ``book/_build/screenshots/``.

Without Playwright or Chromium the tests skip, saying which is missing, except under CI
(``CI=true``, which ``.ci/run`` sets) or with ``MINIREC_REQUIRE_BROWSER=1``: then they fail.
``MINIREC_SITE=<folder with index.html>`` tests an already built site instead of building one.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("MINIREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TRACEBACK = "Traceback (most recent call last)"
PAGE_TIMEOUT_MS = 60_000


def _required() -> bool:
    truthy = {"1", "true", "yes"}
    return (os.environ.get("CI", "").lower() in truthy
            or os.environ.get("MINIREC_REQUIRE_BROWSER", "").lower() in truthy)


def _missing() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    if importlib.util.find_spec("playwright") is None:
        return 'the Python package playwright is not installed (pip install playwright)'
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if "MINIREC_SITE" not in os.environ and importlib.util.find_spec("jupyter_book") is None:
        return 'jupyter-book is not installed (pip install -e ".[book]")'
    return None


@pytest.fixture(scope="module")
def html() -> Path:
    """The built site's folder: ``$MINIREC_SITE``, or ``book/_build/html`` built now."""
    reason = _missing()
    if reason:
        if _required():
            pytest.fail(f"the browser test must run here (CI or MINIREC_REQUIRE_BROWSER), but {reason}")
        pytest.skip(reason)
    if "MINIREC_SITE" in os.environ:
        folder = Path(os.environ["MINIREC_SITE"]).resolve()
        assert (folder / "index.html").is_file(), f"MINIREC_SITE={folder} has no index.html"
        return folder
    from minirec.notebooks import build_book, sync_book

    sync_book(root=ROOT, log=lambda _message: None)
    return build_book(root=ROOT, quiet=True).parent


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on the test's output
        pass


@pytest.fixture(scope="module")
def base_url(html):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------------------------
# One crawl of the whole site; the tests below read its record
# --------------------------------------------------------------------------------------------

_PAGE_FACTS = """() => {
  const q = (s) => document.querySelectorAll(s).length;
  return {
    title: document.title,
    text: document.body ? document.body.innerText : "",
    ids: Array.from(document.querySelectorAll("[id]"), e => e.id)
          .concat(Array.from(document.querySelectorAll("a[name]"), e => e.name)),
    links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
    maths_source: q(".math, .amsmath, span.math, div.math"),
    maths_typeset: q("mjx-container"),
    maths_errors: q("mjx-merror"),
    outputs: q(".cell_output"),
    output_figures: q(".cell_output img"),
    tracebacks: q(".traceback, .output.error, .cell_output .output_error"),
  };
}"""

_MATHJAX_DONE = """() => new Promise((resolve) => {
  if (!window.MathJax) { resolve("no MathJax"); return; }
  const start = Date.now();
  const wait = () => {
    if (window.MathJax.startup && window.MathJax.startup.promise) {
      window.MathJax.startup.promise.then(() => resolve("typeset"));
    } else if (Date.now() - start > 20000) {
      resolve("MathJax configured but never started (its script did not load?)");
    } else { setTimeout(wait, 50); }
  };
  wait();
})"""


def _visit(page, url: str):
    """Load ``url``; wait for MathJax; return (response, MathJax state, page facts).

    A page that navigates on load (a meta-refresh redirect) is read where it lands.
    """
    from playwright.sync_api import Error

    response = page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    for _attempt in range(5):
        try:
            page.wait_for_load_state("load", timeout=PAGE_TIMEOUT_MS)
            typeset = page.evaluate(_MATHJAX_DONE)
            return response, typeset, page.evaluate(_PAGE_FACTS)
        except Error as exc:
            if "context was destroyed" not in str(exc):
                raise
            page.wait_for_timeout(200)
    raise AssertionError(f"{url} keeps navigating")


def _is_html(url: str) -> bool:
    path = urlparse(url).path
    return path.endswith("/") or path.endswith(".html")


@pytest.fixture(scope="module")
def site(html, base_url):
    """Visit every page reachable from the front page; return ``{"pages": ..., "files": ...}``."""
    from playwright.sync_api import sync_playwright

    shots = html.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    pages: dict[str, dict] = {}
    files: dict[str, int | str] = {}
    queue = [urljoin(base_url, "index.html")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        remote: list[str] = []

        def route(r):
            if r.request.url.startswith(base_url) or r.request.url.startswith("data:"):
                r.continue_()
            else:
                remote.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        seen: set[str] = set()
        lesson_shot = False
        while queue:
            url = queue.pop(0)
            if url in seen:
                continue
            seen.add(url)
            console, failed = [], []
            on_console = lambda m, c=console: m.type == "error" and c.append(m.text)  # noqa: E731
            on_error = lambda e, c=console: c.append(f"uncaught: {e}")  # noqa: E731
            on_response = lambda r, f=failed: r.status >= 400 and f.append(f"{r.status} {r.url}")  # noqa: E731
            page.on("console", on_console)
            page.on("pageerror", on_error)
            page.on("response", on_response)
            del remote[:]
            response, typeset, facts = _visit(page, url)
            page.remove_listener("console", on_console)
            page.remove_listener("pageerror", on_error)
            page.remove_listener("response", on_response)
            rel = url[len(base_url):]
            if page.url != url:  # index.html redirects to the root page (meta refresh)
                facts["redirect"] = page.url
                queue.append(page.url)
            facts.update(status=response.status if response else None, console=list(console),
                         failed=list(failed), remote=list(remote), mathjax=typeset)
            pages[rel] = facts
            if rel == "intro.html":
                page.screenshot(path=str(shots / "front_page.png"))
            elif rel.startswith("lessons/") and not lesson_shot:
                page.screenshot(path=str(shots / "lesson_page.png"))
                lesson_shot = True
            for link in facts["links"]:
                target, _ = urldefrag(link)
                if not target.startswith(base_url):
                    continue
                if _is_html(target):
                    if target not in seen and target not in queue:
                        queue.append(target)
                elif target not in files:
                    try:
                        with urllib.request.urlopen(target) as got:
                            files[target] = got.status
                    except urllib.error.HTTPError as exc:
                        files[target] = exc.code
        browser.close()
    return {"pages": pages, "files": files, "base": base_url, "screenshots": shots}


def _bad(site, key) -> dict:
    return {rel: facts[key] for rel, facts in site["pages"].items() if facts[key]}


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


def test_every_page_loads(site):
    statuses = {rel: f["status"] for rel, f in site["pages"].items() if f["status"] != 200}
    assert not statuses, statuses
    assert not _bad(site, "failed"), "resources that did not load"


def test_the_site_has_its_pages(site):
    visited = set(site["pages"])
    expected = {"index.html", "intro.html", "how_to_use.html", "papers.html", "api.html",
                "performance.html"}
    expected |= {f"lessons/{p.stem}.html" for p in (ROOT / "solutions").glob("*.ipynb")}
    expected |= {f"api/{p.stem}.html" for p in (ROOT / "book" / "api").glob("*.rst")}
    assert expected <= visited, f"not reachable from the front page: {sorted(expected - visited)}"


def test_no_console_errors(site):
    assert not _bad(site, "console")


def test_nothing_is_loaded_from_outside_localhost(site):
    assert not _bad(site, "remote"), "the site must work offline"


def test_maths_is_typeset(site):
    untypeset = {rel: (f["maths_source"], f["mathjax"]) for rel, f in site["pages"].items()
                 if f["maths_source"] and not f["maths_typeset"]}
    assert not untypeset, f"maths left as TeX (maths elements, MathJax state): {untypeset}"
    assert not _bad(site, "maths_errors"), "TeX errors on these pages"
    assert site["pages"]["intro.html"]["maths_typeset"], "the front page's equation"


def test_lesson_pages_show_outputs_and_a_figure(site):
    lessons = {rel: f for rel, f in site["pages"].items() if rel.startswith("lessons/")}
    assert lessons, "no lesson page"
    for rel, facts in lessons.items():
        assert facts["outputs"] > 0, f"{rel} shows no executed output"
        assert facts["output_figures"] > 0, f"{rel} shows no figure"


def test_no_page_shows_a_python_traceback(site):
    shown = {rel: f"{f['tracebacks']} traceback elements, {f['text'].count(TRACEBACK)} in the text"
             for rel, f in site["pages"].items() if f["tracebacks"] or TRACEBACK in f["text"]}
    assert not shown, shown


def test_every_internal_link_resolves(site):
    base, pages = site["base"], site["pages"]
    broken = []
    for rel, facts in pages.items():
        for link in facts["links"]:
            target, fragment = urldefrag(link)
            if not target.startswith(base):
                continue
            target_rel = target[len(base):] or "index.html"
            if _is_html(target):
                if target_rel not in pages:
                    broken.append(f"{rel} -> {target_rel} (not visited)")
                elif fragment and fragment not in pages[target_rel]["ids"]:
                    broken.append(f"{rel} -> {target_rel}#{fragment} (no such anchor)")
            elif site["files"].get(target) != 200:
                broken.append(f"{rel} -> {target_rel} ({site['files'].get(target)})")
    assert not broken, "\n".join(sorted(set(broken)))


def test_screenshots_are_saved_with_the_build(site):
    for name in ("front_page.png", "lesson_page.png"):
        shot = site["screenshots"] / name
        assert shot.is_file() and shot.stat().st_size > 10_000, shot


def _download(url: str) -> str:
    with urllib.request.urlopen(url) as got:
        return got.read().decode("utf-8")


def test_exercise_downloads_hold_no_solution_code(site):
    """The site's exercises are the notebooks it links for download: no solution line in them."""
    import nbformat

    from minirec.notebooks import split_lesson

    links = {Path(urlparse(t).path).stem: t for t in site["files"]
             if "/_downloads/" in t and t.endswith(".ipynb")}
    lessons = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
    with_exercises = [p for p in lessons if (ROOT / "exercises" / f"{p.stem}.ipynb").is_file()]
    assert with_exercises, "no exercise notebook to check"
    missing = [p.stem for p in with_exercises if p.stem not in links]
    assert not missing, f"exercise notebooks not offered for download: {missing}"
    for lesson in with_exercises:
        solution, exercise = split_lesson(lesson.read_text(encoding="utf-8"), path=lesson.name)
        got = nbformat.reads(_download(links[lesson.stem]), as_version=4)
        text = "\n".join(c.source for c in got.cells)
        exercise_lines = {line.strip() for c in exercise.cells for line in c.source.splitlines()}
        for cell in solution.cells:
            if "exercise" not in cell.metadata.get("tags", []):
                continue
            for line in cell.source.splitlines():
                key = line.strip()
                if len(key) > 3 and key not in exercise_lines:
                    assert key not in text, f"{lesson.stem}: solution line in the download: {key!r}"
        dropped = [c.source for c in solution.cells if "solution-only" in c.metadata.get("tags", [])]
        for source in dropped:
            assert source not in text, f"{lesson.stem}: a solution-only cell is in the download"
        stubs = sum(c.source.count('raise NotImplementedError("Exercise') for c in got.cells)
        expected = sum(c.source.count('raise NotImplementedError("Exercise') for c in exercise.cells)
        assert stubs == expected > 0, f"{lesson.stem}: {stubs} exercise stubs, the lesson makes {expected}"
        assert all(not c.get("outputs") for c in got.cells if c.cell_type == "code"), (
            f"{lesson.stem}: the downloaded exercise notebook has outputs"
        )
