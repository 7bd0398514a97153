"""``python -m fastact verify``: its references, its measure, the SPEC bounds, the command.

The float64 references of ``fastact._reference`` are validated against the
mpmath-validated NumPy references of ``references.py`` (and at the hardest
points against mpmath itself); then the default check runs for every
function on a smaller sample than the command's and must meet SPEC section 5.
"""

from __future__ import annotations

import json
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import references as ref
from fastact import _cli, _reference, _verify
from fastact._reference import REFERENCES

F32_TINY = 2.0**-126
F64_TINY = 2.0**-1022
# the test's sample: 2^17 strided patterns, 2 x 1024 around every centre
POINTS = 1 << 17
DENSE = 1 << 10

CASES = {c.label: c for c in _verify.cases()}


def _test_reference(case: _verify.Case) -> tuple[str, dict]:
    """The name and parameters of the same function in references.py."""
    values = {**case.function.defaults, **case.params}
    names = ref.ELEMENTWISE[case.function.name].params.keys() | set(ref.ELEMENTWISE[case.function.name].required)
    return case.function.name, {k: v for k, v in values.items() if k in names}


def _params(case: _verify.Case, dtype) -> dict:
    """The reference's parameters, cast to dtype as the kernels see them."""
    return _verify._reference_params(case, _verify._FORMATS[np.dtype(dtype).name])


def _relative_errors(actual: np.ndarray, exact: np.ndarray, tiny: float) -> np.ndarray:
    """|actual - exact| / max(|exact|, tiny), 0 where both are the same infinity."""
    same = actual == exact
    with np.errstate(invalid="ignore"):
        return np.where(same, 0.0, np.abs(actual - exact) / np.maximum(np.abs(exact), tiny))


def _float32_grid(case: _verify.Case) -> np.ndarray:
    """Float32 inputs: dense ranges, the tails, tiny and huge values, the roots, random patterns."""
    f32 = np.float32
    parts = [
        np.linspace(-20, 20, 20001), np.linspace(-120, 120, 8001),
        np.geomspace(1e-45, 3.4e38, 3000), -np.geomspace(1e-45, 3.4e38, 3000),
    ]
    fmt = _verify._FORMATS["float32"]
    centres = [0.0, F32_TINY, -F32_TINY, 3.4028235e38, -3.4028235e38, *case.kinks,
               *REFERENCES[case.reference].roots]
    runs = [k + np.arange(-300, 301) for k in fmt.keys(np.array(centres, dtype=f32))]
    bits = np.random.default_rng(7).integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([np.concatenate(parts).astype(f32), fmt.values(np.concatenate(runs)), bits.view(f32)])
    return x[np.isfinite(x)].astype(np.float64)


def _float64_grid(case: _verify.Case) -> np.ndarray:
    """Float64 inputs with full 53-bit significands: ranges, tails, the roots' neighbourhoods."""
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**64, 1 << 14, dtype=np.uint64).view(np.float64)
    parts = [rng.uniform(-40, 40, 1 << 15), rng.uniform(-800, 800, 1 << 13), bits[np.isfinite(bits)],
             rng.standard_normal(1 << 13) * 1e-5]
    for r in REFERENCES[case.reference].roots:
        offsets = np.concatenate([np.geomspace(1e-15, 0.6, 300), -np.geomspace(1e-15, 0.6, 300)])
        parts.append(r + offsets)
        parts.append(r + np.arange(-50, 51) * np.spacing(r))
    return np.concatenate(parts)


@pytest.mark.parametrize("label", CASES)
def test_reference_matches_numpy_reference(label):
    """Relative error <= 1e-12 where the exact value is a normal float32 (float32
    inputs), <= 1e-14 where it is a normal float64 (float64 inputs)."""
    case = CASES[label]
    name, params = _test_reference(case)
    mine = REFERENCES[case.reference]
    for grid, dtype, tiny, tol in [(_float32_grid(case), np.float32, F32_TINY, 1e-12),
                                   (_float64_grid(case), np.float64, F64_TINY, 1e-14)]:
        p = {k: float(dtype(v)) if not isinstance(v, str) else v for k, v in params.items()}
        value, slope = mine(grid, **_params(case, dtype))
        exact_value = ref.ELEMENTWISE[name].forward(grid, **p)
        exact_slope = ref.ELEMENTWISE[name].grad(grid, **p)
        for what, got, exact in [("value", value, exact_value), ("derivative", slope, exact_slope)]:
            err = _relative_errors(got, exact, tiny)
            i = int(np.argmax(err))
            assert err[i] <= tol, f"{label} {what} ({dtype.__name__} grid) at x={grid[i]!r}: " \
                                  f"{got[i]!r} vs {exact[i]!r}"


