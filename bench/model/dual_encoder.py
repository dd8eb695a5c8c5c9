"""The dual encoder: two encoders, one projection each, L2 normalisation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.contracts import check_features


def is_frozen(module: nn.Module) -> bool:
    """A module with parameters, none of which is trained."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


class DualEncoder(nn.Module):
    """Audio encoder + text encoder, each followed by a Linear projection to ``proj_dim``.

    Agreement between a caption and a recording is the cosine similarity of the two normalised
    projections. Frozen encoders stay in eval mode during training so that their dropout and
    normalisation statistics do not change.

    Each encoder's first output is checked against its contract (:mod:`bench.contracts`: shape
    ``[B, embed_dim]``, finite); ``audio_name``/``text_name`` are the registry names the
    messages use.
    """

    def __init__(self, audio_encoder: nn.Module, text_encoder: nn.Module, proj_dim: int = 1024,
                 audio_name: str | None = None, text_name: str | None = None) -> None:
        super().__init__()
        for attr, module in (("audio encoder", audio_encoder), ("text encoder", text_encoder)):
            if not isinstance(getattr(module, "embed_dim", None), int):
                raise TypeError(f"the {attr} {type(module).__name__} must define an integer embed_dim")
        self.audio_encoder = audio_encoder
        self.text_encoder = text_encoder
        self.audio_proj = nn.Linear(audio_encoder.embed_dim, proj_dim)
        self.text_proj = nn.Linear(text_encoder.embed_dim, proj_dim)
        self.audio_label = f"audio encoder {audio_name or type(audio_encoder).__name__!r}"
        self.text_label = f"text encoder {text_name or type(text_encoder).__name__!r}"
        # One check per encoder and process: after the first batch the contract holds.
        self._audio_checked = False
        self._text_checked = False

    def train(self, mode: bool = True) -> DualEncoder:
        super().train(mode)
        for encoder in (self.audio_encoder, self.text_encoder):
            if is_frozen(encoder):
                encoder.eval()
        return self

    def audio_features(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The audio encoder's output, before projection (what an embedding cache stores)."""
        if is_frozen(self.audio_encoder):
            with torch.no_grad():
                out = self.audio_encoder(waveforms, lengths)
        else:
            out = self.audio_encoder(waveforms, lengths)
        if not self._audio_checked:
            check_features(self.audio_label, out, waveforms.shape[0], self.audio_encoder.embed_dim)
            self._audio_checked = True
        return out

    def text_features(self, captions: list[str]) -> torch.Tensor:
        """The text encoder's output, before projection."""
        if is_frozen(self.text_encoder):
            with torch.no_grad():
                out = self.text_encoder(captions)
        else:
            out = self.text_encoder(captions)
        if not self._text_checked:
            check_features(self.text_label, out, len(captions), self.text_encoder.embed_dim)
            self._text_checked = True
        return out

    def project_audio(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_proj(features.to(self.audio_proj.weight.dtype)).float(), dim=-1)

    def project_text(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(features.to(self.text_proj.weight.dtype)).float(), dim=-1)

    def encode_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.project_audio(self.audio_features(waveforms, lengths))

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        return self.project_text(self.text_features(captions))


def parameter_groups(
    model: DualEncoder, loss: nn.Module, lr: float, head_lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Pretrained encoders train at ``lr``; projections, scratch encoders and loss parameters at ``head_lr``."""
    pretrained, scratch = [], []
    for encoder in (model.audio_encoder, model.text_encoder):
        trainable = [p for p in encoder.parameters() if p.requires_grad]
        (pretrained if getattr(encoder, "pretrained", False) else scratch).extend(trainable)
    scratch += list(model.audio_proj.parameters()) + list(model.text_proj.parameters())
    scratch += [p for p in loss.parameters() if p.requires_grad]
    groups = []
    if pretrained:
        groups.append({"params": pretrained, "lr": lr, "base_lr": lr, "weight_decay": weight_decay,
                       "name": "pretrained"})
    groups.append({"params": scratch, "lr": head_lr, "base_lr": head_lr, "weight_decay": weight_decay,
                   "name": "new"})
    return groups
