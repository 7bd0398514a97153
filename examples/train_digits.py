"""Train a small MLP on scikit-learn's digits with fastact layers and losses.

A 64-128-64-10 perceptron with LeakyReLU (or GELU) hidden activations and a
softmax cross-entropy loss, trained with Adam on 8x8 images of handwritten
digits (``sklearn.datasets.load_digits``, bundled with scikit-learn: no
download). The matrix products, the optimizer and the data handling are plain
NumPy; the activations and the loss are ``fastact.nn`` layers. The same loop
then runs with a plain NumPy implementation of those layers (the expressions a
NumPy user writes, SciPy's ``erf`` for the exact GELU), and the script prints
held-out accuracy per epoch, time per epoch and the ratio of the two.

    python examples/train_digits.py                 # 20 epochs, batch 32, LeakyReLU
    python examples/train_digits.py --epochs 5 --batch-size 128 --activation gelu

Everything is float32 and the seed is fixed: both runs start from the same
weights and see the same batches.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from typing import Any

import numpy as np

import fastact
from fastact import nn

SIZES = (64, 128, 64, 10)
ACTIVATIONS = ("leaky_relu", "gelu")


# --- data, linear layers, optimizer: plain NumPy ---------------------------------


def load_data(seed: int = 0, test_fraction: float = 0.25) -> tuple[np.ndarray, ...]:
    """Digits as float32 pixels in [0, 1]: (x_train, y_train, x_test, y_test), stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, stratify=y,
                                              random_state=seed)
    return x_tr, y_tr.astype(np.intp), x_te, y_te.astype(np.intp)


class Linear:
    """y = x W + b with He initialisation; ``backward`` fills ``grads``."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator):
        self.params = [(rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)).astype(np.float32),
                       np.zeros(n_out, dtype=np.float32)]
        self.grads = [np.zeros_like(p) for p in self.params]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params[0] + self.params[1]

    def backward(self, g: np.ndarray) -> np.ndarray:
        self.grads[0] = self.x.T @ g
        self.grads[1] = g.sum(axis=0)
        return g @ self.params[0].T


class Adam:
    """Adam (Kingma and Ba, 2015) over a list of arrays, updated in place."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        lr = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= lr * m / (np.sqrt(v) + self.eps)


# --- the NumPy reference implementation of the layers ------------------------------


class NumpyGELU:
    """x Phi(x) with SciPy's erf; keeps x and Phi(x) for the backward pass."""

    def __call__(self, x):
        from scipy.special import erf

        self.x = x
        self.cdf = 0.5 * (1.0 + erf(x * (1 / math.sqrt(2))))
        return x * self.cdf

    def backward(self, g):
        x = self.x
        return g * (self.cdf + x * np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi)))


class NumpyLeakyReLU:
    def __init__(self, negative_slope: float = 0.01):
        self.s = negative_slope

    def __call__(self, x):
        self.x = x
        return np.where(x > 0, x, self.s * x)

    def backward(self, g):
        return np.where(self.x > 0, g, self.s * g)


class NumpyCrossEntropyLoss:
    """Mean softmax cross-entropy, log-sum-exp stabilised; keeps the softmax."""

    def __call__(self, logits, target):
        z = logits - logits.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
        logp = z - lse
        self.p, self.target = np.exp(logp), target
        return -logp[np.arange(len(target)), target].mean()

    def backward(self, grad_output=1.0):
        g = self.p.copy()
        g[np.arange(len(self.target)), self.target] -= 1
        return g * (grad_output / len(self.target))


class Timed:
    """Wraps a layer and adds the seconds spent in its calls to ``seconds``."""

    def __init__(self, layer: Any):
        self.layer, self.seconds = layer, 0.0

    def __call__(self, *args):
        t = time.perf_counter()
        y = self.layer(*args)
        self.seconds += time.perf_counter() - t
        return y

    def backward(self, *args):
        t = time.perf_counter()
        g = self.layer.backward(*args)
        self.seconds += time.perf_counter() - t
        return g


def make_layers(backend: str, activation: str) -> tuple[list, Any]:
    """The two hidden activations and the loss of one backend."""
    if backend == "fastact":
        act = {"leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}[activation]
        return [act(), act()], nn.CrossEntropyLoss()
    if backend == "numpy":
        act = {"leaky_relu": NumpyLeakyReLU, "gelu": NumpyGELU}[activation]
        return [act(), act()], NumpyCrossEntropyLoss()
    raise ValueError(f"backend must be 'fastact' or 'numpy', got {backend!r}")


# --- training --------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    backend: str
    accuracy: list[float] = dataclasses.field(default_factory=list)  # held-out, per epoch
    loss: list[float] = dataclasses.field(default_factory=list)  # mean training loss, per epoch
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)  # training steps only
    layer_seconds: list[float] = dataclasses.field(default_factory=list)  # activations + loss
    warmup_seconds: float = 0.0

    @property
    def seconds_per_epoch(self) -> float:
        return statistics.median(self.epoch_seconds)

    @property
    def layer_seconds_per_epoch(self) -> float:
        return statistics.median(self.layer_seconds)


