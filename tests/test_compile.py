"""Lazy compilation and the on-disk kernel cache, checked in fresh processes."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import fastact

PACKAGE_DIR = pathlib.Path(fastact.__file__).parent


def _run(code: str, env_extra: dict | None = None, cwd=None) -> dict:
    env = dict(os.environ)
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=env, cwd=cwd, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_nothing_compiles_at_import():
    result = _run("""
        import json, fastact
        from fastact import _cpu, _math, _rowwise_kernels
        from numba.core.registry import CPUDispatcher
        compiled = [n for n in dir(_math) if isinstance(getattr(_math, n), CPUDispatcher)
                    and getattr(_math, n).signatures]
        made = [f.name for f in fastact.ELEMENTWISE if hasattr(f, "_defn") and "forward_jit" in vars(f._defn)]
        print(json.dumps({"math": compiled, "jit": made, "ufuncs": _cpu.ufunc.cache_info().currsize,
                          "loops": _cpu.loop.cache_info().currsize,
                          "rows": _rowwise_kernels.kernel.compiled.cache_info().currsize}))
    """)
    assert result == {"math": [], "jit": [], "ufuncs": 0, "loops": 0, "rows": 0}


_USE = """
    import json, numpy as np, fastact
    from fastact import _cpu
    x = np.linspace(-3, 3, 1 << 17, dtype=np.float32)
    y = fastact.sigmoid(x)
    k = _cpu.loop(fastact.sigmoid._defn, "forward", True)
    print(json.dumps({"hits": sum(k.stats.cache_hits.values()),
                      "misses": sum(k.stats.cache_misses.values()), "y": float(y[-1])}))
"""


def test_second_process_loads_kernels_from_disk(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "FASTACT_CACHE_DIR": ""}
    first = _run(_USE, env)
    second = _run(_USE, env)
    assert first["misses"] == 1 and first["hits"] == 0
    assert second["hits"] == 1 and second["misses"] == 0
    assert first["y"] == second["y"]
    assert any(tmp_path.rglob("*.nbi"))


def test_unwritable_package_dir_falls_back_to_user_cache(tmp_path):
    """When the package's own __pycache__ cannot be written, the user cache directory is used."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR, site / "fastact", ignore=shutil.ignore_patterns("__pycache__"))
    for d in [site / "fastact", site / "fastact" / "definitions"]:
        (d / "__pycache__").write_text("not a directory")  # no cache can be created there
    home = tmp_path / "home"
    env = {"PYTHONPATH": str(site), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
           "NUMBA_CACHE_DIR": "", "FASTACT_CACHE_DIR": "", "PYTHONDONTWRITEBYTECODE": "1"}
    first = _run(_USE, env, cwd=tmp_path)
    second = _run(_USE, env, cwd=tmp_path)
    assert first["misses"] == 1 and second["hits"] == 1
    assert any((home / ".cache").rglob("*.nbi"))
