"""Code fits the page: ruff formats and lints every chapter and module.

The line length (79) is configured once, in ``pyproject.toml``; the browser
test measures that the rendered code column shows at least that many
characters. Readers see the chapters' cells and ``rnnbook``'s source.
"""

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize(
    "command", [["format", "--check", "--diff"], ["check"]], ids=str
)
def test_ruff_is_clean(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        f"`ruff {' '.join(command)} .` found problems "
        "(fix with `ruff format . && ruff check --fix .`):\n"
        + result.stdout[-6000:]
        + result.stderr[-2000:]
    )
