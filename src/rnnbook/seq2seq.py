"""Encoder-decoders with and without attention, and their search (Chapter 4).

The model factorises the probability of a target ``y`` given a source ``x``
(book eq. ch4-factor; Sutskever, Vinyals & Le 2014; Cho et al. 2014):

.. math::
    p(y \\mid x) = \\prod_{t=1}^{T} p(y_t \\mid y_{<t}, x).

- :class:`Encoder` reads the source with the book's own GRU (Chapter 3) in
  both directions and returns the annotations ``h_j = [fwd h_j; bwd h_j]``
  and a summary of the whole sentence, ``[fwd h_{S-1}; bwd h_0]``.
- :class:`Decoder` (RNNencdec) conditions every step on that one summary
  vector ``c``: the bottleneck.
- :class:`AttentionDecoder` (RNNsearch; Bahdanau, Cho & Bengio 2015) computes
  a new context ``c_t`` at every step by attending over all annotations.
- :class:`Seq2Seq` joins an encoder and a decoder; :func:`greedy_decode`
  and :func:`beam_search` generate from it.

Both decoders share everything but the context, so that a comparison
between them measures attention alone. Shapes follow the package glossary
(``B`` batch, ``S`` source length, ``T`` target length, ``H`` hidden size,
``V`` vocabulary size, ``E`` embedding size). Token ids are int64; PAD = 0,
BOS = 1, EOS = 2 as in :class:`rnnbook.tasks.Vocab`.
"""

import numbers
from typing import NamedTuple

import torch
from torch import nn

from rnnbook._checks import check_positive_int as _check_positive_int
from rnnbook._checks import check_tensor as _check_tensor
from rnnbook.attention import AdditiveAttention
from rnnbook.gated import GRU, GRUCell

PAD, BOS, EOS = 0, 1, 2


class Memory(NamedTuple):
    """What the encoder hands the decoder for one batch of sources.

    ``annotations`` ``(B, S, 2H)``: one vector per source position;
    ``mask`` ``(B, S)`` bool, True at real positions;
    ``summary`` ``(B, 2H)``: the fixed-length encoding of each sentence;
    ``projected``: the attention's ``project_keys(annotations)``, computed
    once per batch by :meth:`AttentionDecoder.prepare` (else ``None``).
    """

    annotations: torch.Tensor
    mask: torch.Tensor
    summary: torch.Tensor
    projected: torch.Tensor | None = None


def _check_ids(name, ids, mask=None):
    _check_tensor(name, ids, 2, "(B, L) int64 token ids")
    if ids.dtype != torch.int64:
        raise TypeError(f"expected {name} of dtype int64, got {ids.dtype}")
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(
            f"expected {name} with at least one row and one position, got "
            f"{tuple(ids.shape)}"
        )
    if mask is not None:
        _check_tensor(f"{name}_mask", mask, 2, f"{tuple(ids.shape)} bool")
        if mask.dtype != torch.bool or mask.shape != ids.shape:
            raise ValueError(
                f"expected {name}_mask of shape {tuple(ids.shape)} and dtype "
                f"bool, got {tuple(mask.shape)} {mask.dtype}"
            )
        lengths = mask.sum(1)
        if (lengths == 0).any():
            raise ValueError(
                f"expected every row of {name}_mask to hold a True"
            )
        if not torch.equal(mask, _prefix_mask(lengths, ids.shape[1])):
            raise ValueError(
                f"expected {name}_mask to be True on a prefix of each row "
                f"(right padding)"
            )


def _prefix_mask(lengths, L):
    return torch.arange(L, device=lengths.device) < lengths[:, None]


