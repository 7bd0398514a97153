"""Turn activation definitions into CUDA kernels (``numba.cuda``).

The GPU kernels are generated from the same definitions as the CPU kernels.
A template below calls the scalar functions through the globals ``f``, ``df``
and ``dfy``; a kernel is a copy of the template with those globals bound to a
definition's compiled scalar functions (``Definition.forward_jit`` ...,
the very objects the CPU loops inline), via ``fastact._compile.specialize``.
When a CUDA kernel calls such a CPU dispatcher, numba-cuda compiles the
dispatcher's Python source again for the GPU, as a device function that it
inlines (the dispatcher's ``forceinline`` carries over), and so do the math
primitives of ``fastact._math`` and ``fastact._vmath`` that it calls: no
activation is written a second time for the GPU.

Every kernel runs a grid-stride loop and works for any grid size. ``C``, a
template global bound per kernel, is the compute type (float32 for float16
and float32 arrays, float64 for float64): values are converted to it when
read, computed in it, and rounded to the array's dtype when stored, so that a
float16 array is computed in float32 and stored as float16.

The row kernels (the softmax family) run one block per row, whose threads
reduce the row through shared memory; sums are accumulated in float64, as on
the CPU. Their block size must be a power of two, at most ``BLOCK``.

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the same kernels
run as Python, calling the compiled scalar functions from Python.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda

from fastact import _math, _vmath
from fastact._compile import CACHE, specialize

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

# Placeholders for what a template calls; each kernel gets its own globals
# with these bound: the scalar functions and the compute type.
f = df = dfy = None
C = numba.float64

#: Threads per block of the row kernels (and the length of their shared buffer).
BLOCK = 256

# Softmax-family modes (as fastact._rowwise_kernels).
SOFTMAX, LOG_SOFTMAX = 0, 1

_F64 = numba.float64
_INF = math.inf


# --- block reductions --------------------------------------------------------
#
# Every thread of the block calls these with its partial value; every thread
# gets the result. ``buf`` is the block's shared float64 buffer, of at least
# blockDim.x entries; it is free again when they return.

def _block_reduce(combine):
    """A block reduction with ``combine(a, b)``, a tree over shared memory."""

    @cuda.jit(device=True)
    def reduce(buf, v):
        t = cuda.threadIdx.x
        buf[t] = v
        cuda.syncthreads()
        k = cuda.blockDim.x // 2
        while k > 0:
            if t < k:
                buf[t] = combine(buf[t], buf[t + k])
            cuda.syncthreads()
            k //= 2
        s = buf[0]
        cuda.syncthreads()
        return s

    return reduce


@cuda.jit(device=True)
def _add(a, b):
    return a + b


_block_sum = _block_reduce(_add)
#: The largest value, ignoring NaN (as _vmath.fmax): NaN reaches the output later.
_block_max = _block_reduce(_vmath.fmax)


# --- templates: elementwise ---------------------------------------------------
#
# Flat arrays of one length. ``params`` is a tuple of compute-type scalars,
# the definition's parameters. ``g[i * gstep]``: one grad_output value per
# element (gstep 1) or one for all (gstep 0).

def ew_forward(x, out, params):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = f(C(x[i]), *params)


def ew_grad(x, out, params):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = df(C(x[i]), *params)


def ew_backward(g, gstep, x, out, params):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = C(g[i * gstep]) * df(C(x[i]), *params)


def ew_backward_y(g, gstep, y, out, params):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        out[i] = C(g[i * gstep]) * dfy(C(y[i]), *params)


def ew_value_and_grad(x, out, dout, params):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = C(x[i])  # read once: out may be x itself
        out[i] = f(v, *params)
        dout[i] = df(v, *params)


_ELEMENTWISE = {
    "forward": ew_forward,
    "grad": ew_grad,
    "backward": ew_backward,
    "backward_y": ew_backward_y,
    "value_and_grad": ew_value_and_grad,
}


# --- templates: the softmax family ---------------------------------------------
#
# 2-D arrays whose rows are the lines along the caller's axis; one block per
# row (grid-stride over rows). ``mask`` has the shape of x when ``masked``,
# else it is a dummy. The exponentials are computed again in the last pass
# rather than stored and read back: on a GPU the arithmetic is cheaper than
# the memory traffic, and a float16 output could not hold them exactly.

def softmax_rows(x, out, sign, mode, mask, masked):
    """out = softmax(sign * x) or log_softmax(sign * x) per row (see _rowwise_kernels)."""
    buf = cuda.shared.array(BLOCK, _F64)
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = x.shape[1]
    for r in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
        m = C(-_INF)
        live = 0.0
        for j in range(t, n, nt):
            if not masked or mask[r, j]:
                m = _vmath.fmax(m, sign * C(x[r, j]))
                live += 1.0
        m = C(_block_max(buf, _F64(m)))
        if masked:
            live = _block_sum(buf, live)
            if live == 0.0:  # every entry masked: 0 (softmax) or -inf (log_softmax), not NaN
                fill = C(0) if mode == SOFTMAX else C(-_INF)
                for j in range(t, n, nt):
                    out[r, j] = fill
                continue
        s = 0.0
        for j in range(t, n, nt):
            if not masked or mask[r, j]:
                s += _F64(_math.exp_sub(sign * C(x[r, j]), m))
        s = _block_sum(buf, s)
        if mode == SOFTMAX:
            inv = 1.0 / s
            for j in range(t, n, nt):
                if not masked or mask[r, j]:
                    out[r, j] = C(_F64(_math.exp_sub(sign * C(x[r, j]), m)) * inv)
                else:
                    out[r, j] = C(0)
        else:
            ls = math.log(s)
            for j in range(t, n, nt):
                if not masked or mask[r, j]:
                    out[r, j] = C((_F64(sign * C(x[r, j])) - _F64(m)) - ls)
                else:
                    out[r, j] = C(-_INF)


def softmax_backward_rows(g, y, out, sign, mode, mask, masked):
    """From the saved output y. softmax: sign * y * (g - sum(g * y));
    log_softmax: g - e^y * sum(g). Masked entries get 0."""
    buf = cuda.shared.array(BLOCK, _F64)
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = y.shape[1]
    for r in range(cuda.blockIdx.x, y.shape[0], cuda.gridDim.x):
        s = 0.0
        for j in range(t, n, nt):
            if not masked or mask[r, j]:
                if mode == SOFTMAX:
                    s += _F64(C(g[r, j])) * _F64(C(y[r, j]))
                else:
                    s += _F64(C(g[r, j]))
        s = _block_sum(buf, s)
        for j in range(t, n, nt):
            if masked and not mask[r, j]:
                out[r, j] = C(0)
            elif mode == SOFTMAX:
                out[r, j] = C(sign * (_F64(C(y[r, j])) * (_F64(C(g[r, j])) - s)))
            else:
                out[r, j] = C(_F64(C(g[r, j])) - _math.exp(_F64(C(y[r, j]))) * s)


# --- templates: glu, maxout, prelu ------------------------------------------

def glu_rows(x, out):
    """out = a * sigmoid(b), a = x[:, :h], b = x[:, h:]."""
    h = out.shape[1]
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        r = i // h
        j = i - r * h
        out[r, j] = C(x[r, j]) * _math.sigmoid(C(x[r, h + j]))


def glu_backward_rows(g, x, out):
    """d/da = g sigmoid(b); d/db = g a sigmoid(b) sigmoid(-b)."""
    h = g.shape[1]
    for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        r = i // h
        j = i - r * h
        b = C(x[r, h + j])
        gv = C(g[r, j])
        out[r, j] = gv * _math.sigmoid(b)
        out[r, h + j] = gv * (C(x[r, j]) * _math.sigmoid_grad(b))


def maxout_rows(x, out, k):
    """Max over consecutive groups of k; NaN propagates (the first NaN is kept)."""
    m = out.shape[1]
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        r = i // m
        q = i - r * m
        best = C(x[r, q * k])
        for j in range(q * k + 1, q * k + k):
            v = C(x[r, j])
            if v > best or v != v:
                if best == best:
                    best = v
        out[r, q] = best


def maxout_backward_rows(g, x, out, k):
    """Each group's gradient goes to its first maximum (its first NaN if any)."""
    m = g.shape[1]
    for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        r = i // m
        q = i - r * m
        arg = q * k
        best = C(x[r, arg])
        for j in range(q * k + 1, q * k + k):
            out[r, j] = C(0)
            v = C(x[r, j])
            if best == best and (v > best or v != v):
                best = v
                arg = j
        out[r, q * k] = C(0)
        out[r, arg] = C(g[r, q])


