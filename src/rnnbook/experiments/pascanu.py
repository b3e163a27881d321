"""Success rate against sequence length, temporal order: MSGD, -C and -CR.

A laptop-scale version of the synthetic-task experiment of Pascanu,
Mikolov & Bengio (2013, §4.1): 50 tanh units with their "smart tanh"
initialization, mini-batch SGD, norm clipping at 1, and the regularizer
``Omega``. A run *succeeds* when fewer than 1% of 10,000 fresh test
sequences are misclassified, the paper's criterion.

Usage::

    python -m rnnbook.experiments.pascanu   # the run behind Chapter 2
    python -m rnnbook.experiments.pascanu --tiny --out /tmp/tiny.json

The comparison is *paired*: at the same (length, repeat) the three methods
start from the same weights, see the same batches in the same order and are
tested on the same sequences, so the method is the only difference between
them. The three generators of a (length, repeat) cell (weights, training
batches, test set) come from :class:`numpy.random.SeedSequence` streams
keyed by that cell alone (:func:`run_seeds`), so no two cells share a
stream and the results do not depend on the number of worker processes or
on the order the runs are scheduled in.

The result file holds the configuration, every run's seeds and outcome,
the command and the seconds the whole run took; it is written atomically.
"""

import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from rnnbook._checks import check_int
from rnnbook.experiments._io import (
    experiment_parser,
    map_runs,
    parse_experiment_args,
    write_json_atomic,
)
from rnnbook.gradients import pascanu_regularizer
from rnnbook.tasks import temporal_order
from rnnbook.torch_rnn import VanillaRNN, init_weights, spectral_radius
from rnnbook.train import accuracy, state_gradients_torch, train

ENTROPY = 20130216
"""The root of every run's seed streams (changing it re-draws every run)."""

TAU = 1.0
"""The clipping threshold of MSGD-C and MSGD-CR."""

METHODS = {
    # name: (clip threshold, regularizer weight alpha)
    "MSGD": (None, 0.0),
    "MSGD-C": (TAU, 0.0),
    "MSGD-CR": (TAU, 4.0),  # alpha = 4, the paper's regularizer weight
}


@dataclass
class Config:
    lengths: tuple = (25, 50, 100, 200)
    repeats: int = 5
    updates: int = 3000
    batch_size: int = 20
    hidden_size: int = 50
    lr: float = 0.1
    n_test: int = 10_000
    success_error: float = (
        0.01  # a run succeeds when its test error is below this
    )
    init: str = "smart_tanh"
    # test on the cell's test set every this many updates (0: only at the
    # end); the paper tests every 20 updates and stops at the first zero
    # error, we record the errors and train on
    test_every: int = 500


TINY = Config(
    lengths=(10, 12), repeats=1, updates=20, n_test=200, test_every=10
)


def run_seeds(T, repeat):
    """The seeds of a (length, repeat) cell: ``{"init", "data", "test"}``.

    Each is a 64-bit integer drawn from its own
    :class:`numpy.random.SeedSequence` stream, spawned from
    ``SeedSequence(ENTROPY, spawn_key=(T, repeat))``. The method is
    deliberately not part of the key: the three methods of a cell share all
    three seeds, which is what makes the comparison paired.
    """
    T, repeat = check_int("T", T, 1), check_int("repeat", repeat, 0)
    cell = np.random.SeedSequence(ENTROPY, spawn_key=(T, repeat))
    streams = cell.spawn(3)
    return {
        name: int(s.generate_state(1, dtype=np.uint64)[0])
        for name, s in zip(("init", "data", "test"), streams)
    }


