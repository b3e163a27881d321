"""rnnbook.seq2seq: padding, teacher forcing, greedy and beam search."""

import itertools

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnbook.attention import DotAttention
from rnnbook.seq2seq import (
    BOS,
    EOS,
    PAD,
    AttentionDecoder,
    Decoder,
    Encoder,
    Seq2Seq,
    beam_search,
    greedy_decode,
    reverse_padded,
    seq2seq_model,
    sequence_loss,
)
from rnnbook.tasks import Vocab, reversal_translation

V = 9


def batch(seed=0, n=4, lo=1, hi=6):
    """A reversal batch, with its ids folded into a small vocabulary."""
    b = reversal_translation(n, lo, hi, torch.Generator().manual_seed(seed))
    fold = lambda x: torch.where(x > 2, 3 + x % (V - 3), x)  # noqa: E731
    return type(b)(fold(b.src), b.src_mask, fold(b.tgt_in), *b[3:])


def model(attention, seed=0):
    torch.manual_seed(seed)
    return seq2seq_model(V, 5, 7, attention).double()


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(12).reshape(2, 6)
    lengths = torch.tensor([4, 6])
    r = reverse_padded(x, lengths)
    assert r.tolist() == [[3, 2, 1, 0, 4, 5], [11, 10, 9, 8, 7, 6]]
    assert torch.equal(reverse_padded(r, lengths), x)
    y = torch.randn(2, 6, 3)
    assert torch.equal(reverse_padded(reverse_padded(y, lengths), lengths), y)


def test_encoder_ignores_padding():
    """A sentence's annotations are the same alone and in a padded batch."""
    torch.manual_seed(0)
    enc = Encoder(V, 5, 7).double()
    b = batch(n=5)
    memory = enc(b.src, b.src_mask)
    for i in range(5):
        L = int(b.src_mask[i].sum())
        alone = enc(b.src[i : i + 1, :L], b.src_mask[i : i + 1, :L])
        torch.testing.assert_close(
            memory.annotations[i, :L], alone.annotations[0]
        )
        torch.testing.assert_close(memory.summary[i], alone.summary[0])
        assert torch.all(memory.annotations[i, L:] == 0)


def test_encoder_summary_is_both_final_states():
    torch.manual_seed(0)
    enc = Encoder(V, 5, 7).double()
    b = batch()
    m = enc(b.src[:1], b.src_mask[:1])
    L = int(b.src_mask[0].sum())
    torch.testing.assert_close(m.summary[0, :7], m.annotations[0, L - 1, :7])
    torch.testing.assert_close(m.summary[0, 7:], m.annotations[0, 0, 7:])
    # the backward half at j reads j..L-1 only: changing x_0 leaves j>0 alone
    src = b.src[:1].clone()
    src[0, 0] = 3 + (src[0, 0] - 2) % (V - 3)
    m2 = enc(src, b.src_mask[:1])
    torch.testing.assert_close(
        m.annotations[0, 1:, 7:], m2.annotations[0, 1:, 7:]
    )


@pytest.mark.parametrize("attention", [False, True])
def test_forward_is_the_step_loop_and_ignores_padding(attention):
    net = model(attention)
    b = batch()
    logits = net(b.src, b.src_mask, b.tgt_in)
    assert logits.shape == (*b.tgt_in.shape, V)
    memory = net.encode(b.src, b.src_mask)
    s = net.decoder.start(memory)
    for t in range(b.tgt_in.shape[1]):
        out, s = net.decoder.step(b.tgt_in[:, t], s, memory)
        torch.testing.assert_close(out, logits[:, t])
    # one sentence alone gives the same logits on its real positions
    L, T = int(b.src_mask[1].sum()), int(b.tgt_mask[1].sum())
    alone = net(b.src[1:2, :L], b.src_mask[1:2, :L], b.tgt_in[1:2, :T])
    torch.testing.assert_close(alone[0], logits[1, :T])


