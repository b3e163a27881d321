"""Chapter 3's adding-problem runs: gated networks against the vanilla RNN.

Usage::

    python -m rnnbook.experiments.chapter3 --workers 1   # the chapter's data
    python -m rnnbook.experiments.chapter3 --tiny --out /tmp/tiny.json

Every run trains one network with :func:`adding_run` (Adam, batches of 64,
clipping at 1, mean squared error) at length ``T`` and records its loss
curve, the update at which it left the baseline
(:func:`rnnbook.probes.left_baseline`), the fraction of test sequences it
solves, and probes of its gradient flow before and after training. The
arms:

- ``grid``: LSTMs with ``b_f`` in ``FORGET_BIASES``, the orthogonal tanh
  RNN and the GRU, at the main learning rate, on the comparison seeds;
- ``select``: the LSTMs of the grid on the *selection* seeds, disjoint from
  the comparison seeds (the forget bias is chosen there);
- ``frozen``: an LSTM with ``b_f = 2`` whose forget-gate rows (of
  ``weight_ih``, ``weight_hh`` and both biases) get a zero gradient, so
  its forget gates keep their initial weights;
- ``gru_bias``: a GRU whose update gate's total bias is ``GRU_UPDATE_BIAS``
  (``z_t = 1`` keeps the state, so a positive bias favours keeping);
- ``lr``: every network of the comparison at the other learning rates of
  ``LRS``.

Seeds: run ``s`` draws its weights, batches and test set from the children
0, 1, 2 of ``SeedSequence(ENTROPY, spawn_key=(s,))``
(:func:`rnnbook.probes.torch_generator`), so at one seed every arm starts
from the same weights (apart from what the arm changes) and sees the same
batches and test sequences: the comparisons are paired. The result file
holds the configuration, every run, the command, versions and seconds; it
is written atomically.
"""

import math
import platform
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from rnnbook.experiments._io import (
    experiment_parser,
    parse_experiment_args,
    run_all,
    write_json_atomic,
)
from rnnbook.probes import (
    adding_batches,
    adding_model,
    forget_gates,
    gru_gradient_flow,
    left_baseline,
    lstm_jacobian_product,
    rnn_gradient_flow,
    solved_fraction,
    torch_generator,
)
from rnnbook.tasks import adding_problem
from rnnbook.train import train

ENTROPY = 3
INIT, DATA, TEST = 0, 1, 2  # the roles of a run's seed streams
BASELINE_MSE = 1 / 24  # Var(X1 + X2)/16: the constant answer 0.5
GRU_UPDATE_BIAS = 2.0


@dataclass(frozen=True)
class Config:
    """What every run of the experiment shares."""

    T: int = 40
    updates: int = 600
    hidden: int = 32
    batch: int = 64
    n_test: int = 1000
    clip: float = 1.0
    lr: float = 1e-2
    lrs: tuple = (1e-3, 3e-3, 1e-2, 3e-2)
    forget_biases: tuple = (0.0, 1.0, 2.0)
    seeds: tuple = (0, 1, 2)  # the comparison
    selection_seeds: tuple = (3, 4, 5)  # choosing b_f
    probe_length: int = 100
    probe_lags: tuple = tuple(range(10, 101, 10))
    probe_seed: int = 5
    window: int = 25  # the trailing mean of left_baseline


TINY = Config(
    T=8,
    updates=30,
    hidden=4,
    n_test=50,
    lrs=(1e-2, 3e-2),
    seeds=(0,),
    selection_seeds=(1,),
    probe_length=20,
    probe_lags=(10, 20),
    window=5,
)


def stream(seed):
    """The :class:`numpy.random.SeedSequence` of seed index ``seed``."""
    return np.random.SeedSequence(ENTROPY, spawn_key=(seed,))


