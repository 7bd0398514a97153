"""Accuracy (and speed) of fastact's vectorizable math core, ``fastact._vmath``.

float32: a strided sample of all 2^32 bit patterns (every ``--stride``-th,
44 M inputs for the default 97) plus dense runs of consecutive patterns around
0, the range-reduction boundaries and the overflow / underflow thresholds,
against the float64 NumPy / SciPy function on the float64-cast input (whose
error, ~2^-52 relative, is ~2^-29 of a float32 ulp). Reported: the largest
error in float32 ulps where the exact result is a normal float32, the largest
error in units of the smallest subnormal where it is subnormal, and any
special-value mismatch (NaN, infinity, overflow, flush to zero, sign).

float64: relative error on 10^6 random inputs plus tails against the long
double NumPy function (64-bit significand), and on a subset against mpmath at
40 digits.

``--speed``: GB/s (bytes read + written) of a ``prange`` loop
``out[i] = f(x[i])`` on 2^24 float32 elements, median of 9 runs, against the
same loop with ``math.<f>`` and against NumPy's ufunc.

    python bench/vmath_accuracy.py                 # float32 sweep + float64
    python bench/vmath_accuracy.py --stride 1 exp  # every float32 (minutes)
    python bench/vmath_accuracy.py --speed
"""

from __future__ import annotations

import argparse
import math
import time

import mpmath
import numpy as np
import scipy.special
from numba import njit, prange

from fastact import _vmath

NAMES = ("exp", "expm1", "log", "log1p", "tanh", "erfc")
REF = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "tanh": np.tanh,
    "erfc": scipy.special.erfc,
}
MPREF = {
    "exp": mpmath.exp,
    "expm1": mpmath.expm1,
    "log": mpmath.log,
    "log1p": mpmath.log1p,
    "tanh": mpmath.tanh,
    "erfc": mpmath.erfc,
}


def _loop(f):
    @njit(parallel=True)
    def run(x, out):
        for i in prange(x.size):
            out[i] = f(x[i])

    return run


LOOPS = {name: _loop(getattr(_vmath, name)) for name in NAMES if hasattr(_vmath, name)}

_LN2 = math.log(2)


def _around(values, width):
    """float32 bit patterns within +-width of each value (both signs of none)."""
    b = np.asarray(values, np.float32).view(np.int32).astype(np.int64)
    runs = b[:, None] + np.arange(-width, width + 1)[None, :]
    runs = runs[(runs >= np.iinfo(np.int32).min) & (runs <= np.iinfo(np.int32).max)]
    return runs.astype(np.int32).view(np.float32)


def dense32(name):
    """Consecutive float32 inputs where errors concentrate, per function."""
    near0 = [2.0**-k for k in range(1, 40)]
    near0 += [-v for v in near0] + [0.0]
    if name in ("exp", "expm1"):
        # n = round(x / ln2) changes at (k + 1/2) ln2
        cuts = [(k + 0.5) * _LN2 for k in range(-151, 129)]
        edges = [88.72284, -87.33655, -103.27893, -103.97208, -16.6, -17.32868]
        return np.concatenate([_around(cuts, 1 << 11), _around(edges, 1 << 14), _around(near0, 1 << 10)])
    if name == "log":
        cuts = [math.sqrt(2) * 2.0**k for k in range(-149, 128)]
        sub = np.arange(0, 1 << 23, 7, dtype=np.int32).view(np.float32)  # subnormals
        return np.concatenate([_around(cuts, 1 << 11), _around([1.0], 1 << 16), sub])
    if name == "log1p":
        cuts = [math.sqrt(2) * 2.0**k - 1 for k in range(-24, 128)]
        edges = [-1.0, -0.5, 1.0, 2.0**24]
        return np.concatenate([_around(cuts, 1 << 11), _around(edges, 1 << 14), _around(near0, 1 << 10)])
    if name == "tanh":
        edges = [0.5 * (k + 0.5) * _LN2 for k in range(0, 30)] + [9.0, 9.1, 0.55, 1.0]
        edges += [-v for v in edges]
        return np.concatenate([_around(edges, 1 << 12), _around(near0, 1 << 10)])
    if name == "erfc":
        edges = [0.0, 0.5, 0.84375, 1.0, 1.25, 2.0, 2.857, 4.0, 6.0, 9.19, 10.0, 10.05]
        edges += [-v for v in edges]
        return np.concatenate([_around(edges, 1 << 12), _around(near0, 1 << 10)])
    return np.empty(0, np.float32)


def strided32(stride, chunk=1 << 22):
    """Every stride-th float32 bit pattern, in chunks."""
    total = 1 << 32
    step = chunk * stride
    for start in range(0, total, step):
        idx = np.arange(start, min(start + step, total), stride, dtype=np.uint64)
        yield idx.astype(np.uint32).view(np.float32)


