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

import contextlib
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


def _layer() -> str:
    """The threading layer Numba uses, starting its pool if needed."""
    from numba.np.ufunc import parallel

    parallel._launch_threads()
    return parallel._threading_layer


@contextlib.contextmanager
def parallel_slot():
    """Yield True when the caller may launch a parallel kernel now.

    Always True under the thread-safe layers (omp, tbb) outside a forked
    child; under workqueue, True for one thread at a time.
    """
    if not _enabled or _forked_child:
        yield False
        return
    if _layer() != "workqueue":
        yield True
        return
    if _lock.acquire(blocking=False):
        try:
            yield True
        finally:
            _lock.release()
    else:
        yield False
