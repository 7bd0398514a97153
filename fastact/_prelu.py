"""PReLU: a leaky ReLU whose negative slope is a learned weight."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastact._arrays import Arg, check_out, finish, normalize_axis
from fastact._dispatch import backend
from fastact._rowwise_kernels import kernel


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
        xc = np.ascontiguousarray(a.value)
        if nw == 1 or ax is None:
            blocks = xc.reshape(1, 1, -1)
        else:
            outer = int(np.prod(shape[:ax], dtype=np.int64))
            blocks = xc.reshape(outer, c, -1)
        wv = np.ascontiguousarray(w.value.reshape(-1))
        return a, w, wv, blocks

    def __call__(self, x: Any, weight: Any, *, axis: int = 1, out: np.ndarray | None = None) -> Any:
        fname = "prelu"
        other = backend(fname, x=x, weight=weight, out=out)
        if other is not None:
            return other.call(self, "__call__", (x, weight), {"axis": axis, "out": out})
        a, _, wv, blocks = self._blocks(fname, x, weight, axis)
        if out is not None:
            check_out(out, a.value.shape, a.dtype, fname)
        y = np.empty_like(blocks)
        kernel("prelu_blocks", blocks.size)(blocks, wv, y)
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
        parts = np.empty(blocks.shape[:2], dtype=np.float64)
        kernel("prelu_backward_blocks", blocks.size)(gb, blocks, wv, gx, parts)
        gw = parts.sum(axis=0)
        if wv.size == 1:
            gw = gw.sum(keepdims=True)
        gw = gw.reshape(w.value.shape).astype(w.dtype)
        return _finish(gx.reshape(a.value.shape), a, out), finish(gw, w.scalar, None)


def _finish(result: np.ndarray, a: Arg, out: np.ndarray | None) -> Any:
    if out is not None:
        out[...] = result
        return out
    if result.dtype != a.dtype:
        result = result.astype(a.dtype)
    return finish(result, a.scalar, None)


prelu = _PReLU()
