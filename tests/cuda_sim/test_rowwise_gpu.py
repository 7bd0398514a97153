"""Row-wise functions, prelu and the losses on (simulated) GPU arrays against the CPU.

Sums are accumulated in another order than on the CPU (a block reduction),
so results agree to a few ulps rather than bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact as fa
from cuda_sim.conftest import gpu, host

TOL = {np.dtype(np.float32): dict(rtol=1e-6, atol=1e-7),
       np.dtype(np.float64): dict(rtol=1e-14, atol=1e-15),
       np.dtype(np.float16): dict(rtol=1e-3, atol=1e-4)}


def close(d, expected):
    got = host(d)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL.get(got.dtype, TOL[np.dtype(np.float64)]))


def _x(shape, dtype=np.float32, seed=0, scale=4.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


FAMILY = [fa.softmax, fa.log_softmax, fa.softmin]


@pytest.mark.parametrize("f", FAMILY, ids=lambda f: f.name)
@pytest.mark.parametrize("shape, axis, dtype", [((5, 7), -1, np.float32), ((2, 4, 3), 1, np.float32),
                                                ((24,), 0, np.float32), ((3, 10), -1, np.float64),
                                                ((2, 3, 4), 0, np.float16)])
def test_family(f, shape, axis, dtype):
    fdtype = np.dtype(dtype)
    x, g = _x(shape, fdtype), _x(shape, fdtype, seed=1, scale=1.0)
    dx, dg = gpu(x), gpu(g)
    y = f(x, axis=axis)
    close(f(dx, axis=axis), y)
    close(f.backward(dg, dx, axis=axis), f.backward(g, x, axis=axis))
    close(f.backward(dg, y=gpu(y), axis=axis), f.backward(g, y=y, axis=axis))
    np.testing.assert_array_equal(host(dx), x)


@pytest.mark.parametrize("f", FAMILY, ids=lambda f: f.name)
def test_family_masks_and_nonfinite(f):
    x, g = _x((6, 9)), _x((6, 9), seed=2, scale=1.0)
    where = np.random.default_rng(5).random((6, 9)) > 0.4
    where[2] = False
    where[3] = True
    close(f(gpu(x), where=gpu(where)), f(x, where=where))
    close(f.backward(gpu(g), gpu(x), where=gpu(where)), f.backward(g, x, where=where))
    col = np.arange(9) % 3 != 0
    close(f(gpu(x), where=gpu(col)), f(x, where=col))
    bad = np.array([[-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0], [1000.0, 0.0, -1000.0],
                    [np.nan, 0.0, 1.0]])
    close(f(gpu(bad)), f(bad))
    out = gpu(np.empty_like(x.T))
    assert f(gpu(x.T), axis=0, out=out) is out
    close(out, f(x.T, axis=0))
    with pytest.raises(TypeError, match="boolean"):
        f(gpu(x), where=gpu(x))
    with pytest.raises(TypeError, match="not available for GPU arrays"):
        f.jacobian(gpu(x))
    with pytest.raises(ValueError, match="0-d"):
        f(gpu(np.array(1.0)))


@pytest.mark.parametrize("axis", [-1, 0])
def test_glu_maxout(axis, fdtype):
    x = _x((8, 6), fdtype)
    x[1, 2] = np.nan
    x[3, :2] = 1.5  # a tie
    half = list(x.shape)
    half[axis] //= 2
    g = _x(tuple(half), fdtype, seed=3, scale=1.0)
    close(fa.glu(gpu(x), axis=axis), fa.glu(x, axis=axis))
    close(fa.glu.backward(gpu(g), gpu(x), axis=axis), fa.glu.backward(g, x, axis=axis))
    close(fa.maxout(gpu(x), pool_size=2, axis=axis), fa.maxout(x, pool_size=2, axis=axis))
    close(fa.maxout.backward(gpu(g), gpu(x), pool_size=2, axis=axis),
          fa.maxout.backward(g, x, pool_size=2, axis=axis))
    with pytest.raises(ValueError, match="does not divide"):
        fa.maxout(gpu(x), pool_size=5, axis=axis)
    with pytest.raises(ValueError, match="even"):
        fa.glu(gpu(x[:, :5]), axis=-1)


@pytest.mark.parametrize("shape, wshape, axis", [((4, 3, 5), (3,), 1), ((4, 3, 5), (1,), 1),
                                                  ((7,), (1,), 1), ((4, 6), (4,), 0)])
def test_prelu(shape, wshape, axis, fdtype):
    x, g = _x(shape, fdtype), _x(shape, fdtype, seed=4, scale=1.0)
    w = np.linspace(0.1, 0.4, int(np.prod(wshape))).astype(fdtype).reshape(wshape)
    dx, dw = gpu(x), gpu(w)
    close(fa.prelu(dx, dw, axis=axis), fa.prelu(x, w, axis=axis))
    close(fa.prelu.grad(dx, dw, axis=axis), fa.prelu.grad(x, w, axis=axis))
    gx, gw = fa.prelu.backward(gpu(g), dx, dw, axis=axis)
    ex, ew = fa.prelu.backward(g, x, w, axis=axis)
    close(gx, ex)
    close(gw, ew)
    with pytest.raises(ValueError, match="weight has"):
        fa.prelu(dx, gpu(np.ones(2, fdtype)), axis=axis)
    with pytest.raises(TypeError, match="different devices"):
        fa.prelu(dx, w, axis=axis)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses(reduction, fdtype):
    p, t = _x((5, 4), fdtype), _x((5, 4), fdtype, seed=6)
    loss = fa.mse_loss(gpu(p), gpu(t), reduction=reduction)
    close(loss, fa.mse_loss(p, t, reduction=reduction))
    go = 0.5 if reduction != "none" else _x((5, 4), fdtype, seed=7)
    dgo = go if reduction != "none" else gpu(go)
    close(fa.mse_loss.backward(gpu(p), gpu(t), dgo, reduction=reduction),
          fa.mse_loss.backward(p, t, go, reduction=reduction))
    logits = _x((6, 5), fdtype)
    target = np.array([0, 4, 2, 1, 3, 3])
    close(fa.cross_entropy(gpu(logits), gpu(target), reduction=reduction),
          fa.cross_entropy(logits, target, reduction=reduction))
    go = 2.0 if reduction != "none" else _x(6, np.float32, seed=8)
    dgo = go if reduction != "none" else gpu(go)
    close(fa.cross_entropy.backward(gpu(logits), gpu(target), dgo, reduction=reduction),
          fa.cross_entropy.backward(logits, target, go, reduction=reduction))
    close(fa.cross_entropy(gpu(logits.T), gpu(target), axis=0, reduction=reduction),
          fa.cross_entropy(logits.T, target, axis=0, reduction=reduction))


def test_loss_errors():
    logits = _x((3, 4))
    with pytest.raises(ValueError, match="class index 7"):
        fa.cross_entropy(gpu(logits), gpu(np.array([0, 7, 1])))
    with pytest.raises(ValueError, match="class index -1"):
        fa.cross_entropy.backward(gpu(logits), gpu(np.array([0, -1, 1])))
    with pytest.raises(TypeError, match="integer class indices"):
        fa.cross_entropy(gpu(logits), gpu(np.zeros(3)))
    with pytest.raises(ValueError, match="out= needs reduction='none'"):
        fa.mse_loss(gpu(logits), gpu(logits), out=gpu(np.empty_like(logits)))
    empty = np.zeros((0,), np.float32)
    assert np.isnan(host(fa.mse_loss(gpu(empty), gpu(empty))))
