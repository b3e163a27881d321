"""Chapter 2's short runs, and the sweeps behind its experiment exercises.

- :func:`exploding_run` trains a tanh RNN on the adding problem from a
  recurrent matrix of spectral radius 1.5, with or without clipping (a few
  seconds; the chapter runs it live).
- ``python -m rnnbook.experiments.chapter2`` runs the two sweeps of the
  chapter's exercises on the temporal-order network of
  :mod:`rnnbook.experiments.pascanu` at ``T = 50`` for 1000 updates:
  (a) MSGD-CR with the regularizer weight ``alpha`` in ``ALPHAS``;
  (b) MSGD-C from an orthogonal ``W_hh`` rescaled to spectral radius
  ``rho`` in ``RADII``. Each setting runs ``REPEATS`` paired repeats: repeat
  ``r`` uses the seeds of the main experiment's cell ``(T=50, r)``
  (:func:`rnnbook.experiments.pascanu.run_seeds`), so within a sweep only
  the setting differs. It writes ``chapters/data/chapter2_sweeps.json``
  atomically, with the seeds, command, versions and seconds.
- ``python -m rnnbook.experiments.chapter2 --replay`` re-runs, bit for
  bit, the MSGD-C runs of the main experiment at ``T = 100`` and ``200``
  and its best MSGD-CR run at ``T = 100`` (:data:`REPLAY`) with
  :func:`rnnbook.experiments.pascanu.run_one`, which now also records the
  largest gradient norm, the fraction of clipped updates and the error on
  each relevant symbol; it writes ``chapters/data/chapter2_replay.json``
  (about ten minutes on one core).
"""

import dataclasses
import itertools
import sys
import time

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from rnnbook._checks import check_real
from rnnbook.experiments import pascanu
from rnnbook.experiments._io import (
    experiment_parser,
    map_runs,
    parse_experiment_args,
    write_json_atomic,
)
from rnnbook.tasks import adding_problem
from rnnbook.torch_rnn import VanillaRNN, init_weights
from rnnbook.train import train


def exploding_run(clip, lr=0.5, updates=300):
    """A 32-unit tanh RNN on the adding problem of length 50, plain SGD.

    ``W_hh = 1.5 Q`` (``Q`` a random orthogonal matrix), ``W_xh`` from
    ``N(0, 1)``, the read-out as in :func:`rnnbook.torch_rnn.init_weights`;
    batches of 20 sequences, mean squared error. The weights and batches
    are the same for every ``clip`` and ``lr`` (a paired comparison).

    Args:
        clip: the norm threshold ``tau``, or ``None`` for no clipping.
        lr: the learning rate.
        updates: the number of updates.

    Returns:
        The :class:`rnnbook.train.History`.
    """
    lr = check_real("lr", lr, low=0.0)
    torch.manual_seed(0)
    weights = init_weights(
        "orthogonal", 2, 32, 1, torch.Generator().manual_seed(0)
    )
    weights["W_hh"] *= 1.5
    weights["W_xh"] = torch.randn(
        32, 2, generator=torch.Generator().manual_seed(5)
    )
    model = VanillaRNN(2, 32, 1).load_weights(weights)
    data = torch.Generator().manual_seed(1)
    return train(
        model,
        lambda: adding_problem(20, 50, data),
        updates,
        lr=lr,
        clip=clip,
        loss_fn=lambda y, target: F.mse_loss(y.squeeze(-1), target),
        progress=False,
    )


T, UPDATES, REPEATS = 50, 1000, 3
ALPHAS = (1.0, 4.0, 16.0)
"""Regularizer weights of sweep (a), MSGD-CR with clipping at 1."""
RADII = (0.7, 0.85, 1.0)
"""Initial spectral radii of sweep (b), MSGD-C from an orthogonal W_hh."""


