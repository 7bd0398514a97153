"""Hammer fastact from threads and processes, verifying every result.

    python bench/stress.py --seconds 60 --threads 8 --processes 2

Each worker runs random jobs (elementwise forward/grad/backward/value_and_grad,
softmax family, glu, maxout, prelu; float32 and float64; sizes on both sides
of the parallel threshold; contiguous and strided inputs) and compares each
result bit for bit with the one computed once, single-threaded, before the
workers start. Processes are started with fork (after the parent has run the
parallel kernels) and with spawn. Exits non-zero on the first mismatch.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import threading
import time

import numpy as np


def make_jobs():
    import fastact as fa

    jobs = []
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        for n in (1000, 1 << 17):
            x = (rng.standard_normal(n) * 4).astype(dtype)
            g = rng.standard_normal(n).astype(dtype)
            xs = x[::-1][::2]
            for f in fa.ELEMENTWISE:
                kw = {"threshold": 0.5, "value": -1.0} if f is fa.threshold else {}
                jobs.append((f"{f.name} {dtype.__name__} {n}", lambda f=f, x=x, kw=kw: f(x, **kw)))
                jobs.append((f"{f.name}.grad strided", lambda f=f, x=xs, kw=kw: f.grad(x, **kw)))
                jobs.append((f"{f.name}.backward", lambda f=f, x=x, g=g, kw=kw: f.backward(g, x, **kw)))
                jobs.append((f"{f.name}.value_and_grad",
                             lambda f=f, x=x, kw=kw: np.stack(f.value_and_grad(x, **kw))))
            rows = x.reshape(-1, 100 if n == 1000 else 512)
            grows = g.reshape(rows.shape)
            w = np.linspace(0.1, 0.4, rows.shape[1]).astype(dtype)
            for f in (fa.softmax, fa.log_softmax, fa.softmin):
                jobs.append((f"{f.name} rows", lambda f=f, r=rows: f(r)))
                jobs.append((f"{f.name} axis 0", lambda f=f, r=rows: f(r, axis=0)))
                jobs.append((f"{f.name}.backward", lambda f=f, r=rows, gr=grows: f.backward(gr, r)))
            jobs.append(("glu", lambda r=rows: fa.glu(r)))
            jobs.append(("maxout", lambda r=rows: fa.maxout(r, pool_size=4)))
            jobs.append(("prelu.backward", lambda r=rows, gr=grows, w=w: np.concatenate(
                [a.ravel() for a in fa.prelu.backward(gr, r, w)])))
    return jobs


def run_worker(seconds: float, threads: int, seed: int, expected) -> int:
    jobs = make_jobs()
    count = [0]
    failure = []
    lock = threading.Lock()

    def loop(k):
        rnd = random.Random(seed * 1000 + k)
        end = time.monotonic() + seconds
        while time.monotonic() < end and not failure:
            i = rnd.randrange(len(jobs))
            name, job = jobs[i]
            got = job()
            if not np.array_equal(got, expected[i], equal_nan=True):
                failure.append(name)
                return
            with lock:
                count[0] += 1

    ts = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if failure:
        print(f"MISMATCH in {failure[0]}", flush=True)
        return -1
    return count[0]


def _process_main(seconds, threads, seed, expected, queue):
    queue.put(run_worker(seconds, threads, seed, expected))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="per start method (fork, spawn)")
    args = parser.parse_args(argv)

    import numba

    expected = [job() for _, job in make_jobs()]  # the parent runs the parallel kernels first
    print(f"{len(expected)} jobs; threading layer {numba.threading_layer()}; "
          f"{args.threads} threads in this process and in each of "
          f"{args.processes} forked + {args.processes} spawned processes, {args.seconds:.0f} s", flush=True)
    procs = []
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        for k in range(args.processes):
            q = ctx.Queue()
            p = ctx.Process(target=_process_main, args=(args.seconds, args.threads, 100 + len(procs), expected, q))
            p.start()
            procs.append((method, p, q))
    here = run_worker(args.seconds, args.threads, 0, expected)
    ok = here >= 0
    print(f"main process: {here} verified calls", flush=True)
    for method, p, q in procs:
        n = q.get(timeout=args.seconds + 600)
        p.join(60)
        ok &= n >= 0 and p.exitcode == 0
        print(f"{method} child: {n} verified calls, exit code {p.exitcode}", flush=True)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
