"""Float64 reference implementations of the fastact activations.

This module is deliberately independent of fastact: plain NumPy/SciPy code that
the test-suite uses to judge the float32 and float64 kernels, and mpmath
versions of every elementwise function that are used to validate it.

Contents
--------
``ELEMENTWISE``
    ``name -> Ref`` for every elementwise activation.  ``Ref.forward(x, **params)``
    and ``Ref.grad(x, **params)`` take float64 arrays of any shape (anything
    ``np.asarray`` accepts) and return float64 arrays of the same shape;
    ``Ref.params`` holds PyTorch's defaults, ``Ref.required`` the parameters
    without a default.
Row-wise references
    ``softmax``, ``log_softmax``, ``softmin`` (+ ``*_vjp`` and ``*_jacobian``),
    ``glu``/``glu_vjp``, ``maxout``/``maxout_vjp``, ``prelu``/``prelu_vjp``.
``mp_forward(name, x, **params)`` / ``mp_grad(name, x, **params)``
    The same functions in mpmath at 50 significant digits, for a scalar ``x``.
``ulp_error(actual, exact, dtype)``
    Error in units in the last place of ``dtype``.

Numerics
--------
Every formula is chosen so that the float64 result is within a few ulp of the
exact value wherever that value is a normal number, for every input including
+-0, subnormals, +-1.8e308, +-inf and NaN, and so that no NumPy floating-point
warning is raised.  The recurring tools are:

* ``exp(-|x|)`` instead of ``exp(x)``/``exp(-x)`` so nothing overflows, and
  factors such as ``e^x`` applied last (as ``e^(x/2)`` twice below -700) so
  that no intermediate turns subnormal while the result is still normal;
* double-double products (Dekker) where a rounded intermediate would be
  amplified: e.g. in ``sigmoid(beta*x)`` the rounding of ``beta*x`` costs
  ``|beta*x|`` ulp, which is 700 ulp at the bottom of the normal range;
* gelu from tabulated Taylor expansions of ``Phi(x) exp(x^2/2)`` (mpmath
  coefficients) times an exactly-argued ``exp(-x^2/2)``, not from SciPy's
  erfc/erfcx, which are off by several ulp;
* derivatives near their interior roots (silu', swish', mish', both gelu')
  from a Taylor polynomial about the root: no closed form can give a small
  *relative* error there, because its terms cancel;
* branch decisions taken exactly as PyTorch takes them (``beta*x`` is rounded
  to float64 before it is compared with softplus' ``threshold``).

Measured against mpmath, the elementwise references are within about 2.5 ulp
(relative error below 6e-16) wherever the exact value is a normal number.

NaN in gives NaN out for every elementwise forward and gradient.  At +-inf each
function returns its limit.  Underflow to zero or to a subnormal is silent, as
NumPy's default; the module sets ``under="ignore"`` itself so that the caller's
error state does not matter.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import mpmath
import numpy as np
from scipy import special

__all__ = [
    "ELEMENTWISE",
    "Ref",
    "SELU_ALPHA",
    "SELU_SCALE",
    "glu",
    "glu_vjp",
    "log_softmax",
    "log_softmax_jacobian",
    "log_softmax_vjp",
    "maxout",
    "maxout_vjp",
    "mp_forward",
    "mp_grad",
    "prelu",
    "prelu_vjp",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "softmin",
    "softmin_jacobian",
    "softmin_vjp",
    "ulp_error",
]

mp = mpmath.mp

MP_DPS = 50

# SELU constants, as PyTorch defines them (decimal strings, exact in mpmath).
_SELU_ALPHA_STR = "1.6732632423543772848170429916717"
_SELU_SCALE_STR = "1.0507009873554804934193349852946"
SELU_ALPHA = float(_SELU_ALPHA_STR)
SELU_SCALE = float(_SELU_SCALE_STR)

_GELU_KAPPA_STR = "0.044715"


def _dd(value: mpmath.mpf) -> tuple[float, float]:
    """Split a high-precision constant into float64 ``hi + lo``."""
    hi = float(value)
    return hi, float(value - hi)


with mp.workdps(60):
    # scale*alpha rounded once (not scale rounded times alpha rounded).
    _SELU_SA = float(mpmath.mpf(_SELU_SCALE_STR) * mpmath.mpf(_SELU_ALPHA_STR))
    _INV_SQRT_2PI = float(1 / mpmath.sqrt(2 * mpmath.pi))
    # gelu(tanh) = x * sigmoid(v), v = K1*x + K3*x^3 = 2*sqrt(2/pi)*(x + kappa*x^3)
    _GT_K1 = _dd(2 * mpmath.sqrt(2 / mpmath.pi))
    _GT_K3 = _dd(2 * mpmath.sqrt(2 / mpmath.pi) * mpmath.mpf(_GELU_KAPPA_STR))

# ---------------------------------------------------------------------------
# Error-free transformations (double-double building blocks).
# ---------------------------------------------------------------------------

_SPLITTER = 134217729.0  # 2**27 + 1; operands must stay below ~1e300


def _split(a):
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    """a*b == p + e exactly (Dekker), for finite |a|, |b| < 1e300."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _two_sum(a, b):
    """a+b == s + e exactly (Knuth), for finite a, b."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    return _fast_two_sum(p, e + (ah * bl + al * bh))


def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    return _fast_two_sum(s, e + (al + bl))


def _horner(coeffs, t):
    """sum(coeffs[k] * t**(n-1-k)): coefficients from the highest degree down."""
    acc = np.full_like(t, coeffs[0])
    for c in coeffs[1:]:
        acc = acc * t + c
    return acc


def _scaled(beta: float, x, limit: float = 1000.0):
    """beta*x as the unevaluated sum ``uh + ul``, with |beta*x| clamped to `limit`.

    Returns (xc, uh, ul), xc being x clamped accordingly.  Every caller only
    needs u up to a few hundred: beyond, sigmoid(u) is 0 or 1 and exp(-|u|) is
    0.  The clamp also keeps Dekker's split finite.
    """
    if beta == 0.0:
        z = np.zeros_like(x)
        return np.where(np.isfinite(x), x, 0.0), z, z
    bound = min(limit / abs(beta), 1e300)
    xc = np.clip(x, -bound, bound)
    if abs(beta) >= 1e290:  # split(beta) would overflow; never met in practice
        return xc, beta * xc, np.zeros_like(xc)
    return (xc, *_two_prod(beta, xc))


# ---------------------------------------------------------------------------
# Scalar building blocks shared by several activations.
# ---------------------------------------------------------------------------


def _inv_one_plus(e):
    """1/(1+e) for e >= 0, correcting for the rounding of 1+e."""
    s = 1.0 + e
    err = e - (s - 1.0)  # 1 + e == s + err exactly (|e| <= 1 here or s == e)
    return (1.0 - err / s) / s


def _sigmoid(t):
    """sigma(t) = 1/(1+e^-t), split by sign so exp never overflows."""
    e = np.exp(-np.abs(t))  # in [0, 1]
    r = _inv_one_plus(e)
    return np.where(t >= 0, r, e * r)


def _sigmoid_prime(t):
    """sigma(t)*sigma(-t) = e/(1+e)^2 with e = exp(-|t|).

    Not sigma*(1-sigma): 1-sigma(t) is 0 once sigma(t) rounds to 1 (t > 37).
    """
    e = np.exp(-np.abs(t))
    r = _inv_one_plus(e)
    return e * r * r


def _sigmoid_dd(th, tl):
    """sigma(th + tl) to first order in tl (tl is below an ulp of th)."""
    return _sigmoid(th) + _sigmoid_prime(th) * tl


def _gauss_scale(a, x):
    """a * exp(-x*x/2) for |x| <= 40.

    x*x is formed exactly: its rounding would cost x*x/2 ulp in the result (up
    to 700 ulp near |x| = 37, where gelu is still normal).  Past x*x/2 = 700
    the exponential is taken as exp(-x*x/4)**2 and applied in two steps, so
    that it does not turn subnormal before the (larger) final result does.
    """
    p, e = _two_prod(x, x)
    a = a - a * (0.5 * e)
    q = np.exp(-0.25 * p)
    return np.where(p > 1400.0, (a * q) * q, a * np.exp(-0.5 * p))


def _mul_exp(a, t):
    """a * exp(t) for t <= 0, without a subnormal intermediate.

    Below t = -700, exp(t) is applied as exp(t/2) twice (t/2 is exact), so the
    product keeps full precision whenever it is normal itself, for |a| up to
    e^700.  (x*sigmoid(x) is normal down to x = -711, exp(x) only to -708.)
    """
    t = np.minimum(t, 0.0)  # callers evaluate both branches of a where()
    half = np.exp(0.5 * t)
    return np.where(t < -700.0, (a * half) * half, a * np.exp(t))


def _times_weight(w, x):
    """w*x with 0 * (+-inf) taken as 0, the limit of w*x for the fixed slope w = 0.

    (A slope above 1 in magnitude overflows for huge x, as the true product does.)
    """
    with np.errstate(over="ignore"):
        return w * np.where(np.isinf(x) & (w == 0.0), 0.0, x)


# ---------------------------------------------------------------------------
# Exact gelu.  With R(x) = Phi(x)/phi(x) (the Mills ratio of -x), for x <= 0
#   gelu(x)  = x T(x) exp(-x^2/2),  T = R/sqrt(2 pi) = Phi(x) exp(x^2/2),
#   gelu'(x) = U(x) exp(-x^2/2),    U = (x + R)/sqrt(2 pi),
# and for x > 0 the same through Phi(x) = 1 - Phi(-x).  T and U are smooth and
# tabulated as Taylor polynomials about x0 = -k/8 (k = 0..320, |x - x0| <= 1/16,
# x - x0 exact).  This is more accurate than SciPy's erfc (whose argument x/sqrt2
# is rounded, an error amplified x^2 times) and than its erfcx (up to 3.5 ulp).
# R' = 1 + x R, hence R^(n+1) = x R^(n) + n R^(n-1): the coefficients come from
# one mpmath value of R per node.
# ---------------------------------------------------------------------------


class _MillsTable:
    step = 8  # nodes per unit
    nodes = 321  # x0 = 0, -1/8, ..., -40
    nterms = 16

    @functools.cached_property
    def coeffs(self) -> tuple[np.ndarray, np.ndarray]:
        t_rows, u_rows = [], []
        with mp.workdps(40):
            c = 1 / mpmath.sqrt(2 * mpmath.pi)
            for k in range(self.nodes):
                x0 = mpmath.mpf(-k) / self.step
                r = [mpmath.sqrt(mpmath.pi / 2) * mpmath.erfc(-x0 / mpmath.sqrt(2)) * mpmath.exp(x0 * x0 / 2)]
                r.append(1 + x0 * r[0])
                for n in range(1, self.nterms - 1):
                    r.append((x0 * r[n] + r[n - 1]) / (n + 1))
                t = [v * c for v in r]
                u = list(t)
                u[0] += x0 * c
                u[1] += c
                t_rows.append([float(v) for v in reversed(t)])
                u_rows.append([float(v) for v in reversed(u)])
        # one row per power, highest first: column k belongs to node k
        return np.array(t_rows).T.copy(), np.array(u_rows).T.copy()

    def evaluate(self, x):
        """(T(x), U(x)) for finite x in [-40, 0]."""
        t_tab, u_tab = self.coeffs
        k = np.rint(-x * self.step).astype(np.intp)
        d = x + k / self.step  # exact
        t, u = t_tab[0][k], u_tab[0][k]
        for j in range(1, self.nterms):  # gathers one column at a time: O(x.size) memory
            t = t * d + t_tab[j][k]
            u = u * d + u_tab[j][k]
        return t, u


_GELU_TABLE = _MillsTable()


# ---------------------------------------------------------------------------
# Taylor patches at interior roots of derivatives.
#
# Near a simple root r of f every closed form of f cancels, so its relative
# error grows like 1/|x - r|.  There f(r + d) = d * P(d), with d formed exactly
# from r held in double-double, and P a Taylor polynomial whose coefficients
# are computed once with mpmath.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _RootPatch:
    mp_func: Callable[..., Any]  # mpmath function of one variable
    guess: float
    radius: float
    nterms: int

    @functools.cached_property
    def data(self) -> tuple[float, float, np.ndarray]:
        with mp.workdps(40):
            root = mpmath.findroot(self.mp_func, mpmath.mpf(self.guess))
            taylor = mpmath.taylor(self.mp_func, root, self.nterms)
            rh, rl = _dd(root)
        # f(r + d) = d * sum_k taylor[k+1] d^k; coefficients highest degree first
        coeffs = np.array([float(c) for c in taylor[:0:-1]])
        return rh, rl, coeffs

    def apply(self, uh, ul, y):
        rh, rl, coeffs = self.data
        d = (uh - rh) + (ul - rl)  # uh - rh is exact inside the patch (Sterbenz)
        inside = np.abs(d) <= self.radius
        d = np.where(inside, d, 0.0)
        return np.where(inside, d * _horner(coeffs, d), y)


# ---------------------------------------------------------------------------
# mpmath definitions.  They use the ambient mpmath precision; mp_forward and
# mp_grad wrap them with enough working precision.  Parameters arrive as mpf.
# ---------------------------------------------------------------------------


# exp(-a) for a > 2**40 is below 2**-(10**12): flushed to zero.  Beyond that
# mpmath would need thousands of bits just to place the exponent, and no float
# format is near.
_MP_EXP_CUTOFF = mpmath.mpf(2) ** 40


def _mp_exp(t):
    if t < -_MP_EXP_CUTOFF:
        return mpmath.mpf(0)
    return mpmath.exp(t)


def _mp_sig(t):
    e = _mp_exp(-abs(t))
    return 1 / (1 + e) if t >= 0 else e / (1 + e)


def _mp_sig_prime(t):
    e = _mp_exp(-abs(t))
    return e / (1 + e) ** 2


def _mp_sech2(t):
    e = _mp_exp(-2 * abs(t))
    return 4 * e / (1 + e) ** 2


def _mp_softplus0(t):
    return max(t, 0) + mpmath.log1p(_mp_exp(-abs(t)))


def _mp_npdf(x):
    return _mp_exp(-(x * x) / 2) / mpmath.sqrt(2 * mpmath.pi)


def _mp_ncdf(x):
    if x < -(mpmath.mpf(2) ** 20):
        return mpmath.mpf(0)  # below exp(-2**39)
    if x > mpmath.mpf(2) ** 20:
        return mpmath.mpf(1)
    return mpmath.ncdf(x)


def _mp_gelu_tanh_v(x):
    # v = 2u, u = sqrt(2/pi) (x + kappa x^3);  0.5x(1+tanh u) = x sigma(2u)
    k = mpmath.sqrt(2 / mpmath.pi)
    kappa = mpmath.mpf(_GELU_KAPPA_STR)
    return 2 * k * (x + kappa * x**3), 2 * k * (1 + 3 * kappa * x**2)


def _mp_silu_grad_u(u):
    return _mp_sig(u) * (1 + u * _mp_sig(-u))


def _mp_gelu_grad(x):
    return _mp_ncdf(x) + x * _mp_npdf(x)


def _mp_gelu_tanh_grad(x):
    v, dv = _mp_gelu_tanh_v(x)
    return _mp_sig(v) + x * _mp_sig_prime(v) * dv


def _mp_mish_grad(x):
    sp = _mp_softplus0(x)
    return mpmath.tanh(sp) + x * _mp_sech2(sp) * _mp_sig(x)


def _mp_tanhshrink(x):
    # x - tanh x loses about 2*log2(1/|x|) bits for small |x|: add them.
    extra = max(0, -2 * int(mpmath.mag(x))) + 20 if x != 0 else 0
    with mp.extraprec(extra):
        return x - mpmath.tanh(x)


def _mp_selu(x):
    alpha = mpmath.mpf(_SELU_ALPHA_STR)
    scale = mpmath.mpf(_SELU_SCALE_STR)
    return scale * x if x > 0 else scale * alpha * mpmath.expm1(x)


def _mp_selu_grad(x):
    alpha = mpmath.mpf(_SELU_ALPHA_STR)
    scale = mpmath.mpf(_SELU_SCALE_STR)
    return scale if x > 0 else scale * alpha * _mp_exp(x)


def _mp_gelu(x, approximate):
    if approximate == "tanh":
        return x * _mp_sig(_mp_gelu_tanh_v(x)[0])
    return x * _mp_ncdf(x)


def _mp_gelu_g(x, approximate):
    if approximate == "tanh":
        return _mp_gelu_tanh_grad(x)
    return _mp_gelu_grad(x)


def _softplus_linear(x, beta, threshold) -> bool:
    # PyTorch rounds beta*x to the working dtype before comparing.
    return float(beta) * float(x) > float(threshold)


_ZERO = mpmath.mpf(0)
_ONE = mpmath.mpf(1)


def _mp_step(cond):
    return _ONE if cond else _ZERO


# name -> (forward, grad); each takes (x, **params) with mpf x and parameters.
_MP: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "sigmoid": (lambda x: _mp_sig(x), lambda x: _mp_sig_prime(x)),
    "tanh": (lambda x: mpmath.tanh(x), _mp_sech2),
    "relu": (lambda x: x if x > 0 else _ZERO, lambda x: _mp_step(x > 0)),
    "relu6": (
        lambda x: min(max(x, _ZERO), mpmath.mpf(6)),
        lambda x: _mp_step(0 < x < 6),
    ),
    "leaky_relu": (
        lambda x, negative_slope: x if x > 0 else negative_slope * x,
        lambda x, negative_slope: _ONE if x > 0 else negative_slope,
    ),
    "elu": (
        lambda x, alpha: x if x > 0 else alpha * mpmath.expm1(x),
        lambda x, alpha: _ONE if x > 0 else alpha * _mp_exp(x),
    ),
    "celu": (
        lambda x, alpha: x if x > 0 else alpha * mpmath.expm1(x / alpha),
        lambda x, alpha: _ONE if x > 0 else _mp_exp(x / alpha),
    ),
    "selu": (_mp_selu, _mp_selu_grad),
    "gelu": (_mp_gelu, _mp_gelu_g),
    "silu": (lambda x: x * _mp_sig(x), _mp_silu_grad_u),
    "swish": (
        lambda x, beta: x * _mp_sig(beta * x),
        lambda x, beta: _mp_silu_grad_u(beta * x),
    ),
    "mish": (lambda x: x * mpmath.tanh(_mp_softplus0(x)), _mp_mish_grad),
    "softplus": (
        lambda x, beta, threshold: (
            x if _softplus_linear(x, beta, threshold) else _mp_softplus0(beta * x) / beta
        ),
        lambda x, beta, threshold: (
            _ONE if _softplus_linear(x, beta, threshold) else _mp_sig(beta * x)
        ),
    ),
    "softsign": (lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2),
    "logsigmoid": (lambda x: -_mp_softplus0(-x), lambda x: _mp_sig(-x)),
    "hardtanh": (
        lambda x, min_val, max_val: min(max(x, min_val), max_val),
        lambda x, min_val, max_val: _mp_step(min_val < x < max_val),
    ),
    "hardsigmoid": (
        lambda x: min(max(x + 3, _ZERO), mpmath.mpf(6)) / 6,
        lambda x: mpmath.mpf(1) / 6 if -3 < x < 3 else _ZERO,
    ),
    "hardswish": (
        lambda x: x * min(max(x + 3, _ZERO), mpmath.mpf(6)) / 6,
        lambda x: _ZERO if x <= -3 else (_ONE if x >= 3 else x / 3 + mpmath.mpf(1) / 2),
    ),
    "tanhshrink": (_mp_tanhshrink, lambda x: mpmath.tanh(x) ** 2),
    "softshrink": (
        lambda x, lambd: x - lambd if x > lambd else (x + lambd if x < -lambd else _ZERO),
        lambda x, lambd: _mp_step(abs(x) > lambd),
    ),
    "hardshrink": (
        lambda x, lambd: x if abs(x) > lambd else _ZERO,
        lambda x, lambd: _mp_step(abs(x) > lambd),
    ),
    "threshold": (
        lambda x, threshold, value: x if x > threshold else value,
        lambda x, threshold, value: _mp_step(x > threshold),
    ),
}

# Interior roots of derivatives; radius and number of terms are chosen so that
# the closed forms are accurate outside and the polynomial inside.
_PATCH_SILU = _RootPatch(_mp_silu_grad_u, -1.2785, 0.3, 22)
_PATCH_GELU = _RootPatch(_mp_gelu_grad, -0.7518, 0.3, 22)
_PATCH_GELU_TANH = _RootPatch(_mp_gelu_tanh_grad, -0.7522, 0.3, 24)
_PATCH_MISH = _RootPatch(_mp_mish_grad, -1.1924, 0.3, 24)


# ---------------------------------------------------------------------------
# Float64 elementwise references: x is a float64 array, parameters floats.
# ---------------------------------------------------------------------------


def _sigmoid_f(x):
    return _sigmoid(x)


def _sigmoid_g(x):
    return _sigmoid_prime(x)


def _tanh_f(x):
    return np.tanh(x)


def _tanh_g(x):
    # sech^2 x = 4 e/(1+e)^2, e = exp(-2|x|); not 1 - tanh^2, which is 0 for |x| > 19
    t = -2.0 * np.abs(np.clip(x, -1000.0, 1000.0))
    r = _inv_one_plus(np.exp(t))
    return _mul_exp(4.0 * r * r, t)


def _relu_f(x):
    return np.where(x > 0, x, 0.0)


def _relu_g(x):
    return np.where(x > 0, 1.0, 0.0)


def _relu6_f(x):
    return np.where(x > 0, np.minimum(x, 6.0), 0.0)


def _relu6_g(x):
    return np.where((x > 0) & (x < 6), 1.0, 0.0)


def _leaky_relu_f(x, negative_slope):
    return np.where(x > 0, x, _times_weight(negative_slope, x))


def _leaky_relu_g(x, negative_slope):
    return np.where(x > 0, 1.0, negative_slope)


def _elu_f(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _elu_g(x, alpha):
    return np.where(x > 0, 1.0, _mul_exp(alpha, np.minimum(x, 0.0)))


def _celu_quotient(x, alpha):
    """q = x/alpha on the x <= 0 branch as qh + ql, with |q| clamped to 800."""
    xn = np.clip(x, -800.0 * abs(alpha), 0.0)
    qh = xn / alpha
    if not 1e-200 < abs(alpha) < 1e200:
        return qh, np.zeros_like(qh)
    # remainder of the division, exact: x - qh*alpha (qh*alpha ~ x: Sterbenz)
    p, e = _two_prod(qh, alpha)
    ql = ((xn - p) - e) / alpha
    return qh, ql


def _celu_f(x, alpha):
    qh, ql = _celu_quotient(x, alpha)
    qs = np.minimum(qh, 700.0)
    em1 = np.expm1(qs) + np.exp(qs) * ql
    # q > 700 only for alpha < 0, where alpha*expm1(q) = alpha*e^q may overflow for
    # real: e^q applied as e^(q/2) twice so that it overflows only if the result does
    half = np.exp(0.5 * qh)
    with np.errstate(over="ignore"):
        big = (alpha * (half + half * ql)) * half
    return np.where(x > 0, x, np.where(qh > 700.0, big, alpha * em1))


def _celu_g(x, alpha):
    qh, ql = _celu_quotient(x, alpha)
    ex = np.exp(np.minimum(qh, 700.0))
    half = np.exp(0.5 * qh)
    with np.errstate(over="ignore"):
        big = (half + half * ql) * half
    return np.where(x > 0, 1.0, np.where(qh > 700.0, big, ex + ex * ql))


def _selu_f(x):
    with np.errstate(over="ignore"):  # scale*x overflows for x > 1.7e308: so does selu
        pos = SELU_SCALE * x
    return np.where(x > 0, pos, _SELU_SA * np.expm1(np.minimum(x, 0.0)))


def _selu_g(x):
    return np.where(x > 0, SELU_SCALE, _mul_exp(_SELU_SA, np.minimum(x, 0.0)))


def _gelu_none_parts(x):
    """x clamped to [-40, 40] (NaN -> 0), and the two Mills-ratio tables at -|x|."""
    xc = np.clip(x, -40.0, 40.0)
    xc = np.where(np.isnan(xc), 0.0, xc)
    t_phi, t_grad = _GELU_TABLE.evaluate(-np.abs(xc))
    return xc, t_phi, t_grad


def _gelu_f(x, approximate):
    if approximate == "tanh":
        return _gelu_tanh_f(x)
    xc, t_phi, _ = _gelu_none_parts(x)
    # x < 0: x Phi(x) = (x T(x)) exp(-x^2/2);  x >= 0: x (1 - Phi(-x))
    neg = _gauss_scale(xc * t_phi, xc)
    pos = x * (1.0 - _gauss_scale(t_phi, xc))
    return np.where(x < -40.0, -0.0, np.where(xc < 0, neg, pos))


def _gelu_g(x, approximate):
    if approximate == "tanh":
        return _gelu_tanh_g(x)
    xc, t_phi, t_grad = _gelu_none_parts(x)
    # x < 0: Phi(x) + x phi(x) = U(x) exp(-x^2/2)
    neg = _gauss_scale(t_grad, xc)
    # x >= 0: 1 - Phi(-x) + x phi(x) = 1 + exp(-x^2/2) (x/sqrt(2 pi) - T(-x))
    pos = 1.0 + _gauss_scale(xc * _INV_SQRT_2PI - t_phi, xc)
    y = np.where(x < -40.0, -0.0, np.where(xc < 0, neg, pos))
    return _PATCH_GELU.apply(xc, 0.0, y)


def _gelu_tanh_v(x):
    """v = K1*x + K3*x^3 and P = 1 + x v' = 1 + K1*x + 3*K3*x^3, both in
    double-double, for |x| <= 30.

    sigmoid(v) multiplies the rounding error of v by |v|, and |v| reaches 700
    where the result is still normal; P cancels near gelu's minimum.
    """
    k1h, k1l = _GT_K1
    k3h, k3l = _GT_K3
    sh, sl = _two_prod(x, x)
    ch, cl = _two_prod(sh, x)
    cl = cl + sl * x
    th, tl = _dd_mul(k3h, k3l, ch, cl)
    ah, al = _dd_mul(k1h, k1l, x, 0.0)
    vh, vl = _dd_add(ah, al, th, tl)
    t3h, t3l = _two_prod(3.0, th)
    bh, bl = _dd_add(ah, al, t3h, t3l + 3.0 * tl)
    ph, pl = _dd_add(1.0, 0.0, bh, bl)
    return vh, vl, ph, pl


def _sigmoid_parts(th):
    """e = exp(-|t|), r = 1/(1+e), sigma(t), sigma(-t)."""
    e = np.exp(-np.abs(th))
    r = _inv_one_plus(e)
    er = e * r
    pos = th >= 0
    return e, r, np.where(pos, r, er), np.where(pos, er, r)


# For t = th + tl (tl below an ulp of th), to first order in tl:
#   sigma(t)  = sigma(th) (1 + sigma(-th) tl)
#   sigma'(t) = sigma'(th) (1 + (sigma(-th) - sigma(th)) tl)
# and for th < 0 both carry the factor e = exp(th), applied last by _mul_exp.


def _gelu_tanh_f(x):
    xc = np.clip(x, -30.0, 30.0)
    vh, vl, _, _ = _gelu_tanh_v(xc)
    _, r, s, sm = _sigmoid_parts(vh)
    # 0.5x(1 + tanh u) = x sigma(2u): no cancellation for negative x
    pos = np.where(vh >= 0, x, 0.0) * (s + s * sm * vl)  # x > 30 (and inf) too
    a = xc * r
    neg = _mul_exp(a + a * sm * vl, vh)
    return np.where(vh >= 0, pos, neg)


def _gelu_tanh_g(x):
    # f = sigma(v) + x sigma'(v) v',  v' = K1 + 3 K3 x^2,  P = 1 + x v'
    # v < 0 (e = e^v):  f = e r^2 (P + e),            df/dv = e r^2 (1 + x (1-e) r v')
    # v > 0 (e = e^-v): f = r^2 (1 + e + x e v'),     df/dv = e r^2 (1 + x (e-1) r v')
    xc = np.clip(x, -30.0, 30.0)
    vh, vl, ph, pl = _gelu_tanh_v(xc)
    e, r, _, _ = _sigmoid_parts(vh)
    dv = _GT_K1[0] + 3.0 * _GT_K3[0] * (xc * xc)
    r2 = r * r
    neg = _mul_exp(r2 * (((ph + e) + pl) + (1.0 + xc * (1.0 - e) * r * dv) * vl), vh)
    pos = r2 * ((1.0 + e + xc * e * dv) + e * (1.0 + xc * (e - 1.0) * r * dv) * vl)
    y = np.where(vh >= 0, pos, neg)
    return _PATCH_GELU_TANH.apply(xc, 0.0, y)


def _swish_core_f(x, xc, uh, ul):
    # x sigma(u); u < 0: x r e^u (1 + sigma(-u) ul)
    _, r, s, sm = _sigmoid_parts(uh)
    pos = np.where(uh >= 0, x, 0.0) * (s + s * sm * ul)  # x itself: it may be inf
    a = xc * r
    neg = _mul_exp(a + a * sm * ul, uh)
    return np.where(uh >= 0, pos, neg)


def _swish_core_g(uh, ul):
    # h(u) = sigma(u) (1 + u sigma(-u)),  h'(u) = sigma'(u) (2 + u (sigma(-u) - sigma(u)))
    # u < 0 (e = e^u):  h = e r^2 ((1 + u) + e),  h' = e r^2 (2 + u (1-e) r)
    # u > 0 (e = e^-u): h = r^2 (1 + e + u e),    h' = e r^2 (2 + u (e-1) r)
    # (1 + u is exact where it cancels, so only the root itself is ill-conditioned)
    e, r, _, _ = _sigmoid_parts(uh)
    r2 = r * r
    neg = _mul_exp(r2 * (((1.0 + uh) + e) + (2.0 + uh * (1.0 - e) * r) * ul), uh)
    pos = r2 * ((1.0 + e + uh * e) + e * (2.0 + uh * (e - 1.0) * r) * ul)
    h = np.where(uh >= 0, pos, neg)
    return _PATCH_SILU.apply(uh, ul, h)


def _silu_f(x):
    return _swish_core_f(x, *_scaled(1.0, x))


def _silu_g(x):
    return _swish_core_g(*_scaled(1.0, x)[1:])


def _swish_f(x, beta):
    return _swish_core_f(x, *_scaled(beta, x))


def _swish_g(x, beta):
    return _swish_core_g(*_scaled(beta, x)[1:])


def _mish_f(x):
    xc = np.clip(x, -1000.0, 50.0)
    e = np.exp(-np.abs(xc))
    # tanh(log(1+e^x)) = n/(n+2), n = e^x (e^x + 2); for x > 0 divided by e^2x
    n = e * (e + 2.0)
    neg = _mul_exp(xc * (e + 2.0) / (n + 2.0), xc)
    pos = xc * ((1.0 + 2.0 * e) / (1.0 + 2.0 * e + 2.0 * e * e))
    return np.where(x > 50.0, x, np.where(xc <= 0, neg, pos))


def _mish_g(x):
    xc = np.clip(x, -1000.0, 50.0)
    e = np.exp(-np.abs(xc))
    # x <= 0 (e = e^x):  [n(n+2) + 4 x e (1+e)] / (n+2)^2
    #   = e [4(1 + x) + e (6 + 4x + e (4 + e))] / (n+2)^2,  1 + x exact where it cancels
    n2 = e * (e + 2.0) + 2.0
    num = 4.0 * (1.0 + xc) + e * ((6.0 + 4.0 * xc) + e * (4.0 + e))
    neg = _mul_exp(num / (n2 * n2), xc)
    # x > 0 (e = e^-x): (1+2e)/m + 4 x e^2 (1+e)/m^2,  m = 1 + 2e + 2e^2
    m = 1.0 + 2.0 * e + 2.0 * e * e
    pos = (1.0 + 2.0 * e) / m + 4.0 * xc * (e * e) * (1.0 + e) / (m * m)
    y = np.where(x > 50.0, 1.0, np.where(xc <= 0, neg, pos))
    return _PATCH_MISH.apply(xc, 0.0, y)


def _softplus_f(x, beta, threshold):
    with np.errstate(over="ignore"):
        linear = beta * x > threshold  # the rounded product, as PyTorch compares it
    _, uh, ul = _scaled(beta, x)
    a = np.abs(uh)
    # log1p(e^-|u|) at u = uh + ul; its u-derivative is -sign(u) sigma(-|u|)
    t = np.log1p(np.exp(-a)) - np.sign(uh) * _sigmoid(-a) * ul
    # (max(u,0) + log1p(e^-|u|))/beta, with max(u,0)/beta == x exactly for u > 0
    y = np.where(uh > 0, x, 0.0) + t / beta
    # u < -700: log1p(e^u)/beta = e^u/beta, with e^u subnormal and the result maybe not
    half = np.exp(0.5 * np.minimum(uh, 0.0))
    tiny = ((half + half * ul) / beta) * half
    y = np.where(uh < -700.0, tiny, y)
    return np.where(linear, x, y)


def _softplus_g(x, beta, threshold):
    with np.errstate(over="ignore"):
        linear = beta * x > threshold
    _, uh, ul = _scaled(beta, x)
    return np.where(linear, 1.0, _sigmoid_dd(uh, ul))


def _softsign_parts(x):
    xc = np.clip(x, -1e300, 1e300)
    a = np.abs(xc)
    s, err = _two_sum(1.0, a)  # 1 + |x| == s + err
    r = (1.0 - err / s) / s  # 1/(1+|x|)
    return xc, a, r


def _softsign_f(x):
    xc, a, r = _softsign_parts(x)
    # |x|/(1+|x|) = 1 - 1/(1+|x|) for |x| >= 1: never rounds above 1
    return np.where(a >= 1.0, np.sign(xc) * (1.0 - r), xc * r)


def _softsign_g(x):
    _, _, r = _softsign_parts(x)
    return r * r  # (1/(1+|x|))^2: (1+|x|)^2 would overflow for |x| > 1e154


def _logsigmoid_f(x):
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _logsigmoid_g(x):
    return _sigmoid(-x)


def _hardtanh_f(x, min_val, max_val):
    return np.where(x < min_val, min_val, np.where(x > max_val, max_val, x))


def _hardtanh_g(x, min_val, max_val):
    return np.where((x > min_val) & (x < max_val), 1.0, 0.0)


def _hardsigmoid_f(x):
    xc = np.clip(x, -3.0, 3.0)
    return (xc + 3.0) / 6.0  # x + 3 is exact near -3 (Sterbenz)


def _hardsigmoid_g(x):
    return np.where((x > -3) & (x < 3), 1.0 / 6.0, 0.0)


def _hardswish_f(x):
    xc = np.clip(x, -3.0, 3.0)
    return np.where(x >= 3.0, x, xc * (xc + 3.0) / 6.0)


def _hardswish_g(x):
    # (2x + 3)/6 rather than x/3 + 1/2: exact numerator, no cancellation at -1.5
    mid = (2.0 * np.clip(x, -3.0, 3.0) + 3.0) / 6.0
    return np.where(x <= -3.0, 0.0, np.where(x >= 3.0, 1.0, mid))


def _tanhshrink_coeffs(nterms: int = 16) -> np.ndarray:
    # x cosh x - sinh x = x^3 sum_{k>=1} 2k/(2k+1)! x^(2k-2): positive terms
    c = [Fraction(2 * k, math.factorial(2 * k + 1)) for k in range(1, nterms + 1)]
    return np.array([float(v) for v in reversed(c)])


_TANHSHRINK_C = _tanhshrink_coeffs()


def _tanhshrink_f(x):
    a = np.abs(x)
    small = a < 2.0
    xs = np.where(small, x, 0.0)
    t = xs * xs
    # x - tanh x = (x cosh x - sinh x)/cosh x: cancellation-free for |x| < 2
    ys = (xs * t) * _horner(_TANHSHRINK_C, t) / np.cosh(xs)
    # |x| >= 2: x - tanh x loses at most a factor 2
    return np.where(small, ys, x - np.tanh(x))


def _tanhshrink_g(x):
    t = np.tanh(x)
    return t * t  # 1 - sech^2 x, without the cancellation


def _softshrink_f(x, lambd):
    return np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, 0.0))


def _softshrink_g(x, lambd):
    return np.where(np.abs(x) > lambd, 1.0, 0.0)


def _hardshrink_f(x, lambd):
    return np.where(np.abs(x) > lambd, x, 0.0)


def _hardshrink_g(x, lambd):
    return np.where(np.abs(x) > lambd, 1.0, 0.0)


def _threshold_f(x, threshold, value):
    return np.where(x > threshold, x, value)


def _threshold_g(x, threshold, value):
    return np.where(x > threshold, 1.0, 0.0)


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------

def _as_f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _to_inf_substitute(x: float) -> mpmath.mpf:
    return mpmath.mpf(2) ** 1100 * (1 if x > 0 else -1)


_MP_OVERFLOW = mpmath.mpf(2) ** 1024
_MP_UNDERFLOW = mpmath.mpf(2) ** -1100


def _mp_eval(func: Callable[..., Any], x: Any, params: dict[str, Any]) -> mpmath.mpf:
    with mp.workdps(MP_DPS):
        xf = float(x) if not isinstance(x, mpmath.mpf) else x
        if mpmath.isnan(xf):
            return mpmath.mpf("nan")
        mparams = {
            k: (v if isinstance(v, str) else mpmath.mpf(float(v))) for k, v in params.items()
        }
        infinite = mpmath.isinf(xf)
        xm = _to_inf_substitute(xf) if infinite else mpmath.mpf(xf)
        # autoprec raises the precision until two evaluations agree to the
        # full target precision: it absorbs the cancellation near roots.
        value = mp.autoprec(func)(xm, **mparams)
        if infinite:
            # value at +-2**1100: snap to the limit where it over/underflows
            if abs(value) >= _MP_OVERFLOW:
                return mpmath.inf if value > 0 else -mpmath.inf
            if abs(value) < _MP_UNDERFLOW:
                return mpmath.mpf(0)
        return +value


@dataclass(frozen=True)
class Ref:
    """Reference for one elementwise activation.

    ``forward(x, **params)`` and ``grad(x, **params)`` (dy/dx) return float64
    arrays shaped like ``x``; ``mp_forward`` / ``mp_grad`` the mpmath values at
    a scalar.  Parameters are keywords: ``params`` holds the defaults and
    ``required`` the ones without a default.
    """

    name: str
    _forward: Callable[..., np.ndarray] = field(repr=False)
    _grad: Callable[..., np.ndarray] = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults merged with `params`; floats for numeric parameters."""
        unknown = set(params) - set(self.params) - set(self.required)
        if unknown:
            raise TypeError(f"{self.name}: unexpected parameter(s) {sorted(unknown)}")
        missing = [k for k in self.required if k not in params]
        if missing:
            raise TypeError(f"{self.name}: missing required parameter(s) {missing}")
        out = {**self.params, **params}
        for k, v in out.items():
            if k == "approximate":
                if v not in ("none", "tanh"):
                    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', not {v!r}")
            else:
                out[k] = float(v)
        if self.name == "celu" and out["alpha"] == 0.0:
            raise ValueError("celu: alpha must be non-zero")
        if self.name == "softplus" and out["beta"] == 0.0:
            raise ValueError("softplus: beta must be non-zero")
        return out

    def _run(self, func, x, params) -> np.ndarray:
        p = self.resolve(params)
        x = _as_f64(x)
        with np.errstate(under="ignore"):
            y = np.asarray(func(x, **p), dtype=np.float64)
        y = np.broadcast_to(y, x.shape)
        return np.where(np.isnan(x), np.nan, y)

    def forward(self, x, **params) -> np.ndarray:
        return self._run(self._forward, x, params)

    def grad(self, x, **params) -> np.ndarray:
        return self._run(self._grad, x, params)

    def mp_forward(self, x, **params) -> mpmath.mpf:
        return _mp_eval(_MP[self.name][0], x, self.resolve(params))

    def mp_grad(self, x, **params) -> mpmath.mpf:
        return _mp_eval(_MP[self.name][1], x, self.resolve(params))