@pytest.mark.parametrize("label", CASES)
def test_reference_nan_and_limits(label):
    case = CASES[label]
    name, params = _test_reference(case)
    x = np.array([np.nan, -np.nan, np.inf, -np.inf])
    value, slope = REFERENCES[case.reference](x, **_params(case, np.float64))
    assert np.isnan(value[:2]).all() and np.isnan(slope[:2]).all()
    with np.errstate(all="ignore"):
        limits = ref.ELEMENTWISE[name].forward(x[2:], **params), ref.ELEMENTWISE[name].grad(x[2:], **params)
    np.testing.assert_array_equal(value[2:], limits[0])
    np.testing.assert_array_equal(slope[2:], limits[1])


ROOTS = [("silu", "silu", {}), ("gelu", "gelu", {}), ("gelu_tanh", "gelu", {"approximate": "tanh"}),
         ("mish", "mish", {})]


@pytest.mark.parametrize("name,mp_name,params", ROOTS, ids=[r[0] for r in ROOTS])
def test_derivative_near_its_root_against_mpmath(name, mp_name, params):
    """The nearest float32 and float64 inputs to the root, and the edges of the patch."""
    r = REFERENCES[name].roots[0]
    radius = getattr(_reference, f"_{name.upper()}_RADIUS")
    r32 = np.float32(r)
    x = [float(v) for v in np.nextafter(r32, np.float32([-1, 1]) * np.inf)] + [float(r32)]
    x += [r + k * np.spacing(r) for k in (-2, -1, 0, 1, 2)]
    x += [r + s * radius * (1 + e) for s in (-1, 1) for e in (-1e-9, 1e-9)]
    _, slope = REFERENCES[name](np.array(x))
    for xi, got in zip(x, slope):
        exact = ref.mp_grad(mp_name, xi, **params)
        assert abs(got - exact) <= 1e-15 * abs(exact), (xi, got, exact)


@pytest.mark.parametrize("name,points", [
    ("gelu", [-37.6, -37.7, -30.0, -27.0000001, -26.9999999, -13.2, -5.0, 9.99, 10.01]),
    ("gelu_tanh", [-21.2, -20.9, -10.0, -0.5, 3.0]),
    ("sigmoid", [-745.0, -708.5, -87.3, -30.0, 40.0]),
    ("tanh", [354.5, 354.0, 44.0, -19.0, 1e-8]),
    ("silu", [-744.0, -710.0, -100.0, 700.5]),
    ("mish", [-744.0, -710.0, -40.0, 45.0]),
    ("tanhshrink", [1e-100, -3e-13, 1.999999, 2.0, -2.000001, 0.1]),
    ("softplus", [-745.0, -30.0, 19.999999, 20.0]),
    ("logsigmoid", [-800.0, 30.0, 700.0]),
])
def test_tails_against_mpmath(name, points):
    """Tails near underflow and the joints between formulas, value and derivative."""
    case = next(c for c in CASES.values() if c.reference == name)
    mp_name, params = _test_reference(case)
    value, slope = REFERENCES[name](np.array(points), **_params(case, np.float64))
    for i, xi in enumerate(points):
        for got, exact in [(value[i], ref.mp_forward(mp_name, xi, **params)),
                           (slope[i], ref.mp_grad(mp_name, xi, **params))]:
            assert abs(got - exact) <= 1e-15 * max(abs(exact), F64_TINY), (name, xi, got, exact)


# --- the constants, recomputed with mpmath -----------------------------------

def _mp_sigmoid(t):
    return 1 / (1 + mpmath.exp(-t))


def _mp_gelu_tanh_v(x):
    k1 = 2 * mpmath.sqrt(2 / mpmath.pi)
    return k1 * (x + mpmath.mpf("0.044715") * x**3), k1 * (1 + 3 * mpmath.mpf("0.044715") * x**2)


MP_DERIVATIVES = {
    "silu": lambda u: _mp_sigmoid(u) * (1 + u * _mp_sigmoid(-u)),
    "gelu": lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x),
    "gelu_tanh": lambda x: (lambda v, dv: _mp_sigmoid(v) + x * _mp_sigmoid(v) * _mp_sigmoid(-v) * dv)(
        *_mp_gelu_tanh_v(x)),
    "mish": lambda x: (lambda sp: mpmath.tanh(sp) + x * mpmath.sech(sp) ** 2 * _mp_sigmoid(x))(
        mpmath.log1p(mpmath.exp(x))),
}


