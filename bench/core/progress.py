"""Progress of long phases: a tqdm bar on a terminal, a periodic log line everywhere else.

Off a terminal (output to a file, CI, ``nohup``) a bar is noise, but silence is worse: embedding
7000 captions or validating 10 000 files takes minutes. There, :func:`progress` logs one line
through the ``bench`` logger at most every ``BENCH_PROGRESS_EVERY`` seconds (default 20, so a
line arrives at least every 30 s while items keep finishing) with done/total, the percentage, the
rate and the time left, plus whatever the caller shows with ``set_postfix`` (the training loss):

    epoch 3/8: 412/938 batches (44%), 6.1 batch/s, ~1 min 26 s left, loss=2.1032, pairs_s=781.2

``BENCH_PROGRESS=1`` forces bars, ``BENCH_PROGRESS=0`` forces log lines; by default bars are used
when stderr is a terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger("bench")
DEFAULT_EVERY_S = 20.0


def interactive() -> bool:
    """Whether progress is drawn as bars (a terminal, or ``BENCH_PROGRESS=1``)."""
    if os.environ.get("BENCH_PROGRESS") == "1":
        return True
    if os.environ.get("BENCH_PROGRESS") == "0":
        return False
    return sys.stderr.isatty()


def every_s() -> float:
    """Seconds between two progress log lines (``BENCH_PROGRESS_EVERY``, default 20)."""
    try:
        return max(0.0, float(os.environ.get("BENCH_PROGRESS_EVERY", DEFAULT_EVERY_S)))
    except ValueError:
        return DEFAULT_EVERY_S


def progress(iterable: Iterable[Any], **kwargs: Any) -> Any:
    """``tqdm`` on a terminal, a :class:`LogProgress` otherwise (logs and CI stay readable).

    Accepts tqdm's ``desc``, ``total`` and ``unit``; others are passed to tqdm only.
    """
    if not interactive():
        return LogProgress(iterable, desc=kwargs.get("desc", ""), total=kwargs.get("total"),
                           unit=kwargs.get("unit", "it"))
    from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


class LogProgress:
    """Iterate ``iterable``, logging ``desc: done/total unit (pct), rate, time left`` every :func:`every_s`.

    A phase that logged at least one line also logs its end, so a log shows every long phase's
    duration; a phase shorter than the interval stays silent.
    """

    def __init__(self, iterable: Iterable[Any], *, desc: str = "", total: int | None = None, unit: str = "it",
                 every: float | None = None, clock: Any = time.monotonic) -> None:
        self.iterable = iterable
        self.desc = desc or "progress"
        self.unit = unit
        self.every = every_s() if every is None else every
        self.clock = clock
        self.postfix: dict[str, Any] = {}
        if total is None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total = total
        self.done = 0
        self.lines = 0

    def __len__(self) -> int:
        return int(self.total or 0)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def __iter__(self) -> Iterator[Any]:
        started = last = self.clock()
        for item in self.iterable:
            yield item
            self.done += 1
            now = self.clock()
            if now - last >= self.every and self.done != self.total:  # the end has its own line
                last = now
                self._log(now - started, final=False)
        if self.lines:
            self._log(self.clock() - started, final=True)

    def line(self, elapsed: float, *, final: bool) -> str:
        """The text of one progress line after ``elapsed`` seconds."""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        parts = [f"{self.desc}: {count} {_plural(self.unit)}"]
        if self.total:
            parts[0] += f" ({100 * self.done / self.total:.0f}%)"
        if final:
            parts.append(f"done in {_duration(elapsed)}")
        parts.append(f"{rate:.1f} {self.unit}/s" if rate >= 1 or rate == 0 else f"{1 / rate:.1f} s/{self.unit}")
        if not final and self.total and rate > 0:
            parts.append(f"~{_duration((self.total - self.done) / rate)} left")
        parts += [f"{k}={v}" for k, v in self.postfix.items()]
        return ", ".join(parts)

    def _log(self, elapsed: float, *, final: bool) -> None:
        self.lines += 1
        log.info("%s", self.line(elapsed, final=final))


def _plural(unit: str) -> str:
    if unit == "it":
        return "items"
    return unit + ("es" if unit.endswith(("ch", "s")) else "s")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
