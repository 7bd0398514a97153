"""Vectorizable scalar math: exp, expm1, log, log1p, tanh, erfc.

Scalar functions for float32 and float64 (each dtype has its own code path,
picked at compile time; every literal is cast to the argument's type, so that
float32 is computed in float32 only), written in plain arithmetic: range
reduction, polynomials, and powers of two assembled from their bits. No libm
call, and no branch that is not a select: inside a ``prange`` or ufunc loop
they inline and the loop vectorizes (packed AVX2 / AVX-512 code).

Accuracy, measured by ``bench/vmath_accuracy.py``: float32 over all 2^32
inputs against the float64 function, float64 on 10^6 random inputs against
long double and on a subset against mpmath; where the exact result is a
normal number:

=======  ===============  ==========================
name     float32 (ulps)   float64 (relative error)
=======  ===============  ==========================
exp      0.60             1.1e-16
expm1    0.78             1.3e-16
log      0.83             1.4e-16
log1p    0.83             1.4e-16
tanh     0.71             1.2e-16
erfc     0.78             1.2e-16
=======  ===============  ==========================

Subnormal results are rounded (gradual underflow), not flushed. Special
values are those of C99: exp(-inf) = 0, expm1(-inf) = -1, log(0) = -inf,
log(x < 0) = NaN, log1p(-1) = -inf, tanh(+-inf) = +-1, tanh(-0) = -0,
erfc(-inf) = 2, NaN gives NaN (its payload not necessarily kept).

The public functions are ``numba.njit`` dispatchers, callable from Python and
from compiled code. Their ``py_func`` is plain Python all the way down (the
CUDA simulator runs device functions so): each primitive below that needs
LLVM (bit casts, fused multiply-add) is an ordinary Python function with the
same behaviour, and an ``overload`` that lowers it to one LLVM instruction in
compiled code. Run as Python, intermediate float32 overflows can raise NumPy
warnings (``np.errstate`` silences them); the results are those of the
compiled code, bit for bit.

Every function is compiled with ``forceinline``: the larger ones (erfc) are
otherwise above LLVM's inlining threshold, and a loop calling a function
does not vectorize. The fused multiply-add is ``llvm.fma``: one instruction
on CPUs with FMA (x86-64-v3 and later, every GPU); elsewhere a libm call,
exact but slow.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload, register_jitable

# Options of every function here: with error_model="numpy" a float division
# is a plain division (no zero check and raise, a branch that would stop the
# loop vectorizer); forceinline: see the module docstring.
_OPTIONS = {"error_model": "numpy", "forceinline": True}

_jitable = register_jitable(**_OPTIONS)


# --- bit casts and fused multiply-add --------------------------------------
#
# Each primitive is an ordinary Python function (used when the code runs as
# Python, e.g. under the CUDA simulator) with an ``overload`` that lowers it,
# in compiled code, to one LLVM instruction.

def _bitcast_intrinsic(src, dst):
    @intrinsic
    def cast(typingctx, x):
        if isinstance(src, types.Integer):
            if not isinstance(x, types.Integer):
                return None
        elif x != src:
            return None

        def codegen(context, builder, signature, args):
            (v,) = args
            if isinstance(src, types.Integer):
                v = context.cast(builder, v, signature.args[0], src)  # wrap to width
            return builder.bitcast(v, context.get_value_type(dst))

        return dst(x), codegen

    return cast


_f32_i32 = _bitcast_intrinsic(types.float32, types.int32)
_i32_f32 = _bitcast_intrinsic(types.int32, types.float32)
_f64_i64 = _bitcast_intrinsic(types.float64, types.int64)
_i64_f64 = _bitcast_intrinsic(types.int64, types.float64)


def bits32(x):
    """The bits of a float32 as an int32."""
    return np.array(x, np.float32).view(np.int32)[()]


def float32_of(i):
    """The float32 whose bits are the low 32 bits of the integer i."""
    return np.array(np.int64(i).astype(np.int32)).view(np.float32)[()]


def bits64(x):
    """The bits of a float64 as an int64."""
    return np.array(x, np.float64).view(np.int64)[()]


def float64_of(i):
    """The float64 whose bits are the integer i (an int64)."""
    return np.array(np.int64(i)).view(np.float64)[()]


@overload(bits32, jit_options=_OPTIONS)
def _ov_bits32(x):
    if x == types.float32:
        return lambda x: _f32_i32(x)


@overload(float32_of, jit_options=_OPTIONS)
def _ov_float32_of(i):
    if isinstance(i, types.Integer):
        return lambda i: _i32_f32(i)


@overload(bits64, jit_options=_OPTIONS)
def _ov_bits64(x):
    if x == types.float64:
        return lambda x: _f64_i64(x)


@overload(float64_of, jit_options=_OPTIONS)
def _ov_float64_of(i):
    if isinstance(i, types.Integer):
        return lambda i: _i64_f64(i)


@intrinsic
def _llvm_fma(typingctx, a, b, c):
    if isinstance(a, types.Float) and a == b == c:
        def codegen(context, builder, signature, args):
            ty = args[0].type
            fnty = ir.FunctionType(ty, [ty, ty, ty])
            fn = builder.module.declare_intrinsic("llvm.fma", [ty], fnty)
            return builder.call(fn, args)

        return a(a, b, c), codegen
    return None


def fma(a, b, c):
    """a * b + c with a single rounding (exact emulation when run as Python)."""
    if isinstance(a, np.float32):
        return _fma32_py(a, b, c)
    return _fma64_py(a, b, c)


@overload(fma, jit_options=_OPTIONS)
def _ov_fma(a, b, c):
    if isinstance(a, types.Float) and a == b == c:
        return lambda a, b, c: _llvm_fma(a, b, c)


def _fma32_py(a, b, c):
    # The product of two float32 is exact in float64; the sum is rounded to
    # odd in float64 so that the final rounding to float32 is correct.
    p = float(a) * float(b)
    c = float(c)
    s = p + c
    if not np.isfinite(s):
        with np.errstate(all="ignore"):
            return np.float32(s)
    bb = s - p
    err = (p - (s - bb)) + (c - bb)  # TwoSum: p + c = s + err exactly
    if err != 0 and bits64(s) & 1 == 0:
        s = float(np.nextafter(s, np.inf if err > 0 else -np.inf))
    with np.errstate(all="ignore"):
        return np.float32(s)


def _fma64_py(a, b, c):
    a, b, c = float(a), float(b), float(c)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        return np.float64(a * b + c)
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact == 0:  # the sign of an exact zero: IEEE's rule
        return np.float64(a * b + c) if a == 0 or b == 0 else np.float64(0.0)
    try:
        return np.float64(float(exact))  # correctly rounded
    except OverflowError:
        return np.float64(np.inf if exact > 0 else -np.inf)


@intrinsic
def _llvm_select(typingctx, c, a, b):
    if isinstance(c, types.Boolean) and isinstance(a, types.Float) and a == b:
        def codegen(context, builder, signature, args):
            return builder.select(args[0], args[1], args[2])

        return a(c, a, b), codegen
    return None


def where(c, a, b):
    """a if c else b, both already computed.

    Compiled, it is one LLVM ``select``. A conditional expression is a
    branch, which LLVM may keep as one until the loop vectorizer turns it
    into a select; a value computed on both sides of such a branch (forward
    and grad inlined into one value_and_grad loop) is then computed twice.
    """
    return a if c else b


@overload(where, jit_options=_OPTIONS)
def _ov_where(c, a, b):
    if isinstance(c, types.Boolean) and isinstance(a, types.Float) and a == b:
        return lambda c, a, b: _llvm_select(c, a, b)


@intrinsic
def _llvm_maxnum(typingctx, a, b):
    if isinstance(a, types.Float) and a == b:
        def codegen(context, builder, signature, args):
            ty = args[0].type
            fnty = ir.FunctionType(ty, [ty, ty])
            fn = builder.module.declare_intrinsic("llvm.maxnum", [ty], fnty)
            return builder.call(fn, args)

        return a(a, b), codegen
    return None


def fmax(a, b):
    """The larger of a and b, ignoring a NaN (C's fmax, np.fmax).

    Compiled, it is ``llvm.maxnum``, which LLVM vectorizes as a reduction
    (a compare-and-select chain stays scalar).
    """
    return np.fmax(a, b)


@overload(fmax, jit_options=_OPTIONS)
def _ov_fmax(a, b):
    if isinstance(a, types.Float) and a == b:
        return lambda a, b: _llvm_maxnum(a, b)


def _prefer_wide_vectors(builder):
    from fastact._compile import WIDE_VECTORS

    if WIDE_VECTORS:
        # llvmlite's attribute set accepts only the attributes it knows; a
        # string attribute is written into the IR as it is.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')


@intrinsic
def wide_vectors(typingctx):
    """Marks the compiled function it is called in for 512-bit vectors.

    On AVX-512 CPUs LLVM vectorizes loops with 256-bit vectors unless the
    function says otherwise (its ``prefer-vector-width`` attribute); 512-bit
    vectors ran the transcendental kernels 1.3-1.45x faster on a recent
    Xeon. Where there are no 512-bit registers the attribute changes
    nothing. Called in a loop body (a parallel loop's body is a function of
    its own); no effect with ``FASTACT_VECTOR_WIDTH=256``. Compiled code
    only.
    """

    def codegen(context, builder, signature, args):
        _prefer_wide_vectors(builder)
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def vector_loop(typingctx, x):
    """``wide_vectors()`` for an elementwise loop whose body calls it on an
    element x of its input, and a vectorization width of its own.

    On x86-64 CPUs with AVX2 the loop is vectorized with 512 bits' worth of
    x's type per step (16 float32, 8 float64), through its
    ``llvm.loop.vectorize.width`` metadata. LLVM's cost model otherwise
    takes the width from the widest type in the loop (4 lanes for a float32
    function evaluated in float64, on AVX2), and left some loops with many
    selects scalar (mish', hardsigmoid in float64). On a 2-core AMD EPYC
    (Zen 3, AVX2) the width given here ran the float32 transcendental
    kernels 1.1-1.4x faster (mish' 3.5x), the float64 ones 1.0-1.4x, and
    those of plain arithmetic at the same speed. Called once in the loop's
    body; compiled code only.
    """
    if not isinstance(x, (types.Float, types.Integer)):
        return None
    lanes = max(1, 512 // x.bitwidth)

    def codegen(context, builder, signature, args):
        from fastact._compile import force_lanes

        _prefer_wide_vectors(builder)
        if force_lanes():
            _set_loop_width(builder, lanes)
        return context.get_dummy_value()

    return types.none(x), codegen


def _set_loop_width(builder, lanes):
    """Gives the loop being lowered, whose body the builder is in, the
    vectorization width ``lanes``.

    LLVM reads a loop's hints from the metadata of its back edge, the branch
    from the end of the body to the loop header, which Numba emits after the
    body: the builder's ``branch`` is wrapped until it emits that branch, the
    first one in the body to a block lowered before it (the body's other
    branches go to blocks made after it).
    """
    blocks = builder.function.blocks
    earlier = {id(b) for b in blocks[:blocks.index(builder.block)]}
    module = builder.module
    width = module.add_metadata([ir.MetaDataString(module, "llvm.loop.vectorize.width"),
                                 ir.Constant(ir.IntType(32), lanes)])
    # A loop ID is a node of its own whose first operand is itself.
    loop_id = ir.values.MDValue(module, [width], name=str(len(module.metadata)))
    loop_id.operands = (loop_id, width)

    def branch(target):
        br = type(builder).branch(builder, target)
        if id(target) in earlier:
            br.set_metadata("llvm.loop", loop_id)
            del builder.branch
        return br

    builder.branch = branch


def _by_dtype(name, f32, f64):
    """A Python function calling f32 or f64 by the argument's type, compiled likewise."""

    def py(x):
        return f32(x) if isinstance(x, np.float32) else f64(x)

    py.__name__ = py.__qualname__ = name

    @overload(py, jit_options=_OPTIONS)
    def _ov(x):
        if x == types.float32:
            return f32
        if isinstance(x, (types.Float, types.Integer, types.Boolean)):
            return lambda x: f64(np.float64(x))

    return py


@_jitable
def _flip32(b):
    """b with its magnitude bits inverted where it is negative (its own inverse)."""
    return b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF))


@_jitable
def _flip64(b):
    return b ^ ((b >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF))


@_jitable
def _ordered32(x):
    return _flip32(bits32(x))


@_jitable
def _ordered64(x):
    return _flip64(bits64(x))


ordered = _by_dtype("ordered", _ordered32, _ordered64)
ordered.__doc__ = """The bits of a float (float32 or float64) as a signed integer of its
width that orders as the floats do: -0 just below +0, a NaN below -inf or
above +inf by its sign bit. An integer maximum of these is one instruction a
step, which LLVM vectorizes and reduces across lanes without llvm.maxnum's
NaN tests. from_ordered inverts it."""


@_jitable
def _from_ordered32(k):
    return float32_of(_flip32(k))


@_jitable
def _from_ordered64(k):
    return float64_of(_flip64(k))


def from_ordered(k, like):
    """The float of ``like``'s type whose ordered() is k."""
    if isinstance(like, np.float32):
        return _from_ordered32(np.int32(k))
    return _from_ordered64(np.int64(k))


@overload(from_ordered, jit_options=_OPTIONS)
def _ov_from_ordered(k, like):
    if like == types.float32:
        return lambda k, like: _from_ordered32(k)
    if like == types.float64:
        return lambda k, like: _from_ordered64(k)


def float32_only(f32, name=None, doc=None):
    """A Python function calling f32 on a float32, compiled likewise.

    Its float64 overload is NaN: it exists so that dtype-generic code that
    calls it under ``if single(x)`` also types for float64. As a decorator
    (no name), f32 is a plain function, compiled as every function here.
    """
    if name is None:
        name, doc = f32.__name__, f32.__doc__
        f32 = _jitable(f32)

    def py(x):
        return f32(np.float32(x))

    py.__name__ = py.__qualname__ = name
    py.__doc__ = doc

    @overload(py, jit_options=_OPTIONS)
    def _ov(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: np.float64(np.nan)

    return py


def _dw_by_dtype(name, f32, f64, doc):
    """As _by_dtype, for functions of a double-word argument (x, xlo) of one dtype."""

    def py(x, xlo):
        if isinstance(x, np.float32):
            return f32(x, xlo)
        return f64(np.float64(x), np.float64(xlo))

    py.__name__ = py.__qualname__ = name
    py.__doc__ = doc

    @overload(py, jit_options=_OPTIONS)
    def _ov(x, xlo):
        if x == types.float32 and xlo == types.float32:
            return lambda x, xlo: f32(x, xlo)
        if x == types.float64 and xlo == types.float64:
            return lambda x, xlo: f64(x, xlo)

    return py


# --- exp and expm1 ---------------------------------------------------------
#
# x = n ln2 + r, n = round(x / ln2), |r| <= ln2/2 (Cody-Waite). ln2 = C1 + C2
# with C1 = ln2 rounded to the working precision: n*C1 needs more bits than
# the format has, but x - n*C1 is exact all the same (for |n| >= 1 it is a
# multiple of ulp(C1)/2 below 1/2 in magnitude), and one fma computes it.
# r = a + rlo, rlo = -n*C2 kept apart (|rlo| < 2^-21 in float32) and applied
# as the first-order factor e^rlo = 1 + rlo: rounded into a, it would cost up
# to 1/4 ulp.
#
# e^a - 1 - a = a^2 q(a). q is the minimax polynomial of that on
# |a| <= 0.3466 for the relative error of e^a (exp) or of e^a - 1 (expm1,
# tanh), found by the Remez exchange algorithm in 30-40 digit mpmath
# arithmetic, then rounded to the working precision and adjusted by a local
# search over neighbouring machine numbers for the smallest maximum error on
# a 6000-point grid. Approximation error: exp 2^-28.2 (float32, degree 6)
# and 2^-57 (float64, degree 11); expm1 2^-29.6 (degree 7) and 2^-60.9
# (degree 12).


@_jitable
def _reduce32(x):
    """x = n ln2 + a + rlo: a exact, |rlo| < 2^-21, n an integer (|x| < 2^22)."""
    T = type(x)
    # 1.5 * 2^23 + round(x / ln2): the integer n sits in the low bits of t
    t = fma(x, T(1.4426950216293335), T(12582912.0))
    nf = t - T(12582912.0)
    a = fma(-nf, T(0.6931471824645996), x)
    rlo = nf * T(1.9046542121259336e-09)
    return a, rlo, bits32(t) - 0x4B400000


@_jitable
def _reduce64(x):
    T = type(x)
    t = fma(x, T(1.4426950408889634), T(6755399441055744.0))
    nf = t - T(6755399441055744.0)
    a = fma(-nf, T(0.6931471805599453), x)
    rlo = nf * T(-2.3190468138462996e-17)
    return a, rlo, bits64(t) - 0x4338000000000000


@_jitable
def _exp_q32(a):
    """q(a), e^a = 1 + a + a^2 q(a) for |a| <= 0.3466 (float32)."""
    T = type(a)
    q = fma(a, T(0.0013814573), T(0.008368706))
    q = fma(a, q, T(0.04166833))
    q = fma(a, q, T(0.16666521))
    return fma(a, q, T(0.49999994))


@_jitable
def _exp_pair32(a, rlo):
    """e^(a + rlo) = hi + lo, |a| <= 0.3466, |rlo| < 2^-17 (lo not normalized)."""
    T = type(a)
    a2 = a * a
    a2lo = fma(a, a, -a2)  # a^2 = a2 + a2lo exactly: the rounding of a^2 costs 1/8 ulp
    q = _exp_q32(a)
    u = fma(rlo, fma(a2, q, a), rlo)  # rlo e^a
    # 1 + a with its rounding error (Fast2Sum), then the small terms, so that
    # only the last addition rounds at the scale of the result
    hi = T(1) + a
    return hi, fma(a2, q, fma(a2lo, q, (a - (hi - T(1))) + u))


@_jitable
def _exp_pair64(a, rlo):
    T = type(a)
    a2 = a * a
    a2lo = fma(a, a, -a2)
    q = fma(a, T(2.5110047135431714e-08), T(2.763265216957956e-07))
    q = fma(a, q, T(2.7557242344003566e-06))
    q = fma(a, q, T(2.4801487335535664e-05))
    q = fma(a, q, T(0.00019841269886584526))
    q = fma(a, q, T(0.0013888888947812474))
    q = fma(a, q, T(0.008333333333322236))
    q = fma(a, q, T(0.04166666666652204))
    q = fma(a, q, T(0.16666666666666669))
    q = fma(a, q, T(0.500000000000001))
    u = fma(rlo, fma(a2, q, a), rlo)
    hi = T(1) + a
    return hi, fma(a2, q, fma(a2lo, q, (a - (hi - T(1))) + u))


@_jitable
def _scale32(v, n):
    """v 2^n for -150 <= n <= 128, 2^-40 < |v| < 2: 2^n in two factors, each
    a normal number, so that results near overflow stay finite and subnormal
    results round once."""
    n1 = n >> 1
    return (v * float32_of((n1 + 127) << 23)) * float32_of((n - n1 + 127) << 23)


@_jitable
def _scale64(v, n):
    n1 = n >> 1
    return (v * float64_of((n1 + 1023) << 52)) * float64_of((n - n1 + 1023) << 52)


@_jitable
def _exp_dw32(x, xlo):
    """e^(x + xlo) for |xlo| <= ulp(x) / 2: xlo joins the reduction's low part."""
    T = type(x)
    # Clamped so that 2^n stays in range; NaN passes and propagates.
    xc = T(-104.0) if x < T(-104.0) else x
    xc = T(89.0) if xc > T(89.0) else xc
    a, rlo, n = _reduce32(xc)
    hi, lo = _exp_pair32(a, rlo + xlo)
    return _scale32(hi + lo, n)


@_jitable
def _exp_dw64(x, xlo):
    T = type(x)
    xc = T(-746.0) if x < T(-746.0) else x
    xc = T(710.0) if xc > T(710.0) else xc
    a, rlo, n = _reduce64(xc)
    hi, lo = _exp_pair64(a, rlo + xlo)
    return _scale64(hi + lo, n)


@_jitable
def _exp32(x):
    return _exp_dw32(x, type(x)(0))


@_jitable
def _exp64(x):
    return _exp_dw64(x, type(x)(0))


@_jitable
def _expm1_wide_core(a):
    """e^a - 1 in float64 for |a| <= 0.3466, relative error 2^-45.7 (of e^a).

    a + a^2 q(a) with q of degree 7, fitted for the relative error of e^a
    (iteratively reweighted least squares in 40-digit mpmath arithmetic):
    the float32 functions evaluated in float64 need ~2^-40, not float64's
    2^-53, and that saves the double-word steps of _exp_pair64.
    """
    T = type(a)
    q = fma(a, T(2.749310531065388e-06), T(2.4880797190681956e-05))
    q = fma(a, q, T(0.00019841538929444774))
    q = fma(a, q, T(0.0013888811168382969))
    q = fma(a, q, T(0.008333333095256497))
    q = fma(a, q, T(0.04166666696211668))
    q = fma(a, q, T(0.16666666667264746))
    q = fma(a, q, T(0.4999999999966448))
    return fma(a * a, q, a)


@_jitable
def _reduce_wide(x):
    """x = n ln2 + a, |a| <= 0.3466, and 2^n, for exp_wide and expm1_wide.

    x is clamped to [-708, 709], where 2^n is one normal factor, and ln2 is
    one float64: its error, below 150 * 2^-54 ln2 for the arguments of
    float32 functions, is within their budget.
    """
    T = type(x)
    xc = T(-708.0) if x < T(-708.0) else x  # NaN passes and propagates
    xc = T(709.0) if xc > T(709.0) else xc
    return _reduce_in_range(xc)


@_jitable
def _reduce_in_range(x):
    """_reduce_wide for -708 <= x <= 709 (or NaN), without the clamps."""
    T = type(x)
    t = fma(x, T(1.4426950408889634), T(6755399441055744.0))
    nf = t - T(6755399441055744.0)
    a = fma(-nf, T(0.6931471805599453), x)
    return a, float64_of((bits64(t) - 0x4338000000000000 + 1023) << 52)


@_jitable
def _expm1_lean_core(a):
    """e^a - 1 = a + a^2 q(a) for |a| <= 0.3466, q of degree 5 (2^-34 of e^a)."""
    T = type(a)
    q = fma(a, T(0.0001979035482456604), T(0.0013944648993093757))
    q = fma(a, q, T(0.008333497005849101))
    q = fma(a, q, T(0.041666295087082))
    q = fma(a, q, T(0.16666665869414404))
    q = fma(a, q, T(0.5000000067644826))
    return fma(a * a, q, a)


def _exp_expm1(core, exp_doc, expm1_doc):
    """e^x and e^x - 1 in float64 from one core polynomial p(a) = e^a - 1 on
    the reduced argument (see _reduce_wide).

    e^x = (p + 1) 2^n, 0 below -708 (the exact value is below 1e-307, far
    below every float32). e^x - 1 = 2^n p + (2^n - 1): for |x| <= 0.3466,
    n = 0 and this is p itself, without cancellation near 0; beyond, the sum
    loses at most 2 bits. -1 below -708.
    """

    def exp(x):
        T = type(x)
        a, s = _reduce_wide(x)
        return T(0) if x < T(-708.0) else (core(a) + T(1)) * s

    def expm1(x):
        T = type(x)
        a, s = _reduce_wide(x)
        return T(-1) if x < T(-708.0) else fma(s, core(a), s - T(1))

    exp.__doc__, expm1.__doc__ = exp_doc, expm1_doc
    return _jitable(exp), _jitable(expm1)


exp_wide, expm1_wide = _exp_expm1(
    _expm1_wide_core,
    """e^x in float64, for the float32 functions evaluated in float64.

    Their results are rounded to float32 once at the end, so a relative
    error of 2^-45 is ample (see _expm1_wide_core and _reduce_wide).
    Relative error 2^-45 (``tests/test_vmath.py``).
    """,
    """e^x - 1 in float64 for the same use (see _exp_expm1 for the form).
    Relative error 2^-42 (that of the polynomial, relative to e^a, over
    |e^a - 1| near 0.35).
    """)
exp_lean, expm1_lean = _exp_expm1(
    _expm1_lean_core,
    """e^x in float64 to 2^-34 relative, for float32 functions evaluated in
    float64 whose result has relative sensitivity at most ~2 to e^x (no
    cancellation): rounded to float32, this is 2^-9 ulp at most. Two fused
    multiply-adds fewer than exp_wide; q of degree 5, fitted as exp_wide's
    (``tests/test_vmath.py``).""",
    """e^x - 1 in float64 to 2^-30.5 relative (the worst near |x| = 0.1),
    for exp_lean's use: functions without cancellation
    (``tests/test_vmath.py``).""")


@_jitable
def exp_lean_in_range(x):
    """exp_lean for -708 <= x <= 709, or NaN (which propagates), without
    the clamps and the zero below -708 (four operations fewer), and with
    (e^a - 1) 2^n + 2^n in one fused multiply-add (one more): for callers
    that hold their argument within a range of their own (outside it the
    result is undefined)."""
    a, s = _reduce_in_range(x)
    return fma(_expm1_lean_core(a), s, s)


@_jitable
def exp_pair32(x, k):
    """e^x 2^k = eh + el for float32 x <= 0, 0 <= k <= 24, to a relative
    error of 2^-28.

    The unrounded pair of _exp_pair32, normalized and scaled: for functions
    that must divide by or multiply with e^x and still round once (sigma
    within one ulp takes e^x to better than the 0.6 ulp of exp). Exact
    scaling while e^x 2^k is normal; below, both parts round as subnormals
    (k > 0 keeps a multiple of e^x exact where e^x itself is subnormal).
    """
    T = type(x)
    # 2^n stays within the range of two factors; below -110 the result is 0
    xc = T(-110.0) if x < T(-110.0) else x  # NaN passes and propagates
    a, rlo, n = _reduce32(xc)
    n = n + k
    hi, lo = _exp_pair32(a, rlo)
    eh = hi + lo
    el = lo - (eh - hi)  # Fast2Sum: |hi| >= 1/2 > |lo|
    n1 = n >> 1
    s1 = float32_of((n1 + 127) << 23)
    s2 = float32_of((n - n1 + 127) << 23)
    if x < T(-110.0):  # 0, also where the caller scales it up
        return T(0), T(0)
    return (eh * s1) * s2, (el * s1) * s2


#: exp_row32 returns e^x times this: its results stay normal numbers
EXP_ROW_SCALE = 2.0**32


@_jitable
def exp_row32(x, xlo):
    """e^(x + xlo) 2^32 for float32 x <= 0, |xlo| <= ulp(x) / 2, in float32
    arithmetic, within 0.7 ulp (``tests/test_vmath.py``): the exponentials
    of a softmax row, x + xlo the exact difference of an entry and the row's
    maximum.

    The factor 2^32 keeps every result a normal number down to the clamp at
    x = -104.5 (below it the value there, with xlo ignored: xlo may be NaN,
    x - max at x = -inf): the row's sum is then at least 2^32, and the
    normalization rounds the quotient once, also where it is subnormal (and
    0 from the clamped entries). One power of two, from the reduction's
    integer in one shift. xlo joins the reduction's low part c; the
    quadratic term is taken at a + c rounded, 1 + a + c summed with the
    rounding error of 1 + a (Fast2Sum), so that only the last addition
    rounds at the scale of the result. NaN gives NaN.
    """
    T = type(x)
    tiny = x < T(-104.5)
    a, rlo, n = _reduce32(T(-104.5) if tiny else x)
    c = rlo + (T(0) if tiny else xlo)
    a1 = a + c
    hi = T(1) + a
    lo = fma(a1 * a1, _exp_q32(a1), (a - (hi - T(1))) + c)
    return (hi + lo) * float32_of((n + 127 + 32) << 23)  # n >= -151: 2^(n + 32) is normal


@_jitable
def _exp_scaled_pair64(x, k):
    return _exp64(x) * float64_of((k + 1023) << 52), type(x)(0)


def exp_pair(x, k):
    """e^x 2^k = eh + el for x <= 0 and 0 <= k <= 24: the double-word pair of
    exp_pair32 for float32; for float64, e^x 2^k rounded, and 0."""
    if isinstance(x, np.float32):
        return exp_pair32(x, k)
    return _exp_scaled_pair64(np.float64(x), k)


@overload(exp_pair, jit_options=_OPTIONS)
def _ov_exp_pair(x, k):
    if x == types.float32:
        return lambda x, k: exp_pair32(x, k)
    if x == types.float64:
        return lambda x, k: _exp_scaled_pair64(x, k)


exp_dw = _dw_by_dtype("exp_dw", _exp_dw32, _exp_dw64, """e^(x + xlo), x + xlo a double-word number (|xlo| <= ulp(x) / 2).

    e^x has relative sensitivity |dx|: a rounded argument x - m of a
    softmax (|x - m| ~ 10) alone costs ~10 ulps; its exact low part restores
    them at the price of one addition.
    """)


@_jitable
def _expm1_poly32(a, rlo):
    """(a2, a2lo, q, u): e^(a + rlo) - 1 = a + (a2 + a2lo) q(a) + u."""
    T = type(a)
    a2 = a * a
    a2lo = fma(a, a, -a2)
    q = fma(a, T(0.00019907758), T(0.0013948727))
    q = fma(a, q, T(0.008333401))
    q = fma(a, q, T(0.041666333))
    q = fma(a, q, T(0.16666666))
    q = fma(a, q, T(0.5))
    return a2, a2lo, q, fma(rlo, fma(a2, q, a), rlo)


@_jitable
def _expm1_poly64(a, rlo):
    T = type(a)
    a2 = a * a
    a2lo = fma(a, a, -a2)
    q = fma(a, T(2.087533551063522e-09), T(2.5108976293247213e-08))
    q = fma(a, q, T(2.75574026183043e-07))
    q = fma(a, q, T(2.755724438096766e-06))
    q = fma(a, q, T(2.480158717257459e-05))
    q = fma(a, q, T(0.00019841269885959893))
    q = fma(a, q, T(0.0013888888888962348))
    q = fma(a, q, T(0.008333333333321664))
    q = fma(a, q, T(0.04166666666666652))
    q = fma(a, q, T(0.16666666666666677))
    q = fma(a, q, T(0.5))
    return a2, a2lo, q, fma(rlo, fma(a2, q, a), rlo)


@_jitable
def _expm1_32(x):
    T = type(x)
    # Below -16.6, n < -24 and 1 - 2^-n is no longer exact: there the result
    # is -1 + e^x, which rounds to -1 + 2^-24 or to -1 (set at the end).
    xc = T(-16.6) if x < T(-16.6) else x  # NaN passes and propagates
    xc = T(89.0) if xc > T(89.0) else xc
    a, rlo, n = _reduce32(xc)
    a2, a2lo, q, u = _expm1_poly32(a, rlo)
    # e^x - 1 = 2^n (c + e^r - 1), c = 1 - 2^-n: exact for n <= 24; beyond,
    # c rounds to 1 and clo = -2^-n keeps the difference
    nn = n if n < 60 else 60
    p = float32_of((127 - nn) << 23)
    c = T(1) - p
    clo = (T(1) - c) - p
    hi = c + a  # Fast2Sum: |c| >= 1/2 > |a|, or c = 0
    lo = fma(a2, q, fma(a2lo, q, (a - (hi - c)) + (clo + u)))
    w = hi + lo
    # (2w) 2^(n-1): both factors finite for -24 <= n <= 128
    y = (w + w) * float32_of((n + 126) << 23)
    if x < T(-16.6):
        y = T(-0.99999994) if x > T(-17.32868) else T(-1)  # -1 + e^x rounded
    if x == T(0):
        y = x  # -0.0
    return y


@_jitable
def _expm1_64(x):
    T = type(x)
    xc = T(-36.6) if x < T(-36.6) else x
    xc = T(710.0) if xc > T(710.0) else xc
    a, rlo, n = _reduce64(xc)
    a2, a2lo, q, u = _expm1_poly64(a, rlo)
    nn = n if n < 200 else 200
    p = float64_of((1023 - nn) << 52)
    c = T(1) - p
    clo = (T(1) - c) - p
    hi = c + a
    lo = fma(a2, q, fma(a2lo, q, (a - (hi - c)) + (clo + u)))
    w = hi + lo
    y = (w + w) * float64_of((n + 1022) << 52)
    if x < T(-36.6):
        y = T(-0.9999999999999999) if x > T(-37.42994775023705) else T(-1)
    if x == T(0):
        y = x
    return y


# --- tanh ------------------------------------------------------------------
#
# tanh(y) = (e^2y - 1) / (e^2y + 1) = (e^r - 2^-n) / (e^r + 2^-n) for
# 2y = n ln2 + r, y >= 0. With e^r = 1 + v, both the numerator (1 - 2^-n) + v
# and the denominator (1 + 2^-n) + v are formed as exact (hi, lo) pairs, and
# the quotient is corrected by its exact remainder: no cancellation near 0,
# one rounding at the end. 2y is clamped at 20 (float32) / 40 (float64),
# where the quotient already rounds to 1.


@_jitable
def ratio_parts(nh, nl, dh, dl):
    """(nh + nl) / (dh + dl) = q + t * inv to about 2^-2p (p the precision),
    for |nl| and |dl| below an ulp of nh and dh: one division."""
    T = type(nh)
    inv = T(1) / dh
    q = nh * inv
    r = fma(-q, dh, nh)  # exact remainder
    return q, fma(-q, dl, nl) + r, inv


@_jitable
def _ratio(nh, nl, dh, dl):
    """(nh + nl) / (dh + dl), rounded once (see ratio_parts)."""
    q, t, inv = ratio_parts(nh, nl, dh, dl)
    return fma(t, inv, q)


@_jitable
def _tanh_tail(a, a2, a2lo, q, u, p):
    q, t, inv = _tanh_tail_parts(a, a2, a2lo, q, u, p)
    return fma(t, inv, q)


@_jitable
def _tanh_tail_parts(a, a2, a2lo, q, u, p):
    T = type(a)
    v = fma(a2, q, fma(a2lo, q, u))  # e^r - 1 = a + v
    vh = a + v
    vl = v - (vh - a)
    c1 = T(1) - p  # p = 2^-n; c1 and c2 may round, c1lo and c2lo are exact
    c1lo = (T(1) - c1) - p
    c2 = T(1) + p
    c2lo = p - (c2 - T(1))
    nh = c1 + vh  # Fast2Sum: |c1| >= 1/2 > |vh|, or c1 = 0
    nl = (vh - (nh - c1)) + (vl + c1lo)
    dh = c2 + vh
    dl = (vh - (dh - c2)) + (vl + c2lo)
    return ratio_parts(nh, nl, dh, dl)


@_jitable
def _tanh32(x):
    q, r, inv = tanh_parts32(abs(x))
    t = fma(r, inv, q)
    # t >= 0 (+0 at 0): take x's sign bit, so that tanh(-0.0) = -0.0
    return float32_of(bits32(t) | (bits32(x) & -0x80000000))


@_jitable
def tanh_parts32(y):
    """tanh(y) = q + t * inv (see ratio_parts) for float32 y >= 0, unrounded:
    relative error 2^-25.8, 2^-27.5 from y = 0.6 (``tests/test_vmath.py``;
    near 0.2 the rounding of e^r - 1's polynomial dominates)."""
    T = type(y)
    z = T(2) * y
    z = T(20) if z > T(20) else z  # NaN passes and propagates
    a, rlo, n = _reduce32(z)
    a2, a2lo, q, u = _expm1_poly32(a, rlo)
    return _tanh_tail_parts(a, a2, a2lo, q, u, float32_of((127 - n) << 23))


@_jitable
def _tanh64(x):
    T = type(x)
    z = T(2) * abs(x)
    z = T(40) if z > T(40) else z
    a, rlo, n = _reduce64(z)
    a2, a2lo, q, u = _expm1_poly64(a, rlo)
    t = _tanh_tail(a, a2, a2lo, q, u, float64_of((1023 - n) << 52))
    return float64_of(bits64(t) | (bits64(x) & -0x8000000000000000))


# --- log and log1p ---------------------------------------------------------
#
# x = 2^k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), f exact, from the bits.
# log1p(f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.1716, evaluated as
# f - hfsq + s (hfsq + R(s^2)), hfsq = f^2/2 (as in fdlibm): the rounding
# error of s only enters through s (hfsq + R), a fiftieth of the result.
# R(z) = 2 atanh(s)/s - 2: minimax of odd degree 7 (float32) / 15 (float64)
# in s for the relative error of log1p(f), found as for exp (Remez in
# mpmath, rounding, local search); approximation error 2^-29.2 / 2^-56.
# k ln2 = k C1 + k C2 with C1 of 15 (float32) / 32 (float64) significant
# bits, so that k C1 is exact, and k C1 + f is summed with its rounding
# error (Fast2Sum).


@_jitable
def _log_tail32(f, k, tiny):
    """k ln2 + log1p(f) + tiny, for tiny below an ulp of the result."""
    hi, lo = _log_parts32(f, k, tiny)
    return hi + lo


@_jitable
def _log_parts32(f, k, tiny):
    """_log_tail32 as the unrounded sum hi + lo."""
    T = type(f)
    kf = T(k)
    s = f / (T(2) + f)
    z = s * s
    r = z * fma(z, fma(z, T(0.29666817), T(0.39986745)), T(0.6666668))
    f2 = f * f
    hh = T(0.5) * f2
    hl = T(0.5) * fma(f, f, -f2)  # hfsq = hh + hl exactly
    kh = kf * T(0.693145751953125)
    g = f - hh
    gl = (f - g) - hh  # Fast2Sum: hh <= |f| / 4, so f - hh = g + gl exactly
    hi = kh + g
    # f - (hh + hl) + s (hh + hl + r) = hi + s (hh + r) + [s hl - hl + gl + ...]:
    # the low part is a fiftieth of the result, and its rounding negligible
    tiny = ((kf * T(1.428606765330187e-06) + tiny) + fma(s, hl, -hl)) + ((g - (hi - kh)) + gl)
    return hi, fma(s, hh + r, tiny)


@_jitable
def _log_tail64(f, k, tiny):
    T = type(f)
    kf = T(k)
    s = f / (T(2) + f)
    z = s * s
    r = fma(z, T(0.14473927768710612), T(0.15344446110376694))
    r = fma(z, r, T(0.18182469166642426))
    r = fma(z, r, T(0.22222217375714873))
    r = fma(z, r, T(0.2857142858563786))
    r = fma(z, r, T(0.3999999999998903))
    r = fma(z, r, T(0.6666666666666669))
    r = z * r
    f2 = f * f
    hh = T(0.5) * f2
    hl = T(0.5) * fma(f, f, -f2)
    kh = kf * T(6.93147180369123816490e-01)
    hi = kh + f
    tiny = ((kf * T(1.90821492927058770002e-10) + tiny) + fma(s, hl, -hl)) + (f - (hi - kh))
    return hi + (fma(s, hh + r, -hh) + tiny)


@_jitable
def _log32(x):
    T = type(x)
    # Subnormals scaled to normal numbers first. abs: the bits below stay
    # positive (results for x <= 0 are set at the end).
    xa = abs(x)
    sub = xa < T(1.1754943508222875e-38)
    xs = xa * T(8388608.0) if sub else xa
    ix = bits32(xs) - 0x3F3504F3  # the exponent counted from sqrt(1/2)
    k = (ix >> 23) - (23 if sub else 0)
    f = float32_of((ix & 0x007FFFFF) + 0x3F3504F3) - T(1)
    y = _log_tail32(f, k, T(0))
    if x == T(np.inf):
        y = x
    if x == T(0):
        y = T(-np.inf)
    if not x >= T(0):
        y = T(np.nan)  # x < 0 or NaN
    return y


@_jitable
def _log64(x):
    T = type(x)
    xa = abs(x)
    sub = xa < T(2.2250738585072014e-308)
    xs = xa * T(18014398509481984.0) if sub else xa
    ix = bits64(xs) - 0x3FE6A09E667F3BCD
    k = (ix >> 52) - (54 if sub else 0)
    f = float64_of((ix & 0x000FFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD) - T(1)
    y = _log_tail64(f, k, T(0))
    if x == T(np.inf):
        y = x
    if x == T(0):
        y = T(-np.inf)
    if not x >= T(0):
        y = T(np.nan)
    return y


@_jitable
def _log1p32(x):
    T = type(x)
    u = T(1) + x
    # 1 + x = u + c exactly while u < 2^24 (k <= 24); c is dropped beyond,
    # where it is below 2^-24 of a result of at least 16
    c = x - (u - T(1))
    ix = bits32(abs(u)) - 0x3F3504F3
    k = ix >> 23
    f = float32_of((ix & 0x007FFFFF) + 0x3F3504F3) - T(1)
    kc = k if k < 24 else 24
    flo = c * float32_of((127 - kc) << 23)  # 1 + x = 2^k (1 + f + flo)
    flo = T(0) if k > 24 else flo
    # Unscaled (k = 0), f = x exactly: no correction, which would cancel
    # against f for tiny x
    f = x if k == 0 else f
    flo = T(0) if k == 0 else flo
    # log1p(f + flo) = log1p(f) + flo / (1 + f), the quotient by its series
    tiny = flo * fma(f, fma(f, T(1) - f, T(-1)), T(1))
    y = _log_tail32(f, k, tiny)
    if x == T(np.inf):
        y = x
    if x == T(-1):
        y = T(-np.inf)
    if not x >= T(-1):
        y = T(np.nan)  # x < -1 or NaN
    if x == T(0):
        y = x  # -0.0
    return y


@_jitable
def log1p_pair32(xh, xl):
    """log1p(xh + xl) = hi + lo, unrounded, for float32 0 <= xh <= 1 and
    |xl| below an ulp of xh (a double-word argument such as exp_pair32's).

    1 + xh is summed exactly; from sqrt 2 on, (1 + xh + xl) / 2 = 1 + f + flo
    (halving and the subtraction are exact). For log1p(e^-|x|) within one ulp
    in float32 arithmetic (softplus): the rounding of e alone would cost up
    to half an ulp. Relative error below 2^-26.3 (``tests/test_vmath.py``)
    where xl is a normal number.
    """
    T = type(xh)
    u = T(1) + xh
    c = (xh - (u - T(1))) + xl  # Fast2Sum: 1 >= xh
    big = u >= T(1.4142135381698608)
    f = T(0.5) * u - T(1) if big else xh
    flo = T(0.5) * c if big else xl
    # log1p(f + flo) = log1p(f) + flo / (1 + f), the quotient by its series
    tiny = flo * fma(f, fma(f, T(1) - f, T(-1)), T(1))
    return _log_parts32(f, 1 if big else 0, tiny)


def log1p_pair(xh, xl):
    """log1p(xh + xl) as a pair: log1p_pair32 for float32; for float64
    (where callers do not use it) log1p of the sum, and 0."""
    if isinstance(xh, np.float32):
        return log1p_pair32(xh, xl)
    return _log1p64(np.float64(xh) + np.float64(xl)), 0.0


@overload(log1p_pair, jit_options=_OPTIONS)
def _ov_log1p_pair(xh, xl):
    if xh == types.float32:
        return lambda xh, xl: log1p_pair32(xh, xl)
    if xh == types.float64:
        return lambda xh, xl: (_log1p64(xh + xl), xh * 0.0)


@_jitable
def _log1p64(x):
    T = type(x)
    u = T(1) + x
    c = x - (u - T(1))
    ix = bits64(abs(u)) - 0x3FE6A09E667F3BCD
    k = ix >> 52
    f = float64_of((ix & 0x000FFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD) - T(1)
    kc = k if k < 53 else 53
    flo = c * float64_of((1023 - kc) << 52)
    flo = T(0) if k > 53 else flo
    f = x if k == 0 else f
    flo = T(0) if k == 0 else flo
    tiny = flo * fma(f, fma(f, fma(f, f - T(1), T(1)), T(-1)), T(1))
    y = _log_tail64(f, k, tiny)
    if x == T(np.inf):
        y = x
    if x == T(-1):
        y = T(-np.inf)
    if not x >= T(-1):
        y = T(np.nan)
    if x == T(0):
        y = x
    return y


# --- erfc ------------------------------------------------------------------
#
# |x| < 1/2: 1 - erf(x), erf(x) = x (c0 + x^2 P(x^2)), c0 = 2/sqrt(pi) as a
# hi + lo pair, x c0hi with its exact product error, and 1 - x c0hi with its
# exact rounding error: one rounding at the scale of the result.
# y = |x| >= 1/2: erfc(y) = e^(-y^2) F(y) / y, F(y) = y e^(y^2) erfc(y) in
# [0.3, 0.57], a polynomial in t = y - c (float32: y < 1, y < 2; float64:
# y < 1.25, y < 2.5) or t = 1/y - c (beyond), its coefficients chosen by the
# interval. The constant term is a hi + lo pair (a single rounded constant
# would be off by up to 2^-25 in float32) and c0 + t c1 is summed exactly;
# the intervals are narrow enough that the rest, t^2 (c2 + ...), is below a
# quarter of F, so that its rounding errors stay small. y^2 is split exactly
# (fma) and its low part goes into the reduction of e^(-y^2): the rounding
# of y^2 alone would cost 2^-17 relative at y = 10. The product is kept as
# an exact pair and the division by y is corrected by its exact remainder.
# x <= -1/2: 2 - erfc(-x).
# Coefficients: Remez in mpmath as above, for the relative error of F (of
# erfc for P); c0 kept in extended precision, the others rounded and
# adjusted by the local search. Approximation errors: float32 2^-31.6 (P),
# 2^-30.5, 2^-29.4, 2^-30.9 (F, degree 9); float64 2^-60.3 (P), 2^-59.2,
# 2^-59.3, 2^-59.4 (F, degree 21).
# Tables, one row per coefficient, one column per interval: c0 hi, c0 lo,
# c1, then c_d ... c2 (Horner order).
_ERFC_F32 = (
    (0.3802032470703125, 0.48237812519073486, 0.541765034198761),
    (-9.351751373287698e-09, -5.881072850932867e-10, 3.5257205488470333e-10),
    (0.23095813393592834, 0.076151043176651, -0.13433456420898438),
    (0.0017963232239708304, 0.00012497293937485665, 0.8772541880607605),
    (-0.004330822732299566, -0.0003519841702654958, -0.2983488142490387),
    (0.00974518433213234, 0.0008899954264052212, -0.2639426589012146),
    (-0.02117442525923252, -0.0023111985065042973, 0.34681975841522217),
    (0.0428677573800087, 0.005658831913024187, -0.16048896312713623),
    (-0.07974322140216827, -0.012865385040640831, -0.08081510663032532),
    (0.1335810422897339, 0.026754645630717278, 0.2083909660577774),
    (-0.19475409388542175, -0.049396343529224396, -0.1361960470676422),
)
_ERFC_F64 = (
    (0.40627263530233537, 0.505181222183757, 0.5516070555732552),
    (4.6119990290364695e-18, 4.656481842614252e-17, -2.3339034908050463e-18),
    (0.1879569237731824, 0.04814863004967349, -0.10815107502517406),
    (1.1970327185909918e-09, 5.2281767029335946e-12, 5271.139563306152),
    (-4.316610575782235e-09, -2.1864007352956212e-11, -1257.7316609378806),
    (1.4532006488095805e-08, 7.991681015224321e-11, -1346.7215753741864),
    (-5.076621936263566e-08, -3.2576180303490176e-10, 741.7166713938159),
    (1.7325236018201955e-07, 1.3086411080995674e-09, -74.24997472381668),
    (-5.753804560694418e-07, -5.1065181361803896e-09, -99.62728149036009),
    (1.8597829485153674e-06, 1.9474933729769996e-08, 78.05316137527701),
    (-5.840841070625706e-06, -7.252284951942952e-08, -25.40199802697082),
    (1.778851081093809e-05, 2.6324139649886535e-07, -4.727167826087972),
    (-5.2418643730457535e-05, -9.297232231306684e-07, 10.279903499405345),
    (0.00014906919938340258, 3.1885843321320484e-06, -5.259544535775576),
    (-0.00040786846010852613, -1.0593856583656294e-05, 0.1935513661856301),
    (0.0010697868174990258, 3.400063179955327e-05, 1.6406268651968963),
    (-0.0026778651892984326, -0.00010504842083917426, -1.162000404337398),
    (0.006361931306115807, 0.00031108322859241364, 0.1381117543449577),
    (-0.014243381818788745, -0.0008780403948432238, 0.4087761441714061),
    (0.029768330282438967, 0.0023443860346326266, -0.3515255700313636),
    (-0.0573145287112503, -0.005858204166221668, 0.021370008707035745),
    (0.09965683066275324, 0.01347607831859775, 0.22007067392679566),
    (-0.1513715881893072, -0.027738041384860586, -0.1887281427895677),
)


@_jitable
def _pick3(first, second, c):
    return c[0] if first else (c[1] if second else c[2])


@_jitable
def _erfc_small_parts(x, c0h, c0l, w):
    """1 - x (c0h + c0l) - w = sh + rest, w = x^3 P(x^2) below 0.05."""
    T = type(x)
    ph = x * T(c0h)
    pl = fma(x, T(c0h), -ph)
    sh = T(1) - ph  # Fast2Sum: |ph| < 0.57
    return sh, ((T(1) - sh) - ph) - (pl + (w + x * T(c0l)))


@_jitable
def _erfc_small(x, c0h, c0l, w):
    sh, rest = _erfc_small_parts(x, c0h, c0l, w)
    return sh + rest


@_jitable
def _erfc_big(y, inv, t, c0h, c0l, c1, f, eh, el, yl, dt):
    """e^(-y^2) F(y) / y = q + r * inv, e^(-y^2) = eh + el, F = c0h + c0l + t (c1 + t f).

    yl: the low part of the argument y + yl (its effect on e^(-y^2) is in
    eh + el already); dt = dt/dy. Its effect on F / y, the relative factor
    1 + yl (F'/F - 1/y) with F' ~ (c1 + 2 t f) dt, joins the product's low
    part: applied to a rounded result it would be lost.
    """
    T = type(y)
    # F = fh + fl: c0h + t c1 summed with its exact errors; the rest is small
    g = t * T(c1)
    fh = T(c0h) + g  # Fast2Sum: |t c1| < c0h / 5
    fl = (g - (fh - T(c0h))) + ((fma(t, T(c1), -g) + T(c0l)) + t * (t * f))
    mh = eh * fh
    rel = yl * ((T(c1) + T(2) * t * f) * dt / fh - inv)
    ml = fma(eh, fl, fma(el, fh, fma(eh, fh, -mh))) + mh * rel
    m = mh + ml  # renormalized, so that the remainder correction is tiny
    mlo = ml - (m - mh)
    q = m * inv
    return q, fma(-q, y, m) + mlo  # the quotient is q + (this) * inv


@_jitable
def _erfc_parts32(x, xl):
    """erfc(x + xl) unrounded: (sh + rest) for |x| < 1/2; otherwise
    erfc(|x|) = (q + t * inv) 2^n, to be taken from 2 for x < 0."""
    T = type(x)
    z = x * x
    p = fma(z, T(-0.0007866260129958391), T(0.005210636183619499))
    p = fma(z, p, T(-0.026865191757678986))
    p = fma(z, p, T(0.11283785104751587))
    p = fma(z, p, T(-0.37612637877464294))
    sh, rest = _erfc_small_parts(x, 1.128379225730896, -5.8635382771399236e-08,
                                 x * z * p + xl * (T(1.1283791670955126) * (T(1) - z)))
    # Clamped: erfc(10.2) rounds to 0; below 1/2 this branch is not used.
    # NaN passes and propagates.
    y = abs(x)
    yl = xl if x >= T(0) else -xl
    y = T(10.2) if y > T(10.2) else y
    y = T(0.5) if y < T(0.5) else y
    inv = T(1) / y
    p0 = y < T(1)
    p1 = y < T(2)
    t = (y - T(0.75)) if p0 else ((y - T(1.5)) if p1 else (inv - T(0.29901960492134094)))
    f = T(_pick3(p0, p1, _ERFC_F32[3]))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F32[4])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F32[5])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F32[6])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F32[7])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F32[8])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F32[9])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F32[10])))
    h = y * y
    a, rlo, n = _reduce32(-h)
    hi, lo = _exp_pair32(a, rlo - (fma(y, y, -h) + T(2) * y * yl))  # e^-(h + l), y^2 = h + l
    eh = hi + lo
    el = lo - (eh - hi)
    c = _ERFC_F32
    q, r = _erfc_big(y, inv, t, _pick3(p0, p1, c[0]), _pick3(p0, p1, c[1]), _pick3(p0, p1, c[2]),
                     f, eh, el, yl, T(1) if p1 else -(inv * inv))
    return sh, rest, q, r, inv, n