def _ref(name, f, g, params=None, required=()):
    return Ref(name, f, g, dict(params or {}), tuple(required))


ELEMENTWISE: dict[str, Ref] = {
    r.name: r
    for r in [
        _ref("sigmoid", _sigmoid_f, _sigmoid_g),
        _ref("tanh", _tanh_f, _tanh_g),
        _ref("relu", _relu_f, _relu_g),
        _ref("relu6", _relu6_f, _relu6_g),
        _ref("leaky_relu", _leaky_relu_f, _leaky_relu_g, {"negative_slope": 0.01}),
        _ref("elu", _elu_f, _elu_g, {"alpha": 1.0}),
        _ref("celu", _celu_f, _celu_g, {"alpha": 1.0}),
        _ref("selu", _selu_f, _selu_g),
        _ref("gelu", _gelu_f, _gelu_g, {"approximate": "none"}),
        _ref("silu", _silu_f, _silu_g),
        _ref("swish", _swish_f, _swish_g, {"beta": 1.0}),
        _ref("mish", _mish_f, _mish_g),
        _ref("softplus", _softplus_f, _softplus_g, {"beta": 1.0, "threshold": 20.0}),
        _ref("softsign", _softsign_f, _softsign_g),
        _ref("logsigmoid", _logsigmoid_f, _logsigmoid_g),
        _ref("hardtanh", _hardtanh_f, _hardtanh_g, {"min_val": -1.0, "max_val": 1.0}),
        _ref("hardsigmoid", _hardsigmoid_f, _hardsigmoid_g),
        _ref("hardswish", _hardswish_f, _hardswish_g),
        _ref("tanhshrink", _tanhshrink_f, _tanhshrink_g),
        _ref("softshrink", _softshrink_f, _softshrink_g, {"lambd": 0.5}),
        _ref("hardshrink", _hardshrink_f, _hardshrink_g, {"lambd": 0.5}),
        _ref("threshold", _threshold_f, _threshold_g, {}, ("threshold", "value")),
    ]
}


