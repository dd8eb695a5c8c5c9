"""The item type the built-in datasets return.

Datasets are duck-typed (see :mod:`bench.hookspecs`): any object with ``audio_id``,
``audio_path`` and ``captions`` will do. This dataclass is a convenience, not a requirement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Item:
    """One recording and its captions.

    ``captions`` are what encoders see (loaders strip surrounding spaces). ``source_captions``
    keep the texts exactly as the source file holds them, when they differ: a reference script
    that keys on the raw text (the ``dcase`` protocol, docs/protocols.md) needs them. Empty when
    the captions are already the source's text.
    """

    audio_id: str
    audio_path: Path
    captions: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    source_captions: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_source(cls, audio_id: str, audio_path: Path, raw_captions: Iterable[str],
                    meta: dict[str, Any] | None = None) -> Item:
        """An item whose captions are ``raw_captions`` stripped, keeping the raw text beside them."""
        raw = tuple(raw_captions)
        captions = tuple(c.strip() for c in raw)
        return cls(audio_id=audio_id, audio_path=audio_path, captions=captions, meta=dict(meta or {}),
                   source_captions=raw if raw != captions else ())


def source_captions(item: Any) -> list[str]:
    """The item's captions as its source file holds them (``captions`` when it kept none)."""
    captions = [str(c) for c in item.captions]
    raw = getattr(item, "source_captions", None)
    return [str(c) for c in raw] if raw and len(raw) == len(captions) else captions
