"""fastact against the plain NumPy expression and PyTorch (when installed).

Every elementwise function (forward, backward, value_and_grad) and the
softmax family (rows of 64 and 1024, forward and backward), float32 and
float64, on 2^10, 2^16 and 2^24 elements, and relu, sigmoid and gelu on
strided float32 views of 2^24 elements (row slices, x[::2], a transpose,
NCHW -> NHWC, attention heads to the batch axes) into contiguous outputs::

    python -m pytest bench/ --benchmark-only --benchmark-group-by=param:name
    python -m pytest bench/ --benchmark-only -k "float32 and 16777216 and sigmoid"

PyTorch runs with the same number of threads as Numba's pool.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pytest

import fastact as fa
from fastact._baselines import BASELINES, log_softmax, softmax, softmax_backward

SIZES = [1 << 10, 1 << 16, 1 << 24]
DTYPES = [np.float32, np.float64]

ENTRIES = [(f.name, f, BASELINES[f.name]) for f in fa.ELEMENTWISE]
ENTRIES.append(("gelu_tanh", fa.gelu, BASELINES["gelu_tanh"]))
NAMES = [e[0] for e in ENTRIES]

try:
    import torch

    torch.set_num_threads(numba.get_num_threads())
    F = torch.nn.functional
    # the PyTorch call for each entry (allocating; parameters as in BASELINES)
    TORCH = {
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "relu6": F.relu6,
        "leaky_relu": F.leaky_relu, "elu": F.elu, "celu": F.celu, "selu": F.selu, "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "silu": F.silu, "swish": F.silu,
        "mish": F.mish, "softplus": F.softplus, "softsign": F.softsign, "logsigmoid": F.logsigmoid,
        "hardtanh": F.hardtanh, "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish,
        "tanhshrink": F.tanhshrink, "softshrink": F.softshrink, "hardshrink": F.hardshrink,
        "threshold": lambda t: F.threshold(t, 0.1, 20.0),
    }
except ImportError:  # PyTorch is optional
    torch = None
    TORCH = {}

IMPLS = ["fastact", "numpy"] + (["torch"] if torch is not None else [])


@functools.cache
def _data(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return ((rng.standard_normal(n) * 3).astype(dtype), rng.standard_normal(n).astype(dtype))


@pytest.fixture(params=ENTRIES, ids=NAMES)
def entry(request):
    return request.param


@pytest.fixture(params=SIZES, ids=lambda n: f"n={n}")
def size(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.mark.parametrize("impl", IMPLS)
def test_forward(benchmark, entry, size, dtype, impl):
    name, f, (bf, _, params) = entry
    x, _ = _data(size, dtype)
    out = np.empty_like(x)
    if impl == "fastact":
        f(x, out=out, **params)
        benchmark(lambda: f(x, out=out, **params))
    elif impl == "numpy":
        with np.errstate(all="ignore"):
            benchmark(lambda: bf(x))
    else:
        tx = torch.from_numpy(x)
        benchmark(lambda: TORCH[name](tx))


@pytest.mark.parametrize("impl", IMPLS)
def test_backward(benchmark, entry, size, dtype, impl):
    name, f, (bf, bg, params) = entry
    x, g = _data(size, dtype)
    out = np.empty_like(x)
    if impl == "fastact":
        f.backward(g, x, out=out, **params)
        benchmark(lambda: f.backward(g, x, out=out, **params))
    elif impl == "numpy":
        with np.errstate(all="ignore"):
            benchmark(lambda: g * bg(x))
    else:  # autograd: forward and backward through PyTorch's own kernels
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)

        def run():
            t = tx.detach().requires_grad_(True)
            TORCH[name](t).backward(tg)
            return t.grad

        benchmark(run)


@pytest.mark.parametrize("impl", ["fastact", "numpy"])
def test_value_and_grad(benchmark, entry, size, dtype, impl):
    name, f, (bf, bg, params) = entry
    x, _ = _data(size, dtype)
    outs = (np.empty_like(x), np.empty_like(x))
    if impl == "fastact":
        f.value_and_grad(x, out=outs, **params)
        benchmark(lambda: f.value_and_grad(x, out=outs, **params))
    else:
        with np.errstate(all="ignore"):
            benchmark(lambda: (bf(x), bg(x)))


@pytest.mark.parametrize("cols", [64, 1024])
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "softmax_backward"])
@pytest.mark.parametrize("impl", IMPLS)
def test_softmax_rows(benchmark, cols, op, dtype, impl):
    x, g = _data(1 << 24, dtype)
    x, g = x.reshape(-1, cols), g.reshape(-1, cols)
    out = np.empty_like(x)
    y = fa.softmax(x)
    if impl == "fastact":
        calls = {"softmax": lambda: fa.softmax(x, out=out),
                 "log_softmax": lambda: fa.log_softmax(x, out=out),
                 "softmax_backward": lambda: fa.softmax.backward(g, y=y, out=out)}
    elif impl == "numpy":
        calls = {"softmax": lambda: softmax(x), "log_softmax": lambda: log_softmax(x),
                 "softmax_backward": lambda: softmax_backward(g, y)}
    else:
        tx, tg, ty, to = (torch.from_numpy(a) for a in (x, g, y, out))
        calls = {"softmax": lambda: torch.softmax(tx, -1, out=to),
                 "log_softmax": lambda: torch.log_softmax(tx, -1, out=to),
                 "softmax_backward": lambda: torch._softmax_backward_data(tg, ty, -1, ty.dtype)}
    calls[op]()
    benchmark(calls[op])


def _layouts(x: np.ndarray) -> dict:
    """Strided views of a flat array: rows, a strided last axis, a transpose,
    an NCHW -> NHWC permutation and (batch, seq, heads, dim) -> (batch, heads,
    seq, dim) (the row and tile kernels' cases)."""
    n = x.size
    return {
        "slice": x.reshape(-1, 2048)[:, :1024],
        "step2": x[::2],
        "transposed": x.reshape(-1, 2048).T,
        "nhwc": x[:n // 4096 * 4096].reshape(-1, 64, 8, 8).transpose(0, 2, 3, 1),
        "heads": x[:n // 65536 * 65536].reshape(-1, 128, 8, 64).transpose(0, 2, 1, 3),
    }


@pytest.mark.parametrize("layout", ["slice", "step2", "transposed", "nhwc", "heads"])
@pytest.mark.parametrize("name", ["relu", "sigmoid", "gelu"])
@pytest.mark.parametrize("impl", IMPLS)
def test_strided(benchmark, layout, name, impl):
    """f(view, out=contiguous) on strided float32 views of 2^24 elements."""
    f = getattr(fa, name)
    x, _ = _data(1 << 24, np.float32)
    v = _layouts(x)[layout]
    out = np.empty(v.shape, v.dtype)
    if impl == "fastact":
        f(v, out=out)
        benchmark(lambda: f(v, out=out))
    elif impl == "numpy":
        bf = BASELINES[name][0]
        with np.errstate(all="ignore"):
            benchmark(lambda: np.copyto(out, bf(v)))
    else:
        tv = torch.from_numpy(x).as_strided(v.shape, [s // v.itemsize for s in v.strides])
        to = torch.from_numpy(out)
        benchmark(lambda: to.copy_(TORCH[name](tv)))
