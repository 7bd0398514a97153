"""``python -m fastact plot``: every function and its derivative on one page.

Draws each elementwise function and its derivative (from ``.grad``) on
x in [-5, 5], one panel per function (gelu with both forms), and the softmax
of a small vector, into a PNG grid. Needs matplotlib (``pip install
"fastact[plot]"``); uses the Agg renderer directly, leaving pyplot's state
alone.
"""

from __future__ import annotations

import math

import numpy as np

# The parameters drawn where a function has required ones.
_PARAMS = {"threshold": {"threshold": 1.0, "value": -1.0}}


def _panels() -> list[tuple[str, object, dict]]:
    """(title, function, parameters) for every elementwise panel, in catalogue order."""
    import fastact as fa

    panels = []
    for f in fa.ELEMENTWISE:
        params = _PARAMS.get(f.name, {})
        shown = ", ".join(f"{k}={v:g}" for k, v in params.items())
        panels.append((f"{f.name}({shown})" if shown else f.name, f, params))
        if f is fa.gelu:
            panels.append(("gelu(approximate='tanh')", f, {"approximate": "tanh"}))
    return panels


def plot_all(path: str) -> str:
    """Draw every elementwise function and its derivative, and softmax, into a PNG.

    One panel per function on x in [-5, 5]: the function solid, its
    derivative (``f.grad``) dashed; gelu appears with both forms; the last
    panel shows the softmax and softmin of a small vector. Parameters are the
    defaults (threshold: threshold=1, value=-1). Returns ``path``.

    >>> plot_all("fastact.png")  # doctest: +SKIP
    'fastact.png'
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError('fastact.plot_all needs matplotlib: pip install "fastact[plot]"') from None
    import fastact as fa

    panels = _panels()
    cols = 4
    rows = math.ceil((len(panels) + 1) / cols)
    fig = Figure(figsize=(4.0 * cols, 2.9 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols).ravel()
    x = np.linspace(-5.0, 5.0, 2001)
    for ax, (title, f, params) in zip(axes, panels):
        ax.axhline(0.0, color="0.75", lw=0.8)
        ax.axvline(0.0, color="0.75", lw=0.8)
        ax.plot(x, f(x, **params), color="C0", lw=2.0, label="f(x)")
        ax.plot(x, f.grad(x, **params), color="C3", lw=1.6, ls="--", label="f'(x)")
        ax.set_title(title, fontsize=11, family="monospace")
        ax.set_xlim(-5.0, 5.0)
        ax.grid(True, color="0.92")
        ax.tick_params(labelsize=8)

    ax = axes[len(panels)]
    z = np.array([1.0, 2.0, 3.0, 0.5, -1.0])
    pos = np.arange(z.size)
    ax.bar(pos - 0.2, fa.softmax(z), width=0.4, color="C0", label="softmax(z)")
    ax.bar(pos + 0.2, fa.softmin(z), width=0.4, color="C2", label="softmin(z)")
    ax.set_xticks(pos, [f"{v:g}" for v in z])
    ax.set_xlabel("z", fontsize=9)
    ax.set_ylim(0.0, 1.0)
    ax.set_title("softmax, softmin of z", fontsize=11, family="monospace")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, axis="y", color="0.92")
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)
    for ax in axes[len(panels) + 1:]:
        ax.set_visible(False)

    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"fastact {fa.__version__}: each function (solid) and its derivative (dashed) "
                 "on [-5, 5]", fontsize=13)
    fig.savefig(path, format="png")
    return path
