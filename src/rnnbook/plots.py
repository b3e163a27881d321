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
    ax_err.set_ylabel(r"max$_k\,|y_k - y(k\Delta)|$")
    ax_err.legend(fontsize=8)
    return fig


def plot_timescales(kernels, rate):
    """Kernels of one continuous system sampled with different steps.

    Args:
        kernels: ``{dt: K}``, each K a (L,) kernel, drawn as K[l] / K[0]
            against the lag l on a log axis.
        rate: the decay rate |lambda| of the system, to mark each kernel's
            e-folding lag 1 / (|lambda| dt).
    """
    fig, ax = figure(width=5.6)
    colors = [COLORS["ssm"], "#DA8BC3", COLORS["vanilla"], COLORS["lstm"]]
    for (dt, K), color in zip(kernels.items(), colors):
        lags = range(1, len(K) + 1)
        ax.semilogx(lags, K / K[0], color=color, label=rf"$\Delta = {dt:g}$")
        ax.axvline(1 + 1 / (rate * dt), color=color, ls=":", lw=1)
    ax.axhline(0.36788, color="k", ls="--", lw=1, label="1/e")
    ax.set_xlabel("lag l + 1 (steps)")
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


# ------------------------------------------------------ Chapter 7: Mamba