def initial_model(kind, seed, forget_bias=2.0, update_bias=None, hidden=32):
    """The initial network of one run (:func:`rnnbook.probes.adding_model`).

    ``update_bias`` (GRU only) sets the update gate's total bias: its rows
    ``H:2H`` of ``bias_ih`` to the value and of ``bias_hh`` to 0.
    """
    gen = torch_generator(stream(seed), INIT)
    model = adding_model(kind, hidden, gen, forget_bias)
    if update_bias is not None:
        if kind != "gru":
            raise ValueError(f"update_bias is for the GRU, got {kind!r}")
        gru = model.recurrent
        with torch.no_grad():
            gru.bias_ih_l0[hidden : 2 * hidden] = float(update_bias)
            gru.bias_hh_l0[hidden : 2 * hidden] = 0.0
    return model


def freeze_forget_gate(lstm):
    """Give the forget-gate rows of a ``torch.nn.LSTM`` a zero gradient.

    Rows ``H:2H`` of ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0`` and
    ``bias_hh_l0``; Adam then leaves them where they started.
    """
    H = lstm.hidden_size
    mask = torch.ones(4 * H)
    mask[H : 2 * H] = 0.0
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        param = getattr(lstm, name)
        shaped = mask[:, None] if param.dim() == 2 else mask
        param.register_hook(lambda grad, m=shaped: grad * m)


def adding_run(
    kind,
    seed,
    config=Config(),
    forget_bias=2.0,
    lr=None,
    freeze_forget=False,
    update_bias=None,
):
    """Train one network on the adding problem; Chapter 3's run.

    Adam with learning rate ``lr`` (default ``config.lr``), a fresh batch
    of ``config.batch`` sequences of length ``config.T`` per update,
    gradient-norm clipping at ``config.clip``, mean squared error, for
    ``config.updates`` updates; then the fraction of ``config.n_test``
    test sequences solved (``|error| < 0.04``).

    Args:
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        seed: the seed index (see :func:`stream`).
        config: a :class:`Config`.
        forget_bias: the LSTM's ``b_f``.
        lr: the learning rate, or ``None`` for ``config.lr``.
        freeze_forget: LSTM only, see :func:`freeze_forget_gate`.
        update_bias: GRU only, see :func:`initial_model`.

    Returns:
        ``(losses, solved, model)``: a float array of ``config.updates``
        losses, a float, the trained model.
    """
    lr = config.lr if lr is None else lr
    model = initial_model(kind, seed, forget_bias, update_bias, config.hidden)
    if freeze_forget:
        freeze_forget_gate(model.recurrent)
    batches = adding_batches(
        config.batch, config.T, torch_generator(stream(seed), DATA)
    )
    history = train(
        model,
        batches,
        config.updates,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        loss_fn=F.mse_loss,
        clip=config.clip,
        progress=False,
    )
    test = adding_problem(
        config.n_test, config.T, torch_generator(stream(seed), TEST)
    )
    return np.array(history.loss), solved_fraction(model, *test), model


def probe_input(config):
    """The one adding-problem input the probes read, ``(L, 2)`` float64."""
    gen = torch.Generator().manual_seed(config.probe_seed)
    return adding_problem(1, config.probe_length, gen)[0][0].double()


def probe(model, kind, config):
    """Gradient flow (and forget gates) of one network on the probe input.

    LSTM: ``typical_f``, each unit's geometric-mean forget gate;
    ``cell_path``, ``max_j prod_t f_t`` (the cell path's gain); ``dc``,
    ``||dc_T/dc_0||``; ``full``, ``||d(c_T, h_T)/d(c_0, h_0)||``. RNN and
    GRU: ``dh``, ``||dh_T/dh_0||``. Every curve at ``config.probe_lags``.
    """
    x = probe_input(config)
    lags = list(config.probe_lags)
    if kind == "rnn":
        rnn = model.rnn
        b = rnn.bias_ih_l0 + rnn.bias_hh_l0
        return {
            "dh": rnn_gradient_flow(
                rnn.weight_ih_l0, rnn.weight_hh_l0, b, x, lags
            ).tolist()
        }
    if kind == "gru":
        return {"dh": gru_gradient_flow(model.recurrent, x, lags).tolist()}
    lstm = model.recurrent
    f = forget_gates(lstm, x)  # (L, H)
    flow = lstm_jacobian_product(lstm, x, lags)
    steps = np.array(lags) - 1
    return {
        "typical_f": f.log().mean(dim=0).exp().tolist(),
        "cell_path": f.cumprod(dim=0).max(dim=1).values[steps].tolist(),
        "dc": flow["dc"].tolist(),
        "full": flow["full"].tolist(),
    }


