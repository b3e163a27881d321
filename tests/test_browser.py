"""The book as its readers see it: every page of both editions opened in headless Chromium.

Each edition's HTML is served on 127.0.0.1 and every page in ``_toc.yml`` is opened
with any request that would leave the machine aborted. A page fails on: a console
error or uncaught exception; a request to the internet; a local file that does not
load; an image that does not load or has no alt text; a formula that MathJax did not
typeset (or typeset as an error); a notebook error or widget error shown on the page;
a solution shown before its button is clicked, or not shown after (full edition); any
solution at all (student edition); a serious or critical axe-core violation; a
code line wider than the code column (a clipped line; the column's width in
characters is measured and recorded); a formula running past the text
column; test-tool text (``NBVAL_``) on the page; a
chapter number doubled in a title ("2. Chapter 2: ..."); a page without a favicon,
or any file the server answers with a 404 (the browser's own ``/favicon.ico``
request included, which page events do not show). The
search page must find "Jacobian". A full-page screenshot of every page is saved in
``_build/screenshots/<edition>/`` for review, and the figures of the run in
``_build/screenshots/summary.json``.

Needs Debian's ``chromium`` (never ``playwright install``): without it the tests
skip, except under CI (``CI=true``), where they fail.
"""

import functools
import http.server
import json
import os
import pathlib
import re
import threading
import time
import urllib.parse

import pytest
from conftest import EDITIONS, ROOT, toc_pages
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "_build" / "screenshots"
AXE_FAILING_IMPACTS = ("serious", "critical")
SEARCH_TERM = "Jacobian"
TIMEOUT_MS = 15_000


# ---------------------------------------------------------------- browser and server


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by playwright; skip (or fail under CI) without it."""
    if not CHROMIUM.exists():
        message = (
            f"{CHROMIUM} not found: the browser test needs Debian's Chromium, "
            "install it with `sudo apt-get install -y chromium`"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(
                message + " (CI=true: the browser test must run in CI)",
                pytrace=False,
            )
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the book quietly, remembering every path it could not serve.

    Chromium's request for ``/favicon.ico`` never reaches playwright's page
    events, so missing files are caught here, on the server's side.
    """

    not_found = []  # (time, path) of every 404, shared by the session's servers

    def log_message(self, format, *args):  # keep the test output readable
        pass

    def send_error(self, code, message=None, explain=None):
        if code == 404:
            _QuietHandler.not_found.append((time.perf_counter(), self.path))
        super().send_error(code, message, explain)


@pytest.fixture(scope="session")
def served():
    """A function html_dir -> base URL, serving each folder once on 127.0.0.1 (random port)."""
    servers = {}

    def serve(html_dir):
        if html_dir not in servers:
            handler = functools.partial(_QuietHandler, directory=str(html_dir))
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers[html_dir] = server
        return f"http://127.0.0.1:{servers[html_dir].server_address[1]}/"

    yield serve
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def summary():
    """Figures of the run, written to _build/screenshots/summary.json at the end."""
    figures = {"pages": {}}
    start = time.perf_counter()
    yield figures
    figures["seconds_browser_tests"] = round(time.perf_counter() - start, 1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "summary.json").write_text(
        json.dumps(figures, indent=1) + "\n", encoding="utf-8"
    )


class PageWatch:
    """A page whose every request, console error and uncaught error is recorded."""

    def __init__(self, browser, base_url):
        self.base_url = base_url
        self.problems = []
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 900}
        )
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("console", self._console)
        self.page.on(
            "pageerror",
            lambda error: self.problems.append(f"uncaught error: {error}"),
        )
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._request_failed)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base_url):
            route.continue_()
        else:
            self.problems.append(
                f"request to leave the machine (aborted): {url}"
            )
            route.abort()

    def _console(self, message):
        if message.type == "error":
            self.problems.append(
                f"console error: {message.text} ({message.location.get('url', '')})"
            )

    def _response(self, response):
        if response.url.startswith(self.base_url) and response.status >= 400:
            referer = response.request.headers.get("referer", "?")
            self.problems.append(
                f"HTTP {response.status}: {response.url} (requested by {referer})"
            )

    def _request_failed(self, request):
        if request.url.startswith(self.base_url):
            self.problems.append(
                f"failed to load {request.url}: {request.failure}"
            )

    def close(self):
        self.context.close()


