"""Course assignments with an autograder (otter-grader): build, sample, grade.

Usage::

    python -m booktools.assignments build [NAME ...]   # -> _build/assignments/
    python -m booktools.assignments samples DIR        # full/empty/wrong sets
    python -m booktools.assignments grade DIR          # -> DIR/scores.csv
    python -m booktools.assignments pages [--check]    # the book's task pages

Each assignment is one *master notebook*,
``book/assignments/NN_slug/NN_slug.ipynb``, in otter's format: an
``# ASSIGNMENT CONFIG`` cell, then per question ``# BEGIN QUESTION``
(name and points), the prompt, ``# BEGIN SOLUTION`` and ``# BEGIN TESTS``
blocks with public and hidden test cases. It follows the chapter of the
same name, ``chapters/NN_slug.ipynb``. The hidden tests compare the
student's functions with :mod:`rnnbook`, so the build ships a copy of
``src/rnnbook`` inside every autograder: grading then needs no network
and no installed ``rnnbook``, locally or on Gradescope.

``build`` runs ``otter assign`` on every master (which also runs every
test against the solutions and fails if one does not pass) and writes,
per assignment, ``NN_slug/student/NN_slug.ipynb`` (what students get)
and ``NN_slug/autograder/`` (the solutions notebook and the zip that
Gradescope takes). ``grade`` runs ``otter run`` (no Docker) on every
notebook in a folder, finds each one's assignment from the notebook's
metadata, and writes one CSV with a row per submission and a column per
question. ``samples`` writes three submissions per assignment to try
``grade`` on: the solutions (full marks), the student notebook as
released (zero) and the solutions with one function deliberately wrong.
``pages`` renders each student notebook's task text as a Markdown page of
the book, ``book/assignments/NN_slug.md`` (never a solution or a test).
"""

import argparse
import concurrent.futures
import contextlib
import csv
import importlib.metadata
import io
import multiprocessing
import pathlib
import re
import shutil
import sys
import time

import nbformat
import yaml

from booktools import find_root

MASTER_GLOB = "book/assignments/[0-9][0-9]_*/[0-9][0-9]_*.ipynb"

WRONG = {
    # assignment: (question, the wrong function's source): one realistic
    # bug each, which every test case of its question catches.
    "01_bptt": (
        "truncated_bptt",
        '''\
def truncated_bptt(W_xh, W_hh, b, xs, hs, dhs, k):
    """Off by one: each loss term walks back k + 1 transitions."""
    B, T, H = dhs.shape
    delta = np.zeros((B, T, H))
    dh0 = np.zeros((B, H))
    for t in range(1, T + 1):
        g = dhs[:, t - 1]
        for s in range(t, max(0, t - k - 1), -1):
            d = g * (1.0 - hs[:, s] ** 2)
            delta[:, s - 1] += d
            g = d @ W_hh
        if t <= k + 1:
            dh0 += g
    return {
        "W_xh": np.einsum("bti,btj->ij", delta, xs),
        "W_hh": np.einsum("bti,btj->ij", delta, hs[:, :-1]),
        "b": delta.sum(axis=(0, 1)),
        "h0": dh0,
    }
''',
    ),
    "02_vanishing_exploding": (
        "clip_grad_norm",
        '''\
def clip_grad_norm_(parameters, max_norm):
    """Clips each component by value instead of the whole vector by norm."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    for g in grads:
        g.clamp_(-max_norm, max_norm)
    return total
''',
    ),
    "03_gating": (
        "gru_cell",
        '''\
def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """Cho et al.'s reset before the matmul, not PyTorch's convention."""
    H = h.shape[1]
    x_r, x_z, x_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, _ = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + (r * h) @ W_hh[2 * H :].T + b_hh[2 * H :])
    return (1 - z) * n + z * h
''',
    ),
    "04_seq2seq_attention": (
        "score_gradient",
        '''\
def score_gradient(weights, keys, grad_context):
    """Treats the softmax as elementwise: drops the term -alpha_j g^T c."""
    return weights * torch.einsum("bsd,bd->bs", keys, grad_context)
''',
    ),
    "05_linear_recurrences": (
        "causal_conv",
        '''\
def causal_conv(u, K):
    """No zero padding: circular, so the end of u wraps onto its start."""
    L = u.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(u) * torch.fft.rfft(K), L)
''',
    ),
    "06_hippo_s4": (
        "s4d_layer",
        '''\
def s4d_layer(u, A, C, dt, D, W, b):
    """GLU on the wrong half: sigmoid(first half) gates the second."""
    T = u.shape[1]
    K = s4d_kernel(A, torch.ones_like(A), C, dt, T)
    n = 2 * T
    z = torch.fft.irfft(torch.fft.rfft(u.mT, n) * torch.fft.rfft(K, n), n)
    z = z[..., :T].mT + D * u
    p, q = (F.gelu(z) @ W.T + b).chunk(2, dim=-1)
    return torch.sigmoid(p) * q
''',
    ),
    "07_mamba": (
        "selective_scan",
        '''\
def selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False
):
    """The z gate applied before the D skip: silu(z) gates C . h only."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, L = u.shape
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(L):
        dt = delta[:, :, t, None]
        h = torch.exp(dt * A) * h + (dt * u[:, :, t, None]) * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if z is not None:
        y = y * F.silu(z)
    if D is not None:
        y = y + D[:, None] * u
    return y
''',
    ),
}
"""The deliberately wrong submission of each assignment (see ``samples``)."""

