"""fastact._vmath, the vectorizable math core: special values, accuracy,
Python execution, and vectorization of a parallel loop.

The full float32 sweep (44 M inputs per function) is ``bench/vmath_accuracy.py``;
here a smaller strided sample of the bit patterns and the range-reduction
boundaries.
"""

from __future__ import annotations

import math
import platform
import re

import mpmath
import numpy as np
import pytest
import scipy.special
from numba import njit, prange

from fastact import _vmath

# name: (float64 reference, mpmath reference, domain of the mpmath check)
TABLE = {
    "exp": (np.exp, mpmath.exp, (-745.0, 709.7)),
    "expm1": (np.expm1, mpmath.expm1, (-40.0, 709.7)),
    "log": (np.log, mpmath.log, (0.0, 1e300)),
    "log1p": (np.log1p, mpmath.log1p, (-1.0, 1e300)),
    "tanh": (np.tanh, mpmath.tanh, (-25.0, 25.0)),
    "erfc": (scipy.special.erfc, mpmath.erfc, (-6.0, 27.0)),
}
NAMES = list(TABLE)

inf, nan = np.inf, np.nan
F32_MAX = float(np.finfo(np.float32).max)
F64_MAX = float(np.finfo(np.float64).max)
TINY32 = 2.0**-149
TINY64 = 5e-324

# (function, x, exact result), for both dtypes unless the value is out of a
# dtype's range; -0.0 results are checked with their sign
SPECIAL = [
    ("exp", nan, nan), ("exp", inf, inf), ("exp", -inf, 0.0), ("exp", 0.0, 1.0),
    ("exp", -0.0, 1.0), ("exp", 1000.0, inf), ("exp", -1000.0, 0.0),
    ("expm1", nan, nan), ("expm1", inf, inf), ("expm1", -inf, -1.0), ("expm1", 0.0, 0.0),
    ("expm1", -0.0, -0.0), ("expm1", 1000.0, inf), ("expm1", -1000.0, -1.0),
    ("expm1", 1e-30, 1e-30), ("expm1", -1e-30, -1e-30),
    ("log", nan, nan), ("log", inf, inf), ("log", -inf, nan), ("log", 0.0, -inf),
    ("log", -0.0, -inf), ("log", -1.0, nan), ("log", -1e-40, nan), ("log", 1.0, 0.0),
    ("log1p", nan, nan), ("log1p", inf, inf), ("log1p", -inf, nan), ("log1p", -1.0, -inf),
    ("log1p", -1.5, nan), ("log1p", 0.0, 0.0), ("log1p", -0.0, -0.0),
    ("log1p", 1e-30, 1e-30), ("log1p", -1e-30, -1e-30),
    ("tanh", nan, nan), ("tanh", inf, 1.0), ("tanh", -inf, -1.0), ("tanh", 0.0, 0.0),
    ("tanh", -0.0, -0.0), ("tanh", 30.0, 1.0), ("tanh", -30.0, -1.0),
    ("tanh", 1e-30, 1e-30), ("tanh", -1e-30, -1e-30),
    ("erfc", nan, nan), ("erfc", inf, 0.0), ("erfc", -inf, 2.0), ("erfc", 0.0, 1.0),
    ("erfc", -0.0, 1.0), ("erfc", 30.0, 0.0), ("erfc", -30.0, 2.0), ("erfc", 1e-30, 1.0),
]


