"""Selective copying: time-invariant state space models against Mamba.

Chapter 7's experiment, a laptop-scale version of the Mamba paper's
Table 1 (Gu & Dao, 2023, section 4.1.1). The task is
:func:`rnnbook.tasks.selective_copying`: ``K`` data tokens at random
positions among noise in a context of ``T`` tokens, then ``K`` markers at
which the model must output the data tokens in order. Three models of two
layers and about the same number of parameters (recorded) take the same
Adam updates on the same batches and are tested on the same sequences:

- S4D: Chapter 6's :class:`rnnbook.s4d.S4DModel` (S4D-Lin, GELU, GLU,
  post-norm) reading one-hot tokens, with its SSM parameters at a smaller
  learning rate (S4D's recipe, as in Chapter 6);
- Mamba-LTI: :class:`rnnbook.mamba.MambaModel` with ``selective=False``,
  the Mamba architecture (projections, convolution, gate) around a
  time-invariant SSM: the paper's "Mamba architecture, S4 layer" row;
- Mamba: the same architecture with the selective SSM (the "S6" row).

The score is the accuracy on the ``K`` copied tokens of fresh test
sequences (guessing scores ``1 / (vocab_size - 2)``).

Before the comparison, a *pilot* picks each model's learning rate
(:func:`select_learning_rates`): every model trains once at every rate of
``pilot_rates`` for the comparison's whole budget, on the pilot's own seed
stream, and is scored on validation sequences drawn from that stream,
never on the test sequences. The S4D model's SSM parameters keep their
own, lower rate ``s4d_ssm_lr`` (S4D's recipe); the pilot tunes the rate of
everything else.

Usage::

    python -m rnnbook.experiments.selective_copying        # the chapter's
    python -m rnnbook.experiments.selective_copying --no-pilot  # untuned
    python -m rnnbook.experiments.selective_copying --tiny --out /tmp/t.json

``--no-pilot`` skips the pilot and trains every model at its untuned
default rate (:func:`default_rate`), on the same seeds: the chapter
compares the two files seed by seed.

The comparison is paired: for each seed the initialization, data and test
generators come from :class:`numpy.random.SeedSequence` streams keyed by
the part of the run and the seed alone (:func:`run_seeds`), shared by the
three models. The result
file holds the configuration, each run's seeds, parameter count, training
curve (mean loss per block of ``record_every`` updates), test accuracy
every ``eval_every`` updates and at the end, its learning rate, the pilot's
runs and choices, the command, versions and seconds; it is written
atomically.
"""

import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rnnbook._checks import check_positive_int
from rnnbook.experiments._io import (
    experiment_parser,
    parse_experiment_args,
    run_all,
    write_json_atomic,
)
from rnnbook.mamba import MambaModel
from rnnbook.s4d import S4DModel, ssm_parameters
from rnnbook.tasks import selective_copying
from rnnbook.train import train

ENTROPY = 20231201
"""The root of every run's seed streams (changing it re-draws every run)."""

MODELS = ("S4D", "Mamba-LTI", "Mamba")
"""The models: two time-invariant, one selective."""

PAPER_TABLE_1 = {
    "No gate": {"S4": 18.3, "S6": 97.0},
    "H3": {"S4": 57.0, "Hyena": 30.1, "S6": 99.7},
    "Mamba": {"S4": 56.4, "Hyena": 28.4, "S6": 99.8},
}
"""Gu & Dao (2023), Table 1: accuracy (%) by architecture and inner layer,
at L = 4096 with 16 data tokens, vocabulary 16, 2 layers of width 64,
400K updates (appendix E.1)."""


