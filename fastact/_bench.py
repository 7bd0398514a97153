"""``python -m fastact bench``: throughput against the memory-copy bound and peers.

For every elementwise function (forward with ``out=``, forward allocating,
backward with ``out=``) and the softmax family on rows of 64 and 1024, one run
measures fastact's GB/s (bytes read + written), its share of the measured
parallel copy bandwidth, and its speed-up over the plain NumPy expression
and, when they are installed, PyTorch on the CPU with the same number of
threads and numexpr. Medians of repeated runs, all in one process; fastact's
calls and their peers' are timed in turns.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from fastact._cli import _median_time


def _median(fn, repeat: int) -> float:
    fn()  # warm up: compile or load from the cache
    return _median_time(fn, repeat)


def _medians(fns, repeat: int) -> list:
    """Median times of fastact's call and its peers' (None: no peer), timed
    in turns: on a shared machine throughput drifts by tens of percent
    over seconds, and each ratio must compare calls made under the same
    conditions."""
    for fn in fns:
        if fn is not None:
            fn()  # warm up: compile or load from the cache
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            if fn is not None:
                t = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t)
    return [float(np.median(ts)) if ts else None for ts in times]


def _copy_kernels():
    """Two parallel loops that read and write each element once: a copy
    (which LLVM turns into memcpy calls) and a negation, a loop like the
    kernels'. The faster one is the floor the kernels are measured by."""
    from numba import prange

    from fastact._compile import jit
    from fastact._vmath import vector_loop

    @jit(parallel=True)
    def copy(x, out):
        for i in prange(x.size):
            out[i] = x[i]

    @jit(parallel=True)
    def negate(x, out):
        for i in prange(x.size):
            v = x[i]
            vector_loop(v)
            out[i] = -v

    return copy, negate