def _same(a, b):
    """Equal as floats, NaN equal to NaN, and zeros of the same sign."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


@pytest.mark.parametrize("name,x,exact", SPECIAL, ids=[f"{n}({x})" for n, x, _ in SPECIAL])
def test_special_values(name, x, exact, dtype):
    y = getattr(_vmath, name)(dtype(x))
    assert type(y) is float or isinstance(y, dtype)
    exact = float(dtype(exact))
    assert _same(float(y), exact), f"{name}({x!r}) = {y!r}, not {exact!r}"


@pytest.mark.parametrize("name", NAMES)
def test_extreme_finite_inputs(name, dtype):
    """The largest and smallest inputs: no spurious overflow, NaN or flush."""
    big = F32_MAX if dtype == np.float32 else F64_MAX
    tiny = TINY32 if dtype == np.float32 else TINY64
    ref = TABLE[name][0]
    for x in (big, -big, tiny, -tiny, 1.5 * tiny * 2**52 if dtype == np.float64 else 1.5e-38):
        with np.errstate(all="ignore"):
            exact = dtype(ref(np.float64(x)))
        y = getattr(_vmath, name)(dtype(x))
        if np.isfinite(exact) and exact != 0:
            assert abs(float(y) - float(exact)) <= 2 * float(np.spacing(abs(exact))), (name, x, y, exact)
        else:
            assert _same(float(y), float(exact)), (name, x, y, exact)


def test_exp_gradual_underflow(dtype):
    """Subnormal results are rounded, not flushed: within one subnormal step."""
    step = TINY32 if dtype == np.float32 else TINY64
    lo, hi = (-103.9, -87.4) if dtype == np.float32 else (-744.4, -708.5)
    x = np.linspace(lo, hi, 2001).astype(dtype)
    y = np.array([_vmath.exp(v) for v in x])
    exact = np.exp(x.astype(np.longdouble))
    assert (y > 0).all()
    assert float(np.max(np.abs(y - exact) / step)) <= 1.0


def test_expm1_near_minus_one():
    """Where e^x is below an ulp of 1, expm1 rounds to -1 or to -1 + 2^-24."""
    x = np.linspace(-18.0, -16.0, 4001).astype(np.float32)
    y = np.array([_vmath.expm1(v) for v in x])
    assert np.array_equal(y, np.expm1(x.astype(np.float64)).astype(np.float32))


# --- float32: a strided sample of the bit patterns ----------------------------

def _loop(f):
    @njit
    def run(x, out):
        for i in range(x.size):
            out[i] = f(x[i])

    return run


def _around(values, width):
    b = np.asarray(values, np.float32).view(np.int32).astype(np.int64)
    runs = (b[:, None] + np.arange(-width, width + 1)[None, :]).ravel()
    return runs.astype(np.int32).view(np.float32)


def _inputs32(name):
    """Every 9973rd float32 bit pattern and runs across the reduction boundaries."""
    strided = (np.arange(0, 1 << 32, 9973, dtype=np.uint64)).astype(np.uint32).view(np.float32)
    ln2 = math.log(2)
    if name in ("exp", "expm1"):
        edges = [(k + 0.5) * ln2 for k in range(-151, 129)] + [88.72284, -87.33655, -16.6, -17.32868]
    elif name == "log":
        edges = [math.sqrt(2) * 2.0**k for k in range(-149, 128)] + [1.0]
    elif name == "log1p":
        edges = [math.sqrt(2) * 2.0**k - 1 for k in range(-24, 128)] + [-1.0, 0.0, 2.0**24]
    elif name == "tanh":
        edges = [0.5 * (k + 0.5) * ln2 for k in range(30)] + [9.0, 0.0]
        edges += [-v for v in edges]
    else:
        edges = [0.0, 0.5, 1.0, 2.0, 9.2, 10.05]
        edges += [-v for v in edges]
    return np.concatenate([strided, _around(edges, 64)])


def _ulp_errors32(y, exact):
    """Error in ulps of float32 where the exact result is normal and finite."""
    a = np.abs(exact)
    normal = (a >= 2.0**-126) & (a <= F32_MAX) & np.isfinite(y)
    e = np.frexp(a[normal])[1] - 1
    return np.abs(y[normal].astype(np.float64) - exact[normal]) / np.ldexp(1.0, e - 23), normal


@pytest.mark.parametrize("name", NAMES)
def test_float32_accuracy(name):
    x = _inputs32(name)
    y = np.empty_like(x)
    _loop(getattr(_vmath, name))(x, y)
    with np.errstate(all="ignore"):
        exact = TABLE[name][0](x.astype(np.float64))
    # special classes: NaN where and only where the exact value is NaN; an
    # exact value beyond the float32 range gives infinity
    assert np.array_equal(np.isnan(y), np.isnan(exact))
    over = np.abs(exact) >= F32_MAX + 2.0**103
    assert np.array_equal(np.isinf(y), over | np.isinf(exact))
    err, normal = _ulp_errors32(y, exact)
    i = int(np.argmax(err))
    assert err[i] <= 1.0, f"{name}({x[normal][i]!r}): {err[i]:.3f} ulp"
    sub = ~normal & np.isfinite(exact) & (np.abs(exact) < 2.0**-126)
    if sub.any():
        assert np.max(np.abs(y[sub] - exact[sub])) <= TINY32


# --- float64 against mpmath ----------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_float64_against_mpmath(name):
    _, mpref, (lo, hi) = TABLE[name]
    rng = np.random.default_rng(3)
    if name in ("log", "log1p"):
        x = np.concatenate([np.exp(rng.uniform(-700, 690, 150)), rng.uniform(lo, 3, 150)])
    else:
        x = np.concatenate([rng.uniform(lo, hi, 150), rng.uniform(-1, 1, 100),
                            np.exp(rng.uniform(-700, 0, 50))])
    mpmath.mp.dps = 40
    for v in x:
        v = float(v)
        if v <= lo and name in ("log", "log1p"):
            continue
        exact = mpref(mpmath.mpf(v))
        y = getattr(_vmath, name)(np.float64(v))
        if abs(exact) < 2.0**-1022:  # subnormal: within one step
            assert abs(mpmath.mpf(float(y)) - exact) <= TINY64, (name, v, y)
            continue
        err = float(abs((mpmath.mpf(float(y)) - exact) / exact))
        assert err <= 2e-16, f"{name}({v!r}) = {y!r}: relative error {err:.3g}"


# --- run as Python -------------------------------------------------------------

PY_INPUTS = [1.5, -0.3, 0.0, -0.0, 1e-3, 0.7071, 20.0, -20.0, 88.5, -95.0, 1e-40,
             -1.0, 0.5, inf, -inf, nan]


@pytest.mark.parametrize("name", NAMES)
def test_python_execution_matches_compiled(name, dtype):
    """``py_func`` (what the CUDA simulator runs) gives the compiled bits."""
    f = getattr(_vmath, name)
    for v in PY_INPUTS:
        x = dtype(v)
        with np.errstate(all="ignore"):
            compiled = f(x)
            python = f.py_func(x)
        assert isinstance(python, dtype), (name, v, type(python))
        if np.isnan(compiled):
            assert np.isnan(python)
        else:
            assert np.array(compiled, dtype).tobytes() == np.array(python, dtype).tobytes(), \
                (name, v, compiled, python)


def test_fma_python_matches_compiled(dtype):
    @njit
    def fused(a, b, c):
        return _vmath.fma(a, b, c)

    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 2000)).astype(dtype)
    c = -(a * b).astype(dtype)  # the rounding error of a*b: the hard case
    c[::2] = rng.standard_normal(1000).astype(dtype)
    for ai, bi, ci in zip(a, b, c, strict=True):
        assert _vmath.fma(ai, bi, ci) == fused(ai, bi, ci)


def test_where_is_a_select(dtype):
    """where(c, a, b): a if c else b, compiled as one select (NaN in a or b
    passes through like any value)."""
    @njit
    def pick(c, a, b):
        return _vmath.where(c, a, b)

    a, b = dtype(1.5), dtype(np.nan)
    assert pick(True, a, b) == a and np.isnan(pick(False, a, b))
    assert _vmath.where(True, a, b) == a and np.isnan(_vmath.where(False, a, b))
    ir = "".join(pick.inspect_llvm().values())
    assert re.search(r"= select i1 ", ir)


def test_ordered_integers_order_as_the_floats(dtype):
    """ordered(x) orders as x does (-0 just below +0, NaN beyond +-inf by its
    sign bit), compiled and in Python, and from_ordered inverts it."""
    @njit
    def keys(v):
        k = np.empty(v.size, np.int64)
        for i in range(v.size):
            k[i] = _vmath.ordered(v[i])
        return k

    @njit
    def back(k, like):
        return _vmath.from_ordered(k, like)

    info = np.finfo(dtype)
    v = np.array([-np.inf, -info.max, -1.5, -info.tiny, -info.smallest_subnormal, -0.0, 0.0,
                  info.smallest_subnormal, info.tiny, 1.0, info.max, np.inf], dtype)
    rng = np.random.default_rng(7)
    v = np.concatenate([v, np.sort(rng.standard_normal(500).astype(dtype) * 1e3)])
    v = v[np.argsort(v, kind="stable")]  # -0 stays before +0
    k = keys(v)
    assert (np.diff(k) > 0).all()
    assert [int(_vmath.ordered(x)) for x in v] == list(k)
    nan, neg_nan = dtype(np.nan), -dtype(np.nan)
    assert np.signbit(neg_nan) and not np.signbit(nan)
    assert keys(np.array([nan], dtype))[0] > k.max() and keys(np.array([neg_nan], dtype))[0] < k.min()
    for x, key in zip(v, k, strict=True):
        y = back(key, dtype(0))
        assert type(y) is type(x) or isinstance(y, float)
        assert np.array(y, dtype).tobytes() == x.tobytes()
        assert _vmath.from_ordered(key, dtype(0)).tobytes() == x.tobytes()


# --- compiled code -------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_float32_has_no_float64_arithmetic(name):
    """The float32 path computes in float32 only (the user's function is not
    cached, so that its LLVM IR, callees inlined, can be inspected)."""
    f = getattr(_vmath, name)

    @njit
    def user(x):
        return f(x)

    user(np.float32(0.5))
    ir = user.inspect_llvm(user.signatures[0])
    body = ir[ir.index("define"):]
    body = re.sub(r"define[^\n]*cpython[\s\S]*?\n}\n", "", body)  # the boxing wrapper
    assert "float" in body
    assert not re.search(r"\b(fadd|fsub|fmul|fdiv|fpext|call)\b[^\n]*double", body)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 assembly")
def test_parallel_loop_vectorizes():
    """out[i] = exp(x[i]) in a prange loop becomes packed SIMD code, no calls."""
    f = _vmath.exp

    @njit(parallel=True)
    def loop(x, out):
        for i in prange(x.size):
            out[i] = f(x[i])

    x = np.linspace(-5, 5, 1000).astype(np.float32)
    out = np.empty_like(x)
    loop(x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=2e-7)
    asm = loop.inspect_asm(loop.signatures[0])
    packed = re.findall(r"\bv(?:fmadd|fmsub|fnmadd|mul|add|sub)\w*ps\s+%[xyz]mm", asm)
    assert len(packed) >= 10, "no packed float32 arithmetic in the loop"
    assert re.search(r"%[yz]mm", asm), "no 256- or 512-bit vectors"
    assert not re.search(r"call\w*\s+\S*(exp|log)", asm)


# --- the float64 primitives of the float32 functions -----------------------

@pytest.mark.parametrize("name, mp_func, lo, hi, bound", [
    ("exp_wide", mpmath.exp, -700.0, 700.0, 2.0**-44),
    ("expm1_wide", mpmath.expm1, -40.0, 88.0, 2.0**-41),
    ("exp_lean", mpmath.exp, -700.0, 700.0, 2.0**-33.5),
    ("exp_lean_in_range", mpmath.exp, -708.0, 709.0, 2.0**-33.5),
    ("expm1_lean", mpmath.expm1, -40.0, 88.0, 2.0**-30.5),
])
def test_wide_primitives_against_mpmath(name, mp_func, lo, hi, bound):
    """exp_wide / expm1_wide / exp_lean (and exp_lean_in_range, without its
    clamps) / expm1_lean: relative error below
    2^-44 / 2^-41 / 2^-33.5 / 2^-30.5 (the float32 functions round their
    float64 results once: this is 2^-17 ulp, or 2^-6 for the lean ones,
    used only without cancellation)."""
    f = getattr(_vmath, name)
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(lo, hi, 3000), rng.uniform(-0.4, 0.4, 1000),
                        np.ldexp(1.0, -np.arange(1, 60)), -np.ldexp(1.0, -np.arange(1, 60)),
                        [0.3466, -0.3466, 0.3467, -0.3467, np.log(2) / 2, -np.log(2) / 2]])
    x = x[(x >= lo) & (x <= hi)]
    with mpmath.workdps(30):
        exact = np.array([float(mp_func(mpmath.mpf(float(t)))) for t in x])
    got = np.array([f(float(t)) for t in x])
    rel = np.abs(got - exact) / np.abs(exact)
    assert rel.max() < bound, (x[np.argmax(rel)], rel.max())


def test_wide_primitives_special_values():
    assert _vmath.exp_wide(-np.inf) == 0.0 and _vmath.exp_wide(-709.0) == 0.0
    assert _vmath.exp_lean(-np.inf) == 0.0 and math.isnan(_vmath.exp_lean(np.nan))
    assert _vmath.exp_lean(0.0) == 1.0
    assert _vmath.exp_lean_in_range(0.0) == 1.0 and math.isnan(_vmath.exp_lean_in_range(np.nan))
    assert _vmath.exp_lean_in_range(-708.0) > 0 and np.isfinite(_vmath.exp_lean_in_range(709.0))
    assert _vmath.expm1_lean(-np.inf) == -1.0 and _vmath.expm1_lean(0.0) == 0.0
    assert _vmath.exp_wide(np.inf) == np.inf or _vmath.exp_wide(np.inf) > 1e307
    assert math.isnan(_vmath.exp_wide(np.nan)) and math.isnan(_vmath.expm1_wide(np.nan))
    assert _vmath.expm1_wide(-np.inf) == -1.0 and _vmath.expm1_wide(0.0) == 0.0


# --- the unrounded float32 pairs -------------------------------------------

@njit
def _pair_sums(kind, x):
    out = np.empty(x.size)
    for i in range(x.size):
        if kind == 0:  # log1p of exp_pair's e^-|x|, as softplus uses it
            eh, el = _vmath.exp_pair32(-abs(x[i]), 0)
            hi, lo = _vmath.log1p_pair32(eh, el)
            out[i] = np.float64(hi) + np.float64(lo)
        else:
            q, t, inv = _vmath.tanh_parts32(abs(x[i]))
            out[i] = np.float64(q) + np.float64(t) * np.float64(inv)
    return out


@pytest.mark.parametrize("kind, lo, hi, bound", [
    (0, 0.0, 80.0, 2.0**-26.3), (1, 0.0, 12.0, 2.0**-25.8), (1, 0.6, 12.0, 2.0**-27.5),
], ids=["log1p_pair32", "tanh_parts32", "tanh_parts32-from-0.6"])
def test_float32_pairs_against_mpmath(kind, lo, hi, bound):
    """The pairs that let softplus and tanhshrink round once in float32
    arithmetic: relative error of the unrounded sum (log1p of e^-|x|
    includes the exponential's 2^-28; below e^-80 its low part is
    subnormal, and its relative precision is that of a subnormal)."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(lo, hi, 3000), np.linspace(lo, min(hi, 1.5), 3000),
                        np.ldexp(1.0, -np.arange(0, 40)), [0.3466, 0.6, 0.8814, 0.8817, 80.0]])
    x32 = x[(x > 0) & (x >= lo) & (x <= hi)].astype(np.float32)
    got = _pair_sums(kind, x32)
    with mpmath.workdps(40):
        if kind == 0:
            exact = [float(mpmath.log1p(mpmath.exp(-mpmath.mpf(float(t))))) for t in x32]
        else:
            exact = [float(mpmath.tanh(mpmath.mpf(float(t)))) for t in x32]
    exact = np.array(exact)
    rel = np.abs(got - exact) / exact
    assert rel.max() < bound, (x32[np.argmax(rel)], rel.max())


