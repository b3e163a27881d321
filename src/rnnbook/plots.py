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

SEQ2SEQ_COLORS = {"RNNencdec": COLORS["gru"], "RNNsearch": COLORS["attention"]}
"""Chapter 4's two models: the plain GRU encoder-decoder and attention."""


def accuracy_against_length(lengths, curves, l_train, ylabel):
    """Accuracy against source length, one line (and band) per model.

    Args:
        lengths: the source lengths, ``(n,)``.
        curves: ``{model name: (mean, low, high)}``, each ``(n,)``; the band
            spans ``low`` to ``high`` (e.g. the best and worst seed).
        l_train: the longest training length, marked by a dotted line.
        ylabel: what is measured.
    """
    fig, ax = figure(width=5.6, height=3.4)
    for name, (mean, low, high) in curves.items():
        color = SEQ2SEQ_COLORS.get(name, COLORS["reference"])
        ax.plot(lengths, mean, "o-", ms=3, color=color, label=name)
        ax.fill_between(lengths, low, high, color=color, alpha=0.2, lw=0)
    ax.axvline(l_train + 0.5, color="black", ls=":", lw=1)
    ax.text(l_train + 1.5, 0.5, "longer than any\ntraining source", fontsize=8)
    ax.set_xlabel("source length (symbols)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower left")
    return fig


def source_gradient_profile(norms, title=""):
    """``||dL/dx_j||`` against source position ``j``, log scale, per model.

    Args:
        norms: ``{label: array (S,)}``; a label containing a model name of
            :data:`SEQ2SEQ_COLORS` takes its colour.
    """
    fig, ax = figure(width=5.6, height=3.2)
    for label, values in norms.items():
        color = next(
            (c for n, c in SEQ2SEQ_COLORS.items() if n in label), None
        )
        style = "--" if "init" in label else "-"
        ax.semilogy(values, style, marker="o", ms=3, color=color, label=label)
    ax.set_xlabel("source position j")
    ax.set_ylabel(r"$\|\partial L / \partial x_j\|$")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def alignment_heatmaps(panels, ncols=2, width=3.4, height=3.0):
    """Attention weights as heatmaps: rows outputs, columns source symbols.

    Args:
        panels: a list of ``(weights (T, S), source labels (S,), output
            labels (T,), title)``.
    """
    nrows = -(-len(panels) // ncols)
    fig, axes = figure(ncols, nrows, width=width, height=height, squeeze=False)
    for ax, (weights, src, out, title) in zip(axes.flat, panels):
        ax.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto")
        small = 7 if len(src) <= 24 else 5  # long sources: smaller labels
        ax.set_xticks(range(len(src)), src, fontsize=small)
        ax.set_yticks(range(len(out)), out, fontsize=7)
        ax.tick_params(length=0)
        ax.grid(False)
        ax.set_title(title, fontsize=9)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return fig


# ----------------------------------------- Chapters 5-6: state space models


# ------------------------------------------------------ Chapter 7: Mamba
