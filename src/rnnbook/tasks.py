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


# ------------------------------------------- Chapter 4: translation tasks
#
# Two sequence-to-sequence tasks, both generated offline. Sequences of
# symbols become padded integer tensors through a Vocab, which reserves
# three ids: PAD (padding, carries no loss), BOS (the decoder's first input)
# and EOS (the end of a sequence, which the decoder must learn to emit).
# (Imports here, not at the top, to keep this chapter's section in one block.)

import datetime  # noqa: E402
import functools  # noqa: E402
import numbers  # noqa: E402
from typing import NamedTuple  # noqa: E402


class Seq2SeqBatch(NamedTuple):
    """A padded encoder-decoder batch (``S`` source, ``T`` target length).

    ``src`` ``(B, S)`` is each source followed by EOS, then PAD;
    ``src_mask`` ``(B, S)`` is True at real positions (EOS included).
    ``tgt_in`` ``(B, T)`` is BOS followed by the target (the decoder's
    teacher-forced inputs) and ``tgt_out`` ``(B, T)`` the target followed
    by EOS (what it must predict); ``tgt_mask`` ``(B, T)`` is True where
    ``tgt_out`` carries a loss. Ids are int64, masks bool.
    """

    src: torch.Tensor
    src_mask: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    tgt_mask: torch.Tensor


