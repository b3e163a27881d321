"""Generation cost against context length: a Mamba block against attention.

Chapter 7's inference measurement. In recurrent mode a Mamba block
(:meth:`rnnbook.mamba.MambaBlock.step`) carries a state of constant size,
the convolution's last inputs and the SSM state, E (d_conv - 1 + N)
numbers, whatever the context; a causal self-attention layer
(:class:`rnnbook.self_attention.CausalSelfAttention`) keeps every past key
and value, 2 L D numbers, and reads all of them for each new token. Its
cache is pre-allocated for the longest sequence (context + new tokens) and
written in place, as generation code does, so a step does not copy it.
For each context length this script measures, in one process:

- tokens per second: ``new_tokens`` consecutive generation steps of one
  layer, from a cache that already holds the context, timed with the
  layers interleaved (after one warm-up, one timing of each in turn,
  ``repeats`` rounds): the median over the rounds of each layer, and the
  median of the per-round ratios Mamba / attention with their min-max;
- cache memory: the bytes of the cache one ``step`` returned after the
  context, counted by unique storage (a view counts its whole base once);
  for attention both the allocated capacity and the part filled with the
  context + 1 positions.

The caches are filled with random numbers of the right shapes rather than
by running the context through the layers: a step's cost depends on the
shapes only, and filling them is the same for every context. Each round
of attention starts from the same cache (length = context) and rewrites
the same positions after it.

The two layers have about the same number of parameters (recorded). This
measures one layer on a CPU at batch size 1 in PyTorch, where per-step
Python overhead is a large share of the time; the paper's claim of about
5x higher generation throughput than a Transformer (Gu & Dao, 2023,
section 4.5, Figure 8) is for whole models on an A100 GPU at large batch
sizes, and is not what this measures. The machine's load average before
and after is recorded.

Usage::

    python -m rnnbook.experiments.mamba_inference
    python -m rnnbook.experiments.mamba_inference --tiny --out /tmp/t.json
"""

import os
import statistics
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
from rnnbook.mamba import MambaBlock, MambaCache
from rnnbook.self_attention import CausalSelfAttention

ENTROPY = 20231202
"""The seed of the layers' weights and the random caches and inputs."""


@dataclass
class Config:
    width: int = 64  # D of the Mamba block
    state: int = 16  # N
    attention_width: int = 90  # 4 D^2 weights: about the block's count
    heads: int = 6
    contexts: tuple = (256, 512, 1024, 2048, 4096, 8192)
    new_tokens: int = 64
    repeats: int = 15
    threads: int = 1


TINY = Config(
    width=8,
    state=4,
    attention_width=12,
    heads=2,
    contexts=(8, 32),
    new_tokens=2,
    repeats=2,
)


def n_parameters(module):
    """The number of trained numbers in ``module``."""
    return sum(p.numel() for p in module.parameters())


def unique_bytes(tensors):
    """Bytes of the distinct storages behind ``tensors``, each counted once
    and in full (entries that are not tensors, such as a cache's length,
    are skipped)."""
    storages = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def filled_bytes(cache):
    """Bytes of the positions 0..length - 1 of a :class:`KVCache`."""
    return sum(
        t[:, :, : cache.length].numel() * t.element_size()
        for t in (cache.keys, cache.values)
    )


def mamba_cache(block, context, generator):
    """A random :class:`MambaCache`: its size does not depend on context."""
    del context  # the point: the state is the same size for any context
    cache = block.empty_cache(1)
    return MambaCache(
        *(torch.randn(c.shape, generator=generator) for c in cache)
    )


def attention_cache(attention, context, capacity, generator):
    """A :class:`KVCache` with room for ``capacity`` positions whose first
    ``context`` hold random keys and values, (1, heads, ., D / heads)."""
    cache = attention.empty_cache(1, capacity)
    for t in (cache.keys, cache.values):
        t[:, :, :context] = torch.randn(
            t[:, :, :context].shape, generator=generator
        )
    return cache._replace(length=context)


