"""Piecewise-linear functions: the hard approximations and the shrinks.

Gradients follow PyTorch's conventions at the kinks: open intervals (0 on the
edges) for hardtanh, relu6 and hardsigmoid; 0 on [-lambd, lambd] for the
shrinks. NaN propagates through every branch.
"""

from fastact import _math
from fastact._elementwise import elementwise


@elementwise(torch="F.hardtanh")
class hardtanh:
    """Hard tanh: clamp to [min_val, max_val].

    .. math:: \\mathrm{hardtanh}(x) = \\min(\\max(x, \\text{min\\_val}), \\text{max\\_val})

    Derivative 1 on the open interval (min_val, max_val), 0 elsewhere.

    >>> fastact.hardtanh(np.array([-2.0, 0.5, 2.0]))
    array([-1. ,  0.5,  1. ])
    """

    def forward(x, min_val=-1.0, max_val=1.0):
        if x < min_val:
            return min_val
        if x > max_val:
            return max_val
        return x

    def grad(x, min_val=-1.0, max_val=1.0):
        T = type(x)
        r = T(1) if x > min_val and x < max_val else T(0)
        return r if x == x else x  # see relu.grad

    def check(fname, min_val, max_val):
        if min_val > max_val:
            raise ValueError(f"{fname}(): min_val must be <= max_val, got {min_val} > {max_val}")


relu6 = hardtanh.with_fixed(
    "relu6",
    doc="""ReLU capped at 6.

    .. math:: \\mathrm{relu6}(x) = \\min(\\max(x, 0), 6)

    Derivative 1 on the open interval (0, 6), 0 elsewhere (as PyTorch, which
    computes it as hardtanh(x, 0, 6)).

    >>> fastact.relu6(np.array([-1.0, 3.0, 7.0]))
    array([0., 3., 6.])
    """,
    torch="F.relu6",
    min_val=0.0,
    max_val=6.0,
)


@elementwise(torch="F.hardsigmoid")
class hardsigmoid:
    """Hard sigmoid.

    .. math:: \\mathrm{hardsigmoid}(x) = \\mathrm{relu6}(x + 3) / 6

    Derivative 1/6 on the open interval (-3, 3), 0 elsewhere.

    >>> fastact.hardsigmoid(np.array([-4.0, 0.0, 1.5]))
    array([0.  , 0.5 , 0.75])
    """

    def forward(x):
        T = type(x)
        if x <= T(-3):
            return T(0)
        if x >= T(3):
            return T(1)
        return (x + T(3)) / T(6)  # not x/6 + 1/2, which cancels near x = -3

    def grad(x):
        T = type(x)
        r = T(1) / T(6) if x > T(-3) and x < T(3) else T(0)
        return r if x == x else x  # see relu.grad


@_math.scalar_jit
def _plus3(x):
    """x + 3 = sh + sl exactly (TwoSum)."""
    T = type(x)
    sh = x + T(3)
    bb = sh - x
    return sh, (x - (sh - bb)) + (T(3) - bb)


@_math.scalar_jit
def _sixth(h, l):
    """(h + l) / 6 rounded once: times 1/6 held as a double-word."""
    T = type(h)
    if _math.single(h):
        ch, cl = T(0.1666666716337204), T(-4.967053731282552e-09)
    else:
        ch, cl = T(0.16666666666666666), T(9.25185853854297e-18)
    r = h * ch
    return r + ((_math.two_prod_err(h, ch, r) + h * cl) + l * ch)


@elementwise(torch="F.hardswish")
class hardswish:
    """Hard swish.

    .. math:: \\mathrm{hardswish}(x) = x\\,\\mathrm{relu6}(x + 3) / 6

    Written piecewise (0 for x <= -3, x for x >= 3) so that it never
    overflows or forms inf * 0. Derivative 0 for x <= -3, x/3 + 1/2 for
    -3 < x < 3, 1 for x >= 3.

    >>> fastact.hardswish(np.array([-4.0, 1.0, 4.0]))
    array([0.        , 0.66666667, 4.        ])
    """

    def forward(x):
        T = type(x)
        if x <= T(-3):
            return T(0)
        if x >= T(3):
            return x
        if _math.single(x):
            # in float64, x (x + 3) is exact (24 by 26 bits) and the quotient
            # by 6 is within 2^-53, rounded to float32 once (also subnormal)
            v = _math.wide(x)
            return T((v * (v + 3.0)) * (1.0 / 6.0))
        if abs(x) < T(2.0**-60):  # x/2 + x^2/6 = x/2 rounded, also where subnormal
            return x * T(0.5)
        # x (x + 3) as an exact pair, times 1/6 as a double-word: one rounding
        sh, sl = _plus3(x)
        ph = x * sh
        pl = _math.two_prod_err(x, sh, ph) + x * sl
        return _sixth(ph, pl)

    def grad(x):
        T = type(x)
        if x <= T(-3):
            return T(0)
        if x >= T(3):
            return T(1)
        if _math.single(x):  # 2x + 3 exact in float64, then as above
            v = _math.wide(x)
            return T((v + v + 3.0) * (1.0 / 6.0))
        sh, sl = _plus3(x + x)  # not x/3 + 1/2, which cancels near x = -1.5
        return _sixth(sh, sl)


@elementwise(torch="F.softshrink")
class softshrink:
    """Soft shrinkage.

    .. math:: y = \\begin{cases} x - \\lambda & x > \\lambda\\\\ x + \\lambda & x < -\\lambda\\\\ 0 & \\text{otherwise}\\end{cases}

    Derivative 1 outside [-lambd, lambd], 0 on it. ``lambd`` must be >= 0.

    >>> fastact.softshrink(np.array([-1.0, 0.2, 1.0]))
    array([-0.5,  0. ,  0.5])
    """

    def forward(x, lambd=0.5):
        T = type(x)
        if x > lambd:
            return x - lambd
        if x < -lambd:
            return x + lambd
        if x == x:
            return T(0)
        return x  # NaN

    def grad(x, lambd=0.5):
        T = type(x)
        r = T(1) if x > lambd or x < -lambd else T(0)
        return r if x == x else x  # see relu.grad

    def check(fname, lambd):
        if not lambd >= 0:
            raise ValueError(f"{fname}(): lambd must be >= 0, got {lambd}")


@elementwise(torch="F.hardshrink")
class hardshrink:
    """Hard shrinkage.

    .. math:: y = \\begin{cases} x & |x| > \\lambda\\\\ 0 & \\text{otherwise}\\end{cases}

    Derivative 1 for |x| > lambd, 0 on [-lambd, lambd].

    >>> fastact.hardshrink(np.array([-1.0, 0.2, 1.0]))
    array([-1.,  0.,  1.])
    """

    def forward(x, lambd=0.5):
        T = type(x)
        if abs(x) <= lambd:
            return T(0)
        return x

    def grad(x, lambd=0.5):
        T = type(x)
        r = T(1) if abs(x) > lambd else T(0)
        return r if x == x else x  # see relu.grad
