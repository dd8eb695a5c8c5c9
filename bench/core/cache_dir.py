"""Where bench keeps what it can recompute: one resolver for every cache directory.

The root is ``$BENCH_CACHE`` when set (``~`` expanded), else ``~/.cache/bench``. Below it, each
cache has its own folder: ``audio/`` (decoded audio), ``embeddings/`` (frozen encoders' outputs),
``manifests/`` (dataset validation reports) and ``synthetic/`` (generated datasets). Deleting
any of them only costs time: everything in them is rebuilt on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "BENCH_CACHE"

AUDIO = "audio"
EMBEDDINGS = "embeddings"
MANIFESTS = "manifests"
SYNTHETIC = "synthetic"


def cache_root() -> Path:
    """``$BENCH_CACHE`` if set, else ``~/.cache/bench``; read on every call, so tests can set it."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bench"


def cache_path(*parts: str) -> Path:
    """A folder (or file) under :func:`cache_root`, e.g. ``cache_path("audio")``."""
    return cache_root().joinpath(*parts)