def prelu_flat(x, w, c, inner, out):
    """x flat, of logical shape (outer, c, inner); w of length c."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = C(x[i])
        out[i] = v if v > 0 else C(w[(i // inner) % c]) * v


def prelu_backward_flat(g, gstep, x, w, c, inner, gx, parts):
    """gx = g * (x > 0 ? 1 : w); parts[b, ch]: block b's float64 sum of g * x
    over channel ch where not x > 0 (summed by prelu_weight_grad).

    Launched on a 2-D grid: blockIdx.y walks the channels, blockIdx.x the
    elements of a channel; blockDim.x a power of two, at most BLOCK.
    """
    buf = cuda.shared.array(BLOCK, _F64)
    per = x.size // c  # elements per channel: outer * inner
    nt = cuda.blockDim.x
    start = cuda.blockIdx.x * nt + cuda.threadIdx.x
    stride = cuda.gridDim.x * nt
    for ch in range(cuda.blockIdx.y, c, cuda.gridDim.y):
        a = C(w[ch])
        s = 0.0
        for k in range(start, per, stride):
            o = k // inner
            i = (o * c + ch) * inner + (k - o * inner)
            v = C(x[i])
            gv = C(g[i * gstep])
            if v > 0:
                gx[i] = gv
            else:
                gx[i] = gv * a if v <= 0 else v  # NaN x: NaN
                s += _F64(gv) * _F64(v)
        s = _block_sum(buf, s)
        if cuda.threadIdx.x == 0:
            parts[cuda.blockIdx.x, ch] = s


def prelu_weight_grad(parts, gw):
    """gw[ch] = sum over blocks of parts[:, ch], rounded once to gw's dtype."""
    for ch in range(cuda.grid(1), parts.shape[1], cuda.gridsize(1)):
        s = 0.0
        for b in range(parts.shape[0]):
            s += parts[b, ch]
        gw[ch] = s


