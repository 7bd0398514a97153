"""The GPU backend.

The kernels are tested under Numba's CUDA simulator, which must be switched
on before Numba is imported: ``tests/cuda_sim`` runs in a process of its own,
started here. The rest checks, in this process, what happens to a GPU array
where there is no GPU (this machine's case in CI), with a stand-in object
that only exposes ``__cuda_array_interface__``; and, where a real GPU is
present, a round trip through its memory.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import fastact as fa
from fastact import _cuda

HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
#: where conftest.py keeps the simulator's process, started early
SIMULATOR = pytest.StashKey[subprocess.Popen]()
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _gpu_available() -> bool:
    if not HAS_NUMBA_CUDA:
        return False
    from numba import cuda

    return cuda.is_available()


class _FakeGpuArray:
    """Stands for a CuPy / PyTorch CUDA array: exposes __cuda_array_interface__."""

    __cuda_array_interface__ = {"shape": (2,), "typestr": "<f4", "data": (0, False), "version": 3}


def start_simulator_tests() -> subprocess.Popen:
    """``tests/cuda_sim`` in a process of its own, under the simulator.

    The simulator runs the kernels as Python, on one core, for minutes:
    ``conftest.py`` starts it when the test run begins (when this test is
    selected), so that it runs beside the rest of the suite.
    """
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    # output to a file, not a pipe that would fill while nobody reads it
    log = tempfile.TemporaryFile("w+")
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests/cuda_sim", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    run.log = log
    return run


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_kernels_under_the_simulator(request):
    run = request.config.stash.get(SIMULATOR, None) or start_simulator_tests()
    run.wait(timeout=900)
    run.log.seek(0)
    output = run.log.read()
    if run.returncode != 0:
        print(output[-25000:])
    assert run.returncode == 0, "the simulator tests failed (output above)"


# Compiles kernels for the real CUDA target (to PTX, for compute capability 8.0)
# where no GPU is present: NVVM is enough. A device function compiles for the
# current device's architecture, so one is named in its stead. Prints SKIP when
# libNVVM is not installed.
_PTX = r"""
import numba, numpy as np
import numba.cuda.dispatcher as dispatcher
from numba import cuda, types

class _Device:
    compute_capability = (8, 0)

dispatcher.get_current_device = lambda: _Device()
try:
    cuda.compile_ptx(lambda a: None, (types.float32,), device=True, cc=(8, 0))
except Exception as e:  # the CUDA compiler libraries (NVVM, NVRTC) are not installed
    print("SKIP", type(e).__name__, str(e).splitlines()[0])
    raise SystemExit(0)
import fastact as fa
from fastact import _cuda_kernels as K

f32 = np.dtype(np.float32)
v, m = types.float32[::1], types.float32[:, ::1]
for f in fa.ELEMENTWISE:
    for opt in getattr(f, "_options", {None: f}).values():
        d = opt._defn
        p = types.UniTuple(types.float32, len(d.param_names)) if d.param_names else types.Tuple(())
        cuda.compile_ptx(K.elementwise(d, "value_and_grad", f32).py_func, (v, v, v, p), cc=(8, 0))
        cuda.compile_ptx(K.elementwise(d, "backward", f32).py_func, (v, types.int64, v, v, p),
                         cc=(8, 0))
flag = types.boolean[:, ::1]
for name, sig in {
    "softmax_rows": (m, m, types.float32, types.int64, flag, types.boolean),
    "softmax_backward_rows": (m, m, m, types.float32, types.int64, flag, types.boolean),
    "glu_backward_rows": (m, m, m), "maxout_backward_rows": (m, m, m, types.int64),
    "prelu_backward_flat": (v, types.int64, v, v, types.int64, types.int64, v,
                            types.float64[:, ::1]),
    "cross_entropy_rows": (m, types.int64[::1], types.float64[::1], types.int32[::1]),
}.items():
    cuda.compile_ptx(K.kernel(name, f32).py_func, sig, cc=(8, 0))
print("OK")
"""


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_kernels_compile_for_the_gpu():
    run = subprocess.run([sys.executable, "-c", _PTX], cwd=ROOT, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-10000:]
    if run.stdout.startswith("SKIP"):
        pytest.skip(f"the CUDA compiler libraries are not installed: {run.stdout.strip()}")
    assert run.stdout.strip().endswith("OK")


def test_mixed_devices_are_a_type_error():
    with pytest.raises(TypeError, match="different devices"):
        fa.sigmoid.backward(np.ones(2, np.float32), _FakeGpuArray())
    with pytest.raises(TypeError, match="different devices"):
        fa.relu(_FakeGpuArray(), out=np.empty(2, np.float32))
    with pytest.raises(TypeError, match="different devices"):
        fa.prelu(_FakeGpuArray(), np.ones(1, np.float32))
    with pytest.raises(TypeError, match="different devices"):
        fa.softmax(_FakeGpuArray(), where=np.ones(2, bool))


def test_missing_numba_cuda_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(_cuda.importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba_cuda" else real(name, *a))
    monkeypatch.setattr(_cuda, "SIMULATOR", False)
    for call in (lambda: fa.sigmoid(_FakeGpuArray()), lambda: fa.softmax(_FakeGpuArray()),
                 lambda: fa.mse_loss(_FakeGpuArray(), _FakeGpuArray())):
        with pytest.raises(RuntimeError, match='numba-cuda.*pip install "fastact\\[cuda\\]"'):
            call()


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
def test_missing_driver_says_what_is_missing(monkeypatch):
    from numba import cuda

    monkeypatch.setattr(_cuda, "SIMULATOR", False)
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match='no CUDA driver or GPU.*pip install "fastact\\[cuda\\]"'):
        fa.gelu.backward(_FakeGpuArray(), _FakeGpuArray())


# --- on a real GPU -----------------------------------------------------------------

gpu = pytest.mark.skipif(not _gpu_available(), reason="needs a CUDA GPU")


@gpu
def test_gpu_numba_device_arrays_round_trip():
    from numba import cuda

    x = np.linspace(-8, 8, 1001).astype(np.float32)
    d = cuda.to_device(x)
    y = fa.gelu(d)
    assert type(y) is type(d) and y.dtype == np.float32
    np.testing.assert_allclose(y.copy_to_host(), fa.gelu(x), rtol=1e-5, atol=1e-7)
    g = fa.softmax.backward(cuda.to_device(np.ones((7, 143), np.float32)), d[:-1].reshape(7, 143))
    assert g.shape == (7, 143)


@gpu
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_gpu_results_have_the_input_type(library):
    lib = pytest.importorskip(library)
    x = np.linspace(-8, 8, 1000).astype(np.float32)
    if library == "cupy":
        d, back = lib.asarray(x), lambda a: a.get()
    else:
        if not lib.cuda.is_available():
            pytest.skip("this PyTorch has no CUDA")
        d, back = lib.as_tensor(x, device="cuda"), lambda a: a.cpu().numpy()
    for f in (fa.silu, fa.softplus):
        y = f(d)
        assert type(y) is type(d)
        np.testing.assert_allclose(back(y), f(x), rtol=1e-5, atol=1e-7)
    out = f(d, out=d)
    assert out is d