def train(epochs: int = 20, batch_size: int = 32, backend: str = "fastact", activation: str = "leaky_relu",
          lr: float = 2e-3, seed: int = 0, data: tuple | None = None, log=None) -> Result:
    """Train the MLP and return its held-out accuracy and timings per epoch.

    ``backend`` is 'fastact' (``fastact.nn`` layers) or 'numpy' (the
    reference layers above); ``log`` is called with one line per epoch.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    x_tr, y_tr, x_te, y_te = data if data is not None else load_data(seed)
    rng = np.random.default_rng(seed)
    linears = [Linear(a, b, rng) for a, b in zip(SIZES[:-1], SIZES[1:])]
    acts, loss_fn = make_layers(backend, activation)
    acts, loss_fn = [Timed(a) for a in acts], Timed(loss_fn)
    opt = Adam([p for layer in linears for p in layer.params], lr=lr)

    def forward(x):
        h = x
        for lin, act in zip(linears[:-1], acts):
            h = act(lin(h))
        return linears[-1](h)

    def step(xb, yb, update: bool = True) -> float:
        loss = float(loss_fn(forward(xb), yb))
        g = linears[-1].backward(loss_fn.backward())
        for lin, act in zip(reversed(linears[:-1]), reversed(acts)):
            g = lin.backward(act.backward(g))
        if update:
            opt.step([g for layer in linears for g in layer.grads])
        return loss

    def evaluate() -> float:
        return float(np.mean(forward(x_te).argmax(axis=1) == y_te))

    # Compile (or load from the on-disk cache) every kernel the loop uses, outside the timings.
    t = time.perf_counter()
    step(x_tr[:batch_size], y_tr[:batch_size], update=False)
    evaluate()
    result = Result(backend, warmup_seconds=time.perf_counter() - t)

    order = np.random.default_rng(seed + 1)
    n = len(x_tr)
    for epoch in range(1, epochs + 1):
        perm = order.permutation(n)
        for timed in (*acts, loss_fn):
            timed.seconds = 0.0
        losses = []
        t = time.perf_counter()
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            losses.append(step(x_tr[idx], y_tr[idx]))
        result.epoch_seconds.append(time.perf_counter() - t)
        result.layer_seconds.append(sum(timed.seconds for timed in (*acts, loss_fn)))
        result.loss.append(float(np.mean(losses)))
        result.accuracy.append(evaluate())
        if log is not None:
            log(f"  epoch {epoch:3d}  train loss {result.loss[-1]:.4f}  test accuracy "
                f"{result.accuracy[-1]:.4f}  {result.epoch_seconds[-1] * 1e3:7.2f} ms "
                f"(activations + loss {result.layer_seconds[-1] * 1e3:6.2f} ms)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    parser.add_argument("--activation", choices=ACTIVATIONS, default="leaky_relu",
                        help="hidden activation (default leaky_relu)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 0.002)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive")

    import numba

    data = load_data(args.seed)
    print(f"digits: {len(data[0])} training / {len(data[2])} held-out images; "
          f"{'-'.join(map(str, SIZES))} MLP, {args.activation}, softmax cross-entropy, "
          f"Adam lr={args.lr}, batch {args.batch_size}, float32, {numba.get_num_threads()} threads")
    results = {}
    for backend, title in (("fastact", f"fastact {fastact.__version__} layers (fastact.nn)"),
                           ("numpy", "plain NumPy layers")):
        print(f"\n{title}")
        r = train(args.epochs, args.batch_size, backend, args.activation, args.lr, args.seed,
                  data, log=print)
        print(f"  held-out accuracy {r.accuracy[-1]:.4f}; {r.seconds_per_epoch * 1e3:.2f} ms per epoch "
              f"(median), warm-up {r.warmup_seconds:.2f} s")
        results[backend] = r
    fa, ref = results["fastact"], results["numpy"]
    print(f"\ntime per epoch (median): fastact {fa.seconds_per_epoch * 1e3:.2f} ms, NumPy "
          f"{ref.seconds_per_epoch * 1e3:.2f} ms; NumPy / fastact = "
          f"{ref.seconds_per_epoch / fa.seconds_per_epoch:.2f}")
    print(f"activations + loss per epoch: fastact {fa.layer_seconds_per_epoch * 1e3:.2f} ms, NumPy "
          f"{ref.layer_seconds_per_epoch * 1e3:.2f} ms; NumPy / fastact = "
          f"{ref.layer_seconds_per_epoch / fa.layer_seconds_per_epoch:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
