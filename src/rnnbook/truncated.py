"""Truncated BPTT in practice: chunks with a carried state (Chapter 1).

A long stream is cut into chunks of ``chunk`` steps. The forward pass runs
over one chunk from the state the previous chunk ended in; the chunk's loss
is backpropagated (through at most ``chunk`` steps), the weights are
updated, and the final state is *detached* before it seeds the next chunk.
The state carries information across the whole stream; only the gradient
is cut. In Williams & Zipser's (1995) terms this is BPTT(h; h') with
``h = h' = chunk``: every ``h'`` steps, backpropagate ``h`` steps; in
Sutskever's (2013) thesis, ``k1 = k2 = chunk``. Williams & Peng (1990)
studied ``h' < h``, where chunks of backpropagation overlap, so that every
loss term gets at least ``h - h' + 1`` steps of history.

- :func:`delayed_recall`, a task whose answer lies exactly ``gap`` steps
  back;
- :class:`Recaller`, a vanilla tanh RNN with one logit per step;
- :func:`train_chunked`, truncated training in chunks, evaluated on whole
  sequences.

The letters (``B``, ``T``, ``H``) are those of the book's notation page and
of the :mod:`rnnbook` package docstring.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _int_at_least(name, value, low):
    """``value`` as an int >= ``low`` (numpy integers welcome, bools not)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"expected {name} to be an int >= {low}, "
            f"got {type(value).__name__} {value!r}"
        )
    if value < low:
        raise ValueError(f"expected {name} to be an int >= {low}, got {value}")
    return int(value)


def delayed_recall(n, T, gap, generator):
    """Random bits; the target at step ``t`` is the bit from ``gap`` earlier.

    The input at each step is a bit written as ``-1`` or ``+1``; the target
    at step ``t`` is the input bit of step ``t - gap`` (as 0 or 1). The
    first ``gap`` steps have no target and carry no loss (mask ``False``).
    Chance accuracy is 0.5; a network can do better only by remembering
    ``gap`` steps of its input.

    Worked example (``gap = 2``)::

        bits     1  0  0  1  1
        inputs  +1 -1 -1 +1 +1
        targets  -  -  1  0  0      ('-': mask False)

    Args:
        n: number of sequences ``B``, an int >= 1.
        T: sequence length, an int > ``gap``.
        gap: the delay, an int >= 1.
        generator: a seeded ``torch.Generator``; it alone decides the data.

    Returns:
        ``(inputs, targets, mask)``: ``inputs (B, T, 1)`` float32,
        ``targets (B, T)`` float32 in {0, 1}, ``mask (B, T)`` bool.
    """
    n = _int_at_least("n", n, 1)
    gap = _int_at_least("gap", gap, 1)
    T = _int_at_least("T", T, gap + 1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "expected generator to be a torch.Generator, "
            f"got {type(generator).__name__}"
        )
    bits = torch.randint(0, 2, (n, T), generator=generator).float()
    inputs = (2 * bits - 1)[..., None]  # (B, T, 1)
    targets = torch.zeros(n, T)
    targets[:, gap:] = bits[:, :-gap]
    mask = torch.zeros(n, T, dtype=torch.bool)
    mask[:, gap:] = True
    return inputs, targets, mask


class Recaller(nn.Module):
    """A vanilla tanh RNN (``torch.nn.RNN``) with one logit per step.

    .. math::

        h_t = \\tanh(W_{hh} h_{t-1} + W_{xh} x_t + b), \\qquad
        y_t = w_{hy}^\\top h_t + b_y.

    Args:
        hidden_size: ``H``.
    """

    def __init__(self, hidden_size):
        super().__init__()
        hidden_size = _int_at_least("hidden_size", hidden_size, 1)
        self.rnn = nn.RNN(1, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, 1)

    def forward(self, inputs, h=None):
        """Logits ``(B, T)`` and the final state ``(1, B, H)``.

        Args:
            inputs: ``(B, T, 1)``.
            h: the state to start from, ``(1, B, H)``; ``None`` for zeros.
        """
        outputs, h = self.rnn(inputs, h)  # (B, T, H), (1, B, H)
        return self.readout(outputs)[..., 0], h  # (B, T)


