"""The main job, ``python -m fastact``, on a small array."""

from __future__ import annotations

import subprocess
import sys

import fastact as fa
from conftest import CASES

# worst float32 forward error allowed, per row of the tour
BOUNDS = {c.func.name: c.ulp32[0] for c in CASES if not c.params or c.func is fa.threshold}
BOUNDS["gelu(tanh)"] = next(c.ulp32[0] for c in CASES if c.params.get("approximate") == "tanh")


def test_tour_runs_every_function():
    out = subprocess.run([sys.executable, "-W", "error", "-m", "fastact", "--log2n", "12", "--repeat", "1"],
                         capture_output=True, text=True, check=True, timeout=900).stdout
    lines = out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line and ":" not in line and line.split()[0] in
            {f.name for f in fa.ELEMENTWISE} | {"gelu(tanh)", "softmax", "log_softmax"}}
    assert set(rows) == {f.name for f in fa.ELEMENTWISE} | {"gelu(tanh)", "softmax", "log_softmax"}
    for name, cols in rows.items():
        if name in {"softmax", "log_softmax"}:
            cols = cols[1:]  # the batch shape follows the name
        fwd_ulp, bwd_ulp = float(cols[5]), float(cols[6])
        # the tour measures against the float64 kernels: the float32 bound of
        # the reference table plus the float64 kernel's own (tiny) error
        bound = BOUNDS.get(name, 4) + 1
        assert fwd_ulp <= bound, (name, fwd_ulp)
        assert bwd_ulp < float("inf"), name
    assert "nan" not in out.lower()


def test_tour_rejects_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "fastact", "--log2n", "99"], capture_output=True, text=True)
    assert r.returncode == 2 and "--log2n" in r.stderr


def test_bench_runs_on_a_small_array():
    """``python -m fastact bench``: a row per op with its ratios, and the summary."""
    import io

    from fastact import _bench

    out = io.StringIO()
    rows = _bench.bench(log2n=10, repeat=1, out=out)
    text = out.getvalue()
    ops = {r["op"] for r in rows}
    for f in fa.ELEMENTWISE:
        assert {f.name, f"{f.name} alloc", f"{f.name} backward"} <= ops
    assert {"softmax rows of 64", "log_softmax rows of 1024", "softmax backward rows 1024"} <= ops
    for r in rows:  # (gelu's NumPy peer needs SciPy's erf, which the test extras lack)
        assert r["gbs"] > 0 and (r["numpy"] is None and r["op"].startswith("gelu") or r["numpy"] > 0), r
    assert "elementwise ops at >= 80% of copy bandwidth" in text and "import fastact after import numba" in text
    assert "on x[:, :512] of a (1, 1024) array" in text and "sigmoid slice" in text
    assert not any("slice" in r["op"] for r in rows)  # outside the summary's counts
    assert "layers and losses on (1, 1024) float32 rows" in text
    for op in ("prelu backward", "glu backward", "maxout backward", "cross_entropy + grad", "mse_loss + grad"):
        assert f"\n{op} " in text and op not in ops
