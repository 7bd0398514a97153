"""fastact._math: the Taylor patches at the interior roots of derivatives."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from fastact import _math

mp = mpmath.mp


def _sig(t):
    return 1 / (1 + mpmath.exp(-t))


def _silu_grad(z):
    return _sig(z) + z * _sig(z) * _sig(-z)


def _mish_grad(x):
    t = mpmath.tanh(mpmath.log1p(mpmath.exp(x)))
    return t + x * (1 - t * t) * _sig(x)


def _gelu_grad(x):
    return mpmath.ncdf(x) + x * mpmath.npdf(x)


def _gelu_tanh_grad(x):
    k = mpmath.sqrt(2 / mpmath.pi)
    c = mpmath.mpf("0.044715")
    t = mpmath.tanh(k * (x + c * x**3))
    return (1 + t) / 2 + x / 2 * (1 - t * t) * k * (1 + 3 * c * x * x)


# name: (mpmath function, guess, float32 window)
PATCHES = {
    "silu_root": (_silu_grad, -1.2785, 2.0**-9),  # exp_lean's closed form: wider
    "mish_root": (_mish_grad, -1.1924, 2.0**-9),
    "gelu_root": (_gelu_grad, -0.7518, 0.03125),  # float32 Phi to 2^-31: wider
    "gelu_tanh_root": (_gelu_tanh_grad, -0.7522, 2.0**-10),
}


@pytest.mark.parametrize("name", list(PATCHES))
def test_root_patch_coefficients(name):
    """The literals in _math are the root (as a double-word) and the Taylor
    coefficients of f(r + d) / d, recomputed here with mpmath."""
    func, guess, w32 = PATCHES[name]
    patch = getattr(_math, name)
    with mp.workdps(50):
        root = mpmath.findroot(func, guess)
        taylor = mpmath.taylor(func, root, 14)
        rh = float(root)
        rl = float(root - rh)
        # the patch evaluated on both sides of the root, against mpmath
        edges = (0.999 * w32, -0.999 * w32)  # the float32 truncation error peaks there
        for d in (1e-9, -3e-9, 1e-5, -2e-4, 9.7e-4, -9.7e-4, 0.007, -0.0078, 0.03, 0.1, -0.12) + edges:
            x = rh + d
            exact = func(mpmath.mpf(x))
            y64 = patch(x, 0.0, np.nan, np.float64(0))
            y32 = patch(x, 0.0, np.nan, np.float32(0)) if abs(d) <= w32 else None
            assert abs(y64 - exact) <= 4e-16 * abs(exact), (d, y64, exact)
            if y32 is not None:  # rounded to float32 next: 2^-30.5 is 1/90 ulp
                assert abs(y32 - exact) <= 2.0**-30.5 * abs(exact), (d, y32, exact)
    assert abs(root - rh - rl) < mpmath.mpf(2) ** -106
    # outside the windows the closed form (here NaN) passes through
    assert np.isnan(patch(rh + 0.2, 0.0, np.nan, np.float64(0)))
    assert np.isnan(patch(rh + 1.3 * w32, 0.0, np.nan, np.float32(0)))
    assert taylor[0] == 0 or abs(taylor[0]) < mpmath.mpf(10) ** -40


def test_normal_tail_wide_against_mpmath():
    """Phi(-y) and e^(-y^2/2) for the float32 gelu: relative error below
    2^-31 on 0 <= y <= 16, at float32 points (the polynomial's fit was
    2^-31.9 on Chebyshev nodes; measured 2^-31.6 with exp_lean's 2^-34)."""
    y = np.concatenate([np.linspace(0, 16, 4001), np.linspace(0, 1, 1001), [2.0**-30, 15.999]])
    y = y.astype(np.float32).astype(np.float64)
    with mp.workdps(30):
        q_exact = np.array([float(mpmath.ncdf(-mpmath.mpf(v))) for v in y])
        e_exact = np.array([float(mpmath.exp(-mpmath.mpf(v) ** 2 / 2)) for v in y])
    got = [_math.normal_tail_wide(v) for v in y]
    q = np.array([g[0] for g in got])
    e = np.array([g[1] for g in got])
    assert np.max(np.abs(q - q_exact) / q_exact) < 2.0**-31
    assert np.max(np.abs(e - e_exact) / e_exact) < 2.0**-33.5  # exp_lean's bound
    assert all(np.isnan(_math.normal_tail_wide(np.nan)))