def mp_forward(name: str, x, **params) -> mpmath.mpf:
    """Exact forward value (50 significant digits) of activation `name` at float `x`.

    For x = +-inf the value at +-2**1100 is returned, snapped to +-inf or 0
    where that over- or underflows float64, so ``float()`` of it is the limit.
    """
    return ELEMENTWISE[name].mp_forward(x, **params)


def mp_grad(name: str, x, **params) -> mpmath.mpf:
    """Exact derivative (50 significant digits) of activation `name` at float `x`."""
    return ELEMENTWISE[name].mp_grad(x, **params)


# ---------------------------------------------------------------------------
# Row-wise references.
# ---------------------------------------------------------------------------


def _rows(x, axis, where):
    """x moved so `axis` is last, and the mask (all True without `where`)."""
    x = _as_f64(x)
    if x.ndim == 0:
        raise ValueError("row-wise functions need at least one dimension")
    xm = np.moveaxis(x, axis, -1)
    if where is None:
        mask = np.ones(xm.shape, dtype=bool)
    else:
        mask = np.moveaxis(np.broadcast_to(np.asarray(where, dtype=bool), x.shape), axis, -1)
    return x, xm, mask


def _softmax_parts(xm, mask):
    """Pieces of a stable softmax along the last axis.

    Returns (e, t, zh, zl, empty, bad): e = exp(x - max) (0 where masked),
    t = the sum of e without one maximal entry (so the row sum is 1 + t with
    no rounding of the leading 1), x - max = zh + zl exactly, and the rows that
    are fully masked (`empty`) or whose maximum is not finite (`bad`).
    """
    xv = np.where(mask, xm, -np.inf)
    m = np.max(xv, axis=-1, keepdims=True) if xm.shape[-1] else np.full(xm.shape[:-1] + (1,), -np.inf)
    empty = ~np.any(mask, axis=-1, keepdims=True)
    bad = ~empty & ~np.isfinite(m)  # NaN, +inf or only -inf among the live entries
    ms = np.where(np.isfinite(m), m, 0.0)
    live = mask & ~bad & (xm > -np.inf)
    xl = np.where(live, xm, ms)
    with np.errstate(over="ignore"):
        z = xl - ms  # overflows to -inf only for a spread beyond 1.8e308: exp is 0
    near = z > -1e4
    zh, zl = _two_sum(np.where(near, xl, ms), -ms)  # x - max, exact
    zh = np.where(near, zh, z)
    zl = np.where(near, zl, 0.0)
    ez = np.exp(zh)
    e = np.where(live, ez + ez * zl, 0.0)
    if xm.shape[-1]:
        first = np.argmax(np.where(live, xm, -np.inf), axis=-1)[..., None]
        rest = e.copy()
        np.put_along_axis(rest, first, 0.0, axis=-1)
        t = np.sum(rest, axis=-1, keepdims=True)
    else:
        t = np.zeros(xm.shape[:-1] + (1,))
    return e, t, zh, zl, empty, bad


