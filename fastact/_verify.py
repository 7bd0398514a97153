"""``python -m fastact verify``: the accuracy of the elementwise kernels, measured.

Every unary function of ``fastact.ELEMENTWISE`` (default parameters; gelu
also with ``approximate='tanh'``; threshold at threshold=0.1, value=20.0) is
run forward ``f(x)``, as its derivative ``f.grad(x)`` and as its fused
vector-Jacobian product ``f.backward(g, x)``, and compared with the float64
references of ``fastact._reference``. The inputs:

* by default, a strided sample of the bit patterns: every k-th pattern (k odd,
  about ``points`` of them, from an offset drawn from ``seed``), so that every
  sign, exponent, the subnormals, the infinities and NaNs are all met; plus
  runs of ``dense`` consecutive patterns on each side of +-0, +-the smallest
  normal, +-1, the function's kinks, the interior roots of its derivative,
  and the points where its value or derivative leaves the normal range
  (found on the sample with the reference, then narrowed to one ulp);
* with ``exhaustive=True``, all 2^32 float32 bit patterns, in chunks. The
  result of each finished chunk is kept in a state directory, keyed by
  fastact's sources and the settings, so that an interrupted run resumes.

The measure (SPEC section 5). float32: ``|actual - exact| / ulp32(exact)``
with ``ulp32(e) = 2^(max(floor(log2|e|), -126) - 23)``, the ulp of the exact
value where that is normal and the smallest subnormal below; bounds forward 1,
grad 2, backward 3. An exact value beyond float32's largest is not held to the
bound, but the result must not be NaN. NaN in must give NaN out, and +-inf the
reference's value there (the limit): a violation is an infinite error at
that input. float64 (``dtype='float64'``): the relative error ``|actual -
exact| / max(|exact|, 2^-1022)``, bound 1e-14; the sample is then the float32
one with random low bits appended to every finite value (float32 inputs would
hide the rounding of products such as ``x*x``, exact in float64), a strided
sample of the float64 patterns, and the dense runs in float64.

``backward`` runs with ``g`` chosen among :data:`GRAD_OUTPUTS` by the input's
bit pattern (modulo 5); its exact value is ``g * f'(x)`` in float64.
``vs='torch'`` measures PyTorch's CPU functions on the same inputs: forward,
and the gradient by autograd (``y = f(x)``, the vector-Jacobian product with
ones and with ``g``); its worst error over the finite inputs is reported,
and separately whether it gets NaN and the infinities right.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import pathlib
import re
import sys
import time
from typing import Any, Callable, Iterable, Iterator, TextIO

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

import fastact
from fastact._compile import scalar_jit, source_hash
from fastact._reference import REFERENCES, LocalLoops

KINDS = ("forward", "grad", "backward")
#: The bounds of SPEC section 5: float32 in ulps, float64 relative.
BOUNDS = {
    "float32": {"forward": 1.0, "grad": 2.0, "backward": 3.0},
    "float64": {"forward": 1e-14, "grad": 1e-14, "backward": 1e-14},
}
#: The grad_output values of the backward check: float32 numbers, powers of
#: two and not, of magnitude at most 1, so that g * f'(x) stays in range and
#: an error of one subnormal unit in f'(x) is not magnified.
GRAD_OUTPUTS = (1.0, -0.375, 2.0**-15, float(np.float32(0.1)), -0.75)
#: Default sample size, and consecutive bit patterns on each side of a centre.
POINTS = 1 << 20
DENSE = 1 << 14
#: Bit patterns per chunk of an exhaustive run.
CHUNK = 1 << 24


@dataclasses.dataclass(frozen=True)
class Case:
    """One row group of the table: a fastact function at fixed parameters."""

    label: str
    function: Any
    params: dict
    reference: str
    kinks: tuple = ()


@functools.cache
def cases() -> tuple[Case, ...]:
    """The functions checked, in the order of the catalogue."""
    kinks = {
        "relu": (0.0,), "relu6": (0.0, 6.0), "leaky_relu": (0.0,), "elu": (0.0,), "celu": (0.0,),
        "selu": (0.0,), "softplus": (20.0,), "hardtanh": (-1.0, 1.0), "hardsigmoid": (-3.0, 3.0),
        "hardswish": (-3.0, 3.0), "softshrink": (-0.5, 0.5), "hardshrink": (-0.5, 0.5),
        "threshold": (0.1,),
    }
    out = []
    for f in fastact.ELEMENTWISE:
        if f is fastact.gelu:
            out.append(Case("gelu", f, {}, "gelu"))
            out.append(Case("gelu(tanh)", f, {"approximate": "tanh"}, "gelu_tanh"))
        elif f is fastact.threshold:
            out.append(Case("threshold", f, {"threshold": 0.1, "value": 20.0}, "threshold", kinks["threshold"]))
        else:
            out.append(Case(f.name, f, {}, f.name, kinks.get(f.name, ())))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Result:
    """The worst error of one function and kind over the inputs checked.

    ``error`` is in float32 ulps, or relative for float64; ``x`` (bit pattern
    ``bits``) is the first input where it occurs, with ``grad_output`` the
    ``g`` used there by backward, ``actual`` fastact's result and ``exact``
    the reference's. ``torch_error`` is PyTorch's worst error on the finite
    inputs among them and ``torch_specials`` whether its results at NaN and
    +-inf are right (None when not measured; NaN and None when PyTorch has no
    such function).
    """

    function: str
    kind: str
    dtype: str
    error: float
    x: float
    bits: int
    grad_output: float | None
    actual: float
    exact: float
    bound: float
    checked: int
    torch_error: float | None = None
    torch_specials: bool | None = None

    @property
    def passed(self) -> bool:
        return self.error <= self.bound


# ---------------------------------------------------------------------------
# Number formats and bit patterns.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Format:
    name: str
    dtype: type
    unsigned: type
    signed: type
    width: int
    emin: int  # exponent of the smallest normal
    mant: int  # fraction bits

    @property
    def tiny(self) -> float:
        return 2.0 ** self.emin

    @property
    def huge(self) -> float:
        return float(np.finfo(self.dtype).max)

    @property
    def relative(self) -> bool:
        return self.name == "float64"

    def keys(self, x: np.ndarray) -> np.ndarray:
        """Integers in the order of the values (-0 just below +0), as int64."""
        s = x.view(self.signed).astype(np.int64)
        return np.where(s < 0, s ^ (2 ** (self.width - 1) - 1), s)

    def values(self, keys: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`keys`."""
        s = np.where(keys < 0, keys ^ (2 ** (self.width - 1) - 1), keys)
        return s.astype(self.signed).view(self.dtype)

    def key_range(self) -> tuple[int, int]:
        return -(2 ** (self.width - 1)), 2 ** (self.width - 1) - 1


