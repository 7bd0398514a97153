"""Scalar math primitives shared by every kernel.

Each primitive is a Numba-compiled scalar function that works for float32 and
float64 alike: every literal is cast to the argument's type (``T = type(x)``)
so that float32 arithmetic stays float32. The activation definitions call only
these primitives and plain arithmetic, so the same code compiles for the CPU
(ufuncs and parallel loops) and as CUDA device functions.
"""

import numpy as np

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
    exponential's argument reduction; a difference beyond 10^4 (also inf or
    NaN) passes as it is.
    """
    T = type(a)
    s = a - b
    bb = s - a
    err = (a - (s - bb)) - (b + bb)
    # beyond 10^4 e^s is 0 or inf, and err (up to ulp(s)/2) must not reach
    # the exponential's reduction, which clamps s but not err
    return _vmath.exp_dw(s, err if abs(s) < T(1e4) else T(0))


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
def single(x):
    """True when x is a float32 (folds to a constant at compile time).

    2^24 + 1 is not a float32 (it rounds to 2^24) but is a float64.
    """
    T = type(x)
    return T(16777217.0) == T(16777216.0)


# float32 functions are evaluated in float64 and rounded once: a float64
# evaluation is within a few float64 ulps, so the float32 result is within
# 0.5 ulp + 2^-28 ulp of the exact value, and the exact float64 product of two
# float32 numbers (beta * x) needs no error term. wide(x) is the float64 value
# of x, and wexp(v, x) the exponential that x's dtype needs: the lighter
# exp_wide for float32, the double-word-accurate one for float64.

@scalar_jit
def wide(x):
    return np.float64(x)


@scalar_jit
def wexp(v, x):
    if single(x):
        return _vmath.exp_wide(v)
    return _vmath._exp(v)


@scalar_jit
def wexpm1(v, x):
    """e^v - 1 in float64 at the accuracy x's dtype needs (see wexp)."""
    if single(x):
        return _vmath.expm1_wide(v)
    return _vmath._expm1(v)


@scalar_jit
def wtanh(v, x):
    """tanh(v) in float64 at the accuracy x's dtype needs (see wexp).

    For float32: -m / (2 + m) with m = e^(-2|v|) - 1, which does not cancel
    near 0 as (1 - e) / (1 + e) would; m from expm1_lean, to 2^-29 before
    the rounding (its float32 use, tanhshrink' = tanh^2, cancels nothing).
    """
    if single(x):
        m = _vmath.expm1_lean(-2.0 * abs(v))
        t = -m / (2.0 + m)
        return -t if v < 0 else t
    return _vmath._tanh(v)


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
    return e / (d * d)


@scalar_jit
def exp_pair(x, k):
    """e^x 2^k = eh + el for x <= 0 and 0 <= k <= 24 (see _vmath.exp_pair):
    relative error 2^-28 for float32, one rounding for float64."""
    return _vmath.exp_pair(x, k)


@scalar_jit
def sigmoid_parts(x):
    """sigma(x) = q + t * inv, and e^-|x| = eh + el, 1 + e^-|x| = dh + dl.

    1 / (1 + e) for x >= 0 and e / (1 + e) below (no overflow), with
    e = e^-|x| as a double-word pair, 1 + e summed exactly and the quotient
    corrected by its remainder: sigma rounds once, within 0.6 ulp, in
    float32 arithmetic. NaN propagates.
    """
    eh, el = exp_pair(-abs(x), 0)
    return logistic_parts(x, eh, el)


@scalar_jit
def logistic_parts(x, eh, el):
    """sigmoid_parts(x) from e^-|x| = eh + el, computed by the caller."""
    T = type(x)
    dh = T(1) + eh
    dl = ((T(1) - dh) + eh) + el  # Fast2Sum: 1 >= eh
    pos = x >= 0
    q, t, inv = _vmath.ratio_parts(T(1) if pos else eh, T(0) if pos else el, dh, dl)
    return q, t, inv, eh, el, dh, dl


@scalar_jit
def _held32(x):
    """A float32 x held to [-200, 200] in float32, in float64; NaN passes."""
    T = type(x)
    return wide(_vmath.where(x < T(-200), T(-200), _vmath.where(x > T(200), T(200), x)))


