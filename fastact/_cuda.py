"""The GPU backend: fastact's functions on arrays in GPU memory.

``fastact._dispatch`` hands every call whose arrays expose
``__cuda_array_interface__`` to :func:`call`. The kernels are those of
``fastact._cuda_kernels``, generated from the same definitions as the CPU
kernels. Only Numba (with the ``numba-cuda`` package) is needed: CuPy and
PyTorch are never imported here; when the caller's arrays come from them,
their modules are already loaded and are used to make results of their type.

Type rules
    The arrays of a call stay on their device; nothing is copied to the host.
    The result has the type of the first array argument: a CuPy array for
    CuPy arrays, a PyTorch tensor for PyTorch CUDA tensors, a Numba device
    array for Numba device arrays and for any other producer of
    ``__cuda_array_interface__``. A 0-d input gives a 0-d array (not a host
    scalar, which would need a synchronization), and so do the losses'
    'mean' and 'sum' reductions. The dtype rules are the CPU's (float32 and
    float64 native, float16 computed in float32, bool and integers promoted
    to float64). ``out=`` takes a GPU array of the result's shape and dtype,
    of any strides.

Memory
    Results and temporaries are allocated by the library that made the input
    (CuPy's memory pool, PyTorch's caching allocator, on their current
    stream) so that they come from the pool the caller's program already
    uses, on the input's device; for Numba device arrays and other producers,
    by ``numba.cuda.device_array``. Contiguous inputs are read in place;
    others are first copied to a contiguous array on the device.

Stream policy
    Kernels run on the producer's current stream: CuPy's
    ``cupy.cuda.get_current_stream()``, PyTorch's
    ``torch.cuda.current_stream(device)``, the stream a Numba device array is
    bound to (else Numba's default stream), and for other producers the
    stream named in their ``__cuda_array_interface__``. Work the caller
    queued on that stream before the call is complete when the kernels run,
    and work queued after it sees their results, with no synchronization of
    the host. The one exception is ``cross_entropy`` with a GPU ``target``:
    it reads back the number of out-of-range targets, to raise ``ValueError``
    as the CPU does, which waits for that stream.

Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the same kernels as
Python on the host, for testing; its arrays are host memory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import numbers
import sys
import warnings
from typing import Any

import numba
import numpy as np

from fastact._arrays import F64, compute_dtype, normalize_axis, result_dtype
from fastact._losses import check_target
from fastact._prelu import channel_axis

INSTALL = 'pip install "fastact[cuda]"'

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

# Threads per block of the elementwise kernels. The simulator runs every
# thread as a Python thread: there, blocks are small and grids short (the
# kernels' grid-stride loops cover any length with any grid).
_THREADS = 32 if SIMULATOR else 256
_MAX_BLOCKS = 2 if SIMULATOR else None  # None: 32 blocks per multiprocessor


def _require(fname: str):
    """The kernels module, or a RuntimeError saying what is missing."""
    if not SIMULATOR:
        if importlib.util.find_spec("numba_cuda") is None:
            raise RuntimeError(
                f"{fname}(): the arguments are GPU arrays, and fastact's GPU kernels need the "
                f"numba-cuda package, which is not installed. Install it with {INSTALL}")
        from numba import cuda

        if not cuda.is_available():
            raise RuntimeError(
                f"{fname}(): the arguments are GPU arrays, but no CUDA driver or GPU is usable "
                "in this process (numba.cuda.is_available() is False). Install the NVIDIA "
                f"driver, and the CUDA libraries with {INSTALL}")
    from fastact import _cuda_kernels

    return _cuda_kernels


def _toolkit_errors() -> tuple:
    """Exceptions that mean a CUDA library (NVVM, NVRTC, the driver) was not found."""
    errors = []
    with contextlib.suppress(ImportError):
        from numba.cuda.cudadrv.error import CudaSupportError, NvvmSupportError

        errors += [CudaSupportError, NvvmSupportError]
    with contextlib.suppress(ImportError):
        from cuda.pathfinder import DynamicLibNotFoundError

        errors.append(DynamicLibNotFoundError)
    return tuple(errors)


def call(func: Any, method: str, args: tuple, kwargs: dict) -> Any:
    """Run ``func.method(*args, **kwargs)`` on the GPU arrays among ``args``."""
    from fastact import _losses, _prelu, _rowwise
    from fastact._elementwise import Elementwise

    fname = _fname(func, method)
    kernels = _require(fname)
    if isinstance(func, Elementwise):
        run = _elementwise
    elif isinstance(func, _rowwise._SoftmaxFamily):
        run = _softmax
    elif isinstance(func, _rowwise._Glu):
        run = _glu
    elif isinstance(func, _rowwise._Maxout):
        run = _maxout
    elif isinstance(func, _prelu._PReLU):
        run = _prelu_call
    elif isinstance(func, _losses._MSELoss):
        run = _mse_loss
    elif isinstance(func, _losses._CrossEntropy):
        run = _cross_entropy
    else:
        raise TypeError(f"{fname}() is not available for GPU arrays")
    try:
        with _quiet():
            return run(kernels, func, method, fname, args, dict(kwargs))
    except _toolkit_errors() as e:
        raise RuntimeError(f"{fname}(): a CUDA library the GPU kernels need is missing ({e}). "
                           f"Install them with {INSTALL}") from e


def _fname(func: Any, method: str) -> str:
    name = getattr(func, "name", type(func).__name__)
    return name if method == "__call__" else f"{name}.{method}"


@contextlib.contextmanager
def _quiet():
    """Under the simulator the kernels run as Python with NumPy scalars, whose
    intermediate overflows (handled by the code) would warn; compiled kernels
    never do. The simulator's threads do not inherit np.errstate, hence the
    warnings filter."""
    if not SIMULATOR:
        yield
        return
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --- GPU arrays ---------------------------------------------------------------

def _interface(obj: Any) -> dict:
    if type(obj).__module__.split(".")[0] == "torch" and getattr(obj, "requires_grad", False):
        obj = obj.detach()  # PyTorch refuses the interface of a tensor that requires grad
    if SIMULATOR and getattr(obj, "__cuda_ndarray__", False) \
            and not hasattr(obj, "__cuda_array_interface__"):
        return sim_interface(obj)
    return obj.__cuda_array_interface__


def sim_interface(arr: Any) -> dict:
    """The ``__cuda_array_interface__`` of a simulator device array (whose
    memory is host memory), which the simulator does not define."""
    a = arr._ary
    return {"shape": a.shape, "strides": a.strides, "typestr": a.dtype.str,
            "data": (a.ctypes.data, not a.flags.writeable), "version": 3,
            "stream": None}


def _layout(shape: tuple, strides: tuple | None, itemsize: int) -> str:
    """'C', 'F' (contiguous in that order; 'C' when both) or '' (neither)."""
    if strides is None:
        return "C"
    def contiguous(dims):
        step = itemsize
        for n, s in dims:
            if n != 1 and s != step:
                return False
            step *= n
        return True
    pairs = list(zip(shape, strides))
    if contiguous(reversed(pairs)):
        return "C"
    if contiguous(pairs):
        return "F"
    return ""


def _c_strides(shape: tuple, itemsize: int) -> tuple:
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class _Array:
    """A GPU argument: its memory as (pointer, shape, strides, dtype) and a Numba
    device array over it (``nb``), made on demand."""

    __slots__ = ("obj", "ptr", "shape", "strides", "dtype", "readonly", "_nb")

    def __init__(self, obj: Any, fname: str, argname: str, desc: dict | None = None):
        d = _interface(obj) if desc is None else desc
        if d.get("mask") is not None:
            raise TypeError(f"{fname}(): {argname} is a masked GPU array, which is not supported")
        self.obj = obj
        self.ptr, self.readonly = int(d["data"][0] or 0), bool(d["data"][1])
        self.shape = tuple(int(n) for n in d["shape"])
        self.dtype = np.dtype(d["typestr"])
        if not self.dtype.isnative:
            raise TypeError(f"{fname}(): {argname} has dtype {self.dtype} in non-native byte order")
        st = d.get("strides")
        self.strides = _c_strides(self.shape, self.dtype.itemsize) if st is None \
            else tuple(int(s) for s in st)
        self._nb = obj if desc is None and getattr(obj, "__cuda_ndarray__", False) else None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def layout(self) -> str:
        return _layout(self.shape, self.strides, self.dtype.itemsize)

    def span(self) -> tuple[int, int]:
        """The byte range [lo, hi) the array's elements occupy."""
        if self.size == 0:
            return self.ptr, self.ptr
        lo = self.ptr + sum(min(0, (n - 1) * s) for n, s in zip(self.shape, self.strides))
        hi = self.ptr + sum(max(0, (n - 1) * s) for n, s in zip(self.shape, self.strides))
        return lo, hi + self.dtype.itemsize

    def same(self, other: "_Array") -> bool:
        return (self.ptr, self.shape, self.strides, self.dtype) == \
            (other.ptr, other.shape, other.strides, other.dtype)

    def overlaps(self, other: "_Array") -> bool:
        a, b = self.span(), other.span()
        return a[0] < b[1] and b[0] < a[1]

    def view(self, shape: tuple, strides: tuple, offset: int = 0) -> "_Array":
        """Another view of the same memory."""
        desc = {"shape": tuple(shape), "strides": tuple(strides), "typestr": self.dtype.str,
                "data": (self.ptr + offset, self.readonly), "version": 3}
        return _Array(self.obj, "", "", desc)

    def flat(self) -> "_Array":
        """A 1-D view in memory order (the array must be contiguous, or of one element)."""
        return self.view((self.size,), (self.dtype.itemsize,))

    def moved(self, axis: int) -> "_Array":
        """A view with ``axis`` last (np.moveaxis(a, axis, -1))."""
        order = [i for i in range(self.ndim) if i != axis] + [axis]
        return self.view(tuple(self.shape[i] for i in order), tuple(self.strides[i] for i in order))

    def broadcast(self, shape: tuple) -> "_Array":
        """A view broadcast to ``shape``: stride 0 along the axes it repeats."""
        dims = [(1, 0)] * (len(shape) - self.ndim) + list(zip(self.shape, self.strides))
        return self.view(tuple(shape), tuple(0 if n == 1 else s for n, s in dims))

    def reshape_c(self, shape: tuple) -> "_Array":
        """A view of another shape; the array must be C-contiguous."""
        return self.view(shape, _c_strides(shape, self.dtype.itemsize))

    @property
    def nb(self):
        """A Numba device array over the same memory (no copy)."""
        if self._nb is None:
            self._nb = _numba_array(self)
        return self._nb


