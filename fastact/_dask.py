"""Dask arrays: every function, lazily and block by block.

A Dask array passed to any fastact function gives back a lazy Dask array
whose tasks call that same function on the NumPy blocks: the Numba kernels
run wherever Dask runs its tasks (threads, or the worker processes of
``dask.distributed``, which load them from the on-disk kernel cache), and
nothing is computed before ``.compute()``. Results keep the dtype rules of
the NumPy path and the ``meta`` of the input. Scalars and NumPy arrays may
be mixed with Dask arrays (a NumPy weight, ``grad_output=1.0``); ``out=`` is
a ``TypeError``, Dask arrays being immutable.

* Elementwise functions, their ``grad``, ``backward`` and
  ``value_and_grad``, ``prelu`` and ``mse_loss``: one task per block, the
  chunks of the input kept; the arrays of one call are brought to common
  chunks first.
* ``softmax``, ``log_softmax``, ``softmin`` (and their ``backward``) along
  an axis split over several chunks: when a line along the axis is at most
  :data:`WHOLE_AXIS_MAX_BYTES` (16 MiB, 4M float32 values), the axis is
  rechunked into one chunk, the other axes re-chunked where needed to keep
  blocks near Dask's ``array.chunk-size``, and each block is one kernel
  call. Longer lines are normalised in two passes without moving data: the
  maximum and the sum of exponentials of each chunk, combined per line, then
  each chunk normalised; x is read twice.
* ``glu``, ``cross_entropy`` and the softmax ``jacobian`` take the axis in
  one chunk; ``maxout`` rounds the chunks along its axis to multiples of
  ``pool_size``.
* Reductions (``reduction='mean'`` or ``'sum'``, the weight gradient of
  ``prelu``) add float64 partial sums of the blocks and round once: a loss
  is a lazy 0-d Dask array.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.array.core import normalize_chunks, unify_chunks
from dask.array.utils import meta_from_array
from dask.utils import parse_bytes

from fastact import _losses, _rowwise
from fastact._arrays import F32, F16, F64, compute_dtype, normalize_axis, result_dtype
from fastact._elementwise import Elementwise
from fastact._loss_kernels import kernel as loss_kernel
from fastact._prelu import channel_axis, prelu
from fastact._rowwise_kernels import SOFTMAX

#: Lines along the axis of softmax, log_softmax and softmin of at most this
#: many bytes (of the result dtype) are rechunked into one chunk; longer ones
#: split over several chunks are normalised in two passes.
WHOLE_AXIS_MAX_BYTES = 16 * 2**20

# The per-line statistics of the two-pass softmax: the maximum and the sum
# of e^(x - max), accumulated in float64 as the kernels do.
_STATS = np.dtype([("max", F64), ("sum", F64)])


def call(func: Any, method: str, args: tuple, kwargs: dict) -> Any:
    """Run ``func.method(*args, **kwargs)`` on Dask arrays, lazily.

    Called by the public entry points (``fastact._dispatch.backend``) when
    one of their array arguments is a Dask array.
    """
    fname = func.name if method == "__call__" else f"{func.name}.{method}"
    kwargs = dict(kwargs)
    if kwargs.pop("out", None) is not None:
        raise TypeError(f"{fname}(): out= cannot be used with Dask arrays, which are immutable; "
                        "use the Dask array it returns")
    if isinstance(func, Elementwise):
        return _elementwise(func, method, fname, args, kwargs)
    if isinstance(func, _rowwise._SoftmaxFamily):
        return _softmax(func, method, fname, args, kwargs)
    if func is _rowwise.glu:
        return _glu(func, method, fname, args, kwargs)
    if func is _rowwise.maxout:
        return _maxout(func, method, fname, args, kwargs)
    if func is prelu:
        return _prelu(func, method, fname, args, kwargs)
    if func is _losses.mse_loss:
        return _mse(func, method, fname, args, kwargs)
    if func is _losses.cross_entropy:
        return _cross_entropy(func, method, fname, args, kwargs)
    raise TypeError(f"{fname}(): Dask arrays are not supported by this function")


# --- helpers -------------------------------------------------------------------

def _is_dask(x: Any) -> bool:
    return hasattr(x, "__dask_graph__") and hasattr(x, "chunks")


def _lift(x: Any, like: Any = None) -> da.Array:
    """A Dask array of ``x`` (a NumPy array or anything ``np.asarray`` takes).

    A NumPy array of the shape of the Dask array ``like`` takes its chunks.
    """
    if _is_dask(x):
        return x
    x = np.asarray(x)
    if _is_dask(like) and like.shape == x.shape:
        return da.from_array(x, chunks=like.chunks)
    return da.asarray(x)


def _dtype(x: Any) -> np.dtype:
    return x.dtype if _is_dask(x) else np.asarray(x).dtype


def _shape(x: Any) -> tuple:
    return tuple(x.shape) if _is_dask(x) else np.shape(x)


def _known(x: da.Array, fname: str, argname: str) -> da.Array:
    """``x``, whose chunk sizes must be known (they are not after boolean indexing)."""
    if any(math.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(f"{fname}(): {argname} has chunks of unknown size; call "
                         f"{argname}.compute_chunk_sizes() first")
    return x


def _meta(like: da.Array, dtype: np.dtype, ndim: int | None = None) -> Any:
    """An empty array of the kind of ``like``'s blocks, with ``dtype`` and ``ndim``."""
    return meta_from_array(like, ndim=like.ndim if ndim is None else ndim, dtype=dtype)


