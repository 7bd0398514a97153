"""The hot loops compile to packed SIMD code.

A scalar call left in a loop (a libm function, a helper LLVM did not
inline, a coefficient loop it did not unroll) keeps the whole loop scalar and
costs 5-20x in speed while every value stays right, so no other test would
notice. Each kernel is compiled here afresh (cached machine code has no
assembly to inspect) and its assembly is searched for packed arithmetic on
vector registers.
"""

from __future__ import annotations

import platform
import re

import llvmlite.binding as llvm
import numba
import numpy as np
import pytest

import fastact as fa
from fastact import _cpu, _rowwise_kernels
from fastact._compile import specialize

def _avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return bool(llvm.get_host_cpu_features().get("avx2", False))


pytestmark = pytest.mark.skipif(not _avx2(), reason="the check reads x86 AVX2 assembly")

# Packed single/double operations on ymm/zmm registers, data movement aside.
_PACKED = re.compile(r"\bv(?!mov|broadcast|perm|shuf|unpck|insert|extract)\w+p[sd]\s+[^\n]*%[yz]mm")


def _definitions():
    seen = {}
    for f in fa.ELEMENTWISE:
        options = getattr(f, "_options", None)
        for e in (options.values() if options else [f]):
            seen.setdefault(e._defn, e._defn)
    return list(seen)


def _definition(body: str):
    """The definition of the class named ``body`` (``gelu_erf``, not the
    public ``gelu`` that its variants share)."""
    return next(d for d in _definitions() if d.forward.__qualname__.split(".")[0] == body)


def _fresh(fn, tag):
    """``fn`` compiled in this process without the disk cache, so that it has assembly."""
    return numba.njit(nogil=True, error_model="numpy")(specialize(fn, f"{tag}_asm_probe"))


def _packed(dispatcher) -> int:
    return sum(len(_PACKED.findall(asm)) for asm in dispatcher.inspect_asm().values())


@pytest.mark.parametrize("defn", _definitions(), ids=lambda d: d.name)
@pytest.mark.parametrize("kind", ["forward", "backward"])
def test_elementwise_loops_vectorize(defn, kind):
    template = _cpu._LOOP_TEMPLATES[kind]
    k = _fresh_bound(template, defn, kind)
    x = np.linspace(-3, 3, 64, dtype=np.float32)
    params = tuple(np.float32(defn.defaults.get(p, 0.5)) for p in defn.param_names)
    args = (x, np.empty_like(x)) if kind == "forward" else (np.ones_like(x), x, np.empty_like(x))
    k(*args, params)
    assert _packed(k) >= 4, f"{defn.name} {kind}: no packed vector arithmetic in the loop"


def _fresh_bound(template, defn, kind):
    fn = specialize(template, f"{defn.name}_{kind}_asm_probe", **_cpu._scalars(defn))
    return numba.njit(nogil=True, error_model="numpy")(fn)


@pytest.mark.parametrize("mode", [0, 1], ids=["softmax", "log_softmax"])
def test_softmax_rows_vectorize(mode):
    k = _fresh(_rowwise_kernels.softmax_rows, f"softmax_{mode}")
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    out = np.empty_like(x)
    k(x, out, np.float32(1), mode, np.ones((1, 1), np.bool_), False)
    np.testing.assert_allclose(out.sum(1) if mode == 0 else np.exp(out).sum(1), 1, rtol=1e-6)
    # the exponential (dozens of packed operations), not only the sums
    assert _packed(k) >= 20