_FORMATS = {
    "float32": _Format("float32", np.float32, np.uint32, np.int32, 32, -126, 23),
    "float64": _Format("float64", np.float64, np.uint64, np.int64, 64, -1022, 52),
}


def _hex(fmt: _Format, bits: int) -> str:
    return f"0x{bits:0{fmt.width // 4}x}"


def _show(fmt: _Format, value: float) -> str:
    """Shortest repr of a value of the format (float32 values as float32)."""
    return str(fmt.dtype(value)) if fmt.name == "float32" else repr(float(value))


# ---------------------------------------------------------------------------
# The error measure, as a parallel reduction.
# ---------------------------------------------------------------------------


@intrinsic
def _exponent(typingctx, x):
    """The unbiased exponent field of a float64: floor(log2|x|) for normal x, -1023 for 0."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        field = builder.and_(builder.lshr(builder.bitcast(args[0], i64), ir.Constant(i64, 52)),
                             ir.Constant(i64, 0x7FF))
        return builder.sub(field, ir.Constant(i64, 1023))

    return types.int64(types.float64), codegen


_POW2 = np.ldexp(1.0, np.arange(-1074, 1024))  # _POW2[k + 1074] = 2^k, every finite power of two


@scalar_jit
def _error(a, e, relative, emin, mant, limit):
    """The error of a result a against the exact e (see the module docstring)."""
    if e != e:
        return 0.0 if a != a else math.inf
    if a != a:
        return math.inf
    if abs(e) > limit:  # beyond the largest finite value: only the limit at +-inf counts
        if math.isinf(e):
            return 0.0 if a == e else math.inf
        return 0.0
    d = abs(a - e)
    if relative:
        return d / max(abs(e), _POW2[emin + 1074])
    # d / 2^(max(floor(log2|e|), emin) - mant)
    return d * _POW2[mant - max(_exponent(e), emin) + 1074]


def _worst_loop(actual, exact, scale, scaled, relative, emin, mant, limit):
    """(largest error, first index where it occurs); exact[i] * scale[i] when scaled."""
    n = actual.size
    blocks = min(n, 4096)
    size = (n + blocks - 1) // blocks
    errors = np.zeros(blocks)
    where = np.zeros(blocks, dtype=np.int64)
    for b in numba.prange(blocks):
        worst = -1.0
        at = 0
        for i in range(b * size, min(n, (b + 1) * size)):
            e = exact[i] * scale[i] if scaled else exact[i]
            err = _error(np.float64(actual[i]), e, relative, emin, mant, limit)
            if err > worst:
                worst = err
                at = i
        errors[b] = worst
        where[b] = at
    best = 0
    for b in range(blocks):
        if errors[b] > errors[best]:
            best = b
    return errors[best], where[best]


def _grad_output_loop(bits, table, g):
    """g[i] = table[bits[i] % len(table)]: the backward check's g, chosen by the input's bits."""
    n = table.size
    for i in numba.prange(bits.size):
        g[i] = table[bits[i] % n]


@functools.cache
def _kernels() -> LocalLoops:
    return LocalLoops({"worst": (_worst_loop, {}), "grad_outputs": (_grad_output_loop, {})})


def _worst(fmt: _Format, actual: np.ndarray, exact: np.ndarray,
           scale: np.ndarray | None = None) -> tuple[float, int]:
    actual = np.ascontiguousarray(actual).reshape(-1)
    exact = np.ascontiguousarray(exact, dtype=np.float64).reshape(-1)
    factors = actual[:0] if scale is None else np.ascontiguousarray(scale, dtype=actual.dtype)
    if actual.size == 0:
        return 0.0, -1
    err, at = _kernels()("worst", actual.size)(actual, exact, factors, scale is not None, fmt.relative,
                                               fmt.emin, fmt.mant, fmt.huge)
    return float(err), int(at)


def ulp_error(actual: np.ndarray, exact: np.ndarray) -> float:
    """The worst error of float32 results in float32 ulps of the exact values.

    The measure of ``verify`` (see the module docstring): NaN where the exact
    value is NaN and equal infinities count as exact.
    """
    actual = np.asarray(actual)
    exact = np.asarray(exact)
    if actual.dtype != np.float32:
        raise TypeError(f"ulp_error(): actual must be a float32 array, got {actual.dtype}")
    if actual.shape != exact.shape:
        raise ValueError(f"ulp_error(): actual has shape {actual.shape}, exact {exact.shape}")
    return _worst(_FORMATS["float32"], actual, exact)[0]


# ---------------------------------------------------------------------------
# Measuring one function on one array of inputs.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Worst:
    error: float
    bits: int
    grad_output: float | None
    actual: float
    exact: float


def _reference_params(case: Case, fmt: _Format) -> dict:
    """The parameters as the kernels see them: cast to the format."""
    values = {**case.function.defaults, **case.params}
    return {k: float(fmt.dtype(values[k])) for k in REFERENCES[case.reference].params}


def _torch_function(torch: Any, case: Case) -> Callable | None:
    name = case.function.torch
    if name is None:
        return None
    module, attr = name.split(".")
    return getattr(torch if module == "torch" else torch.nn.functional, attr)


def _torch_results(torch: Any, case: Case, x: np.ndarray, g: np.ndarray) -> dict | None:
    """PyTorch's forward, gradient (vjp with ones) and vjp with g, by autograd."""
    fn = _torch_function(torch, case)
    if fn is None:
        return None
    xt = torch.from_numpy(x).requires_grad_()
    y = fn(xt, **case.params)
    (grad,) = torch.autograd.grad(y, xt, torch.ones_like(y), retain_graph=True)
    (backward,) = torch.autograd.grad(y, xt, torch.from_numpy(g))
    return {"forward": y.detach().numpy(), "grad": grad.numpy(), "backward": backward.numpy()}


