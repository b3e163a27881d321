"""One sigmoid unit as a dynamical system: fixed points and walls (Ch. 2).

Pascanu, Mikolov & Bengio (2013, §2.2-2.3) study the smallest recurrent
network, one unit with no input,

.. math::

    x_t = w\\, \\sigma(x_{t-1}) + b, \\qquad
    \\sigma(x) = 1 / (1 + e^{-x}),

whose state is drawn to attractors. Its fixed points solve
``x = w sigma(x) + b``; one is stable when ``|w sigma'(x)| < 1``. Where a
change of ``(w, b)`` moves the boundary between two basins across the
initial state, the state after many steps jumps, and the loss has a wall.
The functions take NumPy arrays (a whole grid at once) or float64 tensors
(for autograd).
"""

import numpy as np
import torch

from rnnbook._checks import check_int, check_real


def _sigmoid(x):
    if isinstance(x, torch.Tensor):
        return torch.sigmoid(x)
    return 1 / (1 + np.exp(-x))


def unit_loss(w, b, T=50, x0=0.5, target=0.7):
    """``E(w, b) = (x_T - target)^2`` after ``T`` steps from ``x_0 = x0``.

    Args:
        w, b: the weight and the bias: floats, NumPy arrays of one shape
            (a grid), or tensors (differentiable).
        T: the number of steps, at least 1.
        x0, target: the initial state and the target of ``x_T``.

    Returns:
        ``E`` of the shape of ``w`` and ``b``.
    """
    T = check_int("T", T, 1)
    x = x0 + 0 * w  # the shape (and type) of w
    for _ in range(T):
        x = w * _sigmoid(x) + b
    return (x - target) ** 2


def unit_loss_gradient(w, b, **kwargs):
    """``(dE/dw, dE/db)`` at one point, by autograd in float64.

    Args:
        w, b: floats; ``kwargs`` go to :func:`unit_loss`.

    Returns:
        A float64 tensor of shape ``(2,)``.
    """
    w, b = check_real("w", w), check_real("b", b)
    p = torch.tensor([w, b], dtype=torch.float64, requires_grad=True)
    return torch.autograd.grad(unit_loss(p[0], p[1], **kwargs), p)[0]


def fixed_points(w, biases, x_grid):
    """The fixed points of ``x -> w sigma(x) + b`` for each bias, by sign.

    A root of ``w sigma(x) + b - x`` is a grid point where it is zero, or
    lies between two neighbouring grid points where its sign changes and
    is placed by linear interpolation; it is stable when
    ``w sigma'(x*) < 1`` (here ``w sigma' > 0``, so ``|.| < 1`` is the
    same test).

    Args:
        w: the weight, a positive float.
        biases: 1-d array of biases ``b``.
        x_grid: 1-d increasing array of states to search.

    Returns:
        ``(stable, unstable)``: arrays of shape ``(n, 2)`` of ``(b, x*)``.
    """
    w = check_real("w", w, low=0.0)
    stable, unstable = [], []
    for b in np.asarray(biases, dtype=np.float64):
        f = w * _sigmoid(x_grid) + b - x_grid
        roots = list(x_grid[f == 0])  # exactly on the grid
        for i in np.nonzero(f[:-1] * f[1:] < 0)[0]:  # between two points
            dx = x_grid[i + 1] - x_grid[i]
            roots.append(x_grid[i] - f[i] * dx / (f[i + 1] - f[i]))
        for x_star in sorted(roots):
            s = _sigmoid(x_star)
            found = stable if w * s * (1 - s) < 1 else unstable
            found.append((b, x_star))
    return np.array(stable).reshape(-1, 2), np.array(unstable).reshape(-1, 2)


def fold_biases(w):
    """The two biases where a stable and the unstable fixed point merge.

    There the map's slope is one, ``w s (1 - s) = 1`` with
    ``s = sigma(x)``, so ``s = (1 +- sqrt(1 - 4/w)) / 2``, ``x = logit(s)``
    and ``b = x - w s``. Bistability needs ``w > 4``.

    Returns:
        The two biases, in increasing order (a NumPy array).
    """
    w = check_real("w", w, low=4.0)
    s = (1 + np.array([1.0, -1.0]) * np.sqrt(1 - 4 / w)) / 2
    return np.sort(np.log(s / (1 - s)) - w * s)


def find_wall(b, w_high, w_low, iters=60, **kwargs):
    """Bisect for the ``w`` where ``E(w, b)`` jumps between two plateaus.

    Args:
        b: the bias, fixed.
        w_high, w_low: weights on the high and on the low plateau.
        iters: halvings of the interval (60 reach float64's resolution).
        kwargs: passed to :func:`unit_loss`.

    Returns:
        ``(w_wall, E_high, E_low)``: the last weight on the high plateau
        and the loss at the two starting weights.
    """
    w_high, w_low = check_real("w_high", w_high), check_real("w_low", w_low)
    b = check_real("b", b)
    E_high = unit_loss(w_high, b, **kwargs)
    E_low = unit_loss(w_low, b, **kwargs)
    if not E_high > E_low:
        raise ValueError(
            f"expected E(w_high) > E(w_low), got {E_high} and {E_low}"
        )
    middle = (E_high + E_low) / 2
    for _ in range(check_int("iters", iters, 1)):
        w = (w_high + w_low) / 2
        if unit_loss(w, b, **kwargs) > middle:
            w_high = w
        else:
            w_low = w
    return w_high, E_high, E_low


def wall_tangent(b, w_high, w_low, db=0.01, **kwargs):
    """The direction of the wall in the ``(w, b)`` plane, at bias ``b``.

    :func:`find_wall` bisects for the wall at ``b - db`` and at ``b + db``
    (between the same two weights); the chord between the two points,
    normalised, is the tangent, accurate to ``O(db^2)``.

    Args:
        b: the bias where the tangent is wanted.
        w_high, w_low: weights on the high and on the low plateau at every
            bias in ``[b - db, b + db]``.
        db: the half-width of the chord, positive.
        kwargs: passed to :func:`unit_loss`.

    Returns:
        A unit vector ``(dw, db)``, a NumPy array of shape ``(2,)`` with a
        positive ``db`` component.
    """
    b, db = check_real("b", b), check_real("db", db, low=0.0)
    if db == 0:
        raise ValueError("expected db > 0, got 0")
    w_below, _, _ = find_wall(b - db, w_high, w_low, **kwargs)
    w_above, _, _ = find_wall(b + db, w_high, w_low, **kwargs)
    chord = np.array([w_above - w_below, 2 * db])
    return chord / np.linalg.norm(chord)