class Vocab:
    """A symbol <-> id table with the special ids PAD = 0, BOS = 1, EOS = 2.

    Args:
        symbols: the task's symbols (strings), distinct; they get ids 3, 4, ...
    """

    PAD, BOS, EOS = 0, 1, 2
    SPECIALS = ("<pad>", "<s>", "</s>")

    def __init__(self, symbols):
        symbols = tuple(symbols)
        if not all(isinstance(s, str) for s in symbols):
            raise TypeError("expected the symbols to be strings")
        tokens = self.SPECIALS + symbols
        if len(set(tokens)) != len(tokens):
            raise ValueError(
                f"expected distinct symbols, none of them a special "
                f"{self.SPECIALS}, got "
                f"{len(tokens) - len(set(tokens))} repeats"
            )
        self.tokens = tokens
        self.index = {s: i for i, s in enumerate(tokens)}

    def __len__(self):
        return len(self.tokens)

    def __repr__(self):
        return f"Vocab({len(self)} tokens: 3 specials + {len(self) - 3})"

    def encode(self, symbols):
        """The ids of a sequence of symbols (no specials added)."""
        try:
            return [self.index[s] for s in symbols]
        except KeyError as err:
            raise ValueError(
                f"symbol {err.args[0]!r} is not in the vocabulary"
            )

    def decode(self, ids):
        """The symbols of ``ids`` up to the first EOS, PAD and BOS dropped."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if i == self.EOS:
                break
            if i not in (self.PAD, self.BOS):
                out.append(self.tokens[i])
        return out

    def pad(self, sequences, bos=False, eos=False):
        """Encode and pad: ``(ids (B, L) int64, mask (B, L) bool)``.

        BOS is prepended and EOS appended when asked; ``mask`` is True at
        every real position (the specials included), False at padding.
        """
        rows = [
            [self.BOS] * bos + self.encode(s) + [self.EOS] * eos
            for s in sequences
        ]
        if not rows:
            raise ValueError("expected at least one sequence, got none")
        L = max(len(r) for r in rows)
        ids = torch.full((len(rows), L), self.PAD, dtype=torch.int64)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r, dtype=torch.int64)
        mask = torch.arange(L) < torch.tensor([len(r) for r in rows])[:, None]
        return ids, mask

    def batch(self, pairs):
        """A :class:`Seq2SeqBatch` from ``(source, target)`` symbol pairs."""
        pairs = list(pairs)
        src, src_mask = self.pad([s for s, _ in pairs], eos=True)
        tgt_in, _ = self.pad([t for _, t in pairs], bos=True)
        tgt_out, tgt_mask = self.pad([t for _, t in pairs], eos=True)
        return Seq2SeqBatch(src, src_mask, tgt_in, tgt_out, tgt_mask)


REVERSAL_SOURCE = tuple("abcdefghijklmnopqrst")
"""The synthetic source language: 20 lower-case letters."""

REVERSAL_TARGET = tuple(
    "ABCDEFGHIJKLMNOPQRST"[(7 * i + 3) % 20] for i in range(20)
)
"""``REVERSAL_TARGET[i]`` translates ``REVERSAL_SOURCE[i]``: the permutation
``i -> (7 i + 3) mod 20`` of the upper-case letters (a -> D, b -> K, ...)."""

REVERSAL_VOCAB = Vocab(REVERSAL_SOURCE + REVERSAL_TARGET)
"""One vocabulary for both sides: 3 specials, 20 source, 20 target symbols."""


def reversal_examples(n, min_len, max_len, generator):
    """Pairs of the synthetic translation task: reverse, then translate.

    A source is ``L`` symbols drawn uniformly from :data:`REVERSAL_SOURCE`,
    with ``L`` uniform in ``[min_len, max_len]``; its translation is the
    source read backwards with every symbol mapped through the fixed
    permutation (:data:`REVERSAL_TARGET`). Output position ``t`` depends on
    source position ``L - 1 - t`` only: the ideal alignment is the
    anti-diagonal, and the first source symbol is needed last.

    Worked example (``L = 4``)::

        source  c a t s     (positions 0 1 2 3)
        target  J Q D R     s -> J, t -> Q, a -> D, c -> R

    Args:
        n: number of pairs. min_len, max_len: source lengths, ``1 <= min_len
            <= max_len``. generator: a seeded ``torch.Generator``.

    Returns:
        A list of ``n`` pairs ``(source, target)``, each a tuple of symbols.
    """
    _check_sizes(n, max_len, 1, "reversal_examples")
    _check_sizes(n, min_len, 1, "reversal_examples")
    _check_generator(generator, "reversal_examples")
    if min_len > max_len:
        raise ValueError(
            f"reversal_examples: expected min_len <= max_len, got "
            f"{min_len} > {max_len}"
        )
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=generator)
    symbols = torch.randint(0, 20, (n, max_len), generator=generator)
    pairs = []
    for row, L in zip(symbols.tolist(), lengths.tolist()):
        row = row[:L]
        source = tuple(REVERSAL_SOURCE[i] for i in row)
        target = tuple(REVERSAL_TARGET[i] for i in reversed(row))
        pairs.append((source, target))
    return pairs


def reversal_translation(n, min_len, max_len, generator):
    """A padded :class:`Seq2SeqBatch` of :func:`reversal_examples`."""
    return REVERSAL_VOCAB.batch(
        reversal_examples(n, min_len, max_len, generator)
    )


DATE_LOCALES = (
    "en_US",
    "en_GB",
    "fr_FR",
    "de_DE",
    "es_ES",
    "it_IT",
    "pt_PT",
    "nl_NL",
)
"""The languages of the date task (babel locale names)."""

DATE_FORMATS = ("short", "medium", "long", "full")
"""babel's (CLDR's) four standard date lengths, e.g. for ``fr_FR``:
``05/06/1990``, ``5 juin 1990``, ``5 juin 1990``, ``mardi 5 juin 1990``."""

DATE_EXCLUDED = (("en_US", "short"),)
"""Left out: ``en_US`` short is month first (``6/5/90``), ``es_ES`` short day
first (``5/6/90``), so the source alone could not tell June 5 from May 6."""

DATE_RANGE = ("1950-01-01", "2049-12-31")
"""The dates drawn (uniformly); two-digit years are unambiguous inside it."""


def _date_format(day, style, locale):
    from babel.dates import (
        format_date,
    )  # imported here: only Chapter 4 uses it

    return format_date(day, format=style, locale=locale)


def date_examples(n, generator, days=None):
    """Dates as people write them, in several languages, and their ISO form.

    A date is drawn uniformly from :data:`DATE_RANGE` (or from ``days``),
    a locale from
    :data:`DATE_LOCALES` and a format from :data:`DATE_FORMATS` (minus
    :data:`DATE_EXCLUDED`), and written with the Unicode CLDR data shipped
    in ``babel`` (no network). The target is ISO 8601, ``YYYY-MM-DD``. Both
    sides are sequences of characters.

    Worked example (1990-06-05)::

        fr_FR full   "mardi 5 juin 1990"        -> "1990-06-05"
        de_DE short  "05.06.90"                 -> "1990-06-05"
        en_US medium "Jun 5, 1990"              -> "1990-06-05"

    Args:
        n: number of examples. generator: a seeded ``torch.Generator``.
        days: ``None`` (every day of :data:`DATE_RANGE`) or a non-empty
            sequence of ``datetime.date`` to draw from, e.g. one side of
            :func:`date_split`. All the days, in order, give the same
            draws as ``None``.

    Returns:
        A list of ``n`` tuples ``(text, iso, locale, format)`` (strings).
    """
    _check_sizes(n, 1, 1, "date_examples")
    _check_generator(generator, "date_examples")
    pool = all_dates() if days is None else _check_days(days)
    styles = [
        (loc, fmt)
        for loc in DATE_LOCALES
        for fmt in DATE_FORMATS
        if (loc, fmt) not in DATE_EXCLUDED
    ]
    offsets = torch.randint(0, len(pool), (n,), generator=generator)
    choices = torch.randint(0, len(styles), (n,), generator=generator)
    examples = []
    for k, c in zip(offsets.tolist(), choices.tolist()):
        day = pool[k]
        locale, fmt = styles[c]
        text = _date_format(day, fmt, locale)
        examples.append((text, day.isoformat(), locale, fmt))
    return examples


@functools.cache
def all_dates():
    """Every day of :data:`DATE_RANGE`, in order (a tuple of dates)."""
    first, last = (datetime.date.fromisoformat(d) for d in DATE_RANGE)
    return tuple(
        first + datetime.timedelta(days=k)
        for k in range((last - first).days + 1)
    )


def _check_days(days):
    """``days`` as a tuple of dates inside :data:`DATE_RANGE`, else raise."""
    if isinstance(days, (str, bytes)) or not hasattr(days, "__len__"):
        raise TypeError(
            "date_examples: expected days to be a sequence of "
            f"datetime.date, got {type(days).__name__}"
        )
    days = tuple(days)
    if not days:
        raise ValueError("date_examples: expected at least one day, got 0")
    first, last = all_dates()[0], all_dates()[-1]
    for day in days:
        if type(day) is not datetime.date:  # a datetime is not a day
            raise TypeError(
                "date_examples: expected days of type datetime.date, "
                f"got {type(day).__name__}"
            )
        if not first <= day <= last:
            raise ValueError(
                f"date_examples: expected days from {first} to {last}, "
                f"got {day}"
            )
    return days


def date_split(held_out, generator):
    """Split the calendar: ``(train_days, test_days)``, disjoint.

    A random ``held_out`` fraction of the days of :data:`DATE_RANGE`
    (rounded to whole days, at least one, and at least one left for
    training) is set aside for testing; the rest train. Both are tuples of
    ``datetime.date`` in calendar order, together every day exactly once.
    A test date then never occurs in training in *any* writing, which
    holding out source strings alone would not ensure (the same day,
    written in another language, would be seen).

    Args:
        held_out: the test fraction, a float in ``(0, 1)``.
        generator: a seeded ``torch.Generator`` (one permutation drawn).
    """
    if isinstance(held_out, bool) or not isinstance(held_out, numbers.Real):
        raise TypeError(
            f"date_split: expected held_out to be a float, "
            f"got {type(held_out).__name__}"
        )
    if not 0 < held_out < 1:
        raise ValueError(
            f"date_split: expected 0 < held_out < 1, got {held_out}"
        )
    _check_generator(generator, "date_split")
    days = all_dates()
    n_test = min(max(round(held_out * len(days)), 1), len(days) - 1)
    order = torch.randperm(len(days), generator=generator)
    test = set(order[:n_test].tolist())
    return (
        tuple(d for k, d in enumerate(days) if k not in test),
        tuple(d for k, d in enumerate(days) if k in test),
    )


@functools.cache
def date_vocab():
    """The characters of every date the task can write, plus the specials.

    Built once from babel's data: the first seven days of every month (all
    weekdays and month names) in every locale and format, plus the digits
    and ``-`` of the ISO targets.
    """
    chars = set("0123456789-")
    for month in range(1, 13):
        for d in range(1, 8):
            day = datetime.date(2000, month, d)
            for locale in DATE_LOCALES:
                for fmt in DATE_FORMATS:
                    chars.update(_date_format(day, fmt, locale))
    return Vocab(sorted(chars))


def date_normalization(n, generator):
    """A padded :class:`Seq2SeqBatch` of :func:`date_examples` (characters)."""
    examples = date_examples(n, generator)
    return date_vocab().batch((text, iso) for text, iso, _, _ in examples)


# ------------------------------------ Chapter 7: selective copying
#
# Mamba's motivating task (Gu & Dao, 2023, section 3.1 and appendix E.1).
# A token sequence, not one-hot vectors: the models embed the ids.


class SelectiveCopyingBatch(NamedTuple):
    """A selective-copying batch (``T`` context length, ``K`` data tokens).

    ``tokens`` ``(B, T + K)``: the context (``K`` data tokens among noise)
    followed by ``K`` markers. ``targets`` ``(B, T + K)``: the ``k``-th
    data token at the ``k``-th marker, noise (0) everywhere else.
    ``mask`` ``(B, T + K)``: True exactly where ``targets`` carries a loss
    (the ``K`` markers). Ids are int64, the mask bool.
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


