"""Interactive explorers for the chapters (ipywidgets), each with a static twin.

A widget only runs in a live kernel; the book's HTML shows the static figure drawn by
the same plotting function, so a reader of the web page loses nothing.
"""

import math

import matplotlib.pyplot as plt
import torch

from rnnbook.gradients import state_gradient_norms

GAMMA = {"linear": 1.0, "tanh": 1.0, "sigmoid": 0.25}
"""The bound ``gamma`` on each activation's derivative (Chapter 2, eq. ``ch2-bound``)."""


def plot_gradient_decay(ax, rho, T, activation, hidden_size=32, seed=0):
    """Draw ``||dh_T/dh_k||`` (in one direction) against the gap ``T - k`` for ``W_hh = rho Q``.

    ``Q`` is a random orthogonal matrix, the inputs are standard normal, ``W_xh`` has
    entries of size ``1/sqrt(H)``. The dashed line is the bound ``(rho gamma)^(T-k)``.

    Args:
        ax: a matplotlib axes.
        rho: the spectral radius (here also the largest singular value) of ``W_hh``.
        T: the sequence length.
        activation: ``"linear"``, ``"tanh"`` or ``"sigmoid"``.
        hidden_size: ``H``.
        seed: seeds ``Q``, ``W_xh`` and the inputs.

    Returns:
        The norms, a tensor of shape ``(T+1,)`` indexed by ``k``.
    """
    if activation not in GAMMA:
        raise ValueError(
            f"expected activation to be one of {sorted(GAMMA)}, got {activation!r}"
        )
    g = torch.Generator().manual_seed(seed)
    H = hidden_size
    Q, _ = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))
    W_xh = torch.randn(H, 1, generator=g, dtype=torch.float64) / math.sqrt(H)
    xs = torch.randn(8, T, 1, generator=g, dtype=torch.float64)
    norms = state_gradient_norms(
        rho * Q, W_xh, torch.zeros(H, dtype=torch.float64), xs, activation
    )
    gaps = torch.arange(T, -1, -1)
    ax.semilogy(gaps, norms, label=f"measured, {activation}")
    ax.semilogy(
        gaps,
        (rho * GAMMA[activation]) ** gaps.double(),
        "k--",
        lw=1,
        label=r"bound $(\lambda_1\gamma)^{T-k}$",
    )
    ax.set_xlabel("gap $T-k$ (steps)")
    ax.set_ylabel(r"$\|u\,\partial h_T/\partial h_k\|$")
    ax.set_title(rf"$\rho = {rho:.2f}$, {activation}")
    ax.legend(loc="lower left")
    return norms


def gradient_decay_explorer():
    """Sliders for the spectral radius, the sequence length and the activation.

    Returns:
        An ``ipywidgets.interactive`` widget; display it as a cell's last expression.
    """
    import ipywidgets as widgets

    def redraw(rho, T, activation):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        plot_gradient_decay(ax, rho, T, activation)
        plt.show()

    return widgets.interactive(
        redraw,
        rho=widgets.FloatSlider(
            value=1.0,
            min=0.5,
            max=1.5,
            step=0.05,
            description="spectral radius",
        ),
        T=widgets.IntSlider(
            value=60, min=10, max=200, step=10, description="length T"
        ),
        activation=widgets.Dropdown(
            options=list(GAMMA), value="tanh", description="activation"
        ),
    )
