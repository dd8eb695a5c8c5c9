"""The console side of bench's log: attached once, before anything is logged."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("bench")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when the handler was made.

    The handler is attached once per process; a caller that swaps ``sys.stderr`` afterwards
    (pytest's capture, a notebook, a redirect) still gets the lines, and a closed old stream is
    never written to.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass  # logging.StreamHandler.__init__ assigns it; the current sys.stderr always wins


def attach_console() -> None:
    """Print the ``bench`` logger's INFO lines to stderr (idempotent)."""
    log.setLevel(logging.INFO)
    if any(getattr(h, "_bench_console", False) for h in log.handlers):
        return
    console = _StderrHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    console._bench_console = True  # type: ignore[attr-defined]
    log.addHandler(console)