def _softmax_m(xm, mask):
    e, t, _, _, empty, bad = _softmax_parts(xm, mask)
    s, err = _two_sum(1.0, t)
    y = e * ((1.0 - err / s) / s)
    y = np.where(mask & bad, np.nan, y)
    return np.where(mask & ~empty, y, 0.0)


def _log_softmax_m(xm, mask):
    e, t, zh, zl, empty, bad = _softmax_parts(xm, mask)
    y = (zh - np.log1p(t)) + zl
    y = np.where(mask & (xm == -np.inf), -np.inf, y)
    y = np.where(mask & bad, np.nan, y)
    return np.where(mask & ~empty, y, -np.inf)


def softmax(x, axis: int = -1, where=None) -> np.ndarray:
    """exp(x - max) / sum exp(x - max) along `axis`.

    `where` (boolean, broadcastable to x) selects the entries that take part;
    the others are 0, and a row with none is all 0.  A row whose live entries
    contain NaN or +inf, or are all -inf, is NaN at its live entries (as PyTorch
    without a mask).
    """
    x, xm, mask = _rows(x, axis, where)
    with np.errstate(under="ignore"):
        return np.moveaxis(_softmax_m(xm, mask), -1, axis)


def log_softmax(x, axis: int = -1, where=None) -> np.ndarray:
    """x - max - log sum exp(x - max) along `axis`.

    Masked-out entries (and fully masked rows) are -inf; NaN rows as in `softmax`.
    """
    x, xm, mask = _rows(x, axis, where)
    with np.errstate(under="ignore"):
        return np.moveaxis(_log_softmax_m(xm, mask), -1, axis)


