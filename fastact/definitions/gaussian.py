"""The Gaussian family: GELU, exact and in its tanh approximation."""

from fastact import _math
from fastact._elementwise import Choice, elementwise

_INV_SQRT_2PI = 0.39894228040143267794  # 1/sqrt(2 pi)
_K = 0.79788456080286535588  # sqrt(2/pi)
_C = 0.044715


@elementwise(name="gelu")
class gelu_erf:
    """x * Phi(x), with Phi from erfc on the negative side (see _math.ndtr)."""

    def forward(x):
        T = type(x)
        p = _math.ndtr(x)
        if p == 0:  # x -> -inf: the limit is 0, not -inf * 0
            return T(0)
        return x * p

    def grad(x):
        T = type(x)
        p = _math.ndtr(x)
        q = _math.gauss(x)
        if q == 0:  # |x| large (or inf): the x*phi(x) term is 0
            return p
        return p + x * (q * T(_INV_SQRT_2PI))


@elementwise(name="gelu")
class gelu_tanh:
    """0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3)."""

    def forward(x):
        T = type(x)
        u = T(_K) * (x + T(_C) * x * x * x)
        s = _math.sigmoid(T(2) * u)
        if s == 0:
            return T(0)
        return x * s

    def grad(x):
        T = type(x)
        x2 = x * x
        u = T(_K) * (x + T(_C) * x2 * x)
        s = _math.sigmoid(T(2) * u)
        # d/dx x*sigma(2u) = sigma(2u) + x * 2 sigma(2u) sigma(-2u) * u'
        d = _math.sigmoid_grad(T(2) * u)
        if d == 0:  # |u| huge: skip x * u' * 0, which can be inf * 0
            return s
        du = T(_K) * (T(1) + T(3 * _C) * x2)
        return s + (T(2) * d) * x * du


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
