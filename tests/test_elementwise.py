"""Values and derivatives of every elementwise function against float64 references."""

from __future__ import annotations

import numpy as np
import pytest

import fastact as fa
from fastact._elementwise import Choice
from fastact import _cpu
from conftest import CASES, edge_values, grid
from references import ulp_error

def _bound(case, dtype, which):
    return (case.ulp32 if dtype == np.float32 else case.ulp64)[which]


def _worst(case, actual, exact, dtype):
    """Worst ulp error (the ulp of a subnormal is the smallest subnormal)."""
    err = ulp_error(actual, exact, dtype)
    i = int(np.argmax(err))
    return float(err[i]), i


def test_forward_accuracy(case, dtype):
    x = np.concatenate([grid(dtype, case), edge_values(dtype)])
    y = case.func(x, **case.params)
    assert y.dtype == dtype and y.shape == x.shape
    err, i = _worst(case, y, case.ref_forward(x.astype(np.float64), dtype), dtype)
    assert err <= _bound(case, dtype, 0), f"{case.id} at x={x[i]!r}: {err:.3g} ulp, got {y[i]!r}"


def test_grad_accuracy(case, dtype):
    x = np.concatenate([grid(dtype, case), edge_values(dtype)])
    d = case.func.grad(x, **case.params)
    assert d.dtype == dtype
    err, i = _worst(case, d, case.ref_grad(x.astype(np.float64), dtype), dtype)
    assert err <= _bound(case, dtype, 1), f"{case.id}' at x={x[i]!r}: {err:.3g} ulp, got {d[i]!r}"


def test_backward_is_g_times_grad(case, dtype):
    rng = np.random.default_rng(7)
    x = grid(dtype, case)
    g = rng.standard_normal(x.size).astype(dtype)
    b = case.func.backward(g, x, **case.params)
    assert b.dtype == dtype
    exact = g.astype(np.float64) * case.ref_grad(x.astype(np.float64), dtype)
    err, i = _worst(case, b, exact, dtype)
    assert err <= _bound(case, dtype, 2), f"{case.id} backward at x={x[i]!r}: {err:.3g} ulp"


def test_value_and_grad_matches_separate_calls(case, dtype):
    x = np.concatenate([grid(dtype, case), edge_values(dtype)])
    y, d = case.func.value_and_grad(x, **case.params)
    np.testing.assert_array_equal(y, case.func(x, **case.params))
    np.testing.assert_array_equal(d, case.func.grad(x, **case.params))


def test_parallel_path_matches_serial(case, dtype, monkeypatch):
    """Large contiguous arrays go through the parallel loops: same bits as the serial ones."""
    rng = np.random.default_rng(3)
    x = np.concatenate([grid(dtype, case), edge_values(dtype)])
    g = rng.standard_normal(x.size).astype(dtype)
    serial = (case.func(x, **case.params), case.func.grad(x, **case.params),
              case.func.backward(g, x, **case.params))
    monkeypatch.setattr(_cpu, "PARALLEL_THRESHOLD", 1)
    par = (case.func(x, **case.params), case.func.grad(x, **case.params),
           case.func.backward(g, x, **case.params))
    y, d = case.func.value_and_grad(x, **case.params)
    for a, b in zip(serial, par):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(y, serial[0])
    np.testing.assert_array_equal(d, serial[1])


def _spy_run_flat(monkeypatch) -> list:
    """The kinds _cpu.run_flat is called for from now on, in order."""
    calls = []
    real = _cpu.run_flat
    monkeypatch.setattr(_cpu, "run_flat", lambda *a: calls.append(a[1]) or real(*a))
    return calls