def softmin(x, axis: int = -1, where=None) -> np.ndarray:
    """softmax(-x)."""
    return softmax(-_as_f64(x), axis=axis, where=where)


def _grad_rows(g, x, axis, where):
    x, xm, mask = _rows(x, axis, where)
    g = np.moveaxis(np.broadcast_to(_as_f64(g), x.shape), axis, -1)
    return x, xm, mask, np.where(mask, g, 0.0)


def softmax_vjp(g, x, axis: int = -1, where=None) -> np.ndarray:
    """Vector-Jacobian product sum_i g_i d y_i / d x_j = y_j (g_j - sum_i g_i y_i).

    0 at masked-out entries and in fully masked rows; NaN in NaN rows.
    """
    x, xm, mask, gm = _grad_rows(g, x, axis, where)
    # inf * 0 is a genuine NaN of the product (as in PyTorch): not a warning
    with np.errstate(under="ignore", invalid="ignore", over="ignore"):
        y = _softmax_m(xm, mask)
        dot = np.sum(gm * y, axis=-1, keepdims=True)
        gx = np.where(mask, y * (gm - dot), 0.0)
    return np.moveaxis(gx, -1, axis)


def log_softmax_vjp(g, x, axis: int = -1, where=None) -> np.ndarray:
    """g . d log_softmax(x) / dx = g - softmax(x) * sum(g); 0 at masked-out entries."""
    x, xm, mask, gm = _grad_rows(g, x, axis, where)
    with np.errstate(under="ignore", invalid="ignore", over="ignore"):
        y = _softmax_m(xm, mask)
        total = np.sum(gm, axis=-1, keepdims=True)
        gx = np.where(mask, gm - y * total, 0.0)
    return np.moveaxis(gx, -1, axis)