@_jitable
def _erfc_dw32(x, xl):
    """erfc(x + xl) for |xl| <= ulp(x) / 2 (see erfc_dw)."""
    T = type(x)
    sh, rest, q, r, inv, n = _erfc_parts32(x, xl)
    big = _scale32(fma(r, inv, q), n)
    big = T(2) - big if x < T(0) else big
    return sh + rest if abs(x) < T(0.5) else big


@_jitable
def _erfc32(x):
    return _erfc_dw32(x, type(x)(0))


@_jitable
def _erfc_dw64(x, xl):
    """erfc(x + xl) for |xl| <= ulp(x) / 2 (see erfc_dw)."""
    T = type(x)
    z = x * x
    p = fma(z, T(-1.4997957994092041e-07), T(1.6409748871981973e-06))
    p = fma(z, p, T(-1.4924614598736861e-05))
    p = fma(z, p, T(0.00012055321832684195))
    p = fma(z, p, T(-0.0008548326959889022))
    p = fma(z, p, T(0.005223977625268791))
    p = fma(z, p, T(-0.026866170645129386))
    p = fma(z, p, T(0.1128379167095513))
    p = fma(z, p, T(-0.37612638903183754))
    small = _erfc_small(x, 1.1283791670955126, 1.533545961316588e-17,
                         x * z * p + xl * (T(1.1283791670955126) * (T(1) - z)))
    y = abs(x)
    yl = xl if x >= T(0) else -xl
    y = T(27.3) if y > T(27.3) else y
    y = T(0.5) if y < T(0.5) else y
    inv = T(1) / y
    p0 = y < T(1.25)
    p1 = y < T(2.5)
    t = (y - T(0.875)) if p0 else ((y - T(1.875)) if p1 else (inv - T(0.21831501831501832)))
    f = T(_pick3(p0, p1, _ERFC_F64[3]))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[4])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[5])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[6])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[7])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[8])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[9])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[10])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[11])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[12])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[13])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[14])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[15])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[16])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[17])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[18])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[19])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[20])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[21])))
    f = fma(t, f, T(_pick3(p0, p1, _ERFC_F64[22])))
    h = y * y
    a, rlo, n = _reduce64(-h)
    hi, lo = _exp_pair64(a, rlo - (fma(y, y, -h) + T(2) * y * yl))
    eh = hi + lo
    el = lo - (eh - hi)
    c = _ERFC_F64
    q, r = _erfc_big(y, inv, t, _pick3(p0, p1, c[0]), _pick3(p0, p1, c[1]), _pick3(p0, p1, c[2]),
                     f, eh, el, yl, T(1) if p1 else -(inv * inv))
    big = _scale64(fma(r, inv, q), n)
    big = T(2) - big if x < T(0) else big
    return small if abs(x) < T(0.5) else big


