"""Test hooks that make bench signal itself at a named point, to test what an interruption leaves.

``BENCH_FAULT=<point>:<SIGNAL>`` (e.g. ``result-written:KILL``) sends the signal when the run
reaches ``point``. Points: ``result-written`` (the result is in ``--results-dir``, the run
directory's copy not yet written: the window of a kill at that rename) and ``worker-start``
(a DataLoader worker signals its parent while the workers start). Unset, every hook is one
dictionary lookup. A signal chosen this way is exact, where a timed ``kill`` from outside is not.
"""

from __future__ import annotations

import os
import signal

ENV = "BENCH_FAULT"


def _wanted(point: str) -> int | None:
    spec = os.environ.get(ENV, "")
    name, _, sig = spec.partition(":")
    if name != point:
        return None
    return int(getattr(signal, f"SIG{sig or 'KILL'}"))


def reached(point: str, pid: int | None = None) -> None:
    """Send the configured signal to ``pid`` (default: this process) if ``point`` is the one named."""
    signum = _wanted(point)
    if signum is not None:
        os.environ.pop(ENV, None)  # once: a resumed or repeated step goes on
        os.kill(pid if pid is not None else os.getpid(), signum)
