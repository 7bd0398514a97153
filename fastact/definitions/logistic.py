"""The logistic family: sigmoid and the functions built on it."""

from fastact import _math
from fastact._elementwise import elementwise


@elementwise(torch="torch.sigmoid")
class sigmoid:
    """Logistic sigmoid.

    .. math:: \\sigma(x) = \\frac{1}{1 + e^{-x}}

    Derivative :math:`\\sigma(x)\\sigma(-x)`, computed as such rather than
    :math:`\\sigma(1-\\sigma)`, which rounds to 0 for x > 16.7 in float32.
    ``backward(g, y=y)`` uses the saved output: :math:`g\\,y(1-y)`.
    Limits: sigmoid(-inf) = 0, sigmoid(inf) = 1.

    >>> fastact.sigmoid(np.array([-1.0, 0.0, 1.0]))
    array([0.26894142, 0.5       , 0.73105858])
    """

    def forward(x):
        return _math.sigmoid(x)

    def grad(x):
        return _math.sigmoid_grad(x)

    def grad_from_output(y):
        T = type(y)
        return y * (T(1) - y)


@elementwise(torch="F.logsigmoid")
class logsigmoid:
    """Logarithm of the sigmoid.

    .. math:: \\log\\sigma(x) = -\\mathrm{softplus}(-x) = \\min(x, 0) - \\log(1 + e^{-|x|})

    Derivative :math:`\\sigma(-x)`. Limits: logsigmoid(-inf) = -inf,
    logsigmoid(inf) = 0.

    >>> fastact.logsigmoid(np.array([-100.0, 0.0]))
    array([-100.        ,   -0.69314718])
    """

    def forward(x):
        return -_math.softplus(-x)

    def grad(x):
        return _math.sigmoid(-x)


@elementwise()
class swish:
    """Swish with a slope parameter.

    .. math:: \\mathrm{swish}(x) = x\\,\\sigma(\\beta x)

    Derivative :math:`\\sigma(\\beta x) + \\beta x\\,\\sigma(\\beta x)\\sigma(-\\beta x)`.
    With ``beta=1`` this is :func:`silu` (PyTorch ``F.silu``).
    Limit (beta > 0): swish(-inf) = 0.

    >>> fastact.swish(np.array([-1.0, 2.0]), beta=2.0)
    array([-0.11920292,  1.96402758])
    """

    # One exponential per element: e = e^-|z| gives sigma(z) and sigma'(z);
    # below z = -80 it is e^(z/2) instead, for the tail form.

    def forward(x, beta=1.0):
        T = type(x)
        z, ze = _math.scaled(x, beta)
        tail = z < T(-80)
        e = _math.exp(T(0.5) * z if tail else -abs(z))
        if tail:
            # sigma(z) = e^z to working precision, and it may be subnormal
            # while x * sigma(z) is not: form x e^(z/2) first, then * e^(z/2).
            if e == 0:  # the limit, not -inf * 0
                return T(0)
            return (x * e) * (e * (T(1) + ze))
        # sigma(z + ze) = sigma(z) + ze sigma(z) sigma(-z) to first order; the
        # correction is below an ulp of sigma, so s (1 - s) serves for sigma'
        sg = _math.sigmoid_e(z, e)
        return x * (sg + ze * (sg * (T(1) - sg)))

    def grad(x, beta=1.0):
        T = type(x)
        z, ze = _math.scaled(x, beta)
        tail = z < T(-80)
        e = _math.exp(T(0.5) * z if tail else -abs(z))
        if tail:  # sigma(z) + z sigma(z) sigma(-z) = e^z (1 + z)
            return (e * (T(1) + z)) * (e * (T(1) + ze)) if e != 0 else T(0)
        d = _math.sigmoid_grad_e(e)
        s = _math.sigmoid_e(z, e)
        if d == 0:  # z = +-inf: drop z * 0
            return s
        return s + z * d


silu = swish.with_fixed(
    "silu",
    doc="""Sigmoid linear unit (also called swish).

    .. math:: \\mathrm{silu}(x) = x\\,\\sigma(x)

    Derivative :math:`\\sigma(x) + x\\,\\sigma(x)\\sigma(-x)`. Limits: silu(-inf) = 0,
    silu'(-inf) = 0, silu(inf) = inf.

    >>> fastact.silu(np.array([-1.0, 1.0]))
    array([-0.26894142,  0.73105858])
    """,
    torch="F.silu",
    beta=1.0,
)


@elementwise(torch="F.softplus")
class softplus:
    """Softplus, a smooth ReLU.

    .. math:: \\mathrm{softplus}(x) = \\begin{cases} x & \\beta x > \\text{threshold}\\\\
              \\frac{1}{\\beta}\\log(1 + e^{\\beta x}) & \\text{otherwise}\\end{cases}

    computed as :math:`(\\max(\\beta x, 0) + \\log1p(e^{-|\\beta x|}))/\\beta`
    below the threshold. Derivative 1 where :math:`\\beta x` > threshold, else
    :math:`\\sigma(\\beta x)` (PyTorch's convention).

    >>> fastact.softplus(np.array([-1.0, 0.0, 30.0]))
    array([ 0.31326169,  0.69314718, 30.        ])
    """

    def forward(x, beta=1.0, threshold=20.0):
        z = beta * x
        if z > threshold:
            return x
        return _math.softplus(z) / beta

    def grad(x, beta=1.0, threshold=20.0):
        T = type(x)
        z = beta * x
        if z > threshold:
            return T(1)
        return _math.sigmoid(z)

    def check(fname, beta, threshold):
        if beta == 0:
            raise ValueError(f"{fname}(): beta must be nonzero, got {beta}")


@elementwise(torch="F.mish")
class mish:
    """Mish.

    .. math:: \\mathrm{mish}(x) = x \\tanh(\\mathrm{softplus}(x))

    With n = e^x, tanh(softplus(x)) = n(n+2) / (n(n+2) + 2), which is exact in
    both tails (no 1 - tiny, no overflow below x = 20; above it the factor is
    1 to working precision). Derivative
    :math:`\\tanh(\\mathrm{sp}(x)) + x\\,\\mathrm{sech}^2(\\mathrm{sp}(x))\\,\\sigma(x)`.
    Limits: mish(-inf) = 0, mish'(-inf) = 0.

    >>> fastact.mish(np.array([-1.0, 1.0]))
    array([-0.30340146,  0.86509839])
    """

    def forward(x):
        T = type(x)
        tail = x < T(-80)
        n = _math.exp(T(0.5) * x if tail else x)  # one exponential per element
        if x > T(20):
            return x
        if tail:
            # the factor is e^x to working precision and may be subnormal while
            # x e^x is not: form x e^(x/2) first, then * e^(x/2)
            return (x * n) * n if n != 0 else T(0)  # n = 0: the limit, not -inf * 0
        p = n * (n + T(2))
        return x * (p / (p + T(2)))

    def grad(x):
        T = type(x)
        tail = x < T(-80)
        n = _math.exp(T(0.5) * x if tail else x)
        if x > T(20):
            return T(1)
        if tail:  # t + x sech^2 sigma = e^x (1 + x) to working precision
            return (n * (T(1) + x)) * n if n != 0 else T(0)
        p = n * (n + T(2))
        q = p + T(2)
        # sech^2(sp) * sigma(x) = 4 (1+n)^2 / q^2 * n / (1+n) = 4 n (1+n) / q^2
        return p / q + x * (T(4) * n * (T(1) + n) / q / q)