def softmin_vjp(g, x, axis: int = -1, where=None) -> np.ndarray:
    """g . d softmin(x) / dx = -softmax_vjp(g, -x)."""
    return -softmax_vjp(g, -_as_f64(x), axis=axis, where=where)


def _off_diagonal_sum(y):
    """sum_{j != i} y_j for every i (1 - y_i without its cancellation)."""
    n = y.shape[-1]
    yy = np.broadcast_to(y[..., None, :], y.shape + (n,)).copy()
    idx = np.arange(n)
    yy[..., idx, idx] = 0.0
    return yy.sum(axis=-1)


def softmax_jacobian(x, axis: int = -1) -> np.ndarray:
    """J[..., i, j] = d y_i / d x_j = y_i (delta_ij - y_j), y = softmax(x)."""
    x, xm, mask = _rows(x, axis, None)
    with np.errstate(under="ignore"):
        y = _softmax_m(xm, mask)
        jac = -y[..., :, None] * y[..., None, :]
        n = y.shape[-1]
        idx = np.arange(n)
        jac[..., idx, idx] = y * _off_diagonal_sum(y)  # y (1 - y)
    return jac


def log_softmax_jacobian(x, axis: int = -1) -> np.ndarray:
    """J[..., i, j] = delta_ij - y_j, y = softmax(x)."""
    x, xm, mask = _rows(x, axis, None)
    with np.errstate(under="ignore"):
        y = _softmax_m(xm, mask)
        n = y.shape[-1]
        jac = np.broadcast_to(-y[..., None, :], y.shape + (n,)).copy()
        idx = np.arange(n)
        jac[..., idx, idx] = _off_diagonal_sum(y)  # 1 - y_i
    return jac


