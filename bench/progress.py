"""Progress bars that stay quiet when nobody is watching a terminal."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable


def interactive() -> bool:
    if os.environ.get("BENCH_PROGRESS") == "1":
        return True
    if os.environ.get("BENCH_PROGRESS") == "0":
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[Any], **kwargs: Any) -> Any:
    """``tqdm`` on a terminal, the bare iterable otherwise (logs and CI stay readable)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=not interactive(), **kwargs)
