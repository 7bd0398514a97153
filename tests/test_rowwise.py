"""softmax, log_softmax, softmin, glu, maxout and prelu against float64 references."""

from __future__ import annotations

import numpy as np
import pytest

import fastact as fa
import references as ref
from fastact import _rowwise_kernels

FAMILY = [
    (fa.softmax, ref.softmax, ref.softmax_vjp, ref.softmax_jacobian),
    (fa.log_softmax, ref.log_softmax, ref.log_softmax_vjp, ref.log_softmax_jacobian),
    (fa.softmin, ref.softmin, ref.softmin_vjp, ref.softmin_jacobian),
]
FAMILY_IDS = ["softmax", "log_softmax", "softmin"]
TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


@pytest.fixture(params=FAMILY, ids=FAMILY_IDS)
def family(request):
    return request.param


@pytest.fixture(params=[False, True], ids=["serial", "parallel"])
def path(request, monkeypatch):
    if request.param:
        monkeypatch.setattr(_rowwise_kernels, "PARALLEL_THRESHOLD", 1)
    return request.param


def _x(shape, dtype, seed=0, scale=4.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _close(actual, expected, dtype):
    assert actual.dtype == dtype
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


@pytest.mark.parametrize("shape, axis", [((5, 7), -1), ((5, 7), 0), ((3, 4, 6), 1), ((64,), 0),
                                         ((2, 3, 1), 2)])
def test_family_values_and_backward(family, dtype, shape, axis, path):
    f, fref, vjp, _ = family
    x = _x(shape, dtype)
    g = _x(shape, dtype, seed=1, scale=1.0)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    y = f(x, axis=axis)
    _close(y, fref(x64, axis=axis), dtype)
    _close(f.backward(g, x, axis=axis), vjp(g64, x64, axis=axis), dtype)
    _close(f.backward(g, y=y, axis=axis), vjp(g64, x64, axis=axis), dtype)


# the column and row kernels: float32 results a rounding apart at most; float64 sums in another order
_SAME = {np.float32: 2 * np.finfo(np.float32).eps, np.float64: 1e-14}


@pytest.mark.parametrize("shape, axis", [((40, 33), 0), ((3, 50, 20), 1), ((2, 300, 520), 1),
                                         ((4, 5, 3), 1), ((7, 2, 2), 0)])
def test_family_along_a_middle_axis(family, dtype, shape, axis, path):
    """Columns of (outer, n, inner) blocks, without transposing (the column
    kernels: the forward pass from 16 columns, backward from 2; (2, 300,
    520) takes two tiles a block): the reference's values, and those of
    the rows of the transposed array."""
    from fastact import _rowwise

    f, fref, vjp, _ = family
    inner = int(np.prod(shape[axis + 1:]))
    assert _rowwise._across(shape, axis, False, "forward") == (inner >= 16)
    assert _rowwise._across(shape, axis, False, "backward")
    x = _x(shape, dtype)
    g = _x(shape, dtype, seed=1, scale=1.0)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    y = f(x, axis=axis)
    _close(y, fref(x64, axis=axis), dtype)
    as_rows = np.moveaxis(f(np.ascontiguousarray(np.moveaxis(x, axis, -1))), -1, axis)
    # float64: another sum order, and log_softmax's x - max - log(sum) cancels
    np.testing.assert_allclose(y, as_rows, rtol=_SAME[dtype], atol=_SAME[dtype] * np.abs(as_rows).max())
    # a backward entry is a difference that cancels: its error is relative to the largest
    expected = vjp(g64, x64, axis=axis)
    scale = dict(rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["rtol"] * np.abs(expected).max())
    np.testing.assert_allclose(f.backward(g, x, axis=axis), expected, **scale)
    gx = f.backward(g, y=y, axis=axis)
    np.testing.assert_allclose(gx, expected, **scale)
    # out=, in place, a strided input, a non-native dtype
    o = np.empty_like(x)
    assert f(x, axis=axis, out=o) is o
    np.testing.assert_array_equal(o, y)
    xi = x.copy()
    assert f(xi, axis=axis, out=xi) is xi
    np.testing.assert_array_equal(xi, y)
    gi = g.copy()
    assert f.backward(gi, y=y, axis=axis, out=gi) is gi
    np.testing.assert_array_equal(gi, gx)
    np.testing.assert_array_equal(f(np.repeat(x, 2, axis=-1)[..., ::2], axis=axis), y)
    assert f(x.astype(np.float16), axis=axis).dtype == np.float16


def test_family_nonfinite_columns(family, dtype):
    """The column kernels give the rows' results on non-finite lines too."""
    f = family[0]
    x = np.array([[-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0], [1000.0, 0.0, -1000.0],
                  [np.nan, 0.0, 1.0], [-np.inf, 1.0, 2.0], [-3e38, 3e38, 0.0]], dtype)
    cols = np.ascontiguousarray(np.tile(x, (3, 1)).T)  # 3 x 18: lines along axis 0
    with np.errstate(over="ignore", invalid="ignore"):
        y = f(cols, axis=0)
        expected = f(np.ascontiguousarray(cols.T), axis=1).T
        np.testing.assert_allclose(y, expected, rtol=_SAME[dtype], atol=0)
        g = np.ones_like(cols)
        np.testing.assert_allclose(f.backward(g, y=y, axis=0), f.backward(g.T, y=expected.T, axis=1).T,
                                   rtol=_SAME[dtype], atol=1e-30)


def test_family_masks(family, dtype, path):
    f, fref, vjp, _ = family
    x = _x((6, 9), dtype)
    g = _x((6, 9), dtype, seed=2, scale=1.0)
    where = np.random.default_rng(5).random((6, 9)) > 0.4
    where[2] = False  # a fully masked row
    where[3] = True
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    y = f(x, where=where)
    expected = fref(x64, where=where)
    _close(y, expected, dtype)
    assert not np.isnan(y).any()
    fill = -np.inf if f is fa.log_softmax else 0.0
    assert (y[2] == fill).all() and (y[~where] == fill).all()
    _close(f.backward(g, x, where=where), vjp(g64, x64, where=where), dtype)
    # a mask that broadcasts along the rows
    col = np.arange(9) % 3 != 0
    _close(f(x, where=col), fref(x64, where=np.broadcast_to(col, x.shape)), dtype)


def test_family_nonfinite_rows(family, dtype):
    f = family[0]
    x = np.array([[-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0], [1000.0, 0.0, -1000.0],
                  [np.nan, 0.0, 1.0], [-np.inf, 1.0, 2.0], [-3e38, 3e38, 0.0]], dtype)
    if f is fa.softmin:  # softmin(x) = softmax(-x): its NaN rows are all +inf / any -inf
        x = -x
    y = f(x)
    assert np.isnan(y[0]).all() and np.isnan(y[1]).all() and np.isnan(y[3]).all()
    # an entry at -inf, or one whose difference from the maximum overflows, weighs 0
    with np.errstate(over="ignore"):
        expected = family[1](x[[2, 4, 5]].astype(np.float64))
    if dtype == np.float32:
        with np.errstate(over="ignore"):
            expected = expected.astype(np.float32)
    _close(y[[2, 4, 5]], expected, dtype)
    masked = f(x, where=np.array([[False] * 3, [False, True, True], [True] * 3, [False, True, True],
                                  [True] * 3, [True] * 3]))
    assert not np.isnan(masked).any()
    _close(masked[[2, 4, 5]], expected, dtype)


def test_family_large_and_float32_accumulation(family):
    # a long row: the float64 accumulator keeps float32 results within a few ulps
    x = _x((4, 4096), np.float32, scale=2.0)
    expected = family[1](x.astype(np.float64))
    y = family[0](x)
    ulps = np.abs(y - expected) / np.spacing(np.abs(expected).astype(np.float32))
    assert ulps.max() <= 2


def test_jacobian(family, dtype):
    f, _, _, jac = family
    x = _x((3, 5), dtype)
    _close(f.jacobian(x), jac(x.astype(np.float64)), dtype)
    x3 = _x((4, 3, 2), dtype)
    j = f.jacobian(x3, axis=1)
    assert j.shape == (4, 2, 3, 3)
    _close(j, jac(x3.astype(np.float64), axis=1), dtype)
    out = np.empty_like(j)
    assert f.jacobian(x3, axis=1, out=out) is out
    np.testing.assert_array_equal(out, j)


def test_jacobian_times_g_is_backward(family):
    f = family[0]
    x = _x((4, 6), np.float64)
    g = _x((4, 6), np.float64, seed=3)
    np.testing.assert_allclose(np.einsum("ri,rij->rj", g, f.jacobian(x)), f.backward(g, x), rtol=1e-12,
                               atol=1e-14)


def test_family_errors(family):
    f = family[0]
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="axis"):
        f(x, axis=2)
    with pytest.raises(TypeError, match="axis"):
        f(x, axis=1.0)
    with pytest.raises(ValueError, match="where"):
        f(x, where=np.ones(3, bool))
    with pytest.raises(TypeError, match="where"):
        f(x, where=np.ones(4))
    with pytest.raises(ValueError, match="0-d"):
        f(np.float64(1.0))
    with pytest.raises(ValueError, match="grad_output"):
        f.backward(np.ones((3, 3)), x)
    with pytest.raises(TypeError, match="exactly one"):
        f.backward(np.ones((3, 4)))
    with pytest.raises(TypeError, match="dtype"):
        f(x.astype(complex))
    with pytest.raises(ValueError, match="shape"):
        f(x, out=np.empty((4, 3)))


