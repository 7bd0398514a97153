"""Float64 references for the accuracy check (``python -m fastact verify``).

Every elementwise activation is written here a second time, independently of
the kernels (nothing here uses ``fastact._math``, ``fastact._vmath`` or the
definitions): one scalar float64 function giving the value and the derivative,
built on the C library's ``exp``, ``expm1``, ``log1p``, ``tanh``, ``cosh`` and
``erfc`` with formulas chosen for accuracy rather than speed, compiled by
Numba on first use and run over arrays by one parallel loop per function,
cached on disk. ``REFERENCES[name](x, **params)`` returns both as arrays.

Accuracy: within about 1e-15 relative error of the exact value wherever that
is a normal float64, for every float64 input, and far better than the 1e-12
the float32 check needs. The tools:

* ``exp(-|x|)`` rather than ``exp(x)``, so that nothing overflows, and
  factors ``e^t`` with ``t < -700`` applied as ``e^(t/2)`` twice, so that no
  intermediate turns subnormal while the result is still normal;
* double-double arithmetic (Dekker's product) where the rounding of an
  argument would be amplified: the error of ``x*x`` in ``exp(-x*x/2)`` costs
  ``x*x/2`` relative ulps, that of ``-x/sqrt(2)`` in ``erfc`` about ``x*x``;
* near a simple interior root ``r`` of a derivative (silu', gelu' in both
  forms, mish') every closed form cancels and its relative error grows like
  ``1/|x - r|``; there ``f(r + d) = d P(d)`` with ``d = (x - rh) - rl`` (``r``
  held as the double-double ``rh + rl``) and ``P`` the Taylor polynomial of
  ``f(r + d)/d``, its coefficients computed once with mpmath (the test suite
  recomputes them). Outside the patch the closed form is accurate;
* branch conditions as PyTorch states them (softplus is ``x`` where
  ``beta*x > threshold``; the gradient conventions of SPEC section 1).

Parameters (slopes, alpha, beta, thresholds) enter as given. Where the
reference multiplies or divides by one (swish's ``beta*x``, celu's
``x/alpha``) the result is exact for the parameters the check uses: float32
parameters times float32 inputs, and ``alpha = beta = 1``.

NaN in gives NaN out; at +-inf every function returns its limit.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numba
import numpy as np

from fastact._compile import KernelFamily, jit, scalar_jit, specialize

# ---------------------------------------------------------------------------
# Constants: float64 values, or double-double (hi, lo) pairs, of the exact
# numbers (computed with mpmath; the test suite recomputes them).
# ---------------------------------------------------------------------------

_INV_SQRT2 = (0.7071067811865476, -4.833646656726457e-17)  # 1/sqrt(2)
_TWO_OVER_SQRT_PI = 1.1283791670955126
_INV_SQRT_2PI = 0.3989422804014327
# gelu(tanh) = x sigmoid(v), v = K1 x + K3 x^3 = 2 sqrt(2/pi) (x + 0.044715 x^3)
_GT_K1 = (1.5957691216057308, -9.96930880911092e-17)
_GT_K3 = (0.07135481627260025, -6.175149918155315e-19)
# SELU: scale, and scale*alpha rounded once (PyTorch's decimal constants)
_SELU_SCALE = 1.0507009873554805
_SELU_SCALE_ALPHA = 1.7580993408473768

# Root patches: the root of the derivative as (rh, rl), the half-width of the
# patch, and the coefficients c1, c2, ... of f(r + d) = c1 d + c2 d^2 + ...
# (lowest degree first); truncation error below 1e-18 relative in the patch.
# h(u) = sigmoid(u) (1 + u sigmoid(-u)): silu' and swish' (at u = beta x)
_SILU_ROOT = (-1.2784645427610737, -1.0946994183093437e-16)
_SILU_RADIUS = 0.125
_SILU_TAYLOR = (
    0.2178117057198001, 0.1466487969969469, 0.018874814223782312, -0.015222655223188032,
    -0.006606589138356696, 0.000126627410081122, 0.0007985218818397998, 0.00018570724361186496,
    -4.090534237428612e-05, -2.9733542213263917e-05, -2.942631888842464e-06, 2.346029682463866e-06,
    8.599695028268575e-07, -3.051244750055421e-08,
)
# Phi(x) + x phi(x): gelu'
_GELU_ROOT = (-0.7517915246935645, 1.4956759177009883e-17)
_GELU_RADIUS = 0.375
_GELU_TAYLOR = (
    0.4314939923140469, 0.388284982990552, -0.018199676398671087, -0.1140082332972217,
    -0.014771522148244337, 0.019421679838189067, 0.004539228379125415, -0.002239538068073497,
    -0.0007448268386746817, 0.00018633974623233514, 8.615947861116571e-05, -1.121438018842664e-05,
    -7.74846130700372e-06, 4.3284506257392273e-07, 5.702764979242107e-07, -1.6044265494246427e-09,
    -3.5459866461783865e-08, -1.396942086426202e-09, 1.90319840501314e-09, 1.4506418938779426e-10,
    -8.950037692726255e-11,
)
# the derivative of gelu(tanh)
_GELU_TANH_ROOT = (-0.7524614220710163, 3.635560509207687e-17)
_GELU_TANH_RADIUS = 0.125
_GELU_TANH_TAYLOR = (
    0.4304000910248585, 0.38751844613578895, -0.01578285352184803, -0.11394448308095899,
    -0.01661932834305256, 0.019682309459833118, 0.005261059254921912, -0.0024227318458750974,
    -0.0009274420230205449, 0.00026392764052681053, 0.00012425227802639782,
    -3.4956171694436116e-05, -1.5950896871645105e-05, 5.918611710894005e-06,
    2.4335516344299543e-06,
)
# tanh(softplus(x)) + x sech^2(softplus(x)) sigmoid(x): mish'
_MISH_ROOT = (-1.1924312145154952, -4.8484829848031044e-17)
_MISH_RADIUS = 0.125
_MISH_TAYLOR = (
    0.2669479140495345, 0.20473126408010586, 0.04190782104360987, -0.020271822716684245,
    -0.01582112656173338, -0.0033606849270232685, 0.0010924055409445854, 0.0009898181021289196,
    0.00025412936386191073, -4.1961496031696126e-05, -5.582891567360688e-05, -1.72992708103044e-05,
    9.427361327376651e-07, 2.9088199364912223e-06, 1.071676702702074e-06,
)


def _tanhshrink_series(nterms: int = 16) -> tuple:
    """Coefficients of x cosh x - sinh x = x^3 sum_k 2k/(2k+1)! x^(2k-2), k >= 1."""
    return tuple(float(Fraction(2 * k, math.factorial(2 * k + 1))) for k in range(1, nterms + 1))


_TANHSHRINK_SERIES = _tanhshrink_series()

# The Mills ratio Phi(-t)/phi(t) = (1/t) sum_k (-1)^k (2k-1)!! t^(-2k), an
# asymptotic series: for t >= 27 ten terms are exact to 1e-20.
_MILLS_SERIES = tuple(float((-1) ** k * math.prod(range(1, 2 * k, 2))) for k in range(10))

# ---------------------------------------------------------------------------
# Building blocks.
# ---------------------------------------------------------------------------

_SPLITTER = 134217729.0  # 2^27 + 1: operands must stay below ~1e300


@scalar_jit
def _two_prod(a, b):
    """a*b == p + e exactly (Dekker), for |a|, |b| < 1e300."""
    p = a * b
    c = _SPLITTER * a
    ah = c - (c - a)
    al = a - ah
    c = _SPLITTER * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@scalar_jit
def _two_sum(a, b):
    """a+b == s + e exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@scalar_jit
