"""Same answers as PyTorch (optional: skipped when torch is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

import fastact as fa
from conftest import CASES, IDS

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH = {
    "sigmoid": lambda x, p: torch.sigmoid(x),
    "tanh": lambda x, p: torch.tanh(x),
    "relu": lambda x, p: F.relu(x),
    "relu6": lambda x, p: F.relu6(x),
    "leaky_relu": lambda x, p: F.leaky_relu(x, **p),
    "elu": lambda x, p: F.elu(x, **p),
    "celu": lambda x, p: F.celu(x, **p),
    "selu": lambda x, p: F.selu(x),
    "gelu": lambda x, p: F.gelu(x, **p),
    "silu": lambda x, p: F.silu(x),
    "swish": lambda x, p: x * torch.sigmoid(p.get("beta", 1.0) * x),
    "mish": lambda x, p: F.mish(x),
    "softplus": lambda x, p: F.softplus(x, **p),
    "softsign": lambda x, p: F.softsign(x),
    "logsigmoid": lambda x, p: F.logsigmoid(x),
    "hardtanh": lambda x, p: F.hardtanh(x, **p),
    "hardsigmoid": lambda x, p: F.hardsigmoid(x),
    "hardswish": lambda x, p: F.hardswish(x),
    "tanhshrink": lambda x, p: F.tanhshrink(x),
    "softshrink": lambda x, p: F.softshrink(x, **p),
    "hardshrink": lambda x, p: F.hardshrink(x, **p),
    "threshold": lambda x, p: F.threshold(x, p["threshold"], p["value"]),
}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_and_gradients_match_pytorch(case):
    x = np.concatenate([np.linspace(-8, 8, 1601), np.array(case.kinks, dtype=np.float64)])
    x = x.astype(np.float64)
    t = torch.tensor(x, requires_grad=True)
    y = TORCH[case.name](t, case.params)
    y.sum().backward()
    np.testing.assert_allclose(case.func(x, **case.params), y.detach().numpy(), rtol=1e-12, atol=1e-14)
    # PyTorch's float64 hardsigmoid' multiplies by 1/6 rounded to float32
    rtol = 5e-8 if case.name == "hardsigmoid" else 1e-12
    np.testing.assert_allclose(case.func.grad(x, **case.params), t.grad.numpy(), rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_family_matches_pytorch(name, axis):
    x = np.random.default_rng(0).standard_normal((4, 5, 6)) * 3
    g = np.random.default_rng(1).standard_normal((4, 5, 6))
    t = torch.tensor(x, requires_grad=True)
    y = getattr(F, name)(t, dim=axis)
    y.backward(torch.tensor(g))
    f = getattr(fa, name)
    np.testing.assert_allclose(f(x, axis=axis), y.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(f.backward(g, x, axis=axis), t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_glu_maxout_prelu_match_pytorch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 8, 5))
    t = torch.tensor(x, requires_grad=True)
    y = F.glu(t, dim=1)
    g = rng.standard_normal(y.shape)
    y.backward(torch.tensor(g))
    np.testing.assert_allclose(fa.glu(x, axis=1), y.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(fa.glu.backward(g, x, axis=1), t.grad.numpy(), rtol=1e-12, atol=1e-15)

    t = torch.tensor(x, requires_grad=True)
    y = t.unflatten(1, (4, 2)).amax(2)
    g = rng.standard_normal(y.shape)
    y.backward(torch.tensor(g))
    np.testing.assert_array_equal(fa.maxout(x, pool_size=2, axis=1), y.detach().numpy())
    np.testing.assert_array_equal(fa.maxout.backward(g, x, pool_size=2, axis=1), t.grad.numpy())

    w = rng.uniform(0, 0.5, 8)
    t = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    y = F.prelu(t, tw)
    g = rng.standard_normal(y.shape)
    y.backward(torch.tensor(g))
    np.testing.assert_allclose(fa.prelu(x, w), y.detach().numpy(), rtol=1e-15)
    gx, gw = fa.prelu.backward(g, x, w)
    np.testing.assert_allclose(gx, t.grad.numpy(), rtol=1e-15)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-12)
