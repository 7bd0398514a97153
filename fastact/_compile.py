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

import contextlib
import functools
import hashlib
import os
import pathlib
import types
from typing import Any, Callable

import numba
from numba.core import caching

#: ``FASTACT_CACHE=0`` turns the on-disk kernel cache off (kernels compile in
#: every process).
CACHE = os.environ.get("FASTACT_CACHE", "1") != "0"

#: ``FASTACT_VECTOR_WIDTH=256`` keeps the kernels' loops to 256-bit vectors
#: on AVX-512 machines (LLVM's own default there, chosen for CPUs whose clock
#: drops under 512-bit arithmetic); by default they use 512-bit vectors.
WIDE_VECTORS = os.environ.get("FASTACT_VECTOR_WIDTH", "512") != "256"


@functools.cache
def force_lanes() -> bool:
    """Whether the elementwise loops get a vectorization width of their own
    (``fastact._vmath.vector_loop``): on x86-64 CPUs with AVX2, where it was
    measured."""
    import platform

    import llvmlite.binding as llvm

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return bool(llvm.get_host_cpu_features().get("avx2", False))


def jit_options(**extra: Any) -> dict:
    """The options of every fastact kernel.

    Cached on disk unless turned off, no GIL, and NumPy's error model: a
    float division is a plain division, not a zero test that raises, which
    is a branch with a side effect and stops the loop vectorizer.
    """
    return {"cache": CACHE, "nogil": True, "error_model": "numpy", **extra}


class _TolerantCache(caching.FunctionCache):
    """Numba's function cache, surviving damaged files.

    A truncated or corrupt entry (a crash while writing, a full disk) makes
    Numba raise while loading; here it means "not cached": the kernel
    compiles, and a damaged index is replaced when the result is saved.
    """

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception:
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception:
            with contextlib.suppress(OSError):
                os.remove(self._cache_file._index_path)
            with contextlib.suppress(Exception):
                super().save_overload(sig, data)


#: LLVM's cost limit for unswitching a loop on a loop-invariant branch
#: (its default, and the one fastact's kernels compile with). A parameter
#: test such as celu's ``alpha == 1`` is such a branch; below the limit the
#: loop is split into one copy per outcome, above it the vectorizer computes
#: both sides for every element and selects. The fused value_and_grad loop
#: of celu and softplus (two exponentials and their parameter tests) is
#: over the default limit: 1.8x and 2.5x slower with it.
_UNSWITCH_DEFAULT, _UNSWITCH_KERNELS = 50, 1000


def _set_unswitch_threshold(n: int) -> None:
    import llvmlite.binding as llvm

    llvm.set_option("", f"--unswitch-threshold={n}")


def _compiling_with_unswitching(dispatcher):
    """``dispatcher`` with its compilations run under the kernels' unswitch
    limit, restored to LLVM's default afterwards, within Numba's compiler
    lock: no other compilation in the process sees the raised limit."""
    from numba.core.compiler_lock import global_compiler_lock

    compile_ = dispatcher.compile

    @functools.wraps(compile_)
    def compile(sig):
        with global_compiler_lock:
            _set_unswitch_threshold(_UNSWITCH_KERNELS)
            try:
                return compile_(sig)
            finally:
                _set_unswitch_threshold(_UNSWITCH_DEFAULT)

    dispatcher.compile = compile
    return dispatcher


def jit(fn: Callable | None = None, *, unswitch: bool = True, **options: Any):
    """``numba.njit`` with fastact's options; usable as ``@jit`` or ``jit(parallel=True)(f)``.

    ``unswitch=False`` compiles under LLVM's default unswitch limit instead
    of the kernels' (for a kernel whose compile the raised limit slows and
    whose speed it does not change)."""

    def make(f: Callable):
        dispatcher = numba.njit(**jit_options(**options))(f)
        if CACHE:
            dispatcher._cache = _TolerantCache(dispatcher.py_func)
        return _compiling_with_unswitching(dispatcher) if unswitch else dispatcher

    return make if fn is None else make(fn)


def scalar_jit(fn: Callable | None = None, **options: Any):
    """``numba.njit`` for the functions the kernels call: inlined, not cached.

    Always inlined: a loop that calls a function does not vectorize, and
    LLVM's inliner leaves the larger scalar functions (erfc, the gradients)
    out of line. Never cached on their own: Numba validates a cache entry by
    its own source file only, so a cached helper would outlive an edit of a
    function it calls. The kernels that inline them are cached under names
    that carry the hash of every source file (``specialize``).
    """
    opts = {**jit_options(**options), "forceinline": True, "cache": False}
    make = numba.njit(**opts)
    return make if fn is None else make(fn)