@scalar_jit
def logistic_e32(x, beta):
    """For a float32 x: z = beta x in float64 (exact, the product of two
    float32; beta None for 1) held to [-200, 200], e = e^-z (exp_lean) and
    r = 1 / (1 + e) = sigma(z).

    In float64 e^-z needs no |z|: it stays finite (below e^200) where
    float32 needs e^-|z| and a select for z < 0; sigma(z) has relative
    sensitivity e / (1 + e) <= 1 to e, so exp_lean's 2^-34 is 2^-10 ulp
    after rounding. Beyond 200 sigma rounds to 1 or 0 as it does at 200.
    """
    T = type(x)
    # beta None or 1 (silu; a loop invariant, for which LLVM compiles the
    # loop too): held in float32, half the vector registers, the same bits
    # (one thread, in cache: silu 0.77 -> 0.70 ns per element)
    if beta is None or beta == 1:
        z = _held32(x)
    else:
        z = wide(x) * wide(beta)
        z = _vmath.where(z < -200.0, -200.0, _vmath.where(z > 200.0, 200.0, z))  # NaN passes
    e = _vmath.exp_lean_in_range(-z)
    return z, e, 1.0 / (1.0 + e)


@scalar_jit
def sigmoid(x):
    """1 / (1 + e^-x), without overflow: float32 in float64 (see
    logistic_e32), rounded once; float64 from sigmoid_parts."""
    if single(x):
        z, e, r = logistic_e32(x, None)
        return type(x)(r)
    q, t, inv, eh, el, dh, dl = sigmoid_parts(x)
    return _vmath.fma(t, inv, q)


@scalar_jit
def sigmoid_scaled(x, beta):
    """sigma(beta x), the rounding error ze of beta x included to first
    order: sigma(z + ze) = sigma(z) + ze sigma(z) sigma(-z); in the tail
    sigma(z) ~ e^z has relative sensitivity |z| to it."""
    T = type(x)
    z, ze = scaled(x, beta)
    q, t, inv, eh, el, dh, dl = sigmoid_parts(z)
    return _vmath.fma(t, inv, q + ze * (q * (T(1) - q)))


@scalar_jit
def logistic_grad(eh, el, dh, dl):
    """e / (1 + e)^2 from the pairs of sigmoid_parts, rounded once.

    sigma(x) sigma(-x) with e = e^-|x|; not sigma(1 - sigma), for which the
    factor 1 - sigma(x) rounds to 0 for x > 16.7 (float32) although the
    exact derivative is a normal number.
    """
    d2h = dh * dh
    d2l = _vmath.fma(dh, dh, -d2h) + (dh + dh) * dl
    return _vmath._ratio(eh, el, d2h, d2l)


@scalar_jit
def sigmoid_grad(x):
    """sigma(x) sigma(-x) = e / (1 + e)^2: float32 in float64 with
    e = e^-x (see logistic_e32), rounded once; float64 from logistic_grad
    with e = e^-|x|."""
    if single(x):
        z, e, r = logistic_e32(x, None)
        return type(x)(e * (r * r))
    q, t, inv, eh, el, dh, dl = sigmoid_parts(x)
    return logistic_grad(eh, el, dh, dl)


@scalar_jit
def softplus(x, beta):
    """log(1 + e^(beta x)) / beta, rounded once.

    max(z, 0) + log1p(e^-|z|) for z = beta x: no overflow, no cancellation.
    float32 with beta = 1: see softplus32; other betas in float64 (see
    wide), where z is exact; for float64, the
    rounding error ze of z enters to first order, ze sigma(z): in the tail
    the result ~ e^z has relative sensitivity |z| to it.
    """
    T = type(x)
    if single(x) and beta == 1:
        return softplus32(x)
    z, ze = scaled(wide(x), wide(beta))
    e = wexp(-abs(z), x)
    y = (z if z > 0 else 0.0) + _vmath._log1p(e)
    if not single(x):
        y = y + ze * ((e if z < 0 else 1.0) / (1.0 + e)) if ze != 0 else y
    return T(y if beta == 1 else y / wide(beta))


@scalar_jit
def softplus32(x):
    """log(1 + e^x) for float32, in float32 arithmetic, rounded once.

    max(x, 0) + log1p(e), e = e^-|x| as exp_pair's unrounded pair and its
    logarithm as log1p_pair's; x + log1p(e) is summed with its exact error
    (TwoSum). Within 0.79 ulp over every float32, the worst where the
    result is subnormal (``verify --exhaustive``).
    """
    T = type(x)
    eh, el = exp_pair(-abs(x), 0)
    lh, ll = _vmath.log1p_pair(eh, el)
    if not x > 0:  # also NaN, which propagates from eh
        return lh + ll
    s = x + lh
    bb = s - x
    err = (x - (s - bb)) + (lh - bb)
    return s if s == T(np.inf) else s + (err + ll)  # inf: not inf - inf


