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
    each readout gives a loss ``L_t``. Red arrows under the chain of
    states show the direction of the backward pass along it.
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
    for start, stop in ((0, 1), (1, 2), (2, 3), (3.6, 4)):
        ax.annotate(
            "",
            xy=(start + (r if start % 1 == 0 else 0), 0.68),
            xytext=(stop - r, 0.68),
            arrowprops=dict(arrowstyle="->", color=back, lw=1.5),
        )
    ax.text(
        2.0,
        3.2,
        "red arrows: the backward pass, along the chain of states",
        color=back,
        ha="center",
    )
    ax.set_title(
        "The RNN unrolled over T steps: "
        "one shared $W_{xh}$, $W_{hh}$, $b$, $W_{hy}$, $b_y$"
    )
    return fig


def truncation_error(ks, errors, T, chunked=None):
    """Relative error of the truncated gradient against ``k`` (log scale).

    Args:
        ks: truncation lengths, one per point.
        errors: ``label -> `` relative errors of the exact ``g^(k)`` for
            ``W_hh``, one per ``k``; zeros are drawn at 1e-17 so the log
            axis keeps them.
        T: the sequence length, marked by a dotted line.
        chunked: ``label ->`` relative errors of the chunked form with
            chunks of ``k`` steps (dashed, the same colour), or ``None``.
    """
    fig, ax = figure(width=6.0, height=3.4)
    for i, (label, err) in enumerate(errors.items()):
        ax.semilogy(
            ks,
            [max(e, 1e-17) for e in err],
            "o-",
            color=f"C{i}",
            label=f"{label}: exact $g^{{(k)}}$",
        )
        if chunked is not None:
            ax.semilogy(
                ks,
                [max(e, 1e-17) for e in chunked[label]],
                "s--",
                color=f"C{i}",
                mfc="none",
                label=f"{label}: chunks of $k$",
            )
    ax.axvline(T, color=COLORS["reference"], ls=":", lw=1, label="$k = T$")
    ax.set_xlabel("truncation length $k$ (transitions)")
    ax.set_ylabel(
        r"$\|g_{W_{hh}} - \nabla_{W_{hh}} L\|_F"
        r" \,/\, \|\nabla_{W_{hh}} L\|_F$"
    )
    ax.legend(fontsize=8)
    return fig


