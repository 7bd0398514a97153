"""GPU benchmark and check: fastact's CUDA kernels against the CPU path, CuPy and PyTorch.

    python bench/gpu.py                      # every function, 2^26 float32 elements
    python bench/gpu.py --n 16777216 --only sigmoid,gelu,softmax --repeat 50

First every kernel (elementwise forward, grad, backward, backward from the
output, value_and_grad; the softmax family forward and backward; glu, maxout,
prelu; the losses) is run on a small float32 and float64 input holding the
edge values and compared with fastact's CPU kernels: the worst difference in
ulps is printed, and the exit status is 1 when it exceeds the bound (or a NaN
appears where the CPU has none). Then each function is timed on one GPU array
of ``--n`` float32 elements (rows of 1024 for the row-wise functions), with
the output preallocated (``out=``) and not, next to CuPy (its elementwise
expressions, ``cupyx.scipy.special`` where it has the function) and PyTorch
CUDA when they are installed. Throughput is bytes read and written per
second, and its percentage of the device-to-device copy bandwidth measured at
the start (what the memory can do).

Needs a CUDA GPU and numba-cuda (``pip install "fastact[cuda]"``); exits with
a message otherwise. CuPy and PyTorch are optional.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

ULP_BOUND = {np.float32: 8, np.float64: 64}


def _cuda():
    """numba.cuda when a GPU is usable, else None (and why)."""
    try:
        import importlib.util

        if importlib.util.find_spec("numba_cuda") is None:
            return None, 'numba-cuda is not installed: pip install "fastact[cuda]"'
        from numba import cuda
    except ImportError as e:  # pragma: no cover - depends on the installation
        return None, f"numba.cuda cannot be imported ({e})"
    if not cuda.is_available():
        return None, "no CUDA device: numba.cuda.is_available() is False"
    return cuda, ""


def _optional(name: str):
    try:
        mod = __import__(name)
    except ImportError:
        return None
    if name == "torch" and not mod.cuda.is_available():
        return None
    return mod


# --- correctness -----------------------------------------------------------------

def _ulps(got: np.ndarray, ref: np.ndarray) -> float:
    """The worst difference in ulps of ref; inf where NaN or inf patterns differ."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        return math.inf
    nan_g, nan_r = np.isnan(got), np.isnan(ref)
    if (nan_g != nan_r).any():
        return math.inf
    ok = ~nan_r
    g, r = got[ok].astype(np.float64), ref[ok].astype(np.float64)
    inf = np.isinf(r) | np.isinf(g)
    if (g[inf] != r[inf]).any():
        return math.inf
    g, r = g[~inf], r[~inf]
    if not g.size:
        return 0.0
    spacing = np.spacing(np.abs(r).astype(got.dtype)).astype(np.float64)
    tiny = np.finfo(got.dtype).smallest_subnormal
    return float(np.max(np.abs(g - r) / np.maximum(spacing, tiny)))