@pytest.mark.parametrize("mode", [0, 1], ids=["softmax", "log_softmax"])
def test_softmax_backward_rows_vectorize(mode):
    k = _fresh(_rowwise_kernels.softmax_backward_rows, f"softmax_backward_{mode}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    g = rng.standard_normal((4, 64)).astype(np.float32)
    y = fa.softmax(x) if mode == 0 else fa.log_softmax(x)
    out = np.empty_like(x)
    k(g, y, out, np.float32(1), mode, np.ones((1, 1), np.bool_), False)
    np.testing.assert_allclose(out, fa.softmax.backward(g, x) if mode == 0 else fa.log_softmax.backward(g, x),
                               rtol=1e-6, atol=1e-7)
    # the row's dot product and the pass that writes the gradient
    assert _packed(k) >= 12


@pytest.mark.parametrize("kind", sorted(_cpu._LOOP_TEMPLATES))
@pytest.mark.parametrize("name, dtype", [("mish", np.float32), ("hardsigmoid", np.float64)])
def test_elementwise_loops_take_the_width_they_ask_for(name, dtype, kind):
    """Every loop template is vectorized with 512 bits of its dtype per step
    (``_vmath.vector_loop``), also where LLVM's cost model would pick another
    width or none (both of these, on AVX2)."""
    from fastact._compile import force_lanes

    if not force_lanes():
        pytest.skip("the loop width is set on x86-64 CPUs with AVX2")
    defn = next(d for d in _definitions() if d.name == name)
    if kind == "backward_y" and defn.grad_from_output_jit is None:
        defn = next(d for d in _definitions() if d.name == "sigmoid")  # one that has it
    k = _fresh_bound(_cpu._LOOP_TEMPLATES[kind], defn, kind)
    x = np.linspace(-3, 3, 64, dtype=dtype)
    ins = {"backward": (np.ones_like(x), x), "backward_y": (np.ones_like(x), x)}.get(kind, (x,))
    outs = (np.empty_like(x),) * (2 if kind == "value_and_grad" else 1)
    k(*ins, *outs, ())
    ir = "".join(k.inspect_llvm().values())
    lanes = "<16 x float>" if dtype == np.float32 else "<8 x double>"
    assert re.search(r"load " + re.escape(lanes), ir), f"{name} {kind}: not {lanes} per step"


def _exponentials(kind: str, defn) -> tuple:
    """The float64 exponential's range reductions (its log2(e) constant)
    in the packed code of one float32 loop, and its vector loops."""
    k = _fresh_bound(_cpu._LOOP_TEMPLATES[kind], defn, kind)
    x = np.linspace(-3, 3, 64, dtype=np.float32)
    outs = (np.empty_like(x),) * (2 if kind == "value_and_grad" else 1)
    params = tuple(np.float32(defn.defaults[p]) for p in defn.param_names)
    k(x, *outs, params)
    ir = "".join(k.inspect_llvm().values())
    return (len(re.findall(r"@llvm\.fma\.v\d+f64\([^\n]*0x3FF71547652B82FE", ir)),
            len(re.findall(r"^vector\.body[\d.]*:", ir, re.M)))


@pytest.mark.parametrize("name", ["sigmoid", "swish", "mish", "gelu_erf"])
def test_value_and_grad_computes_one_exponential(name):
    """value_and_grad inlines forward and grad into one loop; where both
    take the same exponential (and the same reciprocal) from one helper,
    LLVM computes it once, as long as both calls simplify to the same
    code. A conditional expression left as a branch, or an operation folded
    into one caller's select and not the other's, makes it two: 1.3-1.5x
    slower, the same results. One per vector loop: LLVM may compile a loop
    twice for a loop invariant (swish's beta == 1)."""
    defn = _definition(name)
    for kind in ("grad", "value_and_grad"):
        exps, loops = _exponentials(kind, defn)
        assert loops >= 1 and exps == loops, kind
        if name != "swish":  # one loop, one exponential
            assert exps == 1, kind


@pytest.mark.parametrize("name", ["elu", "celu", "selu", "softplus", "hardswish"])
def test_value_and_grad_stores_without_masks(name):
    """value_and_grad writes both values after computing both: where forward
    and grad branch on the same test, a store between them ends up inside
    the branches and vectorizes to masked stores (microcoded on AMD CPUs,
    3-6x slower loops on Zen 3). These five did so with the stores
    interleaved."""
    defn = _definition(name)
    k = _fresh_bound(_cpu._LOOP_TEMPLATES["value_and_grad"], defn, "value_and_grad")
    x = np.linspace(-3, 3, 64, dtype=np.float32)
    params = tuple(np.float32(defn.defaults[p]) for p in defn.param_names)
    k(x, np.empty_like(x), np.empty_like(x), params)
    ir = "".join(k.inspect_llvm().values())
    assert "vector.body" in ir
    assert "@llvm.masked.store" not in ir


def test_kernels_compile_with_loop_unswitching():
    """fastact's kernels compile with a raised unswitch limit (celu's
    ``alpha == 1`` loop split in two instead of both sides computed for
    every element) and leave LLVM's default to every other compilation."""
    from fastact import _compile

    seen = []
    real = _compile._set_unswitch_threshold
    try:
        _compile._set_unswitch_threshold = lambda n: (seen.append(n), real(n))
        k = _compile.jit(lambda a: a + 1.0)
        assert k(1.0) == 2.0
    finally:
        _compile._set_unswitch_threshold = real
    assert seen == [_compile._UNSWITCH_KERNELS, _compile._UNSWITCH_DEFAULT]


def test_maxout_backward_compiles_under_the_default_unswitch_limit(monkeypatch):
    """maxout's backward (whose compile the raised limit made 7x slower, at
    the same speed) compiles without touching the limit; the other row
    kernels, and a kernel asked for with unswitch=False, as documented."""
    from fastact import _compile, _rowwise_kernels

    seen = []
    real = _compile._set_unswitch_threshold
    monkeypatch.setattr(_compile, "_set_unswitch_threshold", lambda n: (seen.append(n), real(n)))
    x = np.array([[1.0, 3.0, -2.0, 5.0]])
    g = np.array([[10.0, 20.0]])
    family = _rowwise_kernels.kernel
    family.compiled.cache_clear()
    try:
        k = family.compiled("maxout_backward_rows", False)
        out = np.empty_like(x)
        k(g, x, out, 2)
        np.testing.assert_array_equal(out, [[0.0, 10.0, 0.0, 20.0]])
        assert seen == []
        family.compiled("maxout_rows", False)(x, np.empty((1, 2)), 2)
        assert seen == [_compile._UNSWITCH_KERNELS, _compile._UNSWITCH_DEFAULT]
    finally:
        family.compiled.cache_clear()
    seen.clear()
    assert _compile.jit(lambda a: a + 1.0, unswitch=False)(1.0) == 2.0
    assert seen == []
