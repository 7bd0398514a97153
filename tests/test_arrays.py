"""dtypes, shapes, strides, out= and the errors of SPEC section 4."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastact as fa


def _kw(case):
    return dict(case.params)


def _x(dtype=np.float64, shape=(6, 5), seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)


METHODS = ["forward", "grad", "backward", "value_and_grad"]


def _call(case, method, x, **kw):
    f = case.func
    if method == "forward":
        return f(x, **_kw(case), **kw)
    if method == "grad":
        return f.grad(x, **_kw(case), **kw)
    if method == "backward":
        g = np.linspace(-1, 1, np.size(x)).reshape(np.shape(x)).astype(np.asarray(x).dtype)
        return f.backward(g, x, **_kw(case), **kw)
    return f.value_and_grad(x, **_kw(case), **kw)[0]


@pytest.mark.parametrize("method", METHODS)
def test_dtype_is_kept(function, dtype, method):
    x = _x(dtype)
    assert _call(function, method, x).dtype == dtype


def test_float16_is_computed_in_float32(function):
    x = _x(np.float16)
    y = function.func(x, **_kw(function))
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, function.func(x.astype(np.float32), **_kw(function)).astype(np.float16))
    d = function.func.grad(x, **_kw(function))
    assert d.dtype == np.float16


@pytest.mark.parametrize("src", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integers_and_bools_promote_to_float64(function, src):
    x = np.array([[-2, -1, 0], [1, 2, 3]]).astype(src)
    y = function.func(x, **_kw(function))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, function.func(x.astype(np.float64), **_kw(function)))


@pytest.mark.parametrize("bad", [
    np.array([1 + 2j]), np.array([1.0], dtype=object), np.array(["a"]), np.array([b"a"]),
    np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([1], dtype="timedelta64[s]"),
])
def test_unsupported_dtypes_are_type_errors(function, bad):
    with pytest.raises(TypeError, match=str(bad.dtype).replace("[", r"\[").replace("]", r"\]")):
        function.func(bad, **_kw(function))
    with pytest.raises(TypeError, match="dtype"):
        function.func.grad(bad, **_kw(function))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("view", ["transposed", "sliced", "negative", "fortran", "broadcast"])
def test_any_strides_match_a_contiguous_copy(function, method, view):
    base = _x(np.float32, (12, 10))
    x = {
        "transposed": base.T,
        "sliced": base[::3, 1::2],
        "negative": base[::-1, ::-2],
        "fortran": np.asfortranarray(base),
        "broadcast": np.broadcast_to(base[0], (4, 10)),
    }[view]
    np.testing.assert_array_equal(_call(function, method, x), _call(function, method, np.ascontiguousarray(x)))


# the row kernels of large strided arrays, here on small ones (thresholds lowered)
ROW_FUNCTIONS = [fa.sigmoid, fa.relu, fa.leaky_relu]


def _rows_views(dtype=np.float32):
    base = _x(dtype, (9, 40), seed=3)
    base3 = _x(dtype, (4, 6, 10), seed=4)
    return {
        "slice": (base[:, 3:35], (9, 32)),
        "3-d, collapsing": (base3[1:3, 2:5, :], (2, 30)),
        "3-d, rows of rows": (base3[:, ::2, :], (12, 10)),
        "3-d, not collapsing": (base3[::2, :4, :5], None),
        "reversed rows": (base[::-1, 3:35], None),
        "inner stride": (base[:, ::2], None),
    }


def _padded(c, dtype):
    """A copy of c as a view with strided rows (the last axis padded)."""
    return np.pad(c.astype(dtype), [(0, 0)] * (c.ndim - 1) + [(2, 1)])[..., 2:-1]


@pytest.mark.parametrize("view", list(_rows_views()))
def test_row_kernels_take_strided_rows(view, monkeypatch):
    """The layouts the row kernels take (rows, cols) and those left to the
    ufuncs (None); rows shorter than MIN_ROW are left to the ufuncs too."""
    from fastact import _cpu

    x, expected = _rows_views()[view]
    monkeypatch.setattr(_cpu, "MIN_ROW", 1)
    got = _cpu._rows((x, np.empty_like(x)))
    assert (got if got is None else got[:2]) == expected
    if got is not None:
        rows, cols, views = got
        span, stride = views[0]
        rebuilt = np.stack([span[i * stride:i * stride + cols] for i in range(rows)])
        np.testing.assert_array_equal(rebuilt, x.reshape(rows, cols))
        monkeypatch.setattr(_cpu, "MIN_ROW", cols + 1)
        assert _cpu._rows((x, np.empty_like(x))) is None


@pytest.mark.parametrize("f, dtype", [(f, np.float32) for f in ROW_FUNCTIONS] + [(fa.sigmoid, np.float64)],
                         ids=lambda v: getattr(v, "name", getattr(v, "__name__", "")))
def test_strided_rows_match_a_contiguous_copy(f, dtype, monkeypatch):
    """Through the row kernels (forced by lowered thresholds): the bits of the
    contiguous path, into fresh results, into out= slices, in place, with a
    grad_output broadcast along the rows; out= partly overlapping the input
    goes to the ufuncs and is still right."""
    from fastact import _cpu

    monkeypatch.setattr(_cpu, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(_cpu, "MIN_ROW", 1)
    calls = []
    real = _cpu.rows_loop
    monkeypatch.setattr(_cpu, "rows_loop", lambda *a: calls.append(a[1]) or real(*a))
    for x, expected in _rows_views(dtype).values():
        c = np.ascontiguousarray(x)
        g = np.linspace(-2, 2, c.size).reshape(c.shape).astype(dtype)
        calls.clear()
        np.testing.assert_array_equal(f(x), f(c))
        np.testing.assert_array_equal(f.grad(x), f.grad(c))
        np.testing.assert_array_equal(f.backward(g, x), f.backward(g, c))
        np.testing.assert_array_equal(f.backward(_padded(g, dtype), x), f.backward(g, c))
        for a, b in zip(f.value_and_grad(x), f.value_and_grad(c), strict=True):
            np.testing.assert_array_equal(a, b)
        # (a padded g has rows of one axis only: where x's rows span two, the ufuncs)
        one_axis = expected is not None and expected[1] == x.shape[-1]
        taken = ["forward", "grad", "backward"] + ["backward"] * one_axis + ["value_and_grad"]
        assert calls == (taken if expected is not None else [])
        if x.ndim == 2:  # grad_output broadcast along the rows: row stride 0
            gb = np.broadcast_to(g[0], c.shape)
            np.testing.assert_array_equal(f.backward(gb, x), f.backward(np.ascontiguousarray(gb), c))
        if f.from_output:
            y = f(c)
            np.testing.assert_array_equal(f.backward(_padded(g, dtype), y=_padded(y, dtype)),
                                          f.backward(g, y=y))
        big = np.zeros(x.shape[:-1] + (x.shape[-1] + 7,), dtype)
        out = big[..., 3:-4]
        assert f(x, out=out) is out
        np.testing.assert_array_equal(out, f(c))
        assert not big[..., :3].any() and not big[..., -4:].any()
        inplace = _padded(c, dtype)
        assert f(inplace, out=inplace) is inplace
        np.testing.assert_array_equal(inplace, f(c))
    buf = np.pad(_x(dtype, (9, 40)), [(0, 0), (0, 1)])
    expected = f(np.ascontiguousarray(buf[:, :40]))
    calls.clear()
    f(buf[:, :40], out=buf[:, 1:41])  # out one element ahead of x in every row
    np.testing.assert_array_equal(buf[:, 1:41], expected)
    assert calls == []


def _tile_views(dtype=np.float32):
    base = _x(dtype, (9, 40), seed=5)
    flat = _x(dtype, (301,), seed=6)
    odd = _x(dtype, (9, 41), seed=10)
    base3 = _x(dtype, (4, 6, 10), seed=7)
    nchw = _x(dtype, (3, 4, 5, 6), seed=8)
    five = _x(dtype, (2, 3, 4, 5, 6), seed=9)
    return {  # the view, its collapsed (outer, batch, rows, cols), None: left to the ufuncs
        "transposed": (base.T, (1, 1, 40, 9)),
        "1-d step 2": (flat[::2], (1, 1, 1, 151)),
        "1-d step 2 from 1": (flat[1::2], (1, 1, 1, 150)),  # not on an 8-byte boundary
        "1-d reversed": (flat[::-1], (1, 1, 1, 301)),
        "rows reversed": (base[:, ::-1], (1, 1, 9, 40)),
        "rows, step 2": (base[:, :30:2], (1, 1, 9, 15)),
        "inner stride": (base[:, ::2], (1, 1, 1, 180)),
        "odd rows, step 2": (odd[:, ::2], (1, 1, 9, 21)),  # rows start on both halves of a word
        "both reversed": (base[::-1, ::-3], (1, 1, 9, 14)),
        "reversed rows": (base[::-1, 3:35], (1, 1, 9, 32)),
        "short rows": (base[:, 3:35], (1, 1, 9, 32)),
        "fortran": (np.asfortranarray(base), (1, 1, 9, 40)),
        "3-d, to one axis": (base3[:, :, ::2], (1, 1, 1, 120)),
        "3-d, to two axes": (base3[::2, :, ::2], (1, 1, 2, 30)),
        "3-d": (base3.transpose(1, 0, 2)[:, :, ::2], (1, 6, 4, 5)),
        "NCHW to NHWC": (nchw.transpose(0, 2, 3, 1), (1, 3, 30, 4)),
        "heads to batch": (nchw.transpose(0, 2, 1, 3), (3, 5, 4, 6)),
        "4-d, strided": (nchw[:, ::2].transpose(0, 2, 1, 3)[..., ::2], (3, 5, 2, 3)),
        "5-d, not collapsing": (five[:, :, ::2].transpose(1, 0, 2, 4, 3), None),
    }


@pytest.mark.parametrize("view", list(_tile_views()))
def test_tile_kernels_take_four_axis_layouts(view):
    """The layouts the tile kernels take, and the tiles' views: element
    (h, k, i, j) is at base + h sa + k sb + i s0 + j s1 of its span, in every
    array."""
    from fastact import _cpu

    x, expected = _tile_views()[view]
    out = np.empty(x.shape, x.dtype)
    got = _cpu._tiles((x, out))
    assert (got if got is None else got[0][:4]) == expected
    if got is not None:
        (outer, batch, rows, cols, tr, tc, *_), views = got
        assert 1 <= tr <= rows and 1 <= tc <= cols
        h, k, i, j = np.meshgrid(np.arange(outer), np.arange(batch), np.arange(rows),
                                 np.arange(cols), indexing="ij")
        assert not views[0][0].flags.writeable and views[1][0].flags.writeable  # input, output
        for (span, (base, sa, sb, s0, s1)), a in zip(views, (x, out), strict=True):
            idx = base + h * sa + k * sb + i * s0 + j * s1
            assert idx.min() == 0 and idx.max() == span.size - 1
            assert np.may_share_memory(span, a)
            np.testing.assert_array_equal(span[idx], np.ascontiguousarray(a).reshape(outer, batch, rows, cols))


@pytest.mark.parametrize("view", list(_tile_views()))
def test_tiles_cover_each_element_once(view, monkeypatch):
    """Whatever order the tiles are walked in (_walk), tiles 0 .. count - 1
    cover the grid, each element once (small tiles: many per axis)."""
    from fastact import _cpu

    monkeypatch.setattr(_cpu, "TILE", 8)
    x, _ = _tile_views()[view]
    got = _cpu._tiles((x, np.empty(x.shape, x.dtype)))
    if got is None:
        return
    grid = got[0]
    seen = np.zeros(grid[:4], np.int64)
    for t in range(_cpu._tile_count(grid)):
        (h, k), r0, c0, m, n = _cpu._tile(t, grid)
        assert 1 <= m <= grid[4] and 1 <= n <= grid[5]
        seen[h, k, r0:r0 + m, c0:c0 + n] += 1
    assert (seen == 1).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_cover_the_array_from_line_starts(dtype):
    """The parallel flat loops' blocks (_blocks, _block): t + 1 of them cover
    0 .. n - 1 in order, each one between the head and the last a multiple
    of 64 bytes; with
    alignment every block after the head starts on a 64-byte boundary of the
    array, without it there is no head."""
    from fastact import _cpu

    item = np.dtype(dtype).itemsize
    buf = np.empty(4096 + 64, np.uint8)
    for shift in range(0, 64, item):
        for n in (1, 5, 17, 100, 1000, 4099):
            a = buf[shift:shift + n * item].view(dtype)
            for t in (1, 2, 3, 5):
                for align in (True, False):
                    h, step = _cpu._blocks(a, n, t, align)
                    assert step % (64 // item) == 0 and 0 <= h < 64 // item
                    stops = 0
                    for k in range(t + 1):
                        s, e = _cpu._block(k, h, step, t, n)
                        assert s == stops and s <= e
                        stops = e
                        if 1 <= k < t:
                            assert (e - s) * item % 64 == 0
                        if align and k >= 1 and s < n:
                            assert (a.ctypes.data + s * item) % 64 == 0
                    assert stops == n
                    assert align or h == 0


@pytest.mark.parametrize("name, fixed", [("relu", False), ("gelu_erf", True), ("leaky_relu", False)])
def test_blocks_match_the_serial_loop(name, fixed):
    """The parallel flat loop, for any thread count and any start within a
    cache line, aligned or not as this CPU's choice says (on CPUs other than
    AMD's, relu and leaky_relu aligned, gelu's forward not: see _OWN_OFFSET):
    the serial loop's bits, every kind."""
    from fastact import _cpu

    defn = next(d for d in _definitions() if d.name == name)
    assert ((name, "forward") in _cpu._OWN_OFFSET) == fixed
    for kind in ("forward", "backward"):
        bound = _cpu.loop(defn, kind, True).py_func.__globals__["ALIGN"]
        assert bound == _cpu.aligned(defn, kind)
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        params = tuple(dtype(0.1) for _ in defn.param_names)
        base, gbase = (rng.standard_normal(3000) * 4).astype(dtype), rng.standard_normal(3000).astype(dtype)
        for shift, n in ((0, 2000), (3, 1999), (7, 33), (1, 5)):
            x, g = base[shift:shift + n], gbase[shift:shift + n]
            for kind, ins in (("forward", (x,)), ("grad", (x,)), ("backward", (g, x)),
                              ("value_and_grad", (x,))):
                nout = 2 if kind == "value_and_grad" else 1
                want = [np.empty_like(x) for _ in range(nout)]
                _cpu.loop(defn, kind, False)(*ins, *want, params)
                for t in (1, 2, 3):
                    got = [np.full_like(x, np.nan) for _ in range(nout)]
                    _cpu.loop(defn, kind, True)(*ins, *got, params, t)
                    for w, o in zip(want, got, strict=True):
                        np.testing.assert_array_equal(o, w)


