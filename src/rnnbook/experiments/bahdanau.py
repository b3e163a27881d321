"""Accuracy against source length, with and without attention (Chapter 4).

A laptop-scale analogue of Bahdanau, Cho & Bengio (2015, Figure 2), where
BLEU falls with sentence length for the plain encoder-decoder (RNNencdec)
and holds for the attention model (RNNsearch). Here the task is the
synthetic translation of :func:`rnnbook.tasks.reversal_translation`, trained
on sources of 1 to ``l_train`` symbols and tested on every length from 1 to
``2 l_train``; the models are :func:`rnnbook.seq2seq.seq2seq_model` with and
without attention, the same sizes otherwise.

Before the comparison, a *pilot* picks each model's learning rate: every
rate of ``pilot_rates`` trains each model once for ``pilot_steps`` steps
(its own seed stream), and the rate whose model decodes the most
*validation* sentences exactly (lengths 1 to ``l_train``, drawn from the
pilot's own ``validation`` seed, never the test seeds; ties go to the lower
teacher-forced validation loss) is the one the comparison uses.

A second part trains the attention model on the date task
(:func:`rnnbook.tasks.date_examples`) and stores its accuracy and the
alignments of a few examples, which the chapter draws as heatmaps. With
``date_held_out`` (the default) the calendar is split first
(:func:`rnnbook.tasks.date_split`): the test dates are days never drawn in
training, in any language or format.

Usage::

    # the book's run: RNNencdec with 69 units, as many parameters as
    # RNNsearch to within 1% (without the option: 64 units, 11% fewer)
    python -m rnnbook.experiments.bahdanau --plain-hidden 69
    python -m rnnbook.experiments.bahdanau --tiny --out /tmp/tiny.json

The comparison is *paired*: for each repeat, both models are built after
seeding with the same ``init`` seed (so their encoders start identical,
unless ``--plain-hidden`` gives the plain model another size), see
the same training batches (the ``data`` seed) and are tested on the same
sentences (the ``test`` seed). The seeds of a repeat come from
:class:`numpy.random.SeedSequence` streams keyed by the repeat alone.
The result file records the configuration, seeds, command, versions and
seconds, and is written atomically.
"""

import dataclasses
import functools
import sys
import time
from dataclasses import asdict, dataclass

import babel
import babel.core
import numpy as np
import torch
from tqdm.auto import tqdm

from rnnbook.experiments._io import (
    experiment_parser,
    parse_experiment_args,
    write_json_atomic,
)
from rnnbook.seq2seq import greedy_decode, seq2seq_model, sequence_loss
from rnnbook.tasks import (
    REVERSAL_VOCAB,
    Vocab,
    date_examples,
    date_split,
    date_vocab,
    reversal_translation,
)

ENTROPY = 20140901
"""The root of every run's seed streams (the paper's first arXiv date)."""

MODELS = {"RNNencdec": False, "RNNsearch": True}
"""The two models compared: name -> with attention."""


@dataclass
class Config:
    l_train: int = 15
    steps: int = 1500
    batch_size: int = 64
    embed_size: int = 32
    hidden_size: int = 64
    lr: float = 3e-3  # the date model's (the pilot tunes the other two)
    clip: float = 1.0
    repeats: int = 3
    n_test: int = 200
    date_steps: int = 1500
    date_test: int = 1000
    date_examples: int = 8
    date_held_out: bool = True
    date_held_out_fraction: float = 0.1  # of the calendar's days
    plain_hidden: int | None = None  # RNNencdec's size; None: hidden_size
    pilot_rates: tuple = (1e-3, 3e-3, 1e-2)
    pilot_steps: int = 500
    n_validation: int = 500


TINY = Config(
    l_train=3,
    steps=5,
    batch_size=8,
    embed_size=8,
    hidden_size=8,
    repeats=2,
    n_test=4,
    date_steps=3,
    date_test=8,
    date_examples=2,
    pilot_steps=3,
    n_validation=8,
)


PARTS = {
    "reversal": ("init", "data", "test"),
    "dates": ("init", "data", "test", "split"),
    "pilot": ("init", "data", "validation"),
}
"""The seeds each part of the run draws: part -> their names."""