def shared_jit(fn: Callable | None = None, **options: Any):
    """``numba.njit`` for a large helper that many kernels call: out of line,
    not cached on its own (see scalar_jit).

    Compiled once per argument types in a process and linked into each
    kernel that calls it, instead of inlined into every one: the tile
    kernels' gather and scatter loops (five branches of vectorized loops)
    were most of each tile kernel's compile. 2 cores (Zen 3), float32, six
    tile kernels in one process: 32 s -> 25 s of compiling, a backward's
    5.1-5.6 s -> 3.0-3.6 s; steady state within noise (geometric mean over
    12 strided layouts and ops 0.96x the inlined time). Only for helpers
    called outside the hot loop: a call inside a loop stops its vectorizer.
    """
    opts = {**jit_options(**options), "cache": False}
    make = numba.njit(**opts)
    return make if fn is None else make(fn)


def vectorize(fn: Callable):
    """A lazily compiled ``numba.vectorize`` ufunc with fastact's cache."""
    ufunc = numba.vectorize(cache=CACHE, nopython=True)(fn)
    if CACHE:
        ufunc._dispatcher.cache = _TolerantCache(ufunc._dispatcher.py_func)
    return ufunc


class _FastactCacheLocator(caching.UserProvidedCacheLocator):
    """Puts fastact's kernels under ``FASTACT_CACHE_DIR`` when it is set.

    Without it Numba's own locators apply: the package's ``__pycache__``,
    else ``NUMBA_CACHE_DIR``, else the user's cache directory. Numba writes
    cache files to a temporary name and renames them into place, so processes
    filling one cache at the same time never read a partial file.
    """

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        root = os.path.abspath(os.environ["FASTACT_CACHE_DIR"])
        self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.environ.get("FASTACT_CACHE_DIR"):
            return None
        if not str(getattr(py_func, "__module__", "")).startswith("fastact"):
            return None
        return super(caching.UserProvidedCacheLocator, cls).from_function(py_func, py_file)


if _FastactCacheLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, _FastactCacheLocator)


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
    width = "" if WIDE_VECTORS else "_w256"  # kernels of either width have their own entries
    fn.__qualname__ = f"{template.__qualname__}.{tag}_{source_hash()}{width}"
    fn.__doc__ = template.__doc__
    return fn


class KernelFamily:
    """Plain kernel functions, each compiled serial or parallel on demand.

    ``threshold`` returns the work (elements) from which the parallel build
    is used; it is read at every call, so the module that owns the family can
    change it. Where parallel launches are unsafe (see ``fastact._threads``)
    the serial build runs instead.
    """

    def __init__(self, kernels: dict, threshold: Callable[[], int], plain_unswitch=frozenset()):
        self._kernels = kernels
        self._plain_unswitch = plain_unswitch  # names compiled under LLVM's default unswitch limit
        self._threshold = threshold
        self.compiled = functools.cache(self._compile)
        self._entries: dict = {}

    def _compile(self, name: str, parallel: bool):
        # Serial and parallel builds of one function need cache entries of their own.
        fn = specialize(self._kernels[name], f"{name}_{'parallel' if parallel else 'serial'}")
        return jit(parallel=parallel, unswitch=name not in self._plain_unswitch)(fn)

    def _launch_parallel(self, name: str, *args):
        from fastact._threads import parallel_slot

        with parallel_slot() as ok:
            return self.compiled(name, ok)(*args)

    def __call__(self, name: str, work: int):
        """The kernel ``name``, parallel when ``work`` elements justify threads."""
        if work < self._threshold():
            return self.compiled(name, False)
        return functools.partial(self._launch_parallel, name)

    def run_serial(self, name: str, *args):
        """Run the serial build of ``name`` through its compiled entry point,
        which skips the dispatcher's type resolution (several microseconds of
        a small call). The entry point is kept per name and dtype of the
        first argument: a caller passes arrays of one dimension and layout,
        and scalars of one type, for each. Returns the kernel's result."""
        key = (name, args[0].dtype)
        entry = self._entries.get(key)
        if entry is None:
            k = self.compiled(name, False)
            sig = tuple(numba.typeof(a) for a in args)
            if sig not in k.overloads:
                k.compile(sig)
            entry = self._entries[key] = k.overloads[sig].entry_point
        return entry(*args)