def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    e += ah * bl + al * bh
    s = p + e
    return s, e - (s - p)


@scalar_jit
def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    e += al + bl
    t = s + e
    return t, e - (t - s)


@scalar_jit
def _polynomial(coeffs, d):
    """sum_k coeffs[k] d^k (Horner)."""
    acc = 0.0
    for k in range(len(coeffs) - 1, -1, -1):
        acc = acc * d + coeffs[k]
    return acc


@scalar_jit
def _gauss(a, x):
    """a phi(x) = a exp(-x*x/2)/sqrt(2 pi) for |x| <= 40, with x*x taken exactly.

    Past x*x/2 = 700 the exponential is applied as exp(-x*x/4) twice, so that
    it does not turn subnormal before the product does (gelu' is normal down
    to x = -37.7, exp(-x*x/2) only to -37.6).
    """
    p, e = _two_prod(x, x)
    a = _INV_SQRT_2PI * (a - a * (0.5 * e))
    if p > 1400.0:
        q = math.exp(-0.25 * p)
        return (a * q) * q
    return a * math.exp(-0.5 * p)


@scalar_jit
def _ndtr(x):
    """Phi(x) = erfc(-x/sqrt2)/2 for -27 <= x <= 10.

    z = -x/sqrt2 is formed in double-double: erfc(zh + zl) = erfc(zh) -
    zl 2/sqrt(pi) exp(-zh^2) to first order, the correction being up to
    x*x/2 ulps of the result.
    """
    zh, zl = _dd_mul(-x, 0.0, _INV_SQRT2[0], _INV_SQRT2[1])
    return 0.5 * (math.erfc(zh) - zl * _TWO_OVER_SQRT_PI * math.exp(-zh * zh))


