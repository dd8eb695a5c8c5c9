"""Built-in logger ``log_txt`` (always on): the run's log lines, appended to ``<run dir>/log.txt``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench import hookimpl


@hookimpl
def register_loggers(register: Any) -> None:
    """Register ``log_txt``."""
    register("log_txt", LogText)


class LogText:
    """Copies the ``bench`` logger's lines into ``log.txt`` from run start to run end."""

    def __init__(self) -> None:
        self.handler: logging.Handler | None = None

    @hookimpl(tryfirst=True)  # first, so that what other loggers log at run start is in the file
    def on_run_start(self, run_dir: Path) -> None:
        handler = logging.FileHandler(Path(run_dir) / "log.txt", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger = logging.getLogger("bench")
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        self.handler = handler

    @hookimpl(trylast=True)
    def on_run_end(self) -> None:
        if self.handler is not None:
            logging.getLogger("bench").removeHandler(self.handler)
            self.handler.close()
            self.handler = None
