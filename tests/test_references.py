"""Validation of the float64 references in ``references.py``.

The elementwise references are checked against their mpmath definitions on
dense grids that include the tails, tiny and huge inputs, the kinks and the
roots of the derivatives; the mpmath derivatives are checked against numerical
differentiation of the mpmath forwards; the row-wise references against
brute-force computations on small arrays.
"""

from __future__ import annotations

import functools
import math
import zlib

import mpmath
import numpy as np
import pytest

try:
    from . import references as R
except ImportError:  # tests/ is not a package
    import references as R

TINY = np.finfo(np.float64).tiny
MAX = np.finfo(np.float64).max
REL_TOL = 1e-14

# Every elementwise function with its defaults, plus non-default parameters.
VARIANTS: list[tuple[str, dict]] = [
    ("sigmoid", {}),
    ("tanh", {}),
    ("relu", {}),
    ("relu6", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": 0.0}),
    ("elu", {}),
    ("elu", {"alpha": 0.3}),
    ("elu", {"alpha": 2.5}),
    ("celu", {}),
    ("celu", {"alpha": 1.7}),
    ("celu", {"alpha": 0.5}),
    ("celu", {"alpha": -1.5}),
    ("selu", {}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
    ("silu", {}),
    ("swish", {}),
    ("swish", {"beta": 1.7}),
    ("swish", {"beta": 0.5}),
    ("swish", {"beta": -0.8}),
    ("mish", {}),
    ("softplus", {}),
    ("softplus", {"beta": 2.3, "threshold": 5.0}),
    ("softplus", {"beta": 0.5, "threshold": 20.0}),
    ("softplus", {"beta": -1.0, "threshold": 20.0}),
    ("softsign", {}),
    ("logsigmoid", {}),
    ("hardtanh", {}),
    ("hardtanh", {"min_val": -2.5, "max_val": 0.5}),
    ("hardsigmoid", {}),
    ("hardswish", {}),
    ("tanhshrink", {}),
    ("softshrink", {}),
    ("softshrink", {"lambd": 1.25}),
    ("softshrink", {"lambd": 0.0}),
    ("hardshrink", {}),
    ("hardshrink", {"lambd": 1.25}),
    ("threshold", {"threshold": 0.5, "value": -2.0}),
    ("threshold", {"threshold": -1.0, "value": 3.0}),
]


def _vid(v):
    name, params = v
    return name + "".join(f"-{k}={p}" for k, p in params.items())


# Roots of silu', gelu', gelu'(tanh), mish' (where closed forms cancel).
ROOTS = [-1.2784645427610737, -0.7517915246935645, -0.7524614220710163, -1.1924312145154952]


def _around(points, ulps=2):
    out = []
    for p in points:
        out.append(p)
        lo = hi = p
        for _ in range(ulps):
            lo = np.nextafter(lo, -np.inf)
            hi = np.nextafter(hi, np.inf)
            out += [lo, hi]
    return out


def _grid(name: str, params: dict) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(_vid((name, params)).encode()))
    pts = list(np.linspace(-40.0, 40.0, 321))
    pts += list(rng.uniform(-45.0, 45.0, 60))
    pts += list(rng.choice([-1.0, 1.0], 40) * 10.0 ** rng.uniform(-12.0, 2.0, 40))
    small = [5e-324, 1e-310, TINY, 1e-300, 1e-200, 1e-100, 1e-30, 1e-16, 1e-8, 1e-4, 0.01, 0.1, 0.3]
    large = [45.0, 50.0, 100.0, 354.5, 400.0, 700.0, 705.0, 708.4, 709.5, 710.5, 711.5,
             745.2, 800.0, 1e4, 1e10, 1e38, 1e154, 1e300, MAX]
    pts += small + [-v for v in small] + large + [-v for v in large] + [0.0, -0.0]
    # kinks and switch points of the formulas
    kinks = [0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 2.0, -2.0, 0.5, -0.5, 30.0, -30.0, 37.6, -37.6, -1000.0]
    pts += _around(kinks)
    for r in ROOTS:
        pts += [r + d for d in (-0.31, -0.29, -1e-3, -1e-6, -1e-12, 0.0, 1e-12, 1e-6, 1e-3, 0.29, 0.31)]
        pts += _around([r], 1)
    for key, p in params.items():
        if isinstance(p, str):
            continue
        pts += _around([p, -p])
    beta = params.get("beta")
    if beta:
        pts += [r / beta for r in ROOTS[:1]] + [-700.0 / beta, -710.0 / beta]
        if "threshold" in params:
            pts += _around([params["threshold"] / beta])
    return np.array(pts, dtype=np.float64)


@functools.cache
def _exact(name: str, params_key: tuple, kind: str) -> tuple[np.ndarray, list]:
    params = dict(params_key)
    x = _grid(name, params)
    f = R.mp_forward if kind == "forward" else R.mp_grad
    return x, [f(name, float(v), **params) for v in x]


def _assert_matches(name, params, kind, x, got, exact, rel_tol=REL_TOL):
    ef = np.array([float(e) for e in exact])
    bad = []
    for xi, g, e, f in zip(x, got, exact, ef):
        if mpmath.isnan(e):
            ok = np.isnan(g)
        elif math.isinf(f):
            ok = g == f
        elif abs(f) >= TINY:
            ok = abs(float((mpmath.mpf(g) - e) / e)) <= rel_tol
        else:  # subnormal or zero: within a few subnormal steps
            ok = R.ulp_error(g, f, np.float64) <= 4
        if not ok:
            bad.append((xi, g, mpmath.nstr(e, 20)))
    assert not bad, f"{name}{params} {kind}: {len(bad)} mismatches, e.g. {bad[:5]}"


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
@pytest.mark.parametrize("kind", ["forward", "grad"])
def test_against_mpmath(variant, kind):
    name, params = variant
    x, exact = _exact(name, tuple(sorted(params.items())), kind)
    got = getattr(R.ELEMENTWISE[name], kind)(x, **params)
    assert got.dtype == np.float64 and got.shape == x.shape
    _assert_matches(name, params, kind, x, got, exact)


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
@pytest.mark.parametrize("kind", ["forward", "grad"])
def test_float64_kernels_against_mpmath(variant, kind):
    """SPEC section 5: the float64 kernels within a relative error of 1e-14,
    on the same grid (tails, kinks, 1e-12 from the roots of derivatives)."""
    import fastact as fa

    name, params = variant
    x, exact = _exact(name, tuple(sorted(params.items())), kind)
    f = getattr(fa, name)
    got = f(x, **params) if kind == "forward" else f.grad(x, **params)
    assert got.dtype == np.float64
    _assert_matches(name, params, kind, x, got, exact, rel_tol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_edges(variant):
    name, params = variant
    ref = R.ELEMENTWISE[name]
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])
    for kind in ("forward", "grad"):
        got = getattr(ref, kind)(x, **params)
        exact = [getattr(ref, "mp_" + kind)(v, **params) for v in x]
        assert np.isnan(got[0]), (name, kind)
        assert mpmath.isnan(exact[0])
        # limits at +-inf and the values at +-0 are exact
        for xi, g, e in zip(x[1:], got[1:], exact[1:]):
            assert not np.isnan(g), (name, kind, xi)
            assert g == float(e), (name, params, kind, xi, g, e)


