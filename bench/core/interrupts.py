"""SIGINT and SIGTERM always stop a run, with the exit status a shell expects (130, 143).

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. When that is a
finalizer (``__del__``, a weakref callback: e.g. while DataLoader workers are being started or
shut down) the exception is printed as "Exception ignored" and lost, and the run would carry on
to exit 0. So the handler also records the signal, and :func:`check` (called by the trainer at
every step and before a result is written) raises again: a swallowed signal still stops the run
at the next step. :class:`Interrupted` subclasses ``KeyboardInterrupt``, so code that already
cleans up on Ctrl-C cleans up on SIGTERM too.

Where a lost exception was seen is DataLoader workers starting: the interpreter's at-fork
callbacks (``logging``'s lock release) swallow it, and torch's iterator, interrupted half-built,
prints an ``AttributeError`` from its ``__del__``. So inside :func:`deferred` (bench's
DataLoader wraps the start of its workers in it) and during any fork, the handler only records
the signal; it is raised when the block ends, or re-sent 50 ms after a fork elsewhere.

A stop also breaks connections mid-transfer: a DataLoader batch reaches the parent as file
descriptors handed over by ``multiprocessing.resource_sharer``'s thread in the worker, and a parent
stopped during that hand-over leaves the worker's thread with a ``ConnectionResetError``, which
it prints through ``sys.excepthook`` after bench's own one-line message. A broken connection in
a worker, or in the parent after a stop signal, only says that the other side stopped, and the
parent reports why; :func:`quiet_broken_connections` keeps such errors off the terminal there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["Interrupted", "check", "deferred", "handling", "note_run", "quiet_broken_connections", "received",
           "resume_hint"]

_received: int | None = None
_run: tuple[str, Path] | None = None
_forking = 0  # > 0 between this process's at-fork "before" and "after" callbacks
_deferring = 0  # > 0 inside deferred()
_held: int | None = None  # a signal that arrived during a fork, to deliver after it


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by ``signum``; ``exit_code`` is 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


_BROKEN = (ConnectionError, EOFError)  # the other end of a pipe or socket went away
_quiet_installed = False


def quiet_broken_connections(when: Callable[[], bool] = lambda: True) -> None:
    """From now on, print no traceback for a broken connection (``sys.excepthook``, thread hook) while ``when()``.

    DataLoader workers call it with the default (always: bench.data.workers.worker_init); the stop
    handler calls it in the parent once a signal arrived. Other exceptions print as before.
    """
    global _quiet_installed
    if _quiet_installed:
        return
    _quiet_installed = True
    plain, threaded = sys.excepthook, threading.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not (issubclass(kind, _BROKEN) and when()):
            plain(kind, value, tb)

    def thread_hook(args: Any) -> None:
        if not (issubclass(args.exc_type, _BROKEN) and when()):
            threaded(args)

    sys.excepthook, threading.excepthook = hook, thread_hook


def _handler(signum: int, _frame: object) -> None:
    global _received, _held
    if _received is None:
        _received = signum
        quiet_broken_connections(lambda: _received is not None)
    if _forking or _deferring:
        _held = signum  # raising inside an at-fork callback would be "Exception ignored"
        return
    raise Interrupted(_received)


def _before_fork() -> None:
    global _forking
    _forking += 1


def _after_fork_in_parent() -> None:
    global _forking, _held
    _forking = max(0, _forking - 1)
    if _held is not None and not _forking and not _deferring:
        timer = threading.Timer(0.05, os.kill, (os.getpid(), _held))
        timer.daemon = True
        timer.start()
        _held = None


def _after_fork_in_child() -> None:
    global _forking, _deferring, _held, _quiet_installed
    _forking, _deferring, _held = 0, 0, None
    _quiet_installed = False  # a child decides for itself (a DataLoader worker: always quiet)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM for the block (keep it short) and raise :class:`Interrupted` at its end."""
    global _deferring, _held
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _held is not None:
            _held = None
            raise Interrupted(_received or signal.SIGINT)


if hasattr(os, "register_at_fork"):
    # Registered at import, after logging's: our "before" runs first, our "after" last.
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def received() -> int | None:
    """The first stop signal received while :func:`handling` was active, or None."""
    return _received


def check() -> None:
    """Raise :class:`Interrupted` if a stop signal arrived (even one whose exception was lost)."""
    if _received is not None:
        raise Interrupted(_received)


def note_run(run_id: str, runs_dir: Path) -> None:
    """Remember the run in progress, so the message on interruption names it."""
    global _run
    _run = (run_id, Path(runs_dir))


def resume_hint(default_runs_dir: Path | None = None) -> str:
    """The command that continues the interrupted run."""
    if _run is None:
        return "`bench run --resume latest` continues the run"
    run_id, runs_dir = _run
    extra = "" if default_runs_dir is not None and runs_dir == Path(default_runs_dir) else f" --runs-dir {runs_dir}"
    return f"`bench run --resume {run_id}{extra}` continues it"


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Install the SIGINT/SIGTERM handlers for the block (main thread only; elsewhere a no-op)."""
    global _received, _run
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received, _run = None, None
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
