"""Turn scalar activation definitions into CPU kernels.

From one definition (a scalar ``forward``, its derivative ``grad`` and, for
some functions, the derivative as a function of the output) this module
builds, per dtype and on first use:

* loops over flat contiguous arrays: forward, grad, backward ``g * f'(x)``,
  backward from the output ``g * f'(y)`` and ``value_and_grad``, which
  writes both outputs in one pass; serial for small inputs, and for large
  ones ``numba.njit(parallel=True)`` over blocks that start on cache lines,
  each the serial loop;
* for large arrays of equally spaced contiguous rows (slices such as
  ``x[:, :k]``), a parallel loop over the rows that runs the serial flat
  loop on each;
* for the other large strided arrays whose axes collapse to four or fewer
  (transposes, ``x[::2]``, reversed axes, broadcast inputs, permutations),
  a parallel loop over tiles gathered into contiguous buffers for the
  serial flat loop;
* ``numba.vectorize`` ufuncs of the first four, for small strided arrays,
  layouts of five axes or more and partly overlapping arrays.

Every kernel comes from one template below. A template refers to the scalar
functions through the globals ``f``, ``df`` and ``dfy``; a kernel is a
copy of it with those globals bound to one definition's functions
(``fastact._compile.specialize``), so that Numba's on-disk cache keeps one
entry per (definition, kernel) and a second process loads it instead of
compiling.
"""

from __future__ import annotations

import functools
import threading

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import prange, types
from numba.extending import intrinsic

from fastact._arrays import contiguous_flat, overlaps
from fastact._compile import jit, scalar_jit, shared_jit, specialize, vectorize
from fastact._threads import parallel_slot, threads
from fastact._vmath import vector_loop

# Placeholders for the scalar functions a template calls; each instantiated
# kernel gets its own globals with these bound.
f = df = dfy = None
ALIGN = True

# Elements from which a contiguous array is processed by the parallel loop,
# for functions of plain arithmetic; functions that evaluate exponentials,
# logarithms or erfc (~10x the work per element) switch 8x sooner. Below it
# the serial loop is faster (no thread start-up). Measured on 2 cores, time
# serial / parallel: relu 0.64 at 2^14, 1.18 at 2^16; sigmoid 1.07 at 2^13,
# 1.40 at 2^14.
PARALLEL_THRESHOLD = 1 << 16


def parallel_shift(defn) -> int:
    """log2 of how much sooner than PARALLEL_THRESHOLD a definition goes parallel."""
    return 3 if defn.transcendental else 0


def parallel_threshold(defn) -> int:
    return PARALLEL_THRESHOLD >> parallel_shift(defn)


# --- templates: ufuncs (one per number of parameters) ----------------------

def forward_0(x):
    return f(x)


def forward_1(x, a):
    return f(x, a)


def forward_2(x, a, b):
    return f(x, a, b)


def grad_0(x):
    return df(x)


def grad_1(x, a):
    return df(x, a)


def grad_2(x, a, b):
    return df(x, a, b)


def backward_0(g, x):
    return g * df(x)


def backward_1(g, x, a):
    return g * df(x, a)


def backward_2(g, x, a, b):
    return g * df(x, a, b)


def backward_y_0(g, y):
    return g * dfy(y)


def backward_y_1(g, y, a):
    return g * dfy(y, a)


def backward_y_2(g, y, a, b):
    return g * dfy(y, a, b)


# --- templates: loops over flat contiguous arrays ---------------------------
#
# vector_loop() sets the loop's vector width (see fastact._vmath). The serial
# loops are these functions compiled without ``parallel``; the parallel ones
# are the block templates below, which run them.

def flat_forward(x, out, params):
    for i in range(x.size):
        v = x[i]
        vector_loop(v)
        out[i] = f(v, *params)


def flat_grad(x, out, params):
    for i in range(x.size):
        v = x[i]
        vector_loop(v)
        out[i] = df(v, *params)


def flat_backward(g, x, out, params):
    for i in range(x.size):
        v = x[i]
        vector_loop(v)
        out[i] = g[i] * df(v, *params)


def flat_backward_y(g, y, out, params):
    for i in range(y.size):
        v = y[i]
        vector_loop(v)
        out[i] = g[i] * dfy(v, *params)


def flat_value_and_grad(x, out, dout, params):
    for i in range(x.size):
        v = x[i]  # read once: out may be x itself
        vector_loop(v)
        # Both values first, both stores last: a store between them lets
        # LLVM thread the second function's branches through the first's
        # (the same test, x > 0, in both) and leave the first store inside
        # them, which vectorizes to masked stores (microcoded on AMD: 3-6x
        # slower loops).
        y = f(v, *params)
        d = df(v, *params)
        out[i] = y
        dout[i] = d


