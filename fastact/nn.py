"""Layers for NumPy training loops, with PyTorch's class names and arguments.

A layer is a small stateful wrapper around one fastact function: calling it
runs the forward pass and keeps what the backward pass needs; ``backward``
takes the gradient of the loss with respect to the layer's output and returns
the gradient with respect to its input::

    act = fastact.nn.LeakyReLU(negative_slope=0.2)
    loss_fn = fastact.nn.CrossEntropyLoss()
    h = act(x @ w)
    loss = loss_fn(h @ v, labels)
    gh = loss_fn.backward() @ v.T
    gw = x.T @ act.backward(gh)

What is kept: the output where the derivative is a function of it (sigmoid,
tanh, relu and the softmax family), else the input. A layer keeps references,
not copies: an array it has kept must not be modified before its backward
pass, which an ``inplace=True`` layer placed after a layer that keeps its
output does. ``inplace=True`` writes the result into the input array (a
writeable floating-point NumPy array); where the layer needs its input for
the backward pass it first keeps a copy of it.

Parameters are keywords or positional in PyTorch's order
(``LeakyReLU(0.2)``), stored as attributes of the same names
(``layer.negative_slope``). ``Softmax``, ``LogSoftmax``, ``Softmin`` and
``GLU`` take ``axis`` (NumPy's name) or ``dim`` (PyTorch's).
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, ClassVar

import numpy as np

import fastact as fa
from fastact._elementwise import Choice
from fastact._losses import _check_reduction

__all__ = [
    "Layer", "Sigmoid", "Tanh", "ReLU", "ReLU6", "LeakyReLU", "ELU", "CELU", "SELU", "GELU",
    "SiLU", "Swish", "Mish", "Softplus", "Softsign", "LogSigmoid", "Hardtanh", "Hardsigmoid",
    "Hardswish", "Tanhshrink", "Softshrink", "Hardshrink", "Threshold", "PReLU", "Softmax",
    "LogSoftmax", "Softmin", "GLU", "Maxout", "MSELoss", "CrossEntropyLoss",
]


class Layer:
    """Base of every layer: ``__call__`` runs ``forward``; ``backward`` follows it."""

    _saved: Any = None

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)

    def forward(self, *args: Any) -> Any:  # pragma: no cover - every layer defines it
        raise NotImplementedError

    def _repr_params(self) -> dict:
        """The constructor arguments shown by ``repr``."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_params().items())
        return f"{type(self).__name__}({args})"

    def _kept(self) -> Any:
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before a forward "
                               "pass: call the layer on an input first")
        return self._saved


