"""The training batch every loss receives."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class Batch:
    """One batch of (audio, caption) pairs.

    ``audio_ids`` are integers local to the split: equal ids mean the same recording, so a loss
    can treat the other captions of a recording as positives. ``item_index`` indexes the split's
    items, ``caption_index`` the caption within the item, and ``pair_index`` the flattened
    (item, caption) pair list of the split; the teacher store is keyed by ``pair_index``.
    """

    waveforms: torch.Tensor  # [B, T] float, zero-padded
    lengths: torch.Tensor  # [B] long, valid samples
    captions: list[str]
    audio_ids: torch.Tensor  # [B] long
    item_index: torch.Tensor  # [B] long
    caption_index: torch.Tensor  # [B] long
    pair_index: torch.Tensor  # [B] long
    teacher_audio: torch.Tensor | None = None  # [M, B, D]
    teacher_text: torch.Tensor | None = None  # [M, B, D]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                moved[f.name] = value.to(device, non_blocking=non_blocking)
        return replace(self, **moved)

    def __len__(self) -> int:
        return len(self.captions)