def softmin_jacobian(x, axis: int = -1) -> np.ndarray:
    """J[..., i, j] = d softmin(x)_i / d x_j = -softmax_jacobian(-x)."""
    return -softmax_jacobian(-_as_f64(x), axis=axis)


def _halves(x, axis):
    x = _as_f64(x)
    n = x.shape[axis]
    if n % 2:
        raise ValueError(f"glu: the length along axis ({n}) must be even")
    return np.split(x, 2, axis=axis)


def glu(x, axis: int = -1) -> np.ndarray:
    """a * sigmoid(b), a and b the first and second halves of x along `axis`."""
    a, b = _halves(x, axis)
    with np.errstate(under="ignore", invalid="ignore"):  # inf * 0 -> NaN, as PyTorch
        return a * _sigmoid(b)


def glu_vjp(g, x, axis: int = -1) -> np.ndarray:
    """Gradient of sum(g * glu(x)) with respect to x."""
    a, b = _halves(x, axis)
    g = _as_f64(g)
    with np.errstate(under="ignore", invalid="ignore", over="ignore"):
        ga = g * _sigmoid(b)
        gb = g * a * _sigmoid_prime(b)
    return np.concatenate([ga, gb], axis=axis)


def _groups(x, pool_size, axis):
    x = _as_f64(x)
    k = int(pool_size)
    if k != pool_size or k < 1:
        raise ValueError(f"maxout: pool_size must be a positive integer, not {pool_size!r}")
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    if n % k:
        raise ValueError(f"maxout: axis length {n} is not a multiple of pool_size {k}")
    return x, xm.reshape(xm.shape[:-1] + (n // k, k))


def maxout(x, pool_size: int, axis: int = -1) -> np.ndarray:
    """Max over consecutive groups of `pool_size` along `axis`; NaN propagates."""
    _, grp = _groups(x, pool_size, axis)
    return np.moveaxis(np.max(grp, axis=-1), -1, axis)


def maxout_vjp(g, x, pool_size: int, axis: int = -1) -> np.ndarray:
    """Gradient of sum(g * maxout(x)): each g goes to the first maximum of its group
    (the first NaN if the group has one)."""
    x, grp = _groups(x, pool_size, axis)
    gm = np.moveaxis(_as_f64(g), axis, -1)
    first = np.argmax(grp, axis=-1)[..., None]  # argmax: first max, or first NaN
    out = np.zeros_like(grp)
    np.put_along_axis(out, first, gm[..., None], axis=-1)
    out = out.reshape(out.shape[:-2] + (-1,))
    return np.moveaxis(out, -1, axis)


def _prelu_weight(x, weight, axis):
    w = _as_f64(weight)
    if w.size == 1:
        return w.reshape(())
    if x.ndim < 2:
        raise ValueError("prelu: an input with fewer than 2 dimensions takes a 1-element weight")
    ax = axis % x.ndim
    if w.size != x.shape[ax]:
        raise ValueError(f"prelu: weight has {w.size} elements, axis {axis} has {x.shape[ax]}")
    shape = [1] * x.ndim
    shape[ax] = w.size
    return w.reshape(shape)


def prelu(x, weight, axis: int = 1) -> np.ndarray:
    """x > 0 ? x : w*x, with w one value or one per channel along `axis`."""
    x = _as_f64(x)
    w = _prelu_weight(x, weight, axis)
    return np.where(x > 0, x, _times_weight(w, x))


def prelu_vjp(g, x, weight, axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(gx, gw): gx = g * (x > 0 ? 1 : w); gw = sum of g * (x > 0 ? 0 : x) over all
    axes but the channel axis, shaped like `weight`.  A NaN x gives a NaN gx."""
    x = _as_f64(x)
    wa = _as_f64(weight)
    w = _prelu_weight(x, weight, axis)
    g = np.broadcast_to(_as_f64(g), x.shape)
    with np.errstate(under="ignore", invalid="ignore", over="ignore"):
        gx = np.where(x > 0, g, g * w)
        gx = np.where(np.isnan(x), np.nan, gx)
        contrib = g * np.where(x > 0, 0.0, x)
        if wa.size == 1:
            gw = np.sum(contrib).reshape(wa.shape)
        else:
            ax = axis % x.ndim
            other = tuple(i for i in range(x.ndim) if i != ax)
            gw = np.sum(contrib, axis=other).reshape(wa.shape)
    return gx, gw


# ---------------------------------------------------------------------------
# ulp error.
# ---------------------------------------------------------------------------


def _is_mp_like(exact) -> bool:
    if isinstance(exact, mpmath.mpf):
        return True
    arr = np.asarray(exact, dtype=object) if not isinstance(exact, np.ndarray) else exact
    return arr.dtype == object


def ulp_error(actual, exact, dtype) -> np.ndarray:
    """|actual - exact| in units of the last place of `dtype` at `exact`.

    `actual` is a float array (float16/32/64), `exact` float64 values or mpmath
    mpf values (scalars, lists or object arrays); the result broadcasts them.
    The ulp of a value v is 2**(floor(log2|v|) - mantissa bits), never below the
    subnormal spacing of `dtype`.  NaN against NaN and equal infinities count as 0;
    an infinity that `exact` rounds to in `dtype` (overflow) counts as 0; any other
    NaN or infinity mismatch is inf.
    """
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    nmant, emin = int(fi.nmant), int(fi.minexp)
    a = np.asarray(actual)
    if _is_mp_like(exact):
        return _ulp_error_mp(a, exact, dt, nmant, emin)
    e = _as_f64(exact)
    a64 = a.astype(np.float64)
    a64, e = np.broadcast_arrays(a64, e)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        e_rounded = e.astype(dt).astype(np.float64)
        _, ex = np.frexp(np.abs(e))
        ulp = np.ldexp(1.0, np.maximum(ex.astype(np.int64) - 1 - nmant, emin - nmant))
        err = np.abs(a64 - e) / ulp
    nonfinite = ~np.isfinite(a64) | ~np.isfinite(e)
    same = (np.isnan(a64) & np.isnan(e)) | (np.isinf(a64) & (a64 == e_rounded))
    err = np.where(nonfinite, np.where(same, 0.0, np.inf), err)
    return err


def _ulp_error_mp(a, exact, dt, nmant, emin) -> np.ndarray:
    e_obj = np.asarray(exact, dtype=object)
    a64, e_obj = np.broadcast_arrays(a.astype(np.float64), e_obj)
    out = np.empty(a64.shape, dtype=np.float64)
    with mp.workdps(MP_DPS):
        for idx in np.ndindex(a64.shape):
            av = float(a64[idx])
            ev = mpmath.mpf(e_obj[idx])
            if math.isnan(av) or mpmath.isnan(ev) or math.isinf(av) or mpmath.isinf(ev):
                if math.isnan(av) and mpmath.isnan(ev):
                    out[idx] = 0.0
                elif math.isinf(av) and not mpmath.isnan(ev):
                    with np.errstate(over="ignore"):
                        rounded = float(np.float64(float(ev)).astype(dt))
                    out[idx] = 0.0 if rounded == av else math.inf
                else:
                    out[idx] = math.inf
                continue
            expo = int(mpmath.frexp(ev)[1]) if ev != 0 else emin
            ulp = mpmath.ldexp(1, max(expo - 1 - nmant, emin - nmant))
            out[idx] = float(abs(mpmath.mpf(av) - ev) / ulp)
    return out
