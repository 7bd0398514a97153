"""Losses: mean squared error and softmax cross-entropy.

Each loss is an object: call it for the loss, ``.backward(...)`` for its
gradient with respect to the prediction (the logits), times an optional
``grad_output``. The per-row and per-element work runs in the kernels of
``fastact._loss_kernels``; sums are accumulated in float64 and rounded once
to the result dtype (float32 stays float32, float16 is computed in float32,
integer and bool predictions are promoted to float64).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastact import _loss_kernels
from fastact._arrays import F64, Arg, check_out, finish, normalize_axis
from fastact._dispatch import backend, check_host
from fastact._loss_kernels import kernel
from fastact._rowwise import _short_arrays

REDUCTIONS = ("mean", "sum", "none")


def check_target(fname: str, dtype: np.dtype, shape: tuple, logits_shape: tuple, ax: int,
                 axis: Any) -> tuple:
    """Class-index targets: integers, of the logits' shape without the class axis ``ax``."""
    if dtype.kind not in "iu":
        raise TypeError(f"{fname}(): target has dtype {dtype}, expected integer class indices "
                        "(class probabilities are not supported)")
    expected = logits_shape[:ax] + logits_shape[ax + 1:]
    if tuple(shape) != expected:
        raise ValueError(f"{fname}(): target has shape {tuple(shape)}, expected {expected}: the shape "
                         f"of logits {logits_shape} without axis {axis}")
    return expected


def _check_reduction(reduction: Any, fname: str) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{fname}(): reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")
    return reduction


# The magnitude from which a float64 rounds to inf in each result dtype: the
# largest finite value plus half its spacing (the midpoint rounds to even, inf).
_OVERFLOW = {np.dtype(t): 1.5 * float(np.finfo(t).max) - 0.5 * float(np.nextafter(np.finfo(t).max, t(0)))
             for t in (np.float16, np.float32)}


def _reduced(total: float, count: int, reduction: str, dtype: np.dtype) -> np.generic:
    """The float64 sum ``total`` of ``count`` losses as a NumPy scalar of ``dtype``.

    The mean of no losses is NaN, as in PyTorch (computed without a 0/0
    warning); a value beyond the dtype's range is inf (without the overflow
    warning of the cast).
    """
    if reduction == "mean":
        total = total / count if count else math.nan
    if abs(total) >= _OVERFLOW.get(dtype, math.inf):
        total = math.copysign(math.inf, total)
    return dtype.type(total)


def _grad_factors(grad_output: Any, reduction: str, shape: tuple, count: int, factor: float,
                  dtype: np.dtype, fname: str) -> tuple[np.ndarray, int, float]:
    """``(g, step, c)``: the kernels multiply element i's gradient by ``c * g[i * step]``.

    'mean' and 'sum' take a scalar ``grad_output`` (the loss is a scalar):
    one value, step 0, and c = factor (divided by ``count`` for 'mean').
    'none' takes an array that broadcasts to ``shape``, the shape of the
    unreduced loss: one value per element, step 1, c = factor.
    """
    g = Arg(grad_output, fname, "grad_output", dtype=dtype)
    if reduction != "none":
        if g.value.ndim != 0:
            raise ValueError(f"{fname}(): grad_output must be a scalar with reduction="
                             f"{reduction!r}, got an array of shape {g.value.shape}")
        if reduction == "mean":
            factor = factor / count if count else math.nan
        return g.value.reshape(1), 0, factor
    try:
        gfull = np.broadcast_to(g.value, shape)
    except ValueError:
        raise ValueError(f"{fname}(): grad_output has shape {g.value.shape}, which does not "
                         f"broadcast to the shape {shape} of the loss") from None
    return np.ascontiguousarray(gfull).reshape(-1), 1, factor


_INTP = np.dtype(np.intp)


def _short(a: Any, *others: Any) -> bool:
    """Whether a loss call may take the short path: ``a`` and ``others``
    (None or arrays) as the row kernels' short path takes them (see
    fastact._rowwise._short_arrays), below the loss kernels' parallel
    threshold, and no out=. The short path calls the serial kernel's compiled
    entry point (KernelFamily.run_serial) and skips the argument handling,
    which costs several times the kernel on small arrays; anything else, and
    every error, goes the regular way."""
    return _short_arrays(a, (*others, None), _loss_kernels.PARALLEL_THRESHOLD)