@scalar_jit
def sech2(x):
    """1 / cosh(x)^2 = 4e / (1 + e)^2 with e = e^-2|x| (see logistic_grad).

    Not 1 - tanh(x)^2, which is 0 for |x| > 9 (float32) while the exact value
    is still a normal number. float32 is evaluated in float64 (e stays
    normal down to |x| = 354). float64: -2|x| is exact, and 4e comes from
    the exponential as a pair directly: for |x| > 354 e is subnormal while
    4e / (1 + e)^2 is not.
    """
    T = type(x)
    if single(x):  # in float64, rounded once (no cancellation: exp_lean)
        e = _vmath.exp_lean(-2.0 * abs(wide(x)))
        d = 1.0 + e
        return T((4.0 * e) / (d * d))
    ch, cl = exp_pair(T(-2) * abs(x), 2)  # 4e
    eh = ch * T(0.25)  # e: only 1 + e needs it, where its rounding is lost
    dh = T(1) + eh
    dl = ((T(1) - dh) + eh) + cl * T(0.25)
    return logistic_grad(ch, cl, dh, dl)


@scalar_jit
def two_prod_err(a, b, p):
    """The rounding error of p = fl(a * b): a * b = p + err exactly.

    One fused multiply-add (exact wherever a * b does not overflow or
    underflow).
    """
    return _vmath.fma(a, b, -p)


@scalar_jit
def gauss(v, x, h):
    """e^(-h v^2) (h = 1/2 or 1/4) at the accuracy x's dtype needs (see wexp).

    The rounding error of v*v is up to h v^2 ulps of the exponent, i.e. ~50
    ulps of the result at v = 10, h = 1/2; it is recovered as the exact
    product error e and applied as the factor (1 - h e).
    """
    T = type(v)
    a = abs(v)
    if a > T(64):  # underflows to 0 in both dtypes (and inf lands here)
        return T(0) if a == a else a
    s = a * a
    e = two_prod_err(a, a, s)
    return wexp(s * -h, x) * (T(1) - h * e)


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


def polynomial(coeffs):
    """p(d) = c0 + c1 d + c2 d^2 + ... in float64, as straight-line Horner code
    with fused multiply-adds (one rounding a step, half the operations).

    Written out rather than a loop over the coefficients, which LLVM does not
    always unroll, and a loop inside the element loop keeps it scalar.
    """
    body = [f"    r = {float(coeffs[-1])!r}"]
    body += [f"    r = fma(r, d, {float(c)!r})" for c in reversed(coeffs[:-1])]
    src = "def p(d):\n" + "\n".join(body) + "\n    return r\n"
    scope = {"fma": _vmath.fma}
    exec(src, scope)  # noqa: S102 (source built from numbers above)
    return scalar_jit(scope["p"])


# Q(y) = Phi(-y) = e^(-y^2/2) t P(t), t = 1/(1 + y/4), for float32 arguments
# evaluated in float64: P of degree 11 on 0 <= y <= 16 (t in [1/5, 1]) for
# the relative error of Q (e^(y^2/2) Q(y) is Mills' ratio over sqrt(2 pi),
# smooth in t), fitted by Lawson's iteration (least squares reweighted
# toward the minimax) on 3000 Chebyshev nodes with mpmath values; relative
# error 2^-31.9 (``tests/test_math.py``).
_MILLS_T = polynomial((
    0.09973411131772096, 0.0997726332067905, 0.09309290555890459, 0.08360291261607075,
    0.05350070093270565, 0.06770061167643814, -0.010958587809653898, 0.021677672783495444,
    0.03442584533305906, -0.07938362468970647, 0.04563329477957561, -0.00879847583197035))


@scalar_jit
def normal_tail_wide(y):
    """Phi(-y) and e^(-y^2/2) for a float64 0 <= y <= 16 holding a float32
    (or NaN), to 2^-31 (see _MILLS_T; e^(-y^2/2) from exp_lean, to 2^-34):
    the gelu of float32 evaluated in float64 (y^2 is exact there). The
    caller holds y to the polynomial's range (beyond 16 Phi(-y) is below
    1e-57, which no float32 result can tell from Phi(-16))."""
    e = _vmath.exp_lean_in_range(-0.5 * (y * y))
    t = 1.0 / (1.0 + 0.25 * y)
    return e * (t * _MILLS_T(t)), e