def _definitions():
    seen = []
    for name in dir(fa):
        f = getattr(fa, name)
        for e in getattr(f, "_options", {}).values() if hasattr(f, "_options") else (f,):
            d = getattr(e, "_defn", None)
            if d is not None and d not in seen:
                seen.append(d)
    return seen


def test_alignment_by_cpu(monkeypatch):
    """Blocks on 64-byte boundaries but for the kernels of _OWN_OFFSET; none
    on AMD's Zen."""
    from fastact import _cpu

    defns = {d.name: d for d in _definitions()}
    monkeypatch.setattr(_cpu, "_cpu_name", lambda: "rocketlake")
    assert _cpu.aligned(defns["relu"], "forward") and _cpu.aligned(defns["relu"], "backward")
    assert not _cpu.aligned(defns["gelu_erf"], "forward")
    monkeypatch.setattr(_cpu, "_cpu_name", lambda: "znver4")
    assert not any(_cpu.aligned(d, kind) for d in defns.values() for kind in _cpu._BLOCKS_TEMPLATES)


def test_own_offset_names_real_kernels():
    """Every kernel that keeps its arrays' offset (_OWN_OFFSET) is one of the catalogue's."""
    from fastact import _cpu

    names = {d.name for d in _definitions()}
    for name, kind in _cpu._OWN_OFFSET:
        assert name in names and kind in _cpu._BLOCKS_TEMPLATES