class Worst:
    def __init__(self):
        self.ulp = (0.0, None, None, None)  # error, x, y, reference
        self.sub = (0.0, None, None, None)
        self.special = []
        self.count = 0

    def add(self, x, y, ref):
        self.count += x.size
        f32max = float(np.finfo(np.float32).max)
        # exact results beyond the last rounding boundary overflow
        ovf = np.abs(ref) >= f32max + 2.0**103
        refnan = np.isnan(ref)
        ynan = np.isnan(y)
        yinf = np.isinf(y)
        bad = (refnan != ynan) | (ovf & ~yinf) | (~ovf & ~refnan & yinf)
        bad |= ovf & yinf & (np.sign(y) != np.sign(ref))
        ok = ~(refnan | ovf | ynan | yinf)
        # signed zeros: an exactly zero reference (x = +-0) must keep its sign
        zero = ok & (ref == 0) & (y == 0)
        bad |= zero & (np.signbit(y) != np.signbit(ref))
        if bad.any():
            for i in np.flatnonzero(bad)[:5]:
                self.special.append((float(x[i]), float(y[i]), float(ref[i])))
        with np.errstate(invalid="ignore"):
            yd = y.astype(np.float64)
        a = np.abs(ref)
        normal = ok & (a >= 2.0**-126)
        if normal.any():
            e = np.frexp(a[normal])[1] - 1
            err = np.abs(yd[normal] - ref[normal]) / np.ldexp(1.0, e - 23)
            i = int(np.argmax(err))
            if err[i] > self.ulp[0]:
                xs = x[normal]
                self.ulp = (float(err[i]), float(xs[i]), float(y[normal][i]), float(ref[normal][i]))
        subn = ok & (a < 2.0**-126)
        if subn.any():
            err = np.abs(yd[subn] - ref[subn]) / 2.0**-149
            i = int(np.argmax(err))
            if err[i] > self.sub[0]:
                xs = x[subn]
                self.sub = (float(err[i]), float(xs[i]), float(y[subn][i]), float(ref[subn][i]))


def sweep32(name, stride):
    loop, ref = LOOPS[name], REF[name]
    w = Worst()
    chunks = list(strided32(stride)) if stride else []
    for x in [*chunks, dense32(name)]:
        y = np.empty_like(x)
        loop(x, y)
        with np.errstate(all="ignore"):
            r = ref(x.astype(np.float64))
        w.add(x, y, r)
    return w