def _common(*arrays: da.Array) -> list[da.Array]:
    """Arrays of one shape brought to common chunks (Dask's unify_chunks)."""
    ind = tuple(range(arrays[0].ndim))
    _, out = unify_chunks(*[v for a in arrays for v in (a, ind)])
    return out


def _broadcast(v: Any, target: da.Array, fname: str, argname: str, what: str) -> da.Array:
    """``v`` as a Dask array of ``target``'s shape, broadcast as NumPy does.

    New and stretched axes take the target's chunks; the others keep their
    own (bring them to common chunks with :func:`_common`). A NumPy array
    of the target's shape takes the target's chunks.
    """
    shape = _shape(v)
    try:
        ok = np.broadcast_shapes(shape, target.shape) == target.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fname}(): {argname} has shape {shape}, which does not "
                         f"broadcast to the shape {target.shape} of {what}")
    if not _is_dask(v) and shape == target.shape:
        return da.from_array(np.asarray(v), chunks=target.chunks)
    v = _lift(v)
    lead = target.ndim - v.ndim
    chunks = tuple(target.chunks[i] if i < lead or v.shape[i - lead] != target.shape[i]
                   else v.chunks[i - lead] for i in range(target.ndim))
    return da.broadcast_to(v, target.shape, chunks=chunks)


def _chunk_limit() -> int:
    return parse_bytes(dask.config.get("array.chunk-size"))


