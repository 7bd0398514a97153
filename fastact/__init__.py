"""fastact: neural-network activation functions as Numba-compiled kernels.

Every function is an object: call it for the forward pass; ``.grad(x)`` gives
the elementwise derivative, ``.backward(g, x)`` the vector-Jacobian product in
one fused pass, ``.value_and_grad(x)`` both. Parameters and their defaults are
PyTorch's. Kernels compile on first use for the dtype they meet and are cached
on disk; nothing compiles at import.

>>> import numpy as np, fastact as fa
>>> x = np.linspace(-3, 3, 7, dtype=np.float32)
>>> y = fa.gelu(x)
>>> dx = fa.gelu.backward(np.ones_like(x), x)

Losses (``mse_loss``, ``cross_entropy``) follow the same pattern, and
``fastact.nn`` holds layer classes with PyTorch's names for NumPy training
loops.
"""

from fastact._losses import cross_entropy, mse_loss
from fastact._prelu import prelu
from fastact._rowwise import glu, log_softmax, maxout, softmax, softmin
from fastact.definitions.gaussian import gelu
from fastact.definitions.hyperbolic import softsign, tanh, tanhshrink
from fastact.definitions.logistic import logsigmoid, mish, sigmoid, silu, softplus, swish
from fastact.definitions.piecewise import hardshrink, hardsigmoid, hardswish, hardtanh, relu6, softshrink
from fastact.definitions.rectifiers import celu, elu, leaky_relu, relu, selu, threshold

__version__ = "0.1.0"

#: The elementwise functions, in the order of the catalogue.
ELEMENTWISE = (
    sigmoid, tanh, relu, relu6, leaky_relu, elu, celu, selu, gelu, silu, swish, mish,
    softplus, softsign, logsigmoid, hardtanh, hardsigmoid, hardswish, tanhshrink,
    softshrink, hardshrink, threshold,
)
#: The functions along an axis.
ROWWISE = (softmax, log_softmax, softmin, glu, maxout)

from fastact import nn  # noqa: E402  (the layers are built from the functions above)

__all__ = [f.name for f in ELEMENTWISE] + ["prelu"] + [f.name for f in ROWWISE] + [
    "mse_loss", "cross_entropy", "nn", "ELEMENTWISE", "ROWWISE", "__version__",
]
