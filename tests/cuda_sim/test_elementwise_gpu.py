"""Elementwise kernels on (simulated) GPU arrays against the CPU kernels.

The GPU kernels call the same compiled scalar functions as the CPU kernels,
so under the simulator the results must agree bit for bit: what these tests
check is everything around the scalar code (indexing, layouts, dtypes,
parameters, ``out=``, grad_output broadcasting, errors).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact as fa
from cuda_sim.conftest import gpu, host

EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 6.0, 2.5, -2.5, 10.0, -10.0, 30.0, -30.0,
         100.0, -100.0, 1e-3, -1e-3, np.inf, -np.inf, np.nan, 1e30, -1e30]

# (function, parameters): every public elementwise function, and parameters away
# from the defaults where it has some
ROWS = [(f, {}) for f in fa.ELEMENTWISE if f is not fa.threshold] + [
    (fa.gelu, {"approximate": "tanh"}),
    (fa.leaky_relu, {"negative_slope": 0.2}),
    (fa.elu, {"alpha": 0.5}),
    (fa.softplus, {"beta": 2.0, "threshold": 10.0}),
    (fa.hardtanh, {"min_val": -2.0, "max_val": 3.0}),
    (fa.threshold, {"threshold": 0.1, "value": 20.0}),
]
IDS = [f.name + "".join(f",{k}={v}" for k, v in p.items()) for f, p in ROWS]


def same(d, expected):
    """d is a device array equal, bit for bit (NaN where NaN), to the host array expected."""
    got = host(d)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def _x(dtype=np.float32):
    with np.errstate(over="ignore"):
        return np.array(EDGES, dtype=dtype)


@pytest.mark.parametrize("f, params", ROWS, ids=IDS)
def test_every_kernel_float32(f, params):
    x = _x()
    g = np.linspace(-2, 2, x.size).astype(np.float32)
    dx, dg = gpu(x), gpu(g)
    same(f(dx, **params), f(x, **params))
    same(f.grad(dx, **params), f.grad(x, **params))
    same(f.backward(dg, dx, **params), f.backward(g, x, **params))
    v, d = f.value_and_grad(dx, **params)
    ev, ed = f.value_and_grad(x, **params)
    same(v, ev)
    same(d, ed)
    if f.from_output:
        y = f(x, **params)
        same(f.backward(dg, y=gpu(y), **params), f.backward(g, y=y, **params))
    np.testing.assert_array_equal(host(dx), x)  # inputs untouched


@pytest.mark.parametrize("f, params", [(fa.sigmoid, {}), (fa.elu, {"alpha": 0.5}),
                                       (fa.threshold, {"threshold": 0.1, "value": 20.0}),
                                       (fa.gelu, {})], ids=["sigmoid", "elu", "threshold", "gelu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.bool_])
def test_dtypes(f, params, dtype):
    with np.errstate(over="ignore"):
        x = _x(dtype) if np.dtype(dtype).kind == "f" else np.arange(-3, 5).astype(dtype)
    g = np.linspace(-2, 2, x.size).astype(x.dtype if x.dtype.kind == "f" else np.float64)
    dx = gpu(x)
    with np.errstate(over="ignore"):
        same(f(dx, **params), f(x, **params))
        same(f.backward(gpu(g), dx, **params), f.backward(g, x, **params))
        v, d = f.value_and_grad(dx, **params)
        same(v, f(x, **params))
        same(d, f.grad(x, **params))
        if f.from_output:
            y = f(x, **params)
            same(f.backward(gpu(g), y=gpu(y), **params), f.backward(g, y=y, **params))


def test_layouts_and_broadcasting():
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((6, 8)) * 3).astype(np.float32)
    for x in (base, base.T, base[::2, ::-3], base[:, 1], np.asfortranarray(base), base[::-1]):
        same(fa.silu(gpu(x)), fa.silu(x))
        same(fa.silu.grad(gpu(x)), fa.silu.grad(x))
    g_row = rng.standard_normal(8).astype(np.float32)
    same(fa.tanh.backward(gpu(g_row), gpu(base)), fa.tanh.backward(g_row, base))
    same(fa.tanh.backward(2.5, gpu(base)), fa.tanh.backward(2.5, base))
    g1 = np.array([[1.5]], np.float32)
    same(fa.tanh.backward(gpu(g1), gpu(base)), fa.tanh.backward(g1, base))
    g_f = np.asfortranarray(rng.standard_normal((6, 8)).astype(np.float32))
    xf = np.asfortranarray(base)
    same(fa.mish.backward(gpu(g_f), gpu(xf)), fa.mish.backward(g_f, xf))
    same(fa.mish.backward(gpu(g_f), gpu(base)), fa.mish.backward(g_f, base))
    with pytest.raises(ValueError, match="does not broadcast"):
        fa.tanh.backward(gpu(np.ones(3, np.float32)), gpu(base))


def test_scalars_and_empty():
    for x in (np.array(0.7, np.float32), np.zeros((0, 3), np.float64), np.zeros(0, np.float16)):
        r = fa.softplus(gpu(x))
        assert type(r).__name__ == "FakeCUDAArray" and r.shape == x.shape and r.dtype == x.dtype
        if x.size:
            assert host(r)[()] == fa.softplus(x)
        same(fa.softplus.backward(gpu(np.ones_like(x)), gpu(x)),
             np.asarray(fa.softplus.backward(np.ones_like(x), x)))


def test_out():
    x = _x()
    out = gpu(np.empty_like(x))
    r = fa.elu(gpu(x), alpha=2.0, out=out)
    assert r is out
    same(out, fa.elu(x, alpha=2.0))
    # in place
    dx = gpu(x)
    assert fa.sigmoid(dx, out=dx) is dx
    same(dx, fa.sigmoid(x))
    # a strided out, and an out that partly overlaps the input
    big = gpu(np.zeros(2 * x.size, np.float32))
    fa.tanh(gpu(x), out=big[::2])
    same(big[::2], fa.tanh(x))
    assert (host(big)[1::2] == 0).all()
    buf = gpu(np.concatenate([x, x]))
    fa.relu(buf[:x.size], out=buf[1:x.size + 1])
    same(buf[1:x.size + 1], fa.relu(x))
    # float16 out for float16 input, value_and_grad pairs
    h = _x(np.float16)
    o16 = gpu(np.empty_like(h))
    fa.gelu(gpu(h), out=o16)
    same(o16, fa.gelu(h))
    o1, o2 = gpu(np.empty_like(x)), gpu(np.empty_like(x))
    v, d = fa.swish.value_and_grad(gpu(x), beta=1.5, out=(o1, o2))
    assert v is o1 and d is o2
    same(o1, fa.swish(x, beta=1.5))
    same(o2, fa.swish.grad(x, beta=1.5))
    with pytest.raises(ValueError, match="share memory"):
        fa.swish.value_and_grad(gpu(x), out=(o1, o1))
    with pytest.raises(ValueError, match="shape"):
        fa.relu(gpu(x), out=gpu(np.empty(3, np.float32)))
    with pytest.raises(TypeError, match="dtype"):
        fa.relu(gpu(x), out=gpu(np.empty_like(x, dtype=np.float64)))
    with pytest.raises(TypeError, match="different devices"):
        fa.relu(gpu(x), out=np.empty_like(x))


def test_errors():
    dx = gpu(_x())
    with pytest.raises(TypeError, match="dtype complex64"):
        fa.relu(gpu(np.ones(3, np.complex64)))
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        fa.relu(dx, alpha=1.0)
    with pytest.raises(ValueError, match="alpha must be nonzero"):
        fa.celu(dx, alpha=0.0)
    with pytest.raises(TypeError, match="missing required keyword argument 'value'"):
        fa.threshold(dx, threshold=1.0)
    with pytest.raises(TypeError, match="exactly one"):
        fa.sigmoid.backward(dx, dx, y=dx)
    with pytest.raises(TypeError, match="y="):
        fa.elu.backward(dx, y=dx)
    with pytest.raises(TypeError, match="different devices"):
        fa.sigmoid.backward(np.ones(dx.shape, np.float32), dx)
    with pytest.raises(ValueError, match="approximate"):
        fa.gelu(dx, approximate="fast")


def test_bound_stream():
    from numba import cuda

    x = _x()
    s = cuda.stream()
    d = cuda.to_device(x, stream=s).bind(s)
    same(fa.logsigmoid(d), fa.logsigmoid(x))
