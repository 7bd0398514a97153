"""Scalar math primitives shared by every kernel.

Each primitive is a Numba-compiled scalar function that works for float32 and
float64 alike: every literal is cast to the argument's type (``T = type(x)``)
so that float32 arithmetic stays float32. The activation definitions call only
these primitives and plain arithmetic, so the same code compiles for the CPU
(ufuncs and parallel loops) and as CUDA device functions.
"""

from fastact import _vmath
from fastact._compile import scalar_jit


# The transcendental functions: fastact's own pure-arithmetic versions
# (``fastact._vmath``), which inline and vectorize inside the kernels' loops.

@scalar_jit
def exp(x):
    return _vmath._exp(x)


@scalar_jit
def exp_sub(a, b):
    """e^(a - b) with the rounding error of a - b taken into account.

    The difference is split exactly (TwoSum) and its low part goes into the
    exponential's argument reduction; an infinite or NaN difference passes
    as it is.
    """
    T = type(a)
    s = a - b
    bb = s - a
    err = (a - (s - bb)) - (b + bb)
    return _vmath.exp_dw(s, err if abs(s) < T(1e30) else T(0))


@scalar_jit
def expm1(x):
    return _vmath._expm1(x)


@scalar_jit
def log(x):
    return _vmath._log(x)


@scalar_jit
def log1p(x):
    return _vmath._log1p(x)


@scalar_jit
def tanh(x):
    return _vmath._tanh(x)


@scalar_jit
def erfc(x):
    return _vmath._erfc(x)


@scalar_jit
def sigmoid_e(x, e):
    """sigma(x) from e = e^-|x|: 1 / (1 + e) for x >= 0, e / (1 + e) below.

    e^(.) never overflows, and one exponential serves sigma and sigma' (the
    kernels compute it once). NaN lands in the second form and propagates.
    """
    T = type(x)
    return (T(1) if x >= 0 else e) / (T(1) + e)


@scalar_jit
def sigmoid_grad_e(e):
    """sigma(x) sigma(-x) = e / (1 + e)^2 from e = e^-|x|.

    Not sigma(x) * (1 - sigma(x)): for x > 16.7 (float32) the factor
    1 - sigma(x) rounds to 0 although the exact derivative is a normal number.
    """
    T = type(e)
    d = T(1) + e
    return e / d / d


@scalar_jit
def sigmoid(x):
    """1 / (1 + e^-x), without overflow (see sigmoid_e)."""
    return sigmoid_e(x, exp(-abs(x)))


@scalar_jit
def sigmoid_grad(x):
    """sigma(x) sigma(-x) (see sigmoid_grad_e)."""
    return sigmoid_grad_e(exp(-abs(x)))


@scalar_jit
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, no cancellation."""
    T = type(x)
    m = x if x > 0 else T(0)
    return m + log1p(exp(-abs(x)))


@scalar_jit
def sech2(x):
    """1 / cosh(x)^2 = 4e / (1 + e)^2 with e = e^-2|x|.

    Not 1 - tanh(x)^2, which is 0 for |x| > 9 (float32) while the exact value
    is still a normal number.
    """
    T = type(x)
    e = exp(T(-2) * abs(x))
    d = T(1) + e
    return T(4) * e / (d * d)


@scalar_jit
def single(x):
    """True when x is a float32 (folds to a constant at compile time).

    2^24 + 1 is not a float32 (it rounds to 2^24) but is a float64.
    """
    T = type(x)
    return T(16777217.0) == T(16777216.0)


@scalar_jit
def two_prod_err(a, b, p):
    """The rounding error of p = fl(a * b): a * b = p + err exactly.

    One fused multiply-add (exact wherever a * b does not overflow or
    underflow).
    """
    return _vmath.fma(a, b, -p)


@scalar_jit
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
    return exp(s * T(-0.5)) * (T(1) - T(0.5) * e)


@scalar_jit
def ndtr(x):
    """The standard normal CDF Phi(x) = erfc(-x/sqrt 2) / 2.

    erfc on the negative side (no 1 - erf cancellation). The argument
    t = -x/sqrt 2 is rounded; in the tail erfc's relative sensitivity is ~2t,
    so the rounding error d (recovered exactly with the product error) goes
    into erfc as the low part of its argument: erfc(t + d).
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
    d = -two_prod_err(x, c_hi, -t) - x * c_lo  # exact -x/sqrt2 = t + d
    # beyond 40 erfc is 0 or 2 to working precision (and d may not be finite)
    return T(0.5) * _vmath.erfc_dw(t, d if abs(x) <= T(40) else T(0))


@scalar_jit
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
