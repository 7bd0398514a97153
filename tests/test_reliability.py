"""Threads, fork, spawn, process pools, the kernel cache, and odd arrays."""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastact as fa

N = 1 << 17  # above the parallel threshold
RNG = np.random.default_rng(11)
X = (RNG.standard_normal(N) * 3).astype(np.float32)
G = RNG.standard_normal(N).astype(np.float32)
ROWS = X.reshape(-1, 256)
W = np.linspace(0.1, 0.3, 256).astype(np.float32)

JOBS = [
    lambda: fa.sigmoid(X),
    lambda: fa.gelu.backward(G, X),
    lambda: fa.silu.value_and_grad(X)[1],
    lambda: fa.leaky_relu(X, negative_slope=0.2),
    lambda: fa.softmax(ROWS),
    lambda: fa.log_softmax.backward(G.reshape(ROWS.shape), ROWS),
    lambda: fa.maxout(ROWS, pool_size=4),
    lambda: fa.prelu.backward(G.reshape(ROWS.shape), ROWS, W)[1],
]


def _expected():
    return [job() for job in JOBS]


def _hammer(expected, rounds=6):
    for r in range(rounds):
        for k in range(len(JOBS)):
            j = (k + r) % len(JOBS)
            np.testing.assert_array_equal(JOBS[j](), expected[j])


def test_threads_calling_mixed_functions_concurrently():
    expected = _expected()
    errors = []

    def worker():
        try:
            _hammer(expected)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


_THREAD_SCRIPT = """
    import sys, threading
    sys.path[:0] = {paths!r}
    import numba, numpy as np
    import test_reliability as t
    expected = t._expected()
    errors = []
    def worker():
        try:
            t._hammer(expected, rounds=3)
        except BaseException as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=worker) for _ in range(8)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    print(numba.threading_layer(), "errors" if errors else "ok", errors[:1])
"""


def test_threads_under_the_workqueue_layer():
    """workqueue aborts on concurrent parallel launches: fastact must serialize them."""
    code = textwrap.dedent(_THREAD_SCRIPT.format(paths=[os.path.dirname(__file__), *sys.path]))
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[:2] == ["workqueue", "ok"], r.stdout


def _child_job(queue):
    try:
        queue.put([float(np.sum(job(), dtype=np.float64)) for job in JOBS])
    except BaseException as e:  # pragma: no cover - reported by the parent
        queue.put(repr(e))


def _sums(arrays):
    return [float(np.sum(a, dtype=np.float64)) for a in arrays]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_child_processes_after_parallel_use(method):
    expected = _sums(_expected())  # the parent has run parallel kernels
    ctx = mp.get_context(method)
    queue = ctx.Queue()
    p = ctx.Process(target=_child_job, args=(queue,))
    p.start()
    got = queue.get(timeout=300)
    p.join(60)
    assert p.exitcode == 0
    assert got == expected


def _pool_task(i):
    return _sums([JOBS[i]()])[0]


def test_process_pool():
    expected = _sums(_expected())
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        assert list(pool.map(_pool_task, range(len(JOBS)))) == expected
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        assert list(pool.map(_pool_task, range(len(JOBS)))) == expected


_CACHE_SCRIPT = """
    import json, numpy as np, fastact
    from fastact import _cpu
    x = np.linspace(-3, 3, 1 << 17, dtype=np.float32)
    y = fastact.softplus(x, beta=2.0)
    k = _cpu.loop(fastact.softplus._defn, "forward", True)
    print(json.dumps({"hits": sum(k.stats.cache_hits.values()), "y": float(y.sum())}))
"""


def _run(env_extra, cwd=None):
    env = dict(os.environ, **env_extra)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(_CACHE_SCRIPT)], capture_output=True,
                       text=True, env=env, cwd=cwd, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_fastact_cache_dir(tmp_path):
    first = _run({"FASTACT_CACHE_DIR": str(tmp_path)})
    second = _run({"FASTACT_CACHE_DIR": str(tmp_path)})
    assert first["hits"] == 0 and second["hits"] == 1 and first["y"] == second["y"]
    assert any(tmp_path.rglob("*softplus*.nbi"))


def test_cache_can_be_turned_off(tmp_path):
    r = _run({"FASTACT_CACHE_DIR": str(tmp_path), "FASTACT_CACHE": "0"})
    assert r["hits"] == 0
    assert not any(tmp_path.rglob("*.nbi"))


def test_concurrent_first_use_of_one_cache(tmp_path):
    env = dict(os.environ, FASTACT_CACHE_DIR=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_CACHE_SCRIPT)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["y"] for r in results}) == 1
    assert _run({"FASTACT_CACHE_DIR": str(tmp_path)})["hits"] == 1


def test_damaged_cache_files_are_not_fatal(tmp_path):
    _run({"FASTACT_CACHE_DIR": str(tmp_path)})
    for f in tmp_path.rglob("*.nb*"):
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])  # truncated, as by a crash
    r = _run({"FASTACT_CACHE_DIR": str(tmp_path)})
    assert r["y"] == _run({"FASTACT_CACHE": "0"})["y"]


def test_more_than_2_31_elements():
    """64-bit sizes and indexing, on stride-0 views (a few bytes of memory)."""
    n = 2**31 + 5
    base = np.array([-2.0, 3.0], dtype=np.float32)
    x = np.lib.stride_tricks.as_strided(base[1:], shape=(n,), strides=(0,))
    buf = np.zeros(1, dtype=np.float32)
    out = np.lib.stride_tricks.as_strided(buf, shape=(n,), strides=(0,))
    fa.relu(x, out=out)
    assert buf[0] == 3.0