@dataclass
class Config:
    T: int = 64  # context length (noise and data)
    K: int = 8  # data tokens to copy
    vocab_size: int = 16  # noise, 14 data symbols, marker (the paper's 16)
    seeds: int = 3
    updates: int = 2500  # curves still rose at 1000 (the first run)
    batch_size: int = 32
    layers: int = 2
    mamba_width: int = 32  # D
    mamba_state: int = 16  # N
    mamba_lr: float = 3e-3  # --no-pilot only (and run's default)
    mamba_scan: str = "loop"  # faster than "parallel" at this short L
    s4d_channels: int = 54  # H: about the Mamba models' parameter count
    s4d_state: int = 32  # N
    s4d_lr: float = 1e-2  # --no-pilot only (and run's default)
    s4d_ssm_lr: float = 1e-3  # fixed: the pilot does not tune it
    pilot_rates: tuple = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    pilot_steps: int = 2500  # the comparison's whole budget
    n_validation: int = 1000
    clip: float = 1.0
    n_test: int = 1000
    record_every: int = 25
    eval_every: int = 250
    models: tuple = MODELS


TINY = Config(
    T=12,
    K=3,
    vocab_size=6,
    seeds=2,
    updates=6,
    batch_size=4,
    mamba_width=8,
    mamba_state=4,
    s4d_channels=8,
    s4d_state=4,
    n_test=16,
    record_every=2,
    eval_every=3,
    pilot_rates=(1e-3, 1e-2),
    pilot_steps=4,
    n_validation=16,
)

LIVE = Config(
    T=16,
    K=4,
    vocab_size=8,
    seeds=1,
    updates=150,
    mamba_width=16,
    mamba_lr=1e-2,
    s4d_channels=26,
    n_test=200,
    record_every=10,
    eval_every=50,
    models=("Mamba-LTI", "Mamba"),
)
"""A configuration small enough for the chapter to re-run live, with
``run(LIVE, progress=False)``: the two Mamba models only, 150 updates at
T = 16, K = 4 (25 s on the busy 2-core machine it was calibrated on)."""


class S4DTokens(nn.Module):
    """:class:`rnnbook.s4d.S4DModel` reading tokens as one-hot vectors:
    tokens (B, L) -> ``(y, hs)``, logits y (B, L, V), features hs."""

    def __init__(self, V, H, N, n_layers):
        super().__init__()
        self.V = V
        self.model = S4DModel(V, V, H=H, N=N, n_layers=n_layers)

    def forward(self, tokens):
        return self.model(F.one_hot(tokens, self.V).float())


def n_parameters(model):
    """The number of trained numbers in ``model``."""
    return sum(p.numel() for p in model.parameters())


PARTS = {
    "comparison": ("init", "data", "test"),
    "pilot": ("init", "data", "validation"),
}
"""The seeds each part of the run draws: part -> their names."""


def run_seeds(seed, part="comparison"):
    """The seeds of one paired cell of one part, e.g. ``{"init", "data",
    "test"}``.

    Each is a 64-bit integer from its own :class:`numpy.random.SeedSequence`
    stream, spawned from ``SeedSequence(ENTROPY, spawn_key=(part_index,
    seed))``, the names those of :data:`PARTS` (the pilot draws
    ``validation`` sequences, never ``test`` ones). The model and the
    learning rate are not part of the key: the three models of a seed share
    the data and the scoring sequences (and the initialization stream).
    """
    if part not in PARTS:
        raise ValueError(f"expected a part in {list(PARTS)}, got {part!r}")
    cell = np.random.SeedSequence(
        ENTROPY, spawn_key=(list(PARTS).index(part), seed)
    )
    names = PARTS[part]
    return {
        name: int(s.generate_state(1, dtype=np.uint64)[0])
        for name, s in zip(names, cell.spawn(len(names)))
    }


def default_rate(config, model):
    """The learning rate ``model`` trains at without a pilot."""
    if model not in MODELS:
        raise ValueError(f"expected model one of {MODELS}, got {model!r}")
    return config.s4d_lr if model == "S4D" else config.mamba_lr


