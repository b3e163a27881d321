"""rnnbook.tasks, Chapter 4: the Vocab and the two translation tasks."""

import datetime
from collections import Counter

import pytest
import torch
from babel.dates import format_date

from rnnbook.tasks import (
    DATE_EXCLUDED,
    DATE_FORMATS,
    DATE_LOCALES,
    REVERSAL_SOURCE,
    REVERSAL_TARGET,
    REVERSAL_VOCAB,
    Vocab,
    all_dates,
    date_examples,
    date_normalization,
    date_split,
    date_vocab,
    reversal_examples,
    reversal_translation,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_vocab_specials_and_round_trip():
    v = Vocab("xyz")
    assert len(v) == 6 and (v.PAD, v.BOS, v.EOS) == (0, 1, 2)
    assert v.encode("zx") == [5, 3]
    assert v.decode([1, 5, 3, 2, 4, 0]) == ["z", "x"]  # stops at EOS
    assert v.decode(torch.tensor([5, 0, 3])) == ["z", "x"]
    ids, mask = v.pad(["xy", "z"], bos=True, eos=True)
    assert ids.tolist() == [[1, 3, 4, 2], [1, 5, 2, 0]]
    assert mask.tolist() == [[True] * 4, [True] * 3 + [False]]
    with pytest.raises(ValueError, match="'w' is not in"):
        v.encode("w")
    with pytest.raises(ValueError, match="distinct"):
        Vocab("xx")
    with pytest.raises(ValueError, match="distinct"):
        Vocab(["<pad>"])
    with pytest.raises(TypeError, match="strings"):
        Vocab([1, 2])
    with pytest.raises(ValueError, match="at least one"):
        v.pad([])


def test_reversal_is_reverse_then_permute():
    assert sorted(REVERSAL_TARGET) == sorted("ABCDEFGHIJKLMNOPQRST")
    translate = dict(zip(REVERSAL_SOURCE, REVERSAL_TARGET))
    assert translate["a"] == "D" and translate["b"] == "K"  # the docstring
    pairs = reversal_examples(500, 3, 9, gen())
    lengths = Counter(len(s) for s, _ in pairs)
    assert set(lengths) == set(range(3, 10))
    for source, target in pairs:
        assert target == tuple(translate[s] for s in reversed(source))
    assert pairs == reversal_examples(500, 3, 9, gen())  # seeded
    assert pairs != reversal_examples(500, 3, 9, gen(1))
    worked = tuple("cats")
    assert tuple(translate[s] for s in reversed(worked)) == tuple("JQDR")


def test_reversal_batch_layout():
    pairs = reversal_examples(50, 1, 12, gen())
    b = reversal_translation(50, 1, 12, gen())
    V = REVERSAL_VOCAB
    for i, (source, target) in enumerate(pairs):
        L, T = len(source), len(target)
        assert b.src[i, :L].tolist() == V.encode(source)
        assert b.src[i, L] == V.EOS and torch.all(b.src[i, L + 1 :] == V.PAD)
        assert b.src_mask[i].tolist() == [
            k <= L for k in range(b.src.shape[1])
        ]
        assert b.tgt_in[i, 0] == V.BOS
        assert b.tgt_in[i, 1 : T + 1].tolist() == V.encode(target)
        assert b.tgt_out[i, :T].tolist() == V.encode(target)
        assert b.tgt_out[i, T] == V.EOS
        assert int(b.tgt_mask[i].sum()) == T + 1
        assert torch.all(b.tgt_out[i][~b.tgt_mask[i]] == V.PAD)
    assert b.src.dtype == torch.int64 and b.src_mask.dtype == torch.bool


def test_reversal_bad_input():
    with pytest.raises(ValueError, match="min_len <= max_len"):
        reversal_examples(3, 5, 4, gen())
    with pytest.raises(ValueError, match="int >= 1"):
        reversal_examples(0, 1, 4, gen())
    with pytest.raises(ValueError, match="int >= 1"):
        reversal_examples(3, 0, 4, gen())
    with pytest.raises(TypeError, match="torch.Generator"):
        reversal_examples(3, 1, 4, 0)


def test_dates_are_babel_dates_and_their_iso_form():
    examples = date_examples(600, gen())
    for text, iso, locale, fmt in examples:
        day = datetime.date.fromisoformat(iso)
        assert text == format_date(day, format=fmt, locale=locale)
        assert "1950-01-01" <= iso <= "2049-12-31"
        assert (locale, fmt) not in DATE_EXCLUDED
    assert {e[2] for e in examples} == set(DATE_LOCALES)
    assert {e[3] for e in examples} == set(DATE_FORMATS)
    assert examples == date_examples(600, gen())
    assert len({e[1] for e in examples}) > 550  # dates rarely repeat


def test_a_date_text_has_one_meaning():
    """Without en_US short, no text is two dates (checked on a sample)."""
    meaning = {}
    for text, iso, _, _ in date_examples(4000, gen(5)):
        assert meaning.setdefault(text, iso) == iso


def test_date_batch_decodes_back():
    g1, g2 = gen(3), gen(3)
    b = date_normalization(20, g1)
    examples = date_examples(20, g2)
    v = date_vocab()
    for i, (text, iso, _, _) in enumerate(examples):
        assert "".join(v.decode(b.src[i])) == text
        assert "".join(v.decode(b.tgt_out[i])) == iso
    assert b.tgt_out.shape[1] == 11  # ten characters and EOS
    with pytest.raises(TypeError, match="torch.Generator"):
        date_examples(3, None)


def test_all_dates_is_the_calendar_of_the_range():
    days = all_dates()
    assert days[0] == datetime.date(1950, 1, 1)
    assert days[-1] == datetime.date(2049, 12, 31)
    assert len(days) == 36525  # 100 years, 25 of them leap years
    assert all(b - a == datetime.timedelta(days=1) for a, b in zip(
        days, days[1:]))  # fmt: skip


def test_date_examples_draw_from_the_given_days():
    # every day, in order: the same draws as the default
    assert date_examples(40, gen(3), all_dates()) == date_examples(40, gen(3))
    few = [datetime.date(1990, 6, 5), datetime.date(2001, 1, 31)]
    isos = {iso for _, iso, _, _ in date_examples(200, gen(4), few)}
    assert isos == {"1990-06-05", "2001-01-31"}
    with pytest.raises(ValueError, match="at least one day"):
        date_examples(3, gen(), [])
    with pytest.raises(ValueError, match="1950-01-01 to 2049-12-31"):
        date_examples(3, gen(), [datetime.date(2050, 1, 1)])
    with pytest.raises(TypeError, match="datetime.date"):
        date_examples(3, gen(), ["1990-06-05"])
    with pytest.raises(TypeError, match="datetime.date"):
        date_examples(3, gen(), [datetime.datetime(1990, 6, 5)])
    with pytest.raises(TypeError, match="sequence"):
        date_examples(3, gen(), "1990-06-05")


def test_date_split_partitions_the_calendar():
    train, test = date_split(0.1, gen(7))
    assert not set(train) & set(test)  # disjoint
    assert sorted(train + test) == list(all_dates())  # every day once
    assert list(train) == sorted(train) and list(test) == sorted(test)
    assert len(test) == round(0.1 * 36525)
    assert date_split(0.1, gen(7)) == (train, test)  # seeded
    assert date_split(0.1, gen(8)) != (train, test)
    # spread over the calendar: every year, month and day of the month
    for part in ("year", "month", "day"):
        assert {getattr(d, part) for d in test} == {
            getattr(d, part) for d in all_dates()
        }
    # drawing from each side: no ISO date in common
    seen = {iso for _, iso, _, _ in date_examples(3000, gen(1), train)}
    held = {iso for _, iso, _, _ in date_examples(300, gen(2), test)}
    assert not seen & held
    assert len(date_split(1e-9, gen())[1]) == 1  # at least one test day
    assert len(date_split(1 - 1e-9, gen())[0]) == 1  # and one to train
    for bad in (0, 1, -0.5, 1.5):
        with pytest.raises(ValueError, match="0 < held_out < 1"):
            date_split(bad, gen())
    for bad in (True, "0.1", None):
        with pytest.raises(TypeError, match="held_out"):
            date_split(bad, gen())
    with pytest.raises(TypeError, match="Generator"):
        date_split(0.1, 0)