def chunked_accuracy(curves, gap):
    """Test accuracy per training round for each chunk length and seed.

    Args:
        curves: ``chunk length -> list of (rounds,)`` accuracies, one per
            seed (one colour per chunk length, one line per seed).
        gap: the task's delay, for the legend.
    """
    fig, ax = figure(width=6.0, height=3.4)
    for i, (chunk, runs) in enumerate(curves.items()):
        side = "> gap" if chunk > gap else "<= gap"
        for j, acc in enumerate(runs):
            ax.plot(
                range(1, len(acc) + 1),
                acc,
                color=f"C{i}",
                lw=1.2,
                alpha=0.85,
                label=(
                    f"chunk length {chunk} ({side} {gap}), {len(runs)} seeds"
                    if j == 0
                    else None
                ),
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
    """``||dL_T/dh_s||`` against ``s`` for several scales of ``W_hh``.

    Args:
        norms: ``scale -> (T+1,)`` norms, one per step ``s = 0..T``.
    """
    fig, ax = figure(width=6.0, height=3.4)
    for scale, n in norms.items():
        ax.semilogy(range(len(n)), n, label=f"$W_{{hh}}$ scaled by {scale}")
    ax.set_xlabel("step $s$")
    ax.set_ylabel(r"$\|\partial L_T / \partial h_s\|$")
    ax.legend()
    return fig


# ------------------------------------------- Chapter 2: vanishing/exploding

import numpy as np  # noqa: E402 (kept in this chapter's section)

METHOD_COLORS = {
    "MSGD": "#7F7F7F",
    "MSGD-C": "#4C72B0",
    "MSGD-CR": "#DD8452",
}
"""Chapter 2: one colour per training method."""


def gradient_decay(ax, norms, rho, activation, gamma):
    """Draw measured ``||u dh_T/dh_k||`` and the bound ``(rho gamma)^gap``.

    Args:
        ax: a matplotlib axes.
        norms: ``(T+1,)`` tensor indexed by ``k``
            (:func:`rnnbook.widgets.decay_curve`).
        rho, activation, gamma: the setting, for the labels and the bound.
    """
    T = len(norms) - 1
    gaps = np.arange(T, -1, -1)
    with book_style():
        # wide and light, so that a bound drawn on top of it stays visible
        ax.semilogy(
            gaps, norms, lw=3.5, alpha=0.5, label=f"measured, {activation}"
        )
        ax.semilogy(
            gaps,
            (rho * gamma) ** gaps.astype(float),
            "k--",
            lw=1,
            label=r"bound $(\lambda_1\gamma)^{T-k}$",
        )
        ax.set_xlabel("gap $T-k$ (steps)")
        ax.set_ylabel(r"$\|u\,\partial h_T/\partial h_k\|$")
        ax.set_title(rf"$\rho = {rho:.2f}$, {activation}")
        ax.legend(loc="lower left")


def decay_rates(curves, rhos):
    """Two panels, linear and tanh: the measured norms for each ``rho``.

    Args:
        curves: ``{(activation, rho): norms}`` for ``"linear"``, ``"tanh"``.
        rhos: the radii, in the order of the legend.
    """
    fig, axes = figure(2, width=5, height=3.6, sharey=True)
    with book_style():
        for ax, activation in zip(axes, ("linear", "tanh")):
            for rho in rhos:
                norms = curves[activation, rho]
                gaps = np.arange(len(norms) - 1, -1, -1)
                ax.semilogy(gaps, norms, label=rf"$\rho={rho}$")
            ax.set_title(f"{activation} RNN")
            ax.set_xlabel("gap $T-k$ (steps)")
        axes[0].set_ylabel(r"$\|u\,\partial h_T/\partial h_k\|$")
        axes[1].legend()
    return fig


def decay_grid(panels):
    """A 2x2 grid of :func:`gradient_decay` panels.

    Args:
        panels: four ``(rho, activation, gamma, norms)`` tuples.
    """
    fig, axes = figure(2, 2, width=5, height=3.2, sharex=True)
    for ax, (rho, activation, gamma, norms) in zip(axes.flat, panels):
        gradient_decay(ax, norms, rho, activation, gamma)
    for ax in axes[0]:
        ax.set_xlabel("")
    return fig


def fixed_point_diagram(stable, unstable, folds):
    """Fixed points of one sigmoid unit against its bias.

    Args:
        stable, unstable: ``(n, 2)`` arrays of ``(b, x*)``
            (:func:`rnnbook.dynamics.fixed_points`).
        folds: the two closed-form bifurcation biases.
    """
    fig, ax = figure(width=6.4, height=3.6)
    with book_style():
        for points, color, label in (
            (stable, "#4C72B0", "stable fixed point"),
            (unstable, "#C44E52", "unstable fixed point"),
        ):
            ax.plot(*points.T, ".", ms=2, color=color, label=label)
        for b in folds:
            ax.axvline(b, color="k", lw=0.8, ls="--")
        ax.set_xlabel("bias $b$")
        ax.set_ylabel("fixed point $x^*$")
        ax.legend(loc="upper left", markerscale=4)
    return fig


def loss_wall(W_grid, B_grid, E_grid, start, step_plain, step_clipped):
    """The single unit's loss over ``(w, b)`` with one SGD step at the wall.

    The unclipped step is far longer than the frame and is drawn 1.5 units
    long; the clipped step (length ``lr tau``) is drawn at its true length
    in a magnified inset around the starting point, and, magnified 50
    times, in the main panel.

    Args:
        W_grid, B_grid, E_grid: the grid and the loss on it.
        start: ``(w, b)`` of the starting point.
        step_plain, step_clipped: the two steps, arrays of shape ``(2,)``.
    """
    fig, ax = figure(width=6.4, height=4.4)
    start = np.asarray(start, dtype=float)
    with book_style():
        levels = ax.contourf(
            W_grid, B_grid, np.log10(E_grid + 1e-6), 30, cmap="viridis"
        )
        fig.colorbar(levels, ax=ax, label=r"$\log_{10} E(w, b)$")
        plain = np.asarray(step_plain, dtype=float)
        clipped = np.asarray(step_clipped, dtype=float)
        arrows = (
            (
                plain * 1.5 / np.linalg.norm(plain),
                "#C44E52",
                2.5,
                "SGD step (leaves the frame; drawn 1.5 long)",
            ),
            (clipped * 50, "white", 2.5, "clipped step, drawn 50x longer"),
        )
        for step, color, lw, label in arrows:
            ax.annotate(
                "",
                xy=start + step,
                xytext=start,
                arrowprops=dict(arrowstyle="-|>", color=color, lw=lw),
                annotation_clip=False,
            )
            ax.plot([], [], color=color, lw=lw, label=label)
        ax.plot(*start, "o", color="white", mec="k", ms=6, label="start")
        ax.set_xlim(W_grid.min(), W_grid.max())
        ax.set_ylim(B_grid.min(), B_grid.max())
        ax.set_xlabel("$w$")
        ax.set_ylabel("$b$")
        legend = ax.legend(loc="lower left", fontsize=8, frameon=True)
        legend.get_frame().set_alpha(0.8)
        # the clipped step at its true length, magnified around the start
        half = 2.5 * np.linalg.norm(clipped)
        inset = ax.inset_axes([0.66, 0.66, 0.32, 0.32])
        inset.contourf(
            W_grid, B_grid, np.log10(E_grid + 1e-6), 30, cmap="viridis"
        )
        inset.annotate(
            "",
            xy=start + clipped,
            xytext=start,
            arrowprops=dict(arrowstyle="-|>", color="white", lw=2),
        )
        inset.plot(*start, "o", color="white", mec="k", ms=5)
        inset.set_xlim(start[0] - half, start[0] + half)
        inset.set_ylim(start[1] - half, start[1] + half)
        inset.set_xticks([])
        inset.set_yticks([])
        inset.set_title("true length", fontsize=8, color="white", y=0.02)
    return fig


def exploding_runs(histories, baseline, loss_ylim=(1e-2, 10), dashed=()):
    """Loss and gradient norm of training runs, one line per run.

    Args:
        histories: ``{label: History}``.
        baseline: the loss of the constant prediction, drawn dashed.
        loss_ylim: the loss axis's range; a diverging run leaves it (its
            whole curve is in the gradient-norm panel).
        dashed: labels of runs drawn dashed and thinner, so that a run
            lying on another one stays visible.
    """
    fig, axes = figure(2, width=5, height=3.6)
    with book_style():
        for label, history in histories.items():
            style = dict(ls="--", lw=1.0) if label in dashed else dict(lw=1.6)
            (line,) = axes[0].semilogy(history.loss, label=label, **style)
            axes[1].semilogy(
                history.grad_norm, label=label, color=line.get_color(), **style
            )
            if history.stopped:
                axes[0].axvline(
                    history.updates, color=line.get_color(), lw=0.8, ls=":"
                )
        axes[0].axhline(
            baseline, color="k", lw=0.8, ls="-.", label="predict 0.5"
        )
        axes[1].axhline(
            1.0, color="k", lw=0.8, ls=":", label=r"threshold $\tau = 1$"
        )
        axes[0].set_ylim(*loss_ylim)
        axes[0].set_ylabel("training loss (MSE)")
        axes[1].set_ylabel("gradient norm before clipping")
        for ax in axes:
            ax.set_xlabel("update")
            ax.legend(fontsize=8)
    return fig


def regularizer_profiles(histories, T):
    """The training loss of each method, and its per-step ``||dE/dh_t||``.

    Args:
        histories: ``{"MSGD": ..., "MSGD-C": ..., "MSGD-CR": ...}``, each
            run with ``record_every`` (four recorded updates are drawn).
        T: the sequence length.
    """
    fig, axes = figure(2, 2, width=5, height=3.2)
    axes = axes.flat
    with book_style():
        for method, history in histories.items():
            axes[0].plot(
                np.convolve(history.loss, np.ones(50) / 50, mode="valid"),
                color=METHOD_COLORS[method],
                label=method,
            )
        axes[0].axhline(
            np.log(4), color="k", lw=0.8, ls="--", label=r"$\log 4$"
        )
        axes[0].set_xlabel("update")
        axes[0].set_ylabel("training loss (moving mean of 50)")
        axes[0].legend(fontsize=8)
        for ax, (method, history) in zip(axes[1:], histories.items()):
            recorded = history.state_grad_norms
            for (update, norms), shade in zip(
                recorded[::3], (0.25, 0.5, 0.75, 1.0)
            ):
                ax.semilogy(
                    np.arange(1, T + 1),
                    norms,
                    color=plt.cm.viridis(shade),
                    label=f"update {update}",
                )
            ax.set_title(method)
            ax.set_xlabel("step $t$")
            ax.set_ylabel(r"$\|\partial E/\partial h_t\|$ (batch mean)")
        axes[1].legend(fontsize=8)
    return fig


def initial_decay(at_init, radii):
    """Gradient decay at initialization, one curve per scheme.

    Left, the whole range on a log scale; right, the three schemes whose
    signal survives 100 steps, on a linear scale, so that no curve hides
    another.

    Args:
        at_init: ``{scheme: norms}``, each ``(T+1,)``.
        radii: ``{scheme: spectral radius of W_hh}``.
    """
    fig, axes = figure(2, width=5, height=3.6)
    styles = {
        "sigmoid": ("#8172B3", "-"),
        "basic_tanh": ("#55A868", "-"),
        "smart_tanh": ("#4C72B0", "-"),
        "orthogonal": ("#DD8452", "-"),
        "identity": ("#C44E52", "--"),
    }
    with book_style():
        for scheme, norms in at_init.items():
            gaps = np.arange(len(norms) - 1, -1, -1)
            color, ls = styles[scheme]
            label = f"{scheme} ($\\rho$ = {radii[scheme]:.2f})"
            axes[0].semilogy(
                gaps, norms.clamp_min(1e-300), color=color, ls=ls, label=label
            )
            if scheme in ("smart_tanh", "orthogonal", "identity"):
                axes[1].plot(gaps, norms, color=color, ls=ls, label=label)
        axes[0].set_ylim(1e-40, 10)
        axes[0].set_ylabel(r"$\|u\,\partial h_T/\partial h_k\|$ at init")
        axes[0].legend(fontsize=8)
        axes[1].set_ylim(0, 1.05)
        axes[1].set_title("the top three, linear scale")
        for ax in axes:
            ax.set_xlabel("gap $T-k$ (steps)")
    return fig


def success_rates(runs, methods, lengths, success_error):
    """Success rate and every run's test error against the length.

    The test errors are drawn on a symmetric-log axis (linear below 0.01),
    each seed's dot shifted a little sideways.

    Args:
        runs: the run dicts of :mod:`rnnbook.experiments.pascanu`.
        methods, lengths: the order of the methods and lengths.
        success_error: the success threshold on the test error.
    """
    fig, axes = figure(2, width=5, height=3.6)
    offsets = np.linspace(-0.2, 0.2, len(methods))
    x = np.arange(len(lengths))
    with book_style():
        for offset, method in zip(offsets, methods):
            color = METHOD_COLORS[method]
            errors = [
                [
                    r["test_error"]
                    for r in runs
                    if r["method"] == method and r["T"] == T
                ]
                for T in lengths
            ]
            rate = [
                100 * np.mean([e < success_error for e in es]) for es in errors
            ]
            axes[0].plot(x + offset, rate, "o-", color=color, label=method)
            for i, es in enumerate(errors):
                # spread the seeds sideways so that equal errors stay apart
                jitter = np.linspace(-0.05, 0.05, len(es))
                axes[1].plot(
                    x[i] + offset + jitter,
                    es,
                    "o",
                    ms=4,
                    color=color,
                    alpha=0.7,
                    label=method if i == 0 else None,
                )
        axes[0].set_ylabel("success rate (%)")
        axes[0].set_ylim(-5, 105)
        # linear below 0.01, logarithmic above: an error of 0, the 1%
        # line and errors of 2-3% are all told apart
        axes[1].set_yscale("symlog", linthresh=0.01, linscale=0.6)
        axes[1].set_ylim(-0.002, 1.0)
        axes[1].set_yticks([0, 0.01, 0.1, 0.75], ["0", "0.01", "0.1", "0.75"])
        axes[1].set_ylabel("test error of each run (symlog)")
        axes[1].axhline(0.75, color="k", lw=0.8, ls="--", label="chance")
        axes[1].axhline(
            success_error, color="k", lw=0.8, ls=":", label="success threshold"
        )
        for ax in axes:
            ax.set_xticks(x, [str(T) for T in lengths])
            ax.set_xlabel("sequence length $T$")
            ax.legend(fontsize=8)
    return fig


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


def loss_panels(panels, baseline, width=3.0, window=25):
    """Training-loss curves, one panel per network, one line per seed.

    Args:
        panels: ``{title: (curves, colour)}``; ``curves`` holds, per seed,
            the trailing means of the losses over ``window`` updates
            (:func:`rnnbook.probes.smooth`: entry ``k`` ends at update
            ``k + window - 1``, where it is drawn), all in ``colour``.
        baseline: the loss of predicting the mean, drawn dotted.
        width: the width of one panel, in inches.
        window: the updates per mean.
    """
    import numpy as np

    fig, axes = figure(
        ncols=len(panels), width=width, height=3.0, sharey=True, squeeze=False
    )
    axes = list(axes[0])
    with book_style():
        for ax, (title, (curves, color)) in zip(axes, panels.items()):
            for curve in curves:
                updates = np.arange(len(curve)) + window - 1
                ax.semilogy(updates, curve, c=color, lw=1.1)
            ax.axhline(baseline, color="black", ls=":", label="baseline")
            ax.set_title(title)
            ax.set_xlabel("update (batches of 64)")
        axes[0].set_ylabel(f"mean squared error (last {window} updates)")
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


def learning_rate_sweep(lrs, solved, styles):
    """Fraction of test sequences solved against Adam's learning rate.

    Args:
        lrs: the learning rates (log axis).
        solved: ``{label: array (len(lrs), seeds)}``, one point per seed,
            the seeds' mean joined by a line.
        styles: ``{label: dict}`` of :func:`matplotlib.axes.Axes.plot`
            keywords (colour, marker, line style).
    """
    import numpy as np

    fig, ax = figure(width=6.4, height=3.4)
    with book_style():
        for k, (label, values) in enumerate(solved.items()):
            values = np.asarray(values)
            shift = 1.06 ** (k - (len(solved) - 1) / 2)  # side by side
            x = np.asarray(lrs) * shift
            style = dict(styles[label])
            ax.plot(x, values.mean(axis=1), label=label, **style)
            style.pop("ls", None)
            for column in values.T:
                ax.plot(x, column, ls="none", alpha=0.5, ms=3, **style)
        ax.set_xscale("log")
        ax.set_xlabel("Adam learning rate")
        ax.set_ylabel("test sequences solved")
        ax.set_ylim(-0.02, 1.02)
        fig.legend(loc="outside right center", fontsize=8)
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

SSM_METHODS = {
    "ZOH": COLORS["ssm"],
    "bilinear": "#DA8BC3",
    "recurrence": COLORS["vanilla"],
    "FFT convolution": COLORS["ssm"],
    "kernel + FFT convolution": "#DA8BC3",
    "convolution": COLORS["ssm"],
}
"""Colours of the discretizations and of the two views of an SSM."""


def plot_discretization(t, y, coarse, errors):
    """A continuous SSM's output against its two discretizations.

    Args:
        t, y: (M,) times and the reference output y(t) on a fine grid.
        coarse: ``{method: (t_k, y_k)}``, each method's outputs at one
            coarse step, drawn as markers over the reference (left).
        errors: ``{method: (steps, max_errors)}``, the largest error over
            the run for each step size, on log-log axes (right), with a
            line of slope 2 for comparison.
    """
    fig, (ax, ax_err) = figure(ncols=2, width=4.4)
    ax.plot(t, y, color=COLORS["reference"], label="RK4 reference")
    for (name, (t_k, y_k)), marker in zip(coarse.items(), "os"):
        ax.plot(
            t_k,
            y_k,
            marker,
            ms=4,
            mfc="none",
            color=SSM_METHODS[name],
            label=name,
        )
    ax.set_xlabel("time t")
    ax.set_ylabel("output y(t)")
    low, high = ax.get_ylim()
    ax.set_ylim(low - 0.35 * (high - low), high)  # room for the legend
    ax.legend(fontsize=8, loc="lower center", ncol=3)
    for (name, (dts, errs)), marker in zip(errors.items(), "os"):
        ax_err.loglog(
            dts,
            errs,
            marker + "-",
            ms=4,
            color=SSM_METHODS[name],
            label=name,
        )
    dts = list(errors.values())[0][0]
    errs = list(errors.values())[0][1]
    guide = [errs[-1] * (d / dts[-1]) ** 2 for d in dts]
    ax_err.loglog(
        dts, guide, "k--", lw=1, label=r"slope 2 ($\propto\Delta^2$)"
    )
    ax_err.set_xticks(dts, [f"{d:g}" for d in dts])
    ax_err.minorticks_off()
    ax_err.set_xlabel(r"step $\Delta$")
    ax_err.set_ylabel(r"max$_k\,|y_k - y((k+1)\Delta)|$")
    ax_err.legend(fontsize=8)
    return fig


def plot_timescales(kernels, rate):
    """Kernels of one continuous system sampled with different steps.

    Args:
        kernels: ``{dt: K}``, each K a (L,) kernel, drawn as K[l] / K[0]
            against the lag l = 1, ..., L-1 on a log axis.
        rate: the decay rate |lambda| of the system, to mark each kernel's
            e-folding lag 1 / (|lambda| dt).
    """
    fig, ax = figure(width=5.6)
    colors = [COLORS["ssm"], "#DA8BC3", COLORS["vanilla"], COLORS["lstm"]]
    for (dt, K), color in zip(kernels.items(), colors):
        lags = range(1, len(K))  # l = 0 has no place on a log axis
        ax.semilogx(
            lags, K[1:] / K[0], color=color, label=rf"$\Delta = {dt:g}$"
        )
        ax.axvline(1 / (rate * dt), color=color, ls=":", lw=1)
    ax.axhline(0.36788, color="k", ls="--", lw=1, label="1/e")
    ax.set_xlabel("lag l (steps)")
    ax.set_ylabel("K[l] / K[0]")
    ax.legend(fontsize=8)
    return fig


def plot_eigenvalue_maps(lam_dt, maps):
    """Where the discretizations send the eigenvalues of A.

    Args:
        lam_dt: (M,) complex values Delta * lambda, drawn in the complex
            plane with the imaginary axis (left).
        maps: ``{method: mu}``, (M,) complex eigenvalues of Ab, drawn with
            the unit circle (right).
    """
    fig, (ax, ax_mu) = figure(ncols=2, width=4.0, height=3.6)
    ax.scatter(lam_dt.real, lam_dt.imag, s=12, color=COLORS["reference"])
    ax.axvline(0, color="k", lw=1)
    ax.set_xscale("symlog", linthresh=0.01)
    ticks = [-100, -1, -0.01, 0]
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.minorticks_off()
    ax.set_xlim(-200, 0.01)
    ax.set_xlabel(r"Re $\Delta\lambda$ (symlog)")
    ax.set_ylabel(r"Im $\Delta\lambda$")
    ax.set_title(r"eigenvalues of $\Delta A$")
    circle = plt.Circle((0, 0), 1, fill=False, color="k", lw=1)
    ax_mu.add_patch(circle)
    ax_mu.plot([], [], "k-", lw=1, label="unit circle")
    for (name, mu), marker in zip(maps.items(), "os"):
        ax_mu.scatter(
            mu.real,
            mu.imag,
            s=14,
            marker=marker,
            facecolors="none",
            edgecolors=SSM_METHODS[name],
            label=name,
        )
    ax_mu.set_aspect("equal")
    ax_mu.set_xlabel(r"Re $\mu$")
    ax_mu.set_ylabel(r"Im $\mu$")
    ax_mu.set_title(r"eigenvalues $\mu$ of $\bar A$")
    ax_mu.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def plot_linear_gradients(lags, measured, predicted, labels):
    """Per-direction gradients of a diagonal linear recurrence.

    Args:
        lags: (T,) the gaps t - k.
        measured: (T, N) |d x_{t,n} / d x_{k,n}| from autograd (markers).
        predicted: (T, N) |mu_n|^(t-k) (lines).
        labels: N legend labels, one per eigen-direction.
    """
    fig, ax = figure(width=5.6)
    colors = [COLORS["ssm"], "#DA8BC3", COLORS["vanilla"], COLORS["lstm"]]
    every = max(1, len(lags) // 20)
    for n, label in enumerate(labels):
        color = colors[n % len(colors)]
        ax.semilogy(lags, predicted[:, n], color=color, label=label)
        ax.semilogy(
            lags[::every],
            measured[::every, n],
            "o",
            ms=4,
            mfc="none",
            color=color,
        )
    ax.plot([], [], "ko", mfc="none", ms=4, label="autograd")
    ax.set_xlabel("gap t - k (steps)")
    ax.set_ylabel(r"$|\partial x_{t,n} / \partial x_{k,n}|$")
    ax.legend(fontsize=8)
    return fig


def plot_views_timing(lengths, training, generation):
    """The recurrence against the convolution, for a sequence and a step.

    Args:
        lengths: (M,) sequence (or context) lengths L.
        training: ``{view: seconds}``, (M,) seconds to compute all L
            outputs of a batch (left).
        generation: ``{view: seconds}``, (M,) seconds to compute one new
            output after a context of L inputs (right).
    """
    fig, (ax, ax_gen) = figure(ncols=2, width=4.4)
    for name, s in training.items():
        ax.loglog(lengths, s, "o-", ms=4, color=SSM_METHODS[name], label=name)
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("seconds for the whole sequence")
    ax.set_title("training: all outputs at once")
    ax.legend(fontsize=8)
    for name, s in generation.items():
        ax_gen.loglog(
            lengths, s, "o-", ms=4, color=SSM_METHODS[name], label=name
        )
    ax_gen.set_xlabel("context length L")
    ax_gen.set_ylabel("seconds for one new output")
    ax_gen.set_title("generation: one output at a time")
    ax_gen.legend(fontsize=8)
    return fig


INIT_COLORS = {"S4D-Lin": COLORS["ssm"], "S4D-Inv": "#DA8BC3", "S4D-LegS": "k"}
"""Colours of Chapter 6's initializations of a diagonal A."""


def plot_hippo_reconstruction(t, u, reconstructions, errors):
    """A signal's history read back from HiPPO-LegS states of several sizes.

    Args:
        t, u: (L,) times and the signal.
        reconstructions: ``{N: (L,) history}`` decoded from the state of
            size N after the whole signal (left).
        errors: ``(Ns, relative_errors)``, the error of each N, log scale
            (right).
    """
    fig, (ax, ax_err) = figure(ncols=2, width=4.4)
    ax.plot(t, u, color=COLORS["reference"], lw=3, alpha=0.5, label="signal")
    shades = plt.cm.Purples
    for i, (N, rec) in enumerate(reconstructions.items()):
        share = 0.4 + 0.6 * i / max(1, len(reconstructions) - 1)
        ax.plot(t, rec, color=shades(share), lw=1.2, label=f"N = {N}")
    ax.set_xlabel("time r (the whole history, 0 to t)")
    ax.set_ylabel("u(r)")
    ax.legend(fontsize=8, ncol=2)
    Ns, errs = errors
    ax_err.semilogy(Ns, errs, "o-", ms=4, color=COLORS["ssm"])
    ax_err.set_xscale("log", base=2)
    ax_err.set_xticks(Ns, [str(n) for n in Ns])
    ax_err.minorticks_off()
    ax_err.set_xlabel("state size N")
    ax_err.set_ylabel("relative error of the history")
    return fig


def plot_s4d_inits(eigenvalues, kernels):
    """Diagonal initializations: their frequencies, and the kernels they make.

    Args:
        eigenvalues: ``{name: (M,) complex}``; the imaginary parts (the
            frequencies) against the mode index m, on a log scale (left).
        kernels: ``{name: (L,) kernel}`` of one channel, drawn one above
            the other, each shifted by a constant (right).
    """
    import numpy as np

    fig, (ax, ax_k) = figure(ncols=2, width=4.4)
    for (name, w), marker in zip(eigenvalues.items(), "osx"):
        ax.semilogy(
            np.arange(len(w)),
            np.sort(np.asarray(w.imag)),
            marker,
            ms=4,
            mfc="none",
            color=INIT_COLORS[name],
            label=name,
        )
    ax.set_xlabel("mode m (sorted by frequency)")
    ax.set_ylabel("frequency Im a")
    ax.legend(fontsize=8)
    shift = 1.2 * max(np.abs(K).max() for K in kernels.values())
    for i, (name, K) in enumerate(kernels.items()):
        offset = -i * shift
        ax_k.plot(np.asarray(K) + offset, color=INIT_COLORS[name], lw=0.8)
        ax_k.text(len(K), offset + 0.3 * shift, name, ha="right", fontsize=8)
    ax_k.set_yticks([])
    ax_k.set_xlabel("lag l (steps)")
    ax_k.set_ylabel("kernel K[l] (shifted apart)")
    return fig


def plot_long_range(curves, baseline, record_every):
    """Training curves of the two models, one panel per sequence length.

    Args:
        curves: ``{T: {label: (S, P) array}}``: for each length and model,
            the mean training loss of each block of ``record_every``
            updates (P points) for each of S seeds; the median over seeds
            is drawn as a line and the range as a band. Runs of one family
            (the label's first word) differ in line style.
        baseline: the loss of the constant prediction, a dotted line.
        record_every: updates per point.
    """
    import numpy as np

    colors = {"S4D": COLORS["ssm"], "LSTM": COLORS["lstm"]}
    fig, axes = figure(ncols=len(curves), width=4.4, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (T, models) in zip(axes, curves.items()):
        styles = {}
        for label, runs in models.items():
            runs = np.asarray(runs)
            x = (np.arange(runs.shape[1]) + 1) * record_every
            family = label.split()[0]
            color = colors[family]
            styles[family] = styles.get(family, -1) + 1
            ax.semilogy(
                x,
                np.median(runs, 0),
                color=color,
                ls=("-", "--", "-.", (0, (1, 1)))[styles[family] % 4],
                label=label,
            )
            ax.fill_between(
                x, runs.min(0), runs.max(0), color=color, alpha=0.25, lw=0
            )
        ax.axhline(baseline, color="k", ls=":", lw=1, label="predict 0.5")
        ax.set_title(f"T = {T}")
        ax.set_xlabel("update")
    axes[0].set_ylabel("training loss (MSE)")
    axes[0].legend(fontsize=8)
    return fig


def plot_long_range_sweep(errors, baseline, threshold=None):
    """Final test error of every run against the sequence length.

    Args:
        errors: ``{label: {T: (S,) test MSEs}}``: for each model and length,
            the test error of each of its S seeds (S may differ between
            lengths). Each seed is a dot, shifted a little sideways per
            model so that equal errors stay apart; the median over seeds is
            a line. The label's first word picks the colour (S4D or LSTM);
            models of one family differ in marker and line style.
        baseline: the error of the constant prediction; the y-axis is the
            test error divided by it (log scale), and 1 is a dotted line.
        threshold: a success threshold in the same units, a dashed line,
            or None.
    """
    import numpy as np

    colors = {"S4D": COLORS["ssm"], "LSTM": COLORS["lstm"]}
    styles = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-.")]
    fig, ax = figure(width=6.4, height=3.6)
    lengths = sorted({T for runs in errors.values() for T in runs})
    shifts = np.linspace(-0.06, 0.06, len(errors))
    seen = {}
    for shift, (label, runs) in zip(shifts, errors.items()):
        family = label.split()[0]
        seen[family] = seen.get(family, -1) + 1
        marker, ls = styles[seen[family] % len(styles)]
        Ts = [T for T in lengths if T in runs]
        x = {T: np.log10(T) + shift for T in Ts}
        medians = [np.median(np.asarray(runs[T]) / baseline) for T in Ts]
        ax.plot([x[T] for T in Ts], medians, ls=ls, color=colors[family])
        for i, T in enumerate(Ts):
            e = np.asarray(runs[T], dtype=float) / baseline
            ax.plot(
                np.full(len(e), x[T]),
                e,
                marker,
                ms=5,
                mfc="none",
                color=colors[family],
                ls="",
                label=label if i == 0 else None,
            )
    ax.set_yscale("log")
    ax.axhline(1, color="k", ls=":", lw=1, label="predict 0.5")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8, label="learned")
    ax.set_xticks(np.log10(lengths), [str(T) for T in lengths])
    ax.set_xlabel("sequence length T (log scale)")
    ax.set_ylabel("test MSE / MSE of predicting 0.5")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


# ------------------------------------------------------ Chapter 7: Mamba

CH7_MODELS = {
    "gate": COLORS["mamba"],
    "LTI": COLORS["ssm"],
    "ZOH": COLORS["mamba"],
    "Euler": COLORS["lstm"],
}
"""Colours of Chapter 7's figures: selective (Mamba) against fixed (LTI)."""


def plot_selection_demo(u, state, target, kernels):
    """A selective gate against the best fixed kernel on one demo task.

    Args:
        u: (L,) one input sequence, zero except at its marked tokens
            (drawn as stems).
        state: (L,) the gated state h_t on that sequence (a step line).
        target: the value the state should end on (a dotted line).
        kernels: ``{task: K}``, each K a (L,) least-squares kernel over
            the lags 0, ..., L-1 (right).
    """
    fig, (ax, ax_k) = figure(ncols=2, width=4.4)
    steps = np.arange(len(u))
    marked = np.flatnonzero(u)
    ax.vlines(marked, 0, u[marked], color=COLORS["reference"], lw=2)
    ax.plot(
        marked,
        u[marked],
        "o",
        color=COLORS["reference"],
        ms=4,
        label="marked token",
    )
    ax.step(
        steps,
        state,
        where="post",
        color=CH7_MODELS["gate"],
        label=r"gated state $h_t$",
    )
    ax.axhline(target, color="k", ls=":", lw=1, label="target")
    ax.set_xlabel("step t")
    ax.set_ylabel("value")
    ax.set_ylim(top=1.3 * max(u.max(), target))  # room for the legend
    ax.legend(fontsize=8, loc="upper left", ncol=3)
    for (task, K), color in zip(kernels.items(), ("#DA8BC3", "#8172B3")):
        ax_k.plot(np.arange(len(K)), K, color=color, label=task)
    ax_k.axhline(0, color="k", lw=0.6)
    ax_k.set_xlabel("lag j")
    ax_k.set_ylabel(r"best fixed kernel $K_j$")
    ax_k.legend(fontsize=8)
    return fig


def plot_gate_discretization(a, gate, euler, deltas, ratio, init_range):
    """Theorem 1's gate and the Euler step for B, side by side.

    Args:
        a: (M,) values of Linear(x_t).
        gate: (M,) sigma(a), the input weight of zero-order hold, which
            equals B-bar for N = 1, A = -1, B = 1 (left, with 1 - gate,
            which is A-bar).
        euler: (M,) softplus(a), the input weight of the Euler step.
        deltas, ratio: z = Delta |a| for a diagonal entry a of A (for
            A = -1, the step Delta) and the ratio of the Euler step's
            B-bar to zero-order hold's minus one, z / (1 - e^{-z}) - 1,
            on log-log axes (right).
        init_range: ``(low, high)``, the range of z = Delta |A| at
            Mamba's initialization, shaded.
    """
    fig, (ax, ax_r) = figure(ncols=2, width=4.4)
    ax.plot(
        a,
        1 - gate,
        color=COLORS["reference"],
        label=r"$\bar A = e^{-\Delta} = 1 - \sigma(a)$",
    )
    ax.plot(
        a, gate, color=CH7_MODELS["ZOH"], label=r"ZOH $\bar B = \sigma(a)$"
    )
    ax.plot(
        a,
        euler,
        color=CH7_MODELS["Euler"],
        ls="--",
        label=r"Euler $\bar B = \Delta$",
    )
    ax.set_ylim(-0.05, 2.05)
    ax.set_xlabel(r"$a = \mathrm{Linear}(x_t)$")
    ax.set_ylabel("weight")
    ax.legend(fontsize=8, loc="upper left")
    ax_r.loglog(deltas, ratio, color=CH7_MODELS["Euler"])
    ax_r.axvspan(
        *init_range,
        color=COLORS["reference"],
        alpha=0.2,
        lw=0,
        label="Mamba's initial $\\Delta |A|$",
    )
    ax_r.set_xlabel(r"$z = \Delta |a|$")
    ax_r.set_ylabel(r"Euler $\bar B$ / ZOH $\bar B$ $-$ 1")
    ax_r.legend(fontsize=8, loc="upper left")
    return fig


CH7_COPY_MODELS = {
    "S4D": COLORS["ssm"],
    "Mamba-LTI": "#DA8BC3",
    "Mamba": COLORS["mamba"],
}
"""Colours of the selective-copying models: two time-invariant, one not."""


def plot_selective_copying(curves, final, paper, chance):
    """Selective copying: test accuracy in training, and at the end.

    Args:
        curves: ``{model: [(updates, accuracies), ...]}``, one pair of
            lists per seed; the median over seeds is drawn as a line and
            the range as a band (left).
        final: ``{model: [accuracy per seed]}``, drawn as bars (the mean)
            with one dot per seed (right), in percent.
        paper: ``{model: accuracy in %}``, the paper's matching rows, drawn
            as hatched bars beside ours.
        chance: the accuracy of guessing, a dotted line on both panels.
    """
    fig, (ax, ax_bar) = figure(ncols=2, width=4.4)
    for model, runs in curves.items():
        color = CH7_COPY_MODELS[model]
        x = np.asarray(runs[0][0])
        accs = np.asarray([acc for _, acc in runs]) * 100
        ax.plot(x, np.median(accs, 0), color=color, label=model)
        ax.fill_between(
            x, accs.min(0), accs.max(0), color=color, alpha=0.25, lw=0
        )
    for axis in (ax, ax_bar):
        axis.axhline(100 * chance, color="k", ls=":", lw=1, label="chance")
    ax.set_xlabel("update")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    models = list(final)
    pos = np.arange(len(models))
    for i, model in enumerate(models):
        color = CH7_COPY_MODELS[model]
        accs = 100 * np.asarray(final[model])
        ax_bar.bar(
            i - 0.2,
            accs.mean(),
            0.38,
            color=color,
            label="ours" if i == 0 else None,
        )
        ax_bar.plot(np.full(len(accs), i - 0.2), accs, "k.", ms=5)
        ax_bar.bar(
            i + 0.2,
            paper[model],
            0.38,
            color="white",
            edgecolor=color,
            hatch="//",
            label="paper, Table 1" if i == 0 else None,
        )
    ax_bar.set_xticks(pos, models)
    ax_bar.set_ylim(0, 105)
    ax_bar.set_ylabel("accuracy (%)")
    ax_bar.legend(fontsize=8, loc="upper left")
    return fig


def plot_scan_timing(lengths, ratios):
    """How much faster the parallel scan is than the loop, against L.

    Args:
        lengths: the sequence lengths L.
        ratios: ``{label: [loop time / parallel time at each L]}``, e.g.
            forward and forward + backward, on log-log axes with a line at
            ratio 1 (no gain).
    """
    fig, ax = figure(width=5.2)
    for (label, r), marker in zip(ratios.items(), "os^Dv"):
        ax.loglog(lengths, r, marker + "-", ms=4, label=label)
    ax.axhline(1, color="k", ls=":", lw=1)
    ax.set_xticks(lengths, [f"{L:g}" for L in lengths])
    ax.minorticks_off()
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("loop time / parallel time")
    ax.legend(fontsize=8)
    return fig


def plot_inference(contexts, speed, memory):
    """Generation with a constant state against a growing KV cache.

    Args:
        contexts: the context lengths.
        speed: ``{model: [tokens per second at each context]}`` (left).
        memory: ``{model: [bytes of state or cache at each context]}``
            (right); both on log-log axes.
    """
    fig, (ax, ax_m) = figure(ncols=2, width=4.4)
    colors = [COLORS["mamba"], COLORS["attention"], COLORS["reference"]]
    for (model, v), color in zip(speed.items(), colors):
        ax.loglog(contexts, v, "o-", ms=4, color=color, label=model)
    for (model, v), color in zip(memory.items(), colors):
        ax_m.loglog(contexts, v, "o-", ms=4, color=color, label=model)
    for axis in (ax, ax_m):
        axis.set_xticks(contexts, [f"{c:g}" for c in contexts])
        axis.minorticks_off()
        axis.set_xlabel("context length (tokens)")
        axis.legend(fontsize=8)
    ax.set_ylabel("generated tokens per second")
    ax_m.set_ylabel("bytes kept per sequence")
    return fig
