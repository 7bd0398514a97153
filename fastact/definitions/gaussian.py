"""The Gaussian family: GELU, exact and in its tanh approximation."""

from fastact import _math, _vmath
from fastact._elementwise import Choice, elementwise

_INV_SQRT_2PI = 0.39894228040143267794  # 1/sqrt(2 pi)
_K = 0.79788456080286535588  # sqrt(2/pi)
_C = 0.044715
# 2 sqrt(2/pi) and 2 sqrt(2/pi) * 0.044715 as double-words (hi, lo)
_K1 = (1.5957691216057308, -9.96930880911092e-17)
_K3 = (0.07135481627260025, -6.175149918155315e-19)


@_math.scalar_jit
def _tanh_form(v, x):
    """w = 2 sqrt(2/pi) (v + 0.044715 v^3), e = e^-|w| for sigma(w), tail.

    When tail is true, e is e^(w/2) instead (see below).

    In the tail sigma(w) ~ e^w has relative sensitivity |w| to the error of
    w (~600 at x = -19): for float64, w is formed as a double-word number
    (constants included) and its low part joins the exponential's argument.
    For float32, evaluated in float64, the plain float64 w is ample.
    """
    if _math.single(x):
        w = 2.0 * _K * (v + _C * v * v * v)
        return w, _math.wexp(-abs(w), x), False
    v2 = v * v
    v2l = _vmath.fma(v, v, -v2)
    v3 = v2 * v
    v3l = _vmath.fma(v2, v, -v3) + v2l * v
    a = _K3[0] * v3
    al = _vmath.fma(_K3[0], v3, -a) + (_K3[0] * v3l + _K3[1] * v3)
    b = _K1[0] * v
    bl = _vmath.fma(_K1[0], v, -b) + _K1[1] * v
    w = a + b
    bb = w - a
    wl = ((a - (w - bb)) + (b - bb)) + (al + bl)  # TwoSum error + the low parts
    if not abs(w) < 1e4:  # e^w is 0 or inf (and wl must not reach exp_dw's reduction)
        wl = 0.0
    # Below w = -600, e^w may be subnormal while the result is not: the tail
    # forms take e^(w/2) and apply it twice.
    tail = w < -600.0
    h = 0.5 if tail else 1.0
    e = _vmath.exp_dw(-w, -wl) if w >= 0 else _vmath.exp_dw(h * w, h * wl)
    return w, e, tail


@_math.scalar_jit
def _tail_factors(v, x):
    """e^(-v^2/4) and S(v), for x Phi(x) = -phi(x) S and Phi(x) = phi(x) S / |x|
    (v < -37): S = 1 - 1/v^2 + 3/v^4 - ..., the asymptotic series, to 2^-56.

    There phi(x) is below 2^-1000 and x Phi(x) can be subnormal while its
    factors are not: e^(-x^2/2) is applied as e^(-x^2/4) twice, last.
    """
    u = 1.0 / (v * v)
    s = 1.0 + u * (-1.0 + u * (3.0 + u * (-15.0 + u * (105.0 + u * (-945.0 + u * (
        10395.0 - 135135.0 * u))))))
    if v != v or v == -_math.wide(1e400):  # NaN, -inf: no series
        s = 1.0
    return _math.gauss(v, x, 0.25), s


@_math.scalar_jit
def _gelu_parts32(x):
    """For the float32 gelu evaluated in float64: x held below to -16
    (vlo) and to [-16, 16] (vc), Phi(vc) and e^(-vc^2/2) (one exponential,
    see _math.normal_tail_wide).

    Beyond 16, Phi(-|x|) is below 1e-57: x Phi(x) rounds to 0 (x < -16) or
    to x (x > 16, where 1 - Phi(-16) is 1), and the derivative to 0 or 1,
    as at the ends: no select on the result, and forward and grad share
    everything (value_and_grad: one exponential, one division). The clamps
    in float32, half the vector registers; NaN passes.
    """
    T = type(x)
    xlo = _vmath.where(x < T(-16), T(-16), x)
    vc = _math.wide(_vmath.where(xlo > T(16), T(16), xlo))
    q, e = _math.normal_tail_wide(abs(vc))
    return _math.wide(xlo), vc, _vmath.where(vc < 0.0, q, 1.0 - q), e