# --- templates: losses ---------------------------------------------------------
#
# As fastact._loss_kernels: the inputs are read in the compute type, the
# differences and sums are float64, and each result is rounded once to the
# compute type.

def squared_error(p, t, out):
    """out = (p - t)^2."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = _F64(C(p[i])) - _F64(C(t[i]))
        out[i] = C(d * d)


def squared_error_parts(p, t, parts):
    """parts[b]: block b's float64 sum of (p - t)^2 (blockDim.x a power of two <= BLOCK)."""
    buf = cuda.shared.array(BLOCK, _F64)
    s = 0.0
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = _F64(C(p[i])) - _F64(C(t[i]))
        s += d * d
    s = _block_sum(buf, s)
    if cuda.threadIdx.x == 0:
        parts[cuda.blockIdx.x] = s


def squared_error_backward(p, t, g, gstep, c, out):
    """out = c * g[i * gstep] * (p - t)."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = _F64(C(p[i])) - _F64(C(t[i]))
        out[i] = C(c * _F64(C(g[i * gstep])) * d)


def sum_blocks(v, parts):
    """parts[b]: block b's float64 sum of v (blockDim.x a power of two <= BLOCK)."""
    buf = cuda.shared.array(BLOCK, _F64)
    s = 0.0
    for i in range(cuda.grid(1), v.size, cuda.gridsize(1)):
        s += v[i]
    s = _block_sum(buf, s)
    if cuda.threadIdx.x == 0:
        parts[cuda.blockIdx.x] = s