# --------------------------------------------------------------- the masters


def masters(root=None, names=None):
    """The master notebooks, sorted: ``{name: path}``.

    Args:
        root: the book's repository (default: :func:`find_root`).
        names: keep only these assignment names (``NN_slug``); all if None.

    Raises:
        ValueError: a name that is not an assignment.
    """
    root = find_root(root)
    found = {
        path.stem: path
        for path in sorted(root.glob(MASTER_GLOB))
        if path.stem == path.parent.name
    }
    if names:
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise ValueError(
                f"expected assignment names among {sorted(found)}, "
                f"got {unknown}"
            )
        found = {name: found[name] for name in names}
    return found


def _raw_blocks(nb, kind):
    """The sources of the raw cells that start with ``# BEGIN <kind>``."""
    pattern = re.compile(rf"#\s*begin\s+{kind}\b", re.IGNORECASE)
    return [
        cell.source
        for cell in nb.cells
        if cell.cell_type == "raw" and pattern.match(cell.source)
    ]


def questions(master):
    """``{question name: points}`` of a master notebook, in order."""
    nb = nbformat.read(master, as_version=4)
    out = {}
    for source in _raw_blocks(nb, "question"):
        config = yaml.safe_load(source.split("\n", 1)[1])
        out[config["name"]] = config["points"]
    return out


def solution_lines(master):
    """Every line inside the master's ``# BEGIN SOLUTION`` blocks, by question.

    Returns:
        ``{question name: [stripped source lines]}``: the lines a student
        version must not contain.
    """
    nb = nbformat.read(master, as_version=4)
    out, question, inside = {}, None, False
    for cell in nb.cells:
        head = cell.source.strip().split("\n", 1)[0].strip().lower()
        if cell.cell_type == "raw" and head == "# begin question":
            question = yaml.safe_load(cell.source.split("\n", 1)[1])["name"]
            out[question] = []
        elif cell.cell_type == "raw" and head == "# begin solution":
            inside = True
        elif cell.cell_type == "raw" and head == "# end solution":
            inside = False
        elif inside and cell.cell_type == "code":
            marked = False
            for line in cell.source.split("\n"):
                tag = line.strip().lower()
                if tag == "# begin solution":
                    marked = True
                elif tag == "# end solution":
                    marked = False
                elif marked or tag.endswith("# solution"):
                    out[question].append(line.strip())
    return out


def _runtime_requirements(root):
    """rnnbook's own dependencies, pinned as in ``requirements.txt``."""
    pins = {}
    for line in (root / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower()] = line.strip()
    out = []
    for spec in importlib.metadata.requires("rnnbook") or []:
        if "extra ==" in spec:
            continue  # the book's build tools, not needed to grade
        name = re.match(r"[A-Za-z0-9_.\-]+", spec)[0].lower()
        out.append(pins.get(name, spec))
    return out