@elementwise(name="gelu")
class gelu_erf:
    """x * Phi(x), with Phi from erfc on the negative side (see _math.ndtr).

    float32 is evaluated in float64 (see _math.wide) and rounded once, with
    Phi(-|x|) and phi(x) from one exponential and a polynomial in
    1/(1 + |x|/4) (_math.normal_tail_wide), so that neither a subnormal
    Phi(x) nor the derivative's cancellation near its root (x = -0.7518,
    see _math.RootPatch) costs precision.
    """

    def forward(x):
        T = type(x)
        v = _math.wide(x)
        if _math.single(x):
            # x Phi(-|x|) (x <= 0) or x (1 - Phi(-|x|)) in float64, rounded once
            vlo, vc, p, e = _gelu_parts32(x)
            return T(vlo * p)
        if v < -37.0:
            # float64 tail, where Phi(x) is subnormal (see _tail_factors)
            q, s = _tail_factors(v, x)
            return T(-(q * (_INV_SQRT_2PI * s)) * q)
        p = _math.ndtr(v)
        if p == 0:  # x -> -inf: the limit is 0, not -inf * 0
            return T(0)
        return T(v * p)

    def grad(x):
        T = type(x)
        if _math.single(x):
            # Phi + x phi on x held to [-16, 16] (see _gelu_parts32), where
            # the result is 0 or rounds to 1 as it does beyond; the root
            # patch covers the sum's cancellation within 1/32 of the root
            vlo, vc, p, e = _gelu_parts32(x)
            y = _vmath.fma(vc, e * _INV_SQRT_2PI, p)
            return T(_math.gelu_root(vc, 0.0, y, x))
        v = _math.wide(x)
        if v < -37.0:
            q, s = _tail_factors(v, x)  # Phi + x phi = phi x (1 - S/x^2)
            if q == 0:  # x = -inf: the limit 0, not inf * 0
                return T(0)
            return T(((v * q) * (_INV_SQRT_2PI * (1.0 - s / (v * v)))) * q)
        p = _math.ndtr(v)
        q = _math.gauss(v, x, 0.5)
        # |x| large (or inf): the x*phi(x) term is 0, not inf * 0
        y = p if q == 0 else p + v * (q * _INV_SQRT_2PI)
        return T(_math.gelu_root(v, 0.0, y, x))


@elementwise(name="gelu")
class gelu_tanh:
    """0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3).

    In float64 for float32 x (see _math.wide): the rounding of u, amplified
    |2u| times in the tail of sigmoid(2u), is then below 2^-46.
    """

    def forward(x):
        T = type(x)
        v = _math.wide(x)
        w, e, tail = _tanh_form(v, x)
        if tail:  # sigma(w) = e^w to working precision; e = 0: the limit 0
            return T((v * e) * e if e != 0 else 0.0)
        s = _math.sigmoid_e(w, e)
        if s == 0:
            return T(0)
        return T(v * s)

    def grad(x):
        T = type(x)
        v = _math.wide(x)
        w, e, tail = _tanh_form(v, x)
        dw = 2.0 * _K * (1.0 + 3.0 * _C * (v * v))
        if tail:  # sigma(w) (1 + x sigma(-w) w') = e^w (1 + x w') to working precision
            return T((e * (1.0 + v * dw)) * e if e != 0 else 0.0)
        s = _math.sigmoid_e(w, e)
        # d/dx x*sigma(w) = sigma(w) + x sigma(w) sigma(-w) w'
        d = _math.sigmoid_grad_e(e)
        # |w| huge: skip x * w' * 0, which can be inf * 0
        y = s if d == 0 else s + d * v * dw
        return T(_math.gelu_tanh_root(v, 0.0, y, x))


gelu = Choice(
    "gelu", "approximate", {"none": gelu_erf, "tanh": gelu_tanh}, "none",
    doc="""Gaussian error linear unit.

    .. math:: \\mathrm{gelu}(x) = x\\,\\Phi(x) = \\tfrac{x}{2}\\,\\mathrm{erfc}(-x/\\sqrt{2})

    ``approximate='tanh'`` selects
    :math:`\\tfrac{x}{2}(1 + \\tanh(\\sqrt{2/\\pi}(x + 0.044715x^3)))`,
    computed as :math:`x\\,\\sigma(2u)`. Derivative
    :math:`\\Phi(x) + x\\varphi(x)` (resp. the exact derivative of the tanh
    form). Limits: gelu(-inf) = 0, gelu(inf) = inf; no intermediate overflow
    for large finite x.

    >>> fastact.gelu(np.array([-1.0, 1.0]))
    array([-0.15865525,  0.84134475])
    """,
    torch="F.gelu",
)
