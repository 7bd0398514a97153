"""The reference table that drives the elementwise tests.

One row per (function, parameters): the fastact object, the keyword
parameters, the float64 reference from ``references.py`` (stable formulas,
written independently of the kernels) and the accuracy each dtype must meet.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import fastact as fa
import references as ref


@dataclasses.dataclass(frozen=True)
class Case:
    name: str  # reference name
    func: object  # the fastact function
    params: dict
    kinks: tuple = ()  # inputs where the function or its derivative is not smooth
    # Worst error allowed over the test grids, in ulps of the dtype (the
    # ulp of a subnormal is the smallest subnormal), (forward, grad,
    # backward): SPEC section 5 asks (1, 2, 3) for float32, and a relative
    # error below 1e-14 (45 ulps) for float64.
    ulp32: tuple = (1, 2, 3)
    ulp64: tuple = (45, 45, 45)

    @property
    def id(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({extra})" if extra else self.name

    def ref_params(self, dtype=np.float64) -> dict:
        """The parameters as the kernels see them: cast to the array's dtype."""
        return {k: v if isinstance(v, str) else float(dtype(v)) for k, v in self.params.items()}

    def ref_forward(self, x, dtype=np.float64):
        return ref.ELEMENTWISE[self.name].forward(x, **self.ref_params(dtype))

    def ref_grad(self, x, dtype=np.float64):
        return ref.ELEMENTWISE[self.name].grad(x, **self.ref_params(dtype))


CASES = [
    Case("sigmoid", fa.sigmoid, {}),
    Case("tanh", fa.tanh, {}),
    Case("relu", fa.relu, {}, kinks=(0.0,)),
    Case("relu6", fa.relu6, {}, kinks=(0.0, 6.0)),
    Case("leaky_relu", fa.leaky_relu, {}, kinks=(0.0,)),
    Case("leaky_relu", fa.leaky_relu, {"negative_slope": 0.2}, kinks=(0.0,)),
    Case("elu", fa.elu, {}, kinks=(0.0,)),
    Case("elu", fa.elu, {"alpha": 0.5}, kinks=(0.0,)),
    Case("celu", fa.celu, {}, kinks=(0.0,)),
    Case("celu", fa.celu, {"alpha": 2.0}, kinks=(0.0,)),
    Case("selu", fa.selu, {}, kinks=(0.0,)),
    Case("gelu", fa.gelu, {}),
    Case("gelu", fa.gelu, {"approximate": "tanh"}),
    Case("silu", fa.silu, {}),
    Case("swish", fa.swish, {}),
    Case("swish", fa.swish, {"beta": 1.7}),
    Case("mish", fa.mish, {}),
    Case("softplus", fa.softplus, {}, kinks=(20.0,)),
    Case("softplus", fa.softplus, {"beta": 2.0, "threshold": 10.0}, kinks=(5.0,)),
    Case("softsign", fa.softsign, {}),
    Case("logsigmoid", fa.logsigmoid, {}),
    Case("hardtanh", fa.hardtanh, {}, kinks=(-1.0, 1.0)),
    Case("hardtanh", fa.hardtanh, {"min_val": -2.0, "max_val": 3.0}, kinks=(-2.0, 3.0)),
    Case("hardsigmoid", fa.hardsigmoid, {}, kinks=(-3.0, 3.0)),
    Case("hardswish", fa.hardswish, {}, kinks=(-3.0, 3.0)),
    Case("tanhshrink", fa.tanhshrink, {}),
    Case("softshrink", fa.softshrink, {}, kinks=(-0.5, 0.5)),
    Case("softshrink", fa.softshrink, {"lambd": 1.0}, kinks=(-1.0, 1.0)),
    Case("hardshrink", fa.hardshrink, {}, kinks=(-0.5, 0.5)),
    Case("hardshrink", fa.hardshrink, {"lambd": 1.0}, kinks=(-1.0, 1.0)),
    Case("threshold", fa.threshold, {"threshold": 0.1, "value": 20.0}, kinks=(0.1,)),
]
IDS = [c.id for c in CASES]

# One row per public elementwise function (default parameters).
FIRST = {}
for _c in CASES:
    FIRST.setdefault(_c.func, _c)
FUNCTIONS = list(FIRST.values())
FUNC_IDS = [c.id for c in FUNCTIONS]

DTYPES = [np.float32, np.float64]


def edge_values(dtype) -> np.ndarray:
    """The inputs every run checks: zeros, infinities, NaN, extremes, subnormals."""
    fi = np.finfo(dtype)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, fi.max, -fi.max, fi.tiny, -fi.tiny,
         fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny / 8, 1e-30, -1e-30,
         1.0, -1.0, 1e30, -1e30]
    return np.array(v, dtype=dtype)


def grid(dtype, case: Case | None = None) -> np.ndarray:
    """Dense inputs over the interesting range, the tails, and every kink."""
    parts = [
        np.linspace(-12, 12, 4001),
        np.linspace(-110, 110, 2001),
        np.geomspace(1e-12, 1e4, 800),
        -np.geomspace(1e-12, 1e4, 800),
        [1e10, -1e10, 1e20, -1e20, 1e37, -1e37],
    ]
    x = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts]).astype(dtype)
    if case is not None and case.kinks:
        k = np.array(case.kinks, dtype=dtype)
        near = [k, np.nextafter(k, dtype(np.inf)), np.nextafter(k, dtype(-np.inf))]
        x = np.concatenate([x, *near])
    return x


@pytest.fixture(params=CASES, ids=IDS)
def case(request) -> Case:
    return request.param


@pytest.fixture(params=FUNCTIONS, ids=FUNC_IDS)
def function(request) -> Case:
    return request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def pytest_collection_modifyitems(session, config, items):
    """Starts the CUDA simulator's tests, in a process of their own, as soon
    as the run is known to include them (see ``test_cuda.py``)."""
    if any(item.name == "test_kernels_under_the_simulator" for item in items):
        import test_cuda

        if test_cuda.HAS_NUMBA_CUDA:
            config.stash[test_cuda.SIMULATOR] = test_cuda.start_simulator_tests()


def pytest_unconfigure(config):
    import sys

    test_cuda = sys.modules.get("test_cuda")
    run = config.stash.get(test_cuda.SIMULATOR, None) if test_cuda else None
    if run is not None and run.poll() is None:  # the run stopped before its test
        run.kill()
        run.wait()
