"""DataLoader workers that stop with their parent: signals held while they start, killed when it dies.

A stop (Ctrl-C, SIGTERM, the parent killed) must end every worker quietly and at once, whatever
the worker was doing, and print nothing but bench's own one line.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader as TorchDataLoader

_FORKED_BY = [os.getpid()]


def _note_forker() -> None:
    _FORKED_BY[0] = os.getpid()


# The pid of whoever forks (the process that starts DataLoader workers), as a forked worker sees it.
if hasattr(os, "register_at_fork"):  # not on Windows, where workers are spawned
    os.register_at_fork(before=_note_forker)


class DataLoader(TorchDataLoader):
    """torch's DataLoader whose workers start with SIGINT/SIGTERM held (:func:`bench.core.interrupts.deferred`).

    A signal that lands while torch forks its workers is otherwise lost in an at-fork callback
    or leaves a half-built iterator whose ``__del__`` prints a traceback; held, it is raised as
    soon as the workers are up, and the iterator shuts them down cleanly.
    """

    def __iter__(self) -> Any:
        from bench.core import interrupts

        with interrupts.deferred():
            return super().__iter__()


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    torch's own watchdog only notices a dead parent while a worker waits for work, so a worker
    busy or blocked when its parent is killed (SIGKILL, or SIGTERM before cleanup) lived on as
    an orphan. The signal fires when the thread that forked the worker exits; bench starts
    workers from the main thread. Elsewhere than Linux this is a no-op.
    """
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def worker_init(worker_id: int) -> None:
    from bench.core import faults

    parent = _FORKED_BY[0]
    _die_with_parent(parent)
    # A parent stopped by a signal mid-transfer leaves this worker's fd-sharing thread with a broken
    # connection; that is the parent's stop, which it reports in one line (bench.core.interrupts).
    from bench.core import interrupts

    interrupts.quiet_broken_connections()
    # Each worker would otherwise use as many threads as cores, oversubscribing the machine.
    torch.set_num_threads(1)
    if worker_id == 0:
        faults.reached("worker-start", pid=parent)