def _tails64(name, rng, n):
    """float64 inputs for one function: its useful range, uniform and log-spaced."""
    def logspace(lo, hi, k):
        return np.exp(rng.uniform(np.log(lo), np.log(hi), k))

    bits = rng.integers(0, 0x7FF0000000000000, n // 4, dtype=np.int64).view(np.float64)  # any finite
    bits = bits * rng.choice([-1.0, 1.0], bits.size)
    if name == "exp":
        parts = [rng.uniform(-745.2, 709.8, n // 2), rng.uniform(-1, 1, n // 8), logspace(1e-300, 1, n // 8)]
    elif name == "expm1":
        parts = [rng.uniform(-40, 709.8, n // 2), logspace(1e-300, 1, n // 8), -logspace(1e-300, 1, n // 8)]
    elif name in ("log", "log1p"):
        parts = [logspace(5e-324, 1e308, n // 2), rng.uniform(0, 3, n // 8)]
        if name == "log1p":
            parts += [rng.uniform(-1, 0, n // 8), -logspace(1e-300, 1, n // 8)]
        else:
            parts += [1 + rng.uniform(-1e-3, 1e-3, n // 8)]
    elif name == "tanh":
        parts = [rng.uniform(-20, 20, n // 2), logspace(1e-300, 1, n // 8), -logspace(1e-300, 1, n // 8)]
    else:  # erfc
        parts = [rng.uniform(-6, 27.3, n // 2), logspace(1e-300, 1, n // 8), -logspace(1e-300, 1, n // 8)]
    return np.concatenate([*parts, bits])


def _rel(y, ref):
    ok = np.isfinite(ref) & (np.abs(ref) >= 2.0**-1022) & (np.abs(ref) <= np.finfo(np.float64).max)
    err = np.zeros(y.shape, np.float64)
    with np.errstate(all="ignore"):
        err[ok] = np.abs((y[ok] - ref[ok]) / ref[ok]).astype(np.float64)
    err[ok & ~np.isfinite(y)] = np.inf
    return err


def check64(name, n=10**6, n_mp=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = _tails64(name, rng, n)
    y = np.empty_like(x)
    LOOPS[name](x, y)
    out = {}
    if name != "erfc":  # no long double erfc in NumPy: mpmath only
        with np.errstate(all="ignore"):
            r = getattr(np, name)(x.astype(np.longdouble))
        err = _rel(y.astype(np.longdouble), r)
        i = int(np.argmax(err))
        out["longdouble"] = (float(err[i]), float(x[i]), x.size)
    else:
        n_mp = 20000
    mpmath.mp.dps = 40
    idx = rng.choice(x.size, n_mp, replace=False)
    worst = (0.0, None)
    for v, got in zip(x[idx], y[idx], strict=True):
        v, got = float(v), float(got)
        if not math.isfinite(v) or (name == "log" and v <= 0) or (name == "log1p" and v <= -1):
            continue
        if name == "erfc" and abs(v) > 40:
            continue  # 0 or 2 (and beyond what mpmath's erfc accepts)
        r = MPREF[name](mpmath.mpf(v))
        if not (2.0**-1022 <= abs(r) <= np.finfo(np.float64).max):
            continue  # not a normal float64
        err = float(abs((mpmath.mpf(got) - r) / r)) if math.isfinite(got) else math.inf
        if err > worst[0]:
            worst = (err, v)
    out["mpmath"] = (worst[0], worst[1], n_mp)
    return out


def speed(names, n=1 << 24, repeat=9):
    import numba

    @njit(parallel=True)
    def copy(x, out):
        for i in prange(x.size):
            out[i] = x[i]

    libm = {
        "exp": math.exp, "expm1": math.expm1, "log": math.log, "log1p": math.log1p,
        "tanh": math.tanh, "erfc": math.erfc,
    }
    rng = np.random.default_rng(1)
    inputs = {
        "exp": rng.uniform(-10, 10, n), "expm1": rng.uniform(-10, 10, n),
        "log": rng.uniform(0, 100, n), "log1p": rng.uniform(-0.9, 100, n),
        "tanh": rng.uniform(-5, 5, n), "erfc": rng.uniform(-5, 5, n),
    }
    out = np.empty(n, np.float32)

    def gbs(f, x):
        f(x, out)
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            f(x, out)
            ts.append(time.perf_counter() - t0)
        return 2 * x.nbytes / np.median(ts) / 1e9

    vexp = _vmath.exp

    @njit(parallel=True)
    def sigmoid_v(x, out):
        for i in prange(x.size):
            v = x[i]
            e = vexp(-abs(v))
            s = type(v)(1) / (type(v)(1) + e)
            out[i] = s if v >= 0 else e * s

    @njit(parallel=True)
    def sigmoid_m(x, out):
        for i in prange(x.size):
            v = x[i]
            e = math.exp(-abs(v))
            s = type(v)(1) / (type(v)(1) + e)
            out[i] = s if v >= 0 else e * s

    x0 = rng.uniform(-10, 10, n).astype(np.float32)
    print(f"threads {numba.get_num_threads()}, {n} float32, median of {repeat}; GB/s = bytes read + written")
    print(f"{'copy':10s} {gbs(copy, x0):6.1f}")
    print(f"{'':10s} {'_vmath':>7s} {'libm':>7s} {'numpy':>7s}")
    for name in names:
        x = inputs[name].astype(np.float32)
        ufunc = scipy.special.erfc if name == "erfc" else getattr(np, name)
        print(f"{name:10s} {gbs(LOOPS[name], x):7.1f} {gbs(_loop(libm[name]), x):7.1f} "
              f"{gbs(lambda a, o, u=ufunc: u(a, out=o), x):7.1f}")
    print(f"{'sigmoid':10s} {gbs(sigmoid_v, x0):7.1f} {gbs(sigmoid_m, x0):7.1f} "
          f"{gbs(lambda a, o: scipy.special.expit(a, out=o), x0):7.1f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=[n for n in NAMES if n in LOOPS])
    p.add_argument("--stride", type=int, default=97, help="float32 bit-pattern stride (0: dense runs only)")
    p.add_argument("--no64", action="store_true", help="skip the float64 checks")
    p.add_argument("--speed", action="store_true", help="measure throughput instead")
    a = p.parse_args(argv)
    if a.speed:
        speed(a.names)
        return
    for name in a.names:
        t0 = time.perf_counter()
        w = sweep32(name, a.stride)
        print(f"float32 {name}: {w.count} inputs, {time.perf_counter() - t0:.0f} s")
        print(f"  max {w.ulp[0]:.3f} ulp at x={w.ulp[1]!r} (got {w.ulp[2]!r}, exact {w.ulp[3]!r})")
        print(f"  subnormal results: max {w.sub[0]:.3f} x 2^-149 at x={w.sub[1]!r}")
        print(f"  special-value mismatches: {w.special[:5] if w.special else 'none'}")
        if not a.no64:
            for ref, (err, x, count) in check64(name).items():
                print(f"float64 {name} vs {ref} ({count} inputs): max relative error {err:.3g} at x={x!r}")


if __name__ == "__main__":
    main()