SELECTIVE_COPYING_NOISE = 0
"""The noise token ("white" in the Mamba paper's Figure 2)."""


def selective_copying(n, T, K, generator, vocab_size=16):
    """The selective copying task: repeat the data tokens, skip the noise.

    A context of ``T`` positions holds ``K`` data tokens at ``K`` distinct
    positions drawn uniformly (kept in order) and the noise token 0
    everywhere else; each data token is drawn uniformly, with repetition,
    from ``1 .. vocab_size - 2``. Then come ``K`` copies of the marker
    ``vocab_size - 1``: at the ``k``-th marker the model must output the
    ``k``-th data token. The spacing between data tokens changes from
    sequence to sequence, so no fixed delay (no time-invariant kernel) can
    read them: the model has to decide from each token's *content* whether
    to keep it. Guessing scores ``1 / (vocab_size - 2)``.

    The layout follows the Mamba authors' generator (``torch_copying_data``
    with ``variable=True`` in state-spaces/s4), whose ``L`` counts only the
    noise: their ``L`` is our ``T - K``. The paper's setting (appendix
    E.1) is sequences of length 4096, ``K = 16`` data tokens and a
    vocabulary of 16 tokens, the noise token included.

    Worked example (``T = 8``, ``K = 3``, ``vocab_size = 6``; data tokens
    1-4, noise ``.`` = 0, marker ``M`` = 5)::

        tokens   . 3 . . 1 . 3 .  M M M
        targets  . . . . . . . .  3 1 3
        mask     0 0 0 0 0 0 0 0  1 1 1

    Args:
        n: number of sequences, at least 1.
        T: context length, at least ``K``.
        K: data tokens to copy, at least 1.
        generator: a seeded ``torch.Generator``; it alone decides the data.
        vocab_size: all tokens (noise, data, marker), at least 3.

    Returns:
        A :class:`SelectiveCopyingBatch` of ``(n, T + K)`` tensors.
    """
    task = "selective_copying"
    try:
        n = check_int("n", n, 1)
        K = check_int("K", K, 1)
        T = check_int("T", T, K)
        vocab_size = check_int("vocab_size", vocab_size, 3)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{task}: {err}") from None
    _check_generator(generator, task)
    marker = vocab_size - 1
    data = torch.randint(1, marker, (n, K), generator=generator)  # (n, K)
    # K distinct positions per row, uniform: the first K of a random order
    order = torch.rand(n, T, generator=generator).argsort(dim=1)
    positions = order[:, :K].sort(dim=1).values  # (n, K), increasing
    context = torch.full((n, T), SELECTIVE_COPYING_NOISE, dtype=torch.int64)
    context.scatter_(1, positions, data)
    markers = torch.full((n, K), marker, dtype=torch.int64)
    tokens = torch.cat([context, markers], dim=1)  # (n, T + K)
    targets = torch.cat([torch.zeros_like(context), data], dim=1)
    mask = torch.zeros(n, T + K, dtype=torch.bool)
    mask[:, T:] = True
    return SelectiveCopyingBatch(tokens, targets, mask)
