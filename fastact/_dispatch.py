"""Device selection: which kernels serve the arrays of a call.

NumPy arrays, scalars and anything ``np.asarray`` accepts run on the CPU.
Objects exposing ``__cuda_array_interface__`` (CuPy arrays, PyTorch CUDA
tensors, Numba device arrays) are GPU arrays: the CUDA kernels are not part of
this package yet, so they are refused with a clear error instead of being
silently copied to the host.
"""

from __future__ import annotations

from typing import Any


def is_gpu_array(x: Any) -> bool:
    return hasattr(x, "__cuda_array_interface__")


def check_host(x: Any, fname: str, argname: str) -> None:
    """Raise for arrays the CPU kernels cannot take."""
    if is_gpu_array(x):
        raise RuntimeError(
            f"{fname}(): {argname} is a GPU array ({type(x).__module__}.{type(x).__name__}); "
            "this version of fastact has CPU kernels only. Pass a NumPy array "
            "(for example cupy.asnumpy(x) or x.cpu().numpy())."
        )


def same_device(fname: str, **arrays: Any) -> None:
    """Arguments of one call must live on one device."""
    gpu = [k for k, v in arrays.items() if v is not None and is_gpu_array(v)]
    cpu = [k for k, v in arrays.items() if v is not None and not is_gpu_array(v)]
    if gpu and cpu:
        raise TypeError(
            f"{fname}(): arguments live on different devices: {', '.join(gpu)} on the GPU, "
            f"{', '.join(cpu)} on the CPU"
        )
