"""What every experiment script shares: where results go, written safely.

Results are JSON files in the repository's ``chapters/data/``, which the
package also ships as :mod:`rnnbook.data`, so a chapter opened alone (on
Colab, say) reads them with :func:`load_result` from the installed package.
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import tempfile
from importlib import resources

from rnnbook._checks import check_positive_int


def data_dir():
    """The folder of the experiments' result files (``chapters/data/``)."""
    return pathlib.Path(str(resources.files("rnnbook.data")))


def load_result(name):
    """The parsed result file ``name``, e.g. ``"chapter2_sweeps.json"``."""
    if not isinstance(name, str) or not name.endswith(".json") or "/" in name:
        raise ValueError(
            "expected a result file name such as "
            f"'pascanu_temporal_order.json', got {name!r}"
        )
    path = resources.files("rnnbook.data") / name
    if not path.is_file():
        available = sorted(
            p.name
            for p in resources.files("rnnbook.data").iterdir()
            if p.name.endswith(".json")
        )
        raise FileNotFoundError(
            f"no result file {name!r} in rnnbook.data; available: {available}"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def check_output_path(path):
    """Fail now, before hours of work, if ``path`` cannot take the result file.

    The folder is created if needed; a probe file is written and removed in it.
    Returns ``path`` as a :class:`pathlib.Path`.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(
            f"expected --out to be a file path, got the folder {str(path)!r}"
        )
    if path.suffix != ".json":
        raise ValueError(f"expected --out to end in .json, got {str(path)!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".probe-"):
            pass
    except OSError as err:
        raise ValueError(
            f"cannot write the result file {str(path)!r}: {err}"
        ) from err
    return path


def write_json_atomic(path, obj):
    """Write ``obj`` as JSON to ``path``; ``path`` is never half-written.

    The text goes to a temporary file in the same folder, is flushed to
    disk, and then replaces ``path`` in one :func:`os.replace`; if anything
    fails on the way, the old file (if any) is untouched and the temporary
    file is removed.
    """
    path = pathlib.Path(path)
    text = json.dumps(obj, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)  # mkstemp makes the file private (0600);
        os.umask(umask)  # give it the mode any new file would get
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def one_thread():
    """Give torch one thread: each worker process runs one job at a time."""
    import torch  # here: the file helpers above need no torch

    torch.set_num_threads(1)


def map_runs(run_one, jobs, workers=1):
    """Yield ``run_one(job)`` for every job, on ``workers`` processes.

    With one worker the jobs run here, in order, on one torch thread (the
    caller's thread count is restored afterwards, so a chapter calling an
    experiment keeps its own setting); with more, in a ``spawn`` pool of
    one-thread processes, in the order they finish (sort the results).
    ``run_one`` must be a module-level function, so the pool can pickle it.
    """
    workers = check_positive_int("workers", workers)  # now, not at next()
    return _map_runs(run_one, jobs, workers)


def run_all(run_one, jobs, workers=1, *, desc, progress=True, label=None):
    """Every ``run_one(job)``, by :func:`map_runs`, under a progress bar;
    returns the results as a list, in the order they finished.

    ``desc`` names the bar; ``label(result)``, if given, is shown beside it
    as each result arrives (the last run's model, seed and score, say).
    """
    from tqdm.auto import tqdm  # here: the file helpers above need none

    jobs = list(jobs)
    results = []
    bar = tqdm(total=len(jobs), disable=not progress, desc=desc)
    try:
        for result in map_runs(run_one, jobs, workers):
            results.append(result)
            if label is not None:
                bar.set_postfix_str(label(result))
            bar.update()
    finally:
        bar.close()
    return results


def _map_runs(run_one, jobs, workers):
    if workers == 1:
        import torch

        threads = torch.get_num_threads()
        one_thread()
        try:
            for job in jobs:
                yield run_one(job)
        finally:
            torch.set_num_threads(threads)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=one_thread) as pool:
            yield from pool.imap_unordered(run_one, jobs)


def experiment_parser(doc, *, tiny=True, workers=None, device=False):
    """The command line every experiment script shares.

    Args:
        doc: the script's module docstring; its first line is the
            description ``--help`` shows.
        tiny: offer ``--tiny`` (a seconds-long configuration, for tests).
        workers: the default of ``--workers`` (processes), or ``None`` for
            a script without it.
        device: offer ``--device`` (a torch device, default ``cpu``).

    Returns:
        An :class:`argparse.ArgumentParser` with ``--out`` and the options
        asked for; the script adds its own, then calls
        :func:`parse_experiment_args`.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if tiny:
        parser.add_argument(
            "--tiny",
            action="store_true",
            help="a seconds-long configuration, for tests",
        )
    if workers is not None:
        parser.add_argument(
            "--workers",
            type=int,
            default=workers,
            help=f"processes, one thread each (default {workers})",
        )
    if device:
        parser.add_argument(
            "--device", default="cpu", help="torch device (default cpu)"
        )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="result file (default: chapters/data/, see the docstring)",
    )
    return parser


def parse_experiment_args(parser, argv, default_name):
    """Parse ``argv`` and check the shared options before any work starts.

    ``--workers`` must be at least 1, ``--device`` must name a device torch
    can allocate on (it becomes a :class:`torch.device`), and ``--out``
    (default ``data_dir() / default_name``) must be a writable ``.json``
    path; each failure exits through ``parser.error`` with a message.

    Args:
        parser: from :func:`experiment_parser`.
        argv: the arguments, or ``None`` for ``sys.argv``.
        default_name: the result file's name in ``chapters/data/``, or a
            function of the parsed arguments returning it (e.g. a different
            name for ``--tiny``).

    Returns:
        The parsed arguments, with ``out`` a checked :class:`pathlib.Path`.
    """
    args = parser.parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        parser.error(f"expected --workers >= 1, got {args.workers}")
    if hasattr(args, "device"):
        import torch

        try:
            device = torch.device(args.device)
            torch.empty(0, device=device)
        except (RuntimeError, ValueError, AssertionError) as err:
            parser.error(f"cannot use --device {args.device!r}: {err}")
        args.device = device
    name = default_name(args) if callable(default_name) else default_name
    try:
        args.out = check_output_path(args.out or data_dir() / name)
    except ValueError as err:
        parser.error(str(err))
    return args
