"""The item type the built-in datasets return.

Datasets are duck-typed (see :mod:`bench.hookspecs`): any object with ``audio_id``,
``audio_path`` and ``captions`` will do. This dataclass is a convenience, not a requirement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Item:
    audio_id: str
    audio_path: Path
    captions: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