with mpmath.workdps(40):  # PyTorch's decimal constants, multiplied exactly
    SELU_SCALE_ALPHA = float(
        mpmath.mpf("1.0507009873554804934193349852946") * mpmath.mpf("1.6732632423543772848170429916717")
    )

LIMITS = [
    ("sigmoid", {}, "forward", -np.inf, 0.0),
    ("sigmoid", {}, "forward", np.inf, 1.0),
    ("softplus", {}, "forward", np.inf, np.inf),
    ("softplus", {}, "forward", -np.inf, 0.0),
    ("elu", {}, "forward", -np.inf, -1.0),
    ("elu", {"alpha": 2.5}, "forward", -np.inf, -2.5),
    ("selu", {}, "forward", -np.inf, -SELU_SCALE_ALPHA),
    ("silu", {}, "forward", -np.inf, 0.0),
    ("silu", {}, "grad", -np.inf, 0.0),
    ("silu", {}, "grad", np.inf, 1.0),
    ("gelu", {}, "forward", -np.inf, 0.0),
    ("gelu", {}, "grad", np.inf, 1.0),
    ("gelu", {}, "forward", 1e308, 1e308),
    ("gelu", {"approximate": "tanh"}, "forward", 1e308, 1e308),
    ("gelu", {"approximate": "tanh"}, "forward", -np.inf, 0.0),
    ("mish", {}, "forward", -np.inf, 0.0),
    ("mish", {}, "forward", np.inf, np.inf),
    ("hardswish", {}, "forward", -np.inf, 0.0),
    ("hardswish", {}, "forward", 1e308, 1e308),
    ("softsign", {}, "forward", np.inf, 1.0),
    ("softsign", {}, "forward", -np.inf, -1.0),
    ("softsign", {}, "grad", 1e308, 0.0),
    ("logsigmoid", {}, "forward", -np.inf, -np.inf),
    ("tanhshrink", {}, "forward", -np.inf, -np.inf),
    ("leaky_relu", {"negative_slope": 0.0}, "forward", -np.inf, 0.0),
    ("swish", {"beta": 0.0}, "forward", np.inf, np.inf),
    ("swish", {"beta": 0.0}, "grad", -np.inf, 0.5),
]


