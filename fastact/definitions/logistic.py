"""The logistic family: sigmoid and the functions built on it."""

from fastact import _math, _vmath
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
        return -_math.softplus(-x, type(x)(1))

    def grad(x):
        return _math.sigmoid(-x)


@_math.scalar_jit
def _swish_value(x, z, ze, inexact):
    """x sigma(z + ze) for float64, z = beta x rounded, ze its rounding
    error (used only where inexact is true, a constant of the caller).

    One exponential per element: e = e^-|z| (see _math.sigmoid_parts);
    below z = -80 it is e^(z/2) instead, for the tail.
    """
    T = type(x)
    tail = z < T(-80)
    # (the tail's exponential comes scaled by 2^24, see below)
    eh, el = _math.exp_pair(T(0.5) * z if tail else -abs(z), 24 if tail else 0)
    if tail:
        # x sigma(z) = x e^z (1 + ze) to working precision, and e^z may be
        # subnormal while the result is not: x e^(z/2) as a pair, then
        # times e^(z/2), rounded once. Each factor carries 2^24, so that
        # the low-order terms stay normal where the result is near the
        # subnormal range; 2^-48 is applied last.
        if eh == 0:  # the limit, not -inf * 0
            return T(0)
        ph = x * eh
        pl = _math.two_prod_err(x, eh, ph) + x * el
        lo = ph * el + pl * eh
        if inexact:
            lo = lo + (ph * eh) * ze
        r = _vmath.fma(ph, eh, lo)
        return (r * T(2.0**-24)) * T(2.0**-24)
    # sigma(z + ze) = sigma(z) + ze sigma(z) sigma(-z) to first order: the
    # correction joins the low part of sigma = q + t/d, and x * sigma
    # rounds once
    q, t, inv, eh, el, dh, dl = _math.logistic_parts(z, eh, el)
    c = t * inv
    if inexact:
        c = c + ze * (q * (T(1) - q))
    return _vmath.fma(x, q, x * c if c != 0 else T(0))  # x = inf: not inf * 0


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

    # One exponential per element gives sigma(z) and sigma'(z). float32 is
    # evaluated in float64 (see _math.logistic_e32), where z = beta x is
    # exact and e = e^-z stays finite; value_and_grad shares e and 1 / (1 + e).
    # float64 takes e = e^-|z|, the correction terms of z's rounding and,
    # below z = -80, a tail form.

    def forward(x, beta=1.0):
        T = type(x)
        if _math.single(x):
            z, e, r = _math.logistic_e32(x, beta)
            # from z = -200 (held there) the result rounds to 0, which is
            # also the limit at x = -inf (not -inf * r)
            return _vmath.where(z <= -200.0, T(0), T(_math.wide(x) * r))
        if beta == 1:  # silu: z = x exactly (no correction terms)
            return _swish_value(x, x, T(0), False)
        z, ze = _math.scaled(x, beta)
        return _swish_value(x, z, ze, True)

    def grad(x, beta=1.0):
        T = type(x)
        v = _math.wide(x)
        if _math.single(x):
            # sigma(z) (1 + z sigma(-z)) = (1 + e (1 + z)) / (1 + e)^2 with
            # e = e^-z, z exact and held to [-200, 200], where the result is 1
            # or rounds to 0 (see logistic_e32): no correction terms, no tail
            # form, no select. 1 + z is exact; near the root (z ~ -1.28),
            # where 1 + e (1 + z) cancels, the patch takes over.
            z, e, r = _math.logistic_e32(x, beta)
            return T(_math.silu_root(z, 0.0, _vmath.fma(e, 1.0 + z, 1.0) * (r * r), x))
        z, ze = _math.scaled(v, _math.wide(beta))
        tail = z < -80.0
        e = _math.wexp(0.5 * z if tail else -abs(z), x)
        if tail:  # sigma(z) + z sigma(z) sigma(-z) = e^z (1 + z) to working precision
            return T((e * (1.0 + z)) * (e * (1.0 + ze)) if e != 0 else 0.0)
        # sigma(z) (1 + z sigma(-z)) = n / (1 + e)^2 with n = 1 + e (1 + z)
        # for z >= 0 and e (1 + z + e) below: 1 + z is exact near the root
        # (z ~ -1.28), where the patch takes over.
        # ze (float64 only): e^-|z + ze| = e (1 -+ ze) to first order
        e = e * (1.0 + ze) if z < 0 else e * (1.0 - ze)
        d = 1.0 + e
        if z >= 0:
            n = 1.0 + e * ((1.0 + z) + ze) if e != 0 else 1.0  # z = inf: not inf * 0
        else:
            n = e * (((1.0 + z) + ze) + e) if e != 0 else 0.0  # z = -inf: not inf * 0
        return T(_math.silu_root(z, ze, n / (d * d), x))


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
        z = beta * x  # rounded, as PyTorch compares it
        if z > threshold:
            return x
        return _math.softplus(x, beta)

    def grad(x, beta=1.0, threshold=20.0):
        T = type(x)
        z = beta * x
        if z > threshold:
            return T(1)
        if beta == 1:  # z exact (the loop is unswitched on beta)
            return _math.sigmoid(x)
        return _math.sigmoid_scaled(x, beta)

    def check(fname, beta, threshold):
        if beta == 0:
            raise ValueError(f"{fname}(): beta must be nonzero, got {beta}")


