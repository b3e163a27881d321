"""Benchmark: the selective scan, a loop of L steps against the chunked scan.

Run from the repository root (never collected by ``pytest``)::

    python tests/benchmarks/bench_selective.py             # L = 256..16384
    python tests/benchmarks/bench_selective.py --lengths 2048 --repeats 15
    python tests/benchmarks/bench_selective.py --threads 2 1  # both, in turn
    python tests/benchmarks/bench_selective.py \\
        --out chapters/data/selective_scan_timing.json

The sizes of issue 13: b = 4 sequences, d = 32 channels, n = 16 state
entries per channel, float32, 2 threads; the inputs of a Mamba block (A =
-(1, ..., n) per channel, S4D-real's initialization; delta through a bias
and a softplus; the D skip and the z gate). For each length L, one repeat
runs, in turn (interleaved, so both see the same machine load):

- ``loop``: :func:`rnnbook.selective.selective_scan`, L sequential steps;
- ``parallel``: :func:`rnnbook.chunked_scan.selective_scan_parallel`, the
  chunked scan: 2K + ceil(L / K) - 1 vectorised steps with chunks of
  K = sqrt(L / 4) positions, about 3 sqrt(L);

first the forward pass alone (under ``torch.no_grad``, as in generation of
a whole prompt), then forward and backward (the gradients of every input
of ``sum(w * y)``). Medians of the repeats, the ratio of the medians loop /
parallel, and the median of the per-round ratios with their min-max (the
spread between rounds) are printed; before timing, the two are checked to
agree.

Memory, for forward + backward at each L:

- ``saved``: the bytes autograd keeps for the backward pass, counted once
  per storage (:func:`rnnbook.memory.saved_bytes`, inputs excluded); the
  loop keeps every step's decays and states, the parallel scan only its
  (b, d, L) inputs, since it recomputes the states in the backward pass;
- ``peak``: the rise of the process's peak resident memory (``VmHWM``,
  reset just before) during one forward + backward, and one forward, each
  in a fresh subprocess (Linux; glibc returns large blocks to the system
  at once, ``MALLOC_MMAP_THRESHOLD_``): the parallel scan's (L, b, d, n)
  working buffers show here;
- ``state``: the bytes of one (b, d, L, n) tensor, for scale.

Memory is measured at the first thread count only. ``--out PATH`` writes
all of it as JSON (atomically), one row per (threads, L), with the
machine's load average before, after and at the start of each row (the
machine may be shared: a busy one slows the loop's many small parallel
regions most), for the chapter to read.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

from rnnbook.chunked_scan import selective_scan_parallel
from rnnbook.memory import saved_bytes
from rnnbook.selective import selective_scan

SCANS = {"loop": selective_scan, "parallel": selective_scan_parallel}
DTYPE = torch.float32
GRAD = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_inputs(b, d, n, L, dtype, seed=0):
    """The inputs of one selective scan as a Mamba block makes them."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    A = -torch.arange(1, n + 1, dtype=dtype).repeat(d, 1)  # (d, n)
    return dict(
        u=randn(b, d, L),
        delta=randn(b, d, L) - 4,
        A=A,
        B=randn(b, n, L),
        C=randn(b, n, L),
        D=torch.ones(d, dtype=dtype),
        z=randn(b, d, L),
        delta_bias=randn(d),
        delta_softplus=True,
    )


def forward(scan, inputs):
    with torch.no_grad():
        return scan(**inputs)


def forward_backward(scan, inputs, w):
    leaves = [inputs[k].detach().requires_grad_(True) for k in GRAD]
    y = scan(**{**inputs, **dict(zip(GRAD, leaves))})
    return torch.autograd.grad((w * y).sum(), leaves)


def seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def interleaved(runs, repeats):
    """Warm up once, then ``repeats`` rounds of one call each, in turn."""
    for run in runs.values():
        run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(seconds(run))
    return times


def summary(times):
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats_s": times,
    }