def test_short_path_takes_the_parallel_loop_from_the_threshold(case, dtype, monkeypatch):
    """Calls at or above the parallel threshold take the short path too, to
    the parallel loop (run_flat), or the serial one where parallel launches
    are off: the regular path's bits, also into out=."""
    from fastact import _threads

    x = np.concatenate([grid(dtype, case), edge_values(dtype)])[-1000:]
    g = np.random.default_rng(6).standard_normal(x.size).astype(dtype)
    kwargs = dict(case.params)
    f = case.func._pick("__call__", kwargs) if isinstance(case.func, Choice) else case.func
    regular = tuple(np.asarray(h(*args, **kwargs)) for h, args in
                    ((f, (x.view(_Subclass),)), (f.grad, (x.view(_Subclass),)),
                     (f.backward, (g.view(_Subclass), x.view(_Subclass)))))
    p = f._params("__call__", kwargs, np.dtype(dtype))
    monkeypatch.setattr(_cpu, "PARALLEL_THRESHOLD", 1)
    calls = _spy_run_flat(monkeypatch)
    for parallel in (True, False):
        monkeypatch.setattr(_threads, "_enabled", parallel)
        outs = [np.full_like(x, np.nan) for _ in range(3)]
        for k, (kind, args) in enumerate((("forward", (x, None)), ("grad", (x, None)),
                                          ("backward", (x, g)))):
            for o in (None, outs[k]):
                got = f._fast(kind, *args, p, o)
                assert got is not None and (o is None or got is o)
                np.testing.assert_array_equal(got, regular[k])
    assert calls == ["forward", "forward", "grad", "grad", "backward", "backward"] * 2


@pytest.mark.parametrize("shape", [(40, 25), (5, 8, 25)])
def test_short_path_any_dimension(shape, monkeypatch):
    """C-contiguous arrays of any dimension take the short path (the regular
    one is switched off here), fresh, into out= and in place: the regular
    path's bits, in x's shape."""
    rng = np.random.default_rng(9)
    x = (4 * rng.standard_normal(shape)).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    for f in (fa.relu, fa.sigmoid):
        xs, gs = x.view(_Subclass), g.view(_Subclass)
        regular = [np.asarray(a) for a in (f(xs), f.grad(xs), f.backward(gs, xs), *f.value_and_grad(xs))]

        def boom(*args, **kwargs):
            raise AssertionError("the regular path")

        monkeypatch.setattr(_cpu, "run", boom)
        got = [f(x), f.grad(x), f.backward(g, x), *f.value_and_grad(x)]
        for a, b in zip(regular, got, strict=True):
            assert b.shape == shape
            np.testing.assert_array_equal(a, b)
        o = np.empty_like(x)
        assert f(x, out=o) is o
        np.testing.assert_array_equal(o, regular[0])
        xi = x.copy()
        assert f(xi, out=xi) is xi
        np.testing.assert_array_equal(xi, regular[0])
        monkeypatch.undo()


def test_short_path_with_parameters():
    """Calls that pass parameters take the short path once it serves their
    kind and dtype: the regular path's bits and errors, on every call (the
    resolved values are kept by value and type: True after 1 is refused)."""
    x = np.linspace(-3, 3, 1001, dtype=np.float32)
    g = np.cos(x)
    f = fa.leaky_relu
    want = (f._unary("forward", "__call__", x.view(_Subclass), None, {"negative_slope": 1}),
            f._unary("grad", "grad", x.view(_Subclass), None, {"negative_slope": 1}))
    f(x), f.grad(x), f.backward(g, x)  # the short path now serves all three
    for _ in range(2):
        np.testing.assert_array_equal(f(x, negative_slope=1), want[0])
        np.testing.assert_array_equal(f.grad(x, negative_slope=1), want[1])
        np.testing.assert_array_equal(f.backward(g, x, negative_slope=1), g * want[1])
        for bad, exc in ((True, TypeError), ("a", TypeError), (np.ones(2), TypeError)):
            with pytest.raises(exc, match="negative_slope must be a real number"):
                f(x, negative_slope=bad)
        with pytest.raises(TypeError, match="unexpected keyword argument 'slope'"):
            f(x, slope=1.0)
    np.testing.assert_array_equal(fa.softplus(x, beta=2.0, threshold=5.0),
                                  fa.softplus._unary("forward", "__call__", x.view(_Subclass), None,
                                                     {"beta": 2.0, "threshold": 5.0}))
    fa.hardtanh(x)
    for _ in range(2):
        with pytest.raises(ValueError, match="min_val must be <= max_val"):
            fa.hardtanh(x, min_val=2.0, max_val=1.0)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_backward_from_output_short_path(name, monkeypatch):
    """backward(g, y=y) takes the short path too (serial, then parallel):
    the regular path's bits, into out= (g itself included)."""
    f = getattr(fa, name)
    x = np.linspace(-6, 6, 1000).reshape(40, 25)
    y, g = f(x), np.cos(x)
    want = np.asarray(f.backward(g.view(_Subclass), y=y.view(_Subclass)))
    f.backward(g, y=y)
    assert ("backward_y", y.dtype) in f._short
    calls = _spy_run_flat(monkeypatch)
    for threshold in (_cpu.PARALLEL_THRESHOLD, 1):
        monkeypatch.setattr(_cpu, "PARALLEL_THRESHOLD", threshold)
        np.testing.assert_array_equal(f.backward(g, y=y), want)
        gc = g.copy()
        assert f.backward(gc, y=y, out=gc) is gc
        np.testing.assert_array_equal(gc, want)
    assert calls == ["backward_y"] * 2
    with pytest.raises(TypeError, match="exactly one of them"):
        f.backward(g, x, y=y)


