"""rnnbook.tasks: each sequence decoded and checked against the definition."""

import numpy as np
import pytest
import torch

from rnnbook.tasks import CLASSES, SYMBOLS, adding_problem, temporal_order


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("T", [10, 37, 200])
def test_temporal_order_matches_its_definition(T):
    inputs, targets = temporal_order(500, T, gen())
    assert (
        inputs.shape == (500, T, len(SYMBOLS))
        and inputs.dtype == torch.float32
    )
    assert targets.shape == (500,) and targets.dtype == torch.int64
    assert torch.all(inputs.sum(-1) == 1)  # one symbol per step, one-hot
    symbols = inputs.argmax(-1)
    for seq, label in zip(symbols.tolist(), targets.tolist()):
        relevant = [
            (t, SYMBOLS[s]) for t, s in enumerate(seq) if SYMBOLS[s] in "XY"
        ]
        assert len(relevant) == 2
        (t1, s1), (t2, s2) = relevant
        assert T // 10 <= t1 < 2 * T // 10 and 5 * T // 10 <= t2 < 6 * T // 10
        assert CLASSES[label] == s1 + s2
    assert set(targets.tolist()) == {0, 1, 2, 3}


def test_adding_problem_matches_its_definition():
    T = 30
    inputs, targets = adding_problem(2000, T, gen())
    assert inputs.shape == (2000, T, 2) and targets.shape == (2000,)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert values.min() >= -1 and values.max() <= 1
    assert torch.all(markers.sum(1) == 2) and torch.all(
        (markers == 0) | (markers == 1)
    )
    first = markers.argmax(1)  # the earlier marker
    last = T - 1 - markers.flip(1).argmax(1)
    assert (
        torch.all(first < 10)
        and torch.all(last < T // 2 - 1)
        and torch.all(first < last)
    )
    expected = 0.5 + (values * markers).sum(1) / 4
    torch.testing.assert_close(targets, expected)
    # every admissible position is used: the second marker is uniform over
    # [0, T//2 - 1) without the first
    assert set(last.tolist()) == set(range(1, T // 2 - 1))
    # predicting 0.5 costs Var(X1 + X2) / 16 = 1/24
    assert abs((targets - 0.5).pow(2).mean().item() - 1 / 24) < 0.004


def test_same_generator_seed_same_data_and_different_seed_different_data():
    for task in (temporal_order, adding_problem):
        a, b, c = task(8, 20, gen(3)), task(8, 20, gen(3)), task(8, 20, gen(4))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize(
    "task, n, T, match",
    [
        (temporal_order, 0, 20, "n to be an int >= 1"),
        (temporal_order, 4, 9, "T to be an int >= 10"),
        (adding_problem, 4, 5, "T to be an int >= 6"),
        (adding_problem, 0, 20, "n to be an int >= 1"),
        (temporal_order, 4, 0, "T to be an int >= 10"),
        (adding_problem, 4, 0, "T to be an int >= 6"),
    ],
)
def test_bad_sizes_are_rejected(task, n, T, match):
    with pytest.raises(ValueError, match=match):
        task(n, T, gen())


@pytest.mark.parametrize("task", [temporal_order, adding_problem])
def test_sizes_of_the_wrong_type_raise_type_error(task):
    for n, T in ((4, 20.0), ("4", 20), (True, 20), (4, None)):
        with pytest.raises(TypeError, match="to be an int"):
            task(n, T, gen())


@pytest.mark.parametrize("task", [temporal_order, adding_problem])
def test_numpy_integer_sizes_are_accepted(task):
    inputs, targets = task(np.int64(3), np.int32(20), gen(1))
    reference = task(3, 20, gen(1))
    assert torch.equal(inputs, reference[0])
    assert torch.equal(targets, reference[1])


def test_generator_is_required():
    with pytest.raises(TypeError, match="torch.Generator"):
        temporal_order(4, 20, generator=0)