def _numba_array(a: _Array):
    desc = {"shape": a.shape, "strides": a.strides, "typestr": a.dtype.str,
            "data": (a.ptr, False), "version": 3}
    if SIMULATOR:
        return _simulated(desc, a.obj)
    from numba import cuda

    # sync=False: the kernels run on the producer's stream (see the stream policy)
    return cuda.from_cuda_array_interface(desc, owner=a.obj, sync=False)


def _simulated(desc: dict, owner: Any):
    """The simulator's device array over host memory given by a pointer."""
    import ctypes

    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    dtype = np.dtype(desc["typestr"])
    shape, strides = desc["shape"], desc["strides"]
    if math.prod(shape) == 0:
        return FakeCUDAArray(np.empty(shape, dtype))
    lo = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    hi = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) + dtype.itemsize
    buf = (ctypes.c_char * (hi - lo)).from_address(desc["data"][0] + lo)
    buf._owner = owner  # keeps the memory alive as long as the view
    arr = np.ndarray(shape, dtype, buffer=buf, offset=-lo, strides=strides)
    return FakeCUDAArray(arr)


def _producer(obj: Any) -> str:
    top = type(obj).__module__.split(".")[0]
    return top if top in ("cupy", "torch") else "numba"


class _Device:
    """The device, stream and allocator of a call, from its first GPU array."""

    def __init__(self, kernels, lead: Any):
        from numba import cuda

        self.cuda = cuda
        self.kernels = kernels
        self.lead = lead
        self.kind = _producer(lead)
        self.index = None
        if self.kind == "torch":
            self.index = lead.device.index
        elif self.kind == "cupy":
            self.index = lead.device.id
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "_Device":
        cuda = self.cuda
        if self.index is not None and not SIMULATOR:
            self._stack.enter_context(cuda.gpus[self.index])
        self.stream = self._stream()
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _stream(self):
        cuda = self.cuda
        if SIMULATOR:
            return cuda.default_stream()
        if self.kind == "torch":
            ptr = sys.modules["torch"].cuda.current_stream(self.lead.device).cuda_stream
        elif self.kind == "cupy":
            cupy = sys.modules["cupy"]
            with cupy.cuda.Device(self.index):
                ptr = cupy.cuda.get_current_stream().ptr
        else:
            bound = getattr(self.lead, "stream", 0)
            if getattr(self.lead, "__cuda_ndarray__", False) and bound:
                return bound  # a Numba device array bound to a stream
            ptr = _interface(self.lead).get("stream")
            if ptr is None:
                return cuda.default_stream()
        if ptr in (0, 1):  # the legacy default stream
            return cuda.legacy_default_stream()
        if ptr == 2:
            return cuda.per_thread_default_stream()
        return cuda.external_stream(ptr)

    # --- allocation -----------------------------------------------------------

    def empty(self, shape: tuple, dtype: np.dtype, order: str = "C") -> tuple[Any, _Array]:
        """A new array of the caller's type: (the object, its _Array)."""
        shape = tuple(shape)
        if self.kind == "cupy":
            cupy = sys.modules["cupy"]
            with cupy.cuda.Device(self.index):
                obj = cupy.empty(shape, dtype=dtype, order=order)
        elif self.kind == "torch":
            torch = sys.modules["torch"]
            tdt = getattr(torch, dtype.name)
            if order == "F" and len(shape) > 1:
                obj = torch.empty(shape[::-1], dtype=tdt, device=self.lead.device)
                obj = obj.permute(*range(len(shape) - 1, -1, -1))
            else:
                obj = torch.empty(shape, dtype=tdt, device=self.lead.device)
        else:
            obj = self.cuda.device_array(shape, dtype=dtype, order=order, stream=self.stream)
        return obj, _Array(obj, "", "")

    def no_mask(self) -> _Array:
        """A boolean array the row kernels take, and do not read, when there is no mask."""
        key = (self.index, SIMULATOR)
        if key not in _NO_MASK:
            obj = self.cuda.device_array((1, 1), dtype=np.bool_)
            _NO_MASK[key] = _Array(obj, "", "")
        return _NO_MASK[key]

    def temp(self, shape: tuple, dtype: np.dtype, order: str = "C") -> _Array:
        return self.empty(shape, dtype, order)[1]

    def upload(self, values: np.ndarray) -> _Array:
        """A small host array (a scalar parameter) on the device."""
        a = self.temp(values.shape, values.dtype)
        a.nb.bind(self.stream).copy_to_device(values, stream=self.stream)
        return a

    def copy(self, dst: _Array, src: _Array) -> None:
        """dst[...] = src on the device: any strides, a dtype cast, src of dst's shape
        (broadcast views included). Numba's assignment kernel, on the call's stream."""
        if not dst.size:
            return
        if SIMULATOR:
            dst.nb._ary[...] = src.nb._ary
        else:
            dst.nb.bind(self.stream)[...] = src.nb

    def contiguous(self, a: _Array, order: str = "C") -> _Array:
        """``a`` itself when contiguous in ``order``, else a contiguous copy."""
        if a.size <= 1 or a.layout == order:
            return a
        c = self.temp(a.shape, a.dtype, order)
        self.copy(c, a)
        return c

    # --- launching -------------------------------------------------------------

    def grid(self, n: int, threads: int = _THREADS) -> int:
        limit = _MAX_BLOCKS
        if limit is None:
            limit = 32 * self.cuda.get_current_device().MULTIPROCESSOR_COUNT
        return max(1, min(-(-n // threads), limit))

    def launch(self, kernel, n: int, *args) -> None:
        """A grid-stride kernel over n items."""
        if n:
            kernel[self.grid(n), _THREADS, self.stream](*args)

    def launch_rows(self, kernel, rows: int, n: int, *args) -> None:
        """A kernel with one block per row of n entries."""
        if not rows:
            return
        if SIMULATOR:  # a few threads still reduce through shared memory
            threads, blocks = 2, min(rows, 4)
        else:
            threads = 32
            while threads < min(n, self.kernels.BLOCK):
                threads *= 2
            blocks = min(rows, 65535)
        kernel[blocks, threads, self.stream](*args)


# device index -> the placeholder mask of the row kernels
_NO_MASK: dict = {}


def _float_dtype(a: _Array, fname: str, argname: str) -> np.dtype:
    return result_dtype(a.dtype, fname, argname)


def _check_out(out: Any, shape: tuple, dtype: np.dtype, fname: str, argname: str = "out") -> _Array:
    if not hasattr(out, "__cuda_array_interface__"):
        raise TypeError(f"{fname}(): {argname} must be a GPU array like the other arguments, "
                        f"got {type(out).__name__}")
    o = _Array(out, fname, argname)
    if o.shape != tuple(shape):
        raise ValueError(f"{fname}(): {argname} has shape {o.shape}, expected {tuple(shape)}")
    if o.dtype != dtype:
        raise TypeError(f"{fname}(): {argname} has dtype {o.dtype}, expected {dtype}")
    if o.readonly:
        raise ValueError(f"{fname}(): {argname} is read-only")
    return o


class _Dest:
    """Where a kernel writes a result of one shape: ``out``, a new array, or a
    contiguous temporary copied into ``out`` afterwards."""

    def __init__(self, dev: _Device, out: Any, o: _Array | None, shape: tuple, dtype: np.dtype,
                 order: str, inputs: tuple):
        self.dev = dev
        self.out = out
        self.o = o
        if o is None:
            self.obj, self.direct = dev.empty(shape, dtype, order)
            self.target = self.direct
        else:
            self.obj = out
            ok = (o.layout == order or o.size <= 1) and \
                not any(o.overlaps(a) and not o.same(a) for a in inputs)
            self.direct = o if ok else dev.temp(shape, dtype, order)
            self.target = o

    def finish(self) -> Any:
        if self.direct is not self.target:
            self.dev.copy(self.target, self.direct)
        return self.obj


def _grad_output(dev: _Device, g: Any, ga: _Array | None, shape: tuple, order: str,
                 dtype: np.dtype, fname: str, argname: str = "x") -> tuple[_Array, int]:
    """``grad_output`` as a flat array and its step: 0 for one value, 1 for one per element."""
    if ga is None:  # a Python number
        return dev.upload(np.array([g], dtype=dtype)), 0
    _float_dtype(ga, fname, "grad_output")
    if ga.size == 1:
        return ga.view((1,), (ga.dtype.itemsize,)), 0
    if ga.shape != shape:
        try:
            ok = np.broadcast_shapes(ga.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{fname}(): grad_output has shape {ga.shape}, "
                             f"which does not broadcast to the shape {shape} of {argname}")
        full = dev.temp(shape, ga.dtype, order)
        dev.copy(full, ga.broadcast(shape))
        return full.flat(), 1
    return dev.contiguous(ga, order).flat(), 1


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not hasattr(value, "__cuda_array_interface__")


# --- elementwise -----------------------------------------------------------------

def _elementwise(kernels, func, method: str, fname: str, args: tuple, kw: dict) -> Any:
    out = kw.pop("out", None)
    defn = func._defn
    if method == "backward":
        g, x = args
        y = kw.pop("y", None)
        kind, name, value = ("backward", "x", x) if y is None else ("backward_y", "y", y)
    else:
        (value,) = args
        g, name = None, "x"
        kind = {"__call__": "forward", "grad": "grad", "value_and_grad": "value_and_grad"}[method]
    if not hasattr(value, "__cuda_array_interface__"):
        raise TypeError(f"{fname}(): {name} must be a GPU array when the other arguments are, "
                        f"got {type(value).__name__}")
    a = _Array(value, fname, name)
    rdt = _float_dtype(a, fname, name)
    cdt = compute_dtype(rdt)
    params = func._params(method, kw, rdt)
    outs = (out,) if kind != "value_and_grad" else (
        out if isinstance(out, tuple) and len(out) == 2 else None)
    if kind == "value_and_grad" and out is not None and outs is None:
        raise TypeError(f"{fname}(): out must be a tuple of two GPU arrays")
    names = ("out",) if kind != "value_and_grad" else ("out[0]", "out[1]")
    checked = [None if o is None else _check_out(o, a.shape, rdt, fname, n)
               for o, n in zip(outs or (None, None), names)]
    if kind == "value_and_grad" and checked[0] is not None and checked[0].overlaps(checked[1]):
        raise ValueError(f"{fname}(): out[0] and out[1] must not share memory")
    ga = None
    if g is not None and not _number(g):
        ga = _Array(g, fname, "grad_output")
    with _Device(kernels, value) as dev:
        order = "F" if a.layout == "F" and a.ndim > 1 else "C"
        if kind in ("backward", "backward_y"):
            gflat, gstep = _grad_output(dev, g, ga, a.shape, order, cdt, fname, name)
        xin = dev.contiguous(a, order)
        inputs = (a,) if ga is None else (a, ga)
        dests = [_Dest(dev, o, c, a.shape, rdt, order, inputs)
                 for o, c in zip(outs or (None, None), checked)][:1 if kind != "value_and_grad" else 2]
        kern = kernels.elementwise(defn, kind, cdt)
        n = a.size
        xf = xin.flat().nb if n else None
        if n:
            if kind in ("forward", "grad"):
                dev.launch(kern, n, xf, dests[0].direct.flat().nb, params)
            elif kind == "value_and_grad":
                dev.launch(kern, n, xf, dests[0].direct.flat().nb, dests[1].direct.flat().nb,
                           params)
            else:
                dev.launch(kern, n, gflat.nb, gstep, xf, dests[0].direct.flat().nb, params)
        results = tuple(d.finish() for d in dests)
    return results if kind == "value_and_grad" else results[0]


# --- the softmax family, glu, maxout -------------------------------------------------

def _rows_of(dev: _Device, a: _Array, axis: int) -> _Array:
    """``a`` with ``axis`` last as C-contiguous 2-D rows (a view when it already is)."""
    m = dev.contiguous(a.moved(axis), "C")
    n = m.shape[-1] if m.ndim else 1
    return m.reshape_c((m.size // n if n else 0, n))


class _RowsDest:
    """The result of a row kernel: rows of ``moved_shape`` (axis last), delivered
    with the axis back in place into ``out`` or a new array."""

    def __init__(self, dev: _Device, out: Any, o: _Array | None, shape: tuple, axis: int,
                 dtype: np.dtype, inputs: tuple):
        self.dev, self.axis = dev, axis
        if o is None:
            self.obj, self.target = dev.empty(shape, dtype)
        else:
            self.obj, self.target = out, o
        moved = self.target.moved(axis)
        n = moved.shape[-1]
        direct = moved.layout == "C" and not any(self.target.overlaps(a) for a in inputs)
        self.rows_shape = (moved.size // n if n else 0, n)
        self.rows = moved.reshape_c(self.rows_shape) if direct else dev.temp(self.rows_shape, dtype)
        self.moved = moved
        self.direct = direct

    def finish(self) -> Any:
        if not self.direct:
            self.dev.copy(self.moved, self.rows.reshape_c(self.moved.shape))
        return self.obj


def _prepare(a: _Array, fname: str, name: str = "x") -> None:
    if a.ndim == 0:
        raise ValueError(f"{fname}(): {name} must have at least one dimension, got a 0-d array")


def _softmax(kernels, func, method: str, fname: str, args: tuple, kw: dict) -> Any:
    if method == "jacobian":
        raise TypeError(f"{fname}() is not available for GPU arrays; use backward() for "
                        "vector-Jacobian products")
    out, axis, where = kw.pop("out", None), kw.pop("axis", -1), kw.pop("where", None)
    if method == "backward":
        g, x = args
        y = kw.pop("y", None)
        name, value = ("x", x) if y is None else ("y", y)
    else:
        (value,), g, y, name = args, None, None, "x"
    a = _Array(value, fname, name)
    _prepare(a, fname, name)
    rdt = _float_dtype(a, fname, name)
    cdt = compute_dtype(rdt)
    ax = normalize_axis(axis, a.ndim, fname)
    o = None if out is None else _check_out(out, a.shape, rdt, fname)
    ga = None
    if g is not None:
        ga = _Array(g, fname, "grad_output")
        _float_dtype(ga, fname, "grad_output")
        if ga.shape != a.shape:
            raise ValueError(f"{fname}(): grad_output has shape {ga.shape}, "
                             f"expected the shape {a.shape} of {name}")
    wa = None
    if where is not None:
        wa = _Array(where, fname, "where")
        if wa.dtype != np.bool_:
            raise TypeError(f"{fname}(): where must be a boolean array, got dtype {wa.dtype}")
        try:
            ok = np.broadcast_shapes(wa.shape, a.shape) == a.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{fname}(): where has shape {wa.shape}, which does not "
                             f"broadcast to the shape {a.shape} of x")
    sign = cdt.type(func._sign)
    with _Device(kernels, value) as dev:
        rows = _rows_of(dev, a, ax)
        if wa is not None:
            mask = _rows_of(dev, wa.broadcast(a.shape), ax)
            masked = True
        else:
            mask, masked = dev.no_mask(), False
        inputs = tuple(v for v in (a, ga, wa) if v is not None)
        dest = _RowsDest(dev, out, o, a.shape, ax, rdt, inputs)
        r, n = rows.shape
        if method == "backward":
            if y is None:
                yr = dev.temp((r, n), cdt)
                dev.launch_rows(kernels.kernel("softmax_rows", cdt), r, n, rows.nb, yr.nb, sign,
                                func._mode, mask.nb, masked)
            else:
                yr = rows
            gr = _rows_of(dev, ga, ax)
            dev.launch_rows(kernels.kernel("softmax_backward_rows", cdt), r, n, gr.nb, yr.nb,
                            dest.rows.nb, sign, func._mode, mask.nb, masked)
        else:
            dev.launch_rows(kernels.kernel("softmax_rows", cdt), r, n, rows.nb, dest.rows.nb,
                            sign, func._mode, mask.nb, masked)
        return dest.finish()


def _split_rows(kernels, func, method: str, fname: str, args: tuple, kw: dict,
                k: int | None) -> Any:
    """glu (k None: halves) and maxout (groups of k): rows of n in, rows of n // k out."""
    out, axis = kw.pop("out", None), kw.pop("axis", -1)
    if method == "backward":
        g, x = args
    else:
        (x,), g = args, None
    a = _Array(x, fname, "x")
    _prepare(a, fname)
    rdt = _float_dtype(a, fname, "x")
    cdt = compute_dtype(rdt)
    ax = normalize_axis(axis, a.ndim, fname)
    n = a.shape[ax]
    if k is None:
        if n % 2:
            raise ValueError(f"{fname}(): the length of axis {axis} must be even, got {n}")
        div = 2
    else:
        div = _pool_size(k, n, axis, fname)
    small = list(a.shape)
    small[ax] //= div
    small = tuple(small)
    ga = None
    if g is not None:
        ga = _Array(g, fname, "grad_output")
        _float_dtype(ga, fname, "grad_output")
        if ga.shape != small:
            raise ValueError(f"{fname}(): grad_output has shape {ga.shape}, expected {small}")
    shape = a.shape if method == "backward" else small
    o = None if out is None else _check_out(out, shape, rdt, fname)
    name = ("glu" if k is None else "maxout") + ("_backward_rows" if method == "backward" else "_rows")
    with _Device(kernels, x) as dev:
        rows = _rows_of(dev, a, ax)
        inputs = (a,) if ga is None else (a, ga)
        dest = _RowsDest(dev, out, o, shape, ax, rdt, inputs)
        kern = kernels.kernel(name, cdt)
        extra = () if k is None else (div,)
        if method == "backward":
            gr = _rows_of(dev, ga, ax)
            dev.launch(kern, gr.size, gr.nb, rows.nb, dest.rows.nb, *extra)
        else:
            dev.launch(kern, dest.rows.size, rows.nb, dest.rows.nb, *extra)
        return dest.finish()


def _pool_size(pool_size: Any, n: int, axis: Any, fname: str) -> int:
    if isinstance(pool_size, (bool, np.bool_)) or not isinstance(pool_size, (int, np.integer)):
        raise TypeError(f"{fname}(): pool_size must be a positive integer, got {pool_size!r}")
    k = int(pool_size)
    if k <= 0:
        raise ValueError(f"{fname}(): pool_size must be a positive integer, got {k}")
    if n % k:
        raise ValueError(f"{fname}(): pool_size={k} does not divide the length {n} of axis {axis}")
    return k


def _glu(kernels, func, method, fname, args, kw):
    return _split_rows(kernels, func, method, fname, args, kw, None)


def _maxout(kernels, func, method, fname, args, kw):
    if "pool_size" not in kw:
        raise TypeError(f"{fname}() missing required keyword argument 'pool_size'")
    return _split_rows(kernels, func, method, fname, args, kw, kw.pop("pool_size"))


# --- prelu ---------------------------------------------------------------------------

def _prelu_call(kernels, func, method: str, fname: str, args: tuple, kw: dict) -> Any:
    out, axis = kw.pop("out", None), kw.pop("axis", 1)
    if method == "backward":
        g, x, weight = args
    else:
        (x, weight), g = args, None
    for name, v in (("x", x), ("weight", weight)):
        if not hasattr(v, "__cuda_array_interface__"):
            raise TypeError(f"{fname}(): {name} must be a GPU array when the other arguments "
                            f"are, got {type(v).__name__}")
    a = _Array(x, fname, "x")
    rdt = _float_dtype(a, fname, "x")
    cdt = compute_dtype(rdt)
    w = _Array(weight, fname, "weight")
    _float_dtype(w, fname, "weight")
    nw = w.size
    ax, c = channel_axis(fname, a.shape, nw, axis)
    if nw == 1 or ax is None:
        c, inner = 1, a.size
    else:
        inner = math.prod(a.shape[ax + 1:])
    ga = None
    if g is not None and not _number(g):
        ga = _Array(g, fname, "grad_output")
    o = None if out is None else _check_out(out, a.shape, rdt, fname)
    with _Device(kernels, x) as dev:
        xin = dev.contiguous(a, "C")
        wf = dev.contiguous(w, "C").flat() if nw else w
        inputs = tuple(v for v in (a, w, ga) if v is not None)
        dest = _Dest(dev, out, o, a.shape, rdt, "C", inputs)
        n = a.size
        if method == "__call__":
            if n:
                dev.launch(kernels.kernel("prelu_flat", cdt), n, xin.flat().nb, wf.nb, c, inner,
                           dest.direct.flat().nb)
            return dest.finish()
        if method == "grad":
            gflat, gstep = dev.upload(np.ones(1, cdt)), 0
        else:
            gflat, gstep = _grad_output(dev, g, ga, a.shape, "C", cdt, fname)
        threads = _THREADS
        per = n // c if c else 0
        nbx = dev.grid(per, threads) if per else 1
        ncy = min(c, 65535) if c else 1
        parts = dev.temp((nbx, c), F64)
        if n:
            kernels.kernel("prelu_backward_flat", cdt)[(nbx, ncy), threads, dev.stream](
                gflat.nb, gstep, xin.flat().nb, wf.nb, c, inner, dest.direct.flat().nb, parts.nb)
        gx = dest.finish()
        if method == "grad":
            return gx
        gw_obj, gw = dev.empty(w.shape, rdt)
        if n:
            dev.launch(kernels.kernel("prelu_weight_grad", cdt), c, parts.nb, gw.reshape_c((nw,)).nb)
        elif nw:
            dev.copy(gw, dev.upload(np.zeros(w.shape, rdt)))
        return gx, gw_obj


# --- losses ------------------------------------------------------------------------------

def _check_reduction(reduction: Any, fname: str) -> str:
    from fastact._losses import REDUCTIONS

    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{fname}(): reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")
    return reduction


def _loss_factor(dev: _Device, grad_output: Any, reduction: str, shape: tuple, count: int,
                 factor: float, dtype: np.dtype, fname: str) -> tuple[_Array, int, float]:
    """As fastact._losses._grad_factors, on the device."""
    ga = None if _number(grad_output) else _Array(grad_output, fname, "grad_output")
    if reduction != "none":
        if ga is not None and ga.ndim != 0:
            raise ValueError(f"{fname}(): grad_output must be a scalar with reduction="
                             f"{reduction!r}, got an array of shape {ga.shape}")
        if reduction == "mean":
            factor = factor / count if count else math.nan
        if ga is None:
            return dev.upload(np.array([grad_output], dtype=dtype)), 0, factor
        _float_dtype(ga, fname, "grad_output")
        return ga.view((1,), (ga.dtype.itemsize,)), 0, factor
    if ga is None:
        return dev.upload(np.array([grad_output], dtype=dtype)), 0, factor
    flat, step = _grad_output(dev, None, ga, shape, "C", dtype, fname, "the loss")
    return flat, step, factor


def _reduce_to(dev: _Device, kernels, values_parts_kernel: str, count: int, reduction: str,
               dtype: np.dtype, cdt: np.dtype, *args) -> Any:
    """A 0-d array of ``dtype``: the float64 sum (mean) of block partial sums, rounded once."""
    obj, res = dev.empty((), dtype)
    if count == 0:
        dev.copy(res, dev.upload(np.array(math.nan if reduction == "mean" else 0.0, dtype)))
        return obj
    nb = dev.grid(count)
    parts = dev.temp((nb,), F64)
    kernels.kernel(values_parts_kernel, cdt)[nb, _THREADS, dev.stream](*args, parts.nb)
    div = float(count) if reduction == "mean" else 1.0
    kernels.kernel("total_of_parts", cdt)[1, 1, dev.stream](parts.nb, div, res.reshape_c((1,)).nb)
    return obj


def _mse_loss(kernels, func, method: str, fname: str, args: tuple, kw: dict) -> Any:
    out, reduction = kw.pop("out", None), _check_reduction(kw.pop("reduction", "mean"), fname)
    pred, target = args[0], args[1]
    p = _Array(pred, fname, "pred")
    rdt = _float_dtype(p, fname, "pred")
    cdt = compute_dtype(rdt)
    if not hasattr(target, "__cuda_array_interface__"):
        raise TypeError(f"{fname}(): target must be a GPU array like pred, got {type(target).__name__}")
    t = _Array(target, fname, "target")
    _float_dtype(t, fname, "target")
    if t.shape != p.shape:
        raise ValueError(f"{fname}(): target has shape {t.shape}, expected the shape "
                         f"{p.shape} of pred")
    with _Device(kernels, pred) as dev:
        pf, tf = dev.contiguous(p).flat(), dev.contiguous(t).flat()
        n = p.size
        if method == "backward":
            grad_output = args[2] if len(args) > 2 else 1.0
            g, step, c = _loss_factor(dev, grad_output, reduction, p.shape, n, 2.0, cdt, fname)
            o = None if out is None else _check_out(out, p.shape, rdt, fname)
            dest = _Dest(dev, out, o, p.shape, rdt, "C", (p, t))
            dev.launch(kernels.kernel("squared_error_backward", cdt), n, pf.nb, tf.nb, g.nb, step,
                       float(c), dest.direct.flat().nb)
            return dest.finish()
        if reduction != "none":
            if out is not None:
                raise ValueError(f"{fname}(): out= needs reduction='none'; the loss is a scalar")
            return _reduce_to(dev, kernels, "squared_error_parts", n, reduction, rdt, cdt,
                              pf.nb, tf.nb)
        o = None if out is None else _check_out(out, p.shape, rdt, fname)
        dest = _Dest(dev, out, o, p.shape, rdt, "C", (p, t))
        dev.launch(kernels.kernel("squared_error", cdt), n, pf.nb, tf.nb, dest.direct.flat().nb)
        return dest.finish()


def _cross_entropy(kernels, func, method: str, fname: str, args: tuple, kw: dict) -> Any:
    out, axis = kw.pop("out", None), kw.pop("axis", -1)
    reduction = _check_reduction(kw.pop("reduction", "mean"), fname)
    logits, target = args[0], args[1]
    a = _Array(logits, fname, "logits")
    rdt = _float_dtype(a, fname, "logits")
    cdt = compute_dtype(rdt)
    if a.ndim == 0:
        raise ValueError(f"{fname}(): logits must have at least one dimension (the classes), "
                         "got a 0-d array")
    ax = normalize_axis(axis, a.ndim, fname)
    if not hasattr(target, "__cuda_array_interface__"):
        raise TypeError(f"{fname}(): target must be a GPU array like logits, got {type(target).__name__}")
    t = _Array(target, fname, "target")
    shape = check_target(fname, t.dtype, t.shape, a.shape, ax, axis)
    n = a.shape[ax]
    with _Device(kernels, logits) as dev:
        rows = _rows_of(dev, a, ax)
        tf = dev.contiguous(t).flat() if t.size else t
        nrows = t.size
        bad = dev.upload(np.zeros(1, np.int32))
        if method == "backward":
            grad_output = args[2] if len(args) > 2 else 1.0
            g, step, c = _loss_factor(dev, grad_output, reduction, shape, nrows, 1.0, F64, fname)
            o = None if out is None else _check_out(out, a.shape, rdt, fname)
            losses = dev.temp((nrows,), F64)
            _check_targets(dev, kernels, cdt, rows, tf, losses, bad, t, n, axis, fname)
            dest = _RowsDest(dev, out, o, a.shape, ax, rdt, (a, t))
            dev.launch_rows(kernels.kernel("cross_entropy_backward_rows", cdt), nrows, n,
                            rows.nb, tf.nb, g.nb, step, float(c), dest.rows.nb)
            return dest.finish()
        if out is not None:
            if reduction != "none":
                raise ValueError(f"{fname}(): out= needs reduction='none'; the loss is a scalar")
        o = None if out is None else _check_out(out, shape, rdt, fname)
        losses = dev.temp((nrows,), F64)
        _check_targets(dev, kernels, cdt, rows, tf, losses, bad, t, n, axis, fname)
        if reduction != "none":
            return _reduce_to(dev, kernels, "sum_blocks", nrows, reduction, rdt, cdt, losses.nb)
        dest = _Dest(dev, out, o, shape, rdt, "C", (a, t))
        dev.copy(dest.direct, losses.reshape_c(shape))
        return dest.finish()


def _check_targets(dev, kernels, cdt, rows, tf, losses, bad, t, n, axis, fname) -> None:
    """Compute the per-row losses, and raise for targets outside [0, n) (this waits
    for the stream: the error is raised where the CPU raises it)."""
    if not t.size:
        return
    dev.launch_rows(kernels.kernel("cross_entropy_rows", cdt), t.size, n, rows.nb, tf.nb,
                    losses.nb, bad.nb)
    count = bad.nb.copy_to_host(stream=dev.stream)
    dev.stream.synchronize()
    if count[0]:
        host = tf.nb.copy_to_host(stream=dev.stream)
        dev.stream.synchronize()
        wrong = host[(host < 0) | (host >= n)][0]
        valid = f"[0, {n - 1}]" if n else "empty (the logits have no classes)"
        raise ValueError(f"{fname}(): target holds the class index {wrong}, outside the valid range "
                         f"{valid} for {n} classes along axis {axis} of the logits")
