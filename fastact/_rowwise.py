"""Functions along an axis: the softmax family, GLU and maxout.

Each public object moves the axis last, views the array as rows (copying only
when the input is not already laid out that way), runs one kernel of
``fastact._rowwise_kernels`` and moves the axis back. The softmax family
along a middle axis instead runs column kernels on the array as it is laid
out (see ``_across``), and small calls along the last axis go straight to the
compiled kernel (``_short_rows``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastact._arrays import F32, F64, Arg, check_out, finish, normalize_axis
from fastact._dispatch import backend
from fastact import _rowwise_kernels
from fastact._rowwise_kernels import LOG_SOFTMAX, SOFTMAX, kernel


def _rows(a: np.ndarray, axis: int) -> np.ndarray:
    """``a`` with ``axis`` last, as C-contiguous rows (a view when possible)."""
    if axis == a.ndim - 1 and a.flags.c_contiguous and a.size:
        return a.reshape(-1, a.shape[-1])  # the common case, without moveaxis's cost per call
    m = np.moveaxis(a, axis, -1)
    n = m.shape[-1] if m.ndim else 1
    # the row count spelled out: reshape(-1, 0) is ambiguous for a length-0 axis
    return np.ascontiguousarray(m).reshape(math.prod(m.shape[:-1]), n)


def _moved_shape(shape: tuple, axis: int) -> tuple:
    """``shape`` with ``axis`` moved last."""
    return shape[:axis] + shape[axis + 1:] + (shape[axis],)


def _unrows(rows: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    """The rows of ``_rows`` back in an array of ``shape`` (the input's)."""
    if axis == len(shape) - 1:
        return rows.reshape(shape)
    return np.moveaxis(rows.reshape(_moved_shape(shape, axis)), -1, axis)


# Lines along a middle axis are columns of (outer, n, inner) blocks: from
# this many columns on (inner), the column kernels go down them in place,
# faster than transposing the array into rows and back. Measured on 2^22
# float32, columns of 64 and 1024 (2-core EPYC): the forward pass 0.45-1.04x
# the transposing path below 16 columns, 1.55-3.15x from 16; the backward
# pass, which transposes three arrays, 1.3-3.8x from 2.
_MIN_INNER = {"forward": 16, "backward": 2}


def _across(shape: tuple, axis: int, masked: bool, kind: str) -> bool:
    """Whether the column kernels serve a call: no mask, the axis not the
    last, and at least _MIN_INNER[kind] elements after it in C order."""
    return (not masked and axis < len(shape) - 1
            and math.prod(shape[axis + 1:]) >= _MIN_INNER[kind])


def _cols(a: np.ndarray, axis: int) -> np.ndarray:
    """A C-contiguous ``a`` as (outer, n, inner) blocks, n its length along ``axis``."""
    s = a.shape
    return a.reshape(math.prod(s[:axis]), s[axis], math.prod(s[axis + 1:]))


def _direct_out(out: np.ndarray | None, dtype: np.dtype, *inputs: np.ndarray):
    """``out`` when a kernel can write it directly (C-contiguous, the compute
    dtype, sharing no memory with an input, which the kernels read again
    after writing), else None."""
    if out is None or not out.flags.c_contiguous or out.dtype != dtype:
        return None
    if any(np.may_share_memory(out, a) for a in inputs):
        return None
    return out


def _rows_of_out(out: np.ndarray | None, dtype: np.dtype, axis: int, *inputs: np.ndarray):
    """``out`` as the kernel's rows when the kernel can write it directly.

    That is when it is C-contiguous with the compute dtype, the axis is the
    last one, and it shares no memory with an input (the kernels read a row
    again after writing it). Otherwise None: the result goes through a
    temporary and is copied.
    """
    if out is None or axis != out.ndim - 1 or out.ndim == 0 or _direct_out(out, dtype, *inputs) is None:
        return None
    return out.reshape(-1, out.shape[-1])


def _deliver(result: np.ndarray, arg: Arg, out: np.ndarray | None, fname: str) -> Any:
    """Cast (float16) and copy into ``out`` (validated) or return."""
    if out is not None:
        check_out(out, result.shape, arg.dtype, fname)
        out[...] = result
        return out
    if result.dtype != arg.dtype:
        result = result.astype(arg.dtype)
    return finish(np.ascontiguousarray(result), arg.scalar, None)


def _prepare(x: Any, fname: str, argname: str = "x") -> Arg:
    a = Arg(x, fname, argname)
    if a.value.ndim == 0:
        raise ValueError(f"{fname}(): {argname} must have at least one dimension, got a 0-d array")
    return a


# The kernels' mask argument when there is none (read only where masked).
_NO_MASK = np.ones((1, 1), dtype=np.bool_)

def _short_rows(x: Any, axis: Any, *others: Any) -> bool:
    """True when a call on x (and ``others``, None or arrays that must match
    it) may take the short path along the last axis (see _short_arrays)."""
    return (type(axis) is int and _short_arrays(x, others, _rowwise_kernels.PARALLEL_THRESHOLD)
            and (axis == -1 or axis == x.ndim - 1))


def _short_cols(x: Any, axis: Any, kind: str, *others: Any) -> int | None:
    """The axis, normalized, of a call on x along another axis than the last
    that the column kernels serve (_across) and the short path may take (see
    _short_arrays); else None."""
    if (type(axis) is not int or not _short_arrays(x, others, _rowwise_kernels.PARALLEL_THRESHOLD)
            or not -x.ndim <= axis < x.ndim - 1):
        return None
    ax = axis % x.ndim
    return ax if ax < x.ndim - 1 and _across(x.shape, ax, False, kind) else None


def _short_arrays(x: Any, others: tuple, limit: int) -> bool:
    """The short path's arrays: C-contiguous float32 or float64 arrays of one
    shape and at least one dimension (a 0-d one's results are NumPy scalars,
    from the regular path), below ``limit`` elements (the kernels' parallel
    threshold). ``out`` (the last of ``others``, or None) must also be
    writeable and share no memory with the inputs, which the kernels read
    again after writing."""
    if (type(x) is not np.ndarray or (x.dtype is not F32 and x.dtype is not F64) or not x.ndim
            or not x.flags.c_contiguous or not 0 < x.size < limit):
        return False
    for o in others:
        if o is not None and (type(o) is not np.ndarray or o.dtype is not x.dtype
                              or o.shape != x.shape or not o.flags.c_contiguous):
            return False
    out = others[-1]
    if out is None:
        return True
    if not out.flags.writeable or np.may_share_memory(out, x):
        return False
    for a in others[:-1]:
        if np.may_share_memory(out, a):
            return False
    return True


def _as_rows(a: np.ndarray) -> np.ndarray:
    """A C-contiguous array as rows along its last axis."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


def _short_groups(x: Any, axis: Any, k: int, g: Any = None) -> tuple | None:
    """For glu (k = 2) and maxout (groups of k) on the short path: x as rows
    along its last axis and grad_output (None, or an array of the result's
    shape) as rows of the result; None for a call the short path does not
    take (see _short_rows; no out=)."""
    if not _short_rows(x, axis, None) or x.shape[-1] % k:
        return None
    n = x.shape[-1]
    if g is None:
        return x.reshape(-1, n), None
    if (type(g) is not np.ndarray or g.dtype is not x.dtype or not g.flags.c_contiguous
            or g.shape != x.shape[:-1] + (n // k,)):
        return None
    return x.reshape(-1, n), g.reshape(-1, n // k)


def _run_short(name: str, *args: Any) -> None:
    """The serial kernel ``name`` through its compiled entry point (see
    KernelFamily.run_serial)."""
    kernel.run_serial(name, *args)


class _SoftmaxFamily:
    """softmax, log_softmax and softmin: one kernel, three modes."""

    def __init__(self, name: str, sign: float, mode: int, doc: str, torch: str):
        self.__name__ = self.name = name
        self._sign = sign
        self._signs = {F32: np.float32(sign), F64: np.float64(sign)}  # the kernels' sign, per dtype
        self._mode = mode
        self.torch = torch
        self.__doc__ = doc

    def __reduce__(self) -> str:
        return self.name  # pickled by reference: the module global of that name

    def __repr__(self) -> str:
        return f"<fastact function {self.name}(axis=-1, where=None)>"

    def _mask(self, where: Any, shape: tuple, axis: int, fname: str) -> tuple[np.ndarray, bool]:
        if where is None:
            return _NO_MASK, False
        w = np.asarray(where)
        if w.dtype != np.bool_:
            raise TypeError(f"{fname}(): where must be a boolean array, got dtype {w.dtype}")
        try:
            w = np.broadcast_to(w, shape)
        except ValueError:
            raise ValueError(f"{fname}(): where has shape {w.shape}, which does not "
                             f"broadcast to the shape {shape} of x") from None
        return _rows(w, axis), True

    def __call__(self, x: Any, *, axis: int = -1, where: Any = None,
                 out: np.ndarray | None = None) -> Any:
        if where is None:
            if _short_rows(x, axis, out):
                y = np.empty_like(x) if out is None else out
                _run_short("softmax_rows", _as_rows(x), _as_rows(y), self._signs[x.dtype],
                           self._mode, _NO_MASK, False)
                return y
            ax = _short_cols(x, axis, "forward", out)
            if ax is not None:
                y = np.empty_like(x) if out is None else out
                _run_short("softmax_cols", _cols(x, ax), _cols(y, ax), self._signs[x.dtype], self._mode)
                return y
        fname = self.name
        other = backend(fname, x=x, where=where, out=out)
        if other is not None:
            return other.call(self, "__call__", (x,), {"axis": axis, "where": where, "out": out})
        a = _prepare(x, fname)
        ax = normalize_axis(axis, a.value.ndim, fname)
        if out is not None:
            check_out(out, a.value.shape, a.dtype, fname)
        mask, masked = self._mask(where, a.value.shape, ax, fname)
        if _across(a.value.shape, ax, masked, "forward"):
            v = np.ascontiguousarray(a.value)
            direct = _direct_out(out, v.dtype, v)
            y = np.empty_like(v) if direct is None else direct
            self._forward_cols(v, ax, y)
            return out if direct is not None else _deliver(y, a, out, fname)
        direct = _rows_of_out(out, a.value.dtype, ax, a.value, mask)
        y = self._forward_rows(a.value, ax, mask, masked, direct)
        if direct is not None:
            return out
        return _deliver(_unrows(y, a.value.shape, ax), a, out, fname)

    def _forward_cols(self, x: np.ndarray, axis: int, y: np.ndarray) -> None:
        """y = the function of a C-contiguous x along a middle axis (see _across)."""
        kernel("softmax_cols", x.size)(_cols(x, axis), _cols(y, axis), self._signs[x.dtype], self._mode)

    def _forward_rows(self, x: np.ndarray, axis: int, mask: np.ndarray, masked: bool,
                      y: np.ndarray | None = None) -> np.ndarray:
        rows = _rows(x, axis)
        if y is None:
            y = np.empty_like(rows)
        kernel("softmax_rows", rows.size)(rows, y, rows.dtype.type(self._sign), self._mode, mask, masked)
        return y

    def backward(self, grad_output: Any, x: Any = None, *, y: Any = None, axis: int = -1,
                 where: Any = None, out: np.ndarray | None = None) -> Any:
        """The vector-Jacobian product ``grad_output . dy/dx``.

        Pass the forward input ``x`` or the saved output ``y=`` (no recompute).
        Masked-out entries get gradient 0.
        """
        fname = f"{self.name}.backward"
        if (x is None) == (y is None):
            raise TypeError(f"{fname}() takes the forward input x or the output y=, exactly one of them")
        a = x if y is None else y
        if where is None and _short_rows(a, axis, grad_output, out):
            sign = self._signs[a.dtype]
            if y is None:  # the forward pass first, into a temporary
                y = np.empty_like(x)
                _run_short("softmax_rows", _as_rows(x), _as_rows(y), sign, self._mode, _NO_MASK, False)
            gx = np.empty_like(a) if out is None else out
            _run_short("softmax_backward_rows", _as_rows(grad_output), _as_rows(y), _as_rows(gx),
                       sign, self._mode, _NO_MASK, False)
            return gx
        ax = _short_cols(a, axis, "backward", grad_output, out) if where is None else None
        if ax is not None:
            sign = self._signs[a.dtype]
            if y is None:
                y = np.empty_like(x)
                _run_short("softmax_cols", _cols(x, ax), _cols(y, ax), sign, self._mode)
            gx = np.empty_like(a) if out is None else out
            _run_short("softmax_backward_cols", _cols(grad_output, ax), _cols(y, ax), _cols(gx, ax),
                       sign, self._mode)
            return gx
        other = backend(fname, grad_output=grad_output, x=x, y=y, where=where, out=out)
        if other is not None:
            return other.call(self, "backward", (grad_output, x), {"y": y, "axis": axis, "where": where, "out": out})
        name, value = ("x", x) if y is None else ("y", y)
        a = _prepare(value, fname, name)
        ax = normalize_axis(axis, a.value.ndim, fname)
        g = Arg(grad_output, fname, "grad_output", dtype=a.dtype)
        if g.value.shape != a.value.shape:
            raise ValueError(f"{fname}(): grad_output has shape {g.value.shape}, "
                             f"expected the shape {a.value.shape} of {name}")
        if out is not None:
            check_out(out, a.value.shape, a.dtype, fname)
        mask, masked = self._mask(where, a.value.shape, ax, fname)
        if _across(a.value.shape, ax, masked, "backward"):
            v = np.ascontiguousarray(a.value)
            gv = np.ascontiguousarray(g.value)
            if y is None:
                yv = np.empty_like(v)
                self._forward_cols(v, ax, yv)
            else:
                yv = v
            direct = _direct_out(out, v.dtype, v, gv)
            gx = np.empty_like(v) if direct is None else direct
            kernel("softmax_backward_cols", v.size)(_cols(gv, ax), _cols(yv, ax), _cols(gx, ax),
                                                    self._signs[v.dtype], self._mode)
            return out if direct is not None else _deliver(gx, a, out, fname)
        yr = self._forward_rows(a.value, ax, mask, masked) if y is None else _rows(a.value, ax)
        gr = _rows(g.value, ax)
        direct = _rows_of_out(out, a.value.dtype, ax, a.value, g.value, mask)
        gx = np.empty_like(yr) if direct is None else direct
        kernel("softmax_backward_rows", yr.size)(gr, yr, gx, yr.dtype.type(self._sign),
                                                 self._mode, mask, masked)
        if direct is not None:
            return out
        return _deliver(_unrows(gx, a.value.shape, ax), a, out, fname)

    def jacobian(self, x: Any, *, axis: int = -1, where: Any = None,
                 out: np.ndarray | None = None) -> Any:
        """The full Jacobian, shape ``(..., n, n)``: ``J[..., i, j] = dy_i/dx_j``.

        ``...`` are the other axes of x in order; meant for small n.
        """
        fname = f"{self.name}.jacobian"
        other = backend(fname, x=x, where=where, out=out)
        if other is not None:
            return other.call(self, "jacobian", (x,), {"axis": axis, "where": where, "out": out})
        a = _prepare(x, fname)
        ax = normalize_axis(axis, a.value.ndim, fname)
        mask, masked = self._mask(where, a.value.shape, ax, fname)
        rows = _rows(a.value, ax)
        # The Jacobian of log_softmax is written with the softmax p = e^y.
        p = np.empty_like(rows)
        kernel("softmax_rows", rows.size)(rows, p, rows.dtype.type(self._sign), SOFTMAX, mask, masked)
        n = rows.shape[1]
        jac = np.empty((rows.shape[0], n, n), dtype=rows.dtype)
        kernel("softmax_jacobian_rows", jac.size)(p, jac, rows.dtype.type(self._sign),
                                                  self._mode, mask, masked)
        moved = np.moveaxis(a.value, ax, -1).shape
        return _deliver(jac.reshape(moved + (n,)), a, out, fname)


_MATH_NOTE = """
    Numerically stable: the row maximum is subtracted before exponentiation
    and the sum is accumulated in float64. ``where=`` is a boolean mask
    broadcastable to x: masked-out entries give {masked}, and a row with every
    entry masked gives all {masked}, never NaN. Without a mask a row of all
    -inf, or one containing +inf, gives NaN, as in PyTorch.
"""

softmax = _SoftmaxFamily("softmax", 1.0, SOFTMAX, doc="""Softmax along an axis.

    .. math:: y_i = \\frac{e^{x_i - \\max x}}{\\sum_j e^{x_j - \\max x}}
""" + _MATH_NOTE.format(masked="0") + """
    ``backward(g, y=y)`` computes :math:`y (g - \\sum g y)` from the saved
    output; ``jacobian(x)`` returns :math:`\\mathrm{diag}(y) - y y^T`.

    >>> fastact.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    """, torch="F.softmax")

log_softmax = _SoftmaxFamily("log_softmax", 1.0, LOG_SOFTMAX, doc="""Log-softmax along an axis.

    .. math:: y_i = x_i - \\max x - \\log \\sum_j e^{x_j - \\max x}
""" + _MATH_NOTE.format(masked="-inf") + """
    ``backward(g, y=y)`` computes :math:`g - e^y \\sum g` from the saved output.

    >>> fastact.log_softmax(np.array([1.0, 2.0, 3.0]))
    array([-2.40760596, -1.40760596, -0.40760596])
    """, torch="F.log_softmax")

softmin = _SoftmaxFamily("softmin", -1.0, SOFTMAX, doc="""Softmin along an axis: softmax(-x).

    .. math:: y_i = \\frac{e^{-x_i + \\min x}}{\\sum_j e^{-x_j + \\min x}}
""" + _MATH_NOTE.format(masked="0") + """
    >>> fastact.softmin(np.array([1.0, 2.0, 3.0]))
    array([0.66524096, 0.24472847, 0.09003057])
    """, torch="F.softmin")


class _Glu:
    """Gated linear unit along an axis.

    .. math:: \\mathrm{glu}(x) = a \\otimes \\sigma(b)

    where a and b are the first and second halves of x along ``axis`` (whose
    length must be even). ``backward(g, x)`` returns the gradient for both
    halves, the shape of x.

    >>> fastact.glu(np.array([1.0, 2.0, 0.0, 1.0]))
    array([0.5       , 1.46211716])
    """

    __name__ = name = "glu"
    torch = "F.glu"

    def __reduce__(self) -> str:
        return self.name  # pickled by reference: the module global of that name

    def __repr__(self) -> str:
        return "<fastact function glu(axis=-1)>"

    def _check(self, a: Arg, axis: Any, fname: str) -> int:
        ax = normalize_axis(axis, a.value.ndim, fname)
        n = a.value.shape[ax]
        if n % 2:
            raise ValueError(f"{fname}(): the length of axis {axis} must be even, got {n}")
        return ax

    def __call__(self, x: Any, *, axis: int = -1, out: np.ndarray | None = None) -> Any:
        fast = _short_groups(x, axis, 2) if out is None else None
        if fast is not None:
            y = np.empty(x.shape[:-1] + (x.shape[-1] // 2,), x.dtype)
            _run_short("glu_rows", fast[0], y.reshape(-1, y.shape[-1]))
            return y
        fname = "glu"
        other = backend(fname, x=x, out=out)
        if other is not None:
            return other.call(self, "__call__", (x,), {"axis": axis, "out": out})
        a = _prepare(x, fname)
        ax = self._check(a, axis, fname)
        rows = _rows(a.value, ax)
        y = np.empty((rows.shape[0], rows.shape[1] // 2), dtype=rows.dtype)
        kernel("glu_rows", rows.size)(rows, y)
        shape = a.value.shape
        return _deliver(_unrows(y, shape[:ax] + (shape[ax] // 2,) + shape[ax + 1:], ax), a, out, fname)

    def backward(self, grad_output: Any, x: Any, *, axis: int = -1,
                 out: np.ndarray | None = None) -> Any:
        """The gradient with respect to x of ``sum(grad_output * glu(x))``."""
        fast = _short_groups(x, axis, 2, grad_output) if out is None else None
        if fast is not None:
            gx = np.empty_like(x)
            _run_short("glu_backward_rows", fast[1], fast[0], gx.reshape(fast[0].shape))
            return gx
        fname = "glu.backward"
        other = backend(fname, grad_output=grad_output, x=x, out=out)
        if other is not None:
            return other.call(self, "backward", (grad_output, x), {"axis": axis, "out": out})
        a = _prepare(x, fname)
        ax = self._check(a, axis, fname)
        g = Arg(grad_output, fname, "grad_output", dtype=a.dtype)
        half = list(a.value.shape)
        half[ax] //= 2
        if g.value.shape != tuple(half):
            raise ValueError(f"{fname}(): grad_output has shape {g.value.shape}, expected {tuple(half)}")
        rows = _rows(a.value, ax)
        gx = np.empty_like(rows)
        kernel("glu_backward_rows", rows.size)(_rows(g.value, ax), rows, gx)
        return _deliver(_unrows(gx, a.value.shape, ax), a, out, fname)


class _Maxout:
    """Maxout: the maximum over consecutive groups of ``pool_size`` along an axis.

    An axis of length n becomes n / pool_size (n must be a multiple of
    pool_size); equivalent to ``x.unflatten(axis, (n // k, k)).amax(axis + 1)``
    in PyTorch. NaN propagates. ``backward`` sends each group's gradient to
    its first maximum.

    >>> fastact.maxout(np.array([1.0, 3.0, 2.0, 0.0]), pool_size=2)
    array([3., 2.])
    """

    __name__ = name = "maxout"
    torch = "x.unflatten(axis, (n // k, k)).amax(axis + 1)"

    def __reduce__(self) -> str:
        return self.name  # pickled by reference: the module global of that name

    def __repr__(self) -> str:
        return "<fastact function maxout(pool_size, axis=-1)>"

    def _check(self, a: Arg, pool_size: Any, axis: Any, fname: str) -> tuple[int, int]:
        ax = normalize_axis(axis, a.value.ndim, fname)
        if isinstance(pool_size, (bool, np.bool_)) or not isinstance(pool_size, (int, np.integer)):
            raise TypeError(f"{fname}(): pool_size must be a positive integer, got {pool_size!r}")
        k = int(pool_size)
        n = a.value.shape[ax]
        if k <= 0:
            raise ValueError(f"{fname}(): pool_size must be a positive integer, got {k}")
        if n % k:
            raise ValueError(f"{fname}(): pool_size={k} does not divide the length {n} of axis {axis}")
        return ax, k

    def __call__(self, x: Any, *, pool_size: int, axis: int = -1,
                 out: np.ndarray | None = None) -> Any:
        fast = _short_groups(x, axis, pool_size) \
            if out is None and type(pool_size) is int and pool_size > 0 else None
        if fast is not None:
            y = np.empty(x.shape[:-1] + (x.shape[-1] // pool_size,), x.dtype)
            _run_short("maxout_rows", fast[0], y.reshape(-1, y.shape[-1]), pool_size)
            return y
        fname = "maxout"
        other = backend(fname, x=x, out=out)
        if other is not None:
            return other.call(self, "__call__", (x,), {"pool_size": pool_size, "axis": axis, "out": out})
        a = _prepare(x, fname)
        ax, k = self._check(a, pool_size, axis, fname)
        rows = _rows(a.value, ax)
        y = np.empty((rows.shape[0], rows.shape[1] // k), dtype=rows.dtype)
        kernel("maxout_rows", rows.size)(rows, y, k)
        shape = a.value.shape
        return _deliver(_unrows(y, shape[:ax] + (shape[ax] // k,) + shape[ax + 1:], ax), a, out, fname)

    def backward(self, grad_output: Any, x: Any, *, pool_size: int, axis: int = -1,
                 out: np.ndarray | None = None) -> Any:
        """The gradient with respect to x of ``sum(grad_output * maxout(x))``."""
        fast = _short_groups(x, axis, pool_size, grad_output) \
            if out is None and type(pool_size) is int and pool_size > 0 else None
        if fast is not None:
            gx = np.empty_like(x)
            _run_short("maxout_backward_rows", fast[1], fast[0], gx.reshape(fast[0].shape), pool_size)
            return gx
        fname = "maxout.backward"
        other = backend(fname, grad_output=grad_output, x=x, out=out)
        if other is not None:
            return other.call(self, "backward", (grad_output, x), {"pool_size": pool_size, "axis": axis, "out": out})
        a = _prepare(x, fname)
        ax, k = self._check(a, pool_size, axis, fname)
        g = Arg(grad_output, fname, "grad_output", dtype=a.dtype)
        small = list(a.value.shape)
        small[ax] //= k
        if g.value.shape != tuple(small):
            raise ValueError(f"{fname}(): grad_output has shape {g.value.shape}, expected {tuple(small)}")
        rows = _rows(a.value, ax)
        gx = np.empty_like(rows)
        kernel("maxout_backward_rows", rows.size)(_rows(g.value, ax), rows, gx, k)
        return _deliver(_unrows(gx, a.value.shape, ax), a, out, fname)


glu = _Glu()
maxout = _Maxout()
