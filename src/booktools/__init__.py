"""booktools: what builds and checks *Gradients Through Time* (not what readers study).

- ``build``       builds the book, full or student edition (``python -m booktools.build``)
- ``notebooks``   re-executes chapters in place (``python -m booktools.notebooks --all``)
- ``sphinx_ext``  the book's Sphinx fixes (duplicate scripts, ARIA roles, the student edition)
- ``assignments`` course assignments with otter-grader: build, sample submissions,
  grade (``python -m booktools.assignments build|samples|grade``)

It may import :mod:`rnnbook`; :mod:`rnnbook` never imports it. Paths come from
arguments or from :func:`find_root`, the repository that holds ``_config.yml``.
"""

import pathlib
from importlib import metadata

__version__ = metadata.version(
    "rnnbook"
)  # one distribution, one version (pyproject.toml)


def find_root(start=None):
    """The book's repository root: the nearest folder at or above ``start`` holding
    ``_config.yml`` and ``_toc.yml`` (``start`` defaults to the current directory).

    Raises:
        FileNotFoundError: no such folder above ``start``.
    """
    start = pathlib.Path.cwd() if start is None else pathlib.Path(start)
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "_config.yml").is_file() and (
            folder / "_toc.yml"
        ).is_file():
            return folder
    raise FileNotFoundError(
        f"no book repository (a folder with _config.yml and _toc.yml) at or above {str(start)!r};"
        " run from inside the repository or pass --root"
    )