# --- the softmax family's float32 exponential ----------------------------------

@njit
def _exp_row32_loop(x, lo, out):
    for i in range(x.size):
        out[i] = _vmath.exp_row32(x[i], lo[i])


def test_exp_row32():
    """e^(x + xlo) 2^32 for float32 x <= 0, |xlo| <= ulp(x) / 2: within 0.7 ulp
    of the float64 value over a strided sample of [-104.5, 0] and runs across
    the reduction boundaries, every result a normal number; below -104.5 the
    value at -104.5 (xlo ignored, NaN at x = -inf), NaN gives NaN."""
    b = np.arange(0, 1 << 31, 211, dtype=np.uint64).astype(np.uint32) | np.uint32(1 << 31)
    x = np.concatenate([b.view(np.float32),
                        _around([(k + 0.5) * math.log(2) for k in range(-151, 0)], 32)])
    x = x[np.isfinite(x) & (x >= -104.5) & (x <= 0)]
    lo = (np.random.default_rng(3).uniform(-0.5, 0.5, x.size) * np.spacing(x)).astype(np.float32)
    out = np.empty_like(x)
    _exp_row32_loop(x, lo, out)
    exact = np.exp(x.astype(np.float64) + lo.astype(np.float64)) * _vmath.EXP_ROW_SCALE  # the sum is exact
    assert np.all(out >= np.finfo(np.float32).tiny)
    err = np.abs(out - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    i = int(np.argmax(err))
    assert err[i] <= 0.7, f"exp_row32({x[i]!r}, {lo[i]!r}): {err[i]:.3f} ulp"
    special = np.array([np.nan, -np.inf, 0.0, -200.0, -np.inf, -104.5], np.float32)
    special_lo = np.array([0, 0, 0, 1, np.nan, 0], np.float32)  # x - max at x = -inf: -inf, NaN
    out = np.empty_like(special)
    _exp_row32_loop(special, special_lo, out)
    assert np.isnan(out[0]) and out[2] == 2.0**32
    assert out[1] == out[3] == out[4] == out[5] > 0
    # the Python execution gives the compiled values
    xs, los = x[::50000], lo[::50000]
    compiled = np.empty_like(xs)
    _exp_row32_loop(xs, los, compiled)
    python = np.array([_vmath.exp_row32(a, b) for a, b in zip(xs, los)], np.float32)
    assert np.array_equal(python, compiled)
