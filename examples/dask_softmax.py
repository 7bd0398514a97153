"""Softmax and GELU over an array larger than memory, with Dask.

x is a (2^31 / 1024, 1024) float32 array (8 GiB; 16 GiB as float64), generated
chunk by chunk (uniform in [-4, 4), one seed per chunk) and never held whole.
The script computes the mean over rows of sum(gelu(softmax(x, axis=1)), axis=1)
three ways on Dask's threaded scheduler:

* generation and a sum only (the cost every run shares);
* NumPy expressions in ``map_blocks``: a stable softmax, exp(x - max) / sum,
  and GELU as 0.5 x (1 + erf(x / sqrt 2)) with SciPy's ``erf``;
* fastact: ``fastact.gelu(fastact.softmax(x, axis=1))`` on the Dask array.

It prints the wall time of each, the throughput in GB/s of float32 input, the
two results and the peak resident memory of the process.

    python examples/dask_softmax.py                  # 2^31 values: a few minutes
    python examples/dask_softmax.py --log2n 24       # a quick run
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import dask.array as da
import numpy as np

import fastact

F32 = np.float32


def generate(block: np.ndarray, block_id: tuple = (0, 0), seed: int = 0) -> np.ndarray:
    """One chunk of x: uniform in [-4, 4), from its own seed."""
    rng = np.random.default_rng([seed, block_id[0]])
    x = rng.random(block.shape, dtype=F32)
    x *= 8
    x -= 4
    return x


def numpy_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def numpy_gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x * 0.7071067811865476))


def source(rows: int, cols: int, chunk_rows: int, seed: int) -> da.Array:
    # da.empty's blocks are zero-strided views (nothing is allocated): they
    # only give each task its shape and block index.
    shape = da.empty((rows, cols), chunks=(chunk_rows, cols), dtype=F32)
    return shape.map_blocks(generate, seed=seed, dtype=F32, meta=np.empty((0, 0), F32))


def run(label: str, result: da.Array, nbytes: int, threads: int) -> float:
    t0 = time.perf_counter()
    value = float(result.compute(scheduler="threads", num_workers=threads))
    wall = time.perf_counter() - t0
    print(f"{label:<22} {wall:9.2f} {nbytes / wall / 1e9:15.2f}   {value:.9g}", flush=True)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2n", type=int, default=31, help="log2 of the number of values (default 31)")
    parser.add_argument("--cols", type=int, default=1024, help="length of the softmax axis (default 1024)")
    parser.add_argument("--chunk-mib", type=int, default=64, help="chunk size in MiB of float32 (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="Dask scheduler threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    n = 1 << args.log2n
    rows = n // args.cols
    chunk_rows = max(1, min(rows, (args.chunk_mib << 20) // (4 * args.cols)))
    nbytes = rows * args.cols * 4
    x = source(rows, args.cols, chunk_rows, args.seed)
    print(f"x: {rows * args.cols} float32 values, shape {x.shape}, {x.numblocks[0]} chunks of "
          f"{chunk_rows * args.cols * 4 / 2**20:.0f} MiB: {nbytes / 2**30:.2f} GiB "
          f"({2 * nbytes / 2**30:.2f} GiB as float64); {args.threads} threads")
    print(f"{'':<22} {'wall (s)':>9} {'GB/s of input':>15}   mean row sum of gelu(softmax(x))")

    def reduce(y: da.Array) -> da.Array:
        return y.sum(axis=1, dtype=np.float64).mean()

    # Untimed: one chunk each, to load the kernels and import SciPy.
    one = x[:chunk_rows]
    fastact.gelu(fastact.softmax(one, axis=1)).sum().compute()
    one.map_blocks(numpy_softmax).map_blocks(numpy_gelu).sum().compute()

    run("generate + sum only", reduce(x), nbytes, args.threads)
    ref = run("NumPy + SciPy", reduce(x.map_blocks(numpy_softmax).map_blocks(numpy_gelu)), nbytes,
              args.threads)
    got = run("fastact", reduce(fastact.gelu(fastact.softmax(x, axis=1))), nbytes, args.threads)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    print(f"relative difference of the results: {abs(got - ref) / abs(ref):.1e}; "
          f"peak resident memory: {peak / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
