"""``python -m fastact plot`` writes a PNG of every function."""

from __future__ import annotations

import struct
import sys

import pytest

from fastact._cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_command_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "functions.png"
    assert main(["plot", "--out", str(path)]) == 0
    assert str(path) in capsys.readouterr().out
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1200 and height >= 1200  # a grid of 24 readable panels
    assert len(data) > 50_000


def test_plot_without_matplotlib(tmp_path, monkeypatch):
    from fastact._plot import plot_all

    # every matplotlib import fails, also of modules an earlier test imported
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeError, match=r'pip install "fastact\[plot\]"'):
        plot_all(str(tmp_path / "x.png"))
