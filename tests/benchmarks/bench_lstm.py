"""Benchmark: our LSTM's forward + backward against ``torch.nn.LSTM`` on CPU.

Run from the repository root (never collected by ``pytest``)::

    python tests/benchmarks/bench_lstm.py                 # B=64, T=128, D=H=256, float32
    python tests/benchmarks/bench_lstm.py --repeats 15 --ablation

Both models get the same weights and input. One repeat times the forward pass
plus ``loss.backward()`` of each model, in alternating order, so both see the
same machine load; the ratio of the medians is measured in this one run.
``--ablation`` also times two slower versions of the same equations, to show what
each optimization of :class:`rnnbook.gated.LSTM` buys:

- ``naive``: four separate matmul pairs per step (one per gate), the input
  projection inside the loop;
- ``fused gates``: one matmul per step for all four gates, the input projection
  still inside the loop;
- ``hoisted, x_proj[:, t]``: as the package, but reading step ``t`` of the
  projection by indexing; the backward of each index allocates a zero
  ``(B, T, 4H)`` gradient, once per step (the package uses ``unbind``);
- ``rnnbook`` (the package): fused gates and the input projection for all steps
  in one matmul before the loop.
"""

import argparse
import os
import statistics
import time

import torch

from rnnbook.gated import LSTM


def naive_lstm(x, W_ih, W_hh, b_ih, b_hh):
    """Per-gate matmuls, input projection inside the loop: the equations typed literally."""
    B, T, _ = x.shape
    H = W_hh.shape[1]
    h = c = x.new_zeros(B, H)
    Wi, Wf, Wg, Wo = W_ih.chunk(4)
    Ui, Uf, Ug, Uo = W_hh.chunk(4)
    bi, bf, bg, bo = (b_ih + b_hh).chunk(4)
    hs = []
    for t in range(T):
        x_t = x[:, t]
        i = torch.sigmoid(x_t @ Wi.t() + h @ Ui.t() + bi)
        f = torch.sigmoid(x_t @ Wf.t() + h @ Uf.t() + bf)
        g = torch.tanh(x_t @ Wg.t() + h @ Ug.t() + bg)
        o = torch.sigmoid(x_t @ Wo.t() + h @ Uo.t() + bo)
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, 1)


def fused_gates_lstm(x, W_ih, W_hh, b_ih, b_hh):
    """One matmul pair for all four gates, but the input projection still per step."""
    B, T, _ = x.shape
    H = W_hh.shape[1]
    h = c = x.new_zeros(B, H)
    b = b_ih + b_hh
    hs = []
    for t in range(T):
        gates = torch.addmm(b, x[:, t], W_ih.t()) + h @ W_hh.t()
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, 1)


def hoisted_indexing_lstm(x, W_ih, W_hh, b_ih, b_hh):
    """Input projection hoisted, fused gates, but ``x_proj[:, t]`` instead of ``unbind``."""
    B, T, _ = x.shape
    H = W_hh.shape[1]
    h = c = x.new_zeros(B, H)
    x_proj = x @ W_ih.t() + (b_ih + b_hh)  # (B, T, 4H)
    hs = []
    for t in range(T):
        i, f, g, o = torch.addmm(x_proj[:, t], h, W_hh.t()).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, 1)


def time_fwd_bwd(run, params):
    for p in params:
        p.grad = None
    start = time.perf_counter()
    run().pow(2).mean().backward()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--size", type=int, default=256, help="D = H")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time the naive and fused-gates loops",
    )
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    B, T, D = args.batch, args.steps, args.size
    reference = torch.nn.LSTM(D, D, batch_first=True)
    ours = LSTM(D, D)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(B, T, D)
    weights = [
        ours.weight_ih_l0,
        ours.weight_hh_l0,
        ours.bias_ih_l0,
        ours.bias_hh_l0,
    ]

    runs = {
        "torch.nn.LSTM": (
            lambda: reference(x)[0],
            list(reference.parameters()),
        ),
        "rnnbook LSTM": (lambda: ours(x)[0], list(ours.parameters())),
    }
    if args.ablation:
        runs["naive (per-gate)"] = (lambda: naive_lstm(x, *weights), weights)
        runs["fused gates"] = (lambda: fused_gates_lstm(x, *weights), weights)
        runs["hoisted, x_proj[:, t]"] = (
            lambda: hoisted_indexing_lstm(x, *weights),
            weights,
        )

    with torch.no_grad():  # all versions compute the same function
        expected = reference(x)[0]
        for name, (run, _) in runs.items():
            err = (run() - expected).abs().max().item()
            assert err < 1e-4, (
                f"{name} disagrees with torch.nn.LSTM by {err:.2e}"
            )

    for run, params in runs.values():  # warm up
        time_fwd_bwd(run, params)
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, (
            run,
            params,
        ) in runs.items():  # interleaved: every repeat times every version
            seconds[name].append(time_fwd_bwd(run, params))

    medians = {name: statistics.median(s) for name, s in seconds.items()}
    base = medians["torch.nn.LSTM"]
    print(
        f"LSTM forward+backward, CPU float32, B={B} T={T} D=H={D}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}, "
        f"median of {args.repeats} interleaved repeats"
    )
    for name, m in medians.items():
        print(
            f"  {name:<22} {1000 * m:8.1f} ms   {m / base:5.2f}x torch.nn.LSTM"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
