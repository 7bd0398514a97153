"""``python -m fastact``: a tour of the catalogue on this machine.

Runs every function forward and backward on a float32 array of 2^22
elements and on a softmax batch, checks a sample of each result against the
float64 kernels (which the test suite checks against independent references),
and prints one table: time per call, throughput, worst error in float32 ulps,
and the speed-up over the plain NumPy expression.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _row(name, fwd_t, bwd_t, n, fwd_err, bwd_err, base_f, base_b):
    gbs_f = 8 * n / fwd_t / 1e9
    gbs_b = 12 * n / bwd_t / 1e9
    sp_f = f"{base_f / fwd_t:5.1f}x" if base_f else "    -"
    sp_b = f"{base_b / bwd_t:5.1f}x" if base_b else "    -"
    return (f"{name:<24} {fwd_t * 1e3:8.2f} {gbs_f:6.1f} {bwd_t * 1e3:8.2f} {gbs_b:6.1f} "
            f"{fwd_err:8.2f} {bwd_err:8.2f} {sp_f} {sp_b}")


def tour(log2n: int = 22, repeat: int = 5, out=sys.stdout) -> None:
    import numba

    import fastact as fa
    from fastact._baselines import BASELINES, log_softmax, softmax, softmax_backward
    from fastact._verify import ulp_error

    n = 1 << log2n
    rng = np.random.default_rng(2024)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    sample = slice(0, 1 << 16)
    xs64 = x[sample].astype(np.float64)
    gs64 = g[sample].astype(np.float64)

    print(f"fastact {fa.__version__} tour: float32, {n:,} elements, "
          f"{numba.get_num_threads()} threads, median of {repeat}", file=out)
    print("forward: y = f(x, out=y); backward: gx = f.backward(g, x, out=gx); "
          "GB/s counts bytes read + written;", file=out)
    print("error: worst over 65,536 elements, in float32 ulps, against fastact's float64 kernels; "
          "speed-up: over the NumPy expression", file=out)
    print(file=out)
    header = (f"{'function':<24} {'fwd ms':>8} {'GB/s':>6} {'bwd ms':>8} {'GB/s':>6} "
              f"{'fwd ulp':>8} {'bwd ulp':>8} {'fwd':>6} {'bwd':>6}")
    print(header, file=out)
    print("-" * len(header), file=out)

    entries = []
    for f in fa.ELEMENTWISE:
        if f.name == "gelu":
            entries.append(("gelu", f, BASELINES["gelu"]))
            entries.append(("gelu(tanh)", f, BASELINES["gelu_tanh"]))
        else:
            entries.append((f.name, f, BASELINES[f.name]))

    gx = np.empty_like(x)
    with np.errstate(all="ignore"):
        for label, f, (bf, bg, params) in entries:
            f(x[:8], **params)  # compile (or load from the on-disk cache) first
            f.backward(g[:8], x[:8], **params)
            f(x, out=y, **params)
            f.backward(g, x, out=gx, **params)
            fwd_t = _median_time(lambda: f(x, out=y, **params), repeat)
            bwd_t = _median_time(lambda: f.backward(g, x, out=gx, **params), repeat)
            fwd_err = ulp_error(y[sample], f(xs64, **params))
            bwd_err = ulp_error(gx[sample], f.backward(gs64, xs64, **params))
            exact_erf = label != "gelu" or _has_scipy()
            base_f = _median_time(lambda: bf(x), max(1, repeat // 2)) if exact_erf else None
            base_b = _median_time(lambda: g * bg(x), max(1, repeat // 2)) if exact_erf else None
            print(_row(label, fwd_t, bwd_t, n, fwd_err, bwd_err, base_f, base_b), file=out)

        rows, cols = n // 1024, 1024
        xb = x.reshape(rows, cols)
        gb = g.reshape(rows, cols)
        yb = np.empty_like(xb)
        xbs = xb[:64].astype(np.float64)
        gbs = gb[:64].astype(np.float64)
        for label, f, ref in (("softmax", fa.softmax, softmax),
                              ("log_softmax", fa.log_softmax, log_softmax)):
            f(xb[:2])
            f.backward(gb[:2], xb[:2])
            f(xb, out=yb)
            fwd_t = _median_time(lambda: f(xb, out=yb), repeat)
            bwd_t = _median_time(lambda: f.backward(gb, y=yb, out=gx.reshape(rows, cols)), repeat)
            fwd_err = ulp_error(yb[:64], f(xbs))
            bwd_err = ulp_error(f.backward(gb[:64], xb[:64]), f.backward(gbs, xbs))
            base_f = _median_time(lambda: ref(xb), max(1, repeat // 2))
            ybase = ref(xb)
            if label == "softmax":
                base_b = _median_time(lambda: softmax_backward(gb, ybase), max(1, repeat // 2))
            else:
                base_b = _median_time(lambda: gb - np.exp(ybase) * gb.sum(-1, keepdims=True),
                                      max(1, repeat // 2))
            print(_row(f"{label} [{rows}x{cols}]", fwd_t, bwd_t, n, fwd_err, bwd_err, base_f, base_b),
                  file=out)
    print(file=out)
    print("softmax rows: backward from the saved output (y=). Kernels compile on first use and are "
          "cached on disk: the next run starts faster.", file=out)


def _has_scipy() -> bool:
    try:
        import scipy.special  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastact",
        description="fastact: activation functions as Numba kernels. Without a command: "
                    "a tour of every function, timed and checked on this machine.",
    )
    parser.add_argument("--log2n", type=int, default=22,
                        help="array size as a power of two (default 22: 4,194,304 elements)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per operation (median)")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("tour", help="the default: every function, timed and checked")
    bench = commands.add_parser("bench", help="throughput against memory bandwidth, NumPy and PyTorch")
    bench.add_argument("--log2n", type=int, default=24, dest="bench_log2n",
                       help="array size as a power of two (default 24)")
    bench.add_argument("--repeat", type=int, default=7, dest="bench_repeat", help="timed runs (median)")
    plot = commands.add_parser("plot", help="draw every function and its derivative into a PNG grid")
    plot.add_argument("--out", default="fastact.png", help="the PNG file to write (default fastact.png)")
    from fastact._verify import add_parser as add_verify

    add_verify(commands)
    args = parser.parse_args(argv)
    if args.command == "verify":
        from fastact._verify import run as run_verify

        return run_verify(args, parser.error)
    if args.command == "plot":
        from fastact._plot import plot_all

        path = plot_all(args.out)
        print(f"wrote {path}")
        return 0
    if args.command == "bench":
        from fastact._bench import bench as run_bench

        if not 10 <= args.bench_log2n <= 30 or args.bench_repeat < 1:
            parser.error("bench: --log2n must be between 10 and 30 and --repeat at least 1")
        run_bench(args.bench_log2n, args.bench_repeat)
        return 0
    if not 4 <= args.log2n <= 30:
        parser.error("--log2n must be between 4 and 30")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    tour(args.log2n, args.repeat)
    return 0