def test_value_and_grad_short_path(case, dtype, monkeypatch):
    """value_and_grad of a C-contiguous array takes the short path once it
    serves the dtype, serial and (from the threshold on) parallel: the
    regular path's bits, into fresh arrays or out= (one of them x itself);
    an out= pair sharing memory is still refused."""
    x = np.concatenate([grid(dtype, case), edge_values(dtype)])[-1000:].reshape(40, 25)
    kwargs = dict(case.params)
    f = case.func._pick("__call__", kwargs) if isinstance(case.func, Choice) else case.func
    want = [np.asarray(v) for v in f.value_and_grad(x.view(_Subclass), **kwargs)]
    f.value_and_grad(x, **kwargs)
    assert ("value_and_grad", x.dtype) in f._short
    calls = _spy_run_flat(monkeypatch)
    for threshold in (_cpu.PARALLEL_THRESHOLD, 1):
        monkeypatch.setattr(_cpu, "PARALLEL_THRESHOLD", threshold)
        y, d = f.value_and_grad(x, **kwargs)
        np.testing.assert_array_equal(y, want[0])
        np.testing.assert_array_equal(d, want[1])
        outs = (np.full_like(x, np.nan), np.full_like(x, np.nan))
        got = f.value_and_grad(x, out=outs, **kwargs)
        assert got[0] is outs[0] and got[1] is outs[1]
        np.testing.assert_array_equal(outs[0], want[0])
        np.testing.assert_array_equal(outs[1], want[1])
        xc = x.copy()
        y, d = f.value_and_grad(xc, out=(np.empty_like(x), xc), **kwargs)
        assert d is xc
        np.testing.assert_array_equal(y, want[0])
        np.testing.assert_array_equal(d, want[1])
    assert calls == ["value_and_grad"] * 3
    buf = np.empty_like(x)
    with pytest.raises(ValueError, match="must not share memory"):
        f.value_and_grad(x, out=(buf, buf), **kwargs)


class _Subclass(np.ndarray):
    """An array type the short path does not take: its calls go the regular way."""