def _boolean(value: Any, cls: str, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{cls}(): {name} must be True or False, got {value!r}")
    return bool(value)


def _integer(value: Any, cls: str, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{cls}(): {name} must be an integer, got {value!r}")
    return int(value)


def _writeable(x: Any, cls: str) -> Any:
    """The input of an ``inplace=True`` layer: a writeable floating-point array.

    A NumPy array, or a GPU array (``__cuda_array_interface__``), which the
    GPU kernels then overwrite on its device.
    """
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is not None:
        if cai.get("typestr", "")[1:2] != "f" or cai.get("data", (0, False))[1]:
            raise TypeError(f"{cls}(inplace=True) writes into its input, which must be a writeable "
                            f"floating-point array; got a GPU array of type {cai.get('typestr')!r}")
        return x
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or not x.flags.writeable:
        what = (f"a {'read-only ' if not x.flags.writeable else ''}array of dtype {x.dtype}"
                if isinstance(x, np.ndarray) else type(x).__name__)
        raise TypeError(f"{cls}(inplace=True) writes into its input, which must be a writeable "
                        f"floating-point NumPy or GPU array; got {what}")
    return x


def _copy(x: Any) -> Any:
    """A copy of a NumPy or GPU array, on its device."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if hasattr(x, "clone"):  # a PyTorch tensor
        return x.clone()
    if hasattr(x, "copy_to_device"):  # a Numba device array
        from numba import cuda

        c = cuda.device_array_like(x)
        c.copy_to_device(x)
        return c
    return x.copy()  # CuPy and other array libraries


# --- elementwise layers -------------------------------------------------------


class _Elementwise(Layer):
    """An elementwise layer generated from one fastact function.

    A subclass names its function and whether it takes ``inplace``
    (``class ELU(_Elementwise, function=fa.elu, inplace=True)``); its constructor
    signature is the function's parameters, with their defaults, in order,
    then ``inplace``.
    """

    function: ClassVar[Any]
    inplace: bool = False

    def __init_subclass__(cls, *, function: Any, inplace: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.function = function
        P = inspect.Parameter
        params = [P(p, P.POSITIONAL_OR_KEYWORD, default=function.defaults.get(p, P.empty))
                  for p in function.param_names]
        if inplace:
            params.append(P("inplace", P.POSITIONAL_OR_KEYWORD, default=False))
        signature = inspect.Signature(params)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{cls.__name__}(): {e}") from None
            bound.apply_defaults()
            _Elementwise._setup(self, dict(bound.arguments))

        __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [P("self", P.POSITIONAL_OR_KEYWORD), *params])
        __init__.__qualname__ = f"{cls.__name__}.__init__"
        cls.__init__ = __init__  # type: ignore[method-assign]
        if not cls.__doc__:
            cls.__doc__ = _layer_doc(cls.__name__, function, signature)

    def _setup(self, params: dict) -> None:
        if "inplace" in params:
            self.inplace = _boolean(params.pop("inplace"), type(self).__name__, "inplace")
        # Validate now (names, types, ranges) rather than at the first call.
        if isinstance(self.function, Choice):
            self.function._pick("__call__", dict(params))
        else:
            self.function._params("__call__", params, np.dtype(np.float64))
            params = {k: float(v) for k, v in params.items()}
        for k, v in params.items():
            setattr(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in self.function.param_names:
            self.__dict__.pop("_resolved", None)  # a changed parameter: resolve again

    def _kernel_params(self, x: np.ndarray) -> tuple:
        """The parameters cast for the kernels of x's dtype, and the function to run."""
        resolved = self.__dict__.get("_resolved")
        if resolved is None:
            kwargs = self._params
            f = self.function._pick("__call__", kwargs) if isinstance(self.function, Choice) \
                else self.function
            resolved = self.__dict__["_resolved"] = {"target": (f, kwargs)}
        p = resolved.get(x.dtype)
        if p is None:
            f, kwargs = resolved["target"]
            p = resolved[x.dtype] = (f, f._params("__call__", kwargs, x.dtype))
        return p

    def _short(self, kind: str, x: Any, g: Any = None) -> Any:
        """The function's short path for small NumPy arrays (None where it does not apply)."""
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            return None
        f, params = self._kernel_params(x)
        return f._fast(kind, x, g, params)

    @property
    def _params(self) -> dict:
        return {p: getattr(self, p) for p in self.function.param_names}

    def _repr_params(self) -> dict:
        shown = self._params
        if self.inplace:
            shown["inplace"] = True
        return shown

    def forward(self, x: Any) -> Any:
        """The forward pass; keeps the output or the input for ``backward``."""
        f = self.function
        if self.inplace:
            x = _writeable(x, type(self).__name__)
            if not f.from_output:
                self._saved = _copy(x)  # the input is about to be overwritten
            y = f(x, out=x, **self._params)
        else:
            y = self._short("forward", x)
            if y is None:
                y = f(x, **self._params)
            if not f.from_output:
                self._saved = x
        if f.from_output:
            self._saved = y
        return y

    def backward(self, grad_output: Any) -> Any:
        """The gradient with respect to the input of the last forward pass."""
        kept = self._kept()
        if self.function.from_output:
            gx = self._short("backward_y", kept, grad_output)
            return self.function.backward(grad_output, y=kept, **self._params) if gx is None else gx
        gx = self._short("backward", kept, grad_output)
        return self.function.backward(grad_output, kept, **self._params) if gx is None else gx

    def gradient(self, x: Any) -> Any:
        """The elementwise derivative dy/dx at ``x`` (keeps nothing)."""
        return self.function.grad(x, **self._params)


def _layer_doc(name: str, function: Any, signature: inspect.Signature) -> str:
    summary = (function.__doc__ or "").strip().splitlines()[0]
    torch = f" (PyTorch ``torch.nn.{name}``)" if function.torch else ""
    return (f"{summary} Layer of :func:`fastact.{function.name}`{torch}.\n\n"
            f"    ``{name}{signature}``; ``forward(x)``, ``backward(grad_output)``, ``gradient(x)``.")


class Sigmoid(_Elementwise, function=fa.sigmoid):
    pass


class Tanh(_Elementwise, function=fa.tanh):
    pass


class ReLU(_Elementwise, function=fa.relu, inplace=True):
    pass


class ReLU6(_Elementwise, function=fa.relu6, inplace=True):
    pass


class LeakyReLU(_Elementwise, function=fa.leaky_relu, inplace=True):
    pass


class ELU(_Elementwise, function=fa.elu, inplace=True):
    pass


class CELU(_Elementwise, function=fa.celu, inplace=True):
    pass


class SELU(_Elementwise, function=fa.selu, inplace=True):
    pass


class GELU(_Elementwise, function=fa.gelu):
    pass


class SiLU(_Elementwise, function=fa.silu, inplace=True):
    pass


class Swish(_Elementwise, function=fa.swish):
    """Swish with a slope parameter. Layer of :func:`fastact.swish` (no PyTorch class).

    ``Swish(beta=1.0)``, x * sigmoid(beta * x); ``Swish(1.0)`` is ``SiLU()``.
    ``forward(x)``, ``backward(grad_output)``, ``gradient(x)``.
    """


class Mish(_Elementwise, function=fa.mish, inplace=True):
    pass


class Softplus(_Elementwise, function=fa.softplus):
    pass


class Softsign(_Elementwise, function=fa.softsign):
    pass


class LogSigmoid(_Elementwise, function=fa.logsigmoid):
    pass


class Hardtanh(_Elementwise, function=fa.hardtanh, inplace=True):
    pass


class Hardsigmoid(_Elementwise, function=fa.hardsigmoid, inplace=True):
    pass


class Hardswish(_Elementwise, function=fa.hardswish, inplace=True):
    pass


class Tanhshrink(_Elementwise, function=fa.tanhshrink):
    pass


class Softshrink(_Elementwise, function=fa.softshrink):
    pass


class Hardshrink(_Elementwise, function=fa.hardshrink):
    pass


class Threshold(_Elementwise, function=fa.threshold, inplace=True):
    pass


# --- PReLU --------------------------------------------------------------------


class PReLU(Layer):
    """Parametric ReLU with a learned slope. Layer of :func:`fastact.prelu` (``torch.nn.PReLU``).

    ``weight`` holds ``num_parameters`` slopes, all ``init`` at first: one for
    every channel (the length of ``axis`` of the input, axis 1 as PyTorch) or
    a single one. ``dtype`` is the weight's dtype (float32 by default, as
    PyTorch). ``backward(grad_output)`` returns the input gradient and sets
    ``weight_grad`` (overwritten by every backward pass, not accumulated;
    None before the first).

    >>> layer = PReLU(num_parameters=3)
    >>> layer.weight
    array([0.25, 0.25, 0.25], dtype=float32)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *, axis: int = 1,
                 dtype: Any = None) -> None:
        n = _integer(num_parameters, "PReLU", "num_parameters")
        if n < 1:
            raise ValueError(f"PReLU(): num_parameters must be at least 1, got {n}")
        self.num_parameters = n
        self.axis = _integer(axis, "PReLU", "axis")
        dt = np.dtype(np.float32 if dtype is None else dtype)
        if dt.kind != "f":
            raise TypeError(f"PReLU(): dtype must be a floating-point dtype, got {dt}")
        self.weight = np.full(n, init, dtype=dt)
        self.weight_grad: np.ndarray | None = None

    def _repr_params(self) -> dict:
        return {"num_parameters": self.num_parameters}

    def forward(self, x: Any) -> Any:
        """``prelu(x, weight)``; keeps x."""
        y = fa.prelu(x, self.weight, axis=self.axis)
        self._saved = x
        return y

    def backward(self, grad_output: Any) -> Any:
        """The input gradient; the weight gradient goes to ``weight_grad``."""
        x = self._kept()
        gx, gw = fa.prelu.backward(grad_output, x, self.weight, axis=self.axis)
        self.weight_grad = np.asarray(gw).astype(self.weight.dtype).reshape(self.weight.shape)
        return gx


# --- along an axis ------------------------------------------------------------


def _axis(cls: str, axis: Any, dim: Any) -> int:
    if axis is not None and dim is not None:
        raise TypeError(f"{cls}(): got both axis={axis!r} and dim={dim!r}; dim is PyTorch's name "
                        "for axis, give one of them")
    chosen = axis if axis is not None else dim
    return -1 if chosen is None else _integer(chosen, cls, "axis")


class _SoftmaxLayer(Layer):
    """The softmax family: keeps the output, whose backward needs nothing else."""

    function: ClassVar[Any]

    def __init__(self, axis: int | None = None, *, dim: int | None = None) -> None:
        self.axis = _axis(type(self).__name__, axis, dim)

    def _repr_params(self) -> dict:
        return {"axis": self.axis}

    def forward(self, x: Any) -> Any:
        """The forward pass along ``axis``; keeps the output."""
        y = self.function(x, axis=self.axis)
        self._saved = y
        return y

    def backward(self, grad_output: Any) -> Any:
        """The input gradient, from the kept output."""
        return self.function.backward(grad_output, y=self._kept(), axis=self.axis)


class Softmax(_SoftmaxLayer):
    """Softmax along ``axis`` (default -1; ``dim`` is accepted as an alias). Layer of
    :func:`fastact.softmax` (``torch.nn.Softmax``)."""

    function = fa.softmax


class LogSoftmax(_SoftmaxLayer):
    """Log-softmax along ``axis`` (default -1; ``dim`` is accepted as an alias). Layer of
    :func:`fastact.log_softmax` (``torch.nn.LogSoftmax``)."""

    function = fa.log_softmax


class Softmin(_SoftmaxLayer):
    """Softmin along ``axis`` (default -1; ``dim`` is accepted as an alias). Layer of
    :func:`fastact.softmin` (``torch.nn.Softmin``)."""

    function = fa.softmin


class GLU(Layer):
    """Gated linear unit along ``axis`` (default -1; ``dim`` is accepted as an alias).
    Layer of :func:`fastact.glu` (``torch.nn.GLU``); keeps the input."""

    def __init__(self, axis: int | None = None, *, dim: int | None = None) -> None:
        self.axis = _axis("GLU", axis, dim)

    def _repr_params(self) -> dict:
        return {"axis": self.axis}

    def forward(self, x: Any) -> Any:
        """``glu(x, axis=axis)``; keeps x."""
        y = fa.glu(x, axis=self.axis)
        self._saved = x
        return y

    def backward(self, grad_output: Any) -> Any:
        """The input gradient, the shape of x."""
        return fa.glu.backward(grad_output, self._kept(), axis=self.axis)


class Maxout(Layer):
    """Maximum over consecutive groups of ``pool_size`` along ``axis``. Layer of
    :func:`fastact.maxout` (PyTorch has no such class); keeps the input."""

    def __init__(self, pool_size: int, axis: int = -1) -> None:
        self.pool_size = _integer(pool_size, "Maxout", "pool_size")
        if self.pool_size < 1:
            raise ValueError(f"Maxout(): pool_size must be a positive integer, got {self.pool_size}")
        self.axis = _integer(axis, "Maxout", "axis")

    def _repr_params(self) -> dict:
        return {"pool_size": self.pool_size, "axis": self.axis}

    def forward(self, x: Any) -> Any:
        """``maxout(x, pool_size=pool_size, axis=axis)``; keeps x."""
        y = fa.maxout(x, pool_size=self.pool_size, axis=self.axis)
        self._saved = x
        return y

    def backward(self, grad_output: Any) -> Any:
        """The input gradient: each group's gradient goes to its first maximum."""
        return fa.maxout.backward(grad_output, self._kept(), pool_size=self.pool_size, axis=self.axis)


# --- losses ---------------------------------------------------------------------


class MSELoss(Layer):
    """Mean squared error. Layer of :func:`fastact.mse_loss` (``torch.nn.MSELoss``).

    ``loss = MSELoss()(pred, target)``; ``backward(grad_output=1.0)`` returns
    d loss / d pred. ``reduction`` is 'mean', 'sum' or 'none'.
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        self.reduction = _check_reduction(reduction, "MSELoss")

    def _repr_params(self) -> dict:
        return {} if self.reduction == "mean" else {"reduction": self.reduction}

    def forward(self, pred: Any, target: Any) -> Any:
        """The loss; keeps pred and target."""
        loss = fa.mse_loss(pred, target, reduction=self.reduction)
        self._saved = (pred, target)
        return loss

    def backward(self, grad_output: Any = 1.0) -> Any:
        """d loss / d pred times ``grad_output`` (an array of the loss's shape for 'none')."""
        pred, target = self._kept()
        return fa.mse_loss.backward(pred, target, grad_output, reduction=self.reduction)


class CrossEntropyLoss(Layer):
    """Softmax cross-entropy with class-index targets. Layer of :func:`fastact.cross_entropy`
    (``torch.nn.CrossEntropyLoss``).

    ``loss = CrossEntropyLoss()(logits, target)``; ``backward(grad_output=1.0)``
    returns d loss / d logits. The classes lie along ``axis`` (default -1, the
    last; PyTorch uses axis 1). ``reduction`` is 'mean', 'sum' or 'none'.
    """

    def __init__(self, *, reduction: str = "mean", axis: int = -1) -> None:
        self.reduction = _check_reduction(reduction, "CrossEntropyLoss")
        self.axis = _integer(axis, "CrossEntropyLoss", "axis")

    def _repr_params(self) -> dict:
        shown: dict = {} if self.reduction == "mean" else {"reduction": self.reduction}
        if self.axis != -1:
            shown["axis"] = self.axis
        return shown

    def forward(self, logits: Any, target: Any) -> Any:
        """The loss; keeps the logits and the targets."""
        loss = fa.cross_entropy(logits, target, axis=self.axis, reduction=self.reduction)
        self._saved = (logits, target)
        return loss

    def backward(self, grad_output: Any = 1.0) -> Any:
        """d loss / d logits times ``grad_output`` (an array of the loss's shape for 'none')."""
        logits, target = self._kept()
        return fa.cross_entropy.backward(logits, target, grad_output, axis=self.axis,
                                      reduction=self.reduction)