@pytest.mark.parametrize("name,params,kind,x,expected", LIMITS)
def test_documented_limits(name, params, kind, x, expected):
    got = getattr(R.ELEMENTWISE[name], kind)(np.array([x]), **params)[0]
    assert got == expected


def test_tiny_values_are_not_nan():
    g = R.ELEMENTWISE["gelu"].grad(np.array([-30.0, -37.0]))
    assert np.all(np.isfinite(g)) and np.all(g < 0)
    g = R.ELEMENTWISE["gelu"].grad(np.array([-30.0]), approximate="tanh")
    assert np.isfinite(g[0])


EXTREMES = np.array(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, TINY, -TINY,
     MAX, -MAX, 1e308, -1e308, 1e154, -1e154, 710.0, -710.0, 745.5, -745.5, 1e38, -1e38]
)


@pytest.mark.parametrize("variant", VARIANTS + [("swish", {"beta": 0.0}), ("leaky_relu", {"negative_slope": -3.0})],
                         ids=_vid)
def test_no_floating_point_errors(variant):
    name, params = variant
    ref = R.ELEMENTWISE[name]
    with np.errstate(all="raise"):
        for kind in ("forward", "grad"):
            y = getattr(ref, kind)(EXTREMES, **params)
            assert np.isnan(y[0]) and not np.any(np.isnan(y[1:])), (kind, y)


@pytest.mark.parametrize("name", sorted(R.ELEMENTWISE))
def test_shapes_and_inputs(name):
    ref = R.ELEMENTWISE[name]
    params = {"threshold": 0.1, "value": 2.0} if name == "threshold" else {}
    x = np.linspace(-4, 4, 24).reshape(2, 3, 4)
    flat = ref.forward(x.ravel(), **params)
    for arr in (x, x.transpose(2, 0, 1), x[:, ::-1, ::2]):
        y = ref.forward(arr, **params)
        assert y.shape == arr.shape and y.dtype == np.float64
        np.testing.assert_array_equal(y.ravel(), ref.forward(arr.ravel(), **params))
    np.testing.assert_array_equal(ref.forward(x, **params).ravel(), flat)
    assert ref.forward(np.float64(0.5), **params).shape == ()
    assert ref.grad(np.zeros((0, 3)), **params).shape == (0, 3)
    assert ref.forward([0.25, -0.25], **params).shape == (2,)
    assert ref.forward(np.arange(3), **params).dtype == np.float64