def _whole_axis(x: da.Array, ax: int, itemsize: int, growth: int = 1) -> tuple:
    """Chunks of ``x`` with axis ``ax`` in one chunk.

    The other axes keep their chunks unless a block (times ``growth``, the
    ratio of output to input size) would exceed Dask's ``array.chunk-size``:
    then Dask's automatic chunking shrinks them.
    """
    n = x.shape[ax]
    chunks = list(x.chunks)
    chunks[ax] = (n,)
    limit = _chunk_limit()
    other = math.prod(max(c, default=0) for i, c in enumerate(x.chunks) if i != ax)
    if n * other * itemsize * growth > limit:
        spec: list[Any] = ["auto"] * x.ndim
        spec[ax] = n
        chunks = list(normalize_chunks(tuple(spec), x.shape, limit=max(limit // growth, 1),
                                       dtype=np.dtype(f"V{itemsize}"), previous_chunks=x.chunks))
    return tuple(chunks)


def _with_axis(chunks: tuple, ax: int, along: tuple) -> tuple:
    return chunks[:ax] + (along,) + chunks[ax + 1:]


def _ones(chunks: tuple) -> tuple:
    """The chunks of an array holding one value per block."""
    return tuple((1,) * len(c) for c in chunks)


def _unzip(pairs: da.Array, specs: list[tuple], token: str) -> tuple:
    """Dask arrays of the elements of a Dask array whose blocks are tuples.

    ``specs`` gives (chunks, dtype, meta) per element. A block's tuple is
    computed once when the elements are computed together.
    """
    return tuple(da.map_blocks(operator.itemgetter(i), pairs, chunks=chunks, dtype=dtype, meta=meta,
                               token=f"{token}-{i}")
                 for i, (chunks, dtype, meta) in enumerate(specs))


def _run(*blocks: Any, func: Any, method: str, keys: tuple, kwargs: dict) -> Any:
    """Call ``func.method`` on one set of NumPy blocks.

    ``keys`` names each block's argument: None for positional ones, in
    order, else the keyword (``y``, ``where``).
    """
    args = [b for b, k in zip(blocks, keys) if k is None]
    kw = {k: b for b, k in zip(blocks, keys) if k is not None}
    return getattr(func, method)(*args, **kw, **kwargs)


def _task(func: Any, method: str, keys: tuple, **kwargs: Any) -> functools.partial:
    return functools.partial(_run, func=func, method=method, keys=keys, kwargs=kwargs)


def _finish_total(total: np.ndarray, *, count: int, reduction: str, to: np.dtype) -> np.ndarray:
    """A loss from its float64 sum, rounded once as on the NumPy path."""
    return np.asarray(_losses._reduced(float(total), count, reduction, to))


def _reduce(parts: da.Array, count: int, reduction: str, dtype: np.dtype, fname: str) -> da.Array:
    """The 0-d loss from float64 partial sums (one per block)."""
    total = parts.sum(dtype=F64)
    return da.map_blocks(_finish_total, total, count=count, reduction=reduction, to=dtype, dtype=dtype,
                         meta=_meta(parts, dtype, 0), token=fname)


# --- elementwise ---------------------------------------------------------------

def _elementwise(func: Elementwise, method: str, fname: str, args: tuple, kw: dict) -> Any:
    y = kw.pop("y", None)
    params = kw
    if method != "backward":
        (x,) = args
        x = _lift(x)
        dtype = result_dtype(x.dtype, fname, "x")
        func._resolve(method, params, dtype)  # invalid parameters raise now, not at compute
        meta = _meta(x, dtype)
        if method == "value_and_grad":
            pairs = da.map_blocks(_task(func, method, (None,), **params), x, dtype=object,
                                  meta=_meta(x, np.dtype(object)), token=fname)
            return _unzip(pairs, [(x.chunks, dtype, meta)] * 2, fname)
        return da.map_blocks(_task(func, method, (None,), **params), x, dtype=dtype, meta=meta,
                             token=fname)
    g, x = args
    name, a = ("x", x) if y is None else ("y", y)
    a = _lift(a, like=g)
    dtype = result_dtype(a.dtype, fname, name)
    func._resolve(method, params, dtype)
    result_dtype(_dtype(g), fname, "grad_output")
    keys = (None, None) if y is None else (None, "y")
    task = _task(func, "backward", keys, **params)
    if not _is_dask(g) and np.ndim(g) == 0:
        # A scalar is passed to every block as it is.
        return da.map_blocks(task, g, a, dtype=dtype, meta=_meta(a, dtype), token=fname)
    a = _known(a, fname, name)
    g, a = _common(_broadcast(g, a, fname, "grad_output", name), a)
    return da.map_blocks(task, g, a, dtype=dtype, meta=_meta(a, dtype), token=fname)


# --- softmax, log_softmax, softmin -----------------------------------------------

def _rows_arg(x: Any, fname: str, argname: str, like: Any = None) -> tuple[da.Array, np.dtype]:
    x = _lift(x, like)
    dtype = result_dtype(x.dtype, fname, argname)
    if x.ndim == 0:
        raise ValueError(f"{fname}(): {argname} must have at least one dimension, got a 0-d array")
    return _known(x, fname, argname), dtype


def _mask(where: Any, x: da.Array, fname: str) -> da.Array | None:
    """``where=`` as a boolean Dask array of x's shape and chunks, or None."""
    if where is None:
        return None
    dt = _dtype(where)
    if dt != np.bool_:
        raise TypeError(f"{fname}(): where must be a boolean array, got dtype {dt}")
    return _broadcast(where, x, fname, "where", "x")  # checks the shape


def _two_pass(x: da.Array, ax: int, itemsize: int) -> bool:
    """Whether a softmax along ``ax`` is normalised in two passes (see the module docstring)."""
    return x.numblocks[ax] > 1 and x.shape[ax] * itemsize > WHOLE_AXIS_MAX_BYTES


def _softmax(func: Any, method: str, fname: str, args: tuple, kw: dict) -> Any:
    axis = kw.pop("axis", -1)
    where = kw.pop("where", None)
    if method == "backward":
        return _softmax_backward(func, fname, args, kw.pop("y", None), axis, where)
    (x,) = args
    x, dtype = _rows_arg(x, fname, "x", like=where)
    ax = normalize_axis(axis, x.ndim, fname)
    w = _mask(where, x, fname)
    if method == "jacobian":
        return _softmax_jacobian(func, x, w, ax, dtype)
    if _two_pass(x, ax, dtype.itemsize):
        return _softmax_two_pass(func, x, w, ax, dtype)
    chunks = _whole_axis(x, ax, dtype.itemsize)
    arrays = [v.rechunk(chunks) for v in (x, w) if v is not None]
    task = _task(func, "__call__", (None, "where")[:len(arrays)], axis=ax)
    return da.map_blocks(task, *arrays, dtype=dtype, meta=_meta(x, dtype), token=func.name)


def _signed(x: np.ndarray, sign: float) -> np.ndarray:
    """``sign * x`` in the compute dtype of x's result."""
    z = x.astype(compute_dtype(result_dtype(x.dtype, "softmax", "x")), copy=False)
    return -z if sign < 0 else z


def _softmax_parts(x: np.ndarray, w: np.ndarray | None = None, *, sign: float, axis: int) -> np.ndarray:
    """The maximum and the sum of e^(z - max) of each line of one block, z = sign * x."""
    z = _signed(x, sign)
    mask = True if w is None else w
    out = np.empty(z.shape[:axis] + (1,) + z.shape[axis + 1:], _STATS)
    # exp overflows or is NaN on masked-out entries and on lines whose
    # maximum is infinite; the former are not summed, the latter are
    # handled when the blocks are combined.
    with np.errstate(all="ignore"):
        m = np.max(z, axis=axis, keepdims=True, initial=-np.inf, where=mask)  # NaN propagates
        out["max"] = m
        out["sum"] = np.sum(np.exp(z - m), axis=axis, keepdims=True, dtype=F64, where=mask)
    return out


def _softmax_combine(parts: np.ndarray, *, axis: int) -> np.ndarray:
    """One line's statistics from those of its blocks: M = max m_b, S = sum s_b e^(m_b - M).

    As in the kernels, S is NaN for a line with NaN, with +inf, or whose
    entries (those not masked out) are all -inf, and 0 for a line with every
    entry masked out.
    """
    m, s = parts["max"], parts["sum"]
    top = np.max(m, axis=axis, keepdims=True)  # NaN propagates
    with np.errstate(all="ignore"):
        scaled = s * np.exp(m - top)
        # A block whose maximum is -inf has s_b = 0 when all its entries are
        # masked out, else NaN (e^(-inf - -inf)): that NaN stands when the
        # whole line's maximum is -inf, and is 0 (e^-inf) otherwise.
        scaled = np.where(m == -np.inf, np.where(top == -np.inf, s, 0.0), scaled)
        total = scaled.sum(axis=axis, keepdims=True)
    out = np.empty(np.squeeze(top, axis).shape, _STATS)
    out["max"] = np.squeeze(top, axis)
    out["sum"] = np.squeeze(np.where(np.isnan(top), np.nan, total), axis)
    return out


def _softmax_normalise(x: np.ndarray, w: np.ndarray | None, stats: np.ndarray, *, sign: float,
                       mode: int, axis: int, to: np.dtype) -> np.ndarray:
    """One block of the result from its lines' statistics, as the kernels compute it.

    softmax: e^(z - M), 0 where masked out, times 1/S in float64, rounded
    once (a line with every entry masked out is 0); log_softmax: (z - M) -
    log S in float64, rounded once, -inf where masked out. The float64
    temporaries are one block's: this path serves lines too long for one
    chunk.
    """
    z = _signed(x, sign)
    top = np.expand_dims(stats["max"], axis)
    total = np.expand_dims(stats["sum"], axis)
    with np.errstate(all="ignore"):
        if mode == SOFTMAX:
            e = np.exp(z - top.astype(z.dtype))
            if w is not None:
                e = np.where(w, e, 0)
            y = e * np.where(total == 0, 0.0, 1.0 / total)
        else:
            y = (z.astype(F64) - top) - np.log(total)
            if w is not None:
                y = np.where(w, y, -np.inf)
        return y.astype(to)


def _softmax_two_pass(func: Any, x: da.Array, w: da.Array | None, ax: int, dtype: np.dtype) -> da.Array:
    ind = tuple(range(x.ndim))
    red = ind[:ax] + ind[ax + 1:]
    arrays = [v for v in (x, w) if v is not None]
    if w is not None:
        x, w = _common(x, w)
        arrays = [x, w]
    parts = da.map_blocks(_softmax_parts, *arrays, sign=func._sign, axis=ax,
                          chunks=_with_axis(x.chunks, ax, (1,) * x.numblocks[ax]),
                          dtype=_STATS, meta=_meta(x, _STATS))
    # The statistics are one value per line: small enough to gather.
    stats = da.map_blocks(_softmax_combine, parts.rechunk({ax: -1}), axis=ax, drop_axis=ax,
                          dtype=_STATS, meta=_meta(x, _STATS, x.ndim - 1))
    return da.blockwise(_softmax_normalise, ind, x, ind, w, None if w is None else ind, stats, red,
                        sign=func._sign, mode=func._mode, axis=ax, to=dtype, dtype=dtype,
                        meta=_meta(x, dtype), token=func.name)


def _softmax_backward_parts(g: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *,
                            mode: int, axis: int) -> np.ndarray:
    """Per line of one block: sum g*y (softmax) or sum g (log_softmax), in float64."""
    mask = True if w is None else w
    terms = g.astype(F64) * y if mode == SOFTMAX else g
    return np.sum(terms, axis=axis, keepdims=True, dtype=F64, where=mask)


def _softmax_backward_apply(g: np.ndarray, y: np.ndarray, w: np.ndarray | None, s: np.ndarray, *,
                            sign: float, mode: int, axis: int, to: np.dtype) -> np.ndarray:
    """sign * y (g - s) (softmax) or g - e^y s (log_softmax), in float64, rounded once."""
    s = np.expand_dims(s, axis)
    with np.errstate(all="ignore"):
        if mode == SOFTMAX:
            gx = sign * (y.astype(F64) * (g - s))
        else:
            gx = g - np.exp(y.astype(F64)) * s
        if w is not None:
            gx = np.where(w, gx, 0.0)  # masked entries are constants of x
        return gx.astype(to)


def _softmax_backward(func: Any, fname: str, args: tuple, y: Any, axis: Any, where: Any) -> da.Array:
    g, x = args
    name, a = ("x", x) if y is None else ("y", y)
    a, dtype = _rows_arg(a, fname, name, like=g)
    ax = normalize_axis(axis, a.ndim, fname)
    result_dtype(_dtype(g), fname, "grad_output")
    if _shape(g) != a.shape:
        raise ValueError(f"{fname}(): grad_output has shape {_shape(g)}, "
                         f"expected the shape {a.shape} of {name}")
    g = _known(_lift(g, like=a), fname, "grad_output")
    w = _mask(where, a, fname)
    if _two_pass(a, ax, dtype.itemsize):
        arrays = _common(*[v for v in (g, a, w) if v is not None])
        g, a = arrays[:2]
        w = arrays[2] if w is not None else None
        cdt = compute_dtype(dtype)
        g = g.astype(cdt)
        yv = a.astype(cdt) if y is not None else _softmax_two_pass(func, a, w, ax, cdt)
        ind = tuple(range(a.ndim))
        red = ind[:ax] + ind[ax + 1:]
        parts = da.map_blocks(_softmax_backward_parts, *[v for v in (g, yv, w) if v is not None],
                              mode=func._mode, axis=ax,
                              chunks=_with_axis(a.chunks, ax, (1,) * a.numblocks[ax]),
                              dtype=F64, meta=_meta(a, F64))
        s = parts.sum(axis=ax)
        return da.blockwise(_softmax_backward_apply, ind, g, ind, yv, ind, w,
                            None if w is None else ind, s, red, sign=func._sign, mode=func._mode,
                            axis=ax, to=dtype, dtype=dtype, meta=_meta(a, dtype), token=fname)
    chunks = _whole_axis(a, ax, dtype.itemsize)
    arrays = [v.rechunk(chunks) for v in (g, a, w) if v is not None]
    keys = (None, None if y is None else "y", "where")[:len(arrays)]
    return da.map_blocks(_task(func, "backward", keys, axis=ax), *arrays,
                         dtype=dtype, meta=_meta(a, dtype), token=fname)


def _softmax_jacobian(func: Any, x: da.Array, w: da.Array | None, ax: int, dtype: np.dtype) -> da.Array:
    # The Jacobian's blocks are n times larger than x's: the other axes are
    # chunked so that they stay near Dask's chunk size.
    n = x.shape[ax]
    xm = da.moveaxis(x, ax, -1)
    chunks = _whole_axis(xm, xm.ndim - 1, dtype.itemsize, growth=max(n, 1))
    arrays = [da.moveaxis(v, ax, -1).rechunk(chunks) for v in (x, w) if v is not None]
    task = _task(func, "jacobian", (None, "where")[:len(arrays)], axis=-1)
    return da.map_blocks(task, *arrays, chunks=chunks + ((n,),), new_axis=x.ndim,
                         dtype=dtype, meta=_meta(x, dtype, x.ndim + 1), token=f"{func.name}.jacobian")


# --- glu, maxout ---------------------------------------------------------------

def _half_grad(g: Any, shape: tuple, fname: str) -> da.Array:
    result_dtype(_dtype(g), fname, "grad_output")
    if _shape(g) != shape:
        raise ValueError(f"{fname}(): grad_output has shape {_shape(g)}, expected {shape}")
    return _known(_lift(g), fname, "grad_output")


def _glu(func: Any, method: str, fname: str, args: tuple, kw: dict) -> da.Array:
    axis = kw.pop("axis", -1)
    x = args[-1]
    x, dtype = _rows_arg(x, fname, "x")
    ax = normalize_axis(axis, x.ndim, fname)
    n = x.shape[ax]
    if n % 2:
        raise ValueError(f"{fname}(): the length of axis {axis} must be even, got {n}")
    # The halves a and b of a line are in one block when the axis is.
    chunks = _whole_axis(x, ax, dtype.itemsize)
    half = _with_axis(chunks, ax, (n // 2,))
    xr = x.rechunk(chunks)
    if method == "__call__":
        return da.map_blocks(_task(func, "__call__", (None,), axis=ax), xr, chunks=half,
                             dtype=dtype, meta=_meta(x, dtype), token=fname)
    g = _half_grad(args[0], _with_axis(x.shape, ax, n // 2), fname).rechunk(half)
    return da.map_blocks(_task(func, "backward", (None, None), axis=ax), g, xr, chunks=chunks,
                         dtype=dtype, meta=_meta(x, dtype), token=fname)


def _pool_chunks(chunks: tuple, k: int) -> tuple:
    """Chunks along an axis rounded to multiples of ``k`` (their bounds to the nearest)."""
    if all(c % k == 0 for c in chunks):
        return chunks
    bounds = [0]
    for c in chunks:
        bounds.append(bounds[-1] + c)
    rounded = sorted({round(b / k) * k for b in bounds})
    return tuple(b - a for a, b in zip(rounded, rounded[1:]))


def _maxout(func: Any, method: str, fname: str, args: tuple, kw: dict) -> da.Array:
    pool_size = kw.pop("pool_size")
    axis = kw.pop("axis", -1)
    x = args[-1]
    x, dtype = _rows_arg(x, fname, "x")
    ax = normalize_axis(axis, x.ndim, fname)
    if isinstance(pool_size, (bool, np.bool_)) or not isinstance(pool_size, (int, np.integer)):
        raise TypeError(f"{fname}(): pool_size must be a positive integer, got {pool_size!r}")
    k = int(pool_size)
    n = x.shape[ax]
    if k <= 0:
        raise ValueError(f"{fname}(): pool_size must be a positive integer, got {k}")
    if n % k:
        raise ValueError(f"{fname}(): pool_size={k} does not divide the length {n} of axis {axis}")
    # Every group of pool_size entries in one block.
    along = _pool_chunks(x.chunks[ax], k) if n else x.chunks[ax]
    xr = x.rechunk({ax: along})
    small = _with_axis(xr.chunks, ax, tuple(c // k for c in along))
    params = {"pool_size": k, "axis": ax}
    if method == "__call__":
        return da.map_blocks(_task(func, "__call__", (None,), **params), xr, chunks=small,
                             dtype=dtype, meta=_meta(x, dtype), token=fname)
    g = _half_grad(args[0], _with_axis(x.shape, ax, n // k), fname).rechunk(small)
    return da.map_blocks(_task(func, "backward", (None, None), **params), g, xr, chunks=xr.chunks,
                         dtype=dtype, meta=_meta(x, dtype), token=fname)


# --- prelu ---------------------------------------------------------------------

def _prelu_backward_block(g: Any, x: np.ndarray, w: np.ndarray, *, axis: int | None,
                          ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_x, grad_weight partial)`` of one block.

    float16 blocks are passed as float32, the dtype the kernels compute in
    (the same grad_x once rounded to float16), so that the weight's partial
    sums are not rounded to float16 before they are added.
    """
    half = x.dtype == F16
    if half:
        x = x.astype(F32)
        g = np.asarray(g).astype(F32)
    gx, gw = prelu.backward(g, x, w, axis=1 if axis is None else axis)
    if half:
        gx = _cast(gx, to=F16)
    shape = [1] * ndim
    if axis is not None and np.size(w) > 1:
        shape[axis] = np.size(w)
    return gx, np.asarray(gw, dtype=F64).reshape(shape)


def _cast(a: np.ndarray, *, to: np.dtype) -> np.ndarray:
    with np.errstate(over="ignore"):  # beyond the range of float16: inf, without a warning
        return a.astype(to)


def _prelu(func: Any, method: str, fname: str, args: tuple, kw: dict) -> Any:
    axis = kw.pop("axis", 1)
    g = args[0] if method == "backward" else None
    x, weight = args[-2:]
    x = _known(_lift(x, like=g), fname, "x")
    dtype = result_dtype(x.dtype, fname, "x")
    result_dtype(_dtype(weight), fname, "weight")
    wshape = _shape(weight)
    nw = math.prod(wshape)
    ax, c = channel_axis(fname, x.shape, nw, axis)
    ind = tuple(range(x.ndim))
    if method == "backward":
        result_dtype(_dtype(g), fname, "grad_output")
        if _is_dask(g) or np.ndim(g) != 0:
            g, x = _common(_broadcast(g, x, fname, "grad_output", "x"), x)
    # Each block gets the weights of its channels, or the single weight.
    per_channel = nw > 1
    w = _lift(weight)
    if per_channel:
        w, windex = w.reshape(-1).rechunk((x.chunks[ax],)), (ax,)
    else:
        w, windex = w.reshape(()), ()
    blockargs: list = [x, ind, w, windex]
    if method == "backward":
        blockargs = [g, ind if _is_dask(g) else None] + blockargs
        pairs = da.blockwise(_prelu_backward_block, ind, *blockargs, axis=ax, ndim=x.ndim,
                             dtype=object, meta=_meta(x, np.dtype(object)), token=fname)
        # One weight partial per block: the blocks' chunks, 1 along every
        # axis the weight gradient is summed over.
        pchunks = tuple(x.chunks[i] if per_channel and i == ax else (1,) * x.numblocks[i]
                        for i in ind)
        gx, parts = _unzip(pairs, [(pairs.chunks, dtype, _meta(x, dtype)),
                                   (pchunks, F64, _meta(x, F64))], fname)
        summed = tuple(i for i in ind if not (per_channel and i == ax))
        # Added in float64 and rounded once to the weight's dtype (x's, as
        # on the NumPy path), in the weight's shape.
        gw = parts.sum(axis=summed, dtype=F64).rechunk(-1).reshape(wshape)
        gw = da.map_blocks(_cast, gw, to=dtype, dtype=dtype, meta=_meta(x, dtype, len(wshape)),
                           token=f"{fname}-weight")
        return gx, gw
    task = _task(func, method, (None, None), axis=1 if ax is None else ax)
    return da.blockwise(task, ind, *blockargs, dtype=dtype, meta=_meta(x, dtype), token=fname)


# --- losses --------------------------------------------------------------------

def _loss_grad_output(g: Any, reduction: str, shape_like: da.Array, fname: str, what: str) -> tuple:
    """``grad_output`` as a blockwise argument: (value, index) for the loss's blocks."""
    result_dtype(_dtype(g), fname, "grad_output")
    if reduction != "none":
        if len(_shape(g)) != 0:
            raise ValueError(f"{fname}(): grad_output must be a scalar with reduction="
                             f"{reduction!r}, got an array of shape {_shape(g)}")
        return (g, ()) if _is_dask(g) else (g, None)
    if not _is_dask(g) and np.ndim(g) == 0:
        return g, None
    return _broadcast(g, shape_like, fname, "grad_output", what), tuple(range(shape_like.ndim))


def _mse_partial(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """sum (p - t)^2 of one block, in float64."""
    fname = "mse_loss"
    _, pf, tf = _losses.mse_loss._args(fname, p, t)
    total = loss_kernel("squared_error_sum", pf.size)(pf, tf)
    return np.full((1,) * p.ndim, total, dtype=F64)


def _mse_backward_block(p: np.ndarray, t: np.ndarray, g: Any, *, reduction: str,
                        count: int) -> np.ndarray:
    """The NumPy path's backward on one block, with the element count of the whole array."""
    fname = "mse_loss.backward"
    pa, pf, tf = _losses.mse_loss._args(fname, p, t)
    gv, step, c = _losses._grad_factors(g, reduction, pa.value.shape, count, 2.0, pf.dtype, fname)
    gx = np.empty_like(pf)
    loss_kernel("squared_error_backward", pf.size)(pf, tf, gv, step, c, gx)
    return _losses._store(gx.reshape(pa.value.shape), pa, None)


def _mse(func: Any, method: str, fname: str, args: tuple, kw: dict) -> da.Array:
    reduction = _losses._check_reduction(kw.pop("reduction", "mean"), fname)
    pred, target = args[:2]
    p = _known(_lift(pred, like=target), fname, "pred")
    dtype = result_dtype(p.dtype, fname, "pred")
    result_dtype(_dtype(target), fname, "target")
    if _shape(target) != p.shape:
        raise ValueError(f"{fname}(): target has shape {_shape(target)}, expected the shape "
                         f"{p.shape} of pred")
    p, t = _common(p, _known(_lift(target, like=p), fname, "target"))
    ind = tuple(range(p.ndim))
    if method == "backward":
        gv, gind = _loss_grad_output(args[2], reduction, p, fname, "the loss")
        return da.blockwise(_mse_backward_block, ind, p, ind, t, ind, gv, gind, reduction=reduction,
                            count=p.size, dtype=dtype, meta=_meta(p, dtype), token=fname)
    if reduction == "none":
        return da.map_blocks(_task(func, "__call__", (None, None), reduction="none"), p, t,
                             dtype=dtype, meta=_meta(p, dtype), token=fname)
    parts = da.map_blocks(_mse_partial, p, t, chunks=_ones(p.chunks), dtype=F64, meta=_meta(p, F64))
    return _reduce(parts, p.size, reduction, dtype, fname)


def _ce_partial(logits: np.ndarray, target: np.ndarray, *, axis: int) -> np.ndarray:
    """The float64 sum of the losses of one block."""
    fname = "cross_entropy"
    ce = _losses.cross_entropy
    _, _, rows, t, shape = ce._args(fname, logits, target, axis)
    losses = np.empty(t.size, dtype=F64)
    if loss_kernel("cross_entropy_rows", rows.size)(rows, t, losses):
        raise ce._range_error(fname, t, rows.shape[1], axis)
    return np.full((1,) * len(shape), losses.sum(), dtype=F64)


def _ce_backward_block(logits: np.ndarray, target: np.ndarray, g: Any, *, axis: int,
                       reduction: str, count: int) -> np.ndarray:
    """The NumPy path's backward on one block, with the sample count of the whole array."""
    fname = "cross_entropy.backward"
    ce = _losses.cross_entropy
    a, ax, rows, t, shape = ce._args(fname, logits, target, axis)
    gv, step, c = _losses._grad_factors(g, reduction, shape, count, 1.0, F64, fname)
    gx = np.empty_like(rows)
    if loss_kernel("cross_entropy_backward_rows", rows.size)(rows, t, gv, step, c, gx):
        raise ce._range_error(fname, t, rows.shape[1], axis)
    if ax != a.value.ndim - 1:
        gx = np.ascontiguousarray(np.moveaxis(gx.reshape(shape + (rows.shape[1],)), -1, ax))
    return _losses._store(gx.reshape(a.value.shape), a, None)


def _cross_entropy(func: Any, method: str, fname: str, args: tuple, kw: dict) -> da.Array:
    axis = kw.pop("axis", -1)
    reduction = _losses._check_reduction(kw.pop("reduction", "mean"), fname)
    logits, target = args[:2]
    x = _lift(logits)
    dtype = result_dtype(x.dtype, fname, "logits")
    if x.ndim == 0:
        raise ValueError(f"{fname}(): logits must have at least one dimension (the classes), "
                         "got a 0-d array")
    x = _known(x, fname, "logits")
    ax = normalize_axis(axis, x.ndim, fname)
    tdt = _dtype(target)
    if tdt.kind not in "iu":
        raise TypeError(f"{fname}(): target has dtype {tdt}, expected integer class indices "
                        "(class probabilities are not supported)")
    shape = x.shape[:ax] + x.shape[ax + 1:]
    if _shape(target) != shape:
        raise ValueError(f"{fname}(): target has shape {_shape(target)}, expected {shape}: the shape "
                         f"of logits {x.shape} without axis {axis}")
    # A row of logits, all the classes of one sample, is one block's.
    x = x.rechunk(_whole_axis(x, ax, dtype.itemsize))
    red_chunks = x.chunks[:ax] + x.chunks[ax + 1:]
    t = _known(_lift(target), fname, "target").rechunk(red_chunks)
    ind = tuple(range(x.ndim))
    red = ind[:ax] + ind[ax + 1:]
    count = math.prod(shape)
    if method == "backward":
        gv, gind = _loss_grad_output(args[2], reduction, t, fname, "the loss")
        if gind:  # one factor per sample: indexed as the target
            gind = red
        return da.blockwise(_ce_backward_block, ind, x, ind, t, red, gv, gind, concatenate=True,
                            axis=ax, reduction=reduction, count=count, dtype=dtype,
                            meta=_meta(x, dtype), token=fname)
    if reduction == "none":
        return da.blockwise(_task(func, "__call__", (None, None), axis=ax, reduction="none"),
                            red, x, ind, t, red, concatenate=True, dtype=dtype,
                            meta=_meta(x, dtype, len(red)), token=fname)
    parts = da.blockwise(_ce_partial, red, x, ind, t, red, concatenate=True, axis=ax,
                         adjust_chunks={i: 1 for i in red}, dtype=F64, meta=_meta(x, F64, len(red)))
    return _reduce(parts, count, reduction, dtype, fname)
