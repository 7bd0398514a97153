"""Dask arrays: every function against the NumPy path, lazily, on threads and processes.

Small arrays with uneven chunks; the threaded scheduler throughout, and one
``distributed.LocalCluster`` of two worker processes for the tests that need
pickling and the kernel cache.
"""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import fastact as fa  # noqa: E402
from conftest import CASES  # noqa: E402
from fastact import _cpu, _rowwise_kernels  # noqa: E402

FAMILY = [fa.softmax, fa.log_softmax, fa.softmin]
FAMILY_IDS = [f.name for f in FAMILY]
TOL = {np.dtype(np.float32): dict(rtol=3e-6, atol=1e-7), np.dtype(np.float64): dict(rtol=1e-13, atol=1e-15),
       np.dtype(np.float16): dict(rtol=1e-3, atol=1e-4)}


@pytest.fixture(autouse=True, scope="module")
def threads():
    with dask.config.set(scheduler="threads", num_workers=4):
        yield


def rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def check(got, want, tol=None):
    """``got`` (a lazy Dask array) computes to ``want``, with its dtype, meta and shape."""
    assert isinstance(got, da.Array), type(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert type(got._meta) is np.ndarray and got._meta.dtype == want.dtype
    value = got.compute()
    assert value.dtype == want.dtype and value.shape == want.shape
    np.testing.assert_allclose(value, want, **(tol or TOL[want.dtype]))


# --- elementwise -------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_elementwise(case):
    f, p = case.func, case.params
    x = rand((11, 9)) * 4
    x[0, :4] = [0.0, np.inf, -np.inf, np.nan]
    g = rand((11, 9), seed=1)
    dx = da.from_array(x, chunks=(4, 5))
    dg = da.from_array(g, chunks=(3, 9))  # other chunks than x: unified
    check(f(dx, **p), f(x, **p))
    check(f.grad(dx, **p), f.grad(x, **p))
    check(f.backward(dg, dx, **p), f.backward(g, x, **p))
    v, d = f.value_and_grad(dx, **p)
    vv, dd = f.value_and_grad(x, **p)
    check(v, vv)
    check(d, dd)
    if f.from_output:
        check(f.backward(dg, y=f(dx, **p), **p), f.backward(g, y=f(x, **p), **p))


def test_elementwise_broadcast_and_mixed():
    x = rand((6, 7))
    dx = da.from_array(x, chunks=(4, 3))
    g = rand((7,), seed=2)
    check(fa.silu.backward(g, dx), fa.silu.backward(g, x))  # NumPy grad_output, broadcast
    check(fa.silu.backward(da.from_array(g, chunks=2), dx), fa.silu.backward(g, x))
    check(fa.silu.backward(2.0, dx), fa.silu.backward(2.0, x))  # a scalar
    check(fa.silu.backward(da.from_array(np.ones_like(x)), x), fa.silu.backward(np.ones_like(x), x))
    mask = x > -0.5
    check(fa.softmax(x, where=da.from_array(mask, chunks=2)), fa.softmax(x, where=mask))  # only where=


@pytest.mark.parametrize("dtype,expected", [(np.float16, np.float16), (np.float32, np.float32),
                                            (np.int32, np.float64), (np.bool_, np.float64)])
def test_dtypes(dtype, expected):
    x = (rand((5, 6)) * 3).astype(dtype)
    dx = da.from_array(x, chunks=4)
    for got, want in [(fa.gelu(dx), fa.gelu(x)), (fa.softmax(dx, axis=0), fa.softmax(x, axis=0)),
                      (fa.mse_loss(dx, x[::-1]), fa.mse_loss(x, x[::-1]))]:
        assert want.dtype == expected
        check(got, want)


def test_unknown_chunks():
    x = rand((20,))
    dx = da.from_array(x, chunks=7)
    sel = dx[dx > 0]  # chunks of unknown size
    np.testing.assert_allclose(fa.tanh(sel).compute(), fa.tanh(x[x > 0]))
    with pytest.raises(ValueError, match=r"x has chunks of unknown size.*compute_chunk_sizes"):
        fa.softmax(sel)


# --- softmax family ----------------------------------------------------------------

@pytest.fixture(params=["rechunk", "two-pass"])
def strategy(request, monkeypatch):
    from fastact import _dask

    if request.param == "two-pass":
        monkeypatch.setattr(_dask, "WHOLE_AXIS_MAX_BYTES", 0)
    return request.param


def special_rows(x):
    """Rows (along the last axis) of -inf, with +inf, with NaN, and of huge values."""
    x = x.copy()
    x[0, 0, :] = -np.inf
    x[0, 1, 3] = np.inf
    x[0, 2, 5] = np.nan
    x[1, 0, :] *= 1e30
    return x


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("f", FAMILY, ids=FAMILY_IDS)
def test_softmax(f, axis, strategy):
    x = special_rows(rand((5, 6, 13)) * 3)
    if axis != -1:
        x = np.moveaxis(x, -1, axis).copy()
    dx = da.from_array(x, chunks=(2, 4, 5))
    y = f(dx, axis=axis)
    # the axis is split over several chunks: one chunk after rechunking, or as x
    assert len(y.chunks[axis]) == (1 if strategy == "rechunk" else len(dx.chunks[axis]))
    with np.errstate(invalid="ignore"):  # the NaN rows of the reference
        want = f(x, axis=axis)
    check(y, want)

    rng = np.random.default_rng(3)
    mask = rng.random(x.shape) > 0.3
    m = np.moveaxis(mask, axis, -1)
    m[1, 1, :] = False  # a row with every entry masked
    m[2, 2, :] = [True] + [False] * (m.shape[-1] - 1)
    for where in (mask, da.from_array(mask, chunks=3)):
        check(f(dx, axis=axis, where=where), f(x, axis=axis, where=mask))

    g = rand(x.shape, seed=4)
    dg = da.from_array(g, chunks=(3, 3, 3))
    xf = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)  # finite: gradients to compare
    dxf = da.from_array(xf, chunks=(2, 4, 5))
    check(f.backward(dg, dxf, axis=axis), f.backward(g, xf, axis=axis))
    yv = f(xf, axis=axis, where=mask)
    check(f.backward(dg, y=da.from_array(yv, chunks=4), axis=axis, where=mask),
          f.backward(g, y=yv, axis=axis, where=mask))