def test_parameter_handling():
    ref = R.ELEMENTWISE["threshold"]
    assert ref.required == ("threshold", "value")
    with pytest.raises(TypeError):
        ref.forward(np.zeros(2))
    with pytest.raises(TypeError):
        ref.forward(np.zeros(2), threshold=0.0)
    with pytest.raises(TypeError):
        R.ELEMENTWISE["relu"].forward(np.zeros(2), alpha=1.0)
    with pytest.raises(ValueError):
        R.ELEMENTWISE["gelu"].forward(np.zeros(2), approximate="erf")
    with pytest.raises(ValueError):
        R.ELEMENTWISE["celu"].forward(np.zeros(2), alpha=0.0)
    assert R.ELEMENTWISE["softplus"].params == {"beta": 1.0, "threshold": 20.0}
    assert R.ELEMENTWISE["leaky_relu"].params == {"negative_slope": 0.01}
    assert R.ELEMENTWISE["hardtanh"].params == {"min_val": -1.0, "max_val": 1.0}
    assert R.ELEMENTWISE["gelu"].params == {"approximate": "none"}
    assert all(not r.required for n, r in R.ELEMENTWISE.items() if n != "threshold")


KINKS = [
    ("relu", {}, [(0.0, 0.0, 0.0)]),
    ("relu6", {}, [(0.0, 0.0, 0.0), (6.0, 6.0, 0.0)]),
    ("leaky_relu", {}, [(0.0, 0.0, 0.01)]),
    ("elu", {"alpha": 0.3}, [(0.0, 0.0, 0.3)]),
    ("celu", {"alpha": 2.0}, [(0.0, 0.0, 1.0)]),
    ("selu", {}, [(0.0, 0.0, SELU_SCALE_ALPHA)]),
    ("hardtanh", {}, [(-1.0, -1.0, 0.0), (1.0, 1.0, 0.0)]),
    ("hardsigmoid", {}, [(-3.0, 0.0, 0.0), (3.0, 1.0, 0.0)]),
    ("hardswish", {}, [(-3.0, 0.0, 0.0), (3.0, 3.0, 1.0), (-1.5, -0.375, 0.0)]),
    ("softshrink", {}, [(0.5, 0.0, 0.0), (-0.5, 0.0, 0.0)]),
    ("hardshrink", {}, [(0.5, 0.0, 0.0), (-0.5, 0.0, 0.0)]),
    ("threshold", {"threshold": 1.0, "value": 7.0}, [(1.0, 7.0, 0.0)]),
    ("softplus", {"beta": 1.0, "threshold": 20.0}, [(20.0, math.log1p(math.exp(20.0)), 1 / (1 + math.exp(-20.0)))]),
]


@pytest.mark.parametrize("name,params,points", KINKS)
def test_kink_conventions(name, params, points):
    ref = R.ELEMENTWISE[name]
    for x, value, slope in points:
        assert ref.forward(np.array([x]), **params)[0] == pytest.approx(value, rel=1e-15)
        assert ref.grad(np.array([x]), **params)[0] == pytest.approx(slope, rel=1e-15)
    # softplus switches to x just above the threshold
    if name == "softplus":
        x = np.nextafter(20.0, 21.0)
        assert ref.forward(np.array([x]))[0] == x and ref.grad(np.array([x]))[0] == 1.0


# Points where every variant is smooth (away from kinks and parameters).
SMOOTH = np.array([-5.3, -2.7, -1.9, -1.3, -0.77, -0.21, 0.13, 0.37, 0.71, 1.6, 2.4, 4.2, 5.7])


