"""Compilation helpers shared by the CPU kernel builders.

Numba's on-disk cache keys a function by its module, qualified name and
source line, and an entry's validity by the source file's time stamp. Two
kernels made from one Python function (one template bound to different scalar
functions, or one function compiled serial and parallel) would therefore share
a cache entry. :func:`specialize` copies a function with its own globals and
a qualified name of its own, so that each kernel has its own entry. The name
carries a hash of fastact's sources: editing any definition starts a fresh
entry instead of reusing stale machine code compiled from the old one.
"""

from __future__ import annotations

import functools
import hashlib
import pathlib
import types
from typing import Any, Callable


@functools.cache
def source_hash() -> str:
    """A short hash of every source file of the package."""
    h = hashlib.sha256()
    root = pathlib.Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def specialize(template: Callable, tag: str, **globals_: Any) -> Callable:
    """A copy of ``template`` named ``tag`` with some globals rebound."""
    glb = dict(template.__globals__)
    glb.update(globals_)
    fn = types.FunctionType(template.__code__, glb, tag, template.__defaults__)
    fn.__qualname__ = f"{template.__qualname__}.{tag}_{source_hash()}"
    fn.__doc__ = template.__doc__
    return fn
