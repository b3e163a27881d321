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


def unrolled_rnn():
    """The RNN of eq. ``ch1-rnn`` unrolled over ``T`` steps, with readouts.

    Inputs ``x_t`` feed states ``h_t`` through ``W_xh``; each state feeds
    the next through ``W_hh`` and its readout ``y_t`` through ``W_hy``;
    each readout gives a loss ``L_t``. An arrow above shows the direction
    of the backward pass.
    """
    fig, ax = figure(width=7.5, height=5.2)
    ax.set_xlim(-0.45, 4.45)
    ax.set_ylim(-0.35, 3.45)
    ax.set_aspect("equal")
    ax.axis("off")
    r = 0.22  # node radius
    text = dict(ha="center", va="center", fontsize=12)
    small = dict(fontsize=9, va="center")
    arrow = dict(arrowstyle="->")
    rows = [
        (0.0, "#dbe9f6", "x"),
        (0.85, "#fde6c8", "h"),
        (1.7, "#eadcf2", "y"),
    ]
    for x, t in ((1, "1"), (2, "2"), (3, "3"), (4, "T")):
        for height, fill, letter in rows:
            ax.add_patch(plt.Circle((x, height), r, fc=fill, ec="k"))
            ax.text(x, height, f"${letter}_{{{t}}}$", **text)
        ax.add_patch(
            plt.Rectangle((x - r, 2.4), 2 * r, 0.36, fc="#e3f1dd", ec="k")
        )
        ax.text(x, 2.58, f"$L_{{{t}}}$", **text)
        for low, high, label in (
            (r, 0.85 - r, "$W_{xh}$"),
            (0.85 + r, 1.7 - r, "$W_{hy}$"),
            (1.7 + r, 2.4, None),
        ):
            ax.annotate("", xy=(x, high), xytext=(x, low), arrowprops=arrow)
            if label:
                ax.text(x + 0.07, (low + high) / 2, label, **small)
    ax.add_patch(plt.Circle((0, 0.85), r, fc="#fde6c8", ec="k"))
    ax.text(0, 0.85, "$h_0$", **text)
    ax.text(3.45, 0.85, "…", **text)
    for start in (0, 1, 2):
        ax.annotate(
            "",
            xy=(start + 1 - r, 0.85),
            xytext=(start + r, 0.85),
            arrowprops=arrow,
        )
        ax.text(start + 0.5, 0.97, "$W_{hh}$", ha="center", **small)
    ax.annotate("", xy=(4 - r, 0.85), xytext=(3.6, 0.85), arrowprops=arrow)
    back = COLORS["attention"]
    ax.annotate(
        "",
        xy=(1.0, 3.05),
        xytext=(4.0, 3.05),
        arrowprops=dict(arrowstyle="->", color=back),
    )
    ax.text(
        2.5,
        3.22,
        "gradients flow backwards through time",
        color=back,
        ha="center",
    )
    ax.set_title(
        "The RNN unrolled over T steps: "
        "one shared $W_{xh}$, $W_{hh}$, $b$, $W_{hy}$, $c$"
    )
    return fig


def truncation_error(ks, errors, T):
    """Relative error of the truncated gradient against ``k`` (log scale).

    Args:
        ks: truncation lengths, ``(K,)``.
        errors: ``label -> (K,)`` relative errors of ``g^(k)`` for
            ``W_hh``; zeros are drawn at 1e-17 so the log axis keeps them.
        T: the sequence length, marked by a dotted line.
    """
    fig, ax = figure(width=6.0, height=3.4)
    for label, err in errors.items():
        ax.semilogy(
            ks, [max(e, 1e-17) for e in err], "o-", label=f"{label} $W_{{hh}}$"
        )
    ax.axvline(T, color=COLORS["reference"], ls=":", lw=1, label="$k = T$")
    ax.set_xlabel("truncation length $k$ (transitions)")
    ax.set_ylabel(
        r"$\|g^{(k)}_{W_{hh}} - \nabla_{W_{hh}} L\|_F"
        r" \,/\, \|\nabla_{W_{hh}} L\|_F$"
    )
    ax.legend()
    return fig


def chunked_accuracy(curves, gap):
    """Test accuracy per training round for each chunk length.

    Args:
        curves: ``chunk length -> (rounds,)`` accuracies.
        gap: the task's delay, for the legend.
    """
    fig, ax = figure(width=6.0, height=3.4)
    for chunk, acc in curves.items():
        side = "> gap" if chunk > gap else "<= gap"
        ax.plot(
            range(1, len(acc) + 1),
            acc,
            label=f"chunk length {chunk} ({side} {gap})",
        )
    ax.axhline(0.5, color=COLORS["reference"], ls="--", lw=1, label="chance")
    ax.set_xlabel("training round (one batch of 400-step streams)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.4, 1.02)
    ax.legend()
    return fig


def bptt_cost(lengths, saved, seconds):
    """Memory saved for backward and time of one forward+backward, vs T.

    Args:
        lengths: sequence lengths ``T``.
        saved: ``T -> bytes`` saved for the backward pass.
        seconds: ``T -> seconds`` of one forward and backward pass.
    """
    fig, (left, right) = figure(ncols=2, width=3.4, height=3.0)
    left.plot(lengths, [saved[T] / 2**20 for T in lengths], "o-")
    left.set_ylabel("saved for backward (MiB)")
    right.plot(lengths, [1000 * seconds[T] for T in lengths], "s-", color="C1")
    right.set_ylabel("forward + backward (ms)")
    for ax in (left, right):
        ax.set_xlabel("sequence length $T$")
        ax.set_xlim(0, None)
        ax.set_ylim(0, None)
    return fig


def state_gradient_norms(norms):
    """``||dL_T/dh_k||`` against ``k`` for several scales of ``W_hh``.

    Args:
        norms: ``scale -> (T+1,)`` norms, one per step ``k = 0..T``.
    """
    fig, ax = figure(width=6.0, height=3.4)
    for scale, n in norms.items():
        ax.semilogy(range(len(n)), n, label=f"$W_{{hh}}$ scaled by {scale}")
    ax.set_xlabel("step $k$")
    ax.set_ylabel(r"$\|\partial L_T / \partial h_k\|$")
    ax.legend()
    return fig


# ------------------------------------------- Chapter 2: vanishing/exploding


# --------------------------------------------------------- Chapter 3: gating


# ------------------------------------------ Chapter 4: seq2seq and attention


# ----------------------------------------- Chapters 5-6: state space models


# ------------------------------------------------------ Chapter 7: Mamba
