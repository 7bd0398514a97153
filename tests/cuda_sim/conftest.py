"""The GPU kernels under Numba's CUDA simulator.

These tests run only in a process started with ``NUMBA_ENABLE_CUDASIM=1``
(``tests/test_cuda.py`` starts one): the simulator replaces ``numba.cuda``
when Numba is first imported, so it cannot be switched on inside the main
test run, which skips this directory.

The simulator's device arrays keep their data in host memory and do not
define ``__cuda_array_interface__``; here they get one (their host pointer),
as Numba's real device arrays have, so that fastact routes them to its GPU
backend exactly as it routes real GPU arrays.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"

if not SIMULATOR:
    collect_ignore_glob = ["test_*.py"]
else:
    from numba import cuda
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    from fastact import _cuda

    FakeCUDAArray.__cuda_array_interface__ = property(_cuda.sim_interface)


def gpu(a) -> "FakeCUDAArray":
    """A (simulated) device array holding a copy of the host array ``a``, any strides."""
    a = np.asarray(a)
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return cuda.to_device(a)
    # a strided view of a device copy of its base, with the same strides
    base = a.base if a.base is not None else a
    while getattr(base, "base", None) is not None:
        base = base.base
    d = cuda.to_device(np.ascontiguousarray(base))
    offset = a.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    view = np.ndarray(a.shape, a.dtype, buffer=d._ary, offset=offset, strides=a.strides)
    return FakeCUDAArray(view)


def host(d) -> np.ndarray:
    """A host copy of a (simulated) device array."""
    assert getattr(d, "__cuda_ndarray__", False), f"expected a device array, got {type(d)}"
    return d.copy_to_host()


@pytest.fixture(params=[np.float32, np.float64, np.float16], ids=["float32", "float64", "float16"])
def fdtype(request):
    return np.dtype(request.param)