@pytest.mark.parametrize("name", MP_DERIVATIVES)
def test_root_patch_coefficients(name):
    """The root in double-double and the Taylor coefficients, recomputed; the truncation."""
    stem = name.upper()
    rh, rl = getattr(_reference, f"_{stem}_ROOT")
    radius = getattr(_reference, f"_{stem}_RADIUS")
    coeffs = getattr(_reference, f"_{stem}_TAYLOR")
    f = MP_DERIVATIVES[name]
    with mpmath.workdps(60):
        root = mpmath.findroot(f, mpmath.mpf(rh))
        assert abs(mpmath.mpf(rh) + mpmath.mpf(rl) - root) < mpmath.mpf(2) ** -105 * abs(root)
        taylor = mpmath.taylor(f, root, len(coeffs) + 4)
        scale = abs(taylor[1]) * radius
        for k, c in enumerate(coeffs, start=1):  # the nearest float64, or negligible at the edge
            err = abs(c - taylor[k])
            assert err <= 2.0**-53 * abs(taylor[k]) or err * radius**k <= 1e-19 * scale, (k, c, taylor[k])
        tail = sum(abs(taylor[k]) * radius**k for k in range(len(coeffs) + 1, len(coeffs) + 5))
        assert tail <= 1e-17 * scale


def test_constants():
    with mpmath.workdps(60):
        pairs = [(_reference._INV_SQRT2, 1 / mpmath.sqrt(2)),
                 (_reference._GT_K1, 2 * mpmath.sqrt(2 / mpmath.pi)),
                 (_reference._GT_K3, 2 * mpmath.sqrt(2 / mpmath.pi) * mpmath.mpf("0.044715"))]
        for (hi, lo), exact in pairs:
            assert abs(mpmath.mpf(hi) + mpmath.mpf(lo) - exact) < mpmath.mpf(2) ** -104 * abs(exact)
        scale = mpmath.mpf(ref._SELU_SCALE_STR)
        singles = [(_reference._TWO_OVER_SQRT_PI, 2 / mpmath.sqrt(mpmath.pi)),
                   (_reference._INV_SQRT_2PI, 1 / mpmath.sqrt(2 * mpmath.pi)),
                   (_reference._SELU_SCALE, scale),
                   (_reference._SELU_SCALE_ALPHA, scale * mpmath.mpf(ref._SELU_ALPHA_STR))]
        for value, exact in singles:
            assert value == float(exact)


def test_reference_rejects_wrong_parameters():
    with pytest.raises(TypeError, match="negative_slope"):
        REFERENCES["leaky_relu"](np.zeros(3))


# --- the measure ---------------------------------------------------------------

@pytest.mark.parametrize("actual,exact,expected", [
    (1 + 2**-23, 1.0, 1.0),
    (1 - 2**-24, 1.0, 0.5),
    (3.0, 3.0 + 2**-22, 1.0),
    (2.0**-130 + 2**-149, 2.0**-130, 1.0),  # below the normal range: units of 2^-149
    (2.0**-148, 0.0, 2.0),
    (np.nan, np.nan, 0.0),
    (0.0, np.nan, np.inf),  # NaN in must give NaN out
    (np.nan, 0.0, np.inf),  # and never NaN where the limit exists
    (np.inf, np.inf, 0.0),
    (3.4028235e38, np.inf, np.inf),
    (np.inf, 3.5e38, 0.0),  # an exact value beyond float32's largest is not held to a bound
    (np.nan, 3.5e38, np.inf),
])
def test_ulp_error(actual, exact, expected):
    assert _verify.ulp_error(np.array([actual], np.float32), np.array([exact])) == expected


def test_ulp_error_takes_float32_only():
    with pytest.raises(TypeError, match="float32"):
        _verify.ulp_error(np.zeros(2), np.zeros(2))


# --- the SPEC bounds -------------------------------------------------------------

@pytest.mark.parametrize("label", CASES)
def test_float32_bounds(label):
    """Forward within 1 ulp, grad 2, backward 3 (SPEC section 5), NaN and limits exact."""
    results = _verify.verify([label], points=POINTS, dense=DENSE)
    assert [r.kind for r in results] == list(_verify.KINDS)
    for r in results:
        assert r.checked > POINTS and r.bound == _verify.BOUNDS["float32"][r.kind]
        assert r.passed, f"{r.function} {r.kind}: {r.error:.3g} ulp at x={r.x!r} ({r.bits:#010x}), " \
                         f"g={r.grad_output}: {r.actual!r} vs exact {r.exact!r}"


