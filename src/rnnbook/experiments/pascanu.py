"""Success rate against sequence length on the temporal-order problem: MSGD, MSGD-C, MSGD-CR.

A laptop-scale version of the synthetic-task experiment of Pascanu, Mikolov & Bengio
(2013, §4.1): 50 tanh units with their "smart tanh" initialization, mini-batch SGD,
norm clipping at 1, and the regularizer ``Omega``. A run *succeeds* when fewer than 1%
of 10,000 fresh test sequences are misclassified, the paper's criterion.

Usage::

    python -m rnnbook.experiments.pascanu            # the full run behind Chapter 2's figure
    python -m rnnbook.experiments.pascanu --tiny --out /tmp/tiny.json   # seconds, for tests

The result file holds the configuration, every run's seed and outcome, the command and
the seconds the whole run took. Every run's seed is derived from (method, length, repeat)
alone, so the results do not depend on the number of worker processes.
"""

import argparse
import json
import multiprocessing
import pathlib
import sys
import time
from dataclasses import asdict, dataclass

import torch

from rnnbook.tasks import temporal_order
from rnnbook.train import accuracy, train
from rnnbook.vanilla import VanillaRNN, init_weights

DATA = pathlib.Path(__file__).resolve().parents[3] / "chapters" / "data"

METHODS = {
    # name: (clip threshold, regularizer weight alpha)
    "MSGD": (None, 0.0),
    "MSGD-C": (1.0, 0.0),
    "MSGD-CR": (1.0, 4.0),  # alpha = 4, the paper's regularizer weight
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
    success_error: float = 0.01  # a run succeeds when its test error is below this
    init: str = "smart_tanh"


TINY = Config(lengths=(10, 12), repeats=1, updates=20, n_test=200)


def run_seed(method, T, repeat):
    """The seed of one run: a function of what the run is, not of when it runs."""
    return 1000 * list(METHODS).index(method) + 10 * T + repeat


def run_one(job):
    """Train one network; return a dict describing the run."""
    config, method, T, repeat = job
    seed = run_seed(method, T, repeat)
    torch.manual_seed(seed)
    clip, alpha = METHODS[method]
    model = VanillaRNN(6, config.hidden_size, 4)
    model.load_weights(init_weights(config.init, 6, config.hidden_size, 4, torch.Generator().manual_seed(seed)))
    data = torch.Generator().manual_seed(seed + 1)
    start = time.perf_counter()
    history = train(model, lambda: temporal_order(config.batch_size, T, data), config.updates, lr=config.lr,
                    clip=clip, omega_weight=alpha, progress=False)
    test_inputs, test_targets = temporal_order(config.n_test, T, torch.Generator().manual_seed(seed + 2))
    error = 1.0 - accuracy(model, test_inputs, test_targets) if history.stopped is None else 1.0
    return {"method": method, "T": T, "repeat": repeat, "seed": seed, "test_error": error,
            "success": error < config.success_error, "updates_done": history.updates,
            "stopped": history.stopped, "final_loss": history.loss[-1] if history.loss else None,
            "seconds": round(time.perf_counter() - start, 1)}


def _one_thread():
    torch.set_num_threads(1)


def run(config, workers=2, progress=True):
    """Every (method, length, repeat) run of ``config``; returns the list of run dicts."""
    jobs = [(config, m, T, r) for T in config.lengths for m in METHODS for r in range(config.repeats)]
    jobs.sort(key=lambda job: -job[2])  # longest first, so the workers finish together
    if workers == 1:
        _one_thread()
        runs = [run_one(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
            runs = []
            for result in pool.imap_unordered(run_one, jobs):
                runs.append(result)
                if progress:
                    print(f"[{len(runs)}/{len(jobs)}] {result['method']:8s} T={result['T']:4d} "
                          f"repeat {result['repeat']}: test error {result['test_error']:.3f} "
                          f"({result['seconds']} s)", flush=True)
    return sorted(runs, key=lambda r: (r["T"], list(METHODS).index(r["method"]), r["repeat"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a seconds-long configuration, for tests")
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each (default 2)")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="result file (default chapters/data/pascanu_temporal_order.json)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"expected --workers >= 1, got {args.workers}")
    config = TINY if args.tiny else Config()
    out = args.out or DATA / ("pascanu_tiny.json" if args.tiny else "pascanu_temporal_order.json")
    start = time.perf_counter()
    runs = run(config, workers=args.workers)
    seconds = time.perf_counter() - start
    result = {"command": "python -m rnnbook.experiments.pascanu" + (" --tiny" if args.tiny else ""),
              "workers": args.workers, "seconds": round(seconds, 1), "torch": torch.__version__,
              "config": asdict(config), "methods": {m: {"clip": c, "alpha": a} for m, (c, a) in METHODS.items()},
              "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