def total_of_parts(parts, div, out):
    """out[0] = sum(parts) / div, rounded once to out's dtype (one thread: parts is short)."""
    if cuda.grid(1) == 0:
        s = 0.0
        for b in range(parts.size):
            s += parts[b]
        out[0] = s / div


def cross_entropy_rows(x, target, losses, bad):
    """losses[r] = -log softmax(x[r])[target[r]] in float64 (see _loss_kernels);
    bad[0] counts the targets outside [0, n), whose rows are left unwritten.
    One block per row."""
    buf = cuda.shared.array(BLOCK, _F64)
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = x.shape[1]
    for r in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
        tg = target[r]
        if tg < 0 or tg >= n:
            if t == 0:
                cuda.atomic.add(bad, 0, 1)
            continue
        m = C(-_INF)
        for j in range(t, n, nt):
            m = _vmath.fmax(m, C(x[r, j]))
        m = C(_block_max(buf, _F64(m)))  # NaN entries skipped: they make x - m NaN
        rest = 0.0
        for j in range(t, n, nt):
            if j != tg:
                rest += _F64(_math.exp(C(x[r, j]) - m))
        rest = _block_sum(buf, rest)
        if t == 0:
            et = _F64(_math.exp(C(x[r, tg]) - m))
            if rest <= et:
                losses[r] = math.log1p(rest / et)
            else:
                losses[r] = (_F64(m) - _F64(C(x[r, tg]))) + math.log(et + rest)


def cross_entropy_backward_rows(x, target, g, gstep, c, out):
    """out[r] = c * g[r * gstep] * (softmax(x[r]) - onehot(target[r])); the
    caller has checked the targets."""
    buf = cuda.shared.array(BLOCK, _F64)
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = x.shape[1]
    for r in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
        tg = target[r]
        m = C(-_INF)
        for j in range(t, n, nt):
            m = _vmath.fmax(m, C(x[r, j]))
        m = C(_block_max(buf, _F64(m)))
        rest = 0.0
        for j in range(t, n, nt):
            if j != tg:
                rest += _F64(_math.exp(C(x[r, j]) - m))
        rest = _block_sum(buf, rest)
        et = _F64(_math.exp(C(x[r, tg]) - m))
        k = c * _F64(g[r * gstep]) / (et + rest)
        for j in range(t, n, nt):
            if j == tg:
                out[r, j] = C(-rest * k)
            else:
                out[r, j] = C(_F64(_math.exp(C(x[r, j]) - m)) * k)


_OTHER = {fn.__name__: fn for fn in (
    softmax_rows, softmax_backward_rows, glu_rows, glu_backward_rows, maxout_rows,
    maxout_backward_rows, prelu_flat, prelu_backward_flat, prelu_weight_grad, squared_error,
    squared_error_parts, squared_error_backward, sum_blocks, total_of_parts, cross_entropy_rows,
    cross_entropy_backward_rows,
)}


def _jit(fn):
    # On-disk caching of GPU kernels; the simulator compiles nothing.
    return cuda.jit(fn) if SIMULATOR else cuda.jit(cache=CACHE)(fn)


@functools.cache
def elementwise(defn, kind: str, dtype: np.dtype):
    """The kernel of one kind for a definition, computing in ``dtype`` (float32 or float64)."""
    fn = specialize(_ELEMENTWISE[kind], f"{defn.name}_{kind}_{dtype.name}_cuda",
                    f=defn.forward_jit, df=defn.grad_jit, dfy=defn.grad_from_output_jit,
                    C=numba.from_dtype(dtype))
    return _jit(fn)


@functools.cache
def kernel(name: str, dtype: np.dtype):
    """One of the other kernels, computing in ``dtype``."""
    fn = specialize(_OTHER[name], f"{name}_{dtype.name}_cuda", C=numba.from_dtype(dtype))
    return _jit(fn)