class _Workspace:
    """The arrays of one measurement, reused from chunk to chunk of an exhaustive
    run: fresh ones would cost a page fault every 4 KiB."""

    def __init__(self, fmt: _Format, n: int):
        self.size = n
        self.wide = [np.empty(n) for _ in range(3)]  # x, value, derivative in float64
        self.narrow = [np.empty(n, dtype=fmt.dtype) for _ in range(4)]  # g, the three results
        self.table = np.array(GRAD_OUTPUTS, dtype=fmt.dtype)

    def take(self, n: int) -> tuple[list, list]:
        return [a[:n] for a in self.wide], [a[:n] for a in self.narrow]


def _measure(case: Case, fmt: _Format, x: np.ndarray, torch: Any,
             work: _Workspace | None = None) -> tuple[dict, dict | None]:
    """The worst error per kind of fastact (and of PyTorch, when given) on the inputs x."""
    work = _Workspace(fmt, x.size) if work is None else work
    (wide, value, slope), (g, *outs) = work.take(x.size)
    if x.dtype != np.float64:
        with np.errstate(invalid="ignore"):  # signalling NaNs turn quiet
            np.copyto(wide, x)
        x64 = wide
    else:
        x64 = x
    REFERENCES[case.reference](x64, out=(value, slope), **_reference_params(case, fmt))
    bits = x.view(fmt.unsigned)
    _kernels()("grad_outputs", x.size)(bits, work.table, g)
    f = case.function
    actual = dict(zip(KINDS, outs))
    f(x, out=actual["forward"], **case.params)
    f.grad(x, out=actual["grad"], **case.params)
    f.backward(g, x, out=actual["backward"], **case.params)
    exact = {"forward": value, "grad": slope, "backward": slope}
    worst = {}
    for kind in KINDS:
        scale = g if kind == "backward" else None
        err, i = _worst(fmt, actual[kind], exact[kind], scale)
        gi = None if scale is None else float(g[i])
        exact_i = float(exact[kind][i]) if gi is None else float(exact[kind][i]) * gi
        worst[kind] = _Worst(err, int(bits[i]), gi, float(actual[kind][i]), exact_i)
    if torch is None:
        return worst, None
    theirs = _torch_results(torch, case, x, g)
    if theirs is None:
        return worst, {kind: (math.nan, None) for kind in KINDS}
    finite = np.isfinite(x)
    torch_errors = {}
    for kind in KINDS:
        numeric, special = (
            _worst(fmt, theirs[kind][m], exact[kind][m], g[m] if kind == "backward" else None)[0]
            for m in (finite, ~finite))
        torch_errors[kind] = (numeric, special <= BOUNDS[fmt.name][kind])
    return worst, torch_errors


