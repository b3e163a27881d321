"""The book's figures: one look for every chapter, and the shared plots.

A chapter cell that draws a figure calls a function here and is folded in the
page (cell tag ``hide-input``) unless the plotting itself is the lesson. Each
function takes the data it draws (never recomputes it), returns the
:class:`matplotlib.figure.Figure`, and leaves the caption to the chapter.
"""

import contextlib

import matplotlib.pyplot as plt

COLORS = {
    "vanilla": "#4C72B0",
    "lstm": "#DD8452",
    "gru": "#55A868",
    "attention": "#C44E52",
    "ssm": "#8172B3",
    "mamba": "#937860",
    "reference": "#7F7F7F",
}
"""One colour per model family, the same in every chapter."""

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
}
"""The rcParams every figure of the book is drawn with."""


@contextlib.contextmanager
def book_style():
    """Draw inside ``with book_style():`` to get the book's look."""
    with plt.rc_context(STYLE):
        yield


def figure(ncols=1, nrows=1, width=4.2, height=3.2, **kwargs):
    """A new figure in the book's style with ``nrows x ncols`` axes.

    Args:
        ncols, nrows: the grid of axes.
        width, height: the size of one panel, in inches.
        kwargs: passed on to :func:`matplotlib.pyplot.subplots`.

    Returns:
        ``(fig, axes)`` as :func:`matplotlib.pyplot.subplots` returns them.
    """
    with book_style():
        return plt.subplots(
            nrows,
            ncols,
            figsize=(width * ncols, height * nrows),
            layout="constrained",
            **kwargs,
        )


# ------------------------------------------------------ Chapter 1: BPTT


# ------------------------------------------- Chapter 2: vanishing/exploding


# --------------------------------------------------------- Chapter 3: gating


# ------------------------------------------ Chapter 4: seq2seq and attention


# ----------------------------------------- Chapters 5-6: state space models


# ------------------------------------------------------ Chapter 7: Mamba