def test_short_path_matches_regular_path(case, dtype):
    """Small calls skip the argument handling and call the compiled loop directly: same bits,
    also into out= (the input itself, or grad_output for backward)."""
    x = np.concatenate([grid(dtype, case), edge_values(dtype)])[-1000:]
    g = np.random.default_rng(4).standard_normal(x.size).astype(dtype)
    kwargs = dict(case.params)
    f = case.func._pick("__call__", kwargs) if isinstance(case.func, Choice) else case.func
    xs, gs = x.view(_Subclass), g.view(_Subclass)
    regular = tuple(np.asarray(h(*args, out=np.empty_like(x), **kwargs)) for h, args in
                    ((f, (xs,)), (f.grad, (xs,)), (f.backward, (gs, xs))))
    p = f._params("__call__", kwargs, np.dtype(dtype))
    short = (f._fast("forward", x, None, p), f._fast("grad", x, None, p), f._fast("backward", x, g, p))
    for a, b in zip(regular, short):
        assert b is not None
        np.testing.assert_array_equal(a, b)
    outs = [np.empty_like(x) for _ in range(3)]
    into = (f._fast("forward", x, None, p, outs[0]), f._fast("grad", x, None, p, outs[1]),
            f._fast("backward", x, g, p, outs[2]))
    for a, b, o in zip(regular, into, outs):
        assert b is o
        np.testing.assert_array_equal(a, b)
    # in place, and out= overlapping an input partly (the short path declines)
    xi, gi = x.copy(), g.copy()
    assert f._fast("forward", xi, None, p, xi) is xi and f._fast("backward", x, gi, p, gi) is gi
    np.testing.assert_array_equal(xi, regular[0])
    np.testing.assert_array_equal(gi, regular[2])
    buf = np.concatenate([x, x[:1]])
    assert f._fast("forward", buf[:-1], None, p, buf[1:]) is None
    if not kwargs:  # the public calls with the defaults take the short path
        np.testing.assert_array_equal(f(x), regular[0])
        o = np.empty_like(x)
        assert f(x, out=o) is o
        np.testing.assert_array_equal(o, regular[0])
        # the forward call's one-lookup path, also through a Choice's default
        assert np.dtype(dtype) in f._forward1
        np.testing.assert_array_equal(case.func(x, **case.params), regular[0])
        # out= a view (it owns no memory), apart from x, on it exactly, and partly on it
        buf = np.empty(2 * x.size, dtype)
        assert f(x, out=buf[x.size:]) is not None
        np.testing.assert_array_equal(buf[x.size:], regular[0])
        buf[:x.size] = x
        assert f(buf[:x.size], out=buf[:x.size]) is not None
        np.testing.assert_array_equal(buf[:x.size], regular[0])
        buf[:x.size] = x  # out one element ahead of x: a loop writing in place would clobber x
        f(buf[:x.size], out=buf[1:x.size + 1])
        np.testing.assert_array_equal(buf[1:x.size + 1], regular[0])


def _smooth_points(case):
    x = np.linspace(-6, 6, 241)
    x = x[np.all(np.abs(x[:, None] - np.array(case.kinks or [np.inf])) > 1e-3, axis=1)]
    return x


def test_grad_matches_finite_differences(case):
    x = _smooth_points(case)
    h = 1e-6
    fd = (case.func(x + h, **case.params) - case.func(x - h, **case.params)) / (2 * h)
    np.testing.assert_allclose(case.func.grad(x, **case.params), fd, rtol=1e-6, atol=1e-8)


def test_nan_propagates(case, dtype):
    x = np.array([np.nan, -np.nan], dtype=dtype)
    assert np.isnan(case.func(x, **case.params)).all()
    assert np.isnan(case.func.grad(x, **case.params)).all()
    assert np.isnan(case.func.backward(np.ones_like(x), x, **case.params)).all()


def test_infinities_give_limits(case, dtype):
    x = np.array([np.inf, -np.inf], dtype=dtype)
    exact_y = case.ref_forward(x.astype(np.float64), dtype)
    exact_d = case.ref_grad(x.astype(np.float64), dtype)
    assert not np.isnan(exact_y).any() and not np.isnan(exact_d).any()
    np.testing.assert_array_equal(case.func(x, **case.params), exact_y.astype(dtype))
    np.testing.assert_array_equal(case.func.grad(x, **case.params), exact_d.astype(dtype))


@pytest.mark.parametrize("case", [c for c in CASES if c.kinks], ids=lambda c: c.id)
def test_kinks_follow_pytorch_conventions(case, dtype):
    """At a kink the value is that of PyTorch's side: within an ulp of the
    reference there (the two sides differ by far more)."""
    x = np.array(case.kinks, dtype=dtype)
    x64 = x.astype(np.float64)
    assert ulp_error(case.func(x, **case.params), case.ref_forward(x64, dtype), dtype).max() <= 1
    assert ulp_error(case.func.grad(x, **case.params), case.ref_grad(x64, dtype), dtype).max() <= 1