@scalar_jit
def _mills(t):
    """Phi(-t)/phi(t) for t >= 27, by its asymptotic series."""
    s = 1.0 / (t * t)
    return _polynomial(_MILLS_SERIES, s) / t


@scalar_jit
def _gelu_tanh_v(x):
    """v = K1 x + K3 x^3 and P = 1 + x v'(x) = 1 + K1 x + 3 K3 x^3, both double-double.

    sigmoid(v) multiplies the rounding error of v by |v|, which reaches 700
    where gelu is still normal in float64. For |x| <= 30.
    """
    sh, sl = _two_prod(x, x)
    ch, cl = _two_prod(sh, x)
    cl += sl * x
    th, tl = _dd_mul(_GT_K3[0], _GT_K3[1], ch, cl)
    ah, al = _dd_mul(_GT_K1[0], _GT_K1[1], x, 0.0)
    vh, vl = _dd_add(ah, al, th, tl)
    t3h, t3l = _two_prod(3.0, th)
    bh, bl = _dd_add(ah, al, t3h, t3l + 3.0 * tl)
    ph, pl = _dd_add(1.0, 0.0, bh, bl)
    return vh, vl, ph, pl


# ---------------------------------------------------------------------------
# The functions: (value, derivative) = f(x, p) for a float64 x that is not NaN
# and the parameters p (a float64 array, in the order of Reference.params).
# Value and derivative share their exponentials.
# ---------------------------------------------------------------------------


@scalar_jit
def _root_patch(slope, x, root, radius, taylor):
    """The derivative near its root r from f(r + d) = d P(d), d = (x - rh) - rl; else slope."""
    d = (x - root[0]) - root[1]  # x - rh is exact in the patch (Sterbenz)
    if abs(d) <= radius:
        return d * _polynomial(taylor, d)
    return slope


@scalar_jit
def _sigmoid(x, p):
    # split by sign; sigma' = e/(1+e)^2 with e = exp(-|x|), not sigma (1 - sigma),
    # which is 0 once sigma rounds to 1
    e = math.exp(-abs(x))
    r = 1.0 / (1.0 + e)
    return r if x >= 0.0 else e * r, e * r * r


@scalar_jit
def _tanh(x, p):
    # sech^2 x = 4e/(1+e)^2 with e = exp(-2|x|), not 1 - tanh^2, which is 0 for |x| > 19
    a = abs(x)
    if a > 350.0:  # e subnormal while 4e is not: 4 e^-|x| e^-|x| (and 1 + e = 1)
        h = math.exp(-a)
        return math.tanh(x), (4.0 * h) * h
    e = math.exp(-2.0 * a)
    r = 1.0 / (1.0 + e)
    return math.tanh(x), 4.0 * e * r * r


@scalar_jit
def _relu(x, p):
    return (x, 1.0) if x > 0.0 else (0.0, 0.0)


@scalar_jit
def _relu6(x, p):
    if x <= 0.0:
        return 0.0, 0.0
    return (6.0, 0.0) if x >= 6.0 else (x, 1.0)


@scalar_jit
def _leaky_relu(x, p):
    return (x, 1.0) if x > 0.0 else (p[0] * x, p[0])


@scalar_jit
def _elu(x, p):
    return (x, 1.0) if x > 0.0 else (p[0] * math.expm1(x), p[0] * math.exp(x))


@scalar_jit
def _celu(x, p):
    if x > 0.0:
        return x, 1.0
    q = x / p[0]
    return p[0] * math.expm1(q), math.exp(q)


@scalar_jit
def _selu(x, p):
    if x > 0.0:
        return _SELU_SCALE * x, _SELU_SCALE
    return _SELU_SCALE_ALPHA * math.expm1(x), _SELU_SCALE_ALPHA * math.exp(x)


