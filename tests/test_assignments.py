"""The course assignments: otter assign, otter run, the instructor's commands.

One build of every master notebook (``otter assign``, which also runs every
test against the solutions) and one ``grade`` of the three sample
submissions of each assignment (``otter run``, no Docker) serve all the
checks: full marks for the solutions, zero on every question for the
student notebook as released, and exactly one question's points lost for
the submission with one deliberately wrong function.
"""

import csv
import pathlib
import re
import zipfile

import nbformat
import pytest
import yaml

from booktools import assignments

ROOT = pathlib.Path(__file__).resolve().parents[1]
MASTERS = assignments.masters(ROOT)
NAMES = sorted(MASTERS)
# otter 7 calls DataFrame.drop(inplace=True), which pandas 3.1 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(build folder, {name: build record})``, built once."""
    out = tmp_path_factory.mktemp("assignments")
    records = assignments.build(ROOT, out)
    return out, {record["name"]: record for record in records}


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """The samples of every assignment, graded by the instructor command."""
    out, _ = built
    folder = tmp_path_factory.mktemp("submissions")
    written = assignments.samples(folder, out, ROOT)
    code = assignments.main(
        ["--root", str(ROOT), "--build-dir", str(out)]
        + ["grade", str(folder), "--jobs", "2"]
    )
    return written, folder / "scores.csv", code


def _tests_of(master):
    """``{question: [hidden flag of each test cell]}`` from a master."""
    nb = nbformat.read(master, as_version=4)
    out, question, in_tests = {}, None, False
    for cell in nb.cells:
        head = cell.source.strip().split("\n", 1)[0].strip().lower()
        if cell.cell_type == "raw" and head == "# begin question":
            question = yaml.safe_load(cell.source.split("\n", 1)[1])["name"]
            out[question] = []
        elif cell.cell_type == "raw" and head in (
            "# begin tests",
            "# end tests",
        ):
            in_tests = head == "# begin tests"
        elif in_tests and cell.cell_type == "code":
            config = re.search(
                r"BEGIN TEST CONFIG(.*?)\"\"\"", cell.source, re.DOTALL
            )
            out[question].append(
                bool(yaml.safe_load(config[1]).get("hidden", False))
            )
    return out


# ----------------------------------------------------------- the masters


def test_chapters_one_to_three_have_assignments():
    assert {"01_bptt", "02_vanishing_exploding", "03_gating"} <= set(NAMES)
    for name in NAMES:
        # an assignment follows the chapter of the same name
        assert (ROOT / "chapters" / f"{name}.ipynb").is_file(), name


@pytest.mark.parametrize("name", NAMES)
def test_master_has_questions_with_public_and_hidden_tests(name):
    points = assignments.questions(MASTERS[name])
    assert 4 <= len(points) <= 6, points
    assert all(p > 0 for p in points.values()), points
    tests = _tests_of(MASTERS[name])
    assert set(tests) == set(points)
    for question, hidden in tests.items():
        assert False in hidden, f"{question}: no public test"
        assert True in hidden, f"{question}: no hidden test"


def test_unknown_assignment_name_is_refused():
    with pytest.raises(ValueError, match="expected assignment names"):
        assignments.masters(ROOT, ["99_nothing"])
    assert assignments.main(["--root", str(ROOT), "build", "99_nothing"]) == 2


# -------------------------------------------------------------- the build


@pytest.mark.parametrize("name", NAMES)
def test_otter_assign_writes_student_notebook_and_autograder(built, name):
    _, records = built
    record = records[name]
    assert record["student"].is_file() and record["autograder"].is_file()
    with zipfile.ZipFile(record["zip"]) as zf:
        files = set(zf.namelist())
        environment = zf.read("environment.yml").decode()
    for question in assignments.questions(MASTERS[name]):
        assert f"tests/{question}.py" in files, question
    # the reference the hidden tests import travels with the autograder
    assert "files/rnnbook/numpy_rnn.py" in files
    assert "files/rnnbook/gated.py" in files
    assert re.search(r"torch==\S+", environment), environment
    student = nbformat.read(record["student"], as_version=4)
    assert student.metadata["otter"]["assignment_name"] == name
    # its public tests run where students work, without the book's package
    assert "rnnbook" not in record["student"].read_text()