def make_model(config, model):
    """A new ``model`` of :data:`MODELS` for ``config``, initialized from
    torch's global random stream.

    Mamba-LTI is paired with Mamba: it is built, then every tensor it
    shares by name and shape with the Mamba model this same stream would
    build (embedding, projections, convolutions, A, D, norms, head), and
    each layer's step-size bias, is copied from that twin
    (``_share_initialization``). The two start identical but for their
    SSM's Delta, B and C.
    """
    if model not in MODELS:
        raise ValueError(f"expected model one of {MODELS}, got {model!r}")
    V = config.vocab_size
    if model == "S4D":
        return S4DTokens(
            V, config.s4d_channels, config.s4d_state, config.layers
        )

    def mamba(selective):
        return MambaModel(
            V,
            config.mamba_width,
            config.layers,
            config.mamba_state,
            selective=selective,
            scan=config.mamba_scan,
        )

    if model == "Mamba":
        return mamba(True)
    stream = torch.random.get_rng_state()
    lti = mamba(False)
    torch.random.set_rng_state(stream)
    _share_initialization(lti, mamba(True))
    return lti


@torch.no_grad()
def _share_initialization(lti, selective):
    """Copy into the time-invariant MambaModel ``lti`` every tensor of the
    selective ``selective`` with the same name and shape, and each layer's
    step-size bias (``dt_proj.bias`` -> ``dt_bias``); returns the names
    copied into ``lti``."""
    mine = lti.state_dict()
    copied = []
    for name, value in selective.state_dict().items():
        target = name.replace("dt_proj.bias", "dt_bias")
        if target in mine and mine[target].shape == value.shape:
            mine[target].copy_(value)
            copied.append(target)
    return copied


def make_optimizer(config, model_name, model, lr):
    """Adam at ``lr``; the S4D model's SSM parameters get ``s4d_ssm_lr``."""
    if model_name != "S4D":
        return torch.optim.Adam(model.parameters(), lr=lr)
    slow = ssm_parameters(model)
    ids = {id(p) for p in slow}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.Adam(
        [{"params": rest}, {"params": slow, "lr": config.s4d_ssm_lr}],
        lr=lr,
    )


def batches(config, generator, device="cpu", n=None):
    """A function drawing ``(tokens, targets)`` batches of ``n`` sequences
    (default ``config.batch_size``).

    ``targets`` (n, K) are the data tokens: the loss is read at the ``K``
    marker positions only, where the task's mask is True.
    """
    n = config.batch_size if n is None else n

    def make_batch():
        tokens, targets, mask = selective_copying(
            n, config.T, config.K, generator, config.vocab_size
        )
        return tokens.to(device), targets[mask].view(n, config.K).to(device)

    return make_batch


def copy_loss(y, targets):
    """Cross-entropy at the ``K`` marker positions (the last K outputs)."""
    K = targets.shape[1]
    return F.cross_entropy(y[:, -K:].flatten(0, 1), targets.flatten())


@torch.no_grad()
def scores(model, config, seed, n, device="cpu", chunk=250):
    """``(token accuracy, sequence accuracy, loss)`` on ``n`` fresh
    sequences drawn from ``seed``.

    Token accuracy: the fraction of the ``K`` copied tokens the model gets
    right; sequence accuracy: the fraction of sequences with all ``K``
    right; loss: the mean :func:`copy_loss` per copied token. All over the
    same sequences for a given ``seed``.
    """
    n = check_positive_int("n", n)
    gen = torch.Generator().manual_seed(seed)
    right = whole = 0
    loss = 0.0
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        tokens, targets = batches(config, gen, device, size)()
        y, _ = model(tokens)
        hits = y[:, -config.K :].argmax(-1) == targets  # (B, K)
        right += hits.sum().item()
        whole += hits.all(-1).sum().item()
        loss += copy_loss(y, targets).item() * size
    return right / (n * config.K), whole / n, loss / n