def test_alignments_are_distributions_over_the_source():
    net = model(True)
    b = batch()
    w = net.alignments(b.src, b.src_mask, b.tgt_in)
    assert w.shape == (b.src.shape[0], b.tgt_in.shape[1], b.src.shape[1])
    torch.testing.assert_close(w.sum(2), torch.ones(w.shape[:2]).double())
    assert torch.all(w.masked_select(~b.src_mask[:, None, :]) == 0)
    with pytest.raises(TypeError, match="no attention"):
        model(False).alignments(b.src, b.src_mask, b.tgt_in)


def test_plain_decoder_context_does_not_depend_on_the_state():
    net = model(False)
    b = batch()
    memory = net.encode(b.src, b.src_mask)
    s = torch.randn(b.src.shape[0], 7, dtype=torch.float64)
    c1 = net.decoder.context(s, memory)
    c2 = net.decoder.context(-s, memory)
    assert torch.equal(c1, c2) and torch.equal(c1, memory.summary)


def test_sequence_loss_is_cross_entropy_without_padding():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, V, generator=g, dtype=torch.float64)
    tgt = torch.tensor([[3, 4, EOS, PAD], [5, EOS, PAD, PAD], [3, 3, 3, EOS]])
    mask = tgt != PAD
    expected = F.cross_entropy(
        logits.reshape(-1, V), tgt.reshape(-1), ignore_index=PAD
    )
    torch.testing.assert_close(sequence_loss(logits, tgt, mask), expected)


@pytest.mark.parametrize("attention", [False, True])
def test_greedy_output_format(attention):
    net = model(attention)
    b = batch(n=6)
    out = greedy_decode(net, b.src, b.src_mask, max_len=8)
    assert out.dtype == torch.int64 and out.shape[0] == 6
    assert out.shape[1] <= 8
    for row in out.tolist():
        assert BOS not in row
        if EOS in row:
            k = row.index(EOS)
            assert all(x == PAD for x in row[k + 1 :])
            assert PAD not in row[:k]
        else:
            assert len(row) == 8 and PAD not in row


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_of_one_is_greedy(attention, alpha):
    for seed in range(3):
        net = model(attention, seed)
        b = batch(seed, n=5)
        greedy = greedy_decode(net, b.src, b.src_mask, max_len=10)
        beam, _ = beam_search(net, b.src, b.src_mask, 1, 10, alpha)
        assert torch.equal(beam, greedy)


def sentence_score(net, src, src_mask, tokens, alpha):
    """log p(tokens | src) / len^alpha by teacher forcing (PAD, BOS barred)."""
    tgt_in = torch.tensor([[BOS] + tokens[:-1]])
    logits = net(src, src_mask, tgt_in)[0].clone()
    logits[:, [PAD, BOS]] = float("-inf")
    logp = torch.log_softmax(logits, -1)
    total = sum(logp[t, y].item() for t, y in enumerate(tokens))
    return total / len(tokens) ** alpha


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_full_beam_is_exhaustive_search(attention, alpha):
    """Outputs: tokens {EOS, a, b}, at most 3 long: 1 + 2 + 4 + 8 = 15."""
    max_len, symbols = 3, [3, 4]
    outputs = []
    for n in range(max_len):  # n symbols then EOS
        outputs += [
            list(p) + [EOS] for p in itertools.product(symbols, repeat=n)
        ]
    outputs += [list(p) for p in itertools.product(symbols, repeat=max_len)]
    assert len(outputs) == 15
    winners = set()
    for seed in range(4):
        torch.manual_seed(seed)
        net = seq2seq_model(5, 4, 6, attention).double()
        with torch.no_grad():  # sharpen the random model's distributions
            net.decoder.output.weight.mul_(4.0)
        src = torch.tensor([[3, 4, 4, EOS]])
        src_mask = torch.ones_like(src, dtype=torch.bool)
        with torch.no_grad():
            scores = [
                sentence_score(net, src, src_mask, y, alpha) for y in outputs
            ]
        best = max(range(15), key=scores.__getitem__)
        tokens, score = beam_search(net, src, src_mask, 15, max_len, alpha)
        got = [t for t in tokens[0].tolist() if t != PAD]
        assert got == outputs[best]
        assert abs(score.item() - scores[best]) < 1e-9
        winners.add(len(outputs[best]))
    assert len(winners) > 1 or alpha == 0.0  # not always the same length


