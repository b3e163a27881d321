"""Shared fixtures: the book, built once per session, in both editions.

``tests/test_build.py`` checks the builds themselves (no warnings, nothing loaded
from the internet, no solutions in the student edition); ``tests/test_browser.py``
opens their pages in Chromium. Both editions are built with the README's command,
``python -m booktools.build [--student]``, in strict mode (``-W -n --keep-going``)
into a temporary folder, so a test run never touches ``_build/html``.
"""

import dataclasses
import pathlib
import re
import subprocess
import time

import pytest
import yaml

from booktools.build import build_command

ROOT = pathlib.Path(__file__).resolve().parents[1]
EDITIONS = ("full", "student")


@dataclasses.dataclass
class BookBuild:
    """One edition's strict build: the command, its outcome, and where the HTML is."""

    edition: str
    command: list
    returncode: int
    log: str
    seconds: float
    html_dir: pathlib.Path

    def report(self, tail_lines=60):
        """The warnings of the build log, then its last lines, for an assertion message."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log)  # strip colours
        lines = text.splitlines()
        warnings = [
            line for line in lines if "WARNING" in line or "ERROR" in line
        ]
        return (
            f"`{' '.join(self.command)}` exited with {self.returncode} "
            f"after {self.seconds:.1f} s.\n"
            f"Warnings and errors ({len(warnings)}):\n  "
            + "\n  ".join(warnings)
            + f"\nLast {tail_lines} lines of the log:\n"
            + "\n".join(lines[-tail_lines:])
        )


def toc_pages():
    """Every page in ``_toc.yml`` (the root, then each ``file`` in order), without suffix.

    Read at collection time, so a chapter added to the table of contents is tested
    without touching the tests.
    """
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    walk(toc.get("sections"))
    return [str(pathlib.PurePosixPath(page).with_suffix("")) for page in pages]


@pytest.fixture(scope="session")
def book_builds(tmp_path_factory):
    """Build each edition at most once per session; return a function edition -> BookBuild."""
    builds = {}

    def get(edition):
        if edition not in EDITIONS:
            raise ValueError(
                f"expected an edition in {EDITIONS}, got {edition!r}"
            )
        if edition not in builds:
            output = tmp_path_factory.mktemp(f"book-{edition}")
            command, html_dir = build_command(
                student=edition == "student",
                strict=True,
                path_output=output,
                root=ROOT,
            )
            start = time.perf_counter()
            result = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True
            )
            builds[edition] = BookBuild(
                edition,
                command,
                result.returncode,
                result.stdout + result.stderr,
                time.perf_counter() - start,
                html_dir,
            )
        return builds[edition]

    return get


def _built(book_builds, edition):
    build = book_builds(edition)
    if build.returncode != 0:
        pytest.fail(
            f"the {edition} edition did not build:\n{build.report()}",
            pytrace=False,
        )
    return build


@pytest.fixture(scope="session")
def full_book(book_builds):
    """The full edition, built with ``-W -n``; fails with the build log if it does not build."""
    return _built(book_builds, "full")


@pytest.fixture(scope="session")
def student_book(book_builds):
    """The student edition (solutions removed), built the same way, in its own folder."""
    return _built(book_builds, "student")


@pytest.fixture(scope="session")
def book(request, book_builds):
    """The edition named by ``request.param`` ("full" or "student"), for parametrized tests."""
    return _built(book_builds, request.param)


# ------------------------------------------------------------------ markers

_NOTEBOOK_TESTS = ("test_standalone.py", "test_assignments.py")
_BROWSER_TESTS = ("test_build.py", "test_browser.py")


def pytest_collection_modifyitems(config, items):
    """Mark what is slow, so ``pytest -m "not notebooks and not browser"`` runs
    the unit tests in seconds (plain ``pytest`` still runs everything)."""
    for item in items:
        name = item.path.name
        if item.path.suffix == ".ipynb" or name in _NOTEBOOK_TESTS:
            item.add_marker(pytest.mark.notebooks)
        elif name in _BROWSER_TESTS:
            item.add_marker(pytest.mark.browser)