def accuracy(model, inputs, targets, mask):
    """The fraction of masked steps where ``logit > 0`` matches the target."""
    with torch.no_grad():
        logits, _ = model(inputs)  # whole sequences, no truncation
    correct = (logits > 0).float() == targets
    return correct[mask].float().mean().item()


def _check_settings(chunk, gap, rounds, batch, length, hidden_size, lr, seed):
    """The integer settings of :func:`train_chunked` as ints; lr checked."""
    chunk = _int_at_least("chunk", chunk, 1)
    gap = _int_at_least("gap", gap, 1)
    rounds = _int_at_least("rounds", rounds, 1)
    batch = _int_at_least("batch", batch, 1)
    length = _int_at_least("length", length, gap + 1)
    hidden_size = _int_at_least("hidden_size", hidden_size, 1)
    seed = _int_at_least("seed", seed, 0)
    if gap >= 200:
        raise ValueError(f"expected gap < 200 (the test length), got {gap}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)):
        raise TypeError(f"expected lr to be a float, got {type(lr).__name__}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"expected lr to be finite and > 0, got {lr}")
    return chunk, gap, rounds, batch, length, hidden_size, seed


def _three_seeds(seed):
    """Three independent integer seeds spawned from ``SeedSequence(seed)``."""
    return tuple(
        int(stream.generate_state(1)[0])
        for stream in np.random.SeedSequence(seed).spawn(3)
    )


def train_chunked(
    chunk,
    gap,
    rounds=40,
    batch=32,
    length=400,
    hidden_size=32,
    lr=3e-3,
    seed=0,
):
    """Train a :class:`Recaller` on :func:`delayed_recall` in chunks.

    Each round draws ``batch`` streams of ``length`` steps and walks through
    them in chunks of ``chunk`` steps: forward from the carried state, the
    chunk's mean binary cross-entropy over its masked steps, backward,
    one Adam step, then ``h = h.detach()``. After every round the model is
    evaluated on 256 test sequences of 200 steps, run whole.

    The recurrent matrix starts at half of PyTorch's default draw, a
    forgetful start, so that memory has to be learned.

    Seeds: the initial weights, the training streams and the test set come
    from three independent streams spawned from ``SeedSequence(seed)``; the
    same ``seed`` gives the same weights and data for every ``chunk``, so a
    comparison of chunk lengths is paired.

    Args:
        chunk: steps per chunk, an int >= 1.
        gap: the task's delay, an int >= 1 and < 200.
        rounds: training rounds (batches), an int >= 1.
        batch, length, hidden_size: the streams' ``B`` and ``T`` and the
            model's ``H``.
        lr: Adam's learning rate, a finite float > 0.
        seed: an int >= 0.

    Returns:
        The test accuracy after each round, a float array ``(rounds,)``.
    """
    chunk, gap, rounds, batch, length, hidden_size, seed = _check_settings(
        chunk, gap, rounds, batch, length, hidden_size, lr, seed
    )
    init_seed, train_seed, test_seed = _three_seeds(seed)
    with torch.random.fork_rng(devices=[]):  # leaves the global RNG alone
        torch.manual_seed(init_seed)
        model = Recaller(hidden_size)
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(0.5)  # a forgetful start
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train = torch.Generator().manual_seed(train_seed)
    test = torch.Generator().manual_seed(test_seed)
    test_set = delayed_recall(256, 200, gap, test)
    accuracies = []
    for _ in range(rounds):
        inputs, targets, mask = delayed_recall(batch, length, gap, train)
        h = None
        for start in range(0, length, chunk):
            steps = slice(start, start + chunk)
            logits, h = model(inputs[:, steps], h)
            h = h.detach()  # carry the state forward, cut the gradient
            m = mask[:, steps]
            if not m.any():  # the first `gap` steps carry no loss
                continue
            loss = F.binary_cross_entropy_with_logits(
                logits[m], targets[:, steps][m]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracies.append(accuracy(model, *test_set))
    return np.array(accuracies)
