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

from fastact import _math, _vmath
from fastact._compile import KernelFamily, scalar_jit
from fastact._vmath import vector_loop, wide_vectors

# Softmax-family modes.
SOFTMAX, LOG_SOFTMAX = 0, 1

_LOG_ROW_SCALE = float(np.log(_vmath.EXP_ROW_SCALE))


@scalar_jit
def _rows_per_task(n):
    """Rows handed to a thread at a time: about 4096 elements (the
    interleaving of _softmax_rows runs within them), at least one row."""
    return max(1, 4096 // max(n, 1))


# --- rows, no mask: the fast path ------------------------------------------
#
# Each step is its own loop so that each vectorizes: the maximum through
# llvm.maxnum, the sums in float64 with reassociation allowed (only in the
# two summing helpers: the exponential's own arithmetic must not be
# reordered). A row is read from memory once; the later passes find it in
# the cache.

@scalar_jit(fastmath={"reassoc", "contract"})
def _sum64(v):
    s = 0.0
    for j in range(v.shape[0]):
        e = v[j]
        vector_loop(e)
        s += np.float64(e)
    return s


@scalar_jit(fastmath={"reassoc", "contract"})
def _dot64(a, b):
    s = 0.0
    for j in range(a.shape[0]):
        e = a[j]
        vector_loop(e)
        s += np.float64(e) * np.float64(b[j])
    return s


@scalar_jit
def _reciprocal_pair(s, T):
    """1/s as ih + il in the row's dtype, for e * (1/s) rounded once in its
    own arithmetic: fma(e, ih, e * il). A float64 multiply of float32 rows
    costs two conversions per element; on rows of 64 that was a third of
    the time."""
    inv = 1.0 / s
    ih = T(inv)
    return ih, T(inv - np.float64(ih))


@scalar_jit
def _exp_minus(a, m):
    """e^(a - m) in a's dtype, a <= m, times 2^32 for float32 (EXP_ROW_SCALE).

    float32: a - m split exactly into d + its rounding error (TwoSum) and
    exp_row32 of the pair, in float32 arithmetic: within 0.7 ulp of
    e^(a - m) 2^32, where the rounded d alone would cost |a - m| ulps.
    float64: exp_sub (factor 1).
    """
    if _math.single(a):
        d = a - m
        bb = d - a
        # TwoSum: d + its error is a - m (the casts type the float64 compile)
        return _vmath.exp_row32(np.float32(d), np.float32((a - (d - bb)) - (m + bb)))
    return _math.exp_sub(a, m)


@scalar_jit
def _log_scale(x):
    """log of the factor of _exp_minus for x's dtype: 32 ln 2 or 0."""
    return _LOG_ROW_SCALE if _math.single(x) else 0.0


@scalar_jit
def _exp_of_output(y):
    """e^y in float64 for a log_softmax output y: exp_lean (2^-34) for
    float32, which is not rounded to float32 before the backward pass's
    difference g - e^y s (float32 e^y: 12x the error where it cancels), the
    full exponential for float64."""
    if _math.single(y):
        return _vmath.exp_lean(np.float64(y))
    return _math.exp(y)


@scalar_jit
def _signed_max(v, sign):
    """The largest of sign v, through the integer order of _vmath.ordered: an
    integer maximum is one instruction a step, without llvm.maxnum's NaN
    tests, and its reduction across the vector's lanes is shorter (rows of
    64 float32: 0.25 -> 0.11 ns per element, one thread). A NaN comes out
    as the maximum or is skipped; either way it reaches every output of the
    row, through e^(.) and the sum."""
    lo = v.dtype.type(-np.inf)
    m = _vmath.ordered(lo)
    for j in range(v.shape[0]):
        m = max(m, _vmath.ordered(sign * v[j]))
    return _vmath.from_ordered(m, lo)


@scalar_jit
def _log_softmax_value(a, m, ls, T):
    """log_softmax of a = sign x: a - m - ls (ls = log s less _log_scale),
    in float64, rounded once to T."""
    return T((np.float64(a) - np.float64(m)) - ls)


@scalar_jit
def _vjp_term(g, y, mode):
    """One term of the backward pass's row sum: g y (softmax) or g (log_softmax)."""
    return np.float64(g) * np.float64(y) if mode == SOFTMAX else np.float64(g)


@scalar_jit
def _softmax_vjp(g, y, s, sign, T):
    """sign y (g - s) for s = sum(g y), rounded once to T."""
    return T(sign * (np.float64(y) * (np.float64(g) - s)))


@scalar_jit
def _log_softmax_vjp(g, y, s, T):
    """g - e^y s for s = sum(g), rounded once to T."""
    return T(np.float64(g) - _exp_of_output(y) * s)


@scalar_jit
def _vjp(g, y, s, sign, mode, T):
    if mode == SOFTMAX:
        return _softmax_vjp(g, y, s, sign, T)
    return _log_softmax_vjp(g, y, s, T)


@scalar_jit
def _exp_pass(v, o, sign, m):
    """o = e^(sign v - m) (times _exp_minus's factor); returns the sum, in float64."""
    for j in range(v.shape[0]):
        e = v[j]
        vector_loop(e)
        o[j] = _exp_minus(sign * e, m)
    return _sum64(o)


@scalar_jit
def _last_pass(v, o, sign, mode, m, s):
    """o = o / s (softmax) or sign v - m - log s (log_softmax), s the row's sum."""
    T = v.dtype.type
    if mode == SOFTMAX:
        ih, il = _reciprocal_pair(s, T)
        for j in range(v.shape[0]):
            e = o[j]
            vector_loop(e)
            o[j] = _vmath.fma(e, ih, e * il)
    else:
        ls = np.log(s) - _log_scale(m)
        for j in range(v.shape[0]):
            e = v[j]
            vector_loop(e)
            o[j] = _log_softmax_value(sign * e, m, ls, T)


@scalar_jit
def _softmax_rows(x, o, r0, r1, sign, mode):
    """Rows r0 to r1 - 1, one after the other, with the passes of neighbouring
    rows interleaved: each row's maximum, sum and reciprocal are reductions
    whose latency a short row (64) cannot hide, so the next row's maximum
    and the previous row's last pass go between its own passes, which do
    not depend on them (rows of 64: 1.2-1.4x)."""
    m = _signed_max(x[r0], sign)
    m_prev = m
    s_prev = 1.0
    for r in range(r0, r1):
        s = _exp_pass(x[r], o[r], sign, m)
        if r > r0:
            _last_pass(x[r - 1], o[r - 1], sign, mode, m_prev, s_prev)
        m_prev, s_prev = m, s
        if r + 1 < r1:
            m = _signed_max(x[r + 1], sign)
    _last_pass(x[r1 - 1], o[r1 - 1], sign, mode, m_prev, s_prev)


@scalar_jit
def _softmax_backward_row(g, y, o, sign, mode):
    T = y.dtype.type
    if mode == SOFTMAX:
        s = _dot64(g, y)
        for j in range(y.shape[0]):
            o[j] = _softmax_vjp(g[j], y[j], s, sign, T)
    else:
        s = _sum64(g)
        for j in range(y.shape[0]):
            e = y[j]
            vector_loop(e)
            o[j] = _log_softmax_vjp(g[j], e, s, T)


# --- along a middle axis: columns of (outer, n, inner) blocks -------------
#
# With the axis not last, a line along it is a column of an (n, inner)
# block: the kernels go down the columns of a tile of adjacent ones at a
# time, each pass over the tile a vector loop along its contiguous rows,
# instead of transposing the array into rows and back (two strided copies).
# Each column gets the arithmetic of the row kernels: the same maximum,
# exponential, float64 sum and last pass.

@scalar_jit
def _cols_per_task(n, inner):
    """Columns a thread takes at a time: a tile of about 128 K elements (the
    later passes find it in the cache), a multiple of 16 (whole vectors), at
    least 512 and at most the block's width. Narrow tiles of long columns
    ran at a third of the speed and less: their rows are a block's width
    apart, a power of two in memory for the usual shapes, so that they fall
    into a few cache sets and every row is a page of its own (2-core EPYC,
    2^24 float32 along axis 0 of (1024, 16384): 1.6 GB/s with 16 columns,
    7.4 with 512)."""
    return min(inner, max(512, (131072 // max(n, 1)) // 16 * 16))


@scalar_jit
def _tile_bounds(b, n, inner):
    """Block p and columns j0 to j1 - 1 of tile b of the (outer, n, inner) array."""
    w = _cols_per_task(n, inner)
    tiles = (inner + w - 1) // w
    j0 = (b % tiles) * w
    return b // tiles, j0, min(inner, j0 + w)


@scalar_jit
def _tile_count(outer, n, inner):
    w = _cols_per_task(n, inner)
    return outer * ((inner + w - 1) // w)


@scalar_jit
def _softmax_tile(v, o, j0, j1, sign, mode):
    n = v.shape[0]
    m = np.empty_like(v[0, j0:j1])
    for j in range(j1 - j0):
        m[j] = -np.inf
    for i in range(n):
        r = v[i, j0:j1]
        for j in range(r.shape[0]):
            e = r[j]
            vector_loop(e)
            m[j] = _vmath.fmax(m[j], sign * e)  # a NaN is skipped here, as in _signed_max
    s = np.zeros(j1 - j0)
    for i in range(n):
        r = v[i, j0:j1]
        q = o[i, j0:j1]
        for j in range(r.shape[0]):
            e = r[j]
            vector_loop(e)
            f = _exp_minus(sign * e, m[j])
            q[j] = f
            s[j] += np.float64(f)
    T = v.dtype.type
    if mode == SOFTMAX:
        ih = np.empty_like(m)
        il = np.empty_like(m)
        for j in range(j1 - j0):
            ih[j], il[j] = _reciprocal_pair(s[j], T)
        for i in range(n):
            q = o[i, j0:j1]
            for j in range(q.shape[0]):
                e = q[j]
                vector_loop(e)
                q[j] = _vmath.fma(e, ih[j], e * il[j])
    else:
        for j in range(j1 - j0):
            s[j] = np.log(s[j]) - _log_scale(m[j])
        for i in range(n):
            r = v[i, j0:j1]
            q = o[i, j0:j1]
            for j in range(r.shape[0]):
                e = r[j]
                vector_loop(e)
                q[j] = _log_softmax_value(sign * e, m[j], s[j], T)


@scalar_jit
def _softmax_backward_tile(g, y, o, j0, j1, sign, mode):
    n = y.shape[0]
    s = np.zeros(j1 - j0)
    for i in range(n):
        gr = g[i, j0:j1]
        yr = y[i, j0:j1]
        for j in range(yr.shape[0]):
            e = yr[j]
            vector_loop(e)
            s[j] += _vjp_term(gr[j], e, mode)
    T = y.dtype.type
    for i in range(n):
        gr = g[i, j0:j1]
        yr = y[i, j0:j1]
        q = o[i, j0:j1]
        for j in range(yr.shape[0]):
            e = yr[j]
            vector_loop(e)
            q[j] = _vjp(gr[j], e, s[j], sign, mode, T)


# --- one row with a mask (where=) -------------------------------------------

@scalar_jit
def _masked_softmax_row(v, o, sign, mode, mask):
    T = v.dtype.type
    n = v.shape[0]
    m = T(-np.inf)
    count = 0
    for j in range(n):
        if mask[j]:
            count += 1
            m = _vmath.fmax(m, sign * v[j])
    if count == 0:  # every entry masked: 0 (softmax) or -inf (log_softmax), not NaN
        fill = T(0) if mode == SOFTMAX else T(-np.inf)
        for j in range(n):
            o[j] = fill
        return
    for j in range(n):
        o[j] = _exp_minus(sign * v[j], m) if mask[j] else T(0)
    s = _sum64(o)
    if mode == SOFTMAX:
        ih, il = _reciprocal_pair(s, T)
        for j in range(n):
            o[j] = _vmath.fma(o[j], ih, o[j] * il)
    else:
        ls = np.log(s) - _log_scale(m)
        for j in range(n):
            o[j] = _log_softmax_value(sign * v[j], m, ls, T) if mask[j] else T(-np.inf)


@scalar_jit
def _masked_softmax_backward_row(g, y, o, sign, mode, mask):
    """Masked entries are constants of x: gradient 0."""
    T = y.dtype.type
    s = 0.0
    for j in range(y.shape[0]):
        if mask[j]:
            s += _vjp_term(g[j], y[j], mode)
    for j in range(y.shape[0]):
        o[j] = _vjp(g[j], y[j], s, sign, mode, T) if mask[j] else T(0)


# --- kernels ----------------------------------------------------------------

def softmax_rows(x, out, sign, mode, mask, masked):
    """out = softmax(sign * x) or log_softmax(sign * x) per row; mask rows if masked."""
    rows, n = x.shape
    per = _rows_per_task(n)
    for b in prange((rows + per - 1) // per):
        wide_vectors()
        r0 = b * per
        r1 = min(rows, r0 + per)
        if masked:
            for r in range(r0, r1):
                _masked_softmax_row(x[r], out[r], sign, mode, mask[r])
        else:
            _softmax_rows(x, out, r0, r1, sign, mode)


def softmax_cols(x, out, sign, mode):
    """out = softmax(sign * x) or log_softmax(sign * x) along axis 1 of
    C-contiguous (outer, n, inner) arrays."""
    outer, n, inner = x.shape
    for b in prange(_tile_count(outer, n, inner)):
        wide_vectors()
        p, j0, j1 = _tile_bounds(b, n, inner)
        _softmax_tile(x[p], out[p], j0, j1, sign, mode)


def softmax_backward_cols(g, y, out, sign, mode):
    """softmax_backward_rows along axis 1 of C-contiguous (outer, n, inner) arrays."""
    outer, n, inner = y.shape
    for b in prange(_tile_count(outer, n, inner)):
        wide_vectors()
        p, j0, j1 = _tile_bounds(b, n, inner)
        _softmax_backward_tile(g[p], y[p], out[p], j0, j1, sign, mode)


def softmax_backward_rows(g, y, out, sign, mode, mask, masked):
    """Vector-Jacobian product from the saved output y.

    softmax: g_x = sign * y * (g - sum(g * y)); log_softmax: g - e^y * sum(g).
    """
    for r in prange(y.shape[0]):
        wide_vectors()
        if masked:
            _masked_softmax_backward_row(g[r], y[r], out[r], sign, mode, mask[r])
        else:
            _softmax_backward_row(g[r], y[r], out[r], sign, mode)


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


@scalar_jit
def _takes(best, v):
    """Whether v replaces a group's maximum so far: a larger v, or the first
    NaN (a NaN maximum is kept)."""
    return best == best and (v > best or v != v)


@scalar_jit
def _maxout_row(xr, orow, k):
    for q in range(orow.shape[0]):
        best = xr[q * k]
        for j in range(1, k):
            v = xr[q * k + j]
            best = v if _takes(best, v) else best
        orow[q] = best


@scalar_jit
def _maxout_backward_row(gr, xr, orow, arg, k):
    """The group's gradient to its first maximum: the places first (a loop
    across the groups), then a zeroed row and one store per group."""
    for q in range(gr.shape[0]):
        best = xr[q * k]
        a = 0
        for j in range(1, k):
            v = xr[q * k + j]
            t = _takes(best, v)
            best = v if t else best
            a = j if t else a
        arg[q] = a
    for i in range(orow.shape[0]):
        orow[i] = 0
    for q in range(gr.shape[0]):
        orow[q * k + arg[q]] = gr[q]


# Both kernels pass pool sizes 2, 3 and 4 to the row functions as constants:
# the loop across the groups then vectorizes (its group loop unrolled), where
# a pool size known only at run time leaves it scalar (float32 rows of 2048
# in the cache, one thread: forward 3.0 -> 0.1 ns per element of x).

def maxout_rows(x, out, k):
    """Max over consecutive groups of k; NaN propagates."""
    rows, m = out.shape
    for r in prange(rows):
        if k == 2:
            _maxout_row(x[r], out[r], 2)
        elif k == 3:
            _maxout_row(x[r], out[r], 3)
        elif k == 4:
            _maxout_row(x[r], out[r], 4)
        else:
            _maxout_row(x[r], out[r], k)


def maxout_backward_rows(g, x, out, k):
    """The gradient of each group goes to its first maximum (first NaN if any)."""
    rows, m = g.shape
    per = _rows_per_task(x.shape[1])
    for b in prange((rows + per - 1) // per):
        arg = np.empty(m, np.intp)
        for r in range(b * per, min(rows, (b + 1) * per)):
            if k == 2:
                _maxout_backward_row(g[r], x[r], out[r], arg, 2)
            elif k == 3:
                _maxout_backward_row(g[r], x[r], out[r], arg, 3)
            elif k == 4:
                _maxout_backward_row(g[r], x[r], out[r], arg, 4)
            else:
                _maxout_backward_row(g[r], x[r], out[r], arg, k)


def prelu_blocks(x, w, out):
    """x of shape (outer, C, inner); w of length C."""
    outer, c, inner = x.shape
    if inner == 1:  # (N, C), channels last: the loop runs along the channels
        x2 = x.reshape(outer, c)
        o2 = out.reshape(outer, c)
        for o in prange(outer):
            for ch in range(c):
                v = x2[o, ch]
                o2[o, ch] = v if v > 0 else w[ch] * v
        return
    for k in prange(outer * c):
        o, ch = k // c, k % c
        a = w[ch]
        xr, orow = x[o, ch], out[o, ch]
        for i in range(inner):
            v = xr[i]
            orow[i] = v if v > 0 else a * v


@scalar_jit
def _prelu_grad_terms(gv, v, a):
    """g * (x > 0 ? 1 : a) (a NaN x passed on) and g * x for x <= 0, else 0
    (NaN for a NaN x): selects, not branches, so that the loops vectorize."""
    neg = not v > 0
    return (gv * a if v <= 0 else v) if neg else gv, np.float64(gv) * np.float64(v) if neg else 0.0


@scalar_jit(fastmath={"reassoc", "contract"})
def _prelu_backward_run(g, x, a, gx):
    """gx along one run of a channel; returns the run's sum of the weight's
    terms (reassociated, only here, so that the sum vectorizes)."""
    s = 0.0
    for i in range(x.shape[0]):
        d, term = _prelu_grad_terms(g[i], x[i], a)
        gx[i] = d
        s += term
    return s


def prelu_backward_blocks(g, x, w, gx, gw_parts):
    """gx = g * (x > 0 ? 1 : w); gw_parts[t, ch] = the sum of g * x over
    x <= 0 in channel ch of outer rows t * per ... (t + 1) * per - 1, per =
    ceil(outer / len(gw_parts)): the weight's gradient in float64 partial sums,
    as many as the caller chose (the same for every thread count)."""
    outer, c, inner = x.shape
    tasks = gw_parts.shape[0]
    per = (outer + tasks - 1) // tasks
    if inner == 1:  # (N, C): per row, the loop runs along the channels
        x2 = x.reshape(outer, c)
        g2 = g.reshape(outer, c)
        gx2 = gx.reshape(outer, c)
        for t in prange(tasks):
            acc = gw_parts[t]
            acc[:] = 0.0
            for o in range(t * per, min(outer, (t + 1) * per)):
                for ch in range(c):
                    d, term = _prelu_grad_terms(g2[o, ch], x2[o, ch], w[ch])
                    gx2[o, ch] = d
                    acc[ch] += term
        return
    for k in prange(tasks * c):
        t, ch = k // c, k % c
        s = 0.0
        for o in range(t * per, min(outer, (t + 1) * per)):
            s += _prelu_backward_run(g[o, ch], x[o, ch], w[ch], gx[o, ch])
        gw_parts[t, ch] = s


_KERNELS = {f.__name__: f for f in (
    softmax_rows, softmax_backward_rows, softmax_cols, softmax_backward_cols,
    softmax_jacobian_rows, glu_rows, glu_backward_rows,
    maxout_rows, maxout_backward_rows, prelu_blocks, prelu_backward_blocks,
)}

# Work (elements) above which the parallel version is used.
PARALLEL_THRESHOLD = 1 << 16


# maxout's backward under the kernels' raised unswitch limit (fastact._compile)
# compiled in 21 s instead of 3 s (float32, 2 cores, Zen 3) at the same speed
# (rows of 64-1024, pool sizes 2-5, both dtypes: within noise).
kernel = KernelFamily(_KERNELS, lambda: PARALLEL_THRESHOLD,
                      plain_unswitch=frozenset({"maxout_backward_rows"}))
