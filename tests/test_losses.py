"""mse_loss and cross_entropy against float64 NumPy references, PyTorch, and their own edges."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import fastact as fa
from fastact import _loss_kernels

TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}
REDUCTIONS = ["mean", "sum", "none"]


# --- float64 references ----------------------------------------------------------


def _reduce(values: np.ndarray, reduction: str):
    return values if reduction == "none" else getattr(values, reduction)()


def ref_cross_entropy(x, t, axis=-1, reduction="mean"):
    """-log softmax(x)[t] per row, log-sum-exp written out in float64."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    m = x.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(x - m).sum(axis=-1)) + m[..., 0]
    return _reduce(lse - np.take_along_axis(x, t[..., None], -1)[..., 0], reduction)


def ref_cross_entropy_grad(x, t, axis=-1, reduction="mean", g=1.0):
    """(softmax(x) - onehot(t)) * g, / the number of samples for 'mean'."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    np.put_along_axis(p, t[..., None], np.take_along_axis(p, t[..., None], -1) - 1, -1)
    scale = np.broadcast_to(np.asarray(g, dtype=np.float64), t.shape)[..., None]
    if reduction == "mean":
        scale = scale / t.size
    return np.moveaxis(p * scale, -1, axis)


def ref_mse(p, t, reduction="mean"):
    d = np.asarray(p, dtype=np.float64) - np.asarray(t, dtype=np.float64)
    return _reduce(d * d, reduction)


def ref_mse_grad(p, t, reduction="mean", g=1.0):
    d = np.asarray(p, dtype=np.float64) - np.asarray(t, dtype=np.float64)
    return 2 * d * np.asarray(g, dtype=np.float64) / (d.size if reduction == "mean" else 1)


def _logits(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _targets(shape, n, seed=1):
    return np.random.default_rng(seed).integers(0, n, size=shape)


def _close(actual, expected, dtype):
    assert np.asarray(actual).dtype == dtype
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


@pytest.fixture(params=[False, True], ids=["serial", "parallel"])
def path(request, monkeypatch):
    if request.param:
        monkeypatch.setattr(_loss_kernels, "PARALLEL_THRESHOLD", 1)
    return request.param


# --- cross_entropy ---------------------------------------------------------------

SHAPES = [((6, 5), -1), ((5, 6), 0), ((2, 4, 3), 1), ((7,), 0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape, axis", SHAPES, ids=[f"{s}-axis{a}" for s, a in SHAPES])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_values_and_gradient(dtype, shape, axis, reduction):
    x = _logits(shape, dtype)
    t = _targets(np.delete(np.array(shape), axis), shape[axis])
    x64 = x.astype(np.float64)
    loss = fa.cross_entropy(x, t, axis=axis, reduction=reduction)
    _close(loss, ref_cross_entropy(x64, t, axis, reduction), dtype)
    assert np.shape(loss) == (t.shape if reduction == "none" else ())
    g = 2.5 if reduction != "none" else _logits(t.shape, np.float64, seed=3)
    gx = fa.cross_entropy.backward(x, t, g, axis=axis, reduction=reduction)
    _close(gx, ref_cross_entropy_grad(x64, t, axis, reduction, g), dtype)
    assert gx.shape == x.shape and gx.flags.c_contiguous


def test_cross_entropy_serial_and_parallel_agree(path):
    x = _logits((300, 17), np.float32)
    t = _targets(300, 17)
    _close(fa.cross_entropy(x, t, reduction="none"), ref_cross_entropy(x, t, reduction="none"), np.float32)
    _close(fa.cross_entropy(x, t), ref_cross_entropy(x, t), np.float32)
    _close(fa.cross_entropy.backward(x, t), ref_cross_entropy_grad(x, t), np.float32)


def test_cross_entropy_finite_differences():
    x = _logits((4, 6), np.float64)
    t = _targets(4, 6)
    w = _logits(4, np.float64, seed=5, scale=1.0)  # weights per sample: d/dx sum(w * loss)
    gx = fa.cross_entropy.backward(x, t, w, reduction="none")
    h = 1e-5
    fd = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd[i] = (w @ fa.cross_entropy(xp, t, reduction="none")
                 - w @ fa.cross_entropy(xm, t, reduction="none")) / (2 * h)
    np.testing.assert_allclose(gx, fd, rtol=1e-6, atol=1e-8)


def _ulps(actual, exact):
    """|actual - exact| in float32 ulps of the exact value, where it is a normal float32."""
    exact = np.asarray(exact, dtype=np.float64)
    ok = np.abs(exact) >= np.finfo(np.float32).tiny
    spacing = np.spacing(np.abs(exact[ok]).astype(np.float32)).astype(np.float64)
    return np.abs(np.asarray(actual, dtype=np.float64)[ok] - exact[ok]) / spacing


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_cross_entropy_float32_ulps(scale, path):
    """float32 losses within 1.5 ulp and gradients within 2 ulp of the exact
    values (float64, the sum over the other classes kept apart from the
    target's term), also for rows far apart (x - max down to -250) and targets
    of p_t near 1, where a rounded x - max alone costs |x - max| / 2 ulps."""
    rng = np.random.default_rng(11)
    x = (scale * rng.standard_normal((3000, 50))).astype(np.float32)
    t = np.argmax(x + scale * rng.standard_normal(x.shape), axis=1)  # many p_t near 1
    x64 = x.astype(np.float64)
    rows = np.arange(len(t))
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    et = e[rows, t]
    rest = np.where(np.arange(50) < t[:, None], e, 0).sum(axis=1) \
        + np.where(np.arange(50) > t[:, None], e, 0).sum(axis=1)
    loss = np.where(rest <= et, np.log1p(rest / et),
                    (x64.max(axis=1) - x64[rows, t]) + np.log(et + rest))
    assert _ulps(fa.cross_entropy(x, t, reduction="none"), loss).max() <= 1.5
    grad = e / (et + rest)[:, None]
    grad[rows, t] = -rest / (et + rest)
    assert _ulps(fa.cross_entropy.backward(x, t, reduction="sum"), grad).max() <= 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_cross_entropy_huge_logits(dtype):
    x = np.array([[1e30, 0.0, -1e30]] * 3, dtype=dtype)
    t = np.array([0, 1, 2])
    loss = fa.cross_entropy(x, t, reduction="none")
    np.testing.assert_array_equal(loss, np.array([0.0, 1e30, 2e30], dtype=dtype))
    assert fa.cross_entropy(x, t) == pytest.approx(1e30, rel=1e-7)
    gx = fa.cross_entropy.backward(x, t, reduction="sum")
    np.testing.assert_array_equal(gx, np.array([[0, 0, 0], [1, -1, 0], [1, 0, -1]], dtype=dtype))
    # shifting every logit of a row by a huge constant changes nothing
    z = _logits((3, 5), np.float64)
    tz = _targets(3, 5)
    np.testing.assert_allclose(fa.cross_entropy(z + 1e15, tz, reduction="none"),
                               fa.cross_entropy(z, tz, reduction="none"), rtol=1e-1)


def test_cross_entropy_small_loss_keeps_relative_accuracy():
    # p_t = 1 - 4.25e-18: the loss and the gradient are tiny but normal numbers
    x = np.array([[40.0, 0.0], [0.0, 40.0]], dtype=np.float32)
    t = np.array([0, 1])
    exact = np.log1p(np.exp(-40.0))
    np.testing.assert_allclose(fa.cross_entropy(x, t, reduction="none"), [exact, exact], rtol=1e-6)
    gx = fa.cross_entropy.backward(x, t, reduction="sum")
    p = np.exp(-40.0) / (1 + np.exp(-40.0))
    np.testing.assert_allclose(gx, [[-p, p], [p, -p]], rtol=1e-6)


def test_cross_entropy_nan_and_inf_rows_give_nan():
    inf, nan = np.inf, np.nan
    x = np.array([[nan, 0.0, 1.0], [-inf, -inf, -inf], [inf, 0.0, 1.0], [0.0, -inf, 1.0]])
    t = np.array([1, 0, 1, 0])
    loss = fa.cross_entropy(x, t, reduction="none")
    assert np.isnan(loss[:3]).all()
    np.testing.assert_allclose(loss[3], ref_cross_entropy(x[3:], t[3:], reduction="none")[0])
    gx = fa.cross_entropy.backward(x, t, reduction="sum")
    assert np.isnan(gx[:3]).all() and np.isfinite(gx[3]).all()


def test_cross_entropy_reductions_and_empty_batch():
    x = _logits((8, 4), np.float64)
    t = _targets(8, 4)
    none = fa.cross_entropy(x, t, reduction="none")
    assert fa.cross_entropy(x, t, reduction="sum") == pytest.approx(none.sum(), rel=1e-15)
    assert fa.cross_entropy(x, t) == pytest.approx(none.mean(), rel=1e-15)
    empty = np.empty((0, 4))
    te = np.empty(0, dtype=np.int64)
    assert np.isnan(fa.cross_entropy(empty, te))  # as PyTorch, and without a warning
    assert fa.cross_entropy(empty, te, reduction="sum") == 0
    assert fa.cross_entropy(empty, te, reduction="none").shape == (0,)
    assert fa.cross_entropy.backward(empty, te).shape == (0, 4)


def test_cross_entropy_dtypes():
    x = _logits((5, 4), np.float32)
    t = _targets(5, 4)
    loss = fa.cross_entropy(x, t)
    assert type(loss) is np.float32
    assert fa.cross_entropy.backward(x, t).dtype == np.float32
    for tdt in (np.int8, np.uint8, np.int32, np.uint64):
        assert fa.cross_entropy(x, t.astype(tdt)) == loss
    h = x.astype(np.float16)
    assert type(fa.cross_entropy(h, t)) is np.float16
    assert fa.cross_entropy.backward(h, t).dtype == np.float16
    assert fa.cross_entropy(h, t, reduction="none").dtype == np.float16
    ints = np.array([[3, 1, 0], [0, 0, 2]])
    assert type(fa.cross_entropy(ints, np.array([0, 2]))) is np.float64
    # 1-D logits: one sample with a 0-d target, as in PyTorch
    one = fa.cross_entropy(np.array([1.0, 2.0, 3.0]), np.int64(2), reduction="none")
    assert isinstance(one, np.float64) and one == pytest.approx(0.40760596444438)


def test_cross_entropy_out_and_inputs_untouched():
    x = _logits((4, 3, 5), np.float32)
    t = _targets((4, 5), 3)
    keep = x.copy()
    out = np.empty_like(x)
    r = fa.cross_entropy.backward(x, t, axis=1, out=out)
    assert r is out
    np.testing.assert_array_equal(out, fa.cross_entropy.backward(x, t, axis=1))
    lo = np.empty((4, 5), dtype=np.float32)
    assert fa.cross_entropy(x, t, axis=1, reduction="none", out=lo) is lo
    np.testing.assert_array_equal(lo, fa.cross_entropy(x, t, axis=1, reduction="none"))
    np.testing.assert_array_equal(x, keep)


def test_cross_entropy_errors():
    x = _logits((3, 5), np.float64)
    t = np.array([0, 4, 2])
    ce = fa.cross_entropy
    with pytest.raises(ValueError, match=r"target .*class index 5.*\[0, 4\]"):
        ce(x, np.array([0, 5, 2]))
    with pytest.raises(ValueError, match=r"target .*class index -1.*\[0, 4\]"):
        ce.backward(x, np.array([0, -1, 2]))
    with pytest.raises(TypeError, match="target has dtype float64"):
        ce(x, t.astype(np.float64))
    with pytest.raises(TypeError, match="target has dtype bool"):
        ce(x, np.array([True, False, True]))
    with pytest.raises(ValueError, match=r"target has shape \(4,\), expected \(3,\)"):
        ce(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'"):
        ce(x, t, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        ce.backward(x, t, reduction=None)
    with pytest.raises(ValueError, match="at least one dimension"):
        ce(np.float64(1.0), np.int64(0))
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        ce(x, t, axis=2)
    with pytest.raises(TypeError, match="complex"):
        ce(x.astype(np.complex128), t)
    with pytest.raises(ValueError, match="grad_output must be a scalar"):
        ce.backward(x, t, np.ones(3))
    with pytest.raises(ValueError, match="grad_output has shape"):
        ce.backward(x, t, np.ones(4), reduction="none")
    with pytest.raises(ValueError, match="out= needs reduction='none'"):
        ce(x, t, out=np.empty(3))
    with pytest.raises(ValueError, match="out has shape"):
        ce.backward(x, t, out=np.empty((5, 3)))
    with pytest.raises(ValueError, match=r"valid range empty"):
        ce(np.empty((2, 0)), np.array([0, 0]))


# --- mse_loss --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_values_and_gradient(dtype, reduction):
    p = _logits((7, 5), dtype)
    t = _logits((7, 5), dtype, seed=2)
    loss = fa.mse_loss(p, t, reduction=reduction)
    _close(loss, ref_mse(p, t, reduction), dtype)
    g = 0.75 if reduction != "none" else _logits((7, 5), dtype, seed=3)
    _close(fa.mse_loss.backward(p, t, g, reduction=reduction), ref_mse_grad(p, t, reduction, g), dtype)
    # strided inputs give the values of contiguous copies
    pt, tt = p.T, t[::-1].T
    _close(fa.mse_loss(pt, tt, reduction=reduction), ref_mse(pt, tt, reduction), dtype)


def test_mse_serial_and_parallel_agree(path):
    p = _logits(5000, np.float32)
    t = _logits(5000, np.float32, seed=2)
    _close(fa.mse_loss(p, t), ref_mse(p, t), np.float32)
    _close(fa.mse_loss(p, t, reduction="none"), ref_mse(p, t, "none"), np.float32)
    _close(fa.mse_loss.backward(p, t), ref_mse_grad(p, t), np.float32)


def test_losses_same_bits_on_any_thread_count(monkeypatch):
    """The losses and gradients are the serial kernels' bits in parallel too:
    the squared-error sum adds fixed blocks (several here), whatever the threads."""
    import numba

    p = _logits(5 * _loss_kernels.SUM_BLOCK + 123, np.float32)
    q = _logits(p.size, np.float32, seed=3)
    x = _logits((700, 33), np.float32)
    t = _targets(700, 33)

    def results():
        return [fa.mse_loss(p, q), fa.mse_loss(p, q, reduction="sum"), fa.mse_loss.backward(p, q),
                fa.cross_entropy(x, t, reduction="none"), fa.cross_entropy(x, t),
                fa.cross_entropy.backward(x, t)]

    serial = results()
    monkeypatch.setattr(_loss_kernels, "PARALLEL_THRESHOLD", 1)
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        with_threads = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            for a, b in zip(serial, results(), strict=True):
                np.testing.assert_array_equal(a, b)
        finally:
            numba.set_num_threads(with_threads)


class _Sub(np.ndarray):
    """An array type the short paths do not take."""


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_short_paths_match_the_regular_path(dtype, reduction, monkeypatch):
    """Small C-contiguous calls go straight to the serial kernels: the regular
    path's values, bit for bit; a bad target still raises its error."""
    x = _logits((6, 2, 9), dtype)
    t = _targets((6, 2), 9)
    q = _logits((6, 2, 9), dtype, seed=4)
    go = _logits((6, 2), dtype, seed=5) if reduction == "none" else 0.5
    gm = _logits((6, 2, 9), dtype, seed=6) if reduction == "none" else 0.5
    gc = np.asarray(go, dtype=np.float64) if reduction == "none" else go
    xs, qs = x.view(_Sub), q.view(_Sub)
    regular = [np.asarray(v) for v in (
        fa.cross_entropy(xs, t, reduction=reduction), fa.cross_entropy.backward(xs, t, gc, reduction=reduction),
        fa.mse_loss(xs, qs, reduction=reduction), fa.mse_loss.backward(xs, qs, gm, reduction=reduction))]
    taken = []
    real = _loss_kernels.kernel.run_serial
    monkeypatch.setattr(_loss_kernels.kernel, "run_serial", lambda *a: taken.append(a[0]) or real(*a))
    short = [fa.cross_entropy(x, t, reduction=reduction), fa.cross_entropy.backward(x, t, gc, reduction=reduction),
             fa.mse_loss(x, q, reduction=reduction), fa.mse_loss.backward(x, q, gm, reduction=reduction)]
    assert len(taken) == 4
    for a, b in zip(regular, short, strict=True):
        assert np.asarray(b).dtype == dtype and np.shape(b) == a.shape
        np.testing.assert_array_equal(a, b)
    bad = t.copy()
    bad[1, 0] = 9
    with pytest.raises(ValueError, match="class index 9"):
        fa.cross_entropy(x, bad, reduction=reduction)
    with pytest.raises(ValueError, match="class index 9"):
        fa.cross_entropy.backward(x, bad, gc, reduction=reduction)


def test_mse_finite_differences():
    p = _logits((3, 4), np.float64)
    t = _logits((3, 4), np.float64, seed=2)
    h = 1e-6
    fd = np.empty_like(p)
    for i in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[i] += h
        pm[i] -= h
        fd[i] = (fa.mse_loss(pp, t) - fa.mse_loss(pm, t)) / (2 * h)
    np.testing.assert_allclose(fa.mse_loss.backward(p, t), fd, rtol=1e-7, atol=1e-10)


def test_mse_dtypes_shapes_and_edges():
    p = _logits(6, np.float32)
    assert type(fa.mse_loss(p, p)) is np.float32 and fa.mse_loss(p, p) == 0
    assert fa.mse_loss(p, np.zeros(6)) == pytest.approx(float(np.mean(p.astype(np.float64) ** 2)), rel=1e-6)
    assert type(fa.mse_loss(np.arange(3), np.zeros(3, dtype=np.int64))) is np.float64
    h = np.array([300.0, 1.0], dtype=np.float16)
    assert fa.mse_loss(h, np.zeros(2), reduction="none").tolist() == [np.inf, 1.0]  # no overflow warning
    assert fa.mse_loss(h, np.zeros(2), reduction="sum") == np.inf
    assert np.isnan(fa.mse_loss(np.empty(0), np.empty(0)))  # as PyTorch
    assert isinstance(fa.mse_loss(np.float64(3.0), 1.0, reduction="none"), np.float64)
    big = np.array([3e38, -3e38], dtype=np.float32)
    assert fa.mse_loss(big, -big) == np.inf
    out = np.empty((2, 3))
    assert fa.mse_loss.backward(np.ones((2, 3)), np.zeros((2, 3)), out=out) is out
    np.testing.assert_allclose(out, np.full((2, 3), 2 / 6))


def test_mse_errors():
    p = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"target has shape \(3,\), expected the shape \(2, 3\) of pred"):
        fa.mse_loss(p, np.zeros(3))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'max'"):
        fa.mse_loss(p, p, reduction="max")
    with pytest.raises(TypeError, match="pred has dtype complex128"):
        fa.mse_loss(p.astype(complex), p)
    with pytest.raises(ValueError, match="grad_output must be a scalar"):
        fa.mse_loss.backward(p, p, np.ones((2, 3)))
    with pytest.raises(ValueError, match="out= needs reduction='none'"):
        fa.mse_loss(p, p, out=np.empty(()))
    with pytest.raises(TypeError, match="out has dtype float32"):
        fa.mse_loss(p, p, reduction="none", out=np.empty((2, 3), dtype=np.float32))