@_math.scalar_jit
def _mish_parts32(x):
    """For the float32 mish evaluated in float64: x held to [-200, 300]
    (vc), n = e^vc (exp_lean), r = 1 / (n (n + 2) + 2) and
    t = tanh(softplus(vc)) = n (n + 2) r, and x held below only (vlo).

    From 20 on, t is 1 in float64 and the derivative rounds to 1; up to
    300, n^2 stays finite. Below -200 the value and the derivative round to
    0 as they do at -200 (-inf included): vlo t is the value, with no
    select. Forward and grad share all of it: value_and_grad computes one
    exponential and one division. (The clamps in float32, half the vector
    registers; NaN passes.)
    """
    T = type(x)
    xlo = _vmath.where(x < T(-200), T(-200), x)
    vc = _math.wide(_vmath.where(xlo > T(300), T(300), xlo))
    n = _vmath.exp_lean_in_range(vc)
    p = n * (n + 2.0)
    r = 1.0 / (p + 2.0)
    return _math.wide(xlo), vc, n, r, p * r


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

    # float32 in float64 (see _math.wide and _mish_parts32), where e^x stays
    # normal: the tail forms are float64's.

    def forward(x):
        T = type(x)
        v = _math.wide(x)
        if _math.single(x):
            vlo, vc, n, r, t = _mish_parts32(x)
            return T(vlo * t)
        tail = v < -80.0
        n = _math.wexp(0.5 * v if tail else v, x)
        if v > 20.0:
            return x
        if n == 0:  # the limit 0, not -inf * 0
            return T(0)
        if tail:
            # the factor is e^x to working precision and may be subnormal while
            # x e^x is not: form x e^(x/2) first, then * e^(x/2)
            return T((v * n) * n)
        p = n * (n + 2.0)
        return T(v * (p / (p + 2.0)))

    def grad(x):
        T = type(x)
        v = _math.wide(x)
        if _math.single(x):
            # The closed form below on x held to [-200, 300] (see
            # _mish_parts32), where the result rounds as it does at the
            # ends beyond them: t + x sech^2(sp) sigma(x), with
            # sech^2(sp) sigma(x) = 4 n (1 + n) r^2 (0 from x = 177 on, where
            # r^2 underflows and the result is 1).
            vlo, vc, n, r, t = _mish_parts32(x)
            c = 4.0 * n
            y = _vmath.fma(vc * _vmath.fma(c, n, c), r * r, t)
            return T(_math.mish_root(vc, 0.0, y, x))
        tail = v < -80.0
        n = _math.wexp(0.5 * v if tail else v, x)
        if v > 20.0:
            return T(1)
        if n == 0:  # the limit 0, not -inf * 0
            return T(0)
        if tail:  # t + x sech^2 sigma = e^x (1 + x) to working precision
            return T((n * (1.0 + v)) * n)
        p = n * (n + 2.0)
        q = p + 2.0
        # sech^2(sp) * sigma(x) = 4 (1+n)^2 / q^2 * n / (1+n) = 4 n (1+n) / q^2;
        # the two terms cancel near x = -1.19, where the patch takes over
        y = (p * q + v * (4.0 * n * (1.0 + n))) / (q * q)
        return T(_math.mish_root(v, 0.0, y, x))
