"""Every figure of every chapter has a caption and alt text.

A code cell whose output is an image is rendered by MyST-NB as a figure
with the cell-level options it reads under the ``mystnb`` metadata key:
``mystnb.figure.caption`` (with ``mystnb.figure.name``, the label that
cross-references use) and ``mystnb.image.alt``, the text a screen reader
says instead of the picture (the form chapters 1 and 5 use). MyST-NB 1.x
ignores an ``image`` key outside ``mystnb``, so alt text there is lost.
Re-executing a notebook with a tool that drops cell metadata removes them
silently; this test lists the cells that lost them.
"""

import json
import pathlib

import pytest

CHAPTERS = pathlib.Path(__file__).resolve().parents[1] / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def _has_image(cell):
    return any(
        any(kind in output.get("data", {}) for kind in IMAGE_TYPES)
        for output in cell.get("outputs", [])
    )


def _text(mapping, *keys):
    """``mapping[k1][k2]...`` if it is a non-blank string, else ``None``."""
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping if isinstance(mapping, str) and mapping.strip() else None


def figure_problems(notebook):
    """``(cell index, what is missing)`` for each image cell of a notebook
    that lacks a caption, a name or alt text in the form MyST-NB reads."""
    problems = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code" or not _has_image(cell):
            continue
        meta = cell.get("metadata", {})
        missing = [
            what
            for what, keys in (
                ("mystnb.figure.caption", ("mystnb", "figure", "caption")),
                ("mystnb.figure.name", ("mystnb", "figure", "name")),
                ("mystnb.image.alt", ("mystnb", "image", "alt")),
            )
            if _text(meta, *keys) is None
        ]
        if missing:
            problems.append((index, ", ".join(missing)))
    return problems


def test_the_check_finds_missing_captions_and_alt_text():
    image = {"output_type": "display_data", "data": {"image/png": "x"}}
    good = {
        "mystnb": {
            "figure": {"caption": "A curve.", "name": "fig-a"},
            "image": {"alt": "A line plot."},
        }
    }
    cells = [
        {"cell_type": "code", "metadata": good, "outputs": [image]},
        {"cell_type": "code", "metadata": {}, "outputs": [image]},
        {"cell_type": "code", "metadata": {}, "outputs": []},  # no image
        {"cell_type": "markdown", "metadata": {}, "source": "text"},
        {
            "cell_type": "code",
            "metadata": {
                "image": {"alt": "outside mystnb"},
                "mystnb": {"figure": {"caption": " ", "name": "b"}},
            },
            "outputs": [image],
        },
    ]
    assert figure_problems({"cells": cells}) == [
        (1, "mystnb.figure.caption, mystnb.figure.name, mystnb.image.alt"),
        (4, "mystnb.figure.caption, mystnb.image.alt"),
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_a_caption_a_name_and_alt_text(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    problems = figure_problems(notebook)
    assert not problems, f"{path.name}: figure cells missing " + "; ".join(
        f"cell {i}: {what}" for i, what in problems
    )
