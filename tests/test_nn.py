"""fastact.nn layers against the functional API and central finite differences (float64)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fastact as fa
from fastact import nn

# (layer, the constructor arguments) for every elementwise layer; non-default
# parameters where a layer has them, so that they are seen to reach the kernel.
ELEMENTWISE = [
    (nn.Sigmoid, {}), (nn.Tanh, {}), (nn.ReLU, {}), (nn.ReLU6, {}),
    (nn.LeakyReLU, {"negative_slope": 0.2}), (nn.ELU, {"alpha": 0.7}), (nn.CELU, {"alpha": 1.5}),
    (nn.SELU, {}), (nn.GELU, {}), (nn.GELU, {"approximate": "tanh"}), (nn.SiLU, {}),
    (nn.Swish, {"beta": 1.7}), (nn.Mish, {}), (nn.Softplus, {"beta": 2.0, "threshold": 3.0}),
    (nn.Softsign, {}), (nn.LogSigmoid, {}), (nn.Hardtanh, {"min_val": -2.0, "max_val": 1.5}),
    (nn.Hardsigmoid, {}), (nn.Hardswish, {}), (nn.Tanhshrink, {}), (nn.Softshrink, {"lambd": 0.7}),
    (nn.Hardshrink, {"lambd": 0.7}), (nn.Threshold, {"threshold": 0.3, "value": -2.0}),
]
IDS = [f"{cls.__name__}({','.join(f'{k}={v}' for k, v in kw.items())})" for cls, kw in ELEMENTWISE]
INPLACE = [(cls, kw) for cls, kw in ELEMENTWISE if "inplace" in inspect.signature(cls).parameters]
INPLACE_IDS = [i for i, (cls, kw) in zip(IDS, ELEMENTWISE) if (cls, kw) in INPLACE]

# Every kink of every row above (finite differences step over none of them).
KINKS = np.array([0.0, 0.3, 0.7, -0.7, 1.5, 1.5 / 2.0, -1.0, 1.0, -2.0, -3.0, 3.0, 6.0])
H = 1e-6


def _x(shape=(4, 6), seed=0) -> np.ndarray:
    """float64 inputs in [-4.5, 4.5], none within 0.01 of a kink."""
    x = np.random.default_rng(seed).uniform(-4.5, 4.5, size=shape)
    near = np.abs(x[..., None] - KINKS).min(axis=-1) < 0.01
    return np.where(near, x + 0.05, x)


def _params(layer) -> dict:
    return {p: getattr(layer, p) for p in layer.function.param_names}


def _fd(fn, x, g):
    """Central differences of sum(g * fn(x)) with respect to every element of x."""
    out = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += H
        xm[i] -= H
        out[i] = np.sum(g * (fn(xp) - fn(xm))) / (2 * H)
    return out


def _assert_fd(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-8)


# --- elementwise layers -----------------------------------------------------------


def test_one_layer_per_function():
    covered = {cls.function.name for cls, _ in ELEMENTWISE}
    assert covered == {f.name for f in fa.ELEMENTWISE}
    assert all(hasattr(nn, name) for name in nn.__all__)


@pytest.mark.parametrize("cls, kwargs", ELEMENTWISE, ids=IDS)
def test_elementwise_layer(cls, kwargs):
    layer = cls(**kwargs)
    f, params = layer.function, _params(layer)
    assert params == {k: v for k, v in {**f.defaults, **kwargs}.items() if k in f.param_names}
    x = _x()
    g = np.random.default_rng(1).standard_normal(x.shape)
    y = layer(x)
    np.testing.assert_array_equal(y, f(x, **params))
    gx = layer.backward(g)
    # from the kept output where the derivative is a function of it
    ref = f.backward(g, y=y, **params) if f.from_output else f.backward(g, x, **params)
    np.testing.assert_array_equal(gx, ref)
    d = layer.gradient(x)
    np.testing.assert_array_equal(d, f.grad(x, **params))
    # finite differences, elementwise: one pass for all elements
    fd = (f(x + H, **params) - f(x - H, **params)) / (2 * H)
    _assert_fd(d, fd)
    _assert_fd(gx, g * fd)
    np.testing.assert_array_equal(x, _x())  # the input is not modified


@pytest.mark.parametrize("cls, kwargs", INPLACE, ids=INPLACE_IDS)
def test_inplace_layer(cls, kwargs):
    x = _x()
    g = np.random.default_rng(1).standard_normal(x.shape)
    ref = cls(**kwargs)
    y_ref, gx_ref = ref(x), None
    gx_ref = ref.backward(g)
    layer = cls(**kwargs, inplace=True)
    xi = x.copy()
    y = layer(xi)
    assert y is xi  # written into the input
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(layer.backward(g), gx_ref)  # from a kept copy or the output
    assert repr(layer).endswith("inplace=True)")
    with pytest.raises(TypeError, match=rf"{cls.__name__}\(inplace=True\).*int64"):
        layer(np.arange(4))
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        layer(ro)
    with pytest.raises(TypeError, match="list"):
        layer([1.0, 2.0])


def test_inplace_float32_and_float16():
    for dt in (np.float32, np.float16):
        x = _x().astype(dt)
        ref = nn.ReLU6()(x)
        y = nn.ReLU6(inplace=True)(x)
        assert y is x and y.dtype == dt
        np.testing.assert_array_equal(y, ref)


def test_layers_keep_the_output_where_the_derivative_needs_only_it():
    x = _x()
    for layer in (nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.Softmax(), nn.LogSoftmax(), nn.Softmin()):
        y = layer(x)
        assert layer._saved is y
    for layer in (nn.GELU(), nn.ELU(), nn.GLU(), nn.PReLU()):
        layer(x)
        assert layer._saved is x
    layer = nn.ELU(inplace=True)
    xc = x.copy()
    layer(xc)
    np.testing.assert_array_equal(layer._saved, x)  # a copy taken before overwriting


def test_constructor_arguments():
    assert nn.LeakyReLU(0.2).negative_slope == 0.2
    assert nn.LeakyReLU(0.2, True).inplace is True
    t = nn.Threshold(0.1, 20)
    assert (t.threshold, t.value, t.inplace) == (0.1, 20.0, False)
    h = nn.Hardtanh(-2, 2)
    assert (h.min_val, h.max_val) == (-2.0, 2.0)
    assert nn.Softplus(beta=2).beta == 2.0 and nn.Softplus().threshold == 20.0
    assert nn.GELU("tanh").approximate == "tanh"
    assert str(inspect.signature(nn.Softplus)) == "(beta=1.0, threshold=20.0)"
    assert str(inspect.signature(nn.Threshold)) == "(threshold, value, inplace=False)"
    assert str(inspect.signature(nn.Sigmoid)) == "()"
    assert str(inspect.signature(nn.ReLU)) == "(inplace=False)"
    assert "fastact.leaky_relu" in nn.LeakyReLU.__doc__
    # a parameter changed after construction is used by the next call
    layer = nn.LeakyReLU()
    layer.negative_slope = 0.5
    assert layer(np.array([-2.0])) == -1.0


def test_constructor_errors():
    with pytest.raises(TypeError, match=r"Threshold\(\): missing a required argument: 'threshold'"):
        nn.Threshold()
    with pytest.raises(TypeError, match=r"Sigmoid\(\).*unexpected keyword argument 'inplace'"):
        nn.Sigmoid(inplace=True)
    with pytest.raises(TypeError, match=r"LeakyReLU\(\): too many positional"):
        nn.LeakyReLU(0.1, False, 3)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        nn.LeakyReLU("0.1")
    with pytest.raises(TypeError, match="inplace must be True or False"):
        nn.ReLU(inplace=1)
    with pytest.raises(ValueError, match="min_val must be <= max_val"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(ValueError, match="approximate must be one of"):
        nn.GELU(approximate="erf")
    with pytest.raises(TypeError, match="got both axis=1 and dim=0"):
        nn.Softmax(axis=1, dim=0)
    with pytest.raises(TypeError, match="got both"):
        nn.GLU(0, dim=0)
    with pytest.raises(TypeError, match="axis must be an integer"):
        nn.LogSoftmax(dim=1.5)
    with pytest.raises(ValueError, match="pool_size must be a positive integer"):
        nn.Maxout(0)
    with pytest.raises(ValueError, match="num_parameters must be at least 1"):
        nn.PReLU(0)
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(TypeError):
        nn.CrossEntropyLoss("sum")  # PyTorch's first positional argument is the class weights


@pytest.mark.parametrize("layer, args", [
    (nn.Sigmoid(), ()), (nn.LeakyReLU(inplace=True), ()), (nn.PReLU(), ()), (nn.Softmax(), ()),
    (nn.GLU(), ()), (nn.Maxout(2), ()), (nn.MSELoss(), ()), (nn.CrossEntropyLoss(), ()),
], ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else "")
def test_backward_before_forward(layer, args):
    name = type(layer).__name__
    with pytest.raises(RuntimeError, match=rf"{name}\.backward\(\) was called before a forward"):
        layer.backward(*args) if args else layer.backward(np.ones(2))


def test_repr():
    assert repr(nn.LeakyReLU(negative_slope=0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.ELU(alpha=1.0, inplace=True)) == "ELU(alpha=1.0, inplace=True)"
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)"
    assert repr(nn.Threshold(0.1, 20.0)) == "Threshold(threshold=0.1, value=20.0)"
    assert repr(nn.Softshrink()) == "Softshrink(lambd=0.5)"
    assert repr(nn.Swish()) == "Swish(beta=1.0)"
    assert repr(nn.PReLU(num_parameters=3)) == "PReLU(num_parameters=3)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(axis=1)"
    assert repr(nn.LogSoftmax()) == "LogSoftmax(axis=-1)"
    assert repr(nn.GLU()) == "GLU(axis=-1)"
    assert repr(nn.Maxout(3)) == "Maxout(pool_size=3, axis=-1)"
    assert repr(nn.MSELoss()) == "MSELoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.CrossEntropyLoss(reduction="none", axis=1)) == "CrossEntropyLoss(reduction='none', axis=1)"


# --- along an axis, PReLU -------------------------------------------------------------


@pytest.mark.parametrize("cls, f", [(nn.Softmax, fa.softmax), (nn.LogSoftmax, fa.log_softmax),
                                    (nn.Softmin, fa.softmin)], ids=["Softmax", "LogSoftmax", "Softmin"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_family_layer(cls, f, axis):
    layer = cls(dim=axis) if axis == 0 else cls()
    assert layer.axis == axis
    x = _x((3, 4))
    g = np.random.default_rng(1).standard_normal(x.shape)
    y = layer(x)
    np.testing.assert_array_equal(y, f(x, axis=axis))
    gx = layer.backward(g)
    np.testing.assert_array_equal(gx, f.backward(g, y=y, axis=axis))
    _assert_fd(gx, _fd(lambda v: f(v, axis=axis), x, g))


def test_glu_layer():
    layer = nn.GLU(dim=0)
    x = _x((4, 3))
    g = np.random.default_rng(1).standard_normal((2, 3))
    y = layer(x)
    np.testing.assert_array_equal(y, fa.glu(x, axis=0))
    gx = layer.backward(g)
    np.testing.assert_array_equal(gx, fa.glu.backward(g, x, axis=0))
    _assert_fd(gx, _fd(lambda v: fa.glu(v, axis=0), x, g))


def test_maxout_layer():
    layer = nn.Maxout(3, axis=1)
    x = _x((2, 6))  # random values: no ties within a group
    g = np.random.default_rng(1).standard_normal((2, 2))
    y = layer(x)
    np.testing.assert_array_equal(y, fa.maxout(x, pool_size=3, axis=1))
    gx = layer.backward(g)
    np.testing.assert_array_equal(gx, fa.maxout.backward(g, x, pool_size=3, axis=1))
    _assert_fd(gx, _fd(lambda v: fa.maxout(v, pool_size=3, axis=1), x, g))


def test_prelu_layer():
    layer = nn.PReLU()
    assert layer.weight.dtype == np.float32 and layer.weight.tolist() == [0.25]
    assert layer.weight_grad is None
    x = _x((3, 4)).astype(np.float32)
    y = layer(x)
    np.testing.assert_array_equal(y, fa.prelu(x, layer.weight))
    g = np.ones_like(x)
    gx = layer.backward(g)
    gx_ref, gw_ref = fa.prelu.backward(g, x, layer.weight)
    np.testing.assert_array_equal(gx, gx_ref)
    assert layer.weight_grad.dtype == np.float32 and layer.weight_grad.shape == (1,)
    np.testing.assert_array_equal(layer.weight_grad, gw_ref)


@pytest.mark.parametrize("axis, shape", [(1, (2, 3, 4)), (-1, (5, 3))])
def test_prelu_finite_differences(axis, shape):
    layer = nn.PReLU(num_parameters=3, init=0.1, axis=axis, dtype=np.float64)
    layer.weight[:] = [0.1, -0.3, 0.6]
    x = _x(shape)
    g = np.random.default_rng(1).standard_normal(shape)
    layer(x)
    gx = layer.backward(g)
    _assert_fd(gx, _fd(lambda v: fa.prelu(v, layer.weight, axis=axis), x, g))
    w = layer.weight.copy()
    _assert_fd(layer.weight_grad, _fd(lambda v: fa.prelu(x, v, axis=axis), w, g))


# --- losses ----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_layers(reduction):
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mse = nn.MSELoss(reduction=reduction)
    g = 1.0 if reduction != "none" else rng.standard_normal((4, 3))
    loss = mse(pred, target)
    np.testing.assert_array_equal(loss, fa.mse_loss(pred, target, reduction=reduction))
    gp = mse.backward(g)
    np.testing.assert_array_equal(gp, fa.mse_loss.backward(pred, target, g, reduction=reduction))
    _assert_fd(gp, _fd(lambda v: fa.mse_loss(v, target, reduction=reduction), pred, g))

    logits, labels = rng.standard_normal((3, 5, 2)), rng.integers(0, 5, (3, 2))
    ce = nn.CrossEntropyLoss(reduction=reduction, axis=1)
    g = 1.0 if reduction != "none" else rng.standard_normal((3, 2))
    loss = ce(logits, labels)
    np.testing.assert_array_equal(loss, fa.cross_entropy(logits, labels, axis=1, reduction=reduction))
    gl = ce.backward(g)
    np.testing.assert_array_equal(gl, fa.cross_entropy.backward(logits, labels, g, axis=1,
                                                                reduction=reduction))
    _assert_fd(gl, _fd(lambda v: fa.cross_entropy(v, labels, axis=1, reduction=reduction), logits, g))
    if reduction == "mean":
        np.testing.assert_allclose(ce.backward(3.0), 3 * gl, rtol=1e-15)


def test_a_small_network_trains_one_step():
    """Linear -> GELU -> Linear -> CrossEntropyLoss: the chain rule through the layers."""
    rng = np.random.default_rng(3)
    x, labels = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    w1, w2 = rng.standard_normal((5, 6)), rng.standard_normal((6, 3))
    act, loss_fn = nn.GELU(), nn.CrossEntropyLoss()

    def loss_of(w):
        return loss_fn(act(x @ w) @ w2, labels)

    loss_of(w1)
    gw1 = x.T @ act.backward(loss_fn.backward() @ w2.T)
    _assert_fd(gw1, _fd(lambda w: np.array(loss_of(w)), w1, np.ones(())))
