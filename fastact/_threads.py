"""When the parallel kernels may run, and when the serial ones must.

Numba's threading layers have hazards that a library called from anywhere
must design out:

* ``workqueue`` is not thread-safe: two Python threads inside parallel kernels
  at once abort the process. Under it, a parallel launch takes a lock without
  waiting; a thread that finds it taken runs the serial kernel instead.
* GNU OpenMP kills a forked child at its first parallel launch, and TBB can
  hang around ``fork``. A child forked after the parent started Numba's
  thread pool therefore runs the serial kernels only (``spawn`` and
  ``forkserver`` children start fresh and run in parallel).

``FASTACT_NUM_THREADS=1`` (or ``set_parallel(False)``) turns the parallel
kernels off altogether.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_forked_child = False
_enabled = os.environ.get("FASTACT_NUM_THREADS", "") != "1"


def _pool_started() -> bool:
    from numba.np.ufunc import parallel

    return bool(parallel._is_initialized)


def _after_fork_in_child() -> None:
    global _forked_child, _lock
    _lock = threading.Lock()  # a lock held by another thread at fork time stays held
    if _pool_started():
        from numba.np.ufunc import parallel

        layer = parallel._threading_layer
        if layer != "workqueue":  # omp and tbb are not fork-safe
            _forked_child = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def set_parallel(enabled: bool) -> None:
    """Allow (default) or forbid the parallel kernels in this process."""
    global _enabled
    _enabled = bool(enabled)


_layer_name: str | None = None


def _layer() -> str:
    """The threading layer Numba uses, starting its pool if needed (once:
    asking Numba again costs ~1.5 us, a tenth of a parallel launch)."""
    global _layer_name
    if _layer_name is None:
        from numba.np.ufunc import parallel

        parallel._launch_threads()
        _layer_name = parallel._threading_layer
    return _layer_name


_get_threads = None


def threads() -> int:
    """``numba.get_num_threads()`` (this thread's setting) without its
    checks: 0.19 against 0.56 us per call."""
    global _get_threads
    if _get_threads is None:
        from numba.np.ufunc import parallel

        _layer()
        _get_threads = parallel._get_num_threads
    return max(1, _get_threads())


class _Slot:
    """The context of parallel_slot: a class, not a generator (a third of
    the cost per call)."""

    __slots__ = ("held",)

    def __enter__(self) -> bool:
        self.held = False
        if not _enabled or _forked_child:
            return False
        if _layer() != "workqueue":
            return True
        self.held = _lock.acquire(blocking=False)
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            self.held = False
            _lock.release()


def parallel_slot() -> _Slot:
    """A context whose value is True when the caller may launch a parallel
    kernel now.

    Always True under the thread-safe layers (omp, tbb) outside a forked
    child; under workqueue, True for one thread at a time.
    """
    return _Slot()
