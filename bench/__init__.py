"""bench: an open benchmark harness for language-based audio retrieval."""

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
    from bench.registry import get_registry

    return get_registry().build(kind, name, options)


__all__ = ["KINDS", "__version__", "hookimpl", "load"]