def _short_factor(grad_output: Any, reduction: str, count: int, factor: float,
                  dtype: np.dtype) -> tuple | None:
    """_grad_factors for the short path: ``(g, step, c)`` for a float
    grad_output with a reduced loss, or a C-contiguous array of the loss's
    dtype with 'none' (the caller checks its shape); else None."""
    if reduction != "none":
        if type(grad_output) is not float:
            return None
        return np.array([grad_output], dtype), 0, factor / count if reduction == "mean" else factor
    if type(grad_output) is not np.ndarray or grad_output.dtype is not dtype \
            or not grad_output.flags.c_contiguous:
        return None
    return grad_output.ravel(), 1, factor


class _MSELoss:
    """Mean squared error.

    .. math:: \\ell = \\operatorname{reduce}_i\\,(p_i - t_i)^2

    ``reduction='mean'`` averages over every element (the default, as
    PyTorch), ``'sum'`` adds them, ``'none'`` returns the squared errors with
    the shape of ``pred``. ``target`` must have the shape of ``pred`` and is
    cast to its dtype. ``backward(pred, target, grad_output=1.0)`` returns
    :math:`\\partial\\ell/\\partial p = 2(p - t)` times ``grad_output``
    (divided by the number of elements for 'mean'); with 'none',
    ``grad_output`` is an array that broadcasts to the shape of ``pred``.

    >>> float(fastact.mse_loss(np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0])))
    4.333333333333333
    >>> fastact.mse_loss.backward(np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0]))
    array([0.        , 1.33333333, 2.        ])
    """

    __name__ = name = "mse_loss"
    torch = "F.mse_loss"

    def __reduce__(self) -> str:
        return self.name  # pickled by reference: the module global of that name

    def __repr__(self) -> str:
        return "<fastact loss mse_loss(pred, target, reduction='mean')>"

    def _args(self, fname: str, pred: Any, target: Any) -> tuple[Arg, np.ndarray, np.ndarray]:
        p = Arg(pred, fname, "pred")
        t = Arg(target, fname, "target", dtype=p.dtype)
        if t.value.shape != p.value.shape:
            raise ValueError(f"{fname}(): target has shape {t.value.shape}, expected the shape "
                             f"{p.value.shape} of pred")
        return p, np.ascontiguousarray(p.value).reshape(-1), np.ascontiguousarray(t.value).reshape(-1)

    def __call__(self, pred: Any, target: Any, *, reduction: str = "mean",
                 out: np.ndarray | None = None) -> Any:
        if out is None and type(reduction) is str and _short(pred, target):
            pf, tf = pred.ravel(), target.ravel()
            if reduction == "none":
                res = np.empty_like(pred)
                kernel.run_serial("squared_error", pf, tf, res.ravel())
                return res
            if reduction in REDUCTIONS:
                total = kernel.run_serial("squared_error_sum", pf, tf)
                return _reduced(total, pf.size, reduction, pred.dtype)
        fname = "mse_loss"
        other = backend(fname, pred=pred, target=target, out=out)
        if other is not None:
            return other.call(self, "__call__", (pred, target), {"reduction": reduction, "out": out})
        _check_reduction(reduction, fname)
        p, pf, tf = self._args(fname, pred, target)
        if reduction != "none":
            if out is not None:
                raise ValueError(f"{fname}(): out= needs reduction='none'; the loss is a scalar")
            total = kernel("squared_error_sum", pf.size)(pf, tf)
            return _reduced(total, pf.size, reduction, p.dtype)
        if out is not None:
            check_out(out, p.value.shape, p.dtype, fname)
        res = np.empty_like(pf)
        kernel("squared_error", pf.size)(pf, tf, res)
        return _store(res.reshape(p.value.shape), p, out)

    def backward(self, pred: Any, target: Any, grad_output: Any = 1.0, *, reduction: str = "mean",
                 out: np.ndarray | None = None) -> Any:
        """The gradient ``grad_output * d loss / d pred``, the shape of pred."""
        if out is None and type(reduction) is str and reduction in REDUCTIONS and _short(pred, target):
            f = _short_factor(grad_output, reduction, pred.size, 2.0, pred.dtype)
            if f is not None and (reduction != "none" or grad_output.shape == pred.shape):
                gx = np.empty_like(pred)
                kernel.run_serial("squared_error_backward", pred.ravel(), target.ravel(), *f, gx.ravel())
                return gx
        fname = "mse_loss.backward"
        _check_reduction(reduction, fname)
        other = backend(fname, pred=pred, target=target, grad_output=grad_output, out=out)
        if other is not None:
            return other.call(self, "backward", (pred, target, grad_output), {"reduction": reduction, "out": out})
        p, pf, tf = self._args(fname, pred, target)
        g, step, c = _grad_factors(grad_output, reduction, p.value.shape, pf.size, 2.0,
                                   pf.dtype, fname)
        if out is not None:
            check_out(out, p.value.shape, p.dtype, fname)
        gx = np.empty_like(pf)
        kernel("squared_error_backward", pf.size)(pf, tf, g, step, c, gx)
        return _store(gx.reshape(p.value.shape), p, out)