def test_search_errors():
    net = model(True)
    b = batch()
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(net, b.src, b.src_mask, 0, 5)
    # numpy integers and floats, and 0-d tensors, are accepted
    a, _ = beam_search(net, b.src, b.src_mask, np.int64(2), np.int32(5), 0.5)
    c, _ = beam_search(
        net, b.src, b.src_mask, torch.tensor(2), 5, np.float32(0.5)
    )
    assert torch.equal(a, c)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(net, b.src, b.src_mask, 2, 5, -1.0)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(net, b.src, b.src_mask, 2, 5, float("nan"))
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(net, b.src, b.src_mask, 0)
    with pytest.raises(TypeError, match="max_len"):
        greedy_decode(net, b.src, b.src_mask, 5.0)
    with pytest.raises(TypeError, match="beam_size"):
        beam_search(net, b.src, b.src_mask, True, 5)
    with pytest.raises(TypeError, match="length_penalty"):
        beam_search(net, b.src, b.src_mask, 2, 5, "1")
    with pytest.raises(TypeError, match="length_penalty"):
        beam_search(net, b.src, b.src_mask, 2, 5, 1j)
    with pytest.raises(TypeError, match="Seq2Seq"):
        greedy_decode(net.decoder, b.src, b.src_mask, 5)
    with pytest.raises(TypeError, match="int64"):
        greedy_decode(net, b.src.int(), b.src_mask, 5)
    bad = b.src_mask.clone()
    bad[0] = False
    with pytest.raises(ValueError, match="hold a True"):
        net(b.src, bad, b.tgt_in)
    holes = b.src_mask.clone()
    holes[:, 0] = False
    with pytest.raises(ValueError, match="prefix"):
        net(b.src, holes, b.tgt_in)
    with pytest.raises(ValueError, match="at least one row"):
        net(b.src[:0], b.src_mask[:0], b.tgt_in[:0])


def test_construction_errors():
    enc = Encoder(V, 5, 7)
    with pytest.raises(ValueError, match="context_size"):
        Seq2Seq(enc, Decoder(V, 5, 7, 7))
    with pytest.raises(TypeError, match="Encoder"):
        Seq2Seq(Decoder(V, 5, 7, 14), Decoder(V, 5, 7, 14))
    with pytest.raises(TypeError, match="bool"):
        seq2seq_model(V, 5, 7, "False")
    with pytest.raises(TypeError, match="nn.Module"):
        AttentionDecoder(V, 5, 7, 14, attention=lambda q, k, m: None)


def test_any_attention_module_plugs_in():
    torch.manual_seed(0)
    net = Seq2Seq(
        Encoder(V, 5, 7), AttentionDecoder(V, 5, 14, 14, DotAttention())
    ).double()
    b = batch()
    w = net.alignments(b.src, b.src_mask, b.tgt_in)
    torch.testing.assert_close(w.sum(2), torch.ones(w.shape[:2]).double())


def test_vocab_ids_agree_with_the_model():
    assert (Vocab.PAD, Vocab.BOS, Vocab.EOS) == (PAD, BOS, EOS)


def test_the_two_models_share_their_initial_weights():
    """Built after the same seed, they differ only by the attention's."""
    torch.manual_seed(1)
    plain = seq2seq_model(V, 5, 7, False).state_dict()
    torch.manual_seed(1)
    search = seq2seq_model(V, 5, 7, True).state_dict()
    assert all(torch.equal(plain[k], search[k]) for k in plain)
    assert set(search) - set(plain) == {
        "decoder.attention.W.weight",
        "decoder.attention.U.weight",
        "decoder.attention.v.weight",
    }