# --- templates: large flat arrays in blocks ---------------------------------
#
# A parallel loop over one block per thread (t threads, passed in:
# numba.get_num_threads() in a compiled function keeps it out of the on-disk
# cache), each block the serial flat loop ``flat`` (bound per kernel) on
# slices, each a multiple of 64 bytes long. With ``ALIGN`` (bound per
# kernel) the blocks start on 64-byte boundaries of the first output, the
# head before the first one (fewer than 64 bytes) a block of its own; inputs
# allocated like the output (the usual case) are then on the boundaries too.
# Without it they start at the arrays' own offset within a cache line.
#
# A loop of plain arithmetic whose accesses all cross cache lines (NumPy's
# large arrays start 16 bytes past one) is slower from memory. 2 threads,
# 2^24 float32 from NumPy's allocator, medians, ms, own offset -> aligned:
# relu 4.87 -> 4.74 and 5.00 -> 4.38, hardtanh 4.64 -> 3.74 and 5.32 -> 4.26,
# leaky_relu 5.09 -> 4.06, hardshrink 5.19 -> 4.03, threshold 4.46 -> 3.95,
# their backward passes 2-7% faster. The loops of the transcendental
# functions, arithmetic-bound, run at speeds that depend on where their
# input starts within a line in a way of their own, by up to 2x, the same in
# every run: gelu forward 11.8 from its own offset (16 bytes), 23.2 aligned;
# mish forward 22.9 -> 13.6, tanh' 23.4 -> 13.1, softplus' 24.2 -> 14.2.
# _OWN_OFFSET lists the kernels measured slower aligned (>= 5%; 2-core
# Xeon, AVX-512; silu is swish's kernel); all others are aligned.

_OWN_OFFSET = frozenset({
    ("sigmoid", "grad"), ("tanh", "forward"), ("elu", "forward"), ("hardsigmoid", "forward"),
    ("softplus", "forward"), ("mish", "backward"), ("selu", "forward"), ("selu", "grad"),
    ("swish", "forward"), ("swish", "backward"), ("swish", "grad"),
    ("logsigmoid", "forward"), ("tanhshrink", "forward"), ("tanhshrink", "grad"),
    ("gelu_erf", "forward"), ("gelu_erf", "backward"), ("gelu_erf", "grad"),
    ("gelu_tanh", "backward"), ("gelu_tanh", "grad"),
})

# On AMD's Zen the memory-bound loops run faster from the arrays' own
# offset, and the others the same: 2 threads, 2^24 float32, the ratio to
# PyTorch's kernel with out= in the same process (medians of 5 runs, each
# the median of 21 calls, alternating), aligned -> own offset: relu 0.91 ->
# 1.01, relu backward 0.85 -> 1.01, hardtanh backward 0.85 -> 1.02,
# leaky_relu backward 0.87 -> 1.05, sigmoid and tanh backward from y 0.88
# and 0.89 -> 1.02; sigmoid, silu, gelu, tanh, softplus and hardsigmoid
# forward within 0.03 (Zen 4, AVX-512; the other generations not measured).


def _cpu_name() -> str:
    """The CPU Numba compiles for (``NUMBA_CPU_NAME``, else the host's), a
    part of the key of its on-disk cache entries: a kernel bound to a
    choice made from it is never loaded on a CPU that would choose
    otherwise."""
    return numba.config.CPU_NAME or llvm.get_host_cpu_name()


def aligned(defn, kind: str) -> bool:
    """Whether the parallel flat loop of one kind starts its blocks on
    64-byte boundaries (``ALIGN``) on this CPU."""
    return not _cpu_name().startswith("znver") and (defn.name, kind) not in _OWN_OFFSET


