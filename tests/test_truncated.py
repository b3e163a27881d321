"""rnnbook.truncated: the delayed-recall task against its definition, the
chunked training loop against a slow whole-stream reference, bad input."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnbook.truncated import (
    Recaller,
    accuracy,
    delayed_recall,
    train_chunked,
)


def test_delayed_recall_targets_are_the_inputs_gap_steps_back():
    inputs, targets, mask = delayed_recall(
        5, 30, 4, torch.Generator().manual_seed(0)
    )
    assert inputs.shape == (5, 30, 1) and targets.shape == (5, 30)
    assert set(inputs.unique().tolist()) == {-1.0, 1.0}
    bits = (inputs[..., 0] + 1) / 2  # back to 0/1
    for t in range(30):  # the definition, one step at a time
        assert bool(mask[0, t]) == (t >= 4)
        if t >= 4:
            assert torch.equal(targets[:, t], bits[:, t - 4])


def test_delayed_recall_is_decided_by_the_generator():
    a = delayed_recall(3, 10, 2, torch.Generator().manual_seed(7))
    b = delayed_recall(3, 10, 2, torch.Generator().manual_seed(7))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    "args,error",
    [
        ((0, 10, 2), ValueError),
        ((3, 2, 2), ValueError),  # T must exceed the gap
        ((3, 10, 0), ValueError),
        ((True, 10, 2), TypeError),
        ((3, 10.0, 2), TypeError),
        ((3, 10, "2"), TypeError),
    ],
)
def test_delayed_recall_rejects_bad_sizes(args, error):
    with pytest.raises(error):
        delayed_recall(*args, torch.Generator())


def test_delayed_recall_needs_a_generator():
    with pytest.raises(TypeError, match="generator"):
        delayed_recall(3, 10, 2, 0)


def test_numpy_integer_sizes_are_accepted():
    inputs, _, _ = delayed_recall(
        np.int64(2), np.int32(6), np.int8(1), torch.Generator()
    )
    assert inputs.shape == (2, 6, 1)


def test_recaller_carries_its_state_across_chunks():
    """Two chunks with the state carried equal one run over the whole."""
    torch.manual_seed(0)
    model = Recaller(6)
    inputs = torch.randn(2, 10, 1)
    whole, h_whole = model(inputs)
    first, h = model(inputs[:, :4])
    second, h = model(inputs[:, 4:], h)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(h, h_whole)
    assert whole.shape == (2, 10) and h.shape == (1, 2, 6)


def test_accuracy_counts_masked_steps_only():
    class Fixed(torch.nn.Module):
        def forward(self, inputs):
            return inputs[..., 0], None  # logit = input

    inputs = torch.tensor([[[1.0], [-1.0], [1.0], [1.0]]])
    targets = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[False, True, True, True]])
    assert accuracy(Fixed(), inputs, targets, mask) == pytest.approx(2 / 3)


def _slow_chunked(chunk, gap, length, seed):
    """One round of chunked training, written out: the reference.

    Rebuilds the same initial model and batch as train_chunked (same
    SeedSequence streams) and returns the weights after one round.
    """
    streams = np.random.SeedSequence(seed).spawn(3)
    seeds = [int(s.generate_state(1)[0]) for s in streams]
    torch.manual_seed(seeds[0])
    model = Recaller(4)
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs, targets, mask = delayed_recall(
        2, length, gap, torch.Generator().manual_seed(seeds[1])
    )
    h = None
    for start in range(0, length, chunk):
        end = min(start + chunk, length)
        logits, h = model(inputs[:, start:end], h)
        h = h.detach()
        m = mask[:, start:end]
        if m.any():
            loss = F.binary_cross_entropy_with_logits(
                logits[m], targets[:, start:end][m]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def test_train_chunked_is_paired_reproducible_and_leaves_global_rng():
    state = torch.get_rng_state()
    kwargs = dict(gap=2, rounds=2, batch=2, length=12, hidden_size=4)
    a = train_chunked(3, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    b = train_chunked(3, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2,) and np.all((0 <= a) & (a <= 1))


def test_train_chunked_steps_match_the_slow_reference(monkeypatch):
    """Weights after one round equal a written-out loop's (chunk <= gap:
    the first chunk carries no loss and must be skipped, not NaN)."""
    import rnnbook.truncated as truncated

    trained = {}
    original = truncated.accuracy

    def spy(model, *test_set):
        trained["model"] = model
        return original(model, *test_set)

    monkeypatch.setattr(truncated, "accuracy", spy)
    train_chunked(
        3, gap=4, rounds=1, batch=2, length=13, hidden_size=4, seed=5
    )
    reference = _slow_chunked(3, gap=4, length=13, seed=5)
    for (name, ours), ref in zip(
        trained["model"].named_parameters(), reference.parameters()
    ):
        assert torch.isfinite(ours).all(), name
        torch.testing.assert_close(ours, ref, msg=name)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"chunk": 0}, ValueError),
        ({"chunk": True}, TypeError),
        ({"gap": 200}, ValueError),
        ({"lr": float("nan")}, ValueError),
        ({"lr": -1.0}, ValueError),
        ({"lr": True}, TypeError),
        ({"lr": "3e-3"}, TypeError),
        ({"seed": -1}, ValueError),
        ({"rounds": 1.0}, TypeError),
    ],
)
def test_train_chunked_rejects_bad_settings(kwargs, error):
    settings = dict(chunk=2, gap=1, rounds=1, batch=2, length=4)
    settings.update(kwargs)
    with pytest.raises(error):
        train_chunked(**settings)
