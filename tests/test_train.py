"""The digits example trains: a short run of examples/train_digits.py."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "train_digits.py"


@pytest.fixture(scope="module")
def example():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_short_training_run_reaches_90_percent(example):
    data = example.load_data(seed=0)
    fastact_run = example.train(epochs=3, batch_size=32, backend="fastact", data=data)
    assert len(fastact_run.accuracy) == 3
    assert fastact_run.accuracy[-1] >= 0.90
    assert fastact_run.loss[-1] < fastact_run.loss[0]
    # the NumPy reference layers compute the same network: the same accuracy
    numpy_run = example.train(epochs=3, batch_size=32, backend="numpy", data=data)
    assert abs(numpy_run.accuracy[-1] - fastact_run.accuracy[-1]) <= 0.02


def test_command_line(example, capsys):
    assert example.main(["--epochs", "1", "--batch-size", "64", "--activation", "gelu"]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "NumPy / fastact" in out