@intrinsic
def _address(typingctx, a):
    """The address of an array's first element (``a.ctypes.data``, which
    keeps a function out of Numba's on-disk cache)."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(a)(context, builder, args[0]).data
        return builder.ptrtoint(data, context.get_value_type(types.intp))

    return types.intp(a), codegen


@scalar_jit
def _blocks(o, n, t, align):
    """(h, step): a head of h elements (before o's first 64-byte boundary
    with ``align``, else none), then t blocks of ``step`` elements, a
    multiple of 64 bytes (the last one takes the rest)."""
    h = 0
    address = _address(o)
    if align and address % o.itemsize == 0:
        h = min((64 - address % 64) % 64 // o.itemsize, n)
    lanes = max(1, 64 // o.itemsize)
    return h, (n - h) // t // lanes * lanes


@scalar_jit
def _block(k, h, step, t, n):
    """Block k of _blocks: [start, stop); block 0 is the head."""
    if k == 0:
        return 0, h
    return h + (k - 1) * step, (n if k == t else h + k * step)


def blocks_1_1(a, o, params, t):
    n = a.size
    h, step = _blocks(o, n, t, ALIGN)
    for k in prange(t + 1):
        s, e = _block(k, h, step, t, n)
        flat(a[s:e], o[s:e], params)


def blocks_2_1(a, b, o, params, t):
    n = a.size
    h, step = _blocks(o, n, t, ALIGN)
    for k in prange(t + 1):
        s, e = _block(k, h, step, t, n)
        flat(a[s:e], b[s:e], o[s:e], params)


def blocks_1_2(a, o, p, params, t):
    n = a.size
    h, step = _blocks(o, n, t, ALIGN)
    for k in prange(t + 1):
        s, e = _block(k, h, step, t, n)
        flat(a[s:e], o[s:e], p[s:e], params)


# --- templates: rows of strided arrays --------------------------------------
#
# An array whose last axes are contiguous and whose other axes collapse into
# one (a slice x[:, :k] or x[a:b, c:d] of a C-contiguous array) is passed as a
# flat C-contiguous view of the memory it spans, with its row stride in
# elements (see _rows): each row is a contiguous slice of it, which the serial
# flat loop ``flat`` (bound per kernel) takes as it takes a whole array. A
# Numba array of any other layout indexes through its strides, and loops
# over it stay scalar. The argument names say how many inputs and outputs.

def rows_1_1(a, sa, o, so, rows, cols, params):
    for i in prange(rows):
        flat(a[i * sa:i * sa + cols], o[i * so:i * so + cols], params)


def rows_2_1(a, sa, b, sb, o, so, rows, cols, params):
    for i in prange(rows):
        flat(a[i * sa:i * sa + cols], b[i * sb:i * sb + cols], o[i * so:i * so + cols], params)


def rows_1_2(a, sa, o, so, p, sp, rows, cols, params):
    for i in prange(rows):
        flat(a[i * sa:i * sa + cols], o[i * so:i * so + cols], p[i * sp:i * sp + cols], params)


# --- templates: tiles of strided layouts of up to four axes ---------------
#
# Arrays of one shape whose axes collapse to at most four (after dropping
# axes of length 1 and merging axes that are contiguous with each other in
# every array), with any element strides, negative and zero included:
# transposes, x[::2], x[::-1], x[:, ::2], broadcast inputs, permutations such
# as NCHW -> NHWC or (batch, seq, heads, dim) -> (batch, heads, seq, dim).
# The collapsed axes are (outer, batch, rows, cols); each array is passed as
# a flat view of the memory it spans with its place (base, sa, sb, s0, s1):
# element (h, k, i, j) is view[base + h sa + k sb + i s0 + j s1] (see
# _tiles). Each rows x cols plane is cut into tiles of tr x tc elements
# (``grid`` is (outer, batch, rows, cols, tr, tc) and the weights of the
# tiles' walk, in the first input's memory order: see _walk); a tile is
# gathered into contiguous buffers, the serial flat loop ``flat`` runs on
# them, and the results are scattered back, except in an output where the
# tile is one contiguous run (a strided x into a contiguous out: the flat
# loop writes it in place; 2 threads, 2^24 float32 x[::2]: sigmoid 1.4x,
# relu the same; a run of an input read in place instead of gathered made
# the plain functions' loops 1.4x slower). Each array is walked along its
# own shorter stride (a transpose reads and writes whole cache lines), and
# every input of a tile is gathered before any of its outputs is written:
# an output may be an input itself (in place). Tasks of TILES_PER_TASK
# tiles share their buffers.

TILES_PER_TASK = 8


@scalar_jit
def _tile_count(grid):
    outer, batch, rows, cols, tr, tc = grid[:6]
    return outer * batch * ((rows + tr - 1) // tr) * ((cols + tc - 1) // tc)


@scalar_jit
def _tile(t, grid):
    """Tile t: (k, r0, c0) its first element, k = (h, k) its plane, m x n its
    size. The tile's index along each axis of the tile grid (outer, batch,
    row tiles, column tiles) is (t // w) % count, its weights w the last
    four of ``grid`` (see _walk)."""
    outer, batch, rows, cols, tr, tc, wh, wk, wr, wc = grid
    r0 = (t // wr) % ((rows + tr - 1) // tr) * tr
    c0 = (t // wc) % ((cols + tc - 1) // tc) * tc
    return ((t // wh) % outer, (t // wk) % batch), r0, c0, min(tr, rows - r0), min(tc, cols - c0)


@scalar_jit
def _origin(place, k, r0, c0):
    """The place of element (k, r0, c0) in its array's span (k = (h, k), the plane)."""
    base, sa, sb, s0, s1 = place
    return base + k[0] * sa + k[1] * sb + r0 * s0 + c0 * s1


@scalar_jit
def _along_rows(place, m, n):
    """Whether an m x n tile of the array is walked row by row (else column
    by column): along its shorter stride, along the row if it is one row."""
    base, sa, sb, s0, s1 = place
    return m == 1 or abs(s1) <= abs(s0) and n > 1


@scalar_jit
def _run_of(place, k, r0, c0, m, n):
    """The first element of the tile's run in its array, if the tile is one
    contiguous run of it (m x n elements with unit stride along the row and
    rows of n, or one row), else -1."""
    base, sa, sb, s0, s1 = place
    if (s1 == 1 or n == 1) and (m == 1 or s0 == n):
        return _origin(place, k, r0, c0)
    return -1


@scalar_jit
def _tile_out(dst, place, k, r0, c0, m, n, buf):
    """Where the flat loop writes the tile's results: a slice of dst where
    the tile is a run of it, else buf (then scattered by _tile_done)."""
    p = _run_of(place, k, r0, c0, m, n)
    if p >= 0:
        return dst[p:p + m * n]
    return buf[:m * n]


@scalar_jit
def _tile_done(buf, dst, place, k, r0, c0, m, n):
    if _run_of(place, k, r0, c0, m, n) < 0:
        _scatter(buf, dst, place, k, r0, c0, m, n)


@shared_jit
def _gather(src, place, k, r0, c0, m, n, buf):
    base, sa, sb, s0, s1 = place
    p = _origin(place, k, r0, c0)
    if not _along_rows(place, m, n):
        for j in range(n):
            q = p + j * s1
            for i in range(m):
                buf[i * n + j] = src[np.uint64(q + i * s0)]  # unsigned: no wraparound test
    # Steps of 2 and -1 (x[::2], the .real of a complex array, x[::-1]) as
    # constants: the loop loads whole vectors and shuffles them, where a
    # step known only at run time is one gather instruction per vector (an
    # inlined helper taking the step instead compiled 2-3x slower).
    elif s1 == 2 and src.itemsize == 4 and _address(src) % 4 == 0:
        _gather_halves(src, p, s0, m, n, buf)
    elif s1 == 2:
        for i in range(m):
            q = p + i * s0
            for j in range(n):
                buf[i * n + j] = src[np.uint64(q + 2 * j)]
    elif s1 == -1:
        for i in range(m):
            q = p + i * s0
            for j in range(n):
                buf[i * n + j] = src[np.uint64(q - j)]
    else:
        for i in range(m):
            q = p + i * s0
            for j in range(n):
                buf[i * n + j] = src[np.uint64(q + j * s1)]


@shared_jit
def _gather_halves(src, p, s0, m, n, buf):
    """_gather's rows of 4-byte elements at step 2, read as the low or high
    halves of 8-byte words: the step-2 loop of 4-byte elements is one vector
    gather instruction per vector on some CPUs (LLVM's choice for Zen 4,
    where gathers are slow: one thread gathering x[::2] of 2^24 float32 from
    memory, 1.43 -> 0.34 ns per element), the halves are vector loads and
    truncations everywhere. Little-endian (every target Numba has): the low
    half is the lower address. The elements that fall outside the words
    (before the first 8-byte boundary, after the last) are read one by one.
    The stores take unsigned indices: with signed ones the loop stored
    through scatter instructions (the index's wraparound test, per lane)."""
    off = _address(src) // 4 % 2  # the element before src's first 8-byte boundary, if any
    words = src[off:off + (src.size - off) // 2 * 2].view(np.uint64)
    dst = buf.view(np.uint32)
    nw = words.size
    for i in range(m):
        q = p + i * s0
        e = q - off  # element q in words: half e & 1 of word (e >> 1) (e may be -1)
        w0 = e >> 1
        lo = min(n, max(0, -w0))
        hi = max(lo, min(n, nw - w0))
        for j in range(lo):
            buf[i * n + j] = src[q + 2 * j]
        if e & 1:
            for j in range(lo, hi):
                dst[np.uint64(i * n + j)] = np.uint32(words[np.uint64(w0 + j)] >> np.uint64(32))
        else:
            for j in range(lo, hi):
                dst[np.uint64(i * n + j)] = np.uint32(words[np.uint64(w0 + j)] & np.uint64(0xFFFFFFFF))
        for j in range(hi, n):
            buf[i * n + j] = src[q + 2 * j]


@shared_jit
def _scatter(buf, dst, place, k, r0, c0, m, n):
    base, sa, sb, s0, s1 = place
    p = _origin(place, k, r0, c0)
    if _along_rows(place, m, n):
        for i in range(m):
            q = p + i * s0
            for j in range(n):
                dst[np.uint64(q + j * s1)] = buf[i * n + j]
    else:
        for j in range(n):
            q = p + j * s1
            for i in range(m):
                dst[np.uint64(q + i * s0)] = buf[i * n + j]


def tiles_1_1(a, pa, o, po, grid, params):
    nt = _tile_count(grid)
    size = grid[4] * grid[5]
    for task in prange((nt + TILES_PER_TASK - 1) // TILES_PER_TASK):
        ba = np.empty(size, a.dtype)
        bo = np.empty(size, o.dtype)
        for t in range(task * TILES_PER_TASK, min(nt, (task + 1) * TILES_PER_TASK)):
            k, r0, c0, m, n = _tile(t, grid)
            _gather(a, pa, k, r0, c0, m, n, ba)
            vo = _tile_out(o, po, k, r0, c0, m, n, bo)
            flat(ba[:m * n], vo, params)
            _tile_done(bo, o, po, k, r0, c0, m, n)


def tiles_2_1(a, pa, b, pb, o, po, grid, params):
    nt = _tile_count(grid)
    size = grid[4] * grid[5]
    for task in prange((nt + TILES_PER_TASK - 1) // TILES_PER_TASK):
        ba = np.empty(size, a.dtype)
        bb = np.empty(size, b.dtype)
        bo = np.empty(size, o.dtype)
        for t in range(task * TILES_PER_TASK, min(nt, (task + 1) * TILES_PER_TASK)):
            k, r0, c0, m, n = _tile(t, grid)
            _gather(a, pa, k, r0, c0, m, n, ba)
            _gather(b, pb, k, r0, c0, m, n, bb)
            vo = _tile_out(o, po, k, r0, c0, m, n, bo)
            flat(ba[:m * n], bb[:m * n], vo, params)
            _tile_done(bo, o, po, k, r0, c0, m, n)


def tiles_1_2(a, pa, o, po, p, pp, grid, params):
    nt = _tile_count(grid)
    size = grid[4] * grid[5]
    for task in prange((nt + TILES_PER_TASK - 1) // TILES_PER_TASK):
        ba = np.empty(size, a.dtype)
        bo = np.empty(size, o.dtype)
        bp = np.empty(size, p.dtype)
        for t in range(task * TILES_PER_TASK, min(nt, (task + 1) * TILES_PER_TASK)):
            k, r0, c0, m, n = _tile(t, grid)
            _gather(a, pa, k, r0, c0, m, n, ba)
            vo = _tile_out(o, po, k, r0, c0, m, n, bo)
            vp = _tile_out(p, pp, k, r0, c0, m, n, bp)
            flat(ba[:m * n], vo, vp, params)
            _tile_done(bo, o, po, k, r0, c0, m, n)
            _tile_done(bp, p, pp, k, r0, c0, m, n)


_UFUNC_TEMPLATES = {
    "forward": (forward_0, forward_1, forward_2),
    "grad": (grad_0, grad_1, grad_2),
    "backward": (backward_0, backward_1, backward_2),
    "backward_y": (backward_y_0, backward_y_1, backward_y_2),
}
_LOOP_TEMPLATES = {
    "forward": flat_forward,
    "grad": flat_grad,
    "backward": flat_backward,
    "backward_y": flat_backward_y,
    "value_and_grad": flat_value_and_grad,
}


def _scalars(defn) -> dict:
    return {"f": defn.forward_jit, "df": defn.grad_jit, "dfy": defn.grad_from_output_jit}


@functools.cache
def ufunc(defn, kind: str):
    """The lazily compiled ufunc (a Numba DUFunc) of one kind for a definition."""
    template = _UFUNC_TEMPLATES[kind][len(defn.param_names)]
    fn = specialize(template, f"{defn.name}_{kind}", **_scalars(defn))
    return vectorize(fn)


_ready: set = set()
_ready_lock = threading.Lock()


def ready_ufunc(defn, kind: str, dtype: np.dtype):
    """``ufunc(defn, kind)`` with its loop for ``dtype`` compiled.

    A DUFunc compiles a loop inside the call that first needs it, and only
    when NumPy finds no loop that the inputs cast to safely: once a float64
    loop exists, a float32 call would run it and round its result. So every
    loop is compiled here by signature (one thread at a time: two threads
    compiling one loop at once would both register it), and the callers pass
    ``dtype=`` so that NumPy picks the loop of exactly that dtype.
    """
    key = (defn, kind, dtype)
    if key not in _ready:
        with _ready_lock:
            if key not in _ready:
                u = ufunc(defn, kind)
                if dtype.char * u.nin + "->" + dtype.char not in u.types:
                    u.add(f"{dtype.name}({', '.join([dtype.name] * u.nin)})")
                _ready.add(key)
    return ufunc(defn, kind)


_ARITY = {"forward": 1, "grad": 1, "backward": 2, "backward_y": 2, "value_and_grad": 1}
_BLOCKS_TEMPLATES = {"forward": blocks_1_1, "grad": blocks_1_1, "backward": blocks_2_1,
                     "backward_y": blocks_2_1, "value_and_grad": blocks_1_2}
_ROWS_TEMPLATES = {"forward": rows_1_1, "grad": rows_1_1, "backward": rows_2_1,
                   "backward_y": rows_2_1, "value_and_grad": rows_1_2}


@functools.cache
def loop(defn, kind: str, parallel: bool = True):
    """The lazily compiled loop of one kind for a definition, parallel (in
    blocks, see blocks_1_1) or serial."""
    if parallel:
        fn = specialize(_BLOCKS_TEMPLATES[kind], f"{defn.name}_{kind}_parallel",
                        flat=loop(defn, kind, False), ALIGN=aligned(defn, kind))
    else:
        fn = specialize(_LOOP_TEMPLATES[kind], f"{defn.name}_{kind}_serial", **_scalars(defn))
    return jit(parallel=parallel)(fn)

#: The shortest rows the row kernels take: below it a row's call costs more
#: than the ufunc's strided loop saves.
MIN_ROW = 128


@functools.cache
def rows_loop(defn, kind: str):
    """The parallel kernel of one kind over the rows of strided arrays (see rows_1_1)."""
    fn = specialize(_ROWS_TEMPLATES[kind], f"{defn.name}_{kind}_rows",
                    flat=loop(defn, kind, False))
    return jit(parallel=True)(fn)


_TILES_TEMPLATES = {"forward": tiles_1_1, "grad": tiles_1_1, "backward": tiles_2_1,
                    "backward_y": tiles_2_1, "value_and_grad": tiles_1_2}

#: Elements per tile (see tiles_1_1): a few buffers of it stay in L1/L2.
TILE = 4096


@functools.cache
def tiles_loop(defn, kind: str):
    """The parallel kernel of one kind over tiles of strided arrays (see tiles_1_1)."""
    fn = specialize(_TILES_TEMPLATES[kind], f"{defn.name}_{kind}_tiles",
                    flat=loop(defn, kind, False))
    return jit(parallel=True)(fn)


def _element_steps(arrays):
    """``(dims, steps)`` for arrays of one shape: the lengths of its axes
    other than those of length 1 and, per array, their strides in elements;
    None if the shapes differ or a stride is not a whole number of elements."""
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        return None
    steps = []
    for a in arrays:
        st = [v for v, n in zip(a.strides, shape) if n != 1]
        if any(v % a.itemsize for v in st):
            return None
        steps.append([v // a.itemsize for v in st])
    return [n for n in shape if n != 1], steps


def _tiles(arrays, nin=1):
    """``(grid, [(span, (base, sa, sb, s0, s1)), ...])`` for arrays of one
    shape whose axes collapse to at most four, (outer, batch, rows, cols),
    with element strides (sa, sb, s0, s1) in every array: span a flat view of
    the memory from the array's lowest element to its highest, base the place
    of element (0, 0, 0, 0) in it, grid (outer, batch, rows, cols, tr, tc,
    *weights) with tr x tc the tile and the weights of the walk (_walk);
    else None.

    The layout depends on the shapes and strides only, and is kept for the
    next call with the same (its arithmetic in Python took 14 of the 19 us
    of this function; a call on 2^17 float32 x[::2] took 54 us).

    The spans of the first ``nin`` arrays (the inputs) are read-only views,
    whatever the caller's flags: Numba compiles a kernel per argument type,
    read-only included, and a broadcast or read-only input would otherwise
    compile each tile kernel a second time (5-8 s for a backward on 2 cores)."""
    key = (TILE, *((a.shape, a.strides, a.itemsize) for a in arrays))
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _tile_layout(arrays)
        if len(_LAYOUTS) >= 256:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    if not layout:
        return None
    grid, places = layout
    return grid, [(np.lib.stride_tricks.as_strided(a[first], shape=(n,), strides=(a.itemsize,),
                                                   writeable=i >= nin), place)
                  for i, (a, (first, n, place)) in enumerate(zip(arrays, places, strict=True))]


# (TILE, then shape, strides and item size per array) -> _tile_layout's result
_LAYOUTS: dict = {}


def _tile_layout(arrays):
    """_tiles's layout: ``(grid, [(first, n, place), ...])``, first the index
    of an array's lowest element (as a 1-element view), n its span's length;
    () where the arrays do not collapse to four axes."""
    axes = _element_steps(arrays)
    if axes is None:
        return ()
    dims, steps = axes
    # merge each axis into the one before it where the two are contiguous
    # with each other in every array
    for k in range(len(dims) - 1, 0, -1):
        if all(s[k - 1] == s[k] * dims[k] for s in steps):
            dims[k - 1:k + 1] = [dims[k - 1] * dims[k]]
            for s in steps:
                s[k - 1:k + 1] = [s[k]]
    if not dims or len(dims) > 4:
        return ()
    pad = 4 - len(dims)
    dims = [1] * pad + dims
    steps = [[0] * pad + s for s in steps]
    outer, batch, rows, cols = dims
    tc = min(cols, max(64, TILE // rows))
    tr = min(rows, max(1, TILE // tc))
    places = []
    for a, st in zip(arrays, steps, strict=True):
        lo = sum(min(0, (n - 1) * v) for n, v in zip(dims, st))
        hi = sum(max(0, (n - 1) * v) for n, v in zip(dims, st))
        # the lowest element: the last index along every axis of negative stride
        first = tuple(slice(n - 1, n) if v < 0 else slice(0, 1) for v, n in zip(a.strides, a.shape))
        places.append((first, hi - lo + 1, (-lo, *st)))
    return (outer, batch, rows, cols, tr, tc, *_walk(dims, tr, tc, steps[0])), places


def _walk(dims, tr, tc, steps):
    """The weights of the tile grid's axes (outer, batch, row tiles, column
    tiles) in the tile index (see _tile): tiles follow the memory of the
    first input, the axis along which its next tile lies nearest varying
    fastest (ties: the later axis). A tile's input rows may be short runs far
    apart (a (batch, seq, heads, dim) -> (batch, heads, seq, dim) permutation
    reads rows of dim elements a seq step apart): walked in its memory order,
    consecutive tiles read the rest of the same pages."""
    outer, batch, rows, cols = dims
    counts = (outer, batch, -(-rows // tr), -(-cols // tc))
    step = (steps[0], steps[1], tr * steps[2], tc * steps[3])
    weights, w = [0] * 4, 1
    for a in sorted(range(4), key=lambda a: (abs(step[a]) if counts[a] > 1 else 0, -a)):
        weights[a] = w
        w *= counts[a]
    return weights


def _rows(arrays):
    """``(rows, cols, [(span, row stride), ...])`` for arrays of one shape that
    are each a set of equally spaced rows of ``cols`` contiguous elements (the
    same split for all), ``span`` a flat C-contiguous view of the memory from
    an array's first element to its last; else None. Row strides are
    non-negative (0: one row read again, a broadcast input)."""
    axes = _element_steps(arrays)
    if axes is None:
        return None
    dims, steps = axes
    # the contiguous tail: axes whose stride is the size of the axes after them
    cols, k = 1, len(dims)
    while k and all(s[k - 1] == cols for s in steps):
        cols *= dims[k - 1]
        k -= 1
    if k == len(dims) or k == 0 or cols < MIN_ROW:
        return None  # no contiguous axis, contiguous throughout (the flat loops' case), or rows too short
    # the rest: one axis of rows, each a multiple of the next one's stride
    rows, k = dims[k - 1], k - 1
    row = [s[k] for s in steps]
    while k:
        if not all(s[k - 1] == rows * r for s, r in zip(steps, row, strict=True)):
            return None
        rows *= dims[k - 1]
        k -= 1
    if any(r < 0 for r in row):
        return None
    views = []
    for a, r in zip(arrays, row, strict=True):
        span = np.lib.stride_tricks.as_strided(a, shape=((rows - 1) * r + cols,),
                                               strides=(a.itemsize,))
        views.append((span, r))
    return rows, cols, views


def serial_entry(defn, kind: str, dtype: np.dtype):
    """The compiled serial loop of one kind for 1-D C-contiguous arrays of ``dtype``.

    Returned is the compiled function's own entry point, which skips the
    dispatcher's type resolution: callers pass exactly those arrays and the
    parameters as a tuple of ``dtype`` scalars.
    """
    return _entry(defn, kind, dtype, False)


def parallel_entry(defn, kind: str, dtype: np.dtype):
    """serial_entry's parallel loop (blocks_1_1), which takes the thread count last."""
    return _entry(defn, kind, dtype, True)


@functools.cache
def _entry(defn, kind, dtype, parallel):
    scalar = numba.from_dtype(dtype)
    array = numba.types.Array(scalar, 1, "C")
    nout = 2 if kind == "value_and_grad" else 1
    params = numba.types.UniTuple(scalar, len(defn.param_names)) if defn.param_names \
        else numba.types.Tuple(())
    sig = (array,) * (_ARITY[kind] + nout) + (params,) + ((numba.types.intp,) if parallel else ())
    k = loop(defn, kind, parallel)
    with _ready_lock:
        if sig not in k.overloads:
            k.compile(sig)
    return k.overloads[sig].entry_point


def run_flat(defn, kind: str, args: tuple) -> None:
    """The parallel loop on 1-D C-contiguous arrays and their parameters,
    exactly as serial_entry's callers pass them (no output overlapping an
    input but the input itself); the serial loop where parallel launches
    may not run now."""
    dtype = args[0].dtype
    with parallel_slot() as ok:
        if ok:
            parallel_entry(defn, kind, dtype)(*args, threads())
            return
    serial_entry(defn, kind, dtype)(*args)


def run(defn, kind: str, inputs: tuple, outs: tuple, params: tuple, fresh: bool = False) -> None:
    """Apply one kind of kernel: ``outs[k][...] = kernel(*inputs, *params)``.

    ``inputs`` and ``outs`` are arrays of the compute dtype; ``outs`` have the
    result shape and may alias an input exactly (``fresh``: they were just
    allocated and share no memory with anything). ``params`` are already
    cast to the compute dtype.
    """
    flat = _flat_if_safe(inputs, outs, fresh)
    if flat is not None:
        # Contiguous arrays of one layout: a flat loop, parallel when large.
        # (A compiled loop also skips the ufunc machinery's per-call costs.)
        if flat[0].size >= parallel_threshold(defn):
            with parallel_slot() as ok:
                if ok:
                    loop(defn, kind, True)(*flat, params, threads())
                    return
        loop(defn, kind, False)(*flat, params)
        return
    # Large strided arrays: the row or tile kernels, in parallel.
    if inputs[0].size >= parallel_threshold(defn) and _no_partial_overlap(inputs, outs, fresh):
        launch = _strided_launch(defn, kind, (*inputs, *outs))
        if launch is not None:
            with parallel_slot() as ok:
                if ok:
                    kernel, args = launch
                    kernel(*args, params)
                    return
    # Small strided arrays, layouts of five axes or more, partly overlapping arrays: the ufuncs.
    if kind == "value_and_grad":
        # Two ufunc passes. The derivative goes first, from the untouched
        # input, in case the value's output is the input itself.
        x = inputs[0]
        if np.may_share_memory(outs[1], x):
            x = x.copy()
        grad = ready_ufunc(defn, "grad", x.dtype)
        forward = ready_ufunc(defn, "forward", x.dtype)
        with np.errstate(all="ignore"):
            grad(x, *params, out=outs[1], dtype=x.dtype)
            forward(x, *params, out=outs[0], dtype=x.dtype)
        return
    dtype = outs[0].dtype
    u = ready_ufunc(defn, kind, dtype)
    # NumPy checks the floating-point status flags after a ufunc loop;
    # overflow or invalid in intermediate steps is expected and handled.
    with np.errstate(all="ignore"):
        u(*inputs, *params, out=outs[0], dtype=dtype)


def _strided_launch(defn, kind, arrays):
    """The parallel kernel for strided arrays (inputs, then outputs) and its
    arguments before ``params``: the row kernels for equally spaced
    contiguous rows (slices), else the tile kernels for a layout that
    collapses to four axes or fewer; None for any other layout."""
    layout = _rows(arrays)
    if layout is not None:
        rows, cols, views = layout
        return rows_loop(defn, kind), (*(v for pair in views for v in pair), rows, cols)
    layout = _tiles(arrays, _ARITY[kind])
    if layout is not None:
        grid, views = layout
        return tiles_loop(defn, kind), (*(v for pair in views for v in pair), grid)
    return None


def _no_partial_overlap(inputs, outs, fresh):
    """True when no output shares memory with an input without being it exactly."""
    return fresh or not any(overlaps(o, inputs) for o in outs)


def _flat_if_safe(inputs, outs, fresh):
    flat = contiguous_flat(*inputs, *outs)
    if flat is None or not _no_partial_overlap(inputs, outs, fresh):
        return None
    return flat