@_jitable
def _erfc64(x):
    return _erfc_dw64(x, type(x)(0))


_exp = _by_dtype("_exp", _exp32, _exp64)
_expm1 = _by_dtype("_expm1", _expm1_32, _expm1_64)
_log = _by_dtype("_log", _log32, _log64)
_log1p = _by_dtype("_log1p", _log1p32, _log1p64)
_tanh = _by_dtype("_tanh", _tanh32, _tanh64)
_erfc = _by_dtype("_erfc", _erfc32, _erfc64)
erfc_dw = _dw_by_dtype("erfc_dw", _erfc_dw32, _erfc_dw64, """erfc(x + xlo), x + xlo a double-word number (|xlo| <= ulp(x) / 2).

    In the tail erfc's relative sensitivity is ~2x: the rounding of an
    argument such as -x/sqrt(2) costs up to x ulps; its exact low part,
    folded into the reduction of e^(-x^2), restores them.
    """)

_public = njit(cache=True, nogil=True, **_OPTIONS)


@_public
def exp(x):
    return _exp(x)


@_public
def expm1(x):
    return _expm1(x)


@_public
def log(x):
    return _log(x)


@_public
def log1p(x):
    return _log1p(x)


@_public
def tanh(x):
    return _tanh(x)


@_public
def erfc(x):
    return _erfc(x)
