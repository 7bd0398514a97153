"""The layers of fastact.nn on (simulated) GPU arrays, through the dispatcher."""

from __future__ import annotations

import numpy as np

from cuda_sim.conftest import gpu, host
from fastact import nn

X = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 7.0], dtype=np.float32)
G = np.linspace(-1, 1, X.size).astype(np.float32)


def _run(layer, x, g):
    y = layer(x)
    return y, layer.backward(g)


def test_layers_forward_and_backward_match_the_cpu():
    for make in (nn.Sigmoid, nn.Tanh, nn.ReLU, lambda: nn.LeakyReLU(0.2), nn.ELU, nn.GELU,
                 lambda: nn.GELU("tanh"), nn.SiLU, nn.Mish, lambda: nn.Softplus(beta=2.0), nn.Hardswish):
        y_cpu, gx_cpu = _run(make(), X, G)
        y_gpu, gx_gpu = _run(make(), gpu(X), gpu(G))
        np.testing.assert_array_equal(host(y_gpu), y_cpu)
        np.testing.assert_array_equal(host(gx_gpu), gx_cpu)


def test_inplace_layers_overwrite_the_device_array():
    for make in (lambda: nn.ReLU(inplace=True), lambda: nn.ELU(inplace=True)):
        y_cpu, gx_cpu = _run(make(), X.copy(), G)
        d = gpu(X)
        layer = make()
        y = layer(d)
        np.testing.assert_array_equal(host(d), y_cpu)  # the input itself holds the result
        np.testing.assert_array_equal(host(y), y_cpu)
        np.testing.assert_array_equal(host(layer.backward(gpu(G))), gx_cpu)


def test_softmax_layer_and_loss():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    t = np.array([0, 3, 1, 4], dtype=np.int64)
    sm = nn.Softmax(axis=-1)
    np.testing.assert_allclose(host(sm(gpu(x))), nn.Softmax(axis=-1)(x), rtol=1e-6)
    loss = nn.CrossEntropyLoss()
    value = loss(gpu(x), gpu(t))
    np.testing.assert_allclose(float(host(value)), float(nn.CrossEntropyLoss()(x, t)), rtol=1e-6)
    np.testing.assert_allclose(host(loss.backward()), _grad_cpu(x, t), rtol=1e-6, atol=1e-7)


def _grad_cpu(x, t):
    loss = nn.CrossEntropyLoss()
    loss(x, t)
    return loss.backward()