def test_accuracy(model, config, seed, device="cpu", n=None):
    """``(token accuracy, sequence accuracy)`` on ``n`` (default
    ``config.n_test``) fresh test sequences drawn from ``seed``."""
    n = config.n_test if n is None else n
    return scores(model, config, seed, n, device)[:2]


def run_one(job):
    """Train one model on one seed at one rate; return a dict describing
    the run.

    ``job`` is ``(config, model name, seed, learning rate, device)``, as
    :func:`jobs` and :func:`pilot_jobs` make them. A comparison run is
    scored on ``config.n_test`` test sequences every ``eval_every`` updates
    and at the end; a pilot run (a job with part ``"pilot"``) only at the
    end, on ``config.n_validation`` validation sequences.
    """
    config, model_name, seed, lr, device, *part = job
    part = part[0] if part else "comparison"
    seeds = run_seeds(seed, part)
    torch.manual_seed(seeds["init"])
    model = make_model(config, model_name).to(device)
    data = torch.Generator().manual_seed(seeds["data"])
    evals = []

    def evaluate(updates, model):
        if part == "pilot":
            return
        if updates % config.eval_every == 0 and updates < config.updates:
            model.eval()
            acc, _ = test_accuracy(model, config, seeds["test"], device)
            model.train()
            evals.append((updates, round(acc, 4)))

    start = time.perf_counter()
    steps = config.pilot_steps if part == "pilot" else config.updates
    history = train(
        model,
        batches(config, data, device),
        steps,
        optimizer=make_optimizer(config, model_name, model, lr),
        loss_fn=copy_loss,
        clip=config.clip,
        progress=False,
        on_update=evaluate,
    )
    k = config.record_every
    losses = np.asarray(history.loss)
    curve = losses[: len(losses) // k * k].reshape(-1, k).mean(1)
    token_acc = seq_acc = None
    if part == "pilot":
        acc, _, loss = (None, None, None)
        if history.stopped is None:
            acc, _, loss = scores(
                model, config, seeds["validation"], config.n_validation, device
            )
        return {
            "model": model_name,
            "lr": lr,
            "val_token_accuracy": acc,
            "val_loss": loss,
            "final_loss": (
                round(float(np.mean(history.loss[-100:])), 5)
                if history.loss
                else None
            ),
            "updates_done": history.updates,
            "stopped": history.stopped,
            "seconds": round(time.perf_counter() - start, 1),
        }
    if history.stopped is None:
        token_acc, seq_acc = test_accuracy(
            model, config, seeds["test"], device
        )
        evals.append((history.updates, round(token_acc, 4)))
    return {
        "model": model_name,
        "seed": seed,
        "lr": lr,
        "seeds": seeds,
        "parameters": n_parameters(model),
        "curve": [round(float(v), 5) for v in curve],
        "test_curve": evals,
        "token_accuracy": token_acc,
        "sequence_accuracy": seq_acc,
        "updates_done": history.updates,
        "stopped": history.stopped,
        "seconds": round(time.perf_counter() - start, 1),
    }


def jobs(config, device="cpu", lrs=None):
    """Every (model, seed) run of ``config.models``, the slowest first,
    each at its rate in ``lrs`` (``{model: rate}``, default
    :func:`default_rate`)."""
    lrs = lrs or {}
    return [
        (
            config,
            model,
            seed,
            lrs.get(model, default_rate(config, model)),
            device,
        )
        for model in reversed(MODELS)
        if model in config.models
        for seed in range(config.seeds)
    ]


def pilot_jobs(config, device="cpu"):
    """Every (model, rate) run of the pilot, the slowest model first; all
    on the pilot's seed 0."""
    return [
        (config, model, 0, lr, device, "pilot")
        for model in reversed(MODELS)
        if model in config.models
        for lr in config.pilot_rates
    ]


def select_learning_rates(config, workers=1, device="cpu", progress=True):
    """The pilot: each model's learning rate, chosen on validation data.

    Every model of ``config.models`` trains once at every rate of
    ``config.pilot_rates`` for ``config.pilot_steps`` updates (the seeds of
    ``run_seeds(0, "pilot")``, the same for every model and rate) and is
    scored on ``config.n_validation`` sequences from the ``validation``
    seed. The chosen rate has the highest validation token accuracy, ties
    going to the lower validation loss; a run that stopped on a non-finite
    loss ranks last.

    Returns:
        ``{"seeds", "steps", "rates", "n_validation", "runs": [...],
        "chosen": {model: rate}}``, each run with its model, rate,
        validation token accuracy and loss, final training loss, updates
        done, why it stopped (or None) and seconds.
    """
    rates = config.pilot_rates
    if not rates or any(not (isinstance(r, float) and r > 0) for r in rates):
        raise ValueError(
            f"expected pilot_rates a non-empty tuple of positive floats, "
            f"got {rates!r}"
        )
    runs = run_all(
        run_one,
        pilot_jobs(config, str(device)),
        workers,
        desc="pilot",
        progress=progress,
    )
    runs.sort(key=lambda r: (MODELS.index(r["model"]), r["lr"]))
    chosen = {}
    for model in (m for m in MODELS if m in config.models):
        ranked = [
            (
                -(r["val_token_accuracy"] if r["stopped"] is None else -1),
                r["val_loss"] if r["stopped"] is None else float("inf"),
                r["lr"],
            )
            for r in runs
            if r["model"] == model
        ]
        chosen[model] = min(ranked)[2]
    return {
        "seeds": run_seeds(0, "pilot"),
        "steps": config.pilot_steps,
        "rates": list(config.pilot_rates),
        "n_validation": config.n_validation,
        "runs": runs,
        "chosen": chosen,
    }


def run(config, workers=1, device="cpu", progress=True, lrs=None):
    """Every comparison run of ``config``, each model at its rate in
    ``lrs`` (default :func:`default_rate`); returns the list of run
    dicts."""
    results = run_all(
        run_one,
        jobs(config, str(device), lrs),
        workers,
        desc="selective_copying",
        progress=progress,
        label=lambda r: (
            f"{r['model']} seed {r['seed']}: accuracy {r['token_accuracy']}"
        ),
    )
    return sorted(results, key=lambda r: (MODELS.index(r["model"]), r["seed"]))


def main(argv=None):
    parser = experiment_parser(__doc__, workers=1, device=True)
    parser.add_argument(
        "--no-pilot",
        action="store_true",
        help="skip the pilot: every model at its default (untuned) rate",
    )
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: (
            "selective_copying"
            + ("_untuned" if a.no_pilot else "")
            + ("_tiny" if a.tiny else "")
            + ".json"
        ),
    )
    config = TINY if args.tiny else Config()
    start = time.perf_counter()
    pilot = None
    if not args.no_pilot:
        pilot = select_learning_rates(config, args.workers, args.device)
        pilot["seconds"] = round(time.perf_counter() - start, 1)
        print("pilot chose:", pilot["chosen"])
    lrs = (
        pilot["chosen"]
        if pilot
        else {m: default_rate(config, m) for m in config.models}
    )
    runs = run(config, workers=args.workers, device=args.device, lrs=lrs)
    seconds = time.perf_counter() - start
    result = {
        "command": "python -m rnnbook.experiments.selective_copying"
        + (" --no-pilot" if args.no_pilot else "")
        + (" --tiny" if args.tiny else ""),
        "workers": args.workers,
        "device": str(args.device),
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "config": asdict(config),
        "chance": 1 / (config.vocab_size - 2),
        "paper_table_1": PAPER_TABLE_1,
        "seed_entropy": ENTROPY,
        "pilot": pilot,
        "learning_rates": lrs,  # the rates the runs used, by model
        "runs": runs,
    }
    write_json_atomic(args.out, result)
    print(f"wrote {len(runs)} runs to {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
