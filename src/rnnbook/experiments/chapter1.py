"""Chapter 1's chunked-truncation runs on delayed recall, over three seeds.

Two sweeps of :func:`rnnbook.truncated.train_chunked` on the delayed-recall
task with gap ``g = 8``, each chunk length with the seeds in ``SEEDS``:

- ``"chunks"``: chunk lengths 4 and 16, the comparison the chapter makes
  (its figure plots these curves; the chapter re-runs seed 0 live);
- ``"gap"``: chunk lengths 8, 9 and 10, the exercise on the shortest chunk
  that learns.

Usage::

    python -m rnnbook.experiments.chapter1   # chapters/data/chapter1_*.json
    python -m rnnbook.experiments.chapter1 --tiny --out /tmp/tiny.json

Seeds: a run's seed ``s`` is the entropy of a
:class:`numpy.random.SeedSequence`, whose three spawned children draw the
initial weights, the training streams and the test set
(:func:`rnnbook.truncated.train_chunked`); distinct entropies give
independent streams. At one seed every chunk length starts from the same
weights and sees the same data, so a comparison of chunk lengths is
paired. The result file holds the configuration, every run's test-accuracy
curve, the command, the library versions and the seconds; it is written
atomically. Float32 training on CPU is not bit-reproducible across
machines, so a re-run agrees with the file closely, not exactly.
"""

import platform
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnbook.experiments._io import (
    experiment_parser,
    parse_experiment_args,
    write_json_atomic,
)
from rnnbook.truncated import train_chunked

SEEDS = (0, 1, 2)
"""The seed of each repeat (the entropy of its SeedSequence)."""


@dataclass
class Config:
    gap: int = 8
    sweeps: tuple = (("chunks", (4, 16)), ("gap", (8, 9, 10)))
    rounds: int = 40
    batch: int = 32
    length: int = 400
    hidden_size: int = 32
    lr: float = 3e-3
    learned: float = 0.95  # a run learned when its final accuracy exceeds it


TINY = Config(
    gap=3,
    sweeps=(("chunks", (2, 6)), ("gap", (4,))),
    rounds=2,
    batch=4,
    length=24,
    hidden_size=8,
)


def jobs(config):
    """Every run as ``(sweep, chunk, seed)``, in the order they run."""
    return [
        (sweep, chunk, seed)
        for sweep, chunks in config.sweeps
        for chunk in chunks
        for seed in SEEDS
    ]


def one_run(config, sweep, chunk, seed):
    """Train one network; its curve, final accuracy and seconds."""
    start = time.perf_counter()
    curve = train_chunked(
        chunk,
        config.gap,
        rounds=config.rounds,
        batch=config.batch,
        length=config.length,
        hidden_size=config.hidden_size,
        lr=config.lr,
        seed=seed,
    )
    return {
        "sweep": sweep,
        "chunk": chunk,
        "seed": seed,
        "accuracy": [round(float(a), 6) for a in curve],
        "final": float(curve[-1]),
        "learned": bool(curve[-1] > config.learned),
        "seconds": round(time.perf_counter() - start, 2),
    }


def main(argv=None):
    parser = experiment_parser(__doc__)
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: "chapter1_tiny.json" if a.tiny else "chapter1_chunks.json",
    )
    config = TINY if args.tiny else Config()
    out = args.out
    torch.set_num_threads(1)  # tiny matrices: one thread is faster
    start = time.perf_counter()
    runs = []
    for sweep, chunk, seed in tqdm(jobs(config), desc="chapter 1 runs"):
        runs.append(one_run(config, sweep, chunk, seed))
    seconds = time.perf_counter() - start
    write_json_atomic(
        out,
        {
            "command": "python -m rnnbook.experiments.chapter1"
            + (" --tiny" if args.tiny else ""),
            "seconds": round(seconds, 1),
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "torch": torch.__version__,
            },
            "config": asdict(config),
            "seeds": list(SEEDS),
            "runs": runs,
        },
    )
    print(f"wrote {len(runs)} runs to {out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