@pytest.fixture
def watch(browser, served, book):
    """A fresh browser context on the edition's server; closed after the test."""
    watched = PageWatch(browser, served(book.html_dir))
    yield watched
    watched.close()


# ------------------------------------------------------------------------- the checks

MATH_JS = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
    }
    const maths = [...document.querySelectorAll('.math')];
    const raw = maths.filter(el => !el.querySelector('mjx-container'))
                     .map(el => el.textContent.trim().slice(0, 80));
    const errors = [...document.querySelectorAll('mjx-merror')]
                     .map(el => (el.getAttribute('data-mjx-error') || el.textContent).slice(0, 80));
    // TeX left in the text outside code and outside MathJax's own output.
    const walker = document.createTreeWalker(document.querySelector('main') || document.body,
                                             NodeFilter.SHOW_TEXT);
    const leftover = [];
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.parentElement.closest('pre, code, script, style, mjx-container, .highlight')) continue;
        if (/\\\\\\(|\\\\\\[|\\$\\$/.test(node.textContent)) leftover.push(node.textContent.trim().slice(0, 80));
    }
    return {count: maths.length, raw, errors, leftover};
}"""

IMAGES_JS = """async () => {
    const images = [...document.images];
    for (const img of images) { img.loading = 'eager'; }
    await Promise.all(images.map(img => img.complete ? null :
        new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
    return images.map(img => ({src: img.getAttribute('src'), alt: img.getAttribute('alt'),
                               width: img.naturalWidth,
                               decorative: img.getAttribute('role') === 'presentation'
                                           || img.getAttribute('aria-hidden') === 'true'}));
}"""

ERRORS_SHOWN_JS = """() => {
    const shown = [];
    for (const el of document.querySelectorAll('.output.traceback, .output.error, .cell_output .traceback'))
        shown.push('notebook error output: ' + el.textContent.trim().slice(0, 120));
    for (const el of document.querySelectorAll('.cell_output, .output'))
        if (/Error displaying widget|Failed to load model class|widget model not found/i.test(el.textContent))
            shown.push('widget error: ' + el.textContent.trim().slice(0, 120));
    return shown;
}"""


def _math_problems(page, figures):
    math = page.evaluate(MATH_JS)
    figures["formulas"] = math["count"]
    figures["formulas_typeset"] = math["count"] - len(math["raw"])
    problems = [f"formula not typeset: {text!r}" for text in math["raw"]]
    problems += [f"MathJax error: {text!r}" for text in math["errors"]]
    problems += [f"raw TeX in the text: {text!r}" for text in math["leftover"]]
    return problems


def _image_problems(page, figures):
    images = page.evaluate(IMAGES_JS)
    figures["images"] = len(images)
    problems = []
    for image in images:
        if image["width"] == 0:
            problems.append(f"image did not load: {image['src']}")
        alt = (image["alt"] or "").strip()
        if not image["decorative"] and (
            not alt or alt.lower().endswith((".png", ".svg", ".jpg"))
        ):
            problems.append(
                f"image without alt text: {image['src']} (alt={image['alt']!r})"
            )
    return problems


SETTLE_ANIMATIONS_JS = """() => Promise.allSettled(
    document.getAnimations()
        .filter((a) => a.effect && a.effect.getComputedTiming().endTime !== Infinity)
        .map((a) => a.finished))"""


def _solution_problems(page, edition, figures):
    solutions = page.locator(".solution")
    figures["solutions"] = solutions.count()
    if edition == "student":
        problems = (
            [f"{solutions.count()} solution(s) in the student edition"]
            if solutions.count()
            else []
        )
        tagged = page.locator(".tag_solution").count()
        return problems + (
            [f"{tagged} cell(s) tagged `solution` in the student edition"]
            if tagged
            else []
        )
    problems = []
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        title = (
            solution.locator(".admonition-title")
            .first.inner_text()
            .strip()
            .splitlines()[0]
        )
        body = solution.locator(".admonition-title ~ *").first
        if body.is_visible():
            problems.append(
                f"solution shown before its button is clicked: {title!r}"
            )
            continue
        solution.locator("button.toggle-button").first.click()
        try:
            body.wait_for(state="visible", timeout=3_000)
        except PlaywrightTimeout:
            problems.append(
                f"solution not shown after its button is clicked: {title!r}"
            )
    # sphinx-togglebutton fades a body in over 0.3 s; axe, run mid-fade, would
    # measure the contrast of half-transparent text. Wait for finite animations.
    page.evaluate(SETTLE_ANIMATIONS_JS)
    return problems


def _axe_problems(page):
    from axe_playwright_python.sync_playwright import Axe

    # preload=False: axe would re-fetch the stylesheets itself and resolves the theme's
    # `@import "../basic.css"` against the page instead of the stylesheet, a 404 that
    # no reader's browser makes. (Preloading only serves css-orientation-lock.)
    options = {"resultTypes": ["violations"], "preload": False}
    violations = Axe().run(page, options=options).response["violations"]
    problems = []
    for violation in violations:
        if violation["impact"] not in AXE_FAILING_IMPACTS:
            continue
        where = "; ".join(
            " ".join(node["target"])
            if isinstance(node["target"], list)
            else str(node["target"])
            for node in violation["nodes"][:5]
        )
        more = (
            f" (+{len(violation['nodes']) - 5} more)"
            if len(violation["nodes"]) > 5
            else ""
        )
        problems.append(
            f"axe {violation['impact']} {violation['id']}: {violation['help']} "
            f"[{len(violation['nodes'])} element(s): {where}{more}]"
        )
    return problems


CODE_WIDTH_JS = """() => {
    const groups = {
        'code cell': '.cell_input pre',
        'source listing': '.cell_output .output.text_html pre',
        'output': '.cell_output .output.stream pre, .cell_output .output.text_plain pre',
    };
    const pres = [...document.querySelectorAll(Object.values(groups).join(', '))];
    if (!pres.length) return {columns: null, clipped: []};
    const probe = document.createElement('span');
    probe.textContent = 'x'.repeat(100);
    pres[0].appendChild(probe);
    const charWidth = probe.getBoundingClientRect().width / 100;
    probe.remove();
    const columns = p => {
        const style = getComputedStyle(p);
        const inner = p.clientWidth - parseFloat(style.paddingLeft)
                      - parseFloat(style.paddingRight);
        return Math.floor(inner / charWidth + 0.01);
    };
    const clipped = [];
    for (const [kind, selector] of Object.entries(groups)) {
        for (const p of document.querySelectorAll(selector)) {
            if (p.scrollWidth <= p.clientWidth + 1) continue;
            const longest = p.textContent.split('\\n')
                .reduce((a, b) => b.length > a.length ? b : a, '');
            clipped.push(`${kind}: ${longest.length} characters: `
                         + longest.trim().slice(0, 70));
        }
    }
    return {columns: Math.min(...pres.map(columns)), clipped};
}"""

PAGE_TEXT_JS = """() => {
    const titles = [...document.querySelectorAll(
        'main h1, nav.bd-links a, .bd-sidebar-primary a')].map(
        el => el.textContent.trim());
    const icons = [...document.querySelectorAll('link[rel~="icon"]')].map(
        el => el.href);
    return {text: document.body.innerText, titles, icons};
}"""

CODE_COLUMNS = 79
"""The code column must show at least this many characters: ruff's line length."""


FORMULA_WIDTH_JS = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
    }
    const main = document.querySelector('main article')
                 || document.querySelector('main');
    if (!main) return [];
    const right = main.getBoundingClientRect().right;
    const wide = [];
    for (const m of main.querySelectorAll('mjx-container')) {
        if (m.closest('table')) continue;  // wide tables scroll as a whole
        const box = m.getBoundingClientRect();
        if (box.width > 0 && box.right > right + 2)
            wide.push(m.textContent.slice(0, 60));
    }
    return wide;
}"""


def _formula_problems(page):
    """Formulas in the text that run past the column: MathJax does not
    break a long inline formula, so its end is cut off."""
    return [
        f"formula runs past the text column: {text!r}"
        for text in page.evaluate(FORMULA_WIDTH_JS)
    ]


def _code_problems(page, figures):
    width = page.evaluate(CODE_WIDTH_JS)
    figures["code_columns"] = width["columns"]
    problems = [f"clipped {line}" for line in width["clipped"]]
    if width["columns"] is not None and width["columns"] < CODE_COLUMNS:
        problems.append(
            f"the code column shows {width['columns']} characters, "
            f"fewer than the {CODE_COLUMNS} ruff allows"
        )
    return problems


def _text_problems(page, watch):
    found = page.evaluate(PAGE_TEXT_JS)
    problems = []
    if "NBVAL_" in found["text"]:
        at = found["text"].index("NBVAL_")
        problems.append(
            f"test-tool text on the page: {found['text'][at : at + 40]!r}"
        )
    for title in found["titles"]:
        if re.search(r"\bChapter \d+\s*:", title):
            problems.append(f"a chapter number doubled in a title: {title!r}")
    if not found["icons"]:
        problems.append(
            "no favicon declared: the browser asks for /favicon.ico"
        )
    for icon in found["icons"]:
        status = watch.context.request.get(icon).status
        if status != 200:
            problems.append(f"favicon {icon} answered HTTP {status}")
    return problems


def _not_found_since(start):
    return [
        f"HTTP 404 from the server: {path}"
        for when, path in _QuietHandler.not_found
        if when >= start
    ]


def _screenshot_name(page_name):
    return page_name.replace("/", "__") + ".png"


# -------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("book", EDITIONS, indirect=True)
@pytest.mark.parametrize("page_name", toc_pages())
def test_page_as_readers_see_it(book, watch, page_name, summary):
    """Every page in _toc.yml, in each edition: all of its problems in one assertion."""
    figures = {}
    start = time.perf_counter()
    page = watch.page
    url = urllib.parse.urljoin(watch.base_url, f"{page_name}.html")
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    problems = watch.problems  # filled by the listeners as the page runs
    problems += _math_problems(page, figures)
    problems += _image_problems(page, figures)
    problems += page.evaluate(ERRORS_SHOWN_JS)
    problems += _code_problems(page, figures)
    problems += _formula_problems(page)
    problems += _text_problems(page, watch)
    shot = SCREENSHOTS / book.edition / _screenshot_name(page_name)
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(shot), full_page=True
    )  # before any solution is opened
    problems += _solution_problems(page, book.edition, figures)
    problems += _axe_problems(page)
    problems += _not_found_since(start)  # the favicon request comes late
    figures["problems"] = len(problems)
    figures["seconds"] = round(time.perf_counter() - start, 2)
    summary["pages"][f"{book.edition}/{page_name}"] = figures
    assert not problems, (
        f"{len(problems)} problem(s) on {page_name}.html ({book.edition} edition, "
        f"screenshot {shot.relative_to(ROOT)}):\n  " + "\n  ".join(problems)
    )


@pytest.mark.parametrize("book", EDITIONS, indirect=True)
def test_search_finds_jacobian(book, watch, summary):
    """The search page, with the book's own index, finds the word the book is about."""
    page = watch.page
    page.goto(
        urllib.parse.urljoin(watch.base_url, f"search.html?q={SEARCH_TERM}")
    )
    results = page.locator("#search-results ul.search li")
    try:
        page.locator("#search-results .search-summary").wait_for(
            state="attached"
        )
    except PlaywrightTimeout:
        watch.problems.append("the search did not finish")
    found = results.count()
    summary["pages"][f"{book.edition}/search?q={SEARCH_TERM}"] = {
        "results": found
    }
    problems = watch.problems + (
        [] if found else [f"no result for {SEARCH_TERM!r}"]
    )
    assert not problems, (
        f"search.html?q={SEARCH_TERM} ({book.edition} edition):\n  "
        + "\n  ".join(problems)
    )