def test_explicit_conventions():
    """A few values spelled out rather than taken from the reference table."""
    d = fa.relu.grad(np.array([-1.0, -0.0, 0.0, 2.0, np.nan]))
    np.testing.assert_array_equal(d, [0.0, 0.0, 0.0, 1.0, np.nan])
    assert fa.leaky_relu.grad(np.array([0.0]), negative_slope=0.3)[0] == 0.3
    assert fa.elu.grad(np.array([0.0]), alpha=0.7)[0] == 0.7
    assert fa.hardtanh.grad(np.array([-1.0, 1.0])).tolist() == [0.0, 0.0]
    assert fa.relu6.grad(np.array([0.0, 6.0])).tolist() == [0.0, 0.0]
    assert fa.hardsigmoid.grad(np.array([-3.0, 3.0])).tolist() == [0.0, 0.0]
    assert fa.hardswish.grad(np.array([-3.0, 3.0, 0.0])).tolist() == [0.0, 1.0, 0.5]
    assert fa.softshrink.grad(np.array([-0.5, 0.5])).tolist() == [0.0, 0.0]
    assert fa.softplus.grad(np.array([20.0, 20.5])).tolist()[1] == 1.0
    assert fa.sigmoid(np.array([-np.inf, np.inf])).tolist() == [0.0, 1.0]
    assert fa.softsign(np.array([-np.inf, np.inf])).tolist() == [-1.0, 1.0]
    assert fa.elu(np.array([-np.inf]), alpha=2.0).tolist() == [-2.0]
    for f in (fa.silu, fa.gelu, fa.mish, fa.hardswish):
        assert f(np.array([-np.inf]))[0] == 0.0
    assert fa.gelu(np.array([-np.inf]), approximate="tanh")[0] == 0.0


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_no_overflow_in_intermediate_steps(dt):
    big = np.finfo(dt).max / 2
    x = np.array([big, -big], dtype=dt)
    np.testing.assert_array_equal(fa.hardswish(x), [big, 0.0])
    np.testing.assert_array_equal(fa.gelu(x), [big, 0.0])
    np.testing.assert_array_equal(fa.gelu(x, approximate="tanh"), [big, 0.0])
    np.testing.assert_array_equal(fa.silu(x), [big, 0.0])
    np.testing.assert_array_equal(fa.mish(x), [big, 0.0])
    for f in fa.ELEMENTWISE:
        kw = {"threshold": 0.0, "value": 0.0} if f is fa.threshold else {}
        assert not np.isnan(f.grad(x, **kw)).any(), f.name
        assert not np.isnan(f(x, **kw)).any(), f.name


@pytest.mark.parametrize("case", [c for c in CASES if c.func in (fa.sigmoid, fa.tanh, fa.relu)],
                         ids=lambda c: c.id)
def test_backward_from_output(case, dtype):
    x = grid(dtype, case)
    g = np.random.default_rng(1).standard_normal(x.size).astype(dtype)
    y = case.func(x)
    from_y = case.func.backward(g, y=y)
    exact = g.astype(np.float64) * case.ref_grad(x.astype(np.float64), dtype)
    # From the rounded output: y(1-y) and (1-y)(1+y) inherit y's rounding,
    # relative to 1-y; compare where the derivative is not small.
    keep = np.abs(case.ref_grad(x.astype(np.float64), dtype)) > 0.1
    np.testing.assert_allclose(from_y[keep], exact[keep], rtol=2e-6 if dtype == np.float32 else 4e-15,
                               atol=0)
    assert np.isnan(case.func.backward(np.ones(1, dtype), y=np.array([np.nan], dtype))).all()


def test_torch_name_is_documented():
    for f in fa.ELEMENTWISE:
        assert f.__doc__ and f.__doc__.strip(), f.name
        if f is not fa.swish:
            assert f.torch, f.name
