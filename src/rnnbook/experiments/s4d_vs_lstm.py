"""The adding problem from T = 100 to 2000: an S4D model against an LSTM.

Chapter 6's experiment. The task is :func:`rnnbook.tasks.adding_problem`
with its distractors silenced (:func:`adding_batch`): every value that is
not marked is set to 0, so the answer still lies T/2 to T steps back but
the steps in between carry no noise, as in Hochreiter & Schmidhuber's
(1997) noise-free long-lag experiments. It runs at every length of
``Config.lengths`` (``Config.seeds`` seeds each); at the lengths of
``Config.noisy_lengths`` the S4D model and the chrono LSTM also train on
the original, noisy task (``Config.noisy_seeds`` seeds). The models
have about the same number of parameters, take the same number of Adam
updates on the same batches, and are tested on the same fresh sequences:

- S4D: :class:`rnnbook.s4d.S4DModel` (two S4D-Lin layers), Adam with the
  SSM parameters at a smaller learning rate (S4D's recipe);
- LSTM: Chapter 3's :class:`rnnbook.gated.LSTM` initialization with the
  forget-gate bias at 1, run by ``torch.nn.LSTM``'s kernels (Chapter 3
  shows the two compute the same function), gradient norms clipped at 1,
  and its learning rate tuned per length: every rate of
  ``Config.lstm_lrs`` is run at every length and all are recorded, so the
  chapter can show the best;
- LSTM-chrono: the same LSTM with Tallec & Ollivier's (2018) chrono
  initialization (:func:`chrono_init_`), at ``Config.chrono_lr``.

Usage::

    python -m rnnbook.experiments.s4d_vs_lstm          # the chapter's data
    python -m rnnbook.experiments.s4d_vs_lstm --tiny --out /tmp/tiny.json

The comparison is paired: at a (length, seed) cell the data and test
generators come from :class:`numpy.random.SeedSequence` streams keyed by
the cell alone (:func:`run_seeds`), shared by every model and learning
rate. The result file holds the configuration, each run's seeds, its
training curve (mean loss per block of ``record_every`` updates) and test
error, the command, versions and seconds; it is written atomically.
"""

import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rnnbook.experiments._io import (
    experiment_parser,
    parse_experiment_args,
    run_all,
    write_json_atomic,
)
from rnnbook.gated import LSTM
from rnnbook.s4d import S4DModel, ssm_parameters
from rnnbook.tasks import adding_problem
from rnnbook.train import train

ENTROPY = 20221018
"""The root of every run's seed streams (changing it re-draws every run)."""

BASELINE_MSE = 1 / 24
"""The test error of always predicting 0.5 (rnnbook.tasks.adding_problem)."""

TASKS = ("silent", "noisy")
"""The adding problem with its distractors set to 0, and the original."""


@dataclass
class Config:
    lengths: tuple = (100, 250, 500, 1000, 2000)
    seeds: tuple = (3, 3, 3, 5, 2)  # seeds[i] seeds at lengths[i]
    noisy_lengths: tuple = (1000,)  # S4D and LSTM-chrono on the noisy task
    noisy_seeds: int = 5  # at each of noisy_lengths
    updates: int = 800
    batch_size: int = 16
    s4d_channels: int = 16  # H
    s4d_state: int = 32  # N
    s4d_layers: int = 2
    s4d_lr: float = 1e-2
    s4d_ssm_lr: float = 1e-3
    lstm_hidden: int = 26  # about the S4D model's parameter count
    lstm_lrs: tuple = (1e-3, 3e-3, 1e-2)
    lstm_forget_bias: float = 1.0
    chrono_lr: float = 1e-3  # LSTM-chrono: the best rate of lstm_lrs
    clip: float = 1.0
    n_test: int = 1000
    record_every: int = 10

    def __post_init__(self):
        if len(self.seeds) != len(self.lengths):
            raise ValueError(
                f"expected one seed count per length ({len(self.lengths)})"
                f", got {len(self.seeds)}"
            )
        if not set(self.noisy_lengths) <= set(self.lengths):
            raise ValueError(
                f"expected noisy_lengths among lengths {self.lengths}, "
                f"got {self.noisy_lengths}"
            )

    def seeds_at(self, T):
        """The number of seeds of the silent task at length T."""
        return dict(zip(self.lengths, self.seeds))[T]


TINY = Config(
    lengths=(12, 20),
    seeds=(1, 2),
    noisy_lengths=(20,),
    updates=6,
    batch_size=4,
    s4d_channels=4,
    s4d_state=4,
    lstm_hidden=4,
    noisy_seeds=1,
    lstm_lrs=(1e-2,),
    chrono_lr=1e-2,
    n_test=16,
    record_every=2,
)