def initial_model(config, seeds, scheme=None, rho=None):
    """The network a run starts from: ``config.init`` weights drawn from
    ``seeds["init"]``; another ``scheme``, and ``W_hh`` rescaled to spectral
    radius ``rho``, if given (Chapter 2's exercise on the radius)."""
    torch.manual_seed(seeds["init"])
    model = VanillaRNN(6, config.hidden_size, 4)
    weights = init_weights(
        scheme or config.init,
        6,
        config.hidden_size,
        4,
        torch.Generator().manual_seed(seeds["init"]),
    )
    if rho is not None:
        weights["W_hh"] *= rho / spectral_radius(weights["W_hh"])
    return model.load_weights(weights)


def evaluation_set(config, T, seeds):
    """The ``config.n_test`` test sequences of length ``T`` of a cell."""
    generator = torch.Generator().manual_seed(seeds["test"])
    return temporal_order(config.n_test, T, generator)


def train_run(
    model,
    config,
    T,
    seeds,
    clip,
    alpha,
    updates,
    record_every=0,
    on_update=None,
):
    """Train ``model`` with MSGD (``clip=None``), MSGD-C or MSGD-CR on
    batches drawn from ``seeds["data"]``; return its History.
    ``record_every`` and ``on_update`` go to :func:`rnnbook.train.train`."""
    data = torch.Generator().manual_seed(seeds["data"])
    return train(
        model,
        lambda: temporal_order(config.batch_size, T, data),
        updates,
        lr=config.lr,
        clip=clip,
        omega_weight=alpha,
        record_every=record_every,
        progress=False,
        on_update=on_update,
    )


def error_rate(model, history, config, T, seeds):
    """The fraction of the cell's test set misclassified (1 if diverged)."""
    if history.stopped is not None:
        return 1.0
    return 1.0 - accuracy(model, *evaluation_set(config, T, seeds))


def gradient_split(model, config, T, seeds, alpha):
    """The two parts of MSGD-CR's first gradient, before clipping.

    On the first training batch of the cell (the one :func:`train_run`
    draws first), the norms over all parameters of

    .. math::

        \\nabla_\\theta E, \\qquad \\nabla_\\theta (\\alpha\\,\\Omega),
        \\qquad \\nabla_\\theta (E + \\alpha\\,\\Omega),

    with ``Omega`` as :func:`rnnbook.train.train` computes it
    (:func:`rnnbook.gradients.pascanu_regularizer`: summed over the ``T``
    steps, differentiated through ``W_hh`` and the states). Chapter 2 uses
    it to show how much of a clipped MSGD-CR step comes from ``Omega``.

    Returns:
        ``{"E": ..., "Omega": ..., "total": ...}``, three floats.
    """
    data = torch.Generator().manual_seed(seeds["data"])
    inputs, targets = temporal_order(config.batch_size, T, data)
    y, hs = model(inputs)
    loss = F.cross_entropy(y, targets)
    omega = pascanu_regularizer(
        model.W_hh, hs, state_gradients_torch(model.W_hh, hs, loss)
    )
    params = list(model.parameters())
    # Omega does not reach the read-out: its gradient there is zero
    of_omega = torch.autograd.grad(
        alpha * omega, params, retain_graph=True, allow_unused=True
    )
    parts = {
        "E": torch.autograd.grad(loss, params),
        "Omega": [
            torch.zeros_like(p) if g is None else g
            for p, g in zip(params, of_omega)
        ],
    }
    parts["total"] = [e + o for e, o in zip(parts["E"], parts["Omega"])]
    return {
        name: torch.linalg.vector_norm(
            torch.cat([g.reshape(-1) for g in grads])
        ).item()
        for name, grads in parts.items()
    }