@scalar_jit
def _gelu(x, p):
    # x Phi(x) and Phi(x) + x phi(x); below x = -27, Phi(x) = phi(x) M(-x) with
    # the Mills ratio's series
    if x > 10.0:  # Phi(x) = 1 - 7.6e-24
        return x, 1.0
    if x >= -27.0:
        cdf = _ndtr(x)
        value, slope = x * cdf, cdf + _gauss(x, x)
    elif x >= -40.0:
        m = _mills(-x)
        value, slope = _gauss(x * m, x), _gauss(m + x, x)
    else:
        return -0.0, -0.0
    return value, _root_patch(slope, x, _GELU_ROOT, _GELU_RADIUS, _GELU_TAYLOR)


@scalar_jit
def _gelu_tanh(x, p):
    # 0.5 x (1 + tanh(v/2)) = x sigmoid(v). With r = 1/(1+e), v' = K1 + 3 K3 x^2
    # and P = 1 + x v' (double-double, P + e cancels only at the root):
    # v < 0, e = e^v:  value x e r,  slope e r^2 (P + e)
    # v > 0, e = e^-v: value x r,    slope r^2 (1 + e + x v' e)
    # and to first order in vl (v = vh + vl): sigmoid(v) = sigmoid(vh) (1 +
    # sigmoid(-vh) vl), d slope/dv = e r^2 (1 + x v' (1-e) r), resp. (e-1)
    if x > 30.0:
        return x, 1.0
    if x < -30.0:
        return -0.0, -0.0
    vh, vl, ph, pl = _gelu_tanh_v(x)
    dv = _GT_K1[0] + 3.0 * _GT_K3[0] * (x * x)
    if vh >= 0.0:
        e = math.exp(-vh)
        r = 1.0 / (1.0 + e)
        value = x * (r + r * (e * r) * vl)
        slope = r * r * ((1.0 + e + x * dv * e) + e * (1.0 + x * dv * (e - 1.0) * r) * vl)
    elif vh < -700.0:  # e^v subnormal while the results are not: r = 1, e^v in two halves
        h = math.exp(0.5 * vh)
        value = ((x + x * vl) * h) * h
        slope = (((ph + pl) + (1.0 + x * dv) * vl) * h) * h
    else:
        e = math.exp(vh)
        r = 1.0 / (1.0 + e)
        value = (x * e * r) * (1.0 + r * vl)
        slope = e * r * r * (((ph + e) + pl) + (1.0 + x * dv * (1.0 - e) * r) * vl)
    return value, _root_patch(slope, x, _GELU_TANH_ROOT, _GELU_TANH_RADIUS, _GELU_TANH_TAYLOR)


@scalar_jit
def _swish_at(x, u):
    # x sigmoid(u) and h(u) = sigmoid(u) (1 + u sigmoid(-u)), u = beta x; r = 1/(1+e):
    # u < 0, e = e^u:  x e r,  e r^2 ((1 + u) + e), 1 + u exact where it cancels
    # u > 0, e = e^-u: x r,    r^2 (1 + e + u e)
    if u >= 0.0:
        if u > 800.0:
            return x, 1.0
        e = math.exp(-u)
        r = 1.0 / (1.0 + e)
        value, slope = x * r, r * r * (1.0 + e + u * e)
    elif u < -700.0:  # e^u subnormal while the results are not
        if u < -800.0:
            return -0.0, -0.0
        h = math.exp(0.5 * u)
        value, slope = (x * h) * h, ((1.0 + u) * h) * h
    else:
        e = math.exp(u)
        r = 1.0 / (1.0 + e)
        value, slope = x * e * r, e * r * r * ((1.0 + u) + e)
    return value, _root_patch(slope, u, _SILU_ROOT, _SILU_RADIUS, _SILU_TAYLOR)


@scalar_jit
def _silu(x, p):
    return _swish_at(x, x)


@scalar_jit
def _swish(x, p):
    return _swish_at(x, p[0] * x)


