"""Benchmark: an SSM's two views, the recurrence and the FFT convolution.

Run from the repository root (never collected by ``pytest``)::

    python tests/benchmarks/bench_ssm.py                # L = 4096 and 16384
    python tests/benchmarks/bench_ssm.py --lengths 1024 4096 --repeats 9
    python tests/benchmarks/bench_ssm.py --kernel     # S4D's kernel only

The system is HiPPO-LegS (N = 16) discretized with the bilinear transform,
one channel, a batch of B sequences. For each length L, one repeat times, in
turn (interleaved, so all three see the same machine load):

- ``recurrence``: :func:`rnnbook.ssm.ssm_scan`, L sequential steps (the
  book's teaching loop: four small operations per step, every state kept);
- ``bare loop``: the same recurrence as one ``torch.addmm`` per step, the
  inputs' share Bb u_k computed beforehand (a control: how much of the
  recurrence's time is the teaching loop's own);
- ``FFT conv``: :func:`rnnbook.ssm.causal_conv` with the kernel precomputed
  (what a training step pays per batch once the kernel is known);
- ``kernel + FFT conv``: :func:`rnnbook.ssm.ssm_kernel` then the convolution.

The medians of the repeats are printed with the ratios recurrence / this,
measured in this one run, and the fastest and slowest repeat of each, so the
spread is on record. Before timing, the views are checked to agree.

Then S4D's kernel (Chapter 6): H = 64 channels of a diagonal system with
N/2 = 32 complex modes, at L = 4096 and 16384, computed three ways:

- ``powers``: v_l = Ab^l Bb formed one dense N x N product at a time
  (L sequential matrix-vector products per channel, the naive kernel);
- ``doubling``: :func:`rnnbook.ssm.ssm_kernel` of the same system as a
  dense matrix (log2 L products, O(N^2 L) work);
- ``Vandermonde``: :func:`rnnbook.s4d.s4d_kernel`, O(N L).
"""

import argparse
import functools
import os
import statistics
import time

import torch

from rnnbook.s4d import s4d_kernel, s4d_lin
from rnnbook.ssm import (
    causal_conv,
    discretize_bilinear,
    hippo_legs,
    ssm_kernel,
    ssm_scan,
)


def seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[4096, 16384]
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--state", type=int, default=16, help="N")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float64"
    )
    parser.add_argument(
        "--kernel", action="store_true", help="only S4D's kernel"
    )
    parser.add_argument("--channels", type=int, default=64, help="H")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.kernel:
        return kernels(args)
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)
    A, B = hippo_legs(args.state, dtype=dtype)
    Ab, Bb = discretize_bilinear(A, B, 0.01)
    C = torch.randn(args.state, generator=gen, dtype=dtype)

    print(
        f"SSM recurrence vs FFT convolution, CPU {args.dtype}, "
        f"B={args.batch} N={args.state}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average "
        f"{os.getloadavg()[0]:.2f}, median of {args.repeats} interleaved "
        "repeats"
    )
    for L in args.lengths:
        u = torch.randn(args.batch, L, generator=gen, dtype=dtype)
        K = ssm_kernel(Ab, Bb, C, L)
        Bu = (u[..., None] * Bb).unbind(1)  # L tensors of shape (B, N)
        AbT, x_start = Ab.mT.contiguous(), u.new_zeros(args.batch, args.state)
        runs = {
            "recurrence": lambda: ssm_scan(Ab, Bb, C, u),
            "bare loop": lambda: functools.reduce(
                lambda x, Bu_k: torch.addmm(Bu_k, x, AbT), Bu, x_start
            ),
            "FFT conv": lambda: causal_conv(u, K),
            "kernel + FFT conv": lambda: causal_conv(
                u, ssm_kernel(Ab, Bb, C, L)
            ),
        }
        y_rec = runs["recurrence"]()
        x_last = runs["bare loop"]()
        assert torch.allclose(x_last @ C, y_rec[:, -1], rtol=1e-6, atol=1e-9)
        for name in ("FFT conv", "kernel + FFT conv"):
            rel = ((runs[name]() - y_rec).norm() / y_rec.norm()).item()
            tol = 1e-9 if dtype == torch.float64 else 1e-3
            assert rel < tol, f"{name} disagrees: relative error {rel:.1e}"
        for run in runs.values():  # warm up (FFT plans, allocator)
            run()
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                times[name].append(seconds(run))
        medians = {name: statistics.median(t) for name, t in times.items()}
        rec = medians["recurrence"]
        print(f"L = {L}")
        for name, m in medians.items():
            low, high = min(times[name]), max(times[name])
            print(
                f"  {name:<18} {1000 * m:9.2f} ms "
                f"(repeats {1000 * low:.2f} to {1000 * high:.2f})   "
                f"recurrence / this = {rec / m:6.1f}"
            )
    return 0


def powers_kernel(Ab, Bb, C, L):
    """K[l] = C Ab^l Bb, with v_l = Ab^l Bb formed one product at a time."""
    v, K = Bb.unsqueeze(-1), []
    for _ in range(L):
        K.append((C.unsqueeze(-2) @ v)[..., 0, 0])
        v = Ab @ v
    return torch.stack(K, -1)


def kernels(args):
    """Time S4D's Vandermonde kernel against materialising Ab^l."""
    gen = torch.Generator().manual_seed(1)
    H, M = args.channels, 32
    A = s4d_lin(2 * M).expand(H, M)  # (H, M) complex128
    C = torch.randn(H, M, dtype=torch.complex128, generator=gen)
    dt = torch.exp(
        torch.empty(H, dtype=torch.float64).uniform_(-6.9, -2.3, generator=gen)
    )
    # the same system as dense (H, 2M, 2M) matrices, conjugates included
    A_full = torch.cat([A, A.conj()], -1)
    Ab = torch.diag_embed(torch.exp(dt[:, None] * A_full))
    Bb = torch.expm1(dt[:, None] * A_full) / A_full
    C_full = torch.cat([C, C.conj()], -1)
    print(
        f"S4D kernel, CPU complex128, H={H} N={2 * M}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, load "
        f"average {os.getloadavg()[0]:.2f}, median of {args.repeats} "
        "interleaved repeats"
    )
    for L in args.lengths:
        runs = {
            "Vandermonde": lambda: s4d_kernel(A, torch.ones_like(A), C, dt, L),
            "doubling": lambda: ssm_kernel(Ab, Bb, C_full, L).real,
        }
        runs["powers"] = lambda: powers_kernel(Ab, Bb, C_full, L).real
        K = runs["Vandermonde"]()
        for name, run in runs.items():
            rel = ((run() - K).norm() / K.norm()).item()
            assert rel < 1e-9, f"{name} disagrees: relative error {rel:.1e}"
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                times[name].append(seconds(run))
        medians = {name: statistics.median(t) for name, t in times.items()}
        fast = medians["Vandermonde"]
        print(f"L = {L}")
        for name, m in medians.items():
            print(
                f"  {name:<12} {1000 * m:10.2f} ms   "
                f"this / Vandermonde = {m / fast:8.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
