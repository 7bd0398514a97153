"""The hyperbolic family: tanh and its relatives."""

import math

import numpy as np

from fastact import _math, _vmath
from fastact._elementwise import elementwise

# x - tanh(x) = x^3 * sum_k c_k (x^2)^k; c_k from the tanh series
# tanh x = sum_n 2^(2n) (2^(2n) - 1) B_2n x^(2n-1) / (2n)!, where the
# subtraction would cancel.
# Highest order first, for Horner's rule.
_TANHSHRINK_SERIES = (
    -1.1587644432798853e-08, 2.859136662305254e-08, -7.0546369464009681e-08,
    1.7406618963571648e-07, -4.2949110782738057e-07, 1.0597268320104654e-06,
    -2.6147711512907546e-06, 6.4516892156554306e-06, -1.5918905069328964e-05,
    3.9278323883316833e-05, -9.6915379569294509e-05, 0.00023912911424355248,
    -0.00059002744094558595, 0.0014558343870513183, -0.0035921280365724811,
    0.0088632355299021973, -0.021869488536155203, 0.053968253968253971,
    -0.13333333333333333, 0.33333333333333331,
)


@_math.scalar_jit
def _tanhshrink_series(z):
    """sum_k c_k z^k by Horner's rule, written out: a loop over the
    coefficients stays a loop (LLVM does not unroll 20 steps) and keeps the
    kernel's loop from vectorizing."""
    T = type(z)
    p = T(_TANHSHRINK_SERIES[0])
    p = p * z + T(_TANHSHRINK_SERIES[1])
    p = p * z + T(_TANHSHRINK_SERIES[2])
    p = p * z + T(_TANHSHRINK_SERIES[3])
    p = p * z + T(_TANHSHRINK_SERIES[4])
    p = p * z + T(_TANHSHRINK_SERIES[5])
    p = p * z + T(_TANHSHRINK_SERIES[6])
    p = p * z + T(_TANHSHRINK_SERIES[7])
    p = p * z + T(_TANHSHRINK_SERIES[8])
    p = p * z + T(_TANHSHRINK_SERIES[9])
    p = p * z + T(_TANHSHRINK_SERIES[10])
    p = p * z + T(_TANHSHRINK_SERIES[11])
    p = p * z + T(_TANHSHRINK_SERIES[12])
    p = p * z + T(_TANHSHRINK_SERIES[13])
    p = p * z + T(_TANHSHRINK_SERIES[14])
    p = p * z + T(_TANHSHRINK_SERIES[15])
    p = p * z + T(_TANHSHRINK_SERIES[16])
    p = p * z + T(_TANHSHRINK_SERIES[17])
    p = p * z + T(_TANHSHRINK_SERIES[18])
    p = p * z + T(_TANHSHRINK_SERIES[19])
    return p


@_vmath.float32_only
def _tanhshrink32(x):
    """x - tanh x for float32, in float32 arithmetic, rounded once.

    Below 0.6: x^3 S(x^2) with the first 11 terms of the series (truncation
    error 2^-30), S = 1/3 + z R(z), 1/3 held as a double-word, S and x^3
    formed as exact pairs (Fast2Sum; fma product errors; x scaled by 2^16
    below 2^-20, so that x^3's low part does not underflow). From 0.6:
    |x| - tanh|x| with tanh's unrounded parts (tanh_parts32, 2^-27.5) and the
    subtraction exact (TwoSum); the result is at least a ninth of tanh there.
    """
    T = type(x)
    z = x * x
    r = T(_TANHSHRINK_SERIES[9])
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[10]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[11]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[12]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[13]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[14]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[15]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[16]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[17]))
    r = _vmath.fma(r, z, T(_TANHSHRINK_SERIES[18])) * z
    sh = T(0.3333333432674408) + r  # Fast2Sum: |r| < 0.05
    sl = (r - (sh - T(0.3333333432674408))) + T(-9.934107462565104e-09)
    # x^3 = ph + pl, from x scaled by 2^16 below 2^-20: pl stays normal
    small = abs(x) < T(2.0**-20)
    xs = x * T(65536.0) if small else x
    zs = xs * xs
    ph = xs * zs
    pl = _vmath.fma(xs, zs, -ph) + xs * _vmath.fma(xs, xs, -zs)
    series = _vmath.fma(ph, sh, ph * sl + pl * sh)
    series = series * T(2.0**-48) if small else series
    a = abs(x)
    q, t, inv = _vmath.tanh_parts32(a)
    u = a - q
    bb = u - a
    ue = (a - (u - bb)) + (-q - bb)  # TwoSum
    y = u + (ue - t * inv)
    y = a if a == T(np.inf) else y  # not inf - inf
    y = -y if x < 0 else y
    return series if a < T(0.6) else y


