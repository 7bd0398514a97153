"""PReLU: a leaky ReLU whose negative slope is a learned weight."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastact import _rowwise_kernels
from fastact._arrays import Arg, check_out, finish, normalize_axis
from fastact._dispatch import backend
from fastact._rowwise import _short_arrays
from fastact._rowwise_kernels import kernel

# Partial sums of the weight's gradient: at most this many per channel, a
# number that depends on the shape only (the same bits on any thread count).
GRAD_TASKS = 64


def channel_axis(fname: str, shape: tuple, nw: int, axis: Any) -> tuple[int | None, int]:
    """The channel axis of x (None below 2 dimensions) and its length, checked
    against the weight's number of elements ``nw`` (1 or one per channel)."""
    if len(shape) >= 2:
        ax = normalize_axis(axis, len(shape), fname)
        c = shape[ax]
    else:
        ax, c = None, 1
    if nw != 1 and nw != c:
        raise ValueError(
            f"{fname}(): weight has {nw} elements, expected 1 or the number of channels "
            f"{c} (the length of axis {axis} of x)" if ax is not None else
            f"{fname}(): weight has {nw} elements; x has fewer than 2 dimensions, "
            "so it has no channel axis and weight must have 1 element")
    return ax, c


class _PReLU:
    """Parametric ReLU.

    .. math:: \\mathrm{prelu}(x) = \\begin{cases} x & x > 0\\\\ w_c\\,x & x \\le 0\\end{cases}

    ``weight`` holds one value, or one per channel, the channels being
    ``axis`` (default 1, as PyTorch; an input of fewer than two dimensions has
    no channel axis and takes a single weight). ``backward(g, x, weight)``
    returns ``(grad_x, grad_weight)``, grad_weight of the weight's shape and
    summed over every other axis. Derivative in x: 1 for x > 0, w for x <= 0.

    >>> fastact.prelu(np.array([[-1.0, 2.0], [-2.0, 1.0]]), np.array([0.1, 0.5]))
    array([[-0.1,  2. ],
           [-0.2,  1. ]])
    """

    __name__ = name = "prelu"
    torch = "F.prelu"

    def __reduce__(self) -> str:
        return self.name  # pickled by reference: the module global of that name

    def __repr__(self) -> str:
        return "<fastact function prelu(x, weight, axis=1)>"

    def _blocks(self, fname: str, x: Any, weight: Any, axis: Any):
        a = Arg(x, fname, "x")
        w = Arg(weight, fname, "weight", dtype=a.dtype)
        nw = w.value.size
        shape = a.value.shape
        ax, c = channel_axis(fname, shape, nw, axis)
        blocks = np.ascontiguousarray(a.value).reshape(_block_shape(shape, nw, ax))
        wv = np.ascontiguousarray(w.value.reshape(-1))
        return a, w, wv, blocks

    def __call__(self, x: Any, weight: Any, *, axis: int = 1, out: np.ndarray | None = None) -> Any:
        bs = _fast_blocks(x, weight, axis, None, out)
        if bs is not None:
            y = np.empty_like(x) if out is None else out
            _run("prelu_blocks", x.reshape(bs), weight.ravel(), y.reshape(bs))
            return y
        fname = "prelu"
        other = backend(fname, x=x, weight=weight, out=out)
        if other is not None:
            return other.call(self, "__call__", (x, weight), {"axis": axis, "out": out})
        a, _, wv, blocks = self._blocks(fname, x, weight, axis)
        if out is not None:
            check_out(out, a.value.shape, a.dtype, fname)
        y = np.empty_like(blocks)
        _run("prelu_blocks", blocks, wv, y)
        return _finish(y.reshape(a.value.shape), a, out)

    def grad(self, x: Any, weight: Any, *, axis: int = 1, out: np.ndarray | None = None) -> Any:
        """The elementwise derivative dy/dx: 1 for x > 0, w for x <= 0."""
        fname = "prelu.grad"
        other = backend(fname, x=x, weight=weight, out=out)
        if other is not None:
            return other.call(self, "grad", (x, weight), {"axis": axis, "out": out})
        return self.backward(np.ones(()), x, weight, axis=axis, out=out)[0]

    def backward(self, grad_output: Any, x: Any, weight: Any, *, axis: int = 1,
                 out: np.ndarray | None = None) -> tuple:
        """``(grad_x, grad_weight)`` for ``sum(grad_output * prelu(x, weight))``."""
        bs = _fast_blocks(x, weight, axis, grad_output, out)
        if bs is not None:
            gx = np.empty_like(x) if out is None else out
            gw = _backward(grad_output.reshape(bs), x.reshape(bs), weight.ravel(), gx.reshape(bs))
            return gx, gw.reshape(weight.shape).astype(x.dtype)
        fname = "prelu.backward"
        other = backend(fname, grad_output=grad_output, x=x, weight=weight, out=out)
        if other is not None:
            return other.call(self, "backward", (grad_output, x, weight), {"axis": axis, "out": out})
        a, w, wv, blocks = self._blocks(fname, x, weight, axis)
        g = Arg(grad_output, fname, "grad_output", dtype=a.dtype)
        try:
            gfull = np.broadcast_to(g.value, a.value.shape)
        except ValueError:
            raise ValueError(f"{fname}(): grad_output has shape {g.value.shape}, which does not "
                             f"broadcast to the shape {a.value.shape} of x") from None
        if out is not None:
            check_out(out, a.value.shape, a.dtype, fname)
        gb = np.ascontiguousarray(gfull).reshape(blocks.shape)
        gx = np.empty_like(blocks)
        gw = _backward(gb, blocks, wv, gx).reshape(w.value.shape).astype(w.dtype)
        return _finish(gx.reshape(a.value.shape), a, out), finish(gw, w.scalar, None)