def _store(result: np.ndarray, a: Arg, out: np.ndarray | None) -> Any:
    """Cast (float16) and copy into ``out`` when given; a NumPy scalar for 0-d input.

    A float32 result beyond the float16 range rounds to inf, without the
    overflow warning of the cast.
    """
    with np.errstate(over="ignore"):
        if out is not None:
            out[...] = result
            return out
        if result.dtype != a.dtype:
            result = result.astype(a.dtype)
    return finish(result, a.scalar, None)


class _CrossEntropy:
    """Softmax cross-entropy with class-index targets.

    .. math:: \\ell_i = -\\log \\frac{e^{x_{i,t_i}}}{\\sum_j e^{x_{i,j}}}
       = \\log \\sum_j e^{x_{i,j} - m_i} - (x_{i,t_i} - m_i),\\quad m_i = \\max_j x_{i,j}

    A fused log-softmax and negative log-likelihood, stable for any finite
    logits (1e30 included). ``axis`` is the class axis (default -1, the last;
    PyTorch's ``F.cross_entropy`` uses axis 1). ``target`` holds integer class
    indices in ``[0, n)``, n the length of ``axis``, with the shape of the
    logits without that axis. ``reduction`` is 'mean' (over the samples, the
    default), 'sum' or 'none' (one loss per sample). Class weights,
    ``ignore_index`` and label smoothing are not supported.

    ``backward(logits, target, grad_output=1.0)`` returns
    :math:`(\\mathrm{softmax}(x) - \\mathrm{onehot}(t))` times ``grad_output``
    (divided by the number of samples for 'mean'), the shape of the logits.
    NaN in a row, a row of -inf, or a row with +inf gives NaN, as in PyTorch.

    >>> logits = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> round(float(fastact.cross_entropy(logits, np.array([0, 2]))), 6)
    0.860645
    >>> fastact.cross_entropy.backward(logits[:1], np.array([0]))
    array([[-0.15620527,  0.1141952 ,  0.04201007]])
    """

    __name__ = name = "cross_entropy"
    torch = "F.cross_entropy"

    def __reduce__(self) -> str:
        return self.name  # pickled by reference: the module global of that name

    def __repr__(self) -> str:
        return "<fastact loss cross_entropy(logits, target, axis=-1, reduction='mean')>"

    def _args(self, fname: str, logits: Any, target: Any, axis: Any):
        """The logits as rows (class axis last), the targets as one intp per row."""
        a = Arg(logits, fname, "logits")
        x = a.value
        if x.ndim == 0:
            raise ValueError(f"{fname}(): logits must have at least one dimension (the classes), "
                             "got a 0-d array")
        ax = normalize_axis(axis, x.ndim, fname)
        check_host(target, fname, "target")
        t = np.asarray(target)
        shape = check_target(fname, t.dtype, t.shape, x.shape, ax, axis)
        n = x.shape[ax]
        if ax != x.ndim - 1:
            x = np.moveaxis(x, ax, -1)
        rows = np.ascontiguousarray(x).reshape(t.size, n)
        return a, ax, rows, np.ascontiguousarray(t, dtype=np.intp).reshape(-1), shape

    @staticmethod
    def _range_error(fname: str, target: np.ndarray, n: int, axis: Any) -> ValueError:
        bad = target[(target < 0) | (target >= n)][0]
        valid = f"[0, {n - 1}]" if n else "empty (the logits have no classes)"
        return ValueError(f"{fname}(): target holds the class index {bad}, outside the valid range "
                          f"{valid} for {n} classes along axis {axis} of the logits")

    def __call__(self, logits: Any, target: Any, *, axis: int = -1, reduction: str = "mean",
                 out: np.ndarray | None = None) -> Any:
        fast = self._fast_rows(logits, target, axis) \
            if out is None and type(reduction) is str and reduction in REDUCTIONS else None
        if fast is not None:
            losses = np.empty(fast[1].size, dtype=np.float64)
            if not kernel.run_serial("cross_entropy_rows", *fast, losses):
                return _ce_losses(losses, reduction, logits.dtype, logits.shape[:-1], None)
        fname = "cross_entropy"
        other = backend(fname, logits=logits, target=target, out=out)
        if other is not None:
            return other.call(self, "__call__", (logits, target),
                              {"axis": axis, "reduction": reduction, "out": out})
        _check_reduction(reduction, fname)
        a, _, rows, t, shape = self._args(fname, logits, target, axis)
        if out is not None:
            if reduction != "none":
                raise ValueError(f"{fname}(): out= needs reduction='none'; the loss is a scalar")
            check_out(out, shape, a.dtype, fname)
        losses = np.empty(t.size, dtype=np.float64)
        if kernel("cross_entropy_rows", rows.size)(rows, t, losses):
            raise self._range_error(fname, t, rows.shape[1], axis)
        return _ce_losses(losses, reduction, a.dtype, shape, out)

    @staticmethod
    def _fast_rows(logits: Any, target: Any, axis: Any) -> tuple | None:
        """(rows, targets) for the short path (see _short): C-contiguous
        logits with the classes last, and C-contiguous intp targets of their
        shape without it; else None."""
        if (not _short(logits) or type(axis) is not int or not (axis == -1 or axis == logits.ndim - 1)
                or type(target) is not np.ndarray or target.dtype is not _INTP
                or not target.flags.c_contiguous or target.shape != logits.shape[:-1]):
            return None
        return logits.reshape(-1, logits.shape[-1]), target.ravel()

    def backward(self, logits: Any, target: Any, grad_output: Any = 1.0, *, axis: int = -1,
                 reduction: str = "mean", out: np.ndarray | None = None) -> Any:
        """The gradient ``grad_output * d loss / d logits``, the shape of the logits."""
        fast = self._fast_rows(logits, target, axis) \
            if out is None and type(reduction) is str and reduction in REDUCTIONS else None
        if fast is not None:
            f = _short_factor(grad_output, reduction, fast[1].size, 1.0, F64)
            if f is not None and (reduction != "none" or grad_output.shape == target.shape):
                gx = np.empty_like(logits)
                if not kernel.run_serial("cross_entropy_backward_rows", *fast, *f, gx.reshape(fast[0].shape)):
                    return gx
        fname = "cross_entropy.backward"
        _check_reduction(reduction, fname)
        other = backend(fname, logits=logits, target=target, grad_output=grad_output, out=out)
        if other is not None:
            return other.call(self, "backward", (logits, target, grad_output), {"axis": axis, "reduction": reduction, "out": out})
        a, ax, rows, t, shape = self._args(fname, logits, target, axis)
        # The factors are per row (not per element): float64 costs nothing here.
        g, step, c = _grad_factors(grad_output, reduction, shape, t.size, 1.0, F64, fname)
        if out is not None:
            check_out(out, a.value.shape, a.dtype, fname)
        gx = np.empty_like(rows)
        if kernel("cross_entropy_backward_rows", rows.size)(rows, t, g, step, c, gx):
            raise self._range_error(fname, t, rows.shape[1], axis)
        if ax != a.value.ndim - 1:
            gx = np.ascontiguousarray(np.moveaxis(gx.reshape(shape + (rows.shape[1],)), -1, ax))
        return _store(gx.reshape(a.value.shape), a, out)


def _ce_losses(losses: np.ndarray, reduction: str, dtype: np.dtype, shape: tuple,
               out: np.ndarray | None) -> Any:
    """The cross-entropy result from the float64 losses of the rows."""
    if reduction != "none":
        return _reduced(float(losses.sum()), losses.size, reduction, dtype)
    with np.errstate(over="ignore"):  # a loss beyond the dtype's range rounds to inf
        if out is not None:
            out[...] = losses.reshape(shape)
            return out
        return finish(losses.astype(dtype).reshape(shape), len(shape) == 0, None)


mse_loss = _MSELoss()
cross_entropy = _CrossEntropy()
