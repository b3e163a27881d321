"""The built book: no Sphinx warning, nothing loaded from the internet, no solutions
in the student edition. The pages themselves are checked in a browser by
``tests/test_browser.py``."""

import html.parser
import json
import re
import urllib.parse

import pytest
from conftest import EDITIONS, ROOT

# A sentence from the solution of exercise ch1-ex-relu in chapters/01_bptt.ipynb.
SOLUTION_SENTENCE = "Only the derivative of the nonlinearity changes."
# Link relations whose target the browser fetches while loading the page.
FETCHED_LINK_RELS = {
    "stylesheet",
    "preload",
    "prefetch",
    "modulepreload",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "manifest",
    "preconnect",
    "dns-prefetch",
}
# Elements and the attribute whose URL the browser fetches.
FETCHED_ATTRIBUTES = {
    "script": "src",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "video": "src",
    "audio": "src",
    "embed": "src",
    "object": "data",
    "track": "src",
    "input": "src",
}
_CSS_URL = re.compile(
    r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)|url\(\s*['"]?([^'")\s]+)"""
)


def _external(url):
    return urllib.parse.urlsplit(url.strip()).scheme in (
        "http",
        "https",
    ) or url.strip().startswith("//")


class _FetchedURLs(html.parser.HTMLParser):
    """Collects the URLs an HTML page makes the browser fetch, and its inline CSS."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fetched, self.stylesheets, self.inline_css = [], [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in FETCHED_ATTRIBUTES and attrs.get(FETCHED_ATTRIBUTES[tag]):
            self.fetched.append(
                (
                    f"<{tag} {FETCHED_ATTRIBUTES[tag]}>",
                    attrs[FETCHED_ATTRIBUTES[tag]],
                )
            )
        if tag == "link" and attrs.get("href"):
            rels = set((attrs.get("rel") or "").lower().split())
            if rels & FETCHED_LINK_RELS:
                self.fetched.append(
                    (f"<link rel={attrs.get('rel')}>", attrs["href"])
                )
            if "stylesheet" in rels:
                self.stylesheets.append(attrs["href"])
        if attrs.get("style"):
            self.inline_css.append(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.inline_css.append(data)


def _css_urls(text):
    return [a or b for a, b in _CSS_URL.findall(text)]


def _external_loads(html_dir):
    """``{page: [problem, ...]}`` for every URL to the internet that a built page loads."""
    problems = {}
    for page in sorted(html_dir.rglob("*.html")):
        if "_sources" in page.parts:
            continue
        name = page.relative_to(html_dir).as_posix()
        parser = _FetchedURLs()
        parser.feed(page.read_text(encoding="utf-8"))
        found = [
            f"{what} {url}" for what, url in parser.fetched if _external(url)
        ]
        found += [
            f"inline CSS url {url}"
            for css in parser.inline_css
            for url in _css_urls(css)
            if _external(url)
        ]
        # Stylesheets the page loads, and the stylesheets they @import, recursively.
        queue = [
            (page.parent / urllib.parse.urlsplit(href).path).resolve()
            for href in parser.stylesheets
            if not _external(href)
        ]
        seen = set()
        while queue:
            css_file = queue.pop()
            if css_file in seen or not css_file.is_file():
                continue
            seen.add(css_file)
            for url in _css_urls(
                css_file.read_text(encoding="utf-8", errors="replace")
            ):
                if _external(url):
                    found.append(
                        f"{css_file.relative_to(html_dir)}: url {url}"
                    )
                elif url.endswith(".css"):
                    queue.append(
                        (
                            css_file.parent / urllib.parse.urlsplit(url).path
                        ).resolve()
                    )
        if found:
            problems[name] = found
    return problems


def _format(problems):
    return "\n".join(
        f"{page}:\n  " + "\n  ".join(items) for page, items in problems.items()
    )


# --------------------------------------------------------------------------- the builds


@pytest.mark.parametrize("edition", EDITIONS)
def test_book_builds_with_no_warning(book_builds, edition):
    """`jupyter-book build -W -n --keep-going` (via booktools.build) succeeds: no warning at all."""
    build = book_builds(edition)
    assert build.returncode == 0, build.report()
    assert (build.html_dir / "index.html").is_file(), (
        f"no index.html in {build.html_dir}"
    )


# ------------------------------------------------------------------------------ offline


@pytest.mark.parametrize("book", EDITIONS, indirect=True)
def test_pages_load_nothing_from_the_internet(book):
    """No page loads a script, stylesheet, font or image from http(s)."""
    problems = _external_loads(book.html_dir)
    assert not problems, (
        "built pages load files from the internet (the book must work "
        "offline):\n" + _format(problems)
    )


@pytest.mark.parametrize("book", EDITIONS, indirect=True)
def test_pages_show_no_test_tool_text_and_no_doubled_numbers(book):
    """Test-tool markers are cell tags, never text a reader sees (``NBVAL_``);
    chapter titles are numbered once, by the book ("2. Vanishing ...", not
    "2. Chapter 2: Vanishing ...")."""
    problems = {}
    for page in sorted(book.html_dir.rglob("*.html")):
        if "_sources" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        found = [f"NBVAL_ x{text.count('NBVAL_')}"] if "NBVAL_" in text else []
        found += [
            f"title {title!r}"
            for title in re.findall(r"<h1>(.*?)<a", text, flags=re.DOTALL)
            if re.search(r"\bChapter \d+\s*:", title)
        ]
        if found:
            problems[page.relative_to(book.html_dir).as_posix()] = found
    assert not problems, _format(problems)


@pytest.mark.parametrize("book", EDITIONS, indirect=True)
def test_mathjax_is_served_from_the_book(book):
    """Every page with math loads MathJax from its own _static/ (sphinx-mathjax-offline)."""
    problems = {}
    pages_with_math = 0
    for page in sorted(book.html_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        if 'class="math' not in text:
            continue
        pages_with_math += 1
        sources = re.findall(
            r'<script[^>]*src="([^"]*mathjax[^"]*)"', text, flags=re.IGNORECASE
        )
        local = [
            src
            for src in sources
            if not _external(src)
            and (page.parent / urllib.parse.urlsplit(src).path)
            .resolve()
            .is_file()
        ]
        if not local or len(local) != len(sources):
            problems[page.relative_to(book.html_dir).as_posix()] = [
                f"MathJax scripts: {sources}"
            ]
    assert pages_with_math > 0, (
        "no page has math: is the math extension still configured?"
    )
    assert not problems, "MathJax must come from _static/mathjax:\n" + _format(
        problems
    )


def test_external_load_check_can_fail(tmp_path):
    """The offline check above finds a CDN script, stylesheet and CSS import."""
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "theme.css").write_text(
        "@import url('https://fonts.googleapis.com/css?family=Lato');\n",
        encoding="utf-8",
    )
    (tmp_path / "index.html").write_text(
        '<html><head><script src="https://cdn.jsdelivr.net/npm/x.js"></script>'
        '<link rel="stylesheet" href="_static/theme.css">'
        '<link rel="next" href="https://example.org/next.html"></head>'
        '<body><script src="_static/local.js"></script></body></html>',
        encoding="utf-8",
    )
    problems = _external_loads(tmp_path)
    assert list(problems) == ["index.html"]
    assert len(problems["index.html"]) == 2, (
        problems
    )  # the script and the @import, not rel=next


# -------------------------------------------------------------------- student edition


def _solution_sentence_is_in_the_chapter():
    notebook = json.loads(
        (ROOT / "chapters" / "01_bptt.ipynb").read_text(encoding="utf-8")
    )
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        for block in re.findall(
            r"```\{solution\}.*?```", text, flags=re.DOTALL
        ):
            if SOLUTION_SENTENCE in block:
                return True
    return False


def _text_files(html_dir):
    for path in sorted(html_dir.rglob("*")):
        if (
            path.is_file()
            and path.suffix in {".html", ".js", ".ipynb", ".md", ".txt"}
            and "_static" not in path.parts
        ):
            yield path


def test_student_edition_has_no_solutions(full_book, student_book):
    """A sentence of a solution is in the full edition and nowhere in the student edition
    (not on the page, not in the search index, not in the notebook the page offers to download)."""
    assert _solution_sentence_is_in_the_chapter(), (
        f"the test's sentence {SOLUTION_SENTENCE!r} is no longer in a {{solution}} of "
        "chapters/01_bptt.ipynb: pick a sentence from a current solution"
    )
    chapter = "chapters/01_bptt.html"
    assert SOLUTION_SENTENCE in (full_book.html_dir / chapter).read_text(
        encoding="utf-8"
    ), f"the full edition's {chapter} lacks the solution sentence"
    assert 'class="solution' in (full_book.html_dir / chapter).read_text(
        encoding="utf-8"
    )

    leaks = []
    for path in _text_files(student_book.html_dir):
        text = path.read_text(encoding="utf-8", errors="replace")
        name = path.relative_to(student_book.html_dir).as_posix()
        if SOLUTION_SENTENCE in text:
            leaks.append(f"{name}: contains {SOLUTION_SENTENCE!r}")
        if path.suffix == ".html" and re.search(
            r'class="[^"]*\b(solution|tag_solution)\b', text
        ):
            leaks.append(
                f"{name}: has a solution element or a cell tagged `solution`"
            )
        if path.suffix == ".ipynb" and re.search(
            r'"solution"|\{solution\}', text
        ):
            leaks.append(
                f"{name}: a downloadable notebook still has a solution"
            )
    assert not leaks, "the student edition shows solutions:\n  " + "\n  ".join(
        leaks
    )


# ------------------------------------------------------- the student edition's tools


def test_strip_solution_text_removes_only_solutions():
    from booktools.sphinx_ext import strip_solution_text

    text = (
        "```{exercise}\n:label: ex\nDerive it.\n```\n\n"
        "````{solution} ex\n:class: dropdown\nLike this:\n```python\nx = 1\n```\n````\n\n"
        ":::{solution} ex\nOr this.\n:::\nAfter.\n"
    )
    assert (
        strip_solution_text(text)
        == "```{exercise}\n:label: ex\nDerive it.\n```\n\n\nAfter.\n"
    )


def test_strip_solutions_from_notebook_drops_tagged_cells_and_blocks():
    from booktools.sphinx_ext import strip_solutions_from_notebook

    notebook = {
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": [
                    "Ex.\n",
                    "```{solution} ex\n",
                    "Answer.\n",
                    "```\n",
                ],
            },
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": "```{solution} ex\nOnly an answer.\n```\n",
            },
            {
                "cell_type": "code",
                "metadata": {"tags": ["solution"]},
                "source": "answer = 42",
                "outputs": [],
            },
            {
                "cell_type": "code",
                "metadata": {"tags": ["hide-input"]},
                "source": "check()",
                "outputs": [],
            },
        ]
    }
    stripped = strip_solutions_from_notebook(notebook)
    assert [cell["source"] for cell in stripped["cells"]] == [
        ["Ex.\n"],
        "check()",
    ]
    assert len(notebook["cells"]) == 4  # the input is not modified


def test_student_config_changes_only_what_makes_the_student_edition():
    import yaml

    from booktools.build import student_config

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    original = json.dumps(config, sort_keys=True)
    derived = student_config(config)
    assert json.dumps(config, sort_keys=True) == original  # not modified
    assert derived["sphinx"]["config"]["hide_solutions"] is True
    assert derived["title"].endswith("(student edition)")
    assert (
        derived["launch_buttons"]["colab_url"]
        == derived["launch_buttons"]["binderhub_url"]
        == ""
    )
    for key in set(config) - {"title", "sphinx", "launch_buttons"}:
        assert derived[key] == config[key], key
    with pytest.raises(
        TypeError, match="expected the parsed _config.yml as a dict"
    ):
        student_config("_config.yml")
