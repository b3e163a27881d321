"""Interactive explorers for the chapters (ipywidgets), each with a static
twin.

A widget only runs in a live kernel; the book's HTML shows a static figure
drawn by the same plotting function, so a reader of the web page loses
nothing.
"""

import math

import matplotlib.pyplot as plt
import torch

from rnnbook import plots
from rnnbook._checks import check_choice, check_int, check_real
from rnnbook.gradients import state_gradient_norms

GAMMA = {"linear": 1.0, "tanh": 1.0, "sigmoid": 0.25}
"""The bound ``gamma`` on each activation's slope (Chapter 2)."""


def decay_curve(rho, T, activation, hidden_size=32, seed=0):
    """``||u dh_T/dh_k||`` for ``k = 0..T`` when ``W_hh = rho Q``.

    ``Q`` is a random orthogonal matrix, the inputs ``(8, T, 1)`` are
    standard normal, ``W_xh`` is drawn from ``N(0, 1/H)`` (standard
    deviation ``1/sqrt(H)``), ``b = 0``; all in float64, drawn from
    ``seed``.

    Args:
        rho: the spectral radius (here also the largest singular value) of
            ``W_hh``, positive.
        T: the sequence length, at least 1.
        activation: ``"linear"``, ``"tanh"`` or ``"sigmoid"``.
        hidden_size: ``H``.
        seed: seeds ``Q``, ``W_xh`` and the inputs.

    Returns:
        The norms, a tensor of shape ``(T+1,)`` indexed by ``k``.
    """
    rho = check_real("rho", rho, low=0.0)
    T = check_int("T", T, 1)
    check_choice("activation", activation, GAMMA)
    H = check_int("hidden_size", hidden_size, 1)
    g = torch.Generator().manual_seed(check_int("seed", seed, 0))
    Q, _ = torch.linalg.qr(torch.randn(H, H, generator=g, dtype=torch.float64))
    W_xh = torch.randn(H, 1, generator=g, dtype=torch.float64) / math.sqrt(H)
    xs = torch.randn(8, T, 1, generator=g, dtype=torch.float64)
    b = torch.zeros(H, dtype=torch.float64)
    return state_gradient_norms(rho * Q, W_xh, b, xs, activation)


def gradient_decay_explorer():
    """Sliders for the spectral radius, the sequence length and the
    activation; redraws :func:`decay_curve` and its bound.

    Returns:
        An ``ipywidgets.interactive`` widget; display it as a cell's last
        expression.
    """
    import ipywidgets as widgets

    def redraw(rho, T, activation):
        fig, ax = plots.figure(width=6.4, height=3.6)
        norms = decay_curve(rho, T, activation)
        plots.gradient_decay(ax, norms, rho, activation, GAMMA[activation])
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