def _torch(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _numexpr(threads: int):
    try:
        import numexpr
    except ImportError:
        return None
    numexpr.set_num_threads(threads)
    return numexpr


# torch equivalents: name -> (allocating call, call with out= or None)
def _torch_ops(torch):
    F = torch.nn.functional
    nn = torch._C._nn
    return {
        "sigmoid": (torch.sigmoid, lambda t, o: torch.sigmoid(t, out=o)),
        "tanh": (torch.tanh, lambda t, o: torch.tanh(t, out=o)),
        "relu": (F.relu, lambda t, o: torch.clamp_min(t, 0, out=o)),
        "relu6": (F.relu6, lambda t, o: torch.clamp(t, 0, 6, out=o)),
        "leaky_relu": (F.leaky_relu, lambda t, o: nn.leaky_relu(t, 0.01, out=o)),
        "elu": (F.elu, lambda t, o: nn.elu(t, out=o)),
        "celu": (F.celu, None),
        "selu": (F.selu, None),
        "gelu": (F.gelu, lambda t, o: nn.gelu(t, out=o)),
        "silu": (F.silu, lambda t, o: nn.silu(t, out=o)),
        "swish": (F.silu, lambda t, o: nn.silu(t, out=o)),
        "mish": (F.mish, lambda t, o: nn.mish(t, out=o)),
        "softplus": (F.softplus, lambda t, o: nn.softplus(t, out=o)),
        "softsign": (F.softsign, None),
        "logsigmoid": (F.logsigmoid, None),
        "hardtanh": (F.hardtanh, lambda t, o: nn.hardtanh(t, out=o)),
        "hardsigmoid": (F.hardsigmoid, lambda t, o: nn.hardsigmoid(t, out=o)),
        "hardswish": (F.hardswish, lambda t, o: nn.hardswish(t, out=o)),
        "tanhshrink": (F.tanhshrink, None),
        "softshrink": (F.softshrink, lambda t, o: nn.softshrink(t, 0.5, out=o)),
        "hardshrink": (F.hardshrink, lambda t, o: torch.hardshrink(t, 0.5, out=o)),
        "threshold": (lambda t: F.threshold(t, 0.1, 20.0), lambda t, o: torch.threshold(t, 0.1, 20.0, out=o)),
    }


_NUMEXPR = {
    "sigmoid": "1 / (1 + exp(-x))",
    "tanh": "tanh(x)",
    "relu": "where(x > 0, x, 0)",
    "elu": "where(x > 0, x, expm1(x))",
    "silu": "x / (1 + exp(-x))",
    "softplus": "where(x > 20, x, log1p(exp(x)))",
    "softsign": "x / (1 + abs(x))",
}


def bench(log2n: int = 24, repeat: int = 7, out=sys.stdout) -> list[dict]:
    import numba

    import fastact as fa
    from fastact._baselines import BASELINES, log_softmax, softmax, softmax_backward

    threads = numba.get_num_threads()
    torch = _torch(threads)
    ne = _numexpr(threads)
    n = 1 << log2n
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    copy, negate = _copy_kernels()
    t_copy, t_negate = _medians([lambda: copy(x, y), lambda: negate(x, y)], repeat)
    floor = (lambda: copy(x, y)) if t_copy < t_negate else (lambda: negate(x, y))
    copy_gbs = 8 * n / min(t_copy, t_negate) / 1e9

    def turns(*fns):
        """Medians of fns and of the copy floor, timed in turns: each row's
        %copy compares with the copy as fast as it ran beside that row."""
        *ts, t_floor = _medians([*fns, floor], repeat)
        return ts, 8 * n / t_floor / 1e9
    peers = " vs PyTorch " + torch.__version__ if torch else ""
    print(f"fastact bench: float32, {n:,} elements, {threads} threads, median of {repeat}; "
          f"parallel copy {copy_gbs:.1f} GB/s (read + write; the faster of a copy and a negation loop, "
          f"timed again beside every row){peers}", file=out)
    print("fwd: f(x, out=y); alloc: f(x); backward: f.backward(g, x, out=gx) against PyTorch's "
          "backward kernel with out= (sigmoid, tanh: both from the saved output y; mish: both "
          "allocate, PyTorch has no out= there). "
          "%copy = GB/s over the copy's; xNumPy / xtorch / xnumexpr = speed-up over that peer", file=out)
    print(file=out)
    header = (f"{'op':<26} {'GB/s':>6} {'%copy':>6} {'xNumPy':>7} {'xtorch':>7} {'xnumexpr':>8}")
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = []

    def emit(op, t, nbytes, floor_gbs, t_np, t_torch=None, t_ne=None, keep=True):
        gbs = nbytes / t / 1e9
        r = {"op": op, "gbs": gbs, "copy": gbs / floor_gbs,
             "numpy": t_np / t if t_np else None,
             "torch": t_torch / t if t_torch else None,
             "numexpr": t_ne / t if t_ne else None}
        if keep:
            rows.append(r)

        def fmt(v):
            return f"{v:6.2f}x" if v else "      -"

        print(f"{op:<26} {gbs:6.1f} {100 * r['copy']:5.0f}% {fmt(r['numpy'])} {fmt(r['torch'])} "
              f"{fmt(r['numexpr']):>8}", file=out, flush=True)

    tx = ty = tg = None
    if torch is not None:
        tx, ty, tg = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(g)
        ops = _torch_ops(torch)
    quick = max(3, repeat // 2)
    with np.errstate(all="ignore"):
        for f in fa.ELEMENTWISE:
            bf, bg, params = BASELINES[f.name]
            exact_np = f.name != "gelu" or _has_scipy()
            t_np = _median(lambda: bf(x), quick) if exact_np else None
            has_torch = torch is not None and ops[f.name][1] is not None
            (t, t_torch, t_ne), fl = turns(
                lambda: f(x, out=y, **params),
                (lambda: ops[f.name][1](tx, ty)) if has_torch else None,
                (lambda: ne.evaluate(_NUMEXPR[f.name], local_dict={"x": x}, out=y))
                if ne is not None and f.name in _NUMEXPR else None)
            emit(f"{f.name}", t, 8 * n, fl, t_np, t_torch, t_ne)
            (t, t_torch), fl = turns(lambda: f(x, **params),
                                     (lambda: ops[f.name][0](tx)) if torch is not None else None)
            emit(f"{f.name} alloc", t, 8 * n, fl, t_np, t_torch)
            t_np = _median(lambda: g * bg(x), quick) if exact_np else None
            torch_bwd, alloc = None, False
            if torch is not None:
                tx.requires_grad_(False)
                torch_bwd, alloc = _torch_backward(torch, f.name, tg, tx, ty)
            if f.name in _FROM_OUTPUT:  # PyTorch's kernel takes the saved output: so does ours
                saved = f(x, **params)
                ours = lambda: f.backward(g, y=saved, out=y, **params)  # noqa: E731
            elif alloc:
                ours = lambda: f.backward(g, x, **params)  # noqa: E731
            else:
                ours = lambda: f.backward(g, x, out=y, **params)  # noqa: E731
            (t, t_torch), fl = turns(ours, torch_bwd)
            emit(f"{f.name} backward", t, 12 * n, fl, t_np, t_torch)
        for cols in (64, 1024):
            xb, gb, yb = x.reshape(-1, cols), g.reshape(-1, cols), y.reshape(-1, cols)
            for name, fn, ref in (("softmax", fa.softmax, softmax), ("log_softmax", fa.log_softmax, log_softmax)):
                t_np = _median(lambda: ref(xb), quick)
                peer = None
                if torch is not None:
                    tf = getattr(torch, name)
                    txb, tyb = torch.from_numpy(xb), torch.from_numpy(yb)
                    peer = lambda: tf(txb, -1, out=tyb)  # noqa: E731
                (t, t_torch), fl = turns(lambda: fn(xb, out=yb), peer)
                emit(f"{name} rows of {cols}", t, 8 * n, fl, t_np, t_torch)
            sb = fa.softmax(xb)
            t_np = _median(lambda: softmax_backward(gb, sb), quick)
            peer = None
            if torch is not None:
                tsb, tgb, tyb = torch.from_numpy(sb), torch.from_numpy(gb), torch.from_numpy(yb)
                peer = lambda: torch.ops.aten._softmax_backward_data.out(  # noqa: E731
                    tgb, tsb, -1, tsb.dtype, grad_input=tyb)
            (t, t_torch), fl = turns(lambda: fa.softmax.backward(gb, y=sb, out=yb), peer)
            emit(f"softmax backward rows {cols}", t, 12 * n, fl, t_np, t_torch)

        # strided layouts, outside the summary's counts: rows (a slice of half
        # the columns), a strided last axis (every other element), a transpose
        # and attention heads to the batch axes: (batch, seq, heads, dim) ->
        # (batch, heads, seq, dim)
        half, w = n // 2, min(2048, n)
        seq = min(512, n // 512)
        bshd = (n // (512 * seq), seq, 8, 64)
        layouts = [(f"on x[:, :{w // 2}] of a ({n // w}, {w}) array ({half:,} elements, out= contiguous):",
                    "slice", x.reshape(-1, w)[:, :w // 2],
                    lambda t: t.reshape(-1, w)[:, :w // 2]),
                   (f"on x[::2] ({half:,} elements, out= contiguous):", "step 2", x[::2],
                    lambda t: t[::2]),
                   (f"on x.reshape({n // w}, {w}).T ({n:,} elements, out= contiguous):", "transposed",
                    x.reshape(-1, w).T, lambda t: t.reshape(-1, w).T),
                   (f"on x.reshape{bshd}.transpose(0, 2, 1, 3) ({n:,} elements, out= contiguous):",
                    "heads", x.reshape(bshd).transpose(0, 2, 1, 3),
                    lambda t: t.reshape(bshd).permute(0, 2, 1, 3))]
        for title, tag, xs, view in layouts:
            ys = y[:xs.size].reshape(xs.shape)
            print(file=out)
            print(title, file=out)
            if torch is not None:
                txs, tys = view(tx), torch.from_numpy(ys)
            for f in (fa.sigmoid, fa.relu, fa.gelu):
                bf, _, params = BASELINES[f.name]
                t_np = _median(lambda: bf(xs), quick) if f.name != "gelu" or _has_scipy() else None
                peer = None
                if torch is not None:
                    peer = lambda: ops[f.name][1](txs, tys)  # noqa: E731
                (t, t_torch), fl = turns(lambda: f(xs, out=ys, **params), peer)
                emit(f"{f.name} {tag}", t, 8 * xs.size, fl, t_np, t_torch, keep=False)

        _layers_and_losses(fa, torch, x, g, y, turns, emit, quick, out)

    small = x[:1000].copy()
    t_tanh = _median(lambda: np.tanh(small), 200)
    print(file=out)
    print("a call on 1,000 elements, over np.tanh on them:", file=out)
    for f in (fa.relu, fa.sigmoid, fa.gelu):
        t = _median(lambda: f(small), 200)
        print(f"  {f.name:<8} {t * 1e6:6.2f} us  = {t / t_tanh:4.1f} x np.tanh ({t_tanh * 1e6:.2f} us)",
              file=out)
    _summary(rows, out)
    print(f"import fastact after import numba: {_import_cost():.2f} s (median of 3 fresh processes)",
          file=out)
    return rows


def _layers_and_losses(fa, torch, x, g, y, turns, emit, quick, out) -> None:
    """prelu, glu, maxout and the losses on the bench's array as rows of
    2048 (outside the summary's counts). GB/s counts what one pass must read
    and write; "+ grad" rows time the loss and its gradient together against
    PyTorch's forward and autograd backward, which produce the same two."""
    n = x.size
    w = min(2048, n)
    rows, cols = n // w, w
    xr, gr, yr = x.reshape(rows, cols), g.reshape(rows, cols), y.reshape(rows, cols)
    wt = np.linspace(0.05, 0.3, cols, dtype=np.float32)
    labels = np.random.default_rng(2).integers(0, cols, rows)
    gh, gq = gr[:, :cols // 2].copy(), gr[:, :cols // 4].copy()
    print(file=out)
    print(f"layers and losses on ({rows}, {cols}) float32 rows (prelu: a weight per column; "
          "maxout: pool_size=4; \"+ grad\": the loss and its gradient, against PyTorch's "
          "forward + autograd):", file=out)

    def peer(fn):
        return None if torch is None else fn

    if torch is not None:
        F = torch.nn.functional
        tx, tg, ty = torch.from_numpy(xr), torch.from_numpy(gr), torch.from_numpy(yr)
        tw, tl = torch.from_numpy(wt), torch.from_numpy(labels)
        tgh = torch.from_numpy(gh)
        txg = tx.clone().requires_grad_()

        def loss_and_grad(loss):
            v = loss(txg)
            return v, torch.autograd.grad(v, txg)
    cases = [
        ("prelu", lambda: fa.prelu(xr, wt, out=yr), peer(lambda: F.prelu(tx, tw)), 8 * n),
        ("prelu backward", lambda: fa.prelu.backward(gr, xr, wt, out=yr),
         peer(lambda: torch.ops.aten._prelu_kernel_backward(tg, tx, tw)), 12 * n),
        ("glu", lambda: fa.glu(xr), peer(lambda: F.glu(tx, -1)), 6 * n),
        ("glu backward", lambda: fa.glu.backward(gh, xr),
         peer(lambda: torch.ops.aten.glu_backward(tgh, tx, -1)), 10 * n),
        ("maxout", lambda: fa.maxout(xr, pool_size=4),
         peer(lambda: tx.unflatten(-1, (cols // 4, 4)).amax(-1)), 5 * n),
        ("maxout backward", lambda: fa.maxout.backward(gq, xr, pool_size=4), None, 9 * n),
        ("cross_entropy", lambda: fa.cross_entropy(xr, labels), peer(lambda: F.cross_entropy(tx, tl)), 4 * n),
        ("cross_entropy + grad", lambda: (fa.cross_entropy(xr, labels), fa.cross_entropy.backward(xr, labels)),
         peer(lambda: loss_and_grad(lambda t: F.cross_entropy(t, tl))), 8 * n),
        ("mse_loss", lambda: fa.mse_loss(xr, gr), peer(lambda: F.mse_loss(tx, tg)), 8 * n),
        ("mse_loss + grad", lambda: (fa.mse_loss(xr, gr), fa.mse_loss.backward(xr, gr)),
         peer(lambda: loss_and_grad(lambda t: F.mse_loss(t, tg))), 12 * n),
    ]
    for name, ours, theirs, nbytes in cases:
        (t, t_torch), fl = turns(ours, theirs)
        emit(name, t, nbytes, fl, None, t_torch, keep=False)


def _summary(rows: list[dict], out) -> None:
    """Counts against the targets: 80% of copy, 1.0x PyTorch, their geometric mean."""
    elem = [r for r in rows if "rows" not in r["op"]]
    print(file=out)
    fast = sum(r["copy"] >= 0.8 for r in elem)
    print(f"elementwise ops at >= 80% of copy bandwidth: {fast} of {len(elem)}", file=out)
    vs = [r["torch"] for r in rows if r["torch"]]
    if vs:
        geo = float(np.exp(np.mean(np.log(vs))))
        ahead = sum(v >= 1.0 for v in vs)
        print(f"ops at >= 1.0x PyTorch: {ahead} of {len(vs)}; geometric mean {geo:.2f}x", file=out)


def _import_cost() -> float:
    """Seconds that ``import fastact`` adds to ``import numba`` in a fresh process."""
    import subprocess

    code = ("import time; t0 = time.perf_counter(); import numba; t1 = time.perf_counter(); "
            "import fastact; print(time.perf_counter() - t1)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(3)]
    return sorted(runs)[1]


# Functions whose backward both fastact and PyTorch compute from the saved output.
_FROM_OUTPUT = ("sigmoid", "tanh")


def _torch_backward(torch, name, tg, tx, to):
    """A call of PyTorch's own backward kernel for the op, where it exposes
    one, and whether it allocates its result: its ``out=`` overload writes
    into ``to`` like fastact's ``out=`` (mish's has none)."""
    ops = torch.ops.aten
    if name in _FROM_OUTPUT:  # backward from the saved output: time only that
        y = torch.sigmoid(tx) if name == "sigmoid" else torch.tanh(tx)
        f = ops.sigmoid_backward if name == "sigmoid" else ops.tanh_backward
        return (lambda: f.grad_input(tg, y, grad_input=to)), False
    calls = {
        "relu": lambda: ops.threshold_backward.grad_input(tg, tx, 0.0, grad_input=to),
        "leaky_relu": lambda: ops.leaky_relu_backward.grad_input(tg, tx, 0.01, False, grad_input=to),
        "elu": lambda: ops.elu_backward.grad_input(tg, 1.0, 1.0, 1.0, False, tx, grad_input=to),
        "gelu": lambda: ops.gelu_backward.grad_input(tg, tx, grad_input=to),
        "silu": lambda: ops.silu_backward.grad_input(tg, tx, grad_input=to),
        "swish": lambda: ops.silu_backward.grad_input(tg, tx, grad_input=to),
        "softplus": lambda: ops.softplus_backward.grad_input(tg, tx, 1.0, 20.0, grad_input=to),
        "hardtanh": lambda: ops.hardtanh_backward.grad_input(tg, tx, -1.0, 1.0, grad_input=to),
        "hardsigmoid": lambda: ops.hardsigmoid_backward.grad_input(tg, tx, grad_input=to),
        "hardswish": lambda: ops.hardswish_backward.out(tg, tx, out=to),
        "softshrink": lambda: ops.softshrink_backward.grad_input(tg, tx, 0.5, grad_input=to),
        "hardshrink": lambda: ops.hardshrink_backward.grad_input(tg, tx, 0.5, grad_input=to),
    }
    if name == "mish":
        return (lambda: ops.mish_backward(tg, tx)), True
    if name not in calls:
        return None, False
    return calls[name], False


def _has_scipy() -> bool:
    try:
        import scipy.special  # noqa: F401
    except ImportError:
        return False
    return True