def _stage(root, master, stage_dir):
    """Copy ``master`` and ``src/rnnbook`` into ``stage_dir``; return the copy.

    The copy's ``# ASSIGNMENT CONFIG`` gains what packaging needs: the
    ``rnnbook`` folder shipped in the autograder, rnnbook's pinned
    dependencies for Gradescope's image, and this Python's version.
    """
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True)
    shutil.copytree(
        root / "src" / "rnnbook",
        stage_dir / "rnnbook",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    nb = nbformat.read(master, as_version=4)
    for cell in nb.cells:
        first = cell.source.split("\n", 1)[0].strip().lower()
        if cell.cell_type == "raw" and first == "# assignment config":
            config = yaml.safe_load(cell.source.split("\n", 1)[1]) or {}
            config["autograder_files"] = [
                *config.get("autograder_files", []),
                "rnnbook",
            ]
            config["requirements"] = _runtime_requirements(root)
            config["python_version"] = "{}.{}".format(*sys.version_info)
            cell.source = "# ASSIGNMENT CONFIG\n" + yaml.safe_dump(
                config, sort_keys=False
            )
            break
    else:
        raise ValueError(f"{master}: no '# ASSIGNMENT CONFIG' raw cell")
    staged = stage_dir / master.name
    nbformat.write(nb, staged)
    return staged


# --------------------------------------------------------------- the commands


def autograder_zip(build_dir, name):
    """The Gradescope zip ``otter assign`` wrote for assignment ``name``.

    Raises:
        FileNotFoundError: the assignment has not been built into
            ``build_dir``.
    """
    zips = sorted(
        (pathlib.Path(build_dir) / name / "autograder").glob(
            f"{name}-autograder_*.zip"
        )
    )
    if not zips:
        raise FileNotFoundError(
            f"no autograder for {name!r} in {str(build_dir)!r}; run "
            "`python -m booktools.assignments build` first"
        )
    return zips[-1]


def build(root=None, out=None, names=None, run_tests=True):
    """Run ``otter assign`` on every master notebook; return one dict each.

    Args:
        root: the book's repository (default: :func:`find_root`).
        out: the output folder (default: ``ROOT/_build/assignments``).
        names: build only these assignments (``NN_slug``); all if None.
        run_tests: check every test against the solutions (otter's default).

    Returns:
        A list of ``{"name", "student", "autograder", "zip", "seconds"}``.
    """
    from otter.assign import main as otter_assign

    root = find_root(root)
    out = pathlib.Path(out) if out else root / "_build" / "assignments"
    built = []
    for name, master in masters(root, names).items():
        start = time.perf_counter()
        staged = _stage(root, master, out / ".stage" / name)
        otter_assign(
            str(staged),
            str((out / name).resolve()),
            no_pdfs=True,
            no_run_tests=not run_tests,
        )
        student = out / name / "student" / master.name
        if not student.is_file():
            raise RuntimeError(f"otter assign wrote no {student}")
        built.append(
            {
                "name": name,
                "student": student,
                "autograder": out / name / "autograder" / master.name,
                "zip": autograder_zip(out, name),
                "seconds": time.perf_counter() - start,
            }
        )
    shutil.rmtree(out / ".stage", ignore_errors=True)
    return built


def _replace_function(nb, function, source):
    """Put ``source`` in place of the code cell that defines ``function``."""
    pattern = re.compile(rf"^def {re.escape(function)}\(", re.MULTILINE)
    for cell in nb.cells:
        if cell.cell_type == "code" and pattern.search(cell.source):
            cell.source = source.rstrip("\n")
            return nb
    raise ValueError(f"no cell defines {function}()")


def samples(out_dir, build_dir=None, root=None):
    """Write three submissions per built assignment into ``out_dir``.

    ``NN_slug-full.ipynb`` (the solutions), ``NN_slug-empty.ipynb`` (the
    student notebook as released) and ``NN_slug-wrong.ipynb`` (the
    solutions with the function of :data:`WRONG` replaced by a buggy one).

    Returns:
        ``{path: (assignment, the question that must lose its points or
        None, "full" | "empty" | "wrong")}``.
    """
    root = find_root(root)
    build_dir = (
        pathlib.Path(build_dir) if build_dir else root / "_build/assignments"
    )
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, master in masters(root).items():
        autograder_zip(build_dir, name)  # raises if not built
        solved = build_dir / name / "autograder" / master.name
        student = build_dir / name / "student" / master.name
        shutil.copy(solved, out_dir / f"{name}-full.ipynb")
        shutil.copy(student, out_dir / f"{name}-empty.ipynb")
        written[out_dir / f"{name}-full.ipynb"] = (name, None, "full")
        written[out_dir / f"{name}-empty.ipynb"] = (name, None, "empty")
        if name in WRONG:
            question, source = WRONG[name]
            function = re.match(r"def (\w+)\(", source)[1]
            nb = nbformat.read(solved, as_version=4)
            _replace_function(nb, function, source)
            nbformat.write(nb, out_dir / f"{name}-wrong.ipynb")
            written[out_dir / f"{name}-wrong.ipynb"] = (
                name,
                question,
                "wrong",
            )
    return written


def _assignment_of(path):
    """The assignment name otter wrote into a notebook's metadata, or None."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # not a notebook at all: reported in the CSV
        return None
    return nb.metadata.get("otter", {}).get("assignment_name")


def _fmt(points):
    return f"{points:g}"


def _run_otter(path, zip_path):
    """``otter run`` on one notebook; return plain (picklable) data.

    Returns:
        ``{"total", "possible", "scores": {question: points}, "error",
        "log"}``; ``error`` is None when grading went through.
    """
    from otter.run import main as otter_run

    log = io.StringIO()
    out = {"total": 0, "possible": 0, "scores": {}, "error": None}
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            results = otter_run(
                str(path),
                autograder=str(zip_path),
                output_dir=None,
                no_logo=True,
            )
    except Exception as err:  # a broken submission must not stop the rest
        out["error"] = f"{type(err).__name__}: {err}"
    else:
        log.write("\n\n" + results.summary() + "\n")
        if results.catastrophic_error:
            out["error"] = str(results.catastrophic_error)
        out["total"], out["possible"] = results.total, results.possible
        out["scores"] = {q: results.get_score(q) for q in results.test_files}
    out["log"] = log.getvalue()
    return out


def grade(
    submissions, build_dir=None, out=None, root=None, feedback=True, jobs=1
):
    """Grade every notebook in ``submissions`` with ``otter run``; write a CSV.

    Each notebook is graded with the autograder of the assignment named in
    its metadata (``metadata.otter.assignment_name``, which ``otter
    assign`` writes into the student notebook). Otter's report for each
    submission, with every failing test's message (hidden tests
    included: it is for the instructor), goes to
    ``SUBMISSIONS/feedback/<name>.txt``.

    Args:
        submissions: a folder of submitted notebooks.
        build_dir: where ``build`` wrote (default ``ROOT/_build/assignments``).
        out: the CSV (default ``SUBMISSIONS/scores.csv``).
        feedback: write otter's per-submission report.
        jobs: notebooks graded at once (each in its own process and kernel).

    Returns:
        ``(csv path, rows)``, each row a dict with the columns
        ``submission, assignment, score, possible, error`` and one per
        question (points earned).
    """
    submissions = pathlib.Path(submissions)
    if not submissions.is_dir():
        raise ValueError(
            "expected a folder of submitted notebooks, "
            f"got {str(submissions)!r}"
        )
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"expected jobs to be a positive int, got {jobs!r}")
    root = find_root(root)
    build_dir = (
        pathlib.Path(build_dir) if build_dir else root / "_build/assignments"
    )
    out = pathlib.Path(out) if out else submissions / "scores.csv"
    rows, columns, tasks = [], [], {}
    for path in sorted(submissions.glob("*.ipynb")):
        name = _assignment_of(path)
        row = {"submission": path.name, "assignment": name or ""}
        rows.append(row)
        if name is None:
            row["error"] = (
                "not a notebook from an assignment (no otter metadata)"
            )
            continue
        try:
            tasks[path] = (row, autograder_zip(build_dir, name))
        except FileNotFoundError as err:
            row["error"] = str(err)
            continue
        found = masters(root)  # the master's order, if it is in this book
        for question in questions(found[name]) if name in found else []:
            if question not in columns:
                columns.append(question)

    if jobs == 1:
        graded = (
            (path, _run_otter(path, z)) for path, (_, z) in tasks.items()
        )
    else:
        pool = concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("spawn")
        )
        futures = {
            path: pool.submit(_run_otter, path, z)
            for path, (_, z) in tasks.items()
        }
        graded = ((path, future.result()) for path, future in futures.items())
    try:
        for path, result in graded:
            row = tasks[path][0]
            if result["error"]:
                row["error"] = result["error"]
            if result["possible"]:
                row["score"] = _fmt(result["total"])
                row["possible"] = _fmt(result["possible"])
                for question, points in result["scores"].items():
                    row[question] = _fmt(points)
                    if question not in columns:
                        columns.append(question)
            if feedback:
                (submissions / "feedback").mkdir(exist_ok=True)
                (submissions / "feedback" / f"{path.stem}.txt").write_text(
                    result["log"]
                )
    finally:
        if jobs > 1:
            pool.shutdown()

    header = ["submission", "assignment", "score", "possible", "error"]
    header += columns
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    return out, rows


# ------------------------------------------------------------------ the pages

_OTTER_CODE = re.compile(r"^(# Initialize Otter|grader\.check)")
_CHECK_ALL_TEXT = "To double-check your work, the cell below will rerun"


def render_page(student_notebook, name):
    """The book's page for one assignment: its student notebook's task text.

    Markdown cells are kept as they are, code cells become ``python``
    blocks; otter's own cells (initialization, ``grader.check``) are left
    out. A student notebook holds no solutions and no hidden tests, so
    neither can reach the page.
    """
    nb = nbformat.read(student_notebook, as_version=4)
    parts = []
    for cell in nb.cells:
        source = cell.source.strip("\n")
        if cell.cell_type == "code" and not _OTTER_CODE.match(source):
            parts.append(f"```python\n{source}\n```")
        elif cell.cell_type == "markdown" and _CHECK_ALL_TEXT not in source:
            parts.append(source)
    title, _, rest = parts[0].partition("\n")
    if not title.startswith("# "):
        raise ValueError(f"{student_notebook}: expected an H1 title first")
    note = (
        ":::{note}\n"
        f"Chapter: {{doc}}`/chapters/{name}`. This page is the task as "
        "students receive it, without the grader's cells. Instructors make "
        "the notebook, its autograder and the solutions with one command: "
        "see {doc}`instructors`.\n:::"
    )
    header = (
        f"<!-- Generated from book/assignments/{name}/{name}.ipynb by "
        "`python -m booktools.assignments pages`; do not edit. -->"
    )
    body = "\n\n".join([title, note, rest.strip("\n"), *parts[1:]])
    return f"{header}\n\n{body.strip()}\n"


def pages(root=None, build_dir=None, check=False):
    """Write (or, with ``check``, compare) ``book/assignments/NN_slug.md``.

    Needs a build (the pages render the student notebooks).

    Returns:
        The names of the pages that differ from what is written (with
        ``check``) or that were rewritten.
    """
    root = find_root(root)
    build_dir = (
        pathlib.Path(build_dir) if build_dir else root / "_build/assignments"
    )
    changed = []
    for name, master in masters(root).items():
        student = build_dir / name / "student" / master.name
        if not student.is_file():
            raise FileNotFoundError(
                f"no {student}; run `python -m booktools.assignments build`"
            )
        text = render_page(student, name)
        page = root / "book" / "assignments" / f"{name}.md"
        if not page.is_file() or page.read_text() != text:
            changed.append(name)
            if not check:
                page.write_text(text)
    return changed


# -------------------------------------------------------------------- the CLI


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m booktools.assignments",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--root", type=pathlib.Path, help="the book's repository"
    )
    parser.add_argument(
        "--build-dir",
        type=pathlib.Path,
        help="where the assignments are built (default _build/assignments)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="otter assign every master")
    p_build.add_argument("names", nargs="*", help="NN_slug (default: all)")
    p_samples = sub.add_parser("samples", help="full/empty/wrong submissions")
    p_samples.add_argument("dir", type=pathlib.Path)
    p_grade = sub.add_parser("grade", help="otter run a folder -> CSV")
    p_grade.add_argument("dir", type=pathlib.Path)
    p_grade.add_argument(
        "--out", type=pathlib.Path, help="the CSV (default DIR/scores.csv)"
    )
    p_grade.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="notebooks graded at once (default 1)",
    )
    p_pages = sub.add_parser("pages", help="write the book's task pages")
    p_pages.add_argument(
        "--check", action="store_true", help="only report stale pages"
    )
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args):
    start = time.perf_counter()
    if args.command == "build":
        out = args.build_dir
        for item in build(args.root, out, args.names or None):
            print(
                f"{item['name']}: {item['seconds']:.0f} s\n"
                f"  student     {item['student']}\n"
                f"  gradescope  {item['zip']}",
                flush=True,
            )
    elif args.command == "samples":
        for path, (_, _, kind) in samples(
            args.dir, args.build_dir, args.root
        ).items():
            print(f"{kind:5s}  {path}")
    elif args.command == "grade":
        out, rows = grade(
            args.dir, args.build_dir, args.out, args.root, jobs=args.jobs
        )
        for row in rows:
            result = row.get("error") or f"{row['score']} / {row['possible']}"
            print(f"{row['submission']}: {result}")
        print(f"scores: {out}")
        if any(row.get("error") for row in rows):
            print(f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
            return 1
    elif args.command == "pages":
        changed = pages(args.root, args.build_dir, check=args.check)
        if args.check and changed:
            print(f"stale pages (run `pages`): {changed}", file=sys.stderr)
            return 1
        print(f"rewritten: {changed}" if changed else "pages up to date")
    print(f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