def _smooth_points(name, params):
    avoid = [0.0, 3.0, -3.0, 6.0] + [v for v in params.values() if not isinstance(v, str)]
    avoid += [-v for v in avoid] + [0.5, -0.5]
    return [x for x in SMOOTH if min(abs(x - a) for a in avoid) > 0.05]


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_grad_is_derivative_of_forward(variant):
    name, params = variant
    ref = R.ELEMENTWISE[name]
    x = np.array(_smooth_points(name, params))
    h = 1e-5
    fd = (ref.forward(x + h, **params) - ref.forward(x - h, **params)) / (2 * h)
    np.testing.assert_allclose(ref.grad(x, **params), fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_mp_grad_is_derivative_of_mp_forward(variant):
    name, params = variant
    fwd, grad = R._MP[name]
    mparams = {k: (v if isinstance(v, str) else mpmath.mpf(v)) for k, v in
               R.ELEMENTWISE[name].resolve(params).items()}
    # numerical differentiation of a value near +-1 loses the derivative's size
    # in digits (tanh'(-30.5) ~ 1e-26): hence the high working precision
    with mpmath.workdps(90):
        for x in _smooth_points(name, params)[::2] + [-30.5]:
            xm = mpmath.mpf(x)
            d = mpmath.diff(lambda t: fwd(t, **mparams), xm)
            g = grad(xm, **mparams)
            assert abs(d - g) <= mpmath.mpf(10) ** -30 * max(abs(g), mpmath.mpf(10) ** -300), (x, d, g)


def test_mp_handles_huge_arguments():
    assert float(R.mp_forward("gelu", -1e300, approximate="tanh")) == 0.0
    assert float(R.mp_forward("gelu", 1e300)) == 1e300
    assert float(R.mp_grad("tanh", 1e300)) == 0.0
    assert R.mp_forward("sigmoid", np.inf) == 1
    assert R.mp_forward("softplus", np.inf) == mpmath.inf
    assert mpmath.isnan(R.mp_grad("mish", np.nan))
    # tanhshrink's cancellation is resolved for tiny arguments
    v = R.mp_forward("tanhshrink", 1e-100)
    assert abs(v / (mpmath.mpf(1e-100) ** 3 / 3) - 1) < 1e-40


# ---------------------------------------------------------------------------
# ulp_error
# ---------------------------------------------------------------------------


def test_ulp_error_basics():
    one = 1.0
    assert R.ulp_error(np.nextafter(one, 2.0), one, np.float64) == 1.0
    assert R.ulp_error(np.nextafter(one, 0.0), one, np.float64) == 0.5  # ulp(1) = 2**-52
    assert R.ulp_error(one, np.nextafter(one, 0.0), np.float64) == 1.0  # ulp(1 - 2**-53) = 2**-53
    assert R.ulp_error(np.float32(1.0), 1.0 + 2.0**-24, np.float32) == 0.5
    assert R.ulp_error(0.0, 5e-324, np.float64) == 1.0
    assert R.ulp_error(np.float32(0.0), 2.0**-149, np.float32) == 1.0
    assert R.ulp_error(np.float32(0.0), 1e-50, np.float32) == pytest.approx(1e-50 / 2.0**-149)
    got = R.ulp_error(
        np.array([np.nan, np.inf, -np.inf, np.inf, np.nan, 1.0, np.inf]),
        np.array([np.nan, np.inf, np.inf, 1.0, 1.0, np.nan, 1e300]),
        np.float64,
    )
    np.testing.assert_array_equal(got, [0, 0, np.inf, np.inf, np.inf, np.inf, np.inf])
    # float32 overflow: the exact value rounds to inf in float32
    assert R.ulp_error(np.float32(np.inf), 3.5e38, np.float32) == 0.0
    assert R.ulp_error(np.float32(3.4028235e38), 3.5e38, np.float32) > 1
    assert R.ulp_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.float64).shape == (2,)


def test_ulp_error_with_mpf():
    with mpmath.workdps(50):
        third = mpmath.mpf(1) / 3
        e = R.ulp_error(np.float64(1 / 3), third, np.float64)
        assert 0 < e[()] <= 0.5
        e32 = R.ulp_error(np.float32(1 / 3), [third, third], np.float32)
        assert e32.shape == (2,) and np.all(e32 <= 0.5)
        assert R.ulp_error(np.nan, mpmath.mpf("nan"), np.float64)[()] == 0
        assert R.ulp_error(np.inf, mpmath.inf, np.float64)[()] == 0
        assert R.ulp_error(1.0, mpmath.inf, np.float64)[()] == np.inf
        assert R.ulp_error(0.0, mpmath.mpf(2) ** -1074, np.float64)[()] == 1.0


# ---------------------------------------------------------------------------
# Row-wise references
# ---------------------------------------------------------------------------