def reverse_padded(x, lengths):
    """Reverse each row's first ``lengths[b]`` steps, leaving padding in place.

    ``x`` ``(B, S, ...)``; row ``b`` becomes ``x[b, L-1], ..., x[b, 0], pad``.
    Applying it twice gives ``x`` back. This is how the encoder runs its
    backward direction over padded batches: reversing the whole row would
    make the backward GRU read the padding first.
    """
    S = x.shape[1]
    steps = torch.arange(S, device=x.device)
    index = torch.where(
        steps < lengths[:, None], lengths[:, None] - 1 - steps, steps
    )  # (B, S)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class Encoder(nn.Module):
    """A bidirectional GRU encoder (Bahdanau et al. 2015, §3.2).

    .. math::
        \\overrightarrow{h}_j = \\mathrm{GRU}(E x_j,
        \\overrightarrow{h}_{j-1}), \\quad
        \\overleftarrow{h}_j = \\mathrm{GRU}'(E x_j,
        \\overleftarrow{h}_{j+1}), \\quad
        h_j = [\\overrightarrow{h}_j; \\overleftarrow{h}_j].

    Each direction is a one-layer :class:`rnnbook.gated.GRU`. The backward
    one reads each source reversed within its own length
    (:func:`reverse_padded`), so padding never enters a real annotation.

    Args:
        vocab_size: ``V``. embed_size: ``E``. hidden_size: ``H`` per
        direction; annotations have size ``2H``.

    ``forward(src, src_mask)``: ``src`` ``(B, S)`` ids, ``src_mask`` ``(B, S)``
    bool (True on a prefix of each row). Returns a :class:`Memory`;
    annotations at padded positions are zeros.
    """

    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        for name, value in (
            ("vocab_size", vocab_size),
            ("embed_size", embed_size),
            ("hidden_size", hidden_size),
        ):
            _check_positive_int(name, value)
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.forward_rnn = GRU(embed_size, hidden_size)
        self.backward_rnn = GRU(embed_size, hidden_size)

    def forward(self, src, src_mask):
        _check_ids("src", src, src_mask)
        lengths = src_mask.sum(1)  # (B,)
        x = self.embed(src)  # (B, S, E)
        fwd, _ = self.forward_rnn(x)  # (B, S, H), valid where mask is True
        bwd, _ = self.backward_rnn(reverse_padded(x, lengths))
        bwd = reverse_padded(bwd, lengths)  # (B, S, H): bwd[:, j] read j..L-1
        annotations = torch.cat([fwd, bwd], dim=2) * src_mask.unsqueeze(2)
        rows = torch.arange(src.shape[0], device=src.device)
        summary = torch.cat([fwd[rows, lengths - 1], bwd[:, 0]], dim=1)
        return Memory(annotations, src_mask, summary)  # summary (B, 2H)


class _DecoderBase(nn.Module):
    """What both decoders share: embedding, initial state, GRU cell, output."""

    def __init__(self, vocab_size, embed_size, hidden_size, context_size):
        super().__init__()
        for name, value in (
            ("vocab_size", vocab_size),
            ("embed_size", embed_size),
            ("hidden_size", hidden_size),
            ("context_size", context_size),
        ):
            _check_positive_int(name, value)
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.context_size = context_size
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.init_state = nn.Linear(context_size, hidden_size)
        self.cell = GRUCell(embed_size + context_size, hidden_size)
        self.output = nn.Linear(
            hidden_size + context_size + embed_size, vocab_size
        )

    def start(self, memory):
        """The first state, ``s_0 = tanh(W_init summary + b_init)``."""
        return torch.tanh(self.init_state(memory.summary))

    def prepare(self, memory):
        """``memory`` with anything the decoder precomputes per sentence."""
        return memory

    def context(self, s_prev, memory):
        """The context ``c_t`` the step reads, ``(B, 2H)``."""
        raise NotImplementedError

    def step(self, y_prev, s_prev, memory):
        """One decoder step (book eq. ch4-decoder).

        .. math::
            c_t = \\mathrm{context}(s_{t-1}), \\quad
            s_t = \\mathrm{GRU}([E y_{t-1}; c_t], s_{t-1}), \\quad
            \\mathrm{logits}_t = W_o [s_t; c_t; E y_{t-1}] + b_o.

        Args:
            y_prev: ``(B,)`` the previous token ids. s_prev: ``(B, H)``.
            memory: the encoder's :class:`Memory`.

        Returns:
            ``(logits (B, V), s_t (B, H))``.
        """
        emb = self.embed(y_prev)  # (B, E)
        c = self.context(s_prev, memory)  # (B, 2H)
        s = self.cell(torch.cat([emb, c], dim=1), s_prev)  # (B, H)
        return self.output(torch.cat([s, c, emb], dim=1)), s

    def forward(self, tgt_in, memory):
        """Teacher forcing: the logits of every step, ``(B, T, V)``.

        ``tgt_in`` ``(B, T)`` are the true previous tokens (BOS first): at
        training time the decoder never sees its own mistakes.
        """
        _check_ids("tgt_in", tgt_in)
        s = self.start(memory)
        logits = []
        for y_prev in tgt_in.unbind(1):
            out, s = self.step(y_prev, s, memory)
            logits.append(out)
        return torch.stack(logits, dim=1)