def run_seeds(repeat, part="reversal"):
    """The seeds of one repeat of one part, e.g. ``{"init": ..., ...}``.

    Each is drawn from its own :class:`numpy.random.SeedSequence` stream,
    spawned from ``SeedSequence(ENTROPY, spawn_key=(part_index, repeat))``;
    the names are those of :data:`PARTS` (the pilot draws ``validation``
    sentences, never ``test`` ones). The model is not part of the key:
    both models of a repeat share the seeds, which is what makes the
    comparison paired.
    """
    if part not in PARTS:
        raise ValueError(f"expected a part in {list(PARTS)}, got {part!r}")
    key = (list(PARTS).index(part), repeat)
    names = PARTS[part]
    streams = np.random.SeedSequence(ENTROPY, spawn_key=key).spawn(len(names))
    return {
        name: int(s.generate_state(1, dtype=np.uint64)[0])
        for name, s in zip(names, streams)
    }


def model_hidden(config, attention):
    """The hidden size of RNNsearch (``attention``) or RNNencdec."""
    if not attention and config.plain_hidden is not None:
        return config.plain_hidden  # e.g. 69: as many parameters
    return config.hidden_size


def parameter_counts(config):
    """``{model name: number of parameters}`` under ``config``."""
    V = len(REVERSAL_VOCAB)
    return {
        name: sum(
            p.numel()
            for p in seq2seq_model(
                V, config.embed_size, model_hidden(config, a), a
            ).parameters()
        )
        for name, a in MODELS.items()
    }


def _to(batch, device):
    return type(batch)(*(x.to(device) for x in batch))


def _reversal_batch(n, l_train, generator, device):
    return _to(reversal_translation(n, 1, l_train, generator), device)


