"""The rectifier family: ReLU and its exponential and leaky variants.

NaN propagates through every branch: comparisons with NaN are false, so each
definition is written with the NaN case falling through to an arithmetic
expression of x (or returning x itself).
"""

import math

from fastact import _math, _vmath
from fastact._elementwise import elementwise

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
SELU_SCALE_ALPHA = 1.7580993408473768  # the product, correctly rounded (not SCALE * ALPHA)


@elementwise(torch="F.relu")
class relu:
    """Rectified linear unit.

    .. math:: \\mathrm{relu}(x) = \\max(x, 0)

    Derivative 1 for x > 0, 0 for x <= 0 (relu'(0) = 0, as PyTorch).
    ``backward(g, y=y)`` uses the saved output: g where y > 0.

    >>> fastact.relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """

    def forward(x):
        T = type(x)
        return T(0) if x <= 0 else x

    # The step derivatives (here and in leaky_relu, threshold, hardtanh,
    # hardsigmoid, softshrink, hardshrink) pick the value first and let NaN
    # through last. Written as "1 if x > 0, else 0 if x <= 0, else x", the
    # AVX-512 loop needed one mask register more than there are and spilled
    # it to the stack every step: backward on 2^24 float32 elements ran at
    # 57-72% of the copy bandwidth (2-core Xeon, 2 threads), against 92-103%
    # in this form.

    def grad(x):
        T = type(x)
        r = T(1) if x > 0 else T(0)
        return r if x == x else x

    def grad_from_output(y):
        T = type(y)
        r = T(1) if y > 0 else T(0)
        return r if y == y else y


@elementwise(torch="F.leaky_relu")
class leaky_relu:
    """Leaky ReLU.

    .. math:: \\mathrm{leaky\\_relu}(x) = \\begin{cases} x & x > 0\\\\ s\\,x & x \\le 0\\end{cases}

    with s = ``negative_slope``. Derivative 1 for x > 0, s for x <= 0
    (leaky_relu'(0) = s, as PyTorch).

    >>> fastact.leaky_relu(np.array([-1.0, 2.0]), negative_slope=0.2)
    array([-0.2,  2. ])
    """

    def forward(x, negative_slope=0.01):
        return x if x > 0 else negative_slope * x

    def grad(x, negative_slope=0.01):
        T = type(x)
        r = T(1) if x > 0 else negative_slope
        return r if x == x else x  # see relu.grad


@elementwise(torch="F.elu")
class elu:
    """Exponential linear unit.

    .. math:: \\mathrm{elu}(x) = \\begin{cases} x & x > 0\\\\ \\alpha(e^x - 1) & x \\le 0\\end{cases}

    with ``expm1`` for accuracy near 0. Derivative 1 for x > 0,
    :math:`\\alpha e^x` for x <= 0 (elu'(0) = alpha). elu(-inf) = -alpha.

    >>> fastact.elu(np.array([-1.0, 2.0]))
    array([-0.63212056,  2.        ])
    """

    def forward(x, alpha=1.0):
        return x if x > 0 else alpha * _math.expm1(x)

    def grad(x, alpha=1.0):
        T = type(x)
        return T(1) if x > 0 else alpha * _math.exp(x)


@elementwise(torch="F.selu")
class selu:
    """Scaled exponential linear unit.

    .. math:: \\mathrm{selu}(x) = \\lambda\\,\\mathrm{elu}(x, \\alpha)

    with :math:`\\alpha \\approx 1.6733` and :math:`\\lambda \\approx 1.0507`
    (Klambauer et al., 2017). Derivative :math:`\\lambda` for x > 0,
    :math:`\\lambda\\alpha e^x` for x <= 0.

    >>> fastact.selu(np.array([-1.0, 1.0]))
    array([-1.11133074,  1.05070099])
    """

    # float32 in float64 (see _math.wide): the constants and the product
    # round once.

    def forward(x):
        T = type(x)
        v = _math.wide(x)
        if v > 0:
            return T(SELU_SCALE * v)
        # (float32: no cancellation, the lighter expm1 serves)
        em = _vmath.expm1_lean(v) if _math.single(x) else _math.wexpm1(v, x)
        return T(SELU_SCALE_ALPHA * em)

    def grad(x):
        T = type(x)
        v = _math.wide(x)
        if v > 0:
            return T(SELU_SCALE)
        return T(SELU_SCALE_ALPHA * _math.wexp(v, x))


@_math.scalar_jit
def _celu_arg(x, alpha):
    """x / alpha = z + zl, zl its exact remainder over alpha.

    zl = 0 beyond |z| = 10^4, where e^z is 0 or inf anyway: the exponential
    clamps z there, and a large zl must not reach its reduction.
    """
    T = type(x)
    z = x / alpha
    zl = _vmath.fma(-z, alpha, x) / alpha
    return z, zl if abs(z) < T(1e4) else T(0)


@elementwise(torch="F.celu")
class celu:
    """Continuously differentiable ELU.

    .. math:: \\mathrm{celu}(x) = \\max(0, x) + \\min(0, \\alpha(e^{x/\\alpha} - 1))

    Derivative 1 for x > 0, :math:`e^{x/\\alpha}` for x <= 0. ``alpha`` must
    be nonzero.

    >>> fastact.celu(np.array([-1.0, 2.0]), alpha=2.0)
    array([-0.78693868,  2.        ])
    """

    # z = x / alpha is rounded, and e^z has relative sensitivity |z| to that:
    # the remainder zl (x / alpha = z + zl) enters the exponential.

    def forward(x, alpha=1.0):
        if x > 0:
            return x
        if alpha == 1:  # elu: z = x exactly (the loop is unswitched on alpha)
            return _math.expm1(x)
        z, zl = _celu_arg(x, alpha)
        em = _math.expm1(z)
        y = em + (em + type(x)(1)) * zl
        return alpha * (em if math.isinf(em) else y)  # overflow: not inf - inf

    def grad(x, alpha=1.0):
        T = type(x)
        if x > 0:
            return T(1)
        if alpha == 1:
            return _math.exp(x)
        z, zl = _celu_arg(x, alpha)
        return _vmath.exp_dw(z, zl)

    def check(fname, alpha):
        if alpha == 0:
            raise ValueError(f"{fname}(): alpha must be nonzero for celu, got {alpha}")


@elementwise(torch="F.threshold")
class threshold:
    """Threshold.

    .. math:: y = \\begin{cases} x & x > \\text{threshold}\\\\ \\text{value} & \\text{otherwise}\\end{cases}

    Both parameters are required. Derivative 1 for x > threshold, else 0.

    >>> fastact.threshold(np.array([0.05, 0.5]), threshold=0.1, value=20.0)
    array([20. ,  0.5])
    """

    def forward(x, threshold, value):
        return value if x <= threshold else x

    def grad(x, threshold, value):
        T = type(x)
        r = T(1) if x > threshold else T(0)
        return r if x == x else x  # see relu.grad
