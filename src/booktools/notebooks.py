"""Execute chapter notebooks in place, the way strict nbval will check them.

Usage::

    python -m booktools.notebooks chapters/01_bptt.ipynb [more.ipynb ...]
    python -m booktools.notebooks --all

Each notebook runs top to bottom on a fresh kernel with its own folder as the
working directory; its outputs are written back into the file, and the seconds
it took are printed. Commit the result: the committed outputs are what
``pytest`` compares against.
"""

import argparse
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

from booktools import find_root


def execute_notebook(path, timeout=600, write=True):
    """Run one notebook on a fresh kernel; return the seconds it took.

    Args:
        path: the ``.ipynb`` file.
        timeout: seconds any one cell may take before the run is abandoned.
        write: write the executed notebook back to ``path``.

    Returns:
        Wall-clock seconds from kernel start to the last cell's end.
    """
    path = pathlib.Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(
            f"expected an existing .ipynb file, got {str(path)!r}"
        )
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(nb, path)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to execute")
    parser.add_argument(
        "--all", action="store_true", help="every chapters/*.ipynb"
    )
    parser.add_argument(
        "--root",
        type=pathlib.Path,
        default=None,
        help="the book's repository, for --all (default: the one around the current folder)",
    )
    args = parser.parse_args(argv)
    if args.all:
        paths = sorted((find_root(args.root) / "chapters").glob("*.ipynb"))
    else:
        paths = [pathlib.Path(p) for p in args.notebooks]
    if not paths:
        parser.error("name at least one notebook, or pass --all")
    for path in paths:
        seconds = execute_notebook(path)
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
