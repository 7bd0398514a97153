"""The plain NumPy expressions fastact is compared with.

Each entry is what a NumPy user writes for the function and its derivative:
whole-array expressions with temporaries, as in the tutorials. They are the
speed baseline of ``python -m fastact``. They are no accuracy reference: the
naive forms cancel or overflow in the tails (the test suite has stable
references of its own).
"""

from __future__ import annotations

import math

import numpy as np

try:  # optional: the exact GELU needs erf
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - depends on the environment
    _erf = None


def _erf_any(x):
    if _erf is not None:
        return _erf(x)
    return np.frompyfunc(math.erf, 1, 1)(x).astype(x.dtype)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _gelu(x):
    return 0.5 * x * (1 + _erf_any(x / np.sqrt(2)))


def _gelu_grad(x):
    return 0.5 * (1 + _erf_any(x / np.sqrt(2))) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


_K = np.sqrt(2 / np.pi)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(_K * (x + 0.044715 * x**3)))


def _gelu_tanh_grad(x):
    t = np.tanh(_K * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _K * (1 + 3 * 0.044715 * x * x)


def _sp(x):
    return np.log1p(np.exp(x))


def _mish_grad(x):
    t = np.tanh(_sp(x))
    return t + x * (1 - t * t) * _sig(x)


_A, _S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name -> (forward, grad, params used by the tour)
BASELINES = {
    "sigmoid": (_sig, lambda x: _sig(x) * (1 - _sig(x)), {}),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2, {}),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(x.dtype), {}),
    "relu6": (lambda x: np.minimum(np.maximum(x, 0), 6), lambda x: ((x > 0) & (x < 6)).astype(x.dtype), {}),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1.0, 0.01).astype(x.dtype), {}),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda x: np.where(x > 0, 1, np.exp(x)), {}),
    "celu": (lambda x: np.where(x > 0, x, np.expm1(x)), lambda x: np.where(x > 0, 1, np.exp(x)), {}),
    "selu": (lambda x: _S * np.where(x > 0, x, _A * np.expm1(x)), lambda x: _S * np.where(x > 0, 1, _A * np.exp(x)), {}),
    "gelu": (_gelu, _gelu_grad, {}),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_grad, {"approximate": "tanh"}),
    "silu": (lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x))), {}),
    "swish": (lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * (1 - _sig(x))), {}),
    "mish": (lambda x: x * np.tanh(_sp(x)), _mish_grad, {}),
    "softplus": (lambda x: np.where(x > 20, x, _sp(x)), lambda x: np.where(x > 20, 1, _sig(x)), {}),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2, {}),
    "logsigmoid": (lambda x: np.log(_sig(x)), lambda x: 1 - _sig(x), {}),
    "hardtanh": (lambda x: np.clip(x, -1, 1), lambda x: ((x > -1) & (x < 1)).astype(x.dtype), {}),
    "hardsigmoid": (lambda x: np.clip(x + 3, 0, 6) / 6, lambda x: ((x > -3) & (x < 3)) / 6, {}),
    "hardswish": (lambda x: x * np.clip(x + 3, 0, 6) / 6,
                  lambda x: np.where(x <= -3, 0, np.where(x >= 3, 1, x / 3 + 0.5)), {}),
    "tanhshrink": (lambda x: x - np.tanh(x), lambda x: np.tanh(x) ** 2, {}),
    "softshrink": (lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)),
                   lambda x: (np.abs(x) > 0.5).astype(x.dtype), {}),
    "hardshrink": (lambda x: np.where(np.abs(x) > 0.5, x, 0), lambda x: (np.abs(x) > 0.5).astype(x.dtype), {}),
    "threshold": (lambda x: np.where(x > 0.1, x, 20.0), lambda x: (x > 0.1).astype(x.dtype),
                  {"threshold": 0.1, "value": 20.0}),
}


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax_backward(g, y, axis=-1):
    return y * (g - (g * y).sum(axis=axis, keepdims=True))