class LSTMRegressor(nn.Module):
    """An LSTM and a linear read-out of its last output: x (B, T, D) ->
    ``(y, hs)``, y (B,) and the outputs hs (B, T, H).

    Initialized as :class:`rnnbook.gated.LSTM` with ``forget_bias``, then
    run by ``torch.nn.LSTM`` (the same function, Chapter 3; faster). With
    ``chrono=T_max`` the gate biases are then set by :func:`chrono_init_`.
    """

    def __init__(self, D, H, forget_bias=1.0, chrono=None):
        super().__init__()
        self.lstm = nn.LSTM(D, H, batch_first=True)
        self.lstm.load_state_dict(
            LSTM(D, H, forget_bias=forget_bias).state_dict()
        )
        if chrono is not None:
            chrono_init_(self.lstm, chrono)
        self.readout = nn.Linear(H, 1)

    def forward(self, x):
        hs, _ = self.lstm(x)  # (B, T, H)
        return self.readout(hs[:, -1]).squeeze(-1), hs


@torch.no_grad()
def chrono_init_(lstm, T_max, generator=None):
    """Tallec & Ollivier's (2018, section 4) chrono initialization, in place.

    For each unit the forget gate's total bias is b_f = log u with
    u ~ U[1, T_max - 1], and the input gate's is b_i = -b_f, so the units'
    characteristic forgetting times spread between 1 and T_max steps.
    ``lstm`` is a one-layer ``torch.nn.LSTM`` (gate rows i, f, g, o); the
    values go into ``bias_ih_l0``, and ``bias_hh_l0`` is zeroed at those
    rows. ``generator``: a ``torch.Generator`` for the draw, or None.
    """
    if not isinstance(lstm, nn.LSTM) or lstm.num_layers != 1 or not lstm.bias:
        raise TypeError("expected a one-layer torch.nn.LSTM with biases")
    if isinstance(T_max, bool) or not isinstance(T_max, (int, np.integer)):
        raise TypeError(f"expected an int T_max, got {type(T_max).__name__}")
    if T_max < 3:
        raise ValueError(f"expected T_max >= 3, got {T_max}")
    H = lstm.hidden_size
    u = torch.rand(H, generator=generator, dtype=torch.float64)
    b_f = torch.log(1 + u * (T_max - 2)).to(lstm.bias_ih_l0.dtype)
    lstm.bias_ih_l0[:H] = -b_f  # input gate
    lstm.bias_ih_l0[H : 2 * H] = b_f  # forget gate
    lstm.bias_hh_l0[: 2 * H] = 0


class S4DRegressor(nn.Module):
    """:class:`rnnbook.s4d.S4DModel` read at the last step: x (B, T, D) ->
    ``(y, hs)``, y (B,) and the last layer's features hs (B, T, H)."""

    def __init__(self, D, H, N, n_layers, generator=None):
        super().__init__()
        self.model = S4DModel(
            D, 1, H=H, N=N, n_layers=n_layers, generator=generator
        )

    def forward(self, x):
        y, hs = self.model(x)  # (B, T, 1), (B, T, H)
        return y[:, -1, 0], hs


def n_parameters(model):
    """The number of trained numbers in ``model``."""
    return sum(p.numel() for p in model.parameters())


def run_seeds(T, seed):
    """The seeds of the (length, seed) cell: ``{"init", "data", "test"}``.

    Each is a 64-bit integer from its own :class:`numpy.random.SeedSequence`
    stream, spawned from ``SeedSequence(ENTROPY, spawn_key=(T, seed))``.
    Models and learning rates are not part of the key: all runs of a cell
    share the data and the test set, which makes the comparison paired.
    """
    cell = np.random.SeedSequence(ENTROPY, spawn_key=(T, seed))
    return {
        name: int(s.generate_state(1, dtype=np.uint64)[0])
        for name, s in zip(("init", "data", "test"), cell.spawn(3))
    }


MODELS = ("S4D", "LSTM", "LSTM-chrono")
"""The models by name; LSTM-chrono's T_max is the sequence length."""


def make_model(config, model, T):
    """A new regressor ``model`` of :data:`MODELS` (random init), for T."""
    if model not in MODELS:
        raise ValueError(f"expected model one of {MODELS}, got {model!r}")
    if model == "S4D":
        return S4DRegressor(
            2, config.s4d_channels, config.s4d_state, config.s4d_layers
        )
    chrono = T if model == "LSTM-chrono" else None
    return LSTMRegressor(
        2, config.lstm_hidden, config.lstm_forget_bias, chrono
    )


def make_optimizer(model, lr, ssm_lr=None):
    """Adam; an S4D model's SSM parameters get ``ssm_lr`` (S4D's recipe)."""
    slow = ssm_parameters(model) if ssm_lr is not None else []
    ids = {id(p) for p in slow}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": rest}]
    if slow:
        groups.append({"params": slow, "lr": ssm_lr})
    return torch.optim.Adam(groups, lr=lr)