# sigmoid: from_output; leaky_relu: a parameter
@pytest.mark.parametrize("f, dtype", [(fa.sigmoid, np.float32), (fa.leaky_relu, np.float32),
                                      (fa.sigmoid, np.float64)],
                         ids=lambda v: getattr(v, "name", getattr(v, "__name__", "")))
def test_tiles_match_a_contiguous_copy(f, dtype, monkeypatch):
    """Through the tile kernels (forced by a lowered threshold, with tiles
    smaller than the arrays): the bits of the contiguous path for every kind,
    with strided and broadcast grad_output, into C-ordered and strided out=,
    in place; a partly overlapping out= goes to the ufuncs. Writable,
    read-only (broadcast) and negatively strided inputs share one compiled
    kernel per kind and dtype."""
    from fastact import _cpu

    monkeypatch.setattr(_cpu, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(_cpu, "MIN_ROW", 10**9)  # no row kernels
    monkeypatch.setattr(_cpu, "TILE", 48)
    calls, used = [], set()
    real = _cpu.tiles_loop
    monkeypatch.setattr(_cpu, "tiles_loop", lambda *a: calls.append(a[1]) or used.add(a) or real(*a))
    for name, (x, expected) in _tile_views(dtype).items():
        c = np.ascontiguousarray(x)
        g = np.linspace(-2, 2, c.size).reshape(c.shape).astype(dtype)
        gs = np.flip(np.flip(g).copy())  # g seen through negative strides
        o, o2 = np.empty_like(c), np.empty_like(c)
        y = f(x)  # in x's layout
        calls.clear()
        np.testing.assert_array_equal(f(x, out=o), f(c))
        np.testing.assert_array_equal(f.grad(x, out=o), f.grad(c))
        np.testing.assert_array_equal(f.backward(gs, x, out=o), f.backward(g, c))
        f.value_and_grad(x, out=(o, o2))
        for a, b in zip((o, o2), f.value_and_grad(c), strict=True):
            np.testing.assert_array_equal(a, b)
        want = ["forward", "grad", "backward", "value_and_grad"]
        if f.from_output:
            np.testing.assert_array_equal(f.backward(gs, y=y, out=o), f.backward(g, y=f(c)))
            want.append("backward_y")
        assert calls == (want if expected is not None else []), name
        if x.ndim >= 2:  # grad_output broadcast along the first axis: stride 0
            gb = np.broadcast_to(g[0], c.shape)
            np.testing.assert_array_equal(f.backward(gb, x), f.backward(np.ascontiguousarray(gb), c))
        np.testing.assert_array_equal(f(x), f(c))  # fresh results
        strided = np.zeros(x.shape[::-1], dtype).T
        assert f(x, out=strided) is strided
        np.testing.assert_array_equal(strided, f(c))
        inplace = np.flip(np.flip(x).copy())
        assert f(inplace, out=inplace) is inplace
        np.testing.assert_array_equal(inplace, f(c))
    buf = _x(dtype, (81,), seed=8)
    expected = f(np.ascontiguousarray(buf[:-1:2]))
    calls.clear()
    f(buf[:-1:2], out=buf[1::2])  # out one element ahead of x
    np.testing.assert_array_equal(buf[1::2], expected)
    assert calls == []
    assert {kind for _, kind in used} >= {"forward", "grad", "backward", "value_and_grad"}
    for args in used:
        sigs = [s for s in real(*args).overloads if s[0].dtype == numba.from_dtype(dtype)]
        assert len(sigs) == 1, (args[1], sigs)
        spans = sigs[0][:-2:2]  # (span, place) per array, inputs first, then grid and params
        nin = _cpu._ARITY[args[1]]
        assert [a.mutable for a in spans] == [False] * nin + [True] * (len(spans) - nin), (args[1], sigs)


def test_gather_is_compiled_once_and_called_out_of_line():
    """The tile kernels call one compiled _gather per argument types instead
    of inlining its loops into each kernel (most of a tile kernel's compile
    time); its results are those of NumPy's indexing."""
    import re

    from fastact import _cpu

    @numba.njit(cache=False)
    def gather(src, place, buf):
        _cpu._gather(src, place, (0, 0), 1, 2, 3, 4, buf)

    src = np.arange(64, dtype=np.float32)
    src.flags.writeable = False
    buf = np.zeros(12, np.float32)
    gather(src, (5, 0, 0, 10, 2), buf)  # element (r, c) at 5 + 10 r + 2 c
    rows, cols = np.arange(1, 4)[:, None], np.arange(2, 6)
    np.testing.assert_array_equal(buf, src[5 + 10 * rows + 2 * cols].ravel())
    ir = gather.inspect_llvm(gather.signatures[0])
    assert re.search(r"call [^\n]*@_ZN7fastact4_cpu7_gather", ir), "_gather inlined"  # its mangled name


def test_tile_layouts_are_kept_by_shape_and_strides(monkeypatch):
    """A layout is worked out once per shapes and strides (and tile size) and
    serves every array of that layout with its own memory."""
    from fastact import _cpu

    monkeypatch.setattr(_cpu, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(_cpu, "MIN_ROW", 10**9)
    monkeypatch.setattr(_cpu, "_LAYOUTS", {})
    a, b = _x(np.float32, (9, 40), seed=11), _x(np.float32, (9, 40), seed=12)
    for view in (lambda v: v[:, ::2], lambda v: v[::-1, ::3]):
        for x in (a, b, a[1:], b[1:]):
            np.testing.assert_array_equal(fa.sigmoid(view(x)), fa.sigmoid(np.ascontiguousarray(view(x))))
    assert len(_cpu._LAYOUTS) == 4  # two views of two shapes
    monkeypatch.setattr(_cpu, "TILE", 48)
    np.testing.assert_array_equal(fa.sigmoid(a[:, ::2]), fa.sigmoid(np.ascontiguousarray(a[:, ::2])))
    assert len(_cpu._LAYOUTS) == 5


def test_non_native_byte_order(function):
    x = _x(np.float64)
    big = x.astype(">f8")
    y = function.func(big, **_kw(function))
    assert y.dtype == np.float64 and y.dtype.isnative
    np.testing.assert_array_equal(y, function.func(x, **_kw(function)))


@pytest.mark.parametrize("method", METHODS)
def test_empty_arrays(function, method):
    for shape in [(0,), (3, 0), (0, 4, 2)]:
        r = _call(function, method, np.empty(shape, np.float32))
        assert r.shape == shape and r.dtype == np.float32


def test_zero_d_and_scalars(function):
    kw = _kw(function)
    f = function.func
    r = f(np.float32(0.5), **kw)
    assert isinstance(r, np.float32)
    r = f(0.5, **kw)
    assert isinstance(r, np.float64)
    assert r == f(np.array([0.5]), **kw)[0]
    r = f(np.array(0.5, dtype=np.float32), **kw)
    assert isinstance(r, np.float32)
    assert isinstance(f.grad(2, **kw), np.float64)
    assert isinstance(f.backward(1.0, 0.5, **kw), np.float64)
    y, d = f.value_and_grad(0.5, **kw)
    assert isinstance(y, np.float64) and isinstance(d, np.float64)
    assert f(-1.5, **kw).shape == ()
    assert f([0.5, 1.0], **kw).shape == (2,)


@pytest.mark.parametrize("method", ["forward", "grad", "backward"])
def test_out_is_written_and_returned(function, method, dtype):
    x = _x(dtype)
    expected = _call(function, method, x)
    out = np.full_like(x, np.nan)
    r = _call(function, method, x, out=out)
    assert r is out
    np.testing.assert_array_equal(out, expected)


def test_out_in_place(function, dtype):
    x = _x(dtype)
    expected = function.func(x, **_kw(function))
    xc = x.copy()
    r = function.func(xc, out=xc, **_kw(function))
    assert r is xc
    np.testing.assert_array_equal(xc, expected)
    # in place on a large array too (the parallel loop)
    big = np.tile(x.ravel(), 20000)
    expected = function.func(big, **_kw(function))
    function.func(big, out=big, **_kw(function))
    np.testing.assert_array_equal(big, expected)


def test_value_and_grad_out(function, dtype):
    x = _x(dtype)
    y0, d0 = function.func.value_and_grad(x, **_kw(function))
    outs = (np.empty_like(x), np.empty_like(x))
    r = function.func.value_and_grad(x, out=outs, **_kw(function))
    assert r[0] is outs[0] and r[1] is outs[1]
    np.testing.assert_array_equal(outs[0], y0)
    np.testing.assert_array_equal(outs[1], d0)
    xc = x.copy()  # value written over the input itself
    function.func.value_and_grad(xc, out=(xc, outs[1]), **_kw(function))
    np.testing.assert_array_equal(xc, y0)
    np.testing.assert_array_equal(outs[1], d0)


def test_out_partly_overlapping_the_input(function):
    x = _x(np.float64, (4000,))
    expected = function.func(x[:-1], **_kw(function))
    buf = x.copy()
    function.func(buf[:-1], out=buf[1:], **_kw(function))
    np.testing.assert_array_equal(buf[1:], expected)


def test_float16_out(function):
    x = _x(np.float16)
    out = np.empty_like(x)
    function.func(x, out=out, **_kw(function))
    np.testing.assert_array_equal(out, function.func(x, **_kw(function)))


@pytest.mark.parametrize("method", METHODS[:3])
def test_bad_out_is_refused(function, method):
    x = _x(np.float32)
    with pytest.raises(ValueError, match="shape"):
        _call(function, method, x, out=np.empty((5, 5), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        _call(function, method, x, out=np.empty(x.shape, np.float64))
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _call(function, method, x, out=ro)
    with pytest.raises(TypeError, match="out"):
        _call(function, method, x, out=[0.0] * 30)


def test_inputs_are_never_modified(function):
    x = _x(np.float32)
    g = _x(np.float32, seed=1)
    x0, g0 = x.copy(), g.copy()
    function.func(x, **_kw(function))
    function.func.grad(x, **_kw(function))
    function.func.backward(g, x, **_kw(function))
    function.func.value_and_grad(x, **_kw(function))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)


def test_keyword_errors(function):
    f = function.func
    with pytest.raises(TypeError, match="unexpected keyword argument 'not_a_parameter'"):
        f(np.ones(3), not_a_parameter=1.0, **_kw(function))
    with pytest.raises(TypeError, match="not_a_parameter"):
        f.grad(np.ones(3), not_a_parameter=1.0, **_kw(function))
    with pytest.raises(TypeError):
        f.backward(np.ones(3), np.ones(3), not_a_parameter=1.0, **_kw(function))
    with pytest.raises(TypeError):
        f(np.ones(3), 0.1)  # parameters are keywords


@pytest.mark.parametrize("func, kwargs, exc, match", [
    (fa.leaky_relu, {"negative_slope": "0.1"}, TypeError, "negative_slope"),
    (fa.elu, {"alpha": None}, TypeError, "alpha"),
    (fa.celu, {"alpha": 0.0}, ValueError, "alpha"),
    (fa.softshrink, {"lambd": -0.5}, ValueError, "lambd"),
    (fa.softplus, {"beta": 0.0}, ValueError, "beta"),
    (fa.hardtanh, {"min_val": 2.0, "max_val": 1.0}, ValueError, "min_val"),
    (fa.gelu, {"approximate": "erf"}, ValueError, "approximate"),
    (fa.threshold, {"threshold": 0.5}, TypeError, "value"),
    (fa.threshold, {}, TypeError, "threshold"),
    (fa.relu6, {"min_val": 1.0}, TypeError, "min_val"),
    (fa.silu, {"beta": 2.0}, TypeError, "beta"),
])
def test_bad_parameters(func, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(np.ones(3), **kwargs)


def test_parameters_are_cast_to_the_array_dtype():
    x = np.array([-1.0], dtype=np.float32)
    y = fa.leaky_relu(x, negative_slope=0.1)
    assert y.dtype == np.float32 and y[0] == np.float32(-0.1)
    assert fa.leaky_relu(x, negative_slope=np.float64(0.1))[0] == np.float32(-0.1)
    assert fa.elu(x, alpha=2)[0] == np.float32(2 * np.expm1(np.float32(-1)))


def test_backward_argument_errors():
    x = np.ones(4)
    with pytest.raises(TypeError, match="exactly one"):
        fa.sigmoid.backward(x)
    with pytest.raises(TypeError, match="exactly one"):
        fa.sigmoid.backward(x, x, y=x)
    with pytest.raises(TypeError, match="y="):
        fa.gelu.backward(x, y=x)
    with pytest.raises(TypeError, match="y="):
        fa.elu.backward(x, y=x)
    with pytest.raises(ValueError, match="grad_output"):
        fa.sigmoid.backward(np.ones(3), x)
    # grad_output broadcasts to x
    np.testing.assert_array_equal(fa.sigmoid.backward(2.0, x), 2 * fa.sigmoid.grad(x))
    with pytest.raises(TypeError, match="grad_output"):
        fa.sigmoid.backward(np.array(["a"] * 4), x)


class _FakeGpuArray:
    """Stands for a CuPy / PyTorch CUDA array: exposes __cuda_array_interface__."""

    __cuda_array_interface__ = {"shape": (2,), "typestr": "<f4", "data": (0, False), "version": 3}


def test_gpu_arrays_are_not_copied_to_the_host():
    with pytest.raises(RuntimeError, match="GPU array"):
        fa.sigmoid(_FakeGpuArray())
    with pytest.raises(TypeError, match="different devices"):
        fa.sigmoid.backward(np.ones(2, np.float32), _FakeGpuArray())
    with pytest.raises(RuntimeError, match="GPU array"):
        fa.softmax(_FakeGpuArray())


def test_signatures_and_repr():
    import inspect

    sig = inspect.signature(fa.leaky_relu)
    assert sig.parameters["negative_slope"].default == 0.01
    assert sig.parameters["negative_slope"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "negative_slope=0.01" in repr(fa.leaky_relu)
    assert inspect.signature(fa.gelu).parameters["approximate"].default == "none"
    assert "min_val" not in inspect.signature(fa.relu6).parameters