def _row_ulps(got: np.ndarray, ref: np.ndarray) -> float:
    """The worst difference in ulps of the largest magnitude of its row: the
    measure for results formed from a sum over the row (in another order on
    the GPU), whose small entries carry the sum's absolute rounding error."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape or (np.isnan(got) != np.isnan(ref)).any():
        return math.inf
    finite = np.isfinite(ref)
    if (got[~finite & ~np.isnan(ref)] != ref[~finite & ~np.isnan(ref)]).any():
        return math.inf
    r = np.where(finite, ref, 0).astype(np.float64).reshape(-1, ref.shape[-1] if ref.ndim else 1)
    g = np.where(finite, got, 0).astype(np.float64).reshape(r.shape)
    scale = np.spacing(np.abs(r).max(axis=1, keepdims=True).astype(got.dtype)).astype(np.float64)
    return float(np.max(np.abs(g - r) / np.maximum(scale, np.finfo(got.dtype).smallest_subnormal)))


def check(cuda) -> bool:
    import fastact as fa

    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 20.0, -20.0, 100.0, -100.0, 1e-3, -1e-3,
             np.inf, -np.inf, np.nan, 1e30, -1e30]
    ok = True
    print("correctness: worst difference from the CPU kernels, in ulps (of the row's largest\n"
          "magnitude for the functions along an axis and the losses)")
    for dtype in (np.float32, np.float64):
        x = np.concatenate([edges, rng.standard_normal(4093) * 5,
                            rng.standard_normal(1000) * 60]).astype(dtype)
        g = rng.standard_normal(x.size).astype(dtype)
        dx, dg = cuda.to_device(x), cuda.to_device(g)
        bound = ULP_BOUND[dtype]
        for f in fa.ELEMENTWISE:
            kw = {"threshold": 0.5, "value": -1.0} if f is fa.threshold else {}
            variants = [("", kw)]
            if f is fa.gelu:
                variants.append((" tanh", {"approximate": "tanh"}))
            for tag, p in variants:
                rows = {
                    "forward": (f(dx, **p), f(x, **p)),
                    "grad": (f.grad(dx, **p), f.grad(x, **p)),
                    "backward": (f.backward(dg, dx, **p), f.backward(g, x, **p)),
                    "value": (f.value_and_grad(dx, **p)[0], f.value_and_grad(x, **p)[0]),
                }
                if f.from_output:
                    y = f(x, **p)
                    rows["backward_y"] = (f.backward(dg, y=cuda.to_device(y), **p),
                                          f.backward(g, y=y, **p))
                worst = {k: _ulps(a.copy_to_host(), b) for k, (a, b) in rows.items()}
                bad = max(worst.values()) > bound
                ok &= not bad
                print(f"  {'FAIL' if bad else 'ok  '} {np.dtype(dtype).name:7} {f.name + tag:22} "
                      + " ".join(f"{k}={v:.3g}" for k, v in worst.items()))
        r = x[: 4096].reshape(32, 128)
        gr = g[: 4096].reshape(32, 128)
        dr, dgr = cuda.to_device(r), cuda.to_device(gr)
        w = np.linspace(0.1, 0.4, 32).astype(dtype)
        targets = (np.arange(32) * 7) % 128
        rows = {
            "softmax": (fa.softmax(dr), fa.softmax(r)),
            "log_softmax": (fa.log_softmax(dr), fa.log_softmax(r)),
            "softmin.backward": (fa.softmin.backward(dgr, dr), fa.softmin.backward(gr, r)),
            "softmax.backward y=": (fa.softmax.backward(dgr, y=fa.softmax(dr)),
                                    fa.softmax.backward(gr, y=fa.softmax(r))),
            "glu": (fa.glu(dr), fa.glu(r)),
            "glu.backward": (fa.glu.backward(dgr[:, :64], dr), fa.glu.backward(gr[:, :64], r)),
            "maxout": (fa.maxout(dr, pool_size=4), fa.maxout(r, pool_size=4)),
            "maxout.backward": (fa.maxout.backward(dgr[:, :32], dr, pool_size=4),
                                fa.maxout.backward(gr[:, :32], r, pool_size=4)),
            "prelu": (fa.prelu(dr, cuda.to_device(w), axis=0), fa.prelu(r, w, axis=0)),
            "prelu.backward gw": (fa.prelu.backward(dgr, dr, cuda.to_device(w), axis=0)[1],
                                  fa.prelu.backward(gr, r, w, axis=0)[1]),
            "mse_loss": (fa.mse_loss(dr, dgr), fa.mse_loss(r, gr)),
            "cross_entropy.backward": (fa.cross_entropy.backward(dr, cuda.to_device(targets)),
                                       fa.cross_entropy.backward(r, targets)),
        }
        for name, (a, b) in rows.items():
            u = _row_ulps(a.copy_to_host(), b)
            bad = u > bound
            ok &= not bad
            print(f"  {'FAIL' if bad else 'ok  '} {np.dtype(dtype).name:7} {name:22} {u:.3g}")
    return ok


# --- timing -----------------------------------------------------------------------

class Timer:
    """Milliseconds per call, by CUDA events on the stream the work runs on."""

    def __init__(self, cuda, repeat: int):
        self.cuda, self.repeat = cuda, repeat

    def __call__(self, fn, events=None) -> float:
        fn()  # compile, allocate pools
        self._sync(events)
        start, stop = self._events(events)
        start.record()
        for _ in range(self.repeat):
            fn()
        stop.record()
        stop.synchronize()
        ms = self._elapsed(start, stop, events)
        return max(ms, 1e-6) / self.repeat  # (the simulator records no time)

    def _events(self, kind):
        if kind == "torch":
            import torch

            return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if kind == "cupy":
            import cupy

            return cupy.cuda.Event(), cupy.cuda.Event()
        return self.cuda.event(), self.cuda.event()

    def _elapsed(self, start, stop, kind):
        if kind == "torch":
            return start.elapsed_time(stop)
        if kind == "cupy":
            import cupy

            return cupy.cuda.get_elapsed_time(start, stop)
        return start.elapsed_time(stop)

    def _sync(self, kind):
        self.cuda.synchronize()
        if kind == "torch":
            sys.modules["torch"].cuda.synchronize()
        elif kind == "cupy":
            sys.modules["cupy"].cuda.Device().synchronize()


def _cupy_baselines(cp):
    try:
        import cupyx.scipy.special as sp
    except ImportError:
        sp = None
    s2 = 1 / math.sqrt(2)
    base = {
        "sigmoid": (lambda x: sp.expit(x)) if sp else (lambda x: 1 / (1 + cp.exp(-x))),
        "tanh": cp.tanh,
        "relu": lambda x: cp.maximum(x, 0),
        "gelu": (lambda x: 0.5 * x * sp.erfc(-x * s2)) if sp else None,
        "silu": (lambda x: x * sp.expit(x)) if sp else None,
        "softplus": lambda x: cp.logaddexp(x, 0),
        "elu": lambda x: cp.where(x > 0, x, cp.expm1(x)),
        "softmax": (lambda x: sp.softmax(x, axis=-1)) if sp else None,
        "log_softmax": (lambda x: sp.log_softmax(x, axis=-1)) if sp else None,
    }
    return {k: v for k, v in base.items() if v is not None}


def bench(cuda, n: int, repeat: int, only: set) -> None:
    import fastact as fa

    cp, torch = _optional("cupy"), _optional("torch")
    timer = Timer(cuda, repeat)
    itemsize = 4
    src = cuda.to_device(np.random.default_rng(1).standard_normal(n).astype(np.float32) * 4)
    dst = cuda.device_array_like(src)
    copy_ms = timer(lambda: dst.copy_to_device(src))
    copy_bw = 2 * n * itemsize / copy_ms / 1e6  # GB/s
    name = getattr(cuda.get_current_device(), "name", "(simulated)")
    print(f"\ndevice: {name.decode() if isinstance(name, bytes) else name}")
    print(f"n = {n} float32; device-to-device copy {copy_bw:.0f} GB/s (read + write)")
    print(f"{'function':28} {'fastact':>16} {'out=':>16} {'CuPy':>16} {'PyTorch':>16}")

    def show(label, moved_bytes, ms_list):
        cells = []
        for ms in ms_list:
            if ms is None:
                cells.append(f"{'-':>16}")
            else:
                bw = moved_bytes / ms / 1e6
                cells.append(f"{bw:7.0f} GB/s {100 * bw / copy_bw:3.0f}%")
        print(f"{label:28} " + " ".join(cells))

    cbase = _cupy_baselines(cp) if cp is not None else {}
    x_cp = cp.asarray(src) if cp is not None else None
    x_t = torch.as_tensor(src, device="cuda") if torch is not None else None
    F = None
    if torch is not None:
        import torch.nn.functional as F
    g = cuda.to_device(np.ones(n, np.float32))
    out = cuda.device_array_like(src)
    for f in fa.ELEMENTWISE:
        if only and f.name not in only:
            continue
        kw = {"threshold": 0.5, "value": -1.0} if f is fa.threshold else {}
        ms = timer(lambda: f(src, **kw))
        ms_out = timer(lambda: f(src, out=out, **kw))
        ms_cp = timer(lambda: cbase[f.name](x_cp), "cupy") if f.name in cbase else None
        ms_t = None
        if torch is not None and f.torch and f.torch.startswith(("F.", "torch.")):
            tf = eval(f.torch, {"F": F, "torch": torch})
            ms_t = timer(lambda: tf(x_t, **kw), "torch")
        show(f.name, 2 * n * itemsize, [ms, ms_out, ms_cp, ms_t])
        msb = timer(lambda: f.backward(g, src, **kw, out=out))
        show("  .backward (out=)", 3 * n * itemsize, [msb, None, None, None])
    rows = src.reshape(n // 1024, 1024)
    routs = cuda.device_array_like(rows)
    xr_t = x_t.reshape(n // 1024, 1024) if x_t is not None else None
    xr_cp = x_cp.reshape(n // 1024, 1024) if x_cp is not None else None
    for f in (fa.softmax, fa.log_softmax, fa.softmin):
        if only and f.name not in only:
            continue
        ms = timer(lambda: f(rows))
        ms_out = timer(lambda: f(rows, out=routs))
        ms_cp = timer(lambda: cbase[f.name](xr_cp), "cupy") if f.name in cbase else None
        ms_t = timer(lambda: eval(f.torch, {"F": F})(xr_t, dim=-1), "torch") if F else None
        show(f"{f.name} (rows of 1024)", 2 * n * itemsize, [ms, ms_out, ms_cp, ms_t])
        msb = timer(lambda: f.backward(rows, y=rows, out=routs))
        show("  .backward y= (out=)", 3 * n * itemsize, [msb, None, None, None])
    if not only or "glu" in only:
        show("glu (rows of 1024)", 1.5 * n * itemsize, [timer(lambda: fa.glu(rows)), None, None,
             timer(lambda: F.glu(xr_t, dim=-1), "torch") if F else None])
    if not only or "maxout" in only:
        show("maxout k=4", 1.25 * n * itemsize, [timer(lambda: fa.maxout(rows, pool_size=4)), None,
             None, None])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1 << 26, help="elements of the timed arrays")
    p.add_argument("--repeat", type=int, default=20, help="calls per timing")
    p.add_argument("--only", default="", help="comma-separated function names")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with the CPU")
    args = p.parse_args(argv)
    cuda, why = _cuda()
    if cuda is None:
        print(f"bench/gpu.py: {why}", file=sys.stderr)
        return 2
    ok = True
    t = time.perf_counter()
    if not args.no_check:
        ok = check(cuda)
        print(f"(checked in {time.perf_counter() - t:.0f} s, compilation included)")
    bench(cuda, args.n, args.repeat, {s for s in args.only.split(",") if s})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
