"""Scalar math primitives shared by every kernel.

Each primitive is a Numba-compiled scalar function that works for float32 and
float64 alike: every literal is cast to the argument's type (``T = type(x)``)
so that float32 arithmetic stays float32. The activation definitions call only
these primitives and plain arithmetic, so the same code compiles for the CPU
(ufuncs and parallel loops) and as CUDA device functions.
"""

import math

from fastact._compile import jit as _jit


@_jit
def exp(x):
    return math.exp(x)


@_jit
def expm1(x):
    return math.expm1(x)


@_jit
def log(x):
    return math.log(x)


@_jit
def log1p(x):
    return math.log1p(x)


@_jit
def tanh(x):
    return math.tanh(x)


@_jit
def erfc(x):
    return math.erfc(x)


@_jit
def sigmoid(x):
    """1 / (1 + e^-x), split by sign so that e^(.) never overflows."""
    T = type(x)
    if x >= 0:
        return T(1) / (T(1) + math.exp(-x))
    e = math.exp(x)  # NaN also lands here and propagates
    return e / (T(1) + e)


@_jit
def sigmoid_grad(x):
    """sigma(x) * sigma(-x) = e / (1 + e)^2 with e = e^-|x|.

    Not sigma(x) * (1 - sigma(x)): for x > 16.7 (float32) the factor
    1 - sigma(x) rounds to 0 although the exact derivative is a normal number.
    """
    T = type(x)
    e = math.exp(-abs(x))
    d = T(1) + e
    return e / d / d


@_jit
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, no cancellation."""
    T = type(x)
    m = x if x > 0 else T(0)
    return m + math.log1p(math.exp(-abs(x)))


@_jit
def sech2(x):
    """1 / cosh(x)^2 = 4e / (1 + e)^2 with e = e^-2|x|.

    Not 1 - tanh(x)^2, which is 0 for |x| > 9 (float32) while the exact value
    is still a normal number.
    """
    T = type(x)
    e = math.exp(T(-2) * abs(x))
    d = T(1) + e
    return T(4) * e / d / d


@_jit
def single(x):
    """True when x is a float32 (folds to a constant at compile time).

    2^24 + 1 is not a float32 (it rounds to 2^24) but is a float64.
    """
    T = type(x)
    return T(16777217.0) == T(16777216.0)


@_jit
def two_prod_err(a, b, p):
    """The rounding error of p = fl(a * b): a * b = p + err exactly (Dekker).

    Valid while 4097 * |a| and 4097 * |b| (float32; 2^27 + 1 for float64) stay
    finite; callers use it only on moderate arguments.
    """
    # Veltkamp's split constant 2^ceil(p/2) + 1 for precision p
    T = type(a)
    s = T(4097.0) if single(a) else T(134217729.0)
    c = s * a
    ah = c - (c - a)
    al = a - ah
    c = s * b
    bh = c - (c - b)
    bl = b - bh
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


@_jit
def gauss(x):
    """e^(-x^2/2) to working accuracy.

    The rounding error of x*x is up to x^2/2 ulps of the exponent, i.e. ~50
    ulps of the result at x = 10; it is recovered as the exact product error
    e and applied as the factor (1 - e/2).
    """
    T = type(x)
    a = abs(x)
    if a > T(64):  # underflows to 0 in both dtypes (and inf lands here)
        return T(0) if a == a else a
    s = a * a
    e = two_prod_err(a, a, s)
    return math.exp(s * T(-0.5)) * (T(1) - T(0.5) * e)


@_jit
def ndtr(x):
    """The standard normal CDF Phi(x) = erfc(-x/sqrt 2) / 2.

    erfc on the negative side (no 1 - erf cancellation). The argument
    t = -x/sqrt 2 is rounded; in the tail erfc's relative sensitivity is ~2t,
    so the rounding error d (recovered exactly with the product error) is
    corrected to first order: erfc(t + d) = erfc(t) - d * 2/sqrt(pi) e^(-t^2).
    """
    T = type(x)
    # 1/sqrt(2) = c_hi + c_lo: c_hi rounded to x's precision, c_lo the remainder
    if single(x):
        c_hi = T(0.7071067690849304)
        c_lo = T(1.210161710447897e-08)
    else:
        c_hi = T(0.7071067811865476)
        c_lo = T(-4.833646656726457e-17)
    t = -x * c_hi
    if abs(x) > T(40) or t != t:
        return T(0.5) * math.erfc(t)
    d = -two_prod_err(x, c_hi, -t) - x * c_lo  # exact -x/sqrt2 = t + d
    corr = d * T(1.1283791670955126) * math.exp(-(t * t))
    return T(0.5) * (math.erfc(t) - corr)


@_jit
def scaled(x, beta):
    """beta * x as z + ze, ze the rounding error of the product.

    In the tails sigma(z) ~ e^z, whose relative error is |z| times that of z:
    at z = -80 the rounding of beta * x alone would cost 40 ulps.
    """
    T = type(x)
    z = beta * x
    if beta == 1 or not abs(z) < T(1e4):  # exact, or far past every tail (and NaN)
        return z, T(0)
    return z, two_prod_err(beta, x, z)