@pytest.mark.parametrize("f", FAMILY, ids=FAMILY_IDS)
def test_softmax_float16_and_1d(f, strategy):
    x = rand((50,), np.float16) * 4
    dx = da.from_array(x, chunks=9)
    check(f(dx), f(x))
    g = rand((50,), np.float16, seed=1)
    check(f.backward(g, dx), f.backward(g, x))


def test_softmax_rechunk_keeps_blocks_small(monkeypatch):
    # A block of the whole axis would be 64 x 4000 x 8 bytes; the limit here
    # is 100 kB, so the other axis is chunked finer.
    x = rand((64, 4000), np.float64)
    dx = da.from_array(x, chunks=(64, 1000))
    with dask.config.set({"array.chunk-size": "100kB"}):
        y = fa.softmax(dx, axis=1)
    assert y.chunks[1] == (4000,)
    assert max(y.chunks[0]) * 4000 * 8 <= 100_000
    check(y, fa.softmax(x, axis=1))


@pytest.mark.parametrize("f", FAMILY, ids=FAMILY_IDS)
def test_jacobian(f):
    x = rand((4, 7, 3))
    mask = np.random.default_rng(0).random(x.shape) > 0.2
    dx = da.from_array(x, chunks=(3, 2, 2))
    check(f.jacobian(dx, axis=1), f.jacobian(x, axis=1))
    check(f.jacobian(dx, axis=1, where=da.from_array(mask, chunks=2)), f.jacobian(x, axis=1, where=mask))


