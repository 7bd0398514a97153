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

from fastact import _math
from fastact._compile import KernelFamily, jit
from fastact._rowwise_kernels import PARALLEL_THRESHOLD as _ROWWISE_THRESHOLD


@jit
def _row_max(x, r):
    """The largest entry of row r (NaN entries are skipped; they still make the loss NaN)."""
    m = x[r, 0]
    for j in range(1, x.shape[1]):
        v = x[r, j]
        if v > m:
            m = v
    return m


def cross_entropy_rows(x, target, losses):
    """losses[r] = -log softmax(x[r])[target[r]], in float64; returns the number of bad targets.

    With m = max x[r], e_j = e^(x_j - m), t = target[r] and S = sum_{j != t} e_j:
    -log p_t = log(e_t + S) - log(e_t). Written as (m - x_t) + log(e_t + S)
    where p_t < 1/2 (both terms >= 0: no cancellation), and as
    log1p(S / e_t) where p_t >= 1/2, which keeps the relative accuracy of a
    small loss (the first form rounds a loss below 1e-16 to 0).
    NaN anywhere in the row, or a row of -inf or with +inf, gives NaN (x - m
    is NaN), as in PyTorch. A target outside [0, n) is counted, not read.
    """
    rows, n = x.shape
    bad = 0
    for r in prange(rows):
        t = target[r]
        if t < 0 or t >= n:
            bad += 1
            continue
        m = _row_max(x, r)
        rest = 0.0
        for j in range(n):
            if j != t:
                rest += _math.exp(x[r, j] - m)
        et = np.float64(_math.exp(x[r, t] - m))
        if rest <= et:
            losses[r] = np.log1p(rest / et)
        else:
            losses[r] = (np.float64(m) - np.float64(x[r, t])) + np.log(et + rest)
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
    bad = 0
    for r in prange(rows):
        t = target[r]
        if t < 0 or t >= n:
            bad += 1
            continue
        m = _row_max(x, r)
        rest = 0.0
        for j in range(n):  # store e^(x - m) and sum it, then scale
            e = _math.exp(x[r, j] - m)
            out[r, j] = e
            if j != t:
                rest += e
        s = np.float64(out[r, t]) + rest
        k = c * np.float64(g[r * step]) / s
        for j in range(n):
            out[r, j] = T(np.float64(out[r, j]) * k)
        out[r, t] = T(-rest * k)
    return bad


def squared_error_sum(p, t):
    """sum (p - t)^2 in float64.

    For float32 inputs the float64 difference is exact unless the exponents
    of p and t differ by more than 29.
    """
    s = 0.0
    for i in prange(p.size):
        d = np.float64(p[i]) - np.float64(t[i])
        s += d * d
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
    for i in prange(p.size):
        d = np.float64(p[i]) - np.float64(t[i])
        out[i] = T(c * np.float64(g[i * step]) * d)


_KERNELS = {f.__name__: f for f in (
    cross_entropy_rows, cross_entropy_backward_rows, squared_error_sum, squared_error,
    squared_error_backward,
)}

# Work (elements) above which the parallel version is used; the same
# trade-off as the row-wise kernels.
PARALLEL_THRESHOLD = _ROWWISE_THRESHOLD


kernel = KernelFamily(_KERNELS, lambda: PARALLEL_THRESHOLD)