def adding_batch(n, T, generator, task="silent"):
    """An adding-problem batch ``(inputs (n, T, 2), targets (n,))``.

    ``task="noisy"`` is :func:`rnnbook.tasks.adding_problem` unchanged;
    ``"silent"`` draws the same batch and sets every unmarked value to 0
    (value times marker), leaving the targets as they were.
    """
    if task not in TASKS:
        raise ValueError(f"expected task one of {TASKS}, got {task!r}")
    x, y = adding_problem(n, T, generator)
    if task == "silent":
        x[..., 0] *= x[..., 1]
    return x, y


def batches(n, T, generator, device, task="silent"):
    """A function drawing batches of ``task`` onto ``device``."""

    def make_batch():
        x, y = adding_batch(n, T, generator, task)  # drawn on the CPU
        return x.to(device), y.to(device)

    return make_batch


@torch.no_grad()
def test_mse(model, T, n, seed, device="cpu", task="silent", chunk=250):
    """Mean squared error on ``n`` fresh sequences of length T."""
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, n, chunk):
        x, y = batches(min(chunk, n - start), T, gen, device, task)()
        total += F.mse_loss(model(x)[0], y, reduction="sum").item()
    return total / n


def run_one(job):
    """Train one model on one cell; return a dict describing the run."""
    config, task, model_name, lr, T, seed, device = job
    seeds = run_seeds(T, seed)
    torch.manual_seed(seeds["init"])
    model = make_model(config, model_name, T).to(device)
    ssm_lr = config.s4d_ssm_lr if model_name == "S4D" else None
    data = torch.Generator().manual_seed(seeds["data"])
    start = time.perf_counter()
    history = train(
        model,
        batches(config.batch_size, T, data, device, task),
        config.updates,
        optimizer=make_optimizer(model, lr, ssm_lr),
        loss_fn=F.mse_loss,
        clip=config.clip,
        progress=False,
    )
    k = config.record_every
    losses = np.asarray(history.loss)
    curve = losses[: len(losses) // k * k].reshape(-1, k).mean(1)
    error = (
        test_mse(model, T, config.n_test, seeds["test"], device, task)
        if history.stopped is None
        else None
    )
    return {
        "task": task,
        "model": model_name,
        "lr": lr,
        "T": T,
        "seed": seed,
        "seeds": seeds,
        "parameters": n_parameters(model),
        "curve": [round(float(v), 6) for v in curve],
        "test_mse": error,
        "updates_done": history.updates,
        "stopped": history.stopped,
        "seconds": round(time.perf_counter() - start, 1),
    }


def jobs(config, device="cpu"):
    """Every (task, model, lr, length, seed) run."""
    runs = [("S4D", config.s4d_lr)] + [("LSTM", lr) for lr in config.lstm_lrs]
    runs.append(("LSTM-chrono", config.chrono_lr))
    noisy = [("S4D", config.s4d_lr), ("LSTM-chrono", config.chrono_lr)]
    todo = [
        (config, "silent", model, lr, T, seed, device)
        for T in sorted(config.lengths, reverse=True)
        for seed in range(config.seeds_at(T))
        for model, lr in runs
    ]
    return todo + [
        (config, "noisy", model, lr, T, seed, device)
        for T in sorted(config.noisy_lengths, reverse=True)
        for seed in range(config.noisy_seeds)
        for model, lr in noisy
    ]


def run(config, workers=1, device="cpu", progress=True):
    """Every run of ``config``; returns the list of run dicts."""
    results = run_all(
        run_one,
        jobs(config, str(device)),
        workers,
        desc="s4d_vs_lstm",
        progress=progress,
        label=lambda r: (
            f"{r['task']} {r['model']} lr={r['lr']:g} T={r['T']} "
            f"seed {r['seed']}: test MSE {r['test_mse']}"
        ),
    )
    return sorted(
        results,
        key=lambda r: (r["task"], r["T"], r["model"], r["lr"], r["seed"]),
    )


def main(argv=None):
    parser = experiment_parser(__doc__, workers=1, device=True)
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: "s4d_vs_lstm_tiny.json" if a.tiny else "s4d_vs_lstm.json",
    )
    device = args.device
    config = TINY if args.tiny else Config()
    out = args.out
    start = time.perf_counter()
    runs = run(config, workers=args.workers, device=device)
    seconds = time.perf_counter() - start
    result = {
        "command": "python -m rnnbook.experiments.s4d_vs_lstm"
        + (" --tiny" if args.tiny else ""),
        "workers": args.workers,
        "device": str(device),
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "config": asdict(config),
        "baseline_mse": BASELINE_MSE,
        "seed_entropy": ENTROPY,
        "runs": runs,
    }
    write_json_atomic(out, result)
    print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
