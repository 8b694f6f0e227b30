"""How the compute pool (`encoderscope.compute`) shares the CPUs: core count, per-thread limits of the numeric
libraries, the environment of a child process, and a lower CPU priority for background work. No torch import."""

from __future__ import annotations

import os
import sys
import threading


def cores() -> int:
    """CPUs this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# threadpoolctl's limits are partly per thread (OpenMP) and partly process-wide (OpenBLAS with pthreads, MKL).


def limit_threads(n: int) -> None:
    """Cap the intra-op threads of the calling thread's numeric libraries at `n`.

    torch and numba keep the count per thread (torch through OpenMP's per-thread setting), so each worker sets
    its own; BLAS and OpenMP libraries go through threadpoolctl. Libraries not yet imported are left alone
    (no torch import here).
    """
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    numba = sys.modules.get("numba")
    # Another thread may be importing numba right now (the UMAP warm-up): a half-initialised module has no
    # set_num_threads yet. Skip it then; the next job sets it.
    set_numba = getattr(numba, "set_num_threads", None)
    config = getattr(numba, "config", None)
    if set_numba is not None and hasattr(config, "NUMBA_NUM_THREADS"):
        set_numba(min(n, config.NUMBA_NUM_THREADS))
    # BLAS/OpenMP pools are process-wide and other code (a context that restores its caller's threads) may have
    # changed them since: set them on every job (about 1 ms), never from a memo.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)


def thread_env(n: int) -> dict[str, str]:
    """Environment variables that cap a child process's numeric libraries at `n` threads (torch and BLAS read
    them at start), for work the pool accounts for but runs in another process (a background atlas build)."""
    return {name: str(n) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "NUMBA_NUM_THREADS")}


def lower_priority(nice: int, pid: int | None = None) -> bool:
    """Raise the nice value of the calling thread (or of process `pid`) by `nice`, up to 19: the kernel then
    gives the CPU to normal-priority work first. Linux only, where the nice value is per thread and the threads
    a thread starts later (its OpenMP team) inherit it; raising it needs no privilege, lowering it back does, so
    call it on a thread that does only background work. Returns whether it was applied."""
    if nice <= 0 or sys.platform != "linux":
        return False
    target = threading.get_native_id() if pid is None else pid
    try:
        os.setpriority(os.PRIO_PROCESS, target, min(19, os.getpriority(os.PRIO_PROCESS, target) + nice))
    except OSError:
        return False
    return True
