"""The console side of bench's log: attached once, before anything is logged."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("bench")


def attach_console() -> None:
    """Print the ``bench`` logger's INFO lines to stderr (idempotent)."""
    log.setLevel(logging.INFO)
    if any(getattr(h, "_bench_console", False) for h in log.handlers):
        return
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    console._bench_console = True  # type: ignore[attr-defined]
    log.addHandler(console)