def peak_rise(scan, L, mode, threads, args):
    """Peak resident memory rise of one run, in a fresh subprocess."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--peak",
        scan,
        mode,
        "--lengths",
        str(L),
        "--batch",
        str(args.batch),
        "--channels",
        str(args.channels),
        "--state",
        str(args.state),
        "--threads",
        str(threads),
    ]
    # large blocks straight from and back to the OS (glibc), so that the
    # resident size follows what is allocated, not what malloc keeps
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, env=env
    )
    return int(out.stdout.split()[-1])


def _status_kib(field):
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith(field + ":"))
    return int(line.split()[1])


def measure_peak(args):
    """In the subprocess: print the rise of the peak resident memory over
    one run, in bytes (Linux only)."""
    torch.set_num_threads(args.threads[0])
    scan_name, mode = args.peak
    scan, L = SCANS[scan_name], args.lengths[0]
    small = make_inputs(args.batch, args.channels, args.state, 8, DTYPE)
    w_small = torch.ones(args.batch, args.channels, 8)
    forward(scan, small), forward_backward(scan, small, w_small)  # warm up
    inputs = make_inputs(args.batch, args.channels, args.state, L, DTYPE)
    w = torch.randn(args.batch, args.channels, L)
    # Linux: writing 5 to clear_refs resets the peak (VmHWM) to the
    # current resident size, so the peak read after is this run's alone
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmHWM")
    if mode == "forward":
        forward(scan, inputs)
    else:
        forward_backward(scan, inputs, w)
    print(1024 * (_status_kib("VmHWM") - before))
    return 0


def time_length(L, threads, args):
    """Interleaved timings of both scans at length L, and their ratios."""
    b, d, n = args.batch, args.channels, args.state
    inputs = make_inputs(b, d, n, L, DTYPE, seed=L)
    w = torch.randn(b, d, L, generator=torch.Generator().manual_seed(1))
    y_loop = forward(selective_scan, inputs)
    y_par = forward(selective_scan_parallel, inputs)
    error = ((y_par - y_loop).norm() / y_loop.norm()).item()
    assert error < 1e-4, f"the scans disagree: relative error {error}"
    repeats = args.repeats if L <= 4096 else args.long_repeats
    row = {
        "L": L,
        "threads": threads,
        "repeats": repeats,
        "loadavg_at_start": os.getloadavg(),
        "relative_error_f32": error,
    }
    for mode in ("forward", "forward_backward"):
        if mode == "forward":
            runs = {
                k: (lambda s=s: forward(s, inputs)) for k, s in SCANS.items()
            }
        else:
            runs = {
                k: (lambda s=s: forward_backward(s, inputs, w))
                for k, s in SCANS.items()
            }
        times = interleaved(runs, repeats)
        row[mode] = {k: summary(t) for k, t in times.items()}
        ratio = statistics.median(times["loop"]) / statistics.median(
            times["parallel"]
        )
        row[mode]["ratio_loop_over_parallel"] = ratio
        per_round = [a / b for a, b in zip(times["loop"], times["parallel"])]
        row[mode]["ratio_per_round"] = {
            "median": statistics.median(per_round),
            "min": min(per_round),
            "max": max(per_round),
        }
        print(
            f"L = {L:6d}  {mode:<17}"
            + "".join(
                f"  {k} {1000 * statistics.median(t):9.1f} ms"
                for k, t in times.items()
            )
            + f"   loop / parallel = {ratio:5.1f}"
            + f" (per round {statistics.median(per_round):.1f}, "
            f"{min(per_round):.1f}-{max(per_round):.1f})"
        )
    return row


def memory_of(L, threads, args):
    """Saved bytes and peak rises of both scans at length L."""
    b, d, n = args.batch, args.channels, args.state
    inputs = make_inputs(b, d, n, L, DTYPE, seed=L)
    w = torch.randn(b, d, L, generator=torch.Generator().manual_seed(1))
    result = {"state_bytes": b * d * L * n * DTYPE.itemsize}
    leaves = [inputs[k].detach().requires_grad_(True) for k in GRAD]
    ins = {**inputs, **dict(zip(GRAD, leaves))}
    for name, scan in SCANS.items():
        nbytes, _ = saved_bytes(
            lambda scan=scan: (w * scan(**ins)).sum(), exclude=leaves
        )
        result[f"saved_bytes_{name}"] = nbytes
    if not args.no_peak:
        for name in SCANS:
            for mode in ("forward", "forward_backward"):
                result[f"peak_rise_bytes_{name}_{mode}"] = peak_rise(
                    name, L, mode, threads, args
                )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=[256, 1024, 2048, 4096, 16384],
    )
    parser.add_argument("--batch", type=int, default=4, help="b")
    parser.add_argument("--channels", type=int, default=32, help="d")
    parser.add_argument("--state", type=int, default=16, help="n")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--long-repeats",
        type=int,
        default=3,
        help="repeats at L > 4096, where the loop takes seconds",
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[2], help="one or more"
    )
    parser.add_argument("--no-peak", action="store_true", help="skip peak")
    parser.add_argument("--out", default=None, help="write JSON here")
    parser.add_argument("--peak", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak:
        return measure_peak(args)
    if args.out is not None:
        from rnnbook.experiments._io import check_output_path

        args.out = check_output_path(args.out)

    b, d, n = args.batch, args.channels, args.state
    started, load_before = time.time(), os.getloadavg()
    print(
        f"selective scan, loop vs parallel, CPU float32, b={b} d={d} n={n}, "
        f"torch {torch.__version__}, load average {load_before[0]:.2f} "
        f"{load_before[1]:.2f} {load_before[2]:.2f} (1, 5, 15 min, "
        f"{os.cpu_count()} CPUs)"
    )
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"{threads} threads")
        for L in args.lengths:
            row = time_length(L, threads, args)
            if threads == args.threads[0]:  # memory: once is enough
                row["memory"] = memory_of(L, threads, args)
                print(
                    "           memory: "
                    + ", ".join(
                        f"{k} {v / 2**20:.1f} MiB"
                        for k, v in row["memory"].items()
                    )
                )
            results.append(row)
    load_after = os.getloadavg()
    print(
        f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} "
        f"{load_after[2]:.2f}; {time.time() - started:.0f} s"
    )
    if args.out is not None:
        from rnnbook.experiments._io import write_json_atomic

        write_json_atomic(
            args.out,
            {
                "benchmark": "selective scan: loop vs chunked parallel scan",
                "command": " ".join(
                    ["python", "tests/benchmarks/bench_selective.py"]
                    + (sys.argv[1:] if argv is None else list(argv))
                ),
                "config": {
                    "b": b,
                    "d": d,
                    "n": n,
                    "dtype": "float32",
                    "threads": args.threads,
                    "lengths": args.lengths,
                    "repeats": args.repeats,
                    "long_repeats": args.long_repeats,
                    "inputs": "Mamba block's: A = -(1..n), softplus(delta "
                    "+ delta_bias), D, z",
                },
                "machine": {
                    "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                    "note": "a shared machine: other jobs ran meanwhile",
                },
                "versions": {
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                },
                "seconds": time.time() - started,
                "results": results,
            },
        )
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