class Decoder(_DecoderBase):
    """The plain decoder (RNNencdec): every step sees the same ``c``.

    ``c = summary``, the encoder's fixed-length vector (Cho et al. 2014
    feed it to every step, as here; Sutskever et al. 2014 only to the
    first). Args as :class:`AttentionDecoder`, without ``attention``.
    """

    def context(self, s_prev, memory):
        """The summary ``c``, whatever the state."""
        return memory.summary


class AttentionDecoder(_DecoderBase):
    """The attention decoder (RNNsearch; Bahdanau et al. 2015, §3.1).

    ``c_t = sum_j alpha_tj h_j`` with ``alpha_t = attention(s_{t-1}, h)``.

    Args:
        vocab_size: ``V``. embed_size: ``E``. hidden_size: ``H`` (the
        decoder state). context_size: the annotations' size (``2H_enc``).
        attention: a module of :mod:`rnnbook.attention` whose query size is
        ``hidden_size`` and key size ``context_size``; ``None`` builds
        ``AdditiveAttention(hidden_size, context_size, hidden_size)``.
    """

    def __init__(
        self, vocab_size, embed_size, hidden_size, context_size, attention=None
    ):
        super().__init__(vocab_size, embed_size, hidden_size, context_size)
        if attention is None:
            attention = AdditiveAttention(
                hidden_size, context_size, hidden_size
            )
        if not isinstance(attention, nn.Module):
            raise TypeError(
                f"expected attention to be an nn.Module from "
                f"rnnbook.attention, got {type(attention).__name__}"
            )
        self.attention = attention

    def prepare(self, memory):
        """Add the projected keys (``U h_j``, once per sentence)."""
        projected = self.attention.project_keys(memory.annotations)
        return memory._replace(projected=projected)

    def attend(self, s_prev, memory):
        """``(c_t (B, 2H), alpha_t (B, S))``: attend with ``s_{t-1}``."""
        return self.attention(
            s_prev, memory.annotations, memory.mask, memory.projected
        )

    def context(self, s_prev, memory):
        """``c_t = sum_j alpha_tj h_j`` (see :meth:`attend`)."""
        return self.attend(s_prev, memory)[0]

    def alignments(self, tgt_in, memory):
        """The weights ``alpha_tj`` under teacher forcing, ``(B, T, S)``."""
        _check_ids("tgt_in", tgt_in)
        s, weights = self.start(memory), []
        for y_prev in tgt_in.unbind(1):
            weights.append(self.attend(s, memory)[1])
            _, s = self.step(y_prev, s, memory)
        return torch.stack(weights, dim=1)


