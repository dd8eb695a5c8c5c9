"""bench: an open benchmark harness for language-based audio retrieval.

The public, stable API is what this package and its top-level modules export:

- ``bench`` itself: :data:`hookimpl`, :func:`load`, :data:`KINDS`, the errors, the option bounds
  and the result reader (``bench.read_result``, ``bench.read_results``);
- :mod:`bench.hookspecs` (the plugin hooks), :mod:`bench.contracts` (what a component must be),
  :mod:`bench.options` (``Gt``, ``Ge``, ``Lt``, ``Le``), :mod:`bench.errors`;
- :mod:`bench.toolkit`: helpers a plugin may call (items, validation, caches, atomic writes).

Everything in the subpackages (``bench.cli``, ``bench.runs``, ``bench.training``,
``bench.evaluation``, ``bench.results``, ``bench.leaderboard``, ``bench.model``, ``bench.data``,
``bench.core``) is internal and may change between versions.
"""

from __future__ import annotations

from typing import Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("bench")
"""Marker for plugin hook implementations: ``@bench.hookimpl``."""

KINDS = ("audio_encoder", "text_encoder", "loss", "dataset")


def load(kind: str, name: str, **options: Any) -> Any:
    """Build a component by kind and name, e.g. ``bench.load("loss", "ntxent", tau=0.07)``.

    ``kind`` is one of ``audio_encoder``, ``text_encoder``, ``loss``, ``dataset``. Unknown names
    raise :class:`bench.errors.ConfigError` with the available names and a suggestion.
    """
    from bench.core.registry import get_registry

    return get_registry().build(kind, name, options)


# Re-exported lazily: ``import bench`` stays as cheap as pluggy (``bench ls`` imports every plugin).
_LAZY = {
    "BenchError": "bench.errors", "ConfigError": "bench.errors", "DataError": "bench.errors",
    "Gt": "bench.options", "Ge": "bench.options", "Lt": "bench.options", "Le": "bench.options",
    "read_result": "bench.results", "read_results": "bench.results",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = ["KINDS", "__version__", "hookimpl", "load", *_LAZY]