def sweep_run(job):
    """One run of a sweep: ``("alpha", value, repeat)`` or ``("rho", ...)``."""
    sweep, value, repeat = job
    config = pascanu.Config()
    seeds = pascanu.run_seeds(T, repeat)
    if sweep == "alpha":
        model = pascanu.initial_model(config, seeds)
        clip, alpha = 1.0, value
    else:
        model = pascanu.initial_model(config, seeds, "orthogonal", value)
        clip, alpha = 1.0, 0.0
    start = time.perf_counter()
    history = pascanu.train_run(
        model, config, T, seeds, clip, alpha, UPDATES, record_every=100
    )
    update, norms = history.state_grad_norms[-1]
    return {
        "sweep": sweep,
        "value": value,
        "repeat": repeat,
        "seeds": seeds,
        "test_error": pascanu.error_rate(model, history, config, T, seeds),
        "stopped": history.stopped,
        "spread_update": update,
        # ||dE/dh_1|| / ||dE/dh_T|| at the last recorded update
        "spread": (norms[0] / norms[-1]).item(),
        "seconds": round(time.perf_counter() - start, 1),
    }


REPLAY = tuple(("MSGD-C", T, r) for T in (100, 200) for r in range(5)) + (
    ("MSGD-CR", 100, 3),
)
"""The (method, T, repeat) runs of the main experiment that ``--replay``
re-runs: every MSGD-C run at T = 100 and 200, and MSGD-CR's best at 100."""


def replay(runs=REPLAY, config=None):
    """Re-run ``runs`` of the main experiment; a list of run dicts.

    Each is :func:`rnnbook.experiments.pascanu.run_one` on the cell's seeds
    with ``config`` (default the main experiment's, without the periodic
    tests, which the committed runs did not make), so the test errors equal
    the committed ones bit for bit while the new fields are added.
    """
    if config is None:
        config = dataclasses.replace(pascanu.Config(), test_every=0)
    jobs = [(config, method, T, repeat) for method, T, repeat in runs]
    return list(
        tqdm(map_runs(pascanu.run_one, jobs), total=len(jobs), desc="replay")
    )


def main(argv=None):
    parser = experiment_parser(__doc__, tiny=False, workers=2)
    parser.add_argument(
        "--replay",
        action="store_true",
        help="re-run the runs of REPLAY (one process) instead of the sweeps",
    )
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: (
            "chapter2_replay.json" if a.replay else "chapter2_sweeps.json"
        ),
    )
    out = args.out
    if args.replay:
        start = time.perf_counter()
        config = dataclasses.replace(pascanu.Config(), test_every=0)
        runs = replay(REPLAY, config)
        seconds = time.perf_counter() - start
        write_json_atomic(
            out,
            {
                "command": "python -m rnnbook.experiments.chapter2 --replay",
                "workers": 1,
                "seconds": round(seconds, 1),
                "torch": torch.__version__,
                "config": dataclasses.asdict(config),
                "seed_entropy": pascanu.ENTROPY,
                "runs": runs,
            },
        )
        print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
        return 0
    jobs = [
        ("alpha", a, r) for a, r in itertools.product(ALPHAS, range(REPEATS))
    ]
    jobs += [
        ("rho", p, r) for p, r in itertools.product(RADII, range(REPEATS))
    ]
    start = time.perf_counter()
    runs = []
    for run in map_runs(sweep_run, jobs, args.workers):
        runs.append(run)
        print(
            f"[{len(runs)}/{len(jobs)}] {run['sweep']} = {run['value']}"
            f" repeat {run['repeat']}: test error "
            f"{run['test_error']:.3f} ({run['seconds']} s)",
            flush=True,
        )
    runs.sort(key=lambda r: (r["sweep"], r["value"], r["repeat"]))
    seconds = time.perf_counter() - start
    write_json_atomic(
        out,
        {
            "command": "python -m rnnbook.experiments.chapter2",
            "workers": args.workers,
            "seconds": round(seconds, 1),
            "torch": torch.__version__,
            "config": {
                "T": T,
                "updates": UPDATES,
                "repeats": REPEATS,
                "alphas": ALPHAS,
                "radii": RADII,
                "clip": 1.0,
                "pascanu_config": vars(pascanu.Config()),
            },
            "seed_entropy": pascanu.ENTROPY,
            "runs": runs,
        },
    )
    print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
