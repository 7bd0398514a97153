"""Numba kernels for the losses.

The cross-entropy kernels take C-contiguous 2-D logits whose rows are the
lines along the class axis of the caller (``fastact._losses`` moves the axis
last) and one class index per row. The squared-error kernels take flat
contiguous arrays. Each kernel is written once as a plain function and
compiled twice on demand: serial for small inputs, ``parallel=True`` over
rows (or elements) for large ones.

Sums are accumulated in float64 scalars also for float32 inputs, and the
per-row losses are float64: the caller reduces them in float64 and rounds
once.
"""

from __future__ import annotations


import numpy as np
from numba import prange

from fastact import _math, _vmath
from fastact._compile import KernelFamily, scalar_jit
from fastact._rowwise_kernels import PARALLEL_THRESHOLD as _ROWWISE_THRESHOLD
from fastact._rowwise_kernels import (_exp_minus, _log_scale, _rows_per_task, _signed_max,
                                      _sum64)
from fastact._vmath import vector_loop

# The squared-error sum adds blocks of this many elements in parallel; the
# blocks depend on the size only, so the sum has the same bits on any number
# of threads.
SUM_BLOCK = 1 << 14


@scalar_jit
def _exp_row(v, o, m):
    """o = e^(v - m) (times _exp_minus's factor, the softmax rows' exponential),
    0 where float32's v - m is below the exponential's clamp at -104.5 (it
    returns the value there, ~2^-119, which a loss would add up: the loss
    of a row whose other logits are all far below would be 1e-45, not 0)."""
    T = v.dtype.type
    low = T(-104.5) if _math.single(m) else T(-np.inf)
    for j in range(v.shape[0]):
        e = v[j]
        vector_loop(e)
        o[j] = T(0) if e - m < low else _exp_minus(e, m)  # NaN: not below, passed on


@scalar_jit
def _rest(e, t):
    """The sum of the exponentials e of a row but the target's, in float64:
    the two sides of t summed apart (no cancellation where p_t is near 1)."""
    return _sum64(e[:t]) + _sum64(e[t + 1:])


def cross_entropy_rows(x, target, losses):
    """losses[r] = -log softmax(x[r])[target[r]], in float64; returns the number of bad targets.

    With m = max x[r], e_j = e^(x_j - m) (the softmax rows' exponential, the
    difference taken exactly), t = target[r] and S = sum_{j != t} e_j:
    -log p_t = log(e_t + S) - log(e_t). Written as (m - x_t) + log(e_t + S)
    where p_t < 1/2 (both terms >= 0: no cancellation), and as
    log1p(S / e_t) where p_t >= 1/2, which keeps the relative accuracy of a
    small loss (the first form rounds a loss below 1e-16 to 0).
    NaN anywhere in the row, or a row of -inf or with +inf, gives NaN (x - m
    is NaN), as in PyTorch. A target outside [0, n) is counted, not read.
    """
    rows, n = x.shape
    T = x.dtype.type
    per = _rows_per_task(n)
    bad = 0
    for b in prange((rows + per - 1) // per):
        buf = np.empty(n, x.dtype)
        for r in range(b * per, min(rows, (b + 1) * per)):
            t = target[r]
            if t < 0 or t >= n:
                bad += 1
                continue
            m = _signed_max(x[r], T(1))
            _exp_row(x[r], buf, m)
            rest = _rest(buf, t)
            et = np.float64(buf[t])
            if rest <= et:
                losses[r] = np.log1p(rest / et)
            else:
                losses[r] = (np.float64(m) - np.float64(x[r, t])) + (np.log(et + rest) - _log_scale(m))
    return bad


def cross_entropy_backward_rows(x, target, g, step, c, out):
    """out[r] = c * g[r * step] * (softmax(x[r]) - onehot(target[r])).

    ``g`` holds one factor per row (step 1) or one for all (step 0). The
    target entry is p_t - 1 = -S / (e_t + S), S the sum over the other
    classes: no cancellation when p_t is close to 1. Returns the number of
    targets outside [0, n) (those rows are left unwritten).
    """
    rows, n = x.shape
    T = x.dtype.type
    per = _rows_per_task(n)
    bad = 0
    for b in prange((rows + per - 1) // per):
        for r in range(b * per, min(rows, (b + 1) * per)):
            t = target[r]
            if t < 0 or t >= n:
                bad += 1
                continue
            o = out[r]
            _exp_row(x[r], o, _signed_max(x[r], T(1)))
            rest = _rest(o, t)
            k = c * np.float64(g[r * step]) / (np.float64(o[t]) + rest)
            kh = T(k)
            kl = T(k - np.float64(kh))
            for j in range(n):  # e k, rounded once in the row's dtype
                e = o[j]
                vector_loop(e)
                o[j] = _vmath.fma(e, kh, e * kl)
            o[t] = T(-rest * k)
    return bad


@scalar_jit(fastmath={"reassoc", "contract"})
def _squared_error_sum(p, t):
    s = 0.0
    for i in range(p.shape[0]):
        d = np.float64(p[i]) - np.float64(t[i])
        s += d * d
    return s


def squared_error_sum(p, t):
    """sum (p - t)^2 in float64, in blocks of SUM_BLOCK elements added in
    order (reassociated within a block, so that it vectorizes).

    For float32 inputs the float64 difference is exact unless the exponents
    of p and t differ by more than 29.
    """
    nb = (p.size + SUM_BLOCK - 1) // SUM_BLOCK
    parts = np.empty(nb)
    for b in prange(nb):
        lo = b * SUM_BLOCK
        hi = min(p.size, lo + SUM_BLOCK)
        parts[b] = _squared_error_sum(p[lo:hi], t[lo:hi])
    s = 0.0
    for b in range(nb):
        s += parts[b]
    return s


def squared_error(p, t, out):
    """out = (p - t)^2, rounded once."""
    T = out.dtype.type
    for i in prange(p.size):
        d = np.float64(p[i]) - np.float64(t[i])
        out[i] = T(d * d)


def squared_error_backward(p, t, g, step, c, out):
    """out = c * g[i * step] * (p - t): g one value (step 0) or one per element (step 1)."""
    T = out.dtype.type
    if step == 0:
        f = c * np.float64(g[0])
        for i in prange(p.size):
            out[i] = T(f * (np.float64(p[i]) - np.float64(t[i])))
    else:
        for i in prange(p.size):
            out[i] = T(c * np.float64(g[i]) * (np.float64(p[i]) - np.float64(t[i])))


_KERNELS = {f.__name__: f for f in (
    cross_entropy_rows, cross_entropy_backward_rows, squared_error_sum, squared_error,
    squared_error_backward,
)}

# Work (elements) above which the parallel version is used; the same
# trade-off as the row-wise kernels.
PARALLEL_THRESHOLD = _ROWWISE_THRESHOLD


kernel = KernelFamily(_KERNELS, lambda: PARALLEL_THRESHOLD)