ROWS = [
    [0.0, 1.0, 2.0, 3.0],
    [-700.0, 0.0, -745.0, 2.5],
    [1e-20, -1e-20, 0.0, 5e-324],
    [40.0, -40.0, 39.0, 1.0],
    [-1e300, 1e300, 0.0, 1.0],
    [-np.inf, 0.5, -np.inf, 0.25],
    [1000.0, 1000.0, 999.0, 1000.0 - 2**-42],
    [-3.0, -3.0, -3.0, -3.0],
]


def _mp_softmax_row(row, neg=False):
    with mpmath.workdps(60):
        xs = [(-1 if neg else 1) * mpmath.mpf(v) for v in row]
        m = max(xs)
        ex = [mpmath.exp(v - m) if v != -mpmath.inf else mpmath.mpf(0) for v in xs]
        s = sum(ex)
        return [e / s for e in ex], [(v - m) - mpmath.log(s) if v != -mpmath.inf else -mpmath.inf for v in xs]


def _close_to_mp(got, exact):
    for g, e in zip(got, exact):
        if e == -mpmath.inf:
            assert g == -np.inf
        elif e == 0 or abs(e) < TINY:
            assert R.ulp_error(g, float(e), np.float64) <= 2
        else:
            assert abs((mpmath.mpf(g) - e) / e) <= 1e-15, (g, e)


@pytest.mark.parametrize("row", ROWS)
def test_softmax_family_against_mpmath(row):
    x = np.array(row)
    sm, lsm = _mp_softmax_row(row)
    _close_to_mp(R.softmax(x), sm)
    _close_to_mp(R.log_softmax(x), lsm)
    smin, _ = _mp_softmax_row(row, neg=True)
    if np.all(np.isfinite(x)):
        _close_to_mp(R.softmin(x), smin)


def test_softmax_axes_and_shapes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5)) * 10
    for f in (R.softmax, R.log_softmax, R.softmin):
        for axis in (0, 1, 2, -1, -2):
            y = f(x, axis=axis)
            assert y.shape == x.shape
            moved = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
            rows = np.array([f(r) for r in moved]).reshape(np.moveaxis(x, axis, -1).shape)
            np.testing.assert_array_equal(y, np.moveaxis(rows, -1, axis))
    np.testing.assert_allclose(R.softmax(x, axis=1).sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.exp(R.log_softmax(x)), R.softmax(x), rtol=1e-14)
    np.testing.assert_array_equal(R.softmin(x, axis=0), R.softmax(-x, axis=0))


def test_softmax_nonfinite_rows():
    x = np.array([[-np.inf] * 3, [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [-np.inf, 0.0, np.inf]])
    with np.errstate(all="raise"):
        for f in (R.softmax, R.log_softmax):
            assert np.all(np.isnan(f(x)))
        assert np.all(np.isnan(R.softmin(x)[[0, 2, 3]]))  # softmin's -inf row is [inf, ...]
        g = np.ones_like(x)
        for vjp in (R.softmax_vjp, R.log_softmax_vjp, R.softmin_vjp):
            assert np.all(np.isnan(vjp(g, x)[[2, 3]]))


def test_softmax_where():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, -1.0, 0.5, 2.0], [7.0, 8.0, 9.0, 10.0]])
    where = np.array([[True, False, True, True], [True, True, True, True], [False, False, False, False]])
    with np.errstate(all="raise"):
        sm = R.softmax(x, where=where)
        lsm = R.log_softmax(x, where=where)
        smin = R.softmin(x, where=where)
    for i in range(2):
        keep = where[i]
        np.testing.assert_array_equal(sm[i][keep], R.softmax(x[i][keep]))
        np.testing.assert_array_equal(lsm[i][keep], R.log_softmax(x[i][keep]))
        np.testing.assert_array_equal(smin[i][keep], R.softmin(x[i][keep]))
        assert np.all(sm[i][~keep] == 0) and np.all(lsm[i][~keep] == -np.inf)
    assert np.all(sm[2] == 0) and np.all(smin[2] == 0) and np.all(lsm[2] == -np.inf)
    # a masked NaN or inf does not matter; a broadcast mask along the other axis
    y = np.array([[np.nan, 1.0, np.inf, 2.0]])
    mask = np.array([False, True, False, True])
    np.testing.assert_array_equal(R.softmax(y, where=mask)[0][mask], R.softmax(np.array([1.0, 2.0])))
    col = np.array([[True], [False], [True]])
    np.testing.assert_array_equal(R.softmax(x, axis=0, where=col)[1], 0.0)
    g = np.arange(12.0).reshape(3, 4)
    for vjp, f in ((R.softmax_vjp, R.softmax), (R.log_softmax_vjp, R.log_softmax), (R.softmin_vjp, R.softmin)):
        gx = vjp(g, x, where=where)
        assert np.all(gx[~where] == 0)
        for i in range(2):
            keep = where[i]
            np.testing.assert_allclose(gx[i][keep], vjp(g[i][keep], x[i][keep]), rtol=1e-15, atol=1e-16)