def test_rowwise_out_partly_overlapping_the_input():
    x = (RNG.standard_normal((9, 8)) * 2).astype(np.float64)
    expected = fa.softmax(x[:-1])
    buf = x.copy()
    fa.softmax(buf[:-1], out=buf[1:])
    np.testing.assert_array_equal(buf[1:], expected)
    buf = x.copy()
    expected = fa.glu(x[:, :4], axis=-1)
    fa.glu(buf[:, :4], out=buf[:, 2:4])
    np.testing.assert_array_equal(buf[:, 2:4], expected)


@pytest.mark.parametrize("call", [
    lambda o: fa.celu(np.ones(4), alpha=0.0, out=o),
    lambda o: fa.softshrink(np.ones(4), lambd=-1.0, out=o),
    lambda o: fa.gelu(np.ones(4), approximate="fast", out=o),
    lambda o: fa.sigmoid.backward(np.ones(3), np.ones(4), out=o),
    lambda o: fa.softmax(np.ones(4), axis=1, out=o),
    lambda o: fa.softmax(np.ones(4), where=np.ones(3, bool), out=o),
    lambda o: fa.maxout(np.ones(4), pool_size=3, out=o),
    lambda o: fa.glu(np.ones(5), out=o),
    lambda o: fa.prelu(np.ones(4), np.ones(2), out=o),
    lambda o: fa.relu(np.ones(4, complex), out=o),
])
def test_errors_write_nothing_into_out(call):
    out = np.full(4, 7.0)
    with pytest.raises((ValueError, TypeError)):
        call(out)
    assert (out == 7.0).all()


_FIRST_USE_SCRIPT = """
    import threading, numpy as np, fastact as fa
    xs = {dt: np.linspace(-5, 5, 1001).astype(dt) for dt in (np.float32, np.float64)}
    funcs = [fa.elu, fa.mish, fa.softsign]
    expected = {}
    start = threading.Barrier(8)
    results, errors = {}, []
    def worker(k):
        try:
            start.wait()
            f, dt = funcs[k % 3], (np.float32, np.float64)[k % 2]
            results[k] = (f.name, dt, f.value_and_grad(xs[dt]), f.backward(xs[dt], xs[dt]))
        except BaseException as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    for name, dt, (y, d), b in results.values():
        f = getattr(fa, name)
        assert np.array_equal(y, f(xs[dt])) and np.array_equal(d, f.grad(xs[dt]))
        assert np.array_equal(b, xs[dt] * f.grad(xs[dt]))
    print("ok")
"""


def _run_fresh_ok(script: str) -> None:
    """Run a script that prints "ok" in a fresh process that compiles everything (no cache)."""
    env = dict(os.environ, FASTACT_CACHE="0")
    r = subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(script)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_concurrent_first_calls_compile_once():
    """Threads racing to the first call of a kernel: no duplicate compilation, right values."""
    _run_fresh_ok(_FIRST_USE_SCRIPT)


_ORDER_SCRIPT = """
    import numpy as np, fastact as fa
    from fastact import _cpu
    x64 = np.linspace(-5, 5, 1001)
    x32 = x64.astype(np.float32)
    fa.softsign.backward(x64, x64)  # the float64 loops exist first
    fa.mish(x64)
    serial = fa.softsign.backward(x32, x32), fa.mish(x32)
    _cpu.PARALLEL_THRESHOLD = 1  # the parallel loops compute natively in float32
    parallel = fa.softsign.backward(x32, x32), fa.mish(x32)
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel))
    print("ok")
"""


def test_float32_does_not_run_float64_loops():
    """A float32 call after a float64 one is computed in float32, not in float64 and rounded."""
    _run_fresh_ok(_ORDER_SCRIPT)


def test_functions_pickle_by_reference():
    """Worker processes (multiprocessing, Dask) receive the very function objects."""
    import pickle

    from fastact.definitions.gaussian import gelu_erf, gelu_tanh

    objs = [*fa.ELEMENTWISE, *fa.ROWWISE, fa.prelu, fa.mse_loss, fa.cross_entropy, gelu_erf, gelu_tanh]
    for f in objs:
        assert pickle.loads(pickle.dumps(f)) is f, f.name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_dimensional_arrays_on_every_short_path(dtype):
    """0-d arrays get what the regular path gives them, whichever short paths
    exist: an error that says so where an axis is needed, NumPy scalars
    elsewhere (also after the compiled entry points are in place)."""
    x, w = np.array(0.5, dtype), np.full(1, 0.25, dtype)
    for _ in range(2):  # the second round runs with every short path enabled
        fa.softmax(np.ones((2, 4), dtype)), fa.glu(np.ones(4, dtype)), fa.maxout(np.ones(4, dtype), pool_size=2)
        fa.cross_entropy(np.ones((2, 3), dtype), np.zeros(2, np.intp))
        for call in (lambda: fa.softmax(x), lambda: fa.log_softmax.backward(x, x), lambda: fa.softmax.backward(x, y=x),
                     lambda: fa.glu(x), lambda: fa.glu.backward(x, x), lambda: fa.maxout(x, pool_size=1),
                     lambda: fa.maxout.backward(x, x, pool_size=1),
                     lambda: fa.cross_entropy(x, np.array(0)), lambda: fa.cross_entropy.backward(x, np.array(0))):
            with pytest.raises(ValueError, match="at least one dimension"):
                call()
        for v in (fa.relu(x), fa.relu.backward(x, x), fa.prelu(x, w), fa.prelu.backward(x, x, w)[0],
                  fa.mse_loss(x, x, reduction="none"), fa.mse_loss.backward(x, x), fa.mse_loss(x, x)):
            assert type(v) is np.dtype(dtype).type