def time_steps(step, cache, inputs):
    """Seconds to run ``step`` over ``inputs`` (T, 1, D) from ``cache``.

    Each step returns the cache to give the next one. Mamba's step leaves
    the cache given untouched; attention's writes after its ``length``,
    which the next round (from the same ``length``) overwrites: every round
    starts from the same context.
    """
    start = time.perf_counter()
    with torch.no_grad():
        for x_t in inputs:
            _, cache = step(x_t, cache)
    return time.perf_counter() - start


def measure(config, progress=True):
    """Rows ``{context, layer, tokens_per_second, seconds, cache_bytes,
    ...}`` and, per context, the per-round ratios Mamba / attention."""
    torch.manual_seed(ENTROPY)
    mamba = MambaBlock(config.width, config.state).eval()
    attention = CausalSelfAttention(
        config.attention_width, config.heads
    ).eval()
    layers = {
        "Mamba": (mamba, config.width),
        "attention": (attention, config.attention_width),
    }
    gen = torch.Generator().manual_seed(ENTROPY)
    rows, ratios = [], []
    for context in tqdm(config.contexts, disable=not progress, desc="L"):
        capacity = context + config.new_tokens
        with torch.no_grad():
            caches = {
                "Mamba": mamba_cache(mamba, context, gen),
                "attention": attention_cache(
                    attention, context, capacity, gen
                ),
            }
        inputs = {
            name: torch.randn(config.new_tokens, 1, width, generator=gen)
            for name, (_, width) in layers.items()
        }
        for name, (layer, _) in layers.items():  # warm up
            time_steps(layer.step, caches[name], inputs[name])
        seconds = {name: [] for name in layers}
        for _ in range(config.repeats):  # interleaved rounds
            for name, (layer, _) in layers.items():
                seconds[name].append(
                    time_steps(layer.step, caches[name], inputs[name])
                )
        per_round = [
            a / m for m, a in zip(seconds["Mamba"], seconds["attention"])
        ]  # (tokens/s of Mamba) / (tokens/s of attention), one per round
        ratios.append(
            {
                "context": context,
                "median": statistics.median(per_round),
                "min": min(per_round),
                "max": max(per_round),
            }
        )
        for name, (layer, _) in layers.items():
            with torch.no_grad():  # the cache one step makes after context
                _, after = layer.step(inputs[name][0], caches[name])
            row = {
                "context": context,
                "layer": name,
                "parameters": n_parameters(layer),
                "tokens_per_second": config.new_tokens
                / statistics.median(seconds[name]),
                "seconds": [round(s, 6) for s in seconds[name]],
                "cache_bytes": unique_bytes(after),
            }
            if name == "attention":
                row["cache_bytes_filled"] = filled_bytes(after)
                row["cache_length"] = after.length
                row["cache_capacity"] = capacity
            else:
                row["cache_bytes_filled"] = row["cache_bytes"]
            rows.append(row)
    return rows, ratios


def main(argv=None):
    parser = experiment_parser(__doc__)
    args = parse_experiment_args(
        parser,
        argv,
        lambda a: (
            "mamba_inference_tiny.json" if a.tiny else "mamba_inference.json"
        ),
    )
    config = TINY if args.tiny else Config()
    torch.set_num_threads(config.threads)
    load_before = os.getloadavg()
    start = time.perf_counter()
    rows, ratios = measure(config)
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    result = {
        "command": "python -m rnnbook.experiments.mamba_inference"
        + (" --tiny" if args.tiny else ""),
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "config": asdict(config),
        "seed": ENTROPY,
        "paper_claim": "about 5x the generation throughput of a Transformer "
        "of similar size (Gu & Dao 2023, section 4.5, Figure 8; A100 GPU)",
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "rows": rows,
        "ratios_mamba_over_attention": ratios,
    }
    write_json_atomic(args.out, result)
    for r in ratios:
        print(
            f"L = {r['context']:5d}: Mamba / attention tokens/s "
            f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"
        )
    print(
        f"wrote {len(rows)} rows to {args.out} in {seconds:.0f} s, load "
        f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
