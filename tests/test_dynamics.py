"""rnnbook.dynamics: the single sigmoid unit against closed forms, a loop
written here, and finite differences."""

import math

import numpy as np
import pytest
import torch

from rnnbook import dynamics


def _run(w, b, T, x0):
    x = x0
    for _ in range(T):
        x = w / (1 + math.exp(-x)) + b
    return x


def test_unit_loss_equals_a_plain_loop_on_grids_and_tensors():
    w, b = np.array([[4.0, 5.5]]), np.array([[-2.0, -3.0]])
    grid = dynamics.unit_loss(w, b, T=7, x0=0.2, target=0.4)
    for i in range(2):
        expected = (_run(w[0, i], b[0, i], 7, 0.2) - 0.4) ** 2
        assert grid[0, i] == pytest.approx(expected, rel=1e-12)
    tensor = dynamics.unit_loss(
        torch.tensor(5.5, dtype=torch.float64),
        torch.tensor(-3.0, dtype=torch.float64),
        T=7,
        x0=0.2,
        target=0.4,
    )
    assert tensor.item() == pytest.approx(grid[0, 1], rel=1e-12)


def test_unit_loss_gradient_matches_central_differences():
    w, b, h = 5.0, -2.8, 1e-6
    grad = dynamics.unit_loss_gradient(w, b, T=20)
    for i, (dw, db) in enumerate(((h, 0), (0, h))):
        up = dynamics.unit_loss(w + dw, b + db, T=20)
        down = dynamics.unit_loss(w - dw, b - db, T=20)
        assert grad[i].item() == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_fixed_points_are_fixed_and_classified_by_the_slope():
    stable, unstable = dynamics.fixed_points(
        5.0, np.array([-2.5, -1.0]), np.linspace(-10, 10, 20001)
    )
    for b, x in np.concatenate([stable, unstable]):
        assert 5.0 / (1 + math.exp(-x)) + b == pytest.approx(x, abs=1e-6)
    assert sorted(stable[:, 0]) == [-2.5, -2.5, -1.0]  # bistable at -2.5
    assert list(unstable[:, 0]) == [-2.5]


def test_fold_biases_are_where_the_slope_is_one_and_bracket_bistability():
    low, high = dynamics.fold_biases(5.0)
    for b in (low, high):  # a double root: f = 0 and f' = 0 at one x
        xs = np.linspace(-10, 10, 200001)
        f = 5.0 / (1 + np.exp(-xs)) + b - xs
        assert np.abs(f).min() < 1e-6
    with pytest.raises(ValueError, match="w"):
        dynamics.fold_biases(3.0)  # w <= 4: never bistable


def test_find_wall_brackets_the_jump_and_checks_its_input():
    w_wall, high, low = dynamics.find_wall(-3.0, 5.6, 5.7)
    assert high > 4 * low
    eps = 1e-9
    assert dynamics.unit_loss(w_wall - eps, -3.0) > (high + low) / 2
    assert dynamics.unit_loss(w_wall + 2 * eps, -3.0) < (high + low) / 2
    with pytest.raises(ValueError, match="E\\(w_high\\) > E\\(w_low\\)"):
        dynamics.find_wall(-3.0, 5.7, 5.6)
    with pytest.raises(TypeError, match="T"):
        dynamics.unit_loss(5.0, -3.0, T=2.5)
    with pytest.raises(ValueError, match="finite"):
        dynamics.unit_loss_gradient(math.nan, -3.0)


def test_wall_tangent_follows_the_wall_and_checks_db():
    b, eps = -3.0, 1e-3
    tangent = dynamics.wall_tangent(b, 5.6, 5.7)
    assert np.linalg.norm(tangent) == pytest.approx(1.0, abs=1e-15)
    assert tangent[1] > 0
    # a step eps along the tangent lands on the wall found at b + eps*t_b
    w_wall, _, _ = dynamics.find_wall(b, 5.6, 5.7)
    w_next, _, _ = dynamics.find_wall(b + eps * tangent[1], 5.6, 5.7)
    assert w_wall + eps * tangent[0] == pytest.approx(w_next, abs=1e-6)
    # a finer chord gives the same direction to O(db^2)
    finer = dynamics.wall_tangent(b, 5.6, 5.7, db=1e-3)
    assert np.abs(finer - tangent).max() < 1e-3
    for bad, error in (
        (0.0, ValueError),
        (-1.0, ValueError),
        ("x", TypeError),
    ):
        with pytest.raises(error, match="db"):
            dynamics.wall_tangent(b, 5.6, 5.7, db=bad)
