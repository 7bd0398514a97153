"""fastact against the plain NumPy expression, per function, float32.

    python -m pytest bench/ --benchmark-only --benchmark-group-by=param:name
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact as fa
from fastact._baselines import BASELINES, softmax

N = 1 << 22
_rng = np.random.default_rng(0)
X = (_rng.standard_normal(N) * 3).astype(np.float32)
G = _rng.standard_normal(N).astype(np.float32)

ENTRIES = [(f.name, f, BASELINES[f.name]) for f in fa.ELEMENTWISE]
ENTRIES.append(("gelu_tanh", fa.gelu, BASELINES["gelu_tanh"]))
NAMES = [e[0] for e in ENTRIES]


@pytest.fixture(params=ENTRIES, ids=NAMES)
def entry(request):
    return request.param


@pytest.mark.parametrize("impl", ["fastact", "numpy"])
def test_forward(benchmark, entry, impl):
    name, f, (bf, _, params) = entry
    out = np.empty_like(X)
    if impl == "fastact":
        f(X, out=out, **params)
        benchmark(lambda: f(X, out=out, **params))
    else:
        with np.errstate(all="ignore"):
            benchmark(lambda: bf(X))


@pytest.mark.parametrize("impl", ["fastact", "numpy"])
def test_backward(benchmark, entry, impl):
    name, f, (_, bg, params) = entry
    out = np.empty_like(X)
    if impl == "fastact":
        f.backward(G, X, out=out, **params)
        benchmark(lambda: f.backward(G, X, out=out, **params))
    else:
        with np.errstate(all="ignore"):
            benchmark(lambda: G * bg(X))


@pytest.mark.parametrize("cols", [64, 1024])
@pytest.mark.parametrize("impl", ["fastact", "numpy"])
def test_softmax_rows(benchmark, cols, impl):
    x = X.reshape(-1, cols)
    out = np.empty_like(x)
    if impl == "fastact":
        fa.softmax(x, out=out)
        benchmark(lambda: fa.softmax(x, out=out))
    else:
        benchmark(lambda: softmax(x))