class RootPatch:
    """A derivative near an interior root r: f(r + d) = d P(d).

    Every closed form of such a derivative is a sum of terms that cancel
    near r, so its relative error grows like 1/|x - r|, without bound at the
    inputs nearest r (3e-9 to 1e-8 from it in float32). Within the window,
    d = (z - rh) - rl is formed exactly (z - rh by Sterbenz's lemma, r held
    as the double-word rh + rl) and P is the Taylor polynomial of f(r+d)/d
    about 0: its terms do not cancel. float64: 13 terms on |d| <= 1/8,
    outside which the closed form is within 1e-13 (relative), and the
    truncation error within below 2^-54. float32 (evaluated in float64 and
    rounded once): 3 terms on |d| <= 2^-10, outside which the closed forms
    are within 2^-35, truncation error below 2^-31. Wider windows where the
    closed form's exponential is less accurate: silu' and mish' (from
    exp_lean, 2^-34, whose error the cancellation multiplies by about
    2^-2.2 / |d|) 3 terms on 2^-9, outside which they are within 2^-27,
    truncation error below 2^-30.5; gelu' 6 terms on 1/32, where its closed
    form, from a Phi accurate to 2^-31, is within 2^-27.
    Coefficients: Taylor coefficients at the root, found with mpmath at 50
    digits (``tests/test_math.py`` recomputes them).
    """

    def __init__(self, rh, rl, coeffs, w32=2.0**-10, terms32=3):
        self.rh, self.rl = rh, rl
        self.p64 = polynomial(coeffs[:13])
        # a wider float32 window (w32) where the float32 closed form is less
        # accurate, with the terms it needs
        self.w32 = w32
        self.p32 = polynomial(coeffs[:terms32])

    def jit(self):
        rh, rl, p32, p64, w32 = self.rh, self.rl, self.p32, self.p64, self.w32

        @scalar_jit
        def patch(z, zlo, y, x):
            """y, or d P(d) where z + zlo lies within the window about r
            (zlo: float64 only, a float32 z is exact)."""
            if single(x):
                d = (np.float64(z) - rh) - rl
                return d * p32(d) if abs(d) <= w32 else y
            d = ((np.float64(z) - rh) + zlo) - rl
            return d * p64(d) if abs(d) <= 0.125 else y

        return patch


#: sigma(z) + z sigma(z) sigma(-z): silu' and swish' (in z = beta x)
silu_root = RootPatch(-1.2784645427610737, -1.0946994183093437e-16, (
    0.2178117057198001, 0.1466487969969469, 0.018874814223782312, -0.015222655223188032,
    -0.006606589138356696, 0.000126627410081122, 0.0007985218818397998, 0.00018570724361186496,
    -4.090534237428612e-05, -2.9733542213263917e-05, -2.942631888842464e-06,
    2.346029682463866e-06, 8.599695028268575e-07), w32=2.0**-9).jit()
#: mish'
mish_root = RootPatch(-1.1924312145154952, -4.8484829848031044e-17, (
    0.2669479140495345, 0.20473126408010586, 0.04190782104360987, -0.020271822716684245,
    -0.01582112656173338, -0.0033606849270232685, 0.0010924055409445854, 0.0009898181021289196,
    0.00025412936386191073, -4.1961496031696126e-05, -5.582891567360688e-05,
    -1.72992708103044e-05, 9.427361327376651e-07), w32=2.0**-9).jit()
#: gelu' = Phi(x) + x phi(x)
gelu_root = RootPatch(-0.7517915246935645, 1.4956759177009883e-17, (
    0.4314939923140469, 0.388284982990552, -0.018199676398671087, -0.1140082332972217,
    -0.014771522148244337, 0.019421679838189067, 0.004539228379125415, -0.002239538068073497,
    -0.0007448268386746817, 0.00018633974623233514, 8.615947861116571e-05,
    -1.121438018842664e-05, -7.74846130700372e-06), w32=0.03125, terms32=6).jit()
#: the derivative of gelu's tanh approximation
gelu_tanh_root = RootPatch(-0.7524614220710163, 3.635560509207687e-17, (
    0.4304000910248585, 0.38751844613578895, -0.01578285352184803, -0.11394448308095899,
    -0.01661932834305256, 0.019682309459833118, 0.005261059254921912, -0.0024227318458750974,
    -0.0009274420230205449, 0.00026392764052681053, 0.00012425227802639782,
    -3.4956171694436116e-05, -1.5950896871645105e-05)).jit()