# --- glu, maxout, prelu --------------------------------------------------------------

def test_glu():
    x = rand((5, 12, 3), np.float64)
    dx = da.from_array(x, chunks=(2, 5, 2))
    check(fa.glu(dx, axis=1), fa.glu(x, axis=1))
    g = rand((5, 6, 3), np.float64, seed=1)
    check(fa.glu.backward(da.from_array(g, chunks=4), dx, axis=1), fa.glu.backward(g, x, axis=1))
    with pytest.raises(ValueError, match="must be even"):
        fa.glu(dx, axis=2)


def test_maxout():
    x = rand((4, 18), np.float64)
    dx = da.from_array(x, chunks=(3, 5))  # chunk bounds 5, 10, 15 are not multiples of 3
    check(fa.maxout(dx, pool_size=3), fa.maxout(x, pool_size=3))
    g = rand((4, 6), np.float64, seed=1)
    check(fa.maxout.backward(da.from_array(g, chunks=(2, 4)), dx, pool_size=3),
          fa.maxout.backward(g, x, pool_size=3))
    check(fa.maxout(dx.T, pool_size=2, axis=0), fa.maxout(x.T, pool_size=2, axis=0))
    with pytest.raises(ValueError, match="does not divide"):
        fa.maxout(dx, pool_size=4)
    with pytest.raises(TypeError, match="pool_size must be a positive integer"):
        fa.maxout(dx, pool_size=1.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_prelu(dtype):
    x = rand((6, 5, 7), dtype)
    dx = da.from_array(x, chunks=(4, 2, 3))
    g = rand(x.shape, dtype, seed=1)
    dg = da.from_array(g, chunks=3)
    w = np.linspace(0.1, 0.5, 5)
    for weight in (w, da.from_array(w, chunks=3), np.array([0.25]), 0.25):
        check(fa.prelu(dx, weight), fa.prelu(x, weight))
        check(fa.prelu.grad(dx, weight), fa.prelu.grad(x, weight))
        gx, gw = fa.prelu.backward(dg, dx, weight)
        wgx, wgw = fa.prelu.backward(g, x, weight)
        check(gx, wgx)
        check(gw, wgw, dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else None)
    # channels on another axis; a 1-D input takes a single weight
    check(fa.prelu(dx, w[:2].tolist() + [0.3] * 5, axis=-1), fa.prelu(x, w[:2].tolist() + [0.3] * 5, axis=-1))
    x1 = rand((9,), dtype)
    check(fa.prelu(da.from_array(x1, chunks=4), 0.1), fa.prelu(x1, 0.1))
    with pytest.raises(ValueError, match="expected 1 or the number of channels 5"):
        fa.prelu(dx, np.ones(3))


# --- losses ----------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    p = rand((7, 9))
    t = rand((7, 9), seed=1)
    dp = da.from_array(p, chunks=(3, 4))
    dt = da.from_array(t, chunks=(5, 5))
    loss = fa.mse_loss(dp, dt, reduction=reduction)
    want = fa.mse_loss(p, t, reduction=reduction)
    assert loss.ndim == np.ndim(want)  # 0-d for 'mean' and 'sum'
    check(loss, want)
    g = 3.0 if reduction != "none" else rand((9,), seed=2)
    check(fa.mse_loss.backward(dp, t, g, reduction=reduction), fa.mse_loss.backward(p, t, g, reduction=reduction))
    if reduction != "none":
        check(fa.mse_loss.backward(dp, dt, da.from_array(np.float32(3.0)), reduction=reduction),
              fa.mse_loss.backward(p, t, 3.0, reduction=reduction))
        with pytest.raises(ValueError, match="grad_output must be a scalar"):
            fa.mse_loss.backward(dp, t, np.ones(9), reduction=reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("axis", [1, -1])
def test_cross_entropy(reduction, axis):
    x = rand((6, 10, 4), np.float64) * 3
    if axis == -1:
        x = np.moveaxis(x, 1, -1).copy()
    target = np.random.default_rng(0).integers(0, 10, x.shape[:axis % 3] + x.shape[axis % 3 + 1:])
    dx = da.from_array(x, chunks=(4, 3, 3))
    dt = da.from_array(target, chunks=2)
    check(fa.cross_entropy(dx, dt, axis=axis, reduction=reduction),
          fa.cross_entropy(x, target, axis=axis, reduction=reduction))
    g = 0.5 if reduction != "none" else rand(target.shape, np.float64, seed=5)
    check(fa.cross_entropy.backward(dx, target, g, axis=axis, reduction=reduction),
          fa.cross_entropy.backward(x, target, g, axis=axis, reduction=reduction))


def test_cross_entropy_bad_target_raises_at_compute():
    x = rand((4, 3))
    loss = fa.cross_entropy(da.from_array(x, chunks=2), np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match="class index 5"):
        loss.compute()


# --- laziness, errors, pickling -----------------------------------------------------

def test_lazy(monkeypatch):
    from fastact import _dask

    calls = []

    def source(block):
        calls.append(1)
        return block

    x = da.map_blocks(source, da.from_array(rand((6, 40)), chunks=(4, 15)), dtype=np.float32,
                      meta=np.empty((0, 0), np.float32))
    results = [fa.gelu(x), fa.gelu.value_and_grad(x)[1], fa.softmax(x), fa.glu(x),
               fa.log_softmax.backward(x, x), fa.softmax.jacobian(x[:, :5]),
               fa.maxout(x, pool_size=4), fa.prelu.backward(x, x, np.ones(40))[1],
               fa.mse_loss(x, x), fa.cross_entropy(x, np.zeros(6, np.intp))]
    monkeypatch.setattr(_dask, "WHOLE_AXIS_MAX_BYTES", 0)  # the two-pass softmax too
    results += [fa.softmax(x), fa.softmax.backward(x, x, axis=1)]
    assert not calls
    dask.compute(*results)
    assert calls


def test_out_is_an_error():
    dx = da.ones((3, 4), chunks=2)
    for call in (lambda: fa.relu(dx, out=np.empty((3, 4))), lambda: fa.relu(np.ones((3, 4)), out=dx),
                 lambda: fa.sigmoid.value_and_grad(dx, out=(dx, dx)),
                 lambda: fa.softmax(dx, out=dx), lambda: fa.mse_loss(dx, dx, reduction="none", out=dx)):
        with pytest.raises(TypeError, match=r"out= cannot be used with Dask arrays"):
            call()


def test_eager_errors():
    dx = da.ones((3, 4), chunks=2)
    with pytest.raises(ValueError, match="alpha"):
        fa.celu(dx, alpha=0.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        fa.relu(dx, alpha=1.0)
    with pytest.raises(TypeError, match="dtype complex128"):
        fa.tanh(da.ones(3, dtype=complex))
    with pytest.raises(ValueError, match="grad_output has shape"):
        fa.tanh.backward(da.ones((2, 4)), dx)
    with pytest.raises(ValueError, match="where has shape"):
        fa.softmax(dx, where=np.ones(3, bool))
    with pytest.raises(TypeError, match="where must be a boolean array"):
        fa.softmax(dx, where=np.ones(4))
    with pytest.raises(ValueError, match="target has shape"):
        fa.mse_loss(dx, np.ones(4))
    with pytest.raises(TypeError, match="target has dtype float64"):
        fa.cross_entropy(dx, np.zeros(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        fa.mse_loss(dx, dx, reduction="max")


def test_graph_pickles():
    dx = da.from_array(rand((4, 6)), chunks=3)
    y = fa.softmax(fa.gelu(dx, approximate="tanh"), axis=0)
    y2 = pickle.loads(pickle.dumps(y))
    np.testing.assert_array_equal(y2.compute(), y.compute())


def test_import_does_not_import_dask():
    code = ("import sys, numpy as np, fastact as fa; fa.sigmoid(np.ones(3)); fa.softmax(np.ones(3)); "
            "assert not [m for m in sys.modules if m == 'dask' or m.startswith('dask.')], 'dask imported'")
    root = pathlib.Path(fa.__file__).resolve().parents[1]  # where fastact is imported from
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# --- threads and processes ----------------------------------------------------------

def test_threaded_scheduler_runs_parallel_kernels_concurrently():
    # Blocks above the parallel thresholds, computed by 4 scheduler threads
    # at once: each thread launches the parallel kernels (or, where the
    # threading layer is not thread-safe, runs the serial ones).
    n = _rowwise_kernels.PARALLEL_THRESHOLD
    x = rand((16, max(n // 4, _cpu.PARALLEL_THRESHOLD // 4)))
    dx = da.from_array(x, chunks=(4, -1))
    seen = set()
    # Each block's thread waits (up to 10 s) for another thread to reach a
    # block too: a scheduler that runs blocks concurrently passes even on a
    # loaded machine, where one thread could otherwise take every block;
    # one that runs them one at a time times out and is seen as one thread.
    barrier = threading.Barrier(2)

    def mark(block):
        seen.add(threading.get_ident())
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        return block

    dm = dx.map_blocks(mark, dtype=dx.dtype, meta=dx._meta)
    with dask.config.set(scheduler="threads", num_workers=4):
        for _ in range(3):
            y, s = dask.compute(fa.relu(dm), fa.softmax(dm))
            np.testing.assert_array_equal(y, fa.relu(x))
            np.testing.assert_allclose(s, fa.softmax(x), **TOL[np.dtype(np.float32)])
    assert len(seen) > 1


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _worker_cache_stats(names):
    """(hits, misses) of Numba's on-disk cache for the serial loops of some functions."""
    import fastact
    from fastact import _cpu

    hits = misses = 0
    for name in names:
        for parallel in (False, True):
            d = _cpu.loop(getattr(fastact, name)._defn, "forward", parallel)
            hits += sum(d.stats.cache_hits.values())
            misses += sum(d.stats.cache_misses.values())
    return hits, misses


def test_distributed(client, monkeypatch):
    x = rand((40, 30))
    # Compiled (or loaded) here first, so that the workers find the kernels on disk.
    want_sig, want_ls = fa.sigmoid(x), fa.log_softmax(x, axis=0)
    dx = da.from_array(x, chunks=(8, -1))  # C-contiguous blocks: the flat loops
    from fastact import _dask

    got_sig, got_ls, got_ce, (gx, gw) = client.compute([
        fa.sigmoid(dx), fa.log_softmax(dx, axis=0), fa.cross_entropy(dx, np.arange(40) % 30),
        fa.prelu.backward(dx, dx, np.full(30, 0.2))], sync=True)
    np.testing.assert_array_equal(got_sig, want_sig)
    np.testing.assert_allclose(got_ls, want_ls, **TOL[np.dtype(np.float32)])
    np.testing.assert_allclose(got_ce, fa.cross_entropy(x, np.arange(40) % 30), rtol=1e-6)
    wgx, wgw = fa.prelu.backward(x, x, np.full(30, 0.2))
    np.testing.assert_allclose(gx, wgx, rtol=1e-6)
    np.testing.assert_allclose(gw, wgw, rtol=1e-5)
    monkeypatch.setattr(_dask, "WHOLE_AXIS_MAX_BYTES", 0)
    two_pass = fa.softmax(da.from_array(x, chunks=(8, 7)))
    np.testing.assert_allclose(client.compute(two_pass, sync=True), fa.softmax(x),
                               **TOL[np.dtype(np.float32)])
    # Every worker that ran sigmoid loaded its kernel from the on-disk cache.
    stats = client.run(_worker_cache_stats, ["sigmoid"])
    assert all(misses == 0 for _, misses in stats.values()), stats
    assert sum(hits for hits, _ in stats.values()) >= 1, stats
