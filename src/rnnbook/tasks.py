"""Seeded synthetic sequence tasks with long-range dependencies (Chapters 2-3).

Both tasks are those of Hochreiter & Schmidhuber (1997), which Pascanu,
Mikolov & Bengio (2013) use to test what plain RNNs can learn. Each answer
depends on a few inputs placed far from the end of the sequence; everything
else is a distractor, so the gap the gradient must cross grows with the
sequence length ``T``.

The letters follow the package's one glossary (in :mod:`rnnbook` and on the
notation page); ``n`` is the number of sequences, the batch ``B``. Tensors
are batch-first, inputs ``(n, T, D)``. Every draw comes from the
``torch.Generator`` passed in, so a seed fixes the data.
"""

import torch

from rnnbook._checks import check_generator, check_int

SYMBOLS = ("a", "b", "c", "d", "X", "Y")
"""The temporal-order alphabet: four distractors, then the two relevant."""

CLASSES = ("XX", "XY", "YX", "YY")
"""Temporal-order classes: the two relevant symbols in order of appearance."""


def _check_sizes(n, T, min_T, task):
    """``(n, T)`` as ints, ``n >= 1`` and ``T >= min_T``, else an error."""
    try:
        return check_int("n", n, 1), check_int("T", T, min_T)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{task}: {err}") from None


def _check_generator(generator, task):
    try:
        check_generator("generator", generator)
    except TypeError as err:
        raise TypeError(f"{task}: {err}") from None


def _randint(low, high, n, generator):
    """``n`` integers drawn uniformly from ``[low, high)``, shape ``(n,)``."""
    return torch.randint(low, high, (n,), generator=generator)


def temporal_order(n, T, generator):
    """The temporal-order problem: in which order did X and Y appear?

    Each sequence is ``T`` symbols. Two positions hold a relevant symbol,
    X or Y: ``t1`` drawn uniformly from ``[T/10, 2T/10)`` and ``t2`` from
    ``[5T/10, 6T/10)`` (integer parts). Every other position holds a
    distractor drawn uniformly from ``a, b, c, d``. The target is one of
    four classes, the relevant symbols in order: ``XX, XY, YX, YY`` (labels
    0-3). The network reads the whole sequence and answers at the end, so
    the information it needs lies at least ``0.4 T`` steps back.

    Worked example (``T = 10``; ``t1`` in ``[1, 2)``, ``t2`` in ``[5, 6)``)::

        symbols  c X a d b Y b a c d
        target   XY  -> label 1

    Args:
        n: number of sequences, at least 1.
        T: sequence length, at least 10 so that both position ranges are
            non-empty.
        generator: a seeded ``torch.Generator``; it alone decides the data.

    Returns:
        ``(inputs, targets)``: ``inputs`` of shape ``(n, T, 6)``, one-hot
        over :data:`SYMBOLS`, float32; ``targets`` of shape ``(n,)``, int64
        labels in 0..3 indexing :data:`CLASSES`.
    """
    n, T = _check_sizes(n, T, 10, "temporal_order")
    _check_generator(generator, "temporal_order")
    symbols = _randint(0, 4, n * T, generator).reshape(
        n, T
    )  # (n, T) distractors a-d
    first = _randint(0, 2, n, generator)  # 0 = X, 1 = Y
    second = _randint(0, 2, n, generator)
    t1 = _randint(T // 10, 2 * T // 10, n, generator)
    t2 = _randint(5 * T // 10, 6 * T // 10, n, generator)
    rows = torch.arange(n)
    symbols[rows, t1] = 4 + first
    symbols[rows, t2] = 4 + second
    inputs = torch.nn.functional.one_hot(
        symbols, len(SYMBOLS)
    ).float()  # (n, T, 6)
    return inputs, 2 * first + second


def adding_problem(n, T, generator):
    """The adding problem: report the sum of the two marked values.

    Each step carries two numbers: a value drawn uniformly from ``[-1, 1]``
    and a marker, 1 at exactly two positions and 0 elsewhere. The first
    marked position is drawn uniformly from the first ten
    (``[0, min(10, T//2 - 1))``), the second from the first ``T//2 - 1``
    positions, different from the first. The target, read at the end, is
    ``0.5 + (X1 + X2) / 4`` where ``X1, X2`` are the marked values; it lies
    in ``[0, 1]``. Predicting the constant 0.5 has mean squared error
    ``Var(X1 + X2) / 16 = 1/24``.

    Worked example (``T = 8``; both markers in ``[0, 3)``)::

        values   0.2 -0.6  0.9  0.1 -0.3  0.5  0.0  0.7
        markers  1    0    1    0    0    0    0    0
        target   0.5 + (0.2 + 0.9) / 4 = 0.775

    Args:
        n: number of sequences, at least 1.
        T: sequence length, at least 6 so that two distinct markers fit in
            the first half.
        generator: a seeded ``torch.Generator``; it alone decides the data.

    Returns:
        ``(inputs, targets)``: ``inputs`` of shape ``(n, T, 2)`` (value,
        marker), float32; ``targets`` of shape ``(n,)``, float32.
    """
    n, T = _check_sizes(n, T, 6, "adding_problem")
    _check_generator(generator, "adding_problem")
    half = T // 2 - 1  # the second marker lies in [0, half)
    values = torch.rand(n, T, generator=generator) * 2 - 1  # (n, T)
    i1 = _randint(0, min(10, half), n, generator)
    i2 = _randint(0, half - 1, n, generator)
    i2 = i2 + (i2 >= i1).long()  # uniform over [0, half) without i1
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, i1] = 1.0
    markers[rows, i2] = 1.0
    targets = 0.5 + (values[rows, i1] + values[rows, i2]) / 4
    return torch.stack([values, markers], dim=-1), targets