class Seq2Seq(nn.Module):
    """An encoder and a decoder.

    ``forward(src, src_mask, tgt_in)`` returns the teacher-forced logits
    ``(B, T, V)``; :meth:`encode` and the decoder's ``start``/``step`` are
    what :func:`greedy_decode` and :func:`beam_search` call.
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        if not isinstance(encoder, Encoder):
            raise TypeError(
                f"expected an Encoder, got {type(encoder).__name__}"
            )
        if not isinstance(decoder, _DecoderBase):
            raise TypeError(
                f"expected a Decoder or AttentionDecoder, got "
                f"{type(decoder).__name__}"
            )
        if decoder.context_size != 2 * encoder.hidden_size:
            raise ValueError(
                f"expected decoder.context_size = 2 * encoder.hidden_size = "
                f"{2 * encoder.hidden_size}, got {decoder.context_size}"
            )
        self.encoder, self.decoder = encoder, decoder

    def encode(self, src, src_mask):
        """The encoder's :class:`Memory`, prepared for the decoder."""
        return self.decoder.prepare(self.encoder(src, src_mask))

    def forward(self, src, src_mask, tgt_in):
        _check_ids("src", src, src_mask)
        _check_ids("tgt_in", tgt_in)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(
                f"expected tgt_in with {src.shape[0]} rows like src, got "
                f"{tuple(tgt_in.shape)}"
            )
        return self.decoder(tgt_in, self.encode(src, src_mask))

    def alignments(self, src, src_mask, tgt_in):
        """Attention weights ``(B, T, S)`` (an :class:`AttentionDecoder`)."""
        if not isinstance(self.decoder, AttentionDecoder):
            raise TypeError("a plain Decoder has no attention weights")
        return self.decoder.alignments(tgt_in, self.encode(src, src_mask))


def seq2seq_model(vocab_size, embed_size, hidden_size, attention):
    """The chapter's models: same sizes, with or without attention.

    Args:
        vocab_size, embed_size, hidden_size: as :class:`Encoder`; the
            decoder state has the encoder's ``hidden_size`` too.
        attention: ``True`` for RNNsearch (additive attention), ``False``
            for RNNencdec.
    """
    if not isinstance(attention, bool):
        raise TypeError(
            f"expected attention to be a bool, got {type(attention).__name__}"
        )
    encoder = Encoder(vocab_size, embed_size, hidden_size)
    kind = AttentionDecoder if attention else Decoder
    decoder = kind(vocab_size, embed_size, hidden_size, 2 * hidden_size)
    return Seq2Seq(encoder, decoder)


def sequence_loss(logits, tgt_out, tgt_mask):
    """Mean cross-entropy over the real target positions (PAD carries none).

    Args:
        logits: ``(B, T, V)``. tgt_out: ``(B, T)`` ids. tgt_mask: ``(B, T)``.
    """
    nll = nn.functional.cross_entropy(
        logits.transpose(1, 2), tgt_out, reduction="none"
    )  # (B, T)
    return (nll * tgt_mask).sum() / tgt_mask.sum()


# --------------------------------------------------------------- search


def _log_probs(logits):
    """Log-probabilities with PAD and BOS forbidden: they are never outputs."""
    logits = logits.clone()
    logits[:, [PAD, BOS]] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