@pytest.mark.parametrize("label", CASES)
def test_float64_bounds(label):
    """Relative error below 1e-14 (SPEC section 5), NaN and limits exact."""
    for r in _verify.verify([label], dtype="float64", points=POINTS // 4, dense=DENSE // 4):
        assert r.passed, f"{r.function} {r.kind}: {r.error:.3g} at x={r.x!r} ({r.bits:#018x}), " \
                         f"g={r.grad_output}: {r.actual!r} vs exact {r.exact!r}"


def test_sample_contains_the_centres():
    """Sorted distinct inputs with the special values, and runs around every centre."""
    fmt = _verify._FORMATS["float32"]
    x = _verify._sample(CASES["hardswish"], fmt, POINTS, 4, 0)
    keys = fmt.keys(x)
    assert np.all(np.diff(keys) > 0) and np.isnan(x).any()
    assert np.isin(fmt.keys(np.array([-0.0, np.inf, -np.inf, 3.4028235e38], np.float32)), keys).all()
    for v in [0.0, F32_TINY, -F32_TINY, 1.0, -1.0, 3.0, -3.0]:  # 0.0: the run covers -0.0 too
        k = int(fmt.keys(np.array([v], np.float32))[0])
        assert np.isin(np.arange(k - 4, k + 5), keys).all(), v


def test_subnormal_crossings_are_found_to_one_ulp():
    """sigmoid leaves the normal float32 range at x = -87.34, sigmoid' at +-87.34."""
    fmt = _verify._FORMATS["float32"]
    case = CASES["sigmoid"]
    found = _verify._crossings(fmt, case, np.sort(fmt.keys(_verify._strided(fmt, POINTS, 0))))
    edges = fmt.values(np.array(found))
    assert sorted(np.round(edges.astype(np.float64), 2).tolist()) == [-87.34, -87.34, 87.34]
    for k in found:  # the state changes between the key and the one below it
        value, slope = REFERENCES["sigmoid"](fmt.values(np.array([k - 1, k])))
        assert any((abs(v[0]) >= F32_TINY) != (abs(v[1]) >= F32_TINY) for v in (value, slope))


def test_argument_errors():
    with pytest.raises(ValueError, match="functions.*'nope'"):
        _verify.verify(["nope"])
    with pytest.raises(ValueError, match="dtype"):
        _verify.verify(["relu"], dtype="float16")
    with pytest.raises(ValueError, match="points"):
        _verify.verify(["relu"], points=5)
    with pytest.raises(TypeError, match="dense"):
        _verify.verify(["relu"], dense=1.5)
    with pytest.raises(ValueError, match="vs"):
        _verify.verify(["relu"], vs="jax")
    with pytest.raises(ValueError, match="exhaustive.*float32"):
        _verify.verify(["relu"], exhaustive=True, dtype="float64")
    with pytest.raises(ValueError, match="state"):
        _verify.verify(["relu"], state="somewhere")
    with pytest.raises(ValueError, match="patterns"):
        _verify.verify(["relu"], exhaustive=True, patterns=(10, 5))


# --- exhaustive runs: chunks, state, resumption ------------------------------------

RANGE = (0x3F780000, 0x3F780000 + (1 << 20))  # the 2^20 patterns around x = 1


class Recorder:
    def __init__(self, stop_after: int | None = None):
        self.calls: list[tuple] = []
        self.stop_after = stop_after

    def __call__(self, label, done, total, computed, seconds):
        self.calls.append((label, done, total, computed))
        if self.stop_after is not None and computed == self.stop_after:
            raise KeyboardInterrupt


def test_exhaustive_resumes(tmp_path):
    options = {"exhaustive": True, "patterns": RANGE, "chunk": 1 << 19}
    fresh = _verify.verify(["sigmoid"], state=tmp_path / "fresh", **options)
    assert all(r.checked == 1 << 20 for r in fresh)

    state = tmp_path / "state"
    with pytest.raises(KeyboardInterrupt):  # interrupted after the first chunk
        _verify.verify(["sigmoid"], state=state, progress=Recorder(stop_after=1), **options)
    saved = json.loads((state / "sigmoid.json").read_text())
    assert list(saved["chunks"]) == ["0"]

    recorder = Recorder()
    assert _verify.verify(["sigmoid"], state=state, progress=recorder, **options) == fresh
    assert recorder.calls == [("sigmoid", 1, 2, 0), ("sigmoid", 2, 2, 1)]  # chunk 0 was skipped

    recorder = Recorder()
    assert _verify.verify(["sigmoid"], state=state, progress=recorder, **options) == fresh
    assert recorder.calls == [("sigmoid", 2, 2, 0)]  # nothing left to do


def test_exhaustive_starts_over_when_settings_or_sources_change(tmp_path, monkeypatch):
    options = {"exhaustive": True, "patterns": RANGE, "state": tmp_path}
    _verify.verify(["relu"], chunk=1 << 19, **options)
    recorder = Recorder()
    _verify.verify(["relu"], chunk=1 << 18, progress=recorder, **options)
    assert recorder.calls[0][1:] == (0, 4, 0) and recorder.calls[-1][1:] == (4, 4, 4)
    monkeypatch.setattr(_verify, "source_hash", lambda: "edited")
    recorder = Recorder()
    _verify.verify(["relu"], chunk=1 << 18, progress=recorder, **options)
    assert recorder.calls[-1][1:] == (4, 4, 4)


def test_exhaustive_matches_the_sample_measure(tmp_path):
    """The chunked run over a range gives what a sample of exactly that range gives."""
    results = _verify.verify(["gelu"], exhaustive=True, patterns=RANGE, chunk=1 << 18, state=tmp_path)
    x = np.arange(*RANGE, dtype=np.uint32).view(np.float32)
    worst, _ = _verify._measure(CASES["gelu"], _verify._FORMATS["float32"], x, None)
    for r in results:
        assert (r.error, r.bits) == (worst[r.kind].error, worst[r.kind].bits)


# --- the command line ------------------------------------------------------------

def test_command_prints_the_table_and_exits_with_the_verdict():
    argv = ["verify", "--functions", "relu", "sigmoid", "--points", str(POINTS)]
    proc = subprocess.run([sys.executable, "-W", "error", "-m", "fastact", *argv],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] in (["relu"], ["sigmoid"])]
    assert [(r[0], r[1]) for r in rows] == [(f, k) for f in ("sigmoid", "relu") for k in _verify.KINDS]
    assert all("pass" in r for r in rows if r[0] == "relu")
    failed = any("FAIL" in r for r in rows)
    assert proc.returncode == int(failed)
    assert ("0 of 6 checks failed" in proc.stdout) != failed


