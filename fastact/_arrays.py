"""Argument handling shared by every function: dtypes, shapes, ``out=``.

The rules (SPEC section 4): float32 and float64 are computed natively;
float16 is computed in float32 and returned as float16; bool and integer
arrays are promoted to float64, as ``np.tanh`` does; every other dtype is a
``TypeError`` that names it. Inputs are never modified unless passed as
``out=``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from fastact._dispatch import check_host

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
F16 = np.dtype(np.float16)


def result_dtype(dtype: np.dtype, fname: str, argname: str) -> np.dtype:
    """The dtype fastact returns for an input of ``dtype``."""
    kind = dtype.kind
    if kind == "f" and dtype.itemsize in (2, 4, 8):
        return dtype.newbyteorder("=")
    if kind in "biu":
        return F64
    raise TypeError(
        f"{fname}(): {argname} has dtype {dtype}, expected a real floating-point "
        "(float16, float32, float64), integer or boolean array"
    )


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the kernels run in for a result of ``dtype``."""
    return F32 if dtype == F16 else dtype


class Arg:
    """One array argument, converted for the kernels.

    ``value`` is a native-byte-order ndarray of the compute dtype (a view of
    the caller's array when no conversion is needed, never written to);
    ``dtype`` is the dtype of the result; ``scalar`` says whether the caller
    passed a 0-d value, in which case a NumPy scalar is returned.
    """

    __slots__ = ("value", "dtype", "scalar")

    def __init__(self, x: Any, fname: str, argname: str, dtype: np.dtype | None = None):
        check_host(x, fname, argname)
        arr = np.asarray(x)
        self.scalar = arr.ndim == 0
        self.dtype = result_dtype(arr.dtype, fname, argname) if dtype is None else dtype
        cdt = compute_dtype(self.dtype)
        if arr.dtype != cdt:  # also converts non-native byte order
            if arr.dtype.kind not in "fbiu":
                result_dtype(arr.dtype, fname, argname)  # raises TypeError
            arr = arr.astype(cdt)
        self.value = arr


def check_out(out: Any, shape: tuple, dtype: np.dtype, fname: str, argname: str = "out") -> np.ndarray:
    """Validate a caller's ``out=`` array against the result's shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fname}(): {argname} must be a NumPy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{fname}(): {argname} has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{fname}(): {argname} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{fname}(): {argname} is read-only")
    return out


def finish(result: np.ndarray, scalar: bool, out: np.ndarray | None) -> Any:
    """Return ``out`` if given, a NumPy scalar for 0-d input, else the array."""
    if out is not None:
        return out
    if scalar:
        return result[()]
    return result


def real_param(value: Any, fname: str, name: str) -> float:
    """A scalar real parameter (bool excluded), as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
            return float(value)
        raise TypeError(f"{fname}(): {name} must be a real number, got {value!r}")
    return float(value)


def normalize_axis(axis: Any, ndim: int, fname: str, argname: str = "axis") -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{fname}(): {argname} must be an integer, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{fname}(): {argname}={axis} is out of range for an array of {ndim} dimension(s)")
    return axis % ndim


def contiguous_flat(*arrays: np.ndarray) -> list[np.ndarray] | None:
    """Flat views of arrays that share one memory layout, else None.

    All C-contiguous, or all F-contiguous, of one shape: then element i of each
    flat view is the same logical element, and a flat parallel loop is valid.
    """
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        return None
    if all(a.flags.c_contiguous for a in arrays):
        return [a.reshape(-1) for a in arrays]
    if all(a.flags.f_contiguous for a in arrays):
        return [a.reshape(-1, order="F") for a in arrays]
    return None


def same_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    """True when a and b are exactly the same elements (in-place use)."""
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def overlaps(out: np.ndarray, inputs: tuple[np.ndarray, ...]) -> bool:
    """True when out may share memory with an input without being it exactly."""
    return any(np.may_share_memory(out, a) and not same_buffer(out, a) for a in inputs)
