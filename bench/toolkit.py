"""Helpers a plugin may import (public, stable): items, validation, caches and atomic writes.

The built-in plugins use exactly these, so a third-party dataset, encoder or logger can do what
they do. Each name keeps its meaning across versions; the modules they come from are internal.

- :class:`Item`: one recording and its captions, what a dataset's ``split(name)`` returns;
- :class:`BadEntry`, :func:`validate_split`, :func:`check_on_error`, :func:`format_bad`: naming
  every bad entry of a dataset in one line each (see ``bench validate``);
- :func:`attach_validation`: give a dataset ``bench validate``'s audio checks;
- :func:`missing_package`: the one-line install hint a preflight returns for a missing package;
- :func:`cache_path`, :data:`SYNTHETIC`: where bench caches things (``$BENCH_CACHE``);
- :func:`atomic_path`, :func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`as_disk_full`:
  write a file whole or not at all;
- :func:`config_to_json`: a run's configuration as plain JSON (for loggers);
- :func:`weights_fingerprint`: a content hash of a model's weights (for embedding-cache keys), and
  :func:`files_fingerprint`: of the config/tokenizer/processor files it was loaded from (set it as
  the module's ``source_fingerprint``, and ``weights_fingerprint`` covers those files too);
- for launchers (``register_launchers``): :func:`run_grid` runs combinations where the launcher
  put them (skips finished ones, resumes interrupted ones, holds each combination's lock),
  :func:`combination_id`, :func:`find_existing` and :func:`reuse_line` name and find finished
  ones, :func:`attach_console` shows bench's lines, :func:`join_process_group` joins the DDP
  group a scheduler set up and :func:`relaunch_with_torchrun` re-executes ``bench run`` under
  torchrun.

Names that need torch are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

from bench.core.atomic import as_disk_full, atomic_path, atomic_write_bytes, atomic_write_text
from bench.core.cache_dir import SYNTHETIC, cache_path
from bench.core.config import config_to_json
from bench.core.console import attach_console
from bench.core.preflight import missing_package
from bench.data.audio_checks import attach_validation
from bench.data.items import Item
from bench.data.validate import BadEntry, check_on_error, format_bad, validate_split
from bench.runs.launchers import join_process_group, relaunch_with_torchrun

# name -> module, imported on first use (they import torch).
_LAZY = {
    "weights_fingerprint": "bench.evaluation.embedding_cache", "files_fingerprint": "bench.evaluation.embedding_cache",
    "run_grid": "bench.runs.grid", "reuse_line": "bench.runs.grid",
    "combination_id": "bench.runs.run", "find_existing": "bench.runs.run",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bench.toolkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "SYNTHETIC", "BadEntry", "Item", "as_disk_full", "atomic_path", "atomic_write_bytes", "atomic_write_text",
    "attach_validation", "cache_path", "check_on_error", "config_to_json", "format_bad", "missing_package",
    "attach_console", "join_process_group", "relaunch_with_torchrun", "validate_split", *_LAZY,
]