@scalar_jit
def _mish(x, p):
    # tanh(softplus(x)) = n/(n+2), n = e^x (e^x + 2); r = 1/(1+e):
    # x <= 0, e = e^x:  value x n/(n+2),  slope e (4(1 + x) + e (6 + 4x + e (4 + e)))/(n+2)^2
    # x > 0, e = e^-x:  value x (1 + 2e)/m,  slope (1 + 2e)/m + 4 x e^2 (1 + e)/m^2,
    # m = 1 + 2e + 2e^2 (numerator and denominator divided by e^2x)
    if x > 50.0:
        return x, 1.0
    if x > 0.0:
        e = math.exp(-x)
        m = 1.0 + 2.0 * e + 2.0 * e * e
        t = (1.0 + 2.0 * e) / m
        return x * t, t + 4.0 * x * (e * e) * (1.0 + e) / (m * m)
    if x < -700.0:  # x e^x and (1 + x) e^x, e^x subnormal while they are not
        if x < -800.0:
            return -0.0, -0.0
        h = math.exp(0.5 * x)
        return (x * h) * h, ((1.0 + x) * h) * h
    e = math.exp(x)
    n2 = e * (e + 2.0) + 2.0
    slope = e * (4.0 * (1.0 + x) + e * ((6.0 + 4.0 * x) + e * (4.0 + e))) / (n2 * n2)
    return x * (e * (e + 2.0)) / n2, _root_patch(slope, x, _MISH_ROOT, _MISH_RADIUS, _MISH_TAYLOR)


@scalar_jit
def _softplus(x, p):
    # x where beta x > threshold, else (max(u, 0) + log1p(e^-|u|))/beta, u = beta x;
    # max(u, 0)/beta is x itself
    u = p[0] * x
    if u > p[1]:
        return x, 1.0
    e = math.exp(-abs(u))
    t = math.log1p(e) / p[0]
    r = 1.0 / (1.0 + e)
    return (x + t, r) if u > 0.0 else (t, e * r)


@scalar_jit
def _softsign(x, p):
    a = abs(x)
    r = 1.0 / (1.0 + a)
    # 1 - 1/(1+|x|) for |x| >= 1: the limit +-1 at +-inf; (1/(1+|x|))^2 never overflows
    return math.copysign(1.0 - r, x) if a >= 1.0 else x * r, r * r


@scalar_jit
def _logsigmoid(x, p):
    # -softplus(-x) = min(x, 0) - log1p(e^-|x|), and sigmoid(-x)
    e = math.exp(-abs(x))
    r = 1.0 / (1.0 + e)
    return min(x, 0.0) - math.log1p(e), r if x <= 0.0 else e * r


@scalar_jit
def _hardtanh(x, p):
    if x <= p[0]:
        return p[0], 0.0
    return (p[1], 0.0) if x >= p[1] else (x, 1.0)


@scalar_jit
def _hardsigmoid(x, p):
    if x <= -3.0:
        return 0.0, 0.0
    if x >= 3.0:
        return 1.0, 0.0
    return (x + 3.0) / 6.0, 1.0 / 6.0  # x + 3 exact near -3


@scalar_jit
def _hardswish(x, p):
    if x <= -3.0:
        return 0.0, 0.0
    if x >= 3.0:
        return x, 1.0
    return x * (x + 3.0) / 6.0, (2.0 * x + 3.0) / 6.0  # not x/3 + 1/2, which cancels at -1.5


@scalar_jit
def _tanhshrink(x, p):
    # |x| < 2: (x cosh x - sinh x)/cosh x, a series of positive terms; beyond,
    # x - tanh x loses at most one bit. Derivative tanh^2 x: 1 - sech^2 x without
    # the cancellation.
    t = math.tanh(x)
    if abs(x) < 2.0:
        s = x * x
        return (x * s) * _polynomial(_TANHSHRINK_SERIES, s) / math.cosh(x), t * t
    return x - t, t * t


@scalar_jit
def _softshrink(x, p):
    if x > p[0]:
        return x - p[0], 1.0
    if x < -p[0]:
        return x + p[0], 1.0
    return 0.0, 0.0


@scalar_jit
def _hardshrink(x, p):
    return (x, 1.0) if abs(x) > p[0] else (0.0, 0.0)


@scalar_jit
def _threshold(x, p):
    return (x, 1.0) if x > p[0] else (p[1], 0.0)


# ---------------------------------------------------------------------------
# Arrays.
# ---------------------------------------------------------------------------


def _evaluate(x, p, value, derivative):
    """value[i], derivative[i] = f(x[i]), f'(x[i]); NaN where x[i] is NaN.

    A template: ``_function`` is bound to one reference's scalar function.
    """
    for i in numba.prange(x.size):
        xi = x[i]
        if xi != xi:
            value[i] = xi
            derivative[i] = xi
        else:
            value[i], derivative[i] = _function(xi, p)  # noqa: F821