def _block_shape(shape: tuple, nw: int, ax: int | None) -> tuple:
    """x as (outer, C, inner) blocks, C the channels (1 for a single weight;
    then up to 256 blocks, so that the parallel loops have rows to share)."""
    n = math.prod(shape)
    if nw == 1 or ax is None:
        k = math.gcd(n, 256) or 1
        return (k, 1, n // k)
    return (math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:]))


def _fast_blocks(x: Any, weight: Any, axis: Any, g: Any, out: Any) -> tuple | None:
    """The block shape of a call the short path takes, else None: C-contiguous
    float32 or float64 x (and grad_output, out=) of one shape and dtype, a
    C-contiguous weight of that dtype with 1 element or one per channel (not
    0-d: its gradient is then a NumPy scalar, from the regular path), an
    integer axis, out= writeable and apart from the inputs (or one of x and
    grad_output exactly). The regular path takes, and reports, the rest."""
    in_place = out is not None and (out is x or out is g)  # each element read before written
    if (not _short_arrays(x, (g, None if in_place else out), math.inf)
            or type(weight) is not np.ndarray or weight.dtype is not x.dtype
            or not weight.flags.c_contiguous or not weight.ndim or type(axis) is not int
            or out is not None and (not out.flags.writeable or np.may_share_memory(out, weight))):
        return None
    nw, nd = weight.size, x.ndim
    if nw == 1 or nd < 2:
        return _block_shape(x.shape, 1, None) if nw == 1 else None
    if not -nd <= axis < nd or x.shape[axis] != nw:
        return None
    return _block_shape(x.shape, nw, axis % nd)


def _run(name: str, *args: np.ndarray) -> None:
    """The kernel through its serial entry point below the parallel threshold."""
    if args[0].size < _rowwise_kernels.PARALLEL_THRESHOLD:
        kernel.run_serial(name, *args)
    else:
        kernel(name, args[0].size)(*args)


def _backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """gx from (outer, C, inner) blocks; returns the weight's gradient, one
    float64 per channel (summed over the channels for a single weight)."""
    parts = np.empty((max(1, min(x.shape[0], GRAD_TASKS)), x.shape[1]), dtype=np.float64)
    _run("prelu_backward_blocks", g, x, w, gx, parts)
    gw = parts.sum(axis=0)
    return gw.sum(keepdims=True) if w.size == 1 else gw


def _finish(result: np.ndarray, a: Arg, out: np.ndarray | None) -> Any:
    if out is not None:
        out[...] = result
        return out
    if result.dtype != a.dtype:
        result = result.astype(a.dtype)
    return finish(result, a.scalar, None)


prelu = _PReLU()