# ---------------------------------------------------------------------------
# The sample.
# ---------------------------------------------------------------------------


def _stride(width: int, points: int, seed: int) -> tuple[int, int, int]:
    """(stride k, offset, count) of the strided sample of the 2^width patterns."""
    space = 2**width
    stride = max(space // points, 1) | 1
    offset = int(np.random.default_rng(seed).integers(stride))
    return stride, offset, (space - offset + stride - 1) // stride


def _strided(fmt: _Format, points: int, seed: int) -> np.ndarray:
    stride, offset, count = _stride(fmt.width, points, seed)
    bits = np.arange(count, dtype=np.uint64) * np.uint64(stride) + np.uint64(offset)
    return bits.astype(fmt.unsigned).view(fmt.dtype)


def _widened(points: int, seed: int) -> np.ndarray:
    """The float32 sample as float64, random low bits appended to finite values."""
    with np.errstate(invalid="ignore"):  # signalling NaNs turn quiet
        x = _strided(_FORMATS["float32"], points, seed).astype(np.float64)
    noise = np.random.default_rng(seed).integers(0, 2**29, x.size, dtype=np.uint64)
    bits = x.view(np.uint64) | np.where(np.isfinite(x), noise, 0).astype(np.uint64)
    return bits.view(np.float64)


def _specials(fmt: _Format) -> np.ndarray:
    """Zeros, infinities, NaNs (one with a payload), the extremes and the subnormal edges."""
    fi = np.finfo(fmt.dtype)
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, fi.max, -fi.max, fi.tiny, -fi.tiny,
                       fi.smallest_subnormal, -fi.smallest_subnormal], dtype=fmt.dtype)
    payload = values[4:5].view(fmt.unsigned) | fmt.unsigned(12345)
    return np.concatenate([values, payload.view(fmt.dtype)])


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct keys (a sort: faster here than np.unique's hashing)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])]


def _normal(fmt: _Format, case: Case, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether the exact value and derivative at each key are normal numbers of the format."""
    x = fmt.values(keys)
    value, slope = REFERENCES[case.reference](x, **_reference_params(case, fmt))
    return np.abs(value) >= fmt.tiny, np.abs(slope) >= fmt.tiny


def _crossings(fmt: _Format, case: Case, keys: np.ndarray, limit: int = 16) -> list[int]:
    """Keys where the exact value or derivative enters or leaves the normal range.

    Found between neighbours of the sample ``keys`` (sorted), then narrowed to
    one ulp by multisection: each round probes 1023 evenly spaced keys of
    every bracket.
    """
    x = fmt.values(keys)
    finite = np.isfinite(x)
    found: list[int] = []
    for which, normal in enumerate(_normal(fmt, case, keys)):
        i = np.flatnonzero((normal[1:] != normal[:-1]) & finite[1:] & finite[:-1])[:limit]
        lo, hi = keys[i], keys[i + 1]
        state = normal[i]
        while lo.size and (hi - lo > 1).any():
            step = np.maximum((hi - lo) // 1024, 1)
            probe = lo[:, None] + step[:, None] * np.arange(1, 1024)
            inside = probe < hi[:, None]
            probe = np.where(inside, probe, hi[:, None])
            probed = _normal(fmt, case, probe.reshape(-1))[which].reshape(probe.shape)
            changed = (probed != state[:, None]) | ~inside
            j = np.argmax(changed, axis=1)
            rows = np.arange(lo.size)
            lo, hi = np.where(j > 0, probe[rows, j - 1], lo), probe[rows, j]
        found.extend(int(k) for k in hi)
    return found


def _sample(case: Case, fmt: _Format, points: int, dense: int, seed: int) -> np.ndarray:
    """The default inputs of one function: strided sample, specials and dense runs."""
    if fmt.name == "float32":
        base = [_strided(fmt, points, seed)]
    else:
        base = [_widened(points, seed), _strided(fmt, points // 4, seed)]
    base.append(_specials(fmt))
    keys = _unique(np.concatenate([fmt.keys(b) for b in base]))
    centres = [0.0, fmt.tiny, -fmt.tiny, 1.0, -1.0, *case.kinks, *REFERENCES[case.reference].roots]
    centre_keys = [int(k) for k in fmt.keys(np.array(centres, dtype=fmt.dtype))]
    centre_keys += _crossings(fmt, case, keys)
    lo, hi = fmt.key_range()
    runs = [np.clip(np.arange(k - dense, k + dense + 1), lo, hi) for k in set(centre_keys)]
    return fmt.values(_unique(np.concatenate([keys, *runs])))


# ---------------------------------------------------------------------------
# Exhaustive runs: chunks, state, resumption.
# ---------------------------------------------------------------------------


def default_state() -> pathlib.Path:
    """Where exhaustive runs keep their progress: ``$XDG_CACHE_HOME/fastact/verify``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "fastact" / "verify"


def _settings(case: Case, patterns: tuple[int, int], chunk: int, torch: Any) -> dict:
    """What an exhaustive result depends on; a change starts the function over."""
    return {
        "function": case.label, "params": case.params, "sources": source_hash(),
        "patterns": list(patterns), "chunk": chunk, "grad_outputs": list(GRAD_OUTPUTS),
        "torch": None if torch is None else torch.__version__,
    }


def _load(path: pathlib.Path, key: str) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state.get("chunks", {}) if state.get("key") == key else {}


def _save(path: pathlib.Path, key: str, settings: dict, chunks: dict) -> None:
    """Write the state file atomically: a crash leaves the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "settings": settings, "chunks": chunks}))
    os.replace(tmp, path)


def _exhaustive(case: Case, fmt: _Format, torch: Any, state: pathlib.Path, patterns: tuple[int, int],
                chunk: int, progress: Callable | None) -> tuple[dict, dict | None, int]:
    settings = _settings(case, patterns, chunk, torch)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = state / (re.sub(r"\W+", "_", case.label).strip("_") + ".json")
    chunks = _load(path, key)
    start, stop = patterns
    total = -(-(stop - start) // chunk)
    began = time.perf_counter()
    computed = 0
    work = _Workspace(fmt, min(chunk, stop - start))
    offsets = np.arange(work.size, dtype=np.uint32)
    patterns_buffer = np.empty_like(offsets)
    if progress is not None:
        progress(case.label, len(chunks), total, computed, 0.0)
    for j in range(total):
        if str(j) in chunks:
            continue
        lo = start + j * chunk
        n = min(chunk, stop - lo)
        x = np.add(offsets[:n], np.uint32(lo), out=patterns_buffer[:n]).view(np.float32)
        worst, torch_errors = _measure(case, fmt, x, torch, work)
        chunks[str(j)] = {"n": x.size, "torch": torch_errors,
                          **{kind: dataclasses.astuple(w) for kind, w in worst.items()}}
        _save(path, key, settings, chunks)
        computed += 1
        if progress is not None:
            progress(case.label, len(chunks), total, computed, time.perf_counter() - began)
    records = [chunks[str(j)] for j in range(total)]
    worst = {}
    for kind in KINDS:  # the largest error, the first chunk's on a tie
        for w in (_Worst(*r[kind]) for r in records):
            if kind not in worst or w.error > worst[kind].error:
                worst[kind] = w
    if torch is None:
        return worst, None, stop - start
    torch_errors = {}
    for kind in KINDS:
        numeric, special = zip(*(r["torch"][kind] for r in records))
        torch_errors[kind] = (math.nan, None) if special[0] is None else (max(numeric), all(special))
    return worst, torch_errors, stop - start


# ---------------------------------------------------------------------------
# The entry points.
# ---------------------------------------------------------------------------


def _select(functions: Iterable[str] | str | None) -> list[Case]:
    every = cases()
    if functions is None:
        return list(every)
    names = [functions] if isinstance(functions, str) else list(functions)
    labels = [c.label for c in every]
    for name in names:
        if name not in labels:
            raise ValueError(f"functions: unknown function {name!r}; choose among {', '.join(labels)}")
    if not names:
        raise ValueError("functions: no function named")
    return [c for c in every if c.label in names]


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ModuleNotFoundError("vs='torch' measures PyTorch's functions, but PyTorch is not "
                                  "installed (pip install torch)") from exc
    return torch


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:,} and {hi:,}, got {value:,}")
    return int(value)


def iter_verify(functions: Iterable[str] | str | None = None, *, dtype: str = "float32",
                exhaustive: bool = False, points: int = POINTS, dense: int = DENSE, seed: int = 0,
                vs: str | None = None, state: str | os.PathLike | None = None,
                patterns: tuple[int, int] | None = None, chunk: int = CHUNK,
                progress: Callable[[str, int, int, int, float], None] | None = None) -> Iterator[Result]:
    """The results of :func:`verify`, three per function, as each function finishes.

    The arguments are checked here, before anything runs.
    """
    selected = _select(functions)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _FORMATS:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    fmt = _FORMATS[name]
    points = _check_int("points", points, 1 << 10, 1 << 28)
    dense = _check_int("dense", dense, 0, 1 << 24)
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    chunk = _check_int("chunk", chunk, 1, 1 << 28)
    if vs not in (None, "torch"):
        raise ValueError(f"vs must be None or 'torch', got {vs!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, got {progress!r}")
    if exhaustive and fmt.name != "float32":
        raise ValueError("exhaustive covers the 2^32 float32 bit patterns: it needs dtype='float32'")
    if not exhaustive and (state is not None or patterns is not None):
        raise ValueError(f"{'state' if state is not None else 'patterns'} applies to exhaustive runs only")
    if patterns is None:
        patterns = (0, 2**32)
    elif not (isinstance(patterns, tuple) and len(patterns) == 2):
        raise TypeError(f"patterns must be a pair (start, stop), got {patterns!r}")
    else:
        patterns = (_check_int("patterns[0]", patterns[0], 0, 2**32 - 1),
                    _check_int("patterns[1]", patterns[1], patterns[0] + 1, 2**32))
    torch = _import_torch() if vs == "torch" else None
    state_dir = pathlib.Path(state) if state is not None else default_state()
    return _results(selected, fmt, exhaustive, points, dense, seed, torch, state_dir, patterns, chunk, progress)


def _results(selected, fmt, exhaustive, points, dense, seed, torch, state_dir, patterns, chunk,
             progress) -> Iterator[Result]:
    for case in selected:
        if exhaustive:
            worst, torch_errors, checked = _exhaustive(case, fmt, torch, state_dir, patterns, chunk, progress)
        else:
            x = _sample(case, fmt, points, dense, seed)
            worst, torch_errors = _measure(case, fmt, x, torch)
            checked = x.size
        for kind in KINDS:
            w = worst[kind]
            x = float(np.array(w.bits, fmt.unsigned).view(fmt.dtype))
            yield Result(case.label, kind, fmt.name, w.error, x, w.bits, w.grad_output, w.actual, w.exact,
                         BOUNDS[fmt.name][kind], checked,
                         *((None, None) if torch_errors is None else torch_errors[kind]))


def verify(functions: Iterable[str] | str | None = None, **options: Any) -> list[Result]:
    """Measure the accuracy of fastact's elementwise kernels against float64 references.

    ``functions``: labels of the table (``'relu'``, ``'gelu(tanh)'``, ...;
    default all). Options: ``dtype`` ('float32' or 'float64'); ``exhaustive``
    (every float32 bit pattern); ``points``, ``dense`` and ``seed`` (the
    default sample); ``vs='torch'`` (PyTorch's worst errors beside);
    ``state`` (the directory of an exhaustive run's progress, default
    :func:`default_state`), ``patterns`` (a ``(start, stop)`` range of bit
    patterns instead of all 2^32) and ``chunk`` (patterns per chunk);
    ``progress(function, chunks_done, chunks_total, chunks_computed,
    seconds)``, called after every chunk. See the module docstring for the
    method; one :class:`Result` per function and kind.
    """
    return list(iter_verify(functions, **options))


# ---------------------------------------------------------------------------
# The command line.
# ---------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Add the ``verify`` subcommand to the CLI's subparsers."""
    p = commands.add_parser(
        "verify", help="accuracy of every elementwise function against float64 references",
        description="Measure the worst error of every elementwise function's forward, grad and backward "
                    "against float64 references (SPEC section 5), on a sample of the float32 bit patterns "
                    "or on all of them. Exit status 1 if any bound is exceeded.")
    p.add_argument("--functions", nargs="+", metavar="NAME",
                   help="only these functions, named as in the table (relu, 'gelu(tanh)', ...)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="float32 (ulps, default) or float64 (relative error)")
    p.add_argument("--exhaustive", action="store_true",
                   help="all 2^32 float32 bit patterns, resumable (minutes per function)")
    p.add_argument("--state", metavar="DIR",
                   help=f"where --exhaustive keeps its progress (default {default_state()})")
    p.add_argument("--vs", choices=["torch"], help="also measure PyTorch's CPU functions on the same inputs")
    p.add_argument("--points", type=int, default=POINTS, help=f"size of the strided sample (default {POINTS:,})")
    p.add_argument("--seed", type=int, default=0, help="seed of the strided sample's offset (default 0)")


def _error_text(fmt: _Format, error: float) -> str:
    if math.isnan(error):
        return "-"
    if math.isinf(error):
        return "inf"
    if fmt.relative or error >= 1e4:
        return f"{error:.2e}"
    return f"{error:.3f}" if error < 10 else f"{error:.1f}"


def _where(fmt: _Format, r: Result) -> str:
    """The input of the worst error, with its bits (and g for backward); '-' if there is no error."""
    if r.error == 0:
        return "-"
    text = f"{_show(fmt, r.x)} ({_hex(fmt, r.bits)})"
    if r.grad_output is not None:
        text += f", g={str(np.float32(r.grad_output))}"
    return text


def _columns(fmt: _Format, torch: bool) -> str:
    where = 46 if fmt.name == "float32" else 66
    line = f"{{:<12}} {{:<9}} {{:>9}}  {{:<{where}}} {{:>5}}  {{:<4}} {{:>13}}"
    return line + "  {:>10}" if torch else line


def _row(fmt: _Format, r: Result, torch: bool) -> str:
    cells = [r.function, r.kind, _error_text(fmt, r.error), _where(fmt, r), f"{r.bound:g}",
             "pass" if r.passed else "FAIL", f"{r.checked:,}"]
    if torch:
        cells.append(_error_text(fmt, r.torch_error) + ("*" if r.torch_specials is False else " "))
    return _columns(fmt, torch).format(*cells)


def _describe_inputs(fmt: _Format, args: Any) -> str:
    if args.exhaustive:
        return f"inputs: all 2^32 bit patterns, in chunks of {CHUNK:,}; state in {args.state or default_state()}"
    stride, offset, count = _stride(32, args.points, args.seed)
    text = f"inputs: every {stride:,}th float32 bit pattern from {offset:,} ({count:,})"
    if fmt.relative:
        stride, offset, count = _stride(64, args.points // 4, args.seed)
        text += (f" with random low bits appended, every {stride:,}th float64 bit pattern from {offset:,} "
                 f"({count:,}),")
    return text + (f" plus {DENSE:,} consecutive patterns on each side of +-0, +-min normal, +-1, the kinks, "
                   f"the derivative's roots and the subnormal crossings")


class ProgressBar:
    """A one-line progress bar with an ETA for exhaustive runs."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __call__(self, label: str, done: int, total: int, computed: int, seconds: float) -> None:
        width = 30
        filled = width * done // total
        if computed and done < total:
            eta = f"ETA {seconds / computed * (total - done):6.0f} s"
        else:
            eta = "done" if done == total else "ETA      ?"
        self.stream.write(f"\r{label:<12} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} chunks "
                          f"{seconds:7.1f} s  {eta}")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def run(args: Any, usage_error: Callable[[str], Any], out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    """``python -m fastact verify``: print the table (to ``out``, progress to ``err``:
    standard output and error by default); 1 if a bound is exceeded, else 0.

    Bad arguments go to ``usage_error`` (the parser's ``error``, which exits).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    fmt = _FORMATS[args.dtype]
    began = time.perf_counter()
    try:
        results = iter_verify(args.functions, dtype=args.dtype, exhaustive=args.exhaustive, vs=args.vs,
                              seed=args.seed, points=args.points, state=args.state,
                              progress=ProgressBar(err) if args.exhaustive else None)
    except (ValueError, TypeError, ModuleNotFoundError) as exc:
        return usage_error(f"verify: {exc}")
    bounds = BOUNDS[fmt.name]
    measure = "relative error" if fmt.relative else "error in ulps"
    print(f"fastact {fastact.__version__} verify, {fmt.name}: worst {measure} against float64 references; "
          f"bounds (SPEC section 5): forward {bounds['forward']:g}, grad {bounds['grad']:g}, "
          f"backward {bounds['backward']:g}", file=out)
    print(_describe_inputs(fmt, args), file=out)
    print("backward: g in {" + ", ".join(str(np.float32(g)) for g in GRAD_OUTPUTS) + "} by the input's bits; "
          "NaN and +-inf inputs count as exact only if NaN and the limit come out", file=out)
    print(file=out)
    torch = args.vs is not None
    header = _columns(fmt, torch).format("function", "kind", "max err", "at x (bits)", "bound", "", "checked",
                                         *(["torch"] if torch else []))
    print(header, file=out)
    print("-" * len(header), file=out)
    done = []
    for r in results:
        done.append(r)
        print(_row(fmt, r, torch), file=out, flush=True)
    failed = [r for r in done if not r.passed]
    print(file=out)
    if torch:
        print("torch: PyTorch's worst error over the finite inputs; * its result at a NaN or infinite "
              "input is wrong too (not NaN, or not the limit); - no PyTorch function", file=out)
    for r in failed:
        print(f"FAIL {r.function} {r.kind} at x = {_where(fmt, r)}: got {_show(fmt, r.actual)}, "
              f"exact {r.exact!r}", file=out)
    print(f"{len(failed)} of {len(done)} checks failed; {time.perf_counter() - began:.1f} s", file=out)
    return 1 if failed else 0