class Reference:
    """The float64 reference of one activation: ``value, derivative = ref(x, **params)``.

    ``params`` names the parameters in the order the scalar function takes
    them; ``roots`` holds the interior roots of the derivative at the default
    parameters (the centres of the Taylor patches).
    """

    def __init__(self, name: str, function, params: tuple[str, ...] = (), roots: tuple[float, ...] = ()):
        self.name = name
        self.params = params
        self.roots = roots
        self._function = function

    def __repr__(self) -> str:
        return f"<fastact reference {self.name}({', '.join(self.params)})>"

    def __call__(self, x: np.ndarray, *, out: tuple | None = None,
                 **params: float) -> tuple[np.ndarray, np.ndarray]:
        """f(x) and f'(x) as float64 arrays shaped like ``x`` (cast to float64).

        ``out``: a pair of contiguous float64 arrays of x's size to write them to.
        """
        if set(params) != set(self.params):
            raise TypeError(f"reference {self.name} takes the parameters {list(self.params)}, "
                            f"got {sorted(params)}")
        p = np.array([float(params[k]) for k in self.params], dtype=np.float64)
        with np.errstate(invalid="ignore"):  # signalling NaNs turn quiet
            flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if out is None:
            out = np.empty_like(flat), np.empty_like(flat)
        elif not all(isinstance(a, np.ndarray) and a.dtype == np.float64 and a.size == flat.size
                     and a.flags.c_contiguous for a in out):
            raise ValueError(f"reference {self.name}: out must be two contiguous float64 arrays "
                             f"of size {flat.size}")
        value, derivative = (a.reshape(-1) for a in out)
        if flat.size:
            _kernels()(self.name, flat.size)(flat, p, value, derivative)
        shape = np.shape(x)
        return value.reshape(shape), derivative.reshape(shape)


REFERENCES: dict[str, Reference] = {r.name: r for r in [
    Reference("sigmoid", _sigmoid),
    Reference("tanh", _tanh),
    Reference("relu", _relu),
    Reference("relu6", _relu6),
    Reference("leaky_relu", _leaky_relu, ("negative_slope",)),
    Reference("elu", _elu, ("alpha",)),
    Reference("celu", _celu, ("alpha",)),
    Reference("selu", _selu),
    Reference("gelu", _gelu, (), (_GELU_ROOT[0],)),
    Reference("gelu_tanh", _gelu_tanh, (), (_GELU_TANH_ROOT[0],)),
    Reference("silu", _silu, (), (_SILU_ROOT[0],)),
    Reference("swish", _swish, ("beta",), (_SILU_ROOT[0],)),
    Reference("mish", _mish, (), (_MISH_ROOT[0],)),
    Reference("softplus", _softplus, ("beta", "threshold")),
    Reference("softsign", _softsign),
    Reference("logsigmoid", _logsigmoid),
    Reference("hardtanh", _hardtanh, ("min_val", "max_val")),
    Reference("hardsigmoid", _hardsigmoid),
    Reference("hardswish", _hardswish),
    Reference("tanhshrink", _tanhshrink),
    Reference("softshrink", _softshrink, ("lambd",)),
    Reference("hardshrink", _hardshrink, ("lambd",)),
    Reference("threshold", _threshold, ("threshold", "value")),
]}


class LocalLoops(KernelFamily):
    """Parallel loops built from templates that use nothing outside their own module.

    ``kernels`` maps a name to ``(template, globals)``. fastact's kernels
    inline code from other files, so ``specialize`` names their cache entries
    after a hash of every source file; these loops depend on their module
    alone, which Numba's cache checks already (by the file's time stamp), so
    their entries are named after the loop only and outlive edits elsewhere
    in the package. Parallel from the first element (``threshold`` 0) where
    parallel launches are safe.
    """

    def __init__(self, kernels: dict):
        super().__init__(kernels, lambda: 0)

    def _compile(self, name: str, parallel: bool):
        template, globals_ = self._kernels[name]
        tag = f"{name}_{'parallel' if parallel else 'serial'}"
        fn = specialize(template, tag, **globals_)
        fn.__qualname__ = f"{template.__qualname__}.{tag}"
        return jit(parallel=parallel)(fn)


@functools.cache
def _kernels() -> LocalLoops:
    """One loop per reference, compiled on first use and cached on disk."""
    return LocalLoops({name: (_evaluate, {"_function": r._function}) for name, r in REFERENCES.items()})