@torch.no_grad()
def symbol_errors(model, inputs, targets):
    """The error on each relevant symbol alone: ``(first, second)``.

    A class of :data:`rnnbook.tasks.CLASSES` is ``2 * first + second``
    (0 = X, 1 = Y), so the predicted class names a first and a second
    symbol. A network that knows only the second symbol and guesses the
    first has a test error of 0.5 but a second-symbol error of 0: the two
    numbers show which half of the gap a network bridges.

    Args:
        model: returns ``(y, hs)`` with ``y`` of shape ``(B, 4)``.
        inputs: ``(B, T, 6)``; targets: int64 labels ``(B,)`` in 0..3.

    Returns:
        Two floats in ``[0, 1]``: the fractions of sequences whose first,
        and whose second, relevant symbol the prediction gets wrong.
    """
    y, _ = model(inputs)
    predicted = y.argmax(dim=-1)
    first = (predicted // 2 != targets // 2).double().mean().item()
    second = (predicted % 2 != targets % 2).double().mean().item()
    return first, second


def run_one(job):
    """Train one network; return a dict describing the run.

    Besides the test error it records the largest gradient norm (before
    clipping), the fraction of updates whose norm reached the clipping
    threshold ``tau = 1`` (the updates MSGD-C and MSGD-CR clip; for MSGD,
    those it would have clipped), the error on each relevant symbol, and
    the test error every ``config.test_every`` updates.
    """
    config, method, T, repeat = job
    seeds = run_seeds(T, repeat)
    clip, alpha = METHODS[method]
    model = initial_model(config, seeds)
    test_errors = []  # (update, test error) every config.test_every

    def check(updates, model):
        if config.test_every and updates % config.test_every == 0:
            inputs, targets = evaluation_set(config, T, seeds)
            test_errors.append(
                (updates, 1.0 - accuracy(model, inputs, targets))
            )

    start = time.perf_counter()
    history = train_run(
        model, config, T, seeds, clip, alpha, config.updates, on_update=check
    )
    error = error_rate(model, history, config, T, seeds)
    norms = np.array(history.grad_norm)
    first, second = (
        symbol_errors(model, *evaluation_set(config, T, seeds))
        if history.stopped is None
        else (1.0, 1.0)
    )
    return {
        "method": method,
        "T": T,
        "repeat": repeat,
        "seeds": seeds,
        "test_error": error,
        "success": error < config.success_error,
        "updates_done": history.updates,
        "stopped": history.stopped,
        "final_loss": history.loss[-1] if history.loss else None,
        "max_grad_norm": float(norms.max()) if len(norms) else None,
        "clipped_fraction": float(np.mean(norms >= TAU))
        if len(norms)
        else None,
        "first_symbol_error": first,
        "second_symbol_error": second,
        "test_errors": test_errors,
        "seconds": round(time.perf_counter() - start, 1),
    }


def run(config, workers=2, progress=True):
    """Every (method, length, repeat) run of ``config``, a list of dicts."""
    jobs = [
        (config, m, T, r)
        for T in config.lengths
        for m in METHODS
        for r in range(config.repeats)
    ]
    jobs.sort(
        key=lambda job: -job[2]
    )  # longest first, so the workers finish together
    runs = []
    for r in map_runs(run_one, jobs, workers):
        runs.append(r)
        if progress:
            print(
                f"[{len(runs)}/{len(jobs)}] {r['method']:8s} "
                f"T={r['T']:4d} repeat {r['repeat']}: test error "
                f"{r['test_error']:.3f} ({r['seconds']} s)",
                flush=True,
            )
    return sorted(
        runs,
        key=lambda r: (r["T"], list(METHODS).index(r["method"]), r["repeat"]),
    )


def main(argv=None):
    parser = experiment_parser(__doc__, workers=2)
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: (
            "pascanu_tiny.json" if a.tiny else "pascanu_temporal_order.json"
        ),
    )
    config = TINY if args.tiny else Config()
    out = args.out
    start = time.perf_counter()
    runs = run(config, workers=args.workers)
    seconds = time.perf_counter() - start
    result = {
        "command": "python -m rnnbook.experiments.pascanu"
        + (" --tiny" if args.tiny else ""),
        "workers": args.workers,
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "config": asdict(config),
        "methods": {
            m: {"clip": c, "alpha": a} for m, (c, a) in METHODS.items()
        },
        "seed_entropy": ENTROPY,
        "runs": runs,
    }
    write_json_atomic(out, result)
    print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
