"""Device selection: which kernels serve the arrays of a call.

NumPy arrays, scalars and anything ``np.asarray`` accepts run on the CPU
kernels. Two other kinds of array are recognised by their protocols, without
importing the libraries that made them:

* GPU arrays: objects exposing ``__cuda_array_interface__`` (CuPy arrays,
  PyTorch CUDA tensors, Numba device arrays);
* Dask arrays: objects exposing ``__dask_graph__``.

Every public entry point calls :func:`backend` with its array arguments;
when it names another backend module, the call is handed to that module's
``call(func, method, args, kwargs)`` unchanged. A backend module that is not
part of this installation is a ``RuntimeError`` that says so, never a silent
copy to the host.
"""

from __future__ import annotations

import importlib
from typing import Any

# kind -> the module that serves it
_MODULES = {"cuda": "fastact._cuda", "dask": "fastact._dask"}
_WHAT = {"cuda": "a GPU array", "dask": "a Dask array"}


def is_gpu_array(x: Any) -> bool:
    return hasattr(x, "__cuda_array_interface__")


def is_dask_array(x: Any) -> bool:
    return hasattr(x, "__dask_graph__") and hasattr(x, "chunks")


def kind(x: Any) -> str:
    """'cuda', 'dask' or 'cpu' (anything else: NumPy arrays, scalars, lists)."""
    if is_gpu_array(x):
        return "cuda"
    if is_dask_array(x):
        return "dask"
    return "cpu"


def check_host(x: Any, fname: str, argname: str) -> None:
    """Raise for arrays the CPU kernels cannot take (a last line of defence:
    the entry points route such arrays to their backend before this)."""
    k = kind(x)
    if k != "cpu":
        raise RuntimeError(f"{fname}(): {argname} is {_WHAT[k]} ({type(x).__module__}."
                           f"{type(x).__name__}), which the CPU kernels do not take")


def backend(fname: str, **arrays: Any):
    """The backend module for a call's arrays, or None for the CPU kernels.

    GPU arrays may not be mixed with host or Dask arrays (``TypeError``);
    Dask arrays may be combined with host arrays, which join the graph.
    """
    kinds = {}
    for name, value in arrays.items():
        if value is not None and not isinstance(value, (float, int)):
            kinds[name] = kind(value)
    found = set(kinds.values()) - {"cpu"}
    if not found:
        return None
    if "cuda" in found and len(set(kinds.values())) > 1:
        gpu = [k for k, v in kinds.items() if v == "cuda"]
        other = [k for k, v in kinds.items() if v != "cuda"]
        raise TypeError(
            f"{fname}(): arguments live on different devices: {', '.join(gpu)} on the GPU, "
            f"{', '.join(other)} not"
        )
    (k,) = found
    try:
        return importlib.import_module(_MODULES[k])
    except ModuleNotFoundError as e:
        if e.name != _MODULES[k]:
            raise
        name = next(n for n, v in kinds.items() if v == k)
        raise RuntimeError(
            f"{fname}(): {name} is {_WHAT[k]}, and this installation of fastact has no "
            f"{'GPU' if k == 'cuda' else 'Dask'} backend. Pass a NumPy array."
        ) from None