def test_family_dtypes_and_out(family):
    f = family[0]
    x16 = _x((3, 8), np.float16)
    assert f(x16).dtype == np.float16
    assert f(np.arange(6).reshape(2, 3)).dtype == np.float64
    x = _x((3, 8), np.float32)
    out = np.empty_like(x)
    assert f(x, out=out) is out
    np.testing.assert_array_equal(out, f(x))
    x0 = x.copy()
    f.backward(np.ones_like(x), x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(f(x[:, ::2]), f(np.ascontiguousarray(x[:, ::2])))
    assert f(np.empty((0, 4))).shape == (0, 4)
    # an empty axis itself, along it and across it
    assert f(np.empty((0, 4)), axis=0).shape == (0, 4)
    assert f(np.empty((3, 0))).shape == (3, 0)
    assert f.backward(np.empty((0, 4)), np.empty((0, 4)), axis=0).shape == (0, 4)


@pytest.mark.parametrize("n", [64, 1000])
def test_softmax_backward_float32_rounds_once(n, path):
    """y (g - sum(g y)) from a float32 y: one rounding of the float64 value
    computed from the same y (g - sum rounded first would cost 1.5 ulp)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((300, n)) * 3).astype(np.float32)
    g = rng.standard_normal((300, n)).astype(np.float32)
    g64 = g.astype(np.float64)
    for f, sign in ((fa.softmax, 1.0), (fa.softmin, -1.0)):
        y = f(x)
        y64 = y.astype(np.float64)
        expected = sign * y64 * (g64 - (g64 * y64).sum(axis=1, keepdims=True))
        got = f.backward(g, y=y)
        ulps = np.abs(got - expected) / np.spacing(np.abs(expected).astype(np.float32))
        assert ulps.max() <= 1.0


@pytest.mark.parametrize("shape", [(64,), (5, 64), (2, 3, 17)])
def test_family_short_path_matches_the_regular_path(family, dtype, shape, monkeypatch):
    """Small C-contiguous calls along the last axis go straight to the compiled
    kernel; every result is the regular path's, bit for bit, and whatever the
    short path does not take (overlapping out=, other dtypes, bad out=) still
    reaches the regular path's handling."""
    from fastact import _rowwise

    f = family[0]
    x = _x(shape, dtype)
    g = _x(shape, dtype)[::-1].copy()
    taken = []
    run = _rowwise._run_short
    monkeypatch.setattr(_rowwise, "_run_short", lambda *a: (taken.append(a[0]), run(*a)))
    y = f(x)
    o = np.empty_like(x)
    assert f(x, axis=len(shape) - 1, out=o) is o
    gx = f.backward(g, y=y)
    go = np.empty_like(x)
    assert f.backward(g, y=y, out=go) is go
    gxx = f.backward(g, x)  # from the input: the forward pass, then the backward one
    gxo = np.empty_like(x)
    assert f.backward(g, x, out=gxo) is gxo
    assert taken == ["softmax_rows"] * 2 + ["softmax_backward_rows"] * 2 \
        + ["softmax_rows", "softmax_backward_rows"] * 2
    monkeypatch.setattr(_rowwise, "_short_rows", lambda *a: False)
    np.testing.assert_array_equal(y, f(x))
    np.testing.assert_array_equal(o, y)
    np.testing.assert_array_equal(gx, f.backward(g, y=y))
    np.testing.assert_array_equal(go, gx)
    np.testing.assert_array_equal(gxx, f.backward(g, x))
    np.testing.assert_array_equal(gxo, gxx)
    monkeypatch.undo()
    # in place: out is the input (the kernels read a row again after writing it)
    xi, gi = x.copy(), g.copy()
    assert f(xi, out=xi) is xi
    np.testing.assert_array_equal(xi, y)
    assert f.backward(gi, y=y, out=gi) is gi
    np.testing.assert_array_equal(gi, gx)
    # a mixed-dtype grad_output is converted as on the regular path
    np.testing.assert_array_equal(f.backward(g.astype(np.float16), y=y),
                                  f.backward(g.astype(np.float16).astype(dtype), y=y))
    with pytest.raises(TypeError, match="dtype"):
        f(x, out=np.empty(shape, np.float16))
    with pytest.raises(ValueError, match="read-only"):
        f(x, out=_read_only(x))
    with pytest.raises(TypeError, match="integer"):
        f(x, axis=True)


@pytest.mark.parametrize("shape, axis", [((64, 16), 0), ((3, 40, 17), -2), ((2, 5, 3, 8), 1)])
def test_family_short_path_along_other_axes(family, dtype, shape, axis, monkeypatch):
    """Small C-contiguous calls along an axis the column kernels serve go
    straight to them: the regular path's bits, fresh and into out=."""
    from fastact import _rowwise

    f = family[0]
    x = _x(shape, dtype)
    g = _x(shape, dtype, seed=7)
    y = f(x.view(_Sub), axis=axis)
    regular = [np.asarray(v) for v in (y, f.backward(g.view(_Sub), x.view(_Sub), axis=axis),
                                       f.backward(g.view(_Sub), y=np.asarray(y), axis=axis))]
    taken = []
    run = _rowwise._run_short
    monkeypatch.setattr(_rowwise, "_run_short", lambda *a: (taken.append(a[0]), run(*a)))
    y = np.asarray(y)
    o = np.empty_like(x)
    got = [f(x, axis=axis), f.backward(g, x, axis=axis), f.backward(g, y=y, axis=axis, out=o)]
    assert got[2] is o
    assert taken == ["softmax_cols", "softmax_cols", "softmax_backward_cols", "softmax_backward_cols"]
    for a, b in zip(regular, got, strict=True):
        assert type(b) is np.ndarray and b.dtype == dtype
        np.testing.assert_array_equal(a, b)


def _read_only(x):
    r = np.empty_like(x)
    r.flags.writeable = False
    return r


@pytest.mark.parametrize("shape, axis", [((4, 6), -1), ((6, 3), 0), ((2, 4, 3), 1)])
def test_glu(dtype, shape, axis, path):
    x = _x(shape, dtype)
    half = list(shape)
    half[axis] //= 2
    g = _x(tuple(half), dtype, seed=4, scale=1.0)
    _close(fa.glu(x, axis=axis), ref.glu(x.astype(np.float64), axis=axis), dtype)
    _close(fa.glu.backward(g, x, axis=axis),
           ref.glu_vjp(g.astype(np.float64), x.astype(np.float64), axis=axis), dtype)


def test_glu_errors():
    with pytest.raises(ValueError, match="even"):
        fa.glu(np.ones((3, 5)))
    with pytest.raises(ValueError, match="grad_output"):
        fa.glu.backward(np.ones((3, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="axis"):
        fa.glu(np.ones((3, 4)), axis=-3)


@pytest.mark.parametrize("shape, k, axis", [((4, 6), 2, -1), ((4, 6), 3, -1), ((6, 5), 3, 0),
                                            ((2, 8, 3), 4, 1), ((5,), 5, 0), ((3, 4), 1, -1)])
def test_maxout(dtype, shape, k, axis, path):
    x = _x(shape, dtype)
    small = list(shape)
    small[axis] //= k
    g = _x(tuple(small), dtype, seed=4, scale=1.0)
    np.testing.assert_array_equal(fa.maxout(x, pool_size=k, axis=axis),
                                  ref.maxout(x.astype(np.float64), k, axis=axis).astype(dtype))
    np.testing.assert_array_equal(
        fa.maxout.backward(g, x, pool_size=k, axis=axis),
        ref.maxout_vjp(g.astype(np.float64), x.astype(np.float64), k, axis=axis).astype(dtype))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_maxout_ties_nan_and_signed_zeros_every_pool_size(dtype, k, path):
    """Pool sizes 2-4 run loops of their own (the size a constant): ties go
    to the first maximum, a NaN wins (the first one), -0.0 and 0.0 tie."""
    rng = np.random.default_rng(k)
    x = rng.integers(-3, 4, size=(37, 20 * k)).astype(dtype)  # many ties
    x[rng.random(x.shape) < 0.05] = np.nan
    x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)
    g = _x((37, 20), dtype, seed=3, scale=1.0)
    y = fa.maxout(x, pool_size=k)
    np.testing.assert_array_equal(y, ref.maxout(x.astype(np.float64), k).astype(dtype))
    grp = x.reshape(37, 20, k)
    first = np.take_along_axis(grp, np.argmax(grp, axis=-1)[..., None], -1)[..., 0]
    np.testing.assert_array_equal(np.signbit(y), np.signbit(first))  # the first maximum itself
    np.testing.assert_array_equal(fa.maxout.backward(g, x, pool_size=k),
                                  ref.maxout_vjp(g.astype(np.float64), x.astype(np.float64), k).astype(dtype))


def test_maxout_ties_and_nan():
    x = np.array([[1.0, 3.0, 3.0, 0.0, np.nan, 2.0, 5.0, np.nan]])
    np.testing.assert_array_equal(fa.maxout(x, pool_size=4), [[3.0, np.nan]])
    gx = fa.maxout.backward(np.array([[10.0, 20.0]]), x, pool_size=4)
    np.testing.assert_array_equal(gx, [[0, 10.0, 0, 0, 20.0, 0, 0, 0]])


def test_maxout_errors():
    with pytest.raises(ValueError, match="pool_size"):
        fa.maxout(np.ones((2, 6)), pool_size=4)
    with pytest.raises(ValueError, match="pool_size"):
        fa.maxout(np.ones((2, 6)), pool_size=0)
    with pytest.raises(TypeError, match="pool_size"):
        fa.maxout(np.ones((2, 6)), pool_size=2.0)
    with pytest.raises(TypeError):
        fa.maxout(np.ones((2, 6)))
    with pytest.raises(ValueError, match="grad_output"):
        fa.maxout.backward(np.ones((2, 6)), np.ones((2, 6)), pool_size=2)


@pytest.mark.parametrize("shape, nw, axis", [((4, 3), 3, 1), ((4, 3, 5), 3, 1), ((2, 3, 5), 5, -1),
                                             ((4, 3), 1, 1), ((7,), 1, 1), ((2, 3, 4, 5), 4, 2)])
def test_prelu(dtype, shape, nw, axis, path):
    x = _x(shape, dtype)
    w = np.linspace(-0.5, 0.9, nw).astype(dtype)
    g = _x(shape, dtype, seed=5, scale=1.0)
    x64, w64, g64 = x.astype(np.float64), w.astype(np.float64), g.astype(np.float64)
    _close(fa.prelu(x, w, axis=axis), ref.prelu(x64, w64, axis=axis), dtype)
    gx, gw = fa.prelu.backward(g, x, w, axis=axis)
    rgx, rgw = ref.prelu_vjp(g64, x64, w64, axis=axis)
    _close(gx, rgx, dtype)
    assert gw.shape == w.shape
    _close(gw, rgw, dtype)
    _close(fa.prelu.grad(x, w, axis=axis), ref.prelu_vjp(np.ones_like(x64), x64, w64, axis=axis)[0], dtype)


class _Sub(np.ndarray):
    """An array type the short paths do not take."""


@pytest.mark.parametrize("shape, nw, axis", [((16, 64), 64, 1), ((16, 64), 64, -1), ((6, 5, 7), 5, 1),
                                             ((2, 3, 4, 5), 4, -2), ((300, 7), 1, 1), ((257,), 1, 0),
                                             ((2, 3, 4), 4, 2)])
def test_prelu_short_path(shape, nw, axis, monkeypatch):
    """C-contiguous calls go straight to the kernels (fresh, into out=, in
    place on x or grad_output): the regular path's bits; the weight's gradient
    has the same bits serial and parallel (partial sums fixed by the shape)."""
    from fastact import _prelu

    x = _x(shape, np.float32)
    x.flat[::7] = -0.0
    x.flat[3] = np.nan
    w = np.linspace(-0.5, 0.9, nw).astype(np.float32)
    g = _x(shape, np.float32, seed=5, scale=1.0)
    regular = (fa.prelu(x.view(_Sub), w, axis=axis),
               *fa.prelu.backward(g.view(_Sub), x.view(_Sub), w, axis=axis))
    taken = []
    real = _prelu._fast_blocks
    monkeypatch.setattr(_prelu, "_fast_blocks", lambda *a: taken.append(r := real(*a)) or r)
    y = fa.prelu(x, w, axis=axis)
    gx, gw = fa.prelu.backward(g, x, w, axis=axis)
    assert all(t is not None for t in taken) and len(taken) == 2
    for a, b in zip(regular, (y, gx, gw), strict=True):
        assert type(b) is np.ndarray and b.shape == a.shape and b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    o = np.empty_like(x)
    assert fa.prelu(x, w, axis=axis, out=o) is o
    np.testing.assert_array_equal(o, y)
    xi, gi = x.copy(), g.copy()
    assert fa.prelu(xi, w, axis=axis, out=xi) is xi
    np.testing.assert_array_equal(xi, y)
    got = fa.prelu.backward(gi, x, w, axis=axis, out=gi)
    assert got[0] is gi
    np.testing.assert_array_equal(gi, gx)
    np.testing.assert_array_equal(got[1], gw)
    if nw == 1:  # a 0-d weight: a NumPy scalar gradient, as from the regular path
        gw0 = fa.prelu.backward(g, x, w.reshape(()), axis=axis)[1]
        assert type(gw0) is np.float32
        np.testing.assert_array_equal(gw0, gw[0])
    monkeypatch.setattr(_rowwise_kernels, "PARALLEL_THRESHOLD", 1)
    par = fa.prelu.backward(g, x, w, axis=axis)
    np.testing.assert_array_equal(fa.prelu(x, w, axis=axis), y)
    np.testing.assert_array_equal(par[0], gx)
    np.testing.assert_array_equal(par[1], gw)


@pytest.mark.parametrize("shape", [(12,), (5, 12), (2, 3, 12)])
def test_glu_and_maxout_short_paths(dtype, shape, monkeypatch):
    """Small C-contiguous calls along the last axis go straight to the kernels:
    the regular path's bits; other axes, out= and bad arguments go the
    regular way (which reports them)."""
    from fastact import _rowwise

    x = _x(shape, dtype)
    half = shape[:-1] + (6,)
    g2, g4 = _x(half, dtype, seed=2), _x(shape[:-1] + (3,), dtype, seed=3)
    xs = x.view(_Sub)
    regular = [np.asarray(v) for v in (fa.glu(xs), fa.glu.backward(g2.view(_Sub), xs),
                                       fa.maxout(xs, pool_size=4), fa.maxout.backward(g4.view(_Sub), xs, pool_size=4))]
    taken = []
    run = _rowwise._run_short
    monkeypatch.setattr(_rowwise, "_run_short", lambda *a: (taken.append(a[0]), run(*a)))
    got = [fa.glu(x), fa.glu.backward(g2, x), fa.maxout(x, pool_size=4), fa.maxout.backward(g4, x, pool_size=4)]
    assert taken == ["glu_rows", "glu_backward_rows", "maxout_rows", "maxout_backward_rows"]
    for a, b in zip(regular, got, strict=True):
        assert type(b) is np.ndarray and b.shape == a.shape and b.dtype == dtype
        np.testing.assert_array_equal(a, b)
    taken.clear()
    with pytest.raises(ValueError, match="pool_size"):
        fa.maxout(x, pool_size=5)
    with pytest.raises(TypeError, match="pool_size"):
        fa.maxout(x, pool_size=True)
    with pytest.raises(ValueError, match="grad_output"):
        fa.glu.backward(g4, x)
    assert taken == []


@pytest.mark.parametrize("shape, nw", [((0, 3), 3), ((0, 3, 4), 3), ((2, 3, 0), 3), ((0,), 1), ((0, 3), 1)])
def test_prelu_empty(dtype, shape, nw):
    """Empty inputs: empty results, and a weight gradient of zeros."""
    x = np.zeros(shape, dtype)
    w = np.full(nw, 0.25, dtype)
    assert fa.prelu(x, w).shape == shape
    gx, gw = fa.prelu.backward(x, x, w)
    assert gx.shape == shape and gw.dtype == dtype
    np.testing.assert_array_equal(gw, np.zeros(nw, dtype))


def test_prelu_nan_and_errors():
    y = fa.prelu(np.array([np.nan, -1.0]), np.array([0.25]))
    assert np.isnan(y[0]) and y[1] == -0.25
    with pytest.raises(ValueError, match="weight"):
        fa.prelu(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="weight"):
        fa.prelu(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="grad_output"):
        fa.prelu.backward(np.ones((2, 2)), np.ones((2, 3)), np.ones(3))


def test_log_softmax_backward_rounds_once_from_the_output():
    # g - e^y sum(g) evaluated in float64 from the float32 output and rounded
    # once: e^y rounded to float32 first would move the result by up to half
    # an ulp of the terms, thousands of ulps of the result where they cancel
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((16, 1024)) * 3).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y = fa.log_softmax(x)
    g64 = g.astype(np.float64)
    total = g64.sum(-1, keepdims=True)
    p = np.exp(y.astype(np.float64))
    expected = (g64 - p * total).astype(np.float32)
    terms = np.abs(g64) + p * np.abs(total)
    for actual in (fa.log_softmax.backward(g, y=y), fa.log_softmax.backward(g, x)):
        err = np.abs(actual.astype(np.float64) - expected)
        assert np.all(err <= np.maximum(np.spacing(np.abs(expected)), 2.0**-28 * terms))
