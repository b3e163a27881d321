"""Benchmark: seconds per chapter, and the NumPy BPTT against torch autograd.

Run from the repository root (never collected by ``pytest``)::

    python tests/benchmarks/bench_chapters.py            # both parts
    python tests/benchmarks/bench_chapters.py --no-chapters

Part 1 executes every ``chapters/*.ipynb`` on a fresh kernel (without writing
it back) and prints its wall-clock seconds against the 90 s budget.

Part 2 times :func:`rnnbook.numpy_rnn.rnn_forward` + :func:`rnnbook.numpy_rnn.bptt`
against the same forward pass and ``loss.backward()`` in PyTorch, float64,
B=32, T=100, D=H=64, interleaving the two so that both see the same machine
load, and prints the ratio of medians measured in this one run.
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np
import torch

from booktools import find_root
from booktools.notebooks import execute_notebook
from rnnbook.numpy_rnn import bptt, rnn_forward

BUDGET_SECONDS = 90.0


def bench_chapters():
    rows = []
    for path in sorted(
        (find_root(pathlib.Path(__file__)) / "chapters").glob("*.ipynb")
    ):
        seconds = execute_notebook(path, write=False)
        rows.append((path.name, seconds))
        flag = "ok" if seconds <= BUDGET_SECONDS else "OVER BUDGET"
        print(f"  {path.name:<36} {seconds:6.1f} s   ({flag})", flush=True)
    return rows


def bench_bptt(B=32, T=100, D=64, H=64, repeats=30, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H)) * 0.1
    W_xh = rng.standard_normal((H, D)) / np.sqrt(D)
    W_hh = rng.standard_normal((H, H)) / np.sqrt(H)
    b = rng.standard_normal(H) * 0.1
    dhs = rng.standard_normal(
        (B, T, H)
    )  # gradient of L = sum(dhs * hs[:, 1:])

    def numpy_step():
        hs = rnn_forward(W_xh, W_hh, b, xs, h0)
        return bptt(W_xh, W_hh, b, xs, hs, dhs)

    t_xs, t_dhs = torch.from_numpy(xs), torch.from_numpy(dhs)
    params = [torch.tensor(a, requires_grad=True) for a in (h0, W_xh, W_hh, b)]

    def torch_step():
        t_h0, t_W_xh, t_W_hh, t_b = params
        for p in params:
            p.grad = None
        h, hs = t_h0, []
        x_proj = t_xs @ t_W_xh.T  # (B, T, H), as the NumPy code does
        for t in range(T):
            h = torch.tanh(x_proj[:, t] + h @ t_W_hh.T + t_b)
            hs.append(h)
        loss = (torch.stack(hs, dim=1) * t_dhs).sum()
        loss.backward()

    grads = numpy_step()  # warm up both, and check they agree before timing
    torch_step()
    for name, p in zip(("h0", "W_xh", "W_hh", "b"), params):
        err = np.max(np.abs(grads[name] - p.grad.numpy())) / np.max(
            np.abs(p.grad.numpy())
        )
        if err > 1e-10:
            raise RuntimeError(
                f"bptt and autograd disagree on {name}: relative error {err:.2e}"
            )

    times = {"numpy": [], "torch": []}
    for _ in range(repeats):
        for name, step in (("numpy", numpy_step), ("torch", torch_step)):
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"  forward + backward, B={B} T={T} D={D} H={H}, float64, median of {repeats}:"
    )
    print(f"    rnnbook.numpy_rnn (NumPy)  {med['numpy'] * 1e3:7.2f} ms")
    print(f"    torch autograd       {med['torch'] * 1e3:7.2f} ms")
    print(
        f"    ratio NumPy / autograd: {med['numpy'] / med['torch']:.2f}x  (target <= 2x)"
    )
    return med


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Chapter times and the BPTT benchmark."
    )
    parser.add_argument(
        "--no-chapters",
        action="store_true",
        help="skip executing the chapters",
    )
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}"
    )
    if not args.no_chapters:
        print("Seconds per chapter (fresh kernel each):")
        bench_chapters()
    print("BPTT:")
    bench_bptt()
    return 0


if __name__ == "__main__":
    sys.exit(main())
