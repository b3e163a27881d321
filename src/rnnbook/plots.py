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


def lstm_cell_diagram():
    """One LSTM step as a diagram: the cell state runs along the top.

    Boxes are layers (sigmoid or tanh), circles element-wise operations;
    the red line is the cell state, touched by one product and one sum.
    """
    fig, ax = figure(width=7.5, height=4.0)

    def box(x, y, text, color):
        corner = (x - 0.35, y - 0.25)
        ax.add_patch(
            plt.Rectangle(corner, 0.7, 0.5, facecolor=color, edgecolor="k")
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=11)

    def op(x, y, text):
        ax.add_patch(
            plt.Circle((x, y), 0.22, facecolor="white", ec="k", zorder=3)
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=12, zorder=4)

    def arrow(x0, y0, x1, y1, color="black", lw=1.2):
        style = dict(arrowstyle="->", color=color, lw=lw)
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=style)

    ax.add_patch(
        plt.Rectangle((0.6, 0.4), 7.2, 4.0, facecolor="#f4f4f4", ec="gray")
    )
    # the cell state along the top
    red = "tab:red"
    arrow(0.0, 3.8, 1.78, 3.8, red, 2.5)
    op(2.0, 3.8, "×")
    arrow(2.22, 3.8, 3.98, 3.8, red, 2.5)
    op(4.2, 3.8, "+")
    arrow(4.42, 3.8, 8.4, 3.8, red, 2.5)
    ax.text(0.0, 4.0, "$c_{t-1}$", fontsize=12)
    ax.text(8.0, 4.0, "$c_t$", fontsize=12)
    # the gates read [h_{t-1}, x_t] from the bottom
    ax.plot([0.0, 6.0], [0.8, 0.8], color="black", lw=1.2)
    ax.text(0.0, 0.95, "$h_{t-1}$", fontsize=12)
    ax.text(1.0, 0.05, "$x_t$", fontsize=12)
    arrow(1.2, 0.3, 1.2, 0.78)
    gates = [
        (2.0, "$f_t$", "σ", "#cde3f5"),
        (3.2, "$i_t$", "σ", "#cde3f5"),
        (4.2, "$g_t$", "tanh", "#f9dcc4"),
        (5.6, "$o_t$", "σ", "#cde3f5"),
    ]
    for x, name, symbol, color in gates:
        arrow(x, 0.8, x, 1.55)
        box(x, 1.8, symbol, color)
        ax.text(x + 0.4, 2.15, name, fontsize=11)
    arrow(2.0, 2.05, 2.0, 3.58)  # f multiplies the old cell
    op(3.7, 2.9, "×")  # i * g
    arrow(3.2, 2.05, 3.55, 2.72)
    arrow(4.2, 2.05, 3.85, 2.72)
    arrow(3.85, 3.08, 4.1, 3.6)  # added to the cell
    box(6.6, 3.0, "tanh", "#f9dcc4")
    arrow(6.6, 3.8, 6.6, 3.25)
    op(6.6, 1.8, "×")  # h_t = o_t * tanh(c_t)
    arrow(5.95, 1.8, 6.38, 1.8)
    arrow(6.6, 2.75, 6.6, 2.02)
    arrow(6.82, 1.8, 8.4, 1.8)
    ax.text(8.0, 2.0, "$h_t$", fontsize=12)
    ax.set_xlim(-0.2, 8.8)
    ax.set_ylim(0.0, 4.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("One LSTM step; the red line is the cell state")
    return fig


def gradient_highway(lags, curves):
    """Jacobian norms against the lag, on a log scale.

    Args:
        lags: the lags ``T``.
        curves: ``{label: (values, style)}``, drawn in order; ``style`` is a
            dict of :func:`matplotlib.axes.Axes.semilogy` keywords.
    """
    fig, ax = figure(width=6.4, height=3.8)
    with book_style():
        for label, (values, style) in curves.items():
            ax.semilogy(lags, values, label=label, **style)
        ax.set_xlabel("lag T (steps)")
        ax.set_ylabel("spectral norm of the Jacobian")
        fig.legend(loc="outside right center", fontsize=8)
    return fig


def forget_bias_flow(lags, measured, predicted):
    """The cell path's gain for several forget biases, with ``sigma(b)^T``.

    Args:
        lags: the lags ``T``.
        measured, predicted: ``{b_f: values at the lags}``.
    """
    fig, ax = figure(width=6.4, height=3.6)
    with book_style():
        for k, b_f in enumerate(measured):
            color = f"C{k}"
            label = f"measured, $b_f = {b_f:g}$"
            ax.semilogy(lags, measured[b_f], "o-", ms=3, c=color, label=label)
            label = rf"$\sigma({b_f:g})^T$"
            ax.semilogy(lags, predicted[b_f], "--", c=color, label=label)
        ax.set_xlabel("lag T (steps)")
        ax.set_ylabel(r"$\|\partial c_T/\partial c_0\|$, cell path")
        ax.legend(fontsize=8, ncol=2)
    return fig


def loss_panels(panels, baseline, width=3.0):
    """Training-loss curves, one panel per network, one line per seed.

    Args:
        panels: ``{title: (curves, colour)}``; ``curves`` holds one running
            mean of the losses per seed, all drawn in ``colour``.
        baseline: the loss of predicting the mean, drawn dotted.
        width: the width of one panel, in inches.
    """
    fig, axes = figure(
        ncols=len(panels), width=width, height=3.0, sharey=True, squeeze=False
    )
    axes = list(axes[0])
    with book_style():
        for ax, (title, (curves, color)) in zip(axes, panels.items()):
            for curve in curves:
                ax.semilogy(curve, c=color, lw=1.1)
            ax.axhline(baseline, color="black", ls=":", label="baseline")
            ax.set_title(title)
            ax.set_xlabel("update (batches of 64)")
        axes[0].set_ylabel("mean squared error (running mean)")
        axes[0].legend(fontsize=8, loc="lower left")
    return fig


def learned_forget_gates(typical_init, typical_trained, flows, lags):
    """What training changed: the forget gates and the gradient flow.

    Args:
        typical_init, typical_trained: lists (one per seed) of the units'
            typical forget gates, arrays of ``H`` values.
        flows: ``{label: (curves, style)}`` for the right panel: one curve
            per seed, drawn with the same ``style`` (keywords of
            :func:`matplotlib.axes.Axes.semilogy`).
        lags: the lags of the curves.
    """
    import numpy as np

    fig, (left, right) = figure(ncols=2, width=4.0, height=3.4)
    with book_style():
        for s, (f0, f1) in enumerate(zip(typical_init, typical_trained)):
            rank = np.arange(1, len(f0) + 1)
            first = s == 0
            left.plot(
                rank,
                np.sort(f0)[::-1],
                "--",
                c=COLORS["reference"],
                label="at initialization" if first else None,
            )
            left.plot(
                rank,
                np.sort(f1)[::-1],
                c=COLORS["lstm"],
                label="after training" if first else None,
            )
        left.set_xlabel("unit, by typical forget gate")
        left.set_ylabel(r"typical $f_t$ (geometric mean)")
        left.legend(fontsize=8)
        for label, (curves, style) in flows.items():
            for s, values in enumerate(curves):
                name = label if s == 0 else None
                right.semilogy(lags, values, label=name, **style)
        right.set_xlabel("lag T (steps)")
        right.set_ylabel("spectral norm of the Jacobian")
        right.legend(fontsize=7)
    return fig


def step_sensitivity_bars(last_output, final_state):
    """Which input steps two read-outs of a bidirectional layer depend on.

    Args:
        last_output, final_state: ``||dy/dx_t||`` for every step ``t``, for
            ``y = out[:, -1, H:]`` and for ``y = h_n[-1]``.
    """
    import numpy as np

    fig, ax = figure(width=6.4, height=3.4)
    steps = np.arange(len(last_output))
    with book_style():
        ax.bar(
            steps - 0.2,
            last_output,
            width=0.4,
            label="out[:, -1, H:] (what fc(out[:, -1]) sees)",
        )
        ax.bar(
            steps + 0.2,
            final_state,
            width=0.4,
            label="h_n[-1] = out[:, 0, H:] (backward final state)",
        )
        ax.set_xlabel("input step t")
        ax.set_ylabel(r"$\|\partial y / \partial x_t\|$")
        # above the axes, where no bar can be
        fig.legend(loc="outside upper center", fontsize=8, ncol=1)
    return fig


# ------------------------------------------ Chapter 4: seq2seq and attention


# ----------------------------------------- Chapters 5-6: state space models


# ------------------------------------------------------ Chapter 7: Mamba
