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


# ------------------------------------ Chapter 7: selective copying


def test_selective_copying_matches_its_definition():
    from rnnbook.tasks import SELECTIVE_COPYING_NOISE, selective_copying

    n, T, K, V = 400, 20, 5, 7
    batch = selective_copying(n, T, K, gen(2), vocab_size=V)
    tokens, targets, mask = batch
    for t in batch:
        assert t.shape == (n, T + K)
    assert tokens.dtype == targets.dtype == torch.int64
    assert mask.dtype == torch.bool
    marker = V - 1
    for row, target, m in zip(
        tokens.tolist(), targets.tolist(), mask.tolist()
    ):
        context, tail = row[:T], row[T:]
        data = [s for s in context if s != SELECTIVE_COPYING_NOISE]
        assert len(data) == K and all(1 <= s <= V - 2 for s in data)
        assert tail == [marker] * K
        assert target[T:] == data  # the data tokens, in order
        assert target[:T] == [SELECTIVE_COPYING_NOISE] * T
        assert m == [False] * T + [True] * K
    # every data symbol and every context position is used
    data = tokens[:, :T][tokens[:, :T] != 0]
    assert set(data.tolist()) == set(range(1, V - 1))
    used = (tokens[:, :T] != 0).any(0)
    assert bool(used.all())
    # positions are uniform: each is occupied with probability K / T, so
    # about n K / T = 100 times here (binomial, standard deviation 8.7)
    counts = (tokens[:, :T] != 0).sum(0)
    assert int(counts.min()) > 60 and int(counts.max()) < 140


def test_selective_copying_is_seeded_and_spacing_varies():
    from rnnbook.tasks import selective_copying

    a = selective_copying(16, 30, 4, gen(5))
    b = selective_copying(16, 30, 4, gen(5))
    c = selective_copying(16, 30, 4, gen(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.tokens, c.tokens)
    # the gaps between data tokens differ from row to row: no fixed delay
    gaps = {
        tuple(torch.diff(torch.nonzero(row[:30]).flatten()).tolist())
        for row in a.tokens
    }
    assert len(gaps) > 1


def test_selective_copying_edge_sizes_and_bad_input():
    from rnnbook.tasks import selective_copying

    full = selective_copying(3, 4, 4, gen(), vocab_size=3)  # no noise left
    assert torch.equal(full.tokens[:, :4], torch.ones(3, 4, dtype=torch.long))
    assert torch.equal(full.targets[:, 4:], full.tokens[:, :4])
    np_sizes = selective_copying(np.int64(2), np.int32(9), 3, gen(1))
    assert torch.equal(np_sizes.tokens, selective_copying(2, 9, 3, gen(1))[0])
    for kwargs, match in (
        (dict(n=0, T=8, K=2), "n to be an int >= 1"),
        (dict(n=2, T=3, K=4), "T to be an int >= 4"),
        (dict(n=2, T=8, K=0), "K to be an int >= 1"),
        (dict(n=2, T=8, K=2, vocab_size=2), "vocab_size to be an int >= 3"),
    ):
        with pytest.raises(ValueError, match=match):
            selective_copying(generator=gen(), **kwargs)
    with pytest.raises(TypeError, match="to be an int"):
        selective_copying(2, 8.0, 2, gen())
    with pytest.raises(TypeError, match="torch.Generator"):
        selective_copying(2, 8, 2, 0)