def test_docstring_examples():
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for f in (fa.mse_loss, fa.cross_entropy):
        tests = finder.find(f.__doc__, f.name, globs={"np": np, "fastact": fa})
        assert tests and tests[0].examples
        for test in tests:
            runner.run(test)
    assert runner.failures == 0


# --- PyTorch ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_against_torch(dtype, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = _logits((4, 6, 3), dtype)
    t = _targets((4, 3), 6)
    g = 1.5 if reduction != "none" else _logits((4, 3), dtype, seed=4)
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(t), reduction=reduction)  # classes on axis 1
    lt.backward(torch.as_tensor(g, dtype=lt.dtype))
    _close(fa.cross_entropy(x, t, axis=1, reduction=reduction), lt.detach().numpy(), dtype)
    _close(fa.cross_entropy.backward(x, t, g, axis=1, reduction=reduction), xt.grad.numpy(), dtype)

    p, q = _logits((5, 4), dtype), _logits((5, 4), dtype, seed=2)
    g = 1.5 if reduction != "none" else _logits((5, 4), dtype, seed=4)
    pt = torch.tensor(p, requires_grad=True)
    mt = F.mse_loss(pt, torch.tensor(q), reduction=reduction)
    mt.backward(torch.as_tensor(g, dtype=mt.dtype))
    _close(fa.mse_loss(p, q, reduction=reduction), mt.detach().numpy(), dtype)
    _close(fa.mse_loss.backward(p, q, g, reduction=reduction), pt.grad.numpy(), dtype)