@elementwise(torch="torch.tanh")
class tanh:
    """Hyperbolic tangent.

    .. math:: \\tanh x = \\frac{e^x - e^{-x}}{e^x + e^{-x}}

    Derivative :math:`\\mathrm{sech}^2 x = 4e/(1+e)^2`, :math:`e = e^{-2|x|}`:
    not :math:`1 - \\tanh^2 x`, which is 0 for |x| > 9 in float32.
    ``backward(g, y=y)`` uses the saved output: :math:`g(1 - y^2)`.

    >>> fastact.tanh(np.array([0.0, 1.0]))
    array([0.        , 0.76159416])
    """

    def forward(x):
        return _math.tanh(x)

    def grad(x):
        return _math.sech2(x)

    def grad_from_output(y):
        T = type(y)
        return (T(1) - y) * (T(1) + y)


@elementwise(torch="F.tanhshrink")
class tanhshrink:
    """Tanhshrink.

    .. math:: \\mathrm{tanhshrink}(x) = x - \\tanh x

    By its series near 0, where the subtraction would cancel (the result is
    ~x^3/3). Derivative :math:`\\tanh^2 x`.

    >>> fastact.tanhshrink(np.array([1e-3, 1.0]))
    array([3.33333200e-10, 2.38405844e-01])
    """

    # float32 in float64 (see _math.wide), rounded once.

    def forward(x):
        T = type(x)
        if _math.single(x):
            return _tanhshrink32(x)
        v = _math.wide(x)
        # The series below 0.6, where its truncation error is below 2^-54
        # and the subtraction would lose 2-4 bits.
        if abs(v) < 0.6:
            z = v * v
            return T(v * z * _tanhshrink_series(z))
        return T(v - _math.wtanh(v, x))

    def grad(x):
        T = type(x)
        t = _math.wtanh(_math.wide(x), x)
        return T(t * t)


@_math.scalar_jit
def _one_plus_abs(x):
    """1 + |x| = dh + dl exactly (TwoSum), for finite x."""
    T = type(x)
    a = abs(x)
    dh = T(1) + a
    bb = dh - a
    return dh, (a - (dh - bb)) + (T(1) - bb)


@elementwise(torch="F.softsign")
class softsign:
    """Softsign.

    .. math:: \\mathrm{softsign}(x) = \\frac{x}{1 + |x|}

    Derivative :math:`1/(1+|x|)^2`, computed as r*r with r = 1/(1+|x|) so that
    it does not overflow for huge |x|. Limits: softsign(+-inf) = +-1.

    >>> fastact.softsign(np.array([-1.0, 3.0]))
    array([-0.5 ,  0.75])
    """

    # 1 + |x| = dh + dl exactly, and the quotient corrected by its
    # remainder (_vmath.ratio_parts): one rounding, in x's precision.

    def forward(x):
        T = type(x)
        if math.isinf(x):
            return math.copysign(T(1), x)
        dh, dl = _one_plus_abs(x)
        return _vmath._ratio(x, T(0), dh, dl)

    def grad(x):
        T = type(x)
        if math.isinf(x):
            return T(0)
        dh, dl = _one_plus_abs(x)
        # r = 1 / (1 + |x|) = q + c, squared with its low part: no overflow
        q, t, inv = _vmath.ratio_parts(T(1), T(0), dh, dl)
        return _vmath.fma(q, q, (q + q) * (t * inv))