def test_command_fails_when_a_kernel_is_wrong(monkeypatch, capsys):
    import fastact

    wrong = _verify.Case("relu", fastact.relu6, {}, "relu", (0.0, 6.0))  # relu6 is not relu beyond 6
    monkeypatch.setattr(_verify, "cases", lambda: (wrong,))
    assert _cli.main(["verify", "--points", str(POINTS)]) == 1
    out = capsys.readouterr().out
    assert "FAIL relu forward" in out and "3 of 3 checks failed" in out


def test_command_rejects_bad_arguments(capsys):
    for argv, word in [(["--functions", "nope"], "nope"), (["--exhaustive", "--dtype", "float64"], "float32"),
                       (["--state", "somewhere"], "state"), (["--points", "3"], "points")]:
        with pytest.raises(SystemExit) as exc:
            _cli.main(["verify", *argv])
        assert exc.value.code == 2
        assert word in capsys.readouterr().err


def test_vs_torch(capsys):
    pytest.importorskip("torch")
    results = _verify.verify(["sigmoid", "swish"], vs="torch", points=POINTS, dense=DENSE)
    by = {(r.function, r.kind): r for r in results}
    for kind in _verify.KINDS:
        assert by["sigmoid", kind].torch_error >= 0 and by["sigmoid", kind].torch_specials
        # swish has no PyTorch counterpart
        assert np.isnan(by["swish", kind].torch_error) and by["swish", kind].torch_specials is None
    assert _cli.main(["verify", "--functions", "relu", "--vs", "torch", "--points", str(POINTS)]) in (0, 1)
    out = capsys.readouterr().out
    assert "torch" in out.splitlines()[4]


def test_vs_torch_exhaustive(tmp_path):
    pytest.importorskip("torch")
    options = {"exhaustive": True, "patterns": RANGE, "chunk": 1 << 19, "state": tmp_path, "vs": "torch"}
    by = {(r.function, r.kind): r for r in _verify.verify(["sigmoid", "swish"], **options)}
    again = {(r.function, r.kind): r for r in _verify.verify(["sigmoid", "swish"], **options)}  # from the state
    assert by == again
    assert by["sigmoid", "grad"].torch_error >= 0 and by["sigmoid", "grad"].torch_specials
    assert np.isnan(by["swish", "grad"].torch_error) and by["swish", "grad"].torch_specials is None


def test_vs_torch_without_torch(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ModuleNotFoundError, match="PyTorch"):
        _verify.verify(["relu"], vs="torch")
    with pytest.raises(SystemExit):
        _cli.main(["verify", "--functions", "relu", "--vs", "torch"])
    assert "PyTorch" in capsys.readouterr().err
