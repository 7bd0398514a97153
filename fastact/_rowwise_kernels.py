"""Numba kernels for the functions that work along an axis.

Every kernel takes C-contiguous 2-D arrays whose rows are the lines along the
axis of the caller (``fastact._rowwise`` moves the axis last). Each is written
once as a plain function and compiled twice on demand: serial for small
inputs, ``parallel=True`` over rows for large ones.

Sums are accumulated in float64 (a scalar, in registers) also for float32
rows: a float32 running sum over a row of 1024 loses ~10 bits.
"""

from __future__ import annotations


import numpy as np
from numba import prange

from fastact import _math
from fastact._compile import KernelFamily

# Softmax-family modes.
SOFTMAX, LOG_SOFTMAX = 0, 1


def softmax_rows(x, out, sign, mode, mask, masked):
    """out = softmax(sign * x) or log_softmax(sign * x) per row; mask rows if masked."""
    rows, n = x.shape
    T = x.dtype.type
    for r in prange(rows):
        m = -np.inf
        count = 0
        for j in range(n):
            if masked and not mask[r, j]:
                continue
            count += 1
            v = sign * x[r, j]
            if v > m:
                m = v
        if count == 0:  # every entry masked: 0 (softmax) or -inf (log_softmax), not NaN
            fill = T(0) if mode == SOFTMAX else T(-np.inf)
            for j in range(n):
                out[r, j] = fill
            continue
        s = 0.0
        if mode == SOFTMAX:
            for j in range(n):  # store e^(x - max) and sum it, then normalize
                if masked and not mask[r, j]:
                    out[r, j] = T(0)
                else:
                    e = _math.exp(sign * x[r, j] - m)
                    out[r, j] = e
                    s += e
            for j in range(n):
                out[r, j] = T(out[r, j] / s)
        else:
            for j in range(n):
                if masked and not mask[r, j]:
                    continue
                s += _math.exp(sign * x[r, j] - m)
            ls = np.log(s)
            for j in range(n):
                if masked and not mask[r, j]:
                    out[r, j] = T(-np.inf)
                else:
                    out[r, j] = T((np.float64(sign * x[r, j]) - np.float64(m)) - ls)


def softmax_backward_rows(g, y, out, sign, mode, mask, masked):
    """Vector-Jacobian product from the saved output y.

    softmax: g_x = sign * y * (g - sum(g * y)); log_softmax: g - e^y * sum(g).
    Masked entries are constants of x: gradient 0.
    """
    rows, n = y.shape
    T = y.dtype.type
    for r in prange(rows):
        s = 0.0
        for j in range(n):
            if masked and not mask[r, j]:
                continue
            if mode == SOFTMAX:
                s += np.float64(g[r, j]) * np.float64(y[r, j])
            else:
                s += np.float64(g[r, j])
        for j in range(n):
            if masked and not mask[r, j]:
                out[r, j] = T(0)
            elif mode == SOFTMAX:
                out[r, j] = T(sign * (np.float64(y[r, j]) * (np.float64(g[r, j]) - s)))
            else:
                out[r, j] = T(np.float64(g[r, j]) - np.exp(np.float64(y[r, j])) * s)


def softmax_jacobian_rows(y, out, sign, mode, mask, masked):
    """out[r, i, j] = d y_i / d x_j from the softmax p (mode LOG_SOFTMAX: p = softmax)."""
    rows, n = y.shape
    T = y.dtype.type
    for r in prange(rows):
        for i in range(n):
            live_i = not masked or mask[r, i]
            for j in range(n):
                if not live_i or (masked and not mask[r, j]):
                    out[r, i, j] = T(0)
                    continue
                d = T(1) if i == j else T(0)
                if mode == SOFTMAX:
                    out[r, i, j] = sign * (y[r, i] * d - y[r, i] * y[r, j])
                else:
                    out[r, i, j] = sign * (d - y[r, j])


def glu_rows(x, out):
    """out = a * sigmoid(b), a = x[:, :h], b = x[:, h:]."""
    rows, h = out.shape
    for r in prange(rows):
        for j in range(h):
            out[r, j] = x[r, j] * _math.sigmoid(x[r, h + j])


def glu_backward_rows(g, x, out):
    """d/da = g sigmoid(b); d/db = g a sigmoid(b) sigmoid(-b)."""
    rows, h = g.shape
    for r in prange(rows):
        for j in range(h):
            b = x[r, h + j]
            out[r, j] = g[r, j] * _math.sigmoid(b)
            out[r, h + j] = g[r, j] * (x[r, j] * _math.sigmoid_grad(b))


def maxout_rows(x, out, k):
    """Max over consecutive groups of k; NaN propagates."""
    rows, m = out.shape
    for r in prange(rows):
        for q in range(m):
            best = x[r, q * k]
            for j in range(q * k + 1, q * k + k):
                v = x[r, j]
                if v > best or v != v:
                    if best == best:  # keep the first NaN
                        best = v
            out[r, q] = best


def maxout_backward_rows(g, x, out, k):
    """The gradient of each group goes to its first maximum (first NaN if any)."""
    rows, m = g.shape
    T = x.dtype.type
    for r in prange(rows):
        for q in range(m):
            arg = q * k
            best = x[r, arg]
            out[r, arg] = T(0)
            for j in range(q * k + 1, q * k + k):
                out[r, j] = T(0)
                v = x[r, j]
                if best == best and (v > best or v != v):
                    best = v
                    arg = j
            out[r, arg] = g[r, q]


def prelu_blocks(x, w, out):
    """x of shape (outer, C, inner); w of length C."""
    outer, c, inner = x.shape
    for o in prange(outer):
        for ch in range(c):
            a = w[ch]
            for i in range(inner):
                v = x[o, ch, i]
                out[o, ch, i] = v if v > 0 else a * v


def prelu_backward_blocks(g, x, w, gx, gw_parts):
    """gx = g * (x > 0 ? 1 : w); gw_parts[o, ch] = sum_i g * (x > 0 ? 0 : x)."""
    outer, c, inner = x.shape
    for o in prange(outer):
        for ch in range(c):
            a = w[ch]
            s = 0.0
            for i in range(inner):
                v = x[o, ch, i]
                gv = g[o, ch, i]
                if v > 0:
                    gx[o, ch, i] = gv
                else:
                    gx[o, ch, i] = gv * a if v <= 0 else v
                    s += np.float64(gv) * np.float64(v)
            gw_parts[o, ch] = s


_KERNELS = {f.__name__: f for f in (
    softmax_rows, softmax_backward_rows, softmax_jacobian_rows, glu_rows, glu_backward_rows,
    maxout_rows, maxout_backward_rows, prelu_blocks, prelu_backward_blocks,
)}

# Work (elements) above which the parallel version is used.
PARALLEL_THRESHOLD = 1 << 16


kernel = KernelFamily(_KERNELS, lambda: PARALLEL_THRESHOLD)