def train_model(
    model, make_batch, steps, lr, clip=1.0, progress=True, desc="training"
):
    """Adam on the teacher-forced loss; returns the loss of every step.

    Args:
        model: a :class:`rnnbook.seq2seq.Seq2Seq`.
        make_batch: a function returning a :class:`rnnbook.tasks.Seq2SeqBatch`
            on the model's device.
        steps: updates. lr: Adam's learning rate. clip: the gradient norm's
            threshold (``None``: no clipping).
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        b = make_batch()
        loss = sequence_loss(
            model(b.src, b.src_mask, b.tgt_in), b.tgt_out, b.tgt_mask
        )
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def match_rates(model, batch, max_len):
    """``(exact, token)`` accuracy of greedy decoding on ``batch``.

    ``exact``: the fraction of sentences decoded exactly (EOS included).
    ``token``: the fraction of target positions (EOS included) where the
    output holds the target's token at the same position.
    """
    out = greedy_decode(model, batch.src, batch.src_mask, max_len)
    T = max(out.shape[1], batch.tgt_out.shape[1])
    out = torch.nn.functional.pad(out, (0, T - out.shape[1]))
    tgt = torch.nn.functional.pad(
        batch.tgt_out, (0, T - batch.tgt_out.shape[1])
    )
    mask = torch.nn.functional.pad(
        batch.tgt_mask, (0, T - batch.tgt_mask.shape[1])
    )
    same = (out == tgt) | ~mask  # (B, T): right, or nothing to predict
    exact = same.all(1).double().mean().item()
    token = ((out == tgt) & mask).sum().item() / mask.sum().item()
    return exact, token


def lcs_length(a, b):
    """The length of a longest common subsequence of ``a`` and ``b``.

    The classic dynamic programme, ``O(len(a) len(b))``: ``n[i][j]``, the
    LCS of ``a[:i]`` and ``b[:j]``, is ``n[i-1][j-1] + 1`` when
    ``a[i-1] == b[j-1]`` and ``max(n[i-1][j], n[i][j-1])`` otherwise.
    """
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
        prev = row
    return prev[-1]


def aligned_symbol_accuracy(outputs, targets):
    """Symbol accuracy that forgives shifts: ``sum LCS / sum max length``.

    ``outputs`` and ``targets`` are lists of token sequences (e.g. each up
    to and including its EOS). Position-by-position accuracy counts every
    symbol after one dropped or inserted symbol as wrong; here the symbols
    of an output are matched in order to those of its target (a longest
    common subsequence), so a dropped, inserted or wrong symbol costs one:
    each pair counts ``max(len(output), len(target))`` symbols, of which
    the LCS are right. Equals the positional accuracy when every output
    has its target's length and differs only by substitutions.
    """
    if len(outputs) != len(targets):
        raise ValueError(
            f"expected as many outputs as targets, got {len(outputs)} "
            f"and {len(targets)}"
        )
    total = sum(max(len(o), len(t)) for o, t in zip(outputs, targets))
    if total == 0:
        raise ValueError("expected at least one symbol, got none")
    return sum(lcs_length(o, t) for o, t in zip(outputs, targets)) / total


def accuracy_by_length(model, lengths, n, seed, device="cpu"):
    """Exact-match and token accuracy at each source length (reversal task).

    Returns ``{"exact": [...], "token": [...]}``, one entry per length, each
    from ``n`` fresh sentences of exactly that length.
    """
    exact, token = [], []
    for L in lengths:
        stream = np.random.SeedSequence(seed, spawn_key=(L,))
        gen = torch.Generator().manual_seed(
            int(stream.generate_state(1, dtype=np.uint64)[0])
        )
        batch = _to(reversal_translation(n, L, L, gen), device)
        e, t = match_rates(model, batch, max_len=L + 5)
        exact.append(e)
        token.append(t)
    return {"exact": exact, "token": token}


def source_gradient_norms(model, batch):
    """``||dL/dx_j||`` for each source position ``j``, averaged over a batch.

    ``L`` is the teacher-forced negative log-likelihood of the whole
    target sentence (every step's loss, summed) and
    ``x_j`` the embedding of source symbol ``j``: where position ``j``
    enters the encoder. Every path from the loss to ``x_j`` is counted, so
    in a plain encoder-decoder the gradient must come through the summary
    and the chain of GRU steps between it and ``j``; with attention it also
    comes through ``h_j`` directly. Use a batch of equal-length sources.

    Returns:
        A numpy array ``(S,)``, over the real source positions (EOS too).
    """
    if not bool(batch.src_mask.all()):
        raise ValueError("expected a batch of equal-length sources (no PAD)")
    embed = model.encoder.embed
    x = embed(batch.src).detach().requires_grad_(True)  # (B, S, E)
    handle = embed.register_forward_hook(lambda module, inp, out: x)
    try:
        logits = model(batch.src, batch.src_mask, batch.tgt_in)
    finally:
        handle.remove()
    mean = sequence_loss(logits, batch.tgt_out, batch.tgt_mask)
    loss = mean * batch.tgt_mask.sum()  # the summed negative log-likelihood
    (grad,) = torch.autograd.grad(loss, x)  # grad[b]: sentence b's own loss
    return grad.norm(dim=2).mean(0).detach().cpu().numpy()


def mirror_alignment(model, batch):
    """The fraction of target symbols whose attention peaks on the mirror.

    For the reversal task, output ``t`` (``t < L``) translates source
    position ``L - 1 - t``; we count how often ``argmax_j alpha_tj`` is that
    position, under teacher forcing.
    """
    weights = model.alignments(batch.src, batch.src_mask, batch.tgt_in)
    lengths = batch.src_mask.sum(1) - 1  # L, without the source's EOS
    hits = total = 0
    for b in range(weights.shape[0]):
        L = int(lengths[b])
        peaks = weights[b, :L].argmax(1)
        mirror = torch.arange(L - 1, -1, -1, device=peaks.device)
        hits += int((peaks == mirror).sum())
        total += L
    return hits / total


def validation_scores(model, batch, max_len):
    """``(exact, loss)`` on a validation batch: greedy exact match and the
    teacher-forced loss (mean negative log-likelihood per target symbol).
    """
    exact, _ = match_rates(model, batch, max_len)
    with torch.no_grad():
        logits = model(batch.src, batch.src_mask, batch.tgt_in)
        loss = sequence_loss(logits, batch.tgt_out, batch.tgt_mask).item()
    return exact, loss


def train_reversal(
    config, attention, seeds, lr, steps, device, progress, desc
):
    """One model of the reversal task, built and trained from ``seeds``.

    Seeding with ``seeds["init"]`` before building and drawing the batches
    from ``seeds["data"]`` is what makes runs that share ``seeds`` paired.
    Returns ``(model, losses)``.
    """
    torch.manual_seed(seeds["init"])
    model = seq2seq_model(
        len(REVERSAL_VOCAB),
        config.embed_size,
        model_hidden(config, attention),
        attention,
    ).to(device)
    data = torch.Generator().manual_seed(seeds["data"])
    batches = functools.partial(
        _reversal_batch, config.batch_size, config.l_train, data, device
    )
    losses = train_model(
        model, batches, steps, lr, config.clip, progress, desc=desc
    )
    return model, losses


def select_learning_rates(config, device="cpu", progress=True):
    """The pilot: each model's learning rate, chosen on validation data.

    Every model trains once at every rate of ``config.pilot_rates`` for
    ``config.pilot_steps`` steps (the seeds of ``run_seeds(0, "pilot")``,
    the same for every model and rate) and is scored on
    ``config.n_validation`` sentences of 1 to ``l_train`` symbols from the
    ``validation`` seed. The chosen rate has the highest validation exact
    match, ties going to the lower validation loss.

    Returns:
        ``{"seeds", "steps", "rates", "runs": [...], "chosen": {model:
        rate}}``, each run with its model, rate, validation exact match
        and loss, final training loss and seconds.
    """
    seeds = run_seeds(0, "pilot")
    val = _to(
        reversal_translation(
            config.n_validation,
            1,
            config.l_train,
            torch.Generator().manual_seed(seeds["validation"]),
        ),
        device,
    )
    runs, chosen = [], {}
    for name, attention in MODELS.items():
        scored = []
        for lr in config.pilot_rates:
            start = time.perf_counter()
            model, losses = train_reversal(
                config,
                attention,
                seeds,
                lr,
                config.pilot_steps,
                device,
                progress,
                desc=f"pilot {name} lr {lr:g}",
            )
            exact, loss = validation_scores(model, val, config.l_train + 5)
            if not np.isfinite(loss):
                loss = float("inf")  # a diverged run ranks last
            scored.append((-exact, loss, lr))
            runs.append(
                {
                    "model": name,
                    "lr": lr,
                    "val_exact": exact,
                    "val_loss": loss,
                    "final_loss": float(np.mean(losses[-50:])),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
        chosen[name] = min(scored)[2]
    return {
        "seeds": seeds,
        "steps": config.pilot_steps,
        "rates": list(config.pilot_rates),
        "n_validation": config.n_validation,
        "runs": runs,
        "chosen": chosen,
    }


def run_reversal(config, repeat, lrs=None, device="cpu", progress=True):
    """Train both models for one repeat; return their results.

    ``lrs``: ``{model name: learning rate}`` (e.g. the pilot's choice);
    ``None``: ``config.lr`` for both.
    """
    seeds = run_seeds(repeat)
    lengths = list(range(1, 2 * config.l_train + 1))
    results = []
    for name, attention in MODELS.items():
        lr = config.lr if lrs is None else lrs[name]
        start = time.perf_counter()
        model, losses = train_reversal(
            config,
            attention,
            seeds,
            lr,
            config.steps,
            device,
            progress,
            desc=f"{name} repeat {repeat}",
        )
        accuracy = accuracy_by_length(
            model, lengths, config.n_test, seeds["test"], device
        )
        results.append(
            {
                "model": name,
                "repeat": repeat,
                "seeds": seeds,
                "hidden_size": model_hidden(config, attention),
                "lr": lr,
                "parameters": sum(p.numel() for p in model.parameters()),
                "lengths": lengths,
                **accuracy,
                "final_loss": float(np.mean(losses[-50:])),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    return results


def run_dates(config, device="cpu", progress=True):
    """Train the attention model on dates; accuracy and a few alignments."""
    seeds = run_seeds(0, "dates")
    vocab = date_vocab()
    torch.manual_seed(seeds["init"])
    model = seq2seq_model(
        len(vocab), config.embed_size, config.hidden_size, True
    ).to(device)
    data = torch.Generator().manual_seed(seeds["data"])
    train_days, test_days = date_days(config)

    def make_batch():
        pairs = date_examples(config.batch_size, data, train_days)
        return _to(vocab.batch((t, iso) for t, iso, _, _ in pairs), device)

    start = time.perf_counter()
    losses = train_model(
        model,
        make_batch,
        config.date_steps,
        config.lr,
        config.clip,
        progress,
        desc="dates",
    )
    test = date_examples(
        config.date_test,
        torch.Generator().manual_seed(seeds["test"]),
        test_days,
    )
    batch = _to(vocab.batch((t, iso) for t, iso, _, _ in test), device)
    exact, token = match_rates(model, batch, max_len=12)
    return {
        "seeds": seeds,
        "exact": exact,
        "token": token,
        "final_loss": float(np.mean(losses[-50:])),
        "held_out": config.date_held_out,
        "train_days": len(train_days or ()),
        "test_days": len(test_days or ()),
        "examples": date_alignments(
            model, vocab, test[: config.date_examples]
        ),
        "seconds": round(time.perf_counter() - start, 1),
    }


def date_days(config):
    """``(train_days, test_days)`` of the date model of ``config``.

    With ``config.date_held_out``: :func:`rnnbook.tasks.date_split` of
    the calendar, a ``date_held_out_fraction`` of the days for testing,
    from the dates part's ``split`` seed; without: ``(None, None)``, every
    day for both (:func:`rnnbook.tasks.date_examples`' default).
    """
    if not config.date_held_out:
        return None, None
    seed = run_seeds(0, "dates")["split"]
    return date_split(
        config.date_held_out_fraction, torch.Generator().manual_seed(seed)
    )


def date_training_examples(config):
    """The set of ``(source, iso)`` pairs the date model of ``config``
    trains on.

    Re-draws the training batches of :func:`run_dates` from the recorded
    ``data`` seed: ``config.date_steps`` batches of ``config.batch_size``
    examples, in the order training draws them (no model is needed).
    """
    data = torch.Generator().manual_seed(run_seeds(0, "dates")["data"])
    train_days, _ = date_days(config)
    seen = set()
    for _ in range(config.date_steps):
        seen.update(
            (t, iso)
            for t, iso, _, _ in date_examples(
                config.batch_size, data, train_days
            )
        )
    return seen


def date_alignments(model, vocab, examples):
    """Greedy outputs and their attention weights for a few date examples."""
    if not isinstance(vocab, Vocab):
        raise TypeError(f"expected a Vocab, got {type(vocab).__name__}")
    device = next(model.parameters()).device
    out = []
    for text, iso, locale, fmt in examples:
        src, src_mask = (t.to(device) for t in vocab.pad([text], eos=True))
        tokens = greedy_decode(model, src, src_mask, 12)[0]
        tgt_in = torch.cat([torch.tensor([vocab.BOS], device=device),
                            tokens[:-1]])[None]  # fmt: skip
        with torch.no_grad():
            weights = model.alignments(src, src_mask, tgt_in)[0]
        out.append(
            {
                "source": text,
                "target": iso,
                "locale": locale,
                "format": fmt,
                "output": "".join(vocab.decode(tokens)),
                "weights": np.round(weights.cpu().numpy(), 4).tolist(),
            }
        )
    return out


def main(argv=None):
    parser = experiment_parser(__doc__, device=True)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars"
    )
    parser.add_argument(
        "--plain-hidden",
        type=int,
        default=None,
        help="RNNencdec's hidden size (default: the same as RNNsearch's; "
        "69 matches RNNsearch's parameter count)",
    )
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: "bahdanau_tiny.json" if a.tiny else "bahdanau_lengths.json",
    )
    if args.plain_hidden is not None and args.plain_hidden < 1:
        parser.error(f"expected --plain-hidden >= 1, got {args.plain_hidden}")
    if args.threads < 1:
        parser.error(f"expected --threads >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    device = args.device
    config = TINY if args.tiny else Config()
    if args.plain_hidden is not None:
        config = dataclasses.replace(config, plain_hidden=args.plain_hidden)
    out = args.out
    progress = not args.no_progress
    start = time.perf_counter()
    pilot = select_learning_rates(config, device, progress)
    pilot["seconds"] = round(time.perf_counter() - start, 1)
    runs = []
    for repeat in tqdm(
        range(config.repeats), desc="repeats", disable=not progress
    ):
        runs.extend(
            run_reversal(config, repeat, pilot["chosen"], device, progress)
        )
    dates = run_dates(config, device, progress)
    seconds = time.perf_counter() - start
    result = {
        "command": "python -m rnnbook.experiments.bahdanau"
        + (" --tiny" if args.tiny else "")
        + (
            f" --plain-hidden {args.plain_hidden}"
            if args.plain_hidden is not None
            else ""
        ),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "babel": babel.__version__,
        "cldr": babel.core.get_cldr_version(),
        "config": asdict(config),
        "seed_entropy": ENTROPY,
        "parameters": parameter_counts(config),
        "pilot": pilot,
        "runs": runs,
        "dates": dates,
    }
    write_json_atomic(out, result)
    print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