def _fd_jacobian(f, x, h=1e-6):
    n = x.shape[-1]
    jac = np.empty(x.shape + (n,))
    for j in range(n):
        d = np.zeros(n)
        d[j] = h
        jac[..., :, j] = (f(x + d) - f(x - d)) / (2 * h)
    return jac


@pytest.mark.parametrize(
    "f,jac,vjp",
    [
        (R.softmax, R.softmax_jacobian, R.softmax_vjp),
        (R.log_softmax, R.log_softmax_jacobian, R.log_softmax_vjp),
        (R.softmin, R.softmin_jacobian, R.softmin_vjp),
    ],
)
def test_jacobians_and_vjps(f, jac, vjp):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 5)) * 2
    j = jac(x)
    assert j.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(j, _fd_jacobian(f, x), rtol=1e-7, atol=1e-9)
    g = rng.normal(size=x.shape)
    np.testing.assert_allclose(vjp(g, x), np.einsum("...i,...ij->...j", g, j), rtol=1e-12, atol=1e-15)
    # along another axis
    xt = np.moveaxis(x, -1, 0)
    assert jac(xt, axis=0).shape == (2, 3, 5, 5)  # moveaxis(x, axis, -1).shape + (n,)
    np.testing.assert_allclose(jac(xt, axis=0), j, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(vjp(np.moveaxis(g, -1, 0), xt, axis=0), np.moveaxis(vjp(g, x), -1, 0),
                               rtol=1e-15, atol=1e-300)


def test_softmax_jacobian_diagonal_is_accurate():
    # y (1 - y) for a dominant entry must not cancel: 1 - y ~ 1e-10
    x = np.array([0.0, -23.0, -24.0])
    j = R.softmax_jacobian(x)
    with mpmath.workdps(50):
        ex = [mpmath.exp(mpmath.mpf(v)) for v in x]
        y0 = ex[0] / sum(ex)
        exact = y0 * (1 - y0)
    assert abs((mpmath.mpf(j[0, 0]) - exact) / exact) < 1e-15


def test_glu():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 6)) * 4
    a, b = x[:, :3], x[:, 3:]
    np.testing.assert_allclose(R.glu(x), a / (1 + np.exp(-b)), rtol=1e-15)
    np.testing.assert_allclose(R.glu(x.T, axis=0), (a / (1 + np.exp(-b))).T, rtol=1e-15)
    g = rng.normal(size=(3, 3))
    gx = R.glu_vjp(g, x)
    assert gx.shape == x.shape
    fd = np.empty_like(x)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = h
        fd[idx] = np.sum(g * (R.glu(x + d) - R.glu(x - d))) / (2 * h)
    np.testing.assert_allclose(gx, fd, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(R.glu_vjp(g.T, x.T, axis=0), gx.T, rtol=1e-15)
    with pytest.raises(ValueError):
        R.glu(np.zeros((2, 5)))
    with np.errstate(all="raise"):
        y = R.glu(np.array([1.0, -np.inf, 2.0, np.inf, -np.inf, -np.inf]))
    # -inf * sigmoid(-inf) is -inf * 0: NaN, as in PyTorch
    assert y[0] == 1.0 and np.isnan(y[1]) and y[2] == 0.0


def test_maxout():
    x = np.array([[1.0, 5.0, 2.0, 5.0, 0.0, -1.0], [np.nan, 1.0, 3.0, 3.0, -np.inf, -np.inf]])
    np.testing.assert_array_equal(R.maxout(x, 2), [[5.0, 5.0, 0.0], [np.nan, 3.0, -np.inf]])
    np.testing.assert_array_equal(R.maxout(x, 3), [[5.0, 5.0], [np.nan, 3.0]])
    np.testing.assert_array_equal(R.maxout(x.T, 3, axis=0), R.maxout(x, 3).T)
    g = np.array([[10.0, 20.0], [30.0, 40.0]])
    np.testing.assert_array_equal(
        R.maxout_vjp(g, x, 3), [[0, 10.0, 0, 20.0, 0, 0], [30.0, 0, 0, 40.0, 0, 0]]
    )
    x2 = np.array([[2.0, 1.0, np.nan, np.nan], [3.0, 3.0, 4.0, 4.0]])
    np.testing.assert_array_equal(
        R.maxout_vjp(np.array([[1.0, 2.0], [3.0, 4.0]]), x2, 2), [[1.0, 0, 2.0, 0], [3.0, 0, 4.0, 0]]
    )
    np.testing.assert_array_equal(R.maxout_vjp(g.T, x.T, 3, axis=0), R.maxout_vjp(g, x, 3).T)
    rng = np.random.default_rng(4)
    big = rng.normal(size=(4, 12, 3))
    brute = np.array([[[max(big[i, k * 4:(k + 1) * 4, j]) for j in range(3)] for k in range(3)] for i in range(4)])
    np.testing.assert_array_equal(R.maxout(big, 4, axis=1), brute)
    with pytest.raises(ValueError):
        R.maxout(x, 4)


def test_prelu():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4))
    x[0, 0, 0] = 0.0
    w = np.array([0.25, -0.5, 2.0])
    y = R.prelu(x, w)
    brute = np.where(x > 0, x, x * w[None, :, None])
    np.testing.assert_array_equal(y, brute)
    np.testing.assert_array_equal(R.prelu(x, np.array([0.3])), np.where(x > 0, x, 0.3 * x))
    w4 = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(R.prelu(x, w4, axis=-1), np.where(x > 0, x, x * w4))
    np.testing.assert_array_equal(R.prelu(np.array([-2.0, 3.0]), np.array([0.5])), [-1.0, 3.0])
    with pytest.raises(ValueError):
        R.prelu(np.array([-2.0, 3.0]), np.array([0.5, 0.1]))
    with pytest.raises(ValueError):
        R.prelu(x, np.array([0.5, 0.1]))

    g = rng.normal(size=x.shape)
    gx, gw = R.prelu_vjp(g, x, w)
    assert gw.shape == w.shape
    np.testing.assert_array_equal(gx, np.where(x > 0, g, g * w[None, :, None]))
    h = 1e-6
    fd_w = np.empty(3)
    for c in range(3):
        d = np.zeros(3)
        d[c] = h
        fd_w[c] = np.sum(g * (R.prelu(x, w + d) - R.prelu(x, w - d))) / (2 * h)
    np.testing.assert_allclose(gw, fd_w, rtol=1e-7, atol=1e-9)
    gx1, gw1 = R.prelu_vjp(g, x, np.array([0.3]))
    assert gw1.shape == (1,)
    np.testing.assert_allclose(gw1[0], np.sum(g * np.where(x > 0, 0.0, x)), rtol=1e-14)
    _, gw2 = R.prelu_vjp(g, x, np.array(0.3))
    assert gw2.shape == ()
    gx3, gw3 = R.prelu_vjp(g, x, w4, axis=-1)
    np.testing.assert_allclose(gw3, np.sum(g * np.where(x > 0, 0.0, x), axis=(0, 1)), rtol=1e-14)
    gxn, _ = R.prelu_vjp(np.ones(2), np.array([np.nan, -1.0]), np.array([0.5]))
    assert np.isnan(gxn[0]) and gxn[1] == 0.5
    with np.errstate(all="raise"):
        assert R.prelu(np.array([-np.inf]), np.array([0.0]))[0] == 0.0