def jobs(config):
    """Every run: dicts of ``arm, kind, seed, forget_bias, lr, ...``."""
    out = []

    def add(arm, kind, seeds, **kw):
        spec = dict(forget_bias=None, lr=config.lr, frozen=False)
        spec["update_bias"] = None
        spec.update(kw)
        out.extend(dict(arm=arm, kind=kind, seed=s, **spec) for s in seeds)

    for b_f in config.forget_biases:
        add("grid", "lstm", config.seeds, forget_bias=b_f)
        add("select", "lstm", config.selection_seeds, forget_bias=b_f)
    add("grid", "rnn", config.seeds)
    add("grid", "gru", config.seeds)
    add("frozen", "lstm", config.seeds, forget_bias=2.0, frozen=True)
    add("gru_bias", "gru", config.seeds, update_bias=GRU_UPDATE_BIAS)
    for lr in config.lrs:
        if lr == config.lr:
            continue
        for kind, b_f in (("rnn", None), ("lstm", 1.0), ("lstm", 2.0)):
            add("lr", kind, config.seeds, forget_bias=b_f, lr=lr)
        add("lr", "gru", config.seeds, lr=lr)
    return out


def run_one(job):
    """Train and probe one run of :func:`jobs`; a JSON-ready dict."""
    spec, config = job
    start = time.perf_counter()
    kind, b_f = spec["kind"], spec["forget_bias"]
    b_f = 2.0 if b_f is None else b_f  # ignored by RNN and GRU
    losses, solved, model = adding_run(
        kind,
        spec["seed"],
        config,
        b_f,
        spec["lr"],
        spec["frozen"],
        spec["update_bias"],
    )
    result = dict(spec)
    result["left"] = left_baseline(losses, BASELINE_MSE / 2, config.window)
    result["solved"] = solved
    finite = losses[np.isfinite(losses)]
    result["final"] = (
        float(finite[-config.window :].mean()) if len(finite) else math.nan
    )
    result["losses"] = [float(f"{v:.5g}") for v in losses]
    if spec["arm"] in ("grid", "frozen", "gru_bias"):
        init = initial_model(
            kind, spec["seed"], b_f, spec["update_bias"], config.hidden
        )
        result["probe_init"] = probe(init, kind, config)
        result["probe_trained"] = probe(model, kind, config)
    result["parameters"] = sum(p.numel() for p in model.parameters())
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def run(config, workers=1):
    """Every run of ``config``, sorted; a list of dicts."""
    todo = [(spec, config) for spec in jobs(config)]
    runs = run_all(run_one, todo, workers, desc="chapter 3 runs")
    key = ("arm", "kind", "forget_bias", "lr", "update_bias", "seed")
    return sorted(
        runs, key=lambda r: tuple(str(r[k]) for k in key)
    )  # independent of the workers' schedule


def main(argv=None):
    parser = experiment_parser(__doc__, workers=1)
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: "chapter3_tiny.json" if a.tiny else "chapter3_adding.json",
    )
    config = TINY if args.tiny else Config()
    out = args.out
    start = time.perf_counter()
    runs = run(config, workers=args.workers)
    seconds = time.perf_counter() - start
    write_json_atomic(
        out,
        {
            "command": "python -m rnnbook.experiments.chapter3"
            + (" --tiny" if args.tiny else ""),
            "workers": args.workers,
            "seconds": round(seconds, 1),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
            },
            "config": asdict(config),
            "seed_entropy": ENTROPY,
            "seed_roles": {"init": INIT, "data": DATA, "test": TEST},
            "gru_update_bias": GRU_UPDATE_BIAS,
            "baseline_mse": BASELINE_MSE,
            "runs": runs,
        },
    )
    print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