@pytest.mark.parametrize("name", NAMES)
def test_student_versions_hold_no_solution_and_no_hidden_test(built, name):
    _, records = built
    student_text = records[name]["student"].read_text()
    page_text = (ROOT / "book" / "assignments" / f"{name}.md").read_text()
    master = nbformat.read(MASTERS[name], as_version=4)
    # a line that also appears outside the solutions (in a prompt or a
    # public test) may appear in the student version
    lines_by_question = assignments.solution_lines(MASTERS[name])
    outside = "\n".join(
        cell.source
        for cell in master.cells
        if "# BEGIN SOLUTION" not in cell.source
    )
    for question, lines in lines_by_question.items():
        distinctive = [
            line for line in lines if len(line) >= 12 and line not in outside
        ]
        assert distinctive, f"{question}: no solution line to look for"
        for line in distinctive:
            assert line not in student_text, f"{question}: {line!r}"
            assert line not in page_text, f"{question}: {line!r}"
    hidden_names = re.findall(
        r"(?m)^hidden: true\n(?s:.*?)def (test_\w+)",
        "\n".join(cell.source for cell in master.cells),
    )
    assert hidden_names
    for test_name in hidden_names:
        assert test_name not in student_text, test_name
        assert test_name not in page_text, test_name


def test_book_pages_render_the_current_student_notebooks(built):
    out, _ = built
    stale = assignments.pages(ROOT, out, check=True)
    assert stale == [], (
        f"stale pages {stale}: run `python -m booktools.assignments build` "
        "and `python -m booktools.assignments pages`"
    )


def test_toc_has_an_assignments_part_between_chapters_and_back_matter():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    captions = [part["caption"] for part in toc["parts"]]
    i = captions.index("Assignments")
    assert captions[i - 1] == "Chapters" and captions[i + 1] == "Back matter"
    files = [entry["file"] for entry in toc["parts"][i]["chapters"]]
    assert files[0] == "book/assignments/instructors"
    assert files[1:] == [f"book/assignments/{name}" for name in NAMES]
    # the master notebooks hold solutions: never a page of the book
    assert not any(file.count("/") > 2 for file in files)


# ------------------------------------------------------------ the grading


def _expected_row(name, kind, question):
    points = assignments.questions(MASTERS[name])
    earned = {
        q: (0 if kind == "empty" or q == question else p)
        for q, p in points.items()
    }
    return earned, sum(points.values())


def test_grade_writes_the_expected_csv(graded):
    written, csv_path, code = graded
    assert code == 0
    with open(csv_path, newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    assert set(rows) == {path.name for path in written}
    assert len(rows) == 3 * len(NAMES)
    for path, (name, question, kind) in written.items():
        row = rows[path.name]
        earned, possible = _expected_row(name, kind, question)
        assert row["assignment"] == name and row["error"] == ""
        assert float(row["possible"]) == possible, row
        assert float(row["score"]) == sum(earned.values()), row
        for q, points in earned.items():
            assert float(row[q]) == points, (path.name, q, row)
    for name in NAMES:
        assert (csv_path.parent / "feedback" / f"{name}-wrong.txt").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_each_assignment_full_zero_and_one_wrong(graded, name):
    written, csv_path, _ = graded
    with open(csv_path, newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    points = assignments.questions(MASTERS[name])
    full = rows[f"{name}-full.ipynb"]
    empty = rows[f"{name}-empty.ipynb"]
    wrong = rows[f"{name}-wrong.ipynb"]
    question = assignments.WRONG[name][0]
    assert question in points
    assert all(float(full[q]) == p for q, p in points.items())
    assert all(float(empty[q]) == 0 for q in points)
    lost = {q for q in points if float(wrong[q]) != points[q]}
    assert lost == {question} and float(wrong[question]) == 0


def test_grade_reports_what_it_cannot_grade(built, tmp_path):
    out, records = built
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "plain.ipynb")
    orphan = nbformat.read(records[NAMES[0]]["student"], as_version=4)
    orphan.metadata["otter"]["assignment_name"] = "99_not_built"
    nbformat.write(orphan, tmp_path / "orphan.ipynb")
    (tmp_path / "broken.ipynb").write_text("{ not json")
    csv_path, rows = assignments.grade(tmp_path, out, root=ROOT)
    by_name = {row["submission"]: row for row in rows}
    assert "no otter metadata" in by_name["plain.ipynb"]["error"]
    assert "no otter metadata" in by_name["broken.ipynb"]["error"]
    assert "99_not_built" in by_name["orphan.ipynb"]["error"]
    assert csv_path.is_file()
    with pytest.raises(ValueError, match="folder of submitted notebooks"):
        assignments.grade(tmp_path / "missing", out, root=ROOT)
    with pytest.raises(ValueError, match="jobs"):
        assignments.grade(tmp_path, out, root=ROOT, jobs=0)
