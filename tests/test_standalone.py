"""Each chapter runs when opened alone, as Colab opens it.

Colab's launch button opens one notebook in an empty folder, with the package
installed from the repository (not editable, not beside the notebook). Here the
package is installed the same way, into a temporary folder that shadows the
editable install, and each chapter is copied alone into an empty folder and
executed top to bottom. A chapter that reads a file by a relative path fails
here; result files are read through the package (``rnnbook.data``).
"""

import shutil
import subprocess
import sys

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """rnnbook installed non-editable into a temporary folder (offline)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "src", source / "src")
    shutil.copytree(
        ROOT / "chapters" / "data",
        source / "chapters" / "data",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    target = tmp_path_factory.mktemp("site-packages")
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
        "--no-build-isolation", "--no-index", "--target", str(target),
        str(source),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "rnnbook" / "data").is_dir()
    return target


def test_the_installed_package_ships_the_result_files(installed):
    shipped = {p.name for p in (installed / "rnnbook" / "data").glob("*.json")}
    committed = {p.name for p in (ROOT / "chapters" / "data").glob("*.json")}
    assert committed and shipped == committed


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_alone_in_an_empty_folder(
    chapter, installed, tmp_path, monkeypatch
):
    notebook = nbformat.read(chapter, as_version=4)
    # Last cell: the chapter really used the installed copy.
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import rnnbook, pathlib\n"
            f"assert pathlib.Path(rnnbook.__file__).is_relative_to("
            f"{str(installed)!r}), rnnbook.__file__"
        )
    )
    folder = tmp_path / "alone"
    folder.mkdir()
    shutil.copy(chapter, folder / chapter.name)
    monkeypatch.setenv("PYTHONPATH", str(installed))
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    left = {p.name for p in folder.iterdir()} - {chapter.name}
    assert not left, f"the chapter wrote files beside itself: {sorted(left)}"