def _count(name, value):
    """A positive integer (numpy integers and 0-d integer tensors too)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(
            f"expected {name} to be a positive int, got "
            f"{type(value).__name__} {value!r}"
        )
    if value < 1:
        raise ValueError(f"expected {name} to be a positive int, got {value}")
    return int(value)


def _check_search(model, src, src_mask, max_len):
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"expected a Seq2Seq, got {type(model).__name__}")
    _check_ids("src", src, src_mask)
    return _count("max_len", max_len)


@torch.no_grad()
def greedy_decode(model, src, src_mask, max_len):
    """The most probable next token at every step, until EOS or ``max_len``.

    Returns:
        ``tokens`` ``(B, L)`` int64 with ``L <= max_len``: each row's output,
        ending in EOS unless ``max_len`` cut it, then PAD.
    """
    max_len = _check_search(model, src, src_mask, max_len)
    memory = model.encode(src, src_mask)
    s = model.decoder.start(memory)
    y = torch.full((src.shape[0],), BOS, dtype=torch.int64, device=src.device)
    done = torch.zeros_like(y, dtype=torch.bool)
    tokens = []
    for _ in range(max_len):
        logits, s = model.decoder.step(y, s, memory)
        y = _log_probs(logits).argmax(1)  # (B,)
        tokens.append(torch.where(done, PAD, y))
        done = done | (y == EOS)
        if done.all():
            break
    return torch.stack(tokens, dim=1)


def _pad_rows(rows, device):
    L = max(len(r) for r in rows)
    out = torch.full((len(rows), L), PAD, dtype=torch.int64, device=device)
    for b, r in enumerate(rows):
        out[b, : len(r)] = torch.tensor(r, dtype=torch.int64)
    return out


@torch.no_grad()
def beam_search(model, src, src_mask, beam_size, max_len, length_penalty=0.0):
    """Beam search with length normalisation, one sentence at a time.

    Every step extends each live hypothesis by every token, and keeps the
    ``k`` best of all extensions by log-probability, where ``k`` is
    ``beam_size`` minus the number of hypotheses already finished: one that
    ends in EOS leaves the beam for the finished list, and the beam shrinks.
    At ``max_len`` the live hypotheses are finished as they are. The answer
    is the finished hypothesis with the best normalised score

    .. math::
        \\frac{\\log p(y \\mid x)}{|y|^{\\alpha}},

    where ``|y|`` counts EOS and ``alpha = length_penalty`` (0: the plain
    log-probability, which favours short outputs; 1: the mean per token).
    With ``beam_size = 1`` this is :func:`greedy_decode`; with a beam as
    large as the number of possible outputs it is exhaustive search.

    Args:
        model: a :class:`Seq2Seq`. src, src_mask: ``(B, S)``.
        beam_size: ``k >= 1``. max_len: the longest output.
        length_penalty: ``alpha >= 0``.

    Returns:
        ``(tokens (B, L) int64, scores (B,) float)``: each sentence's best
        output (padded with PAD as in :func:`greedy_decode`) and its
        normalised score.
    """
    max_len = _check_search(model, src, src_mask, max_len)
    beam_size = _count("beam_size", beam_size)
    if isinstance(length_penalty, torch.Tensor) and length_penalty.dim() == 0:
        length_penalty = length_penalty.item()
    if not isinstance(length_penalty, numbers.Real) or isinstance(
        length_penalty, bool
    ):
        raise TypeError(
            f"expected length_penalty to be a real number, got "
            f"{type(length_penalty).__name__} {length_penalty!r}"
        )
    if not 0 <= length_penalty < float("inf"):
        raise ValueError(
            f"expected length_penalty to be a finite number >= 0, got "
            f"{length_penalty!r}"
        )
    length_penalty = float(length_penalty)
    rows, scores = [], []
    for b in range(src.shape[0]):
        memory = model.encode(src[b : b + 1], src_mask[b : b + 1])
        best = _beam_one(model, memory, beam_size, max_len, length_penalty)
        rows.append(best[0])
        scores.append(best[1])
    return _pad_rows(rows, src.device), torch.tensor(
        scores, dtype=torch.float64
    )


def _beam_one(model, memory, beam_size, max_len, alpha):
    """Beam search for one sentence; returns ``(tokens, score)``."""
    s = model.decoder.start(memory)  # (1, H): one live hypothesis
    live_tokens = [[]]
    live_logp = s.new_zeros(1)
    finished = []  # (normalised score, tokens)
    for t in range(max_len):
        k = len(live_tokens)
        mem = Memory(
            *(None if m is None else m.expand(k, *m.shape[1:]) for m in memory)
        )
        y = torch.tensor(
            [toks[-1] if toks else BOS for toks in live_tokens],
            device=s.device,
        )
        logits, s = model.decoder.step(y, s, mem)
        cand = (live_logp[:, None] + _log_probs(logits)).flatten()  # (k V,)
        width = min(beam_size - len(finished), int(torch.isfinite(cand).sum()))
        top_logp, top = cand.topk(width)
        V = logits.shape[1]
        keep, keep_logp, keep_tokens = [], [], []
        for logp, index in zip(top_logp.tolist(), top.tolist()):
            parent, token = divmod(index, V)
            tokens = live_tokens[parent] + [token]
            if token == EOS or t == max_len - 1:
                finished.append((logp / len(tokens) ** alpha, tokens))
            else:
                keep.append(parent)
                keep_logp.append(logp)
                keep_tokens.append(tokens)
        if not keep:
            break
        s = s[torch.tensor(keep, device=s.device)]
        live_logp = s.new_tensor(keep_logp)
        live_tokens = keep_tokens
    score, tokens = max(finished, key=lambda f: f[0])
    return tokens, score
