"""The heavy part of the ``clap`` model plugin: loading and running ``ClapModel``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import ConfigError
from bench_plugins.models._clap_location import cached_folder, looks_like_path, not_available


def _not_available(model: str) -> ConfigError:
    return ConfigError(not_available(model))


def load_clap(model: str, local_only: bool) -> tuple[Any, Any]:
    """``(ClapProcessor, ClapModel)`` from a local directory or the hub cache; one line if unavailable."""
    from bench_plugins._hub import hub_reachable, offline

    path = Path(model).expanduser()
    if path.is_dir():
        source, may_download = str(path), False
    else:
        if looks_like_path(model):
            raise ConfigError(f"clap model {model!r}: no such directory; pass a hub id such as "
                              "laion/clap-htsat-unfused or an existing directory with --set clap.model=DIR")
        source = model
        may_download = not (local_only or offline()) and hub_reachable()
        if not may_download and not cached_folder(model).is_dir():
            raise _not_available(model)  # at once, without importing transformers' CLAP
    from transformers import ClapModel, ClapProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    error: Exception | None = None
    for local_files_only in ([True, False] if may_download else [True]):
        try:
            processor = ClapProcessor.from_pretrained(source, local_files_only=local_files_only)
            clap = ClapModel.from_pretrained(source, local_files_only=local_files_only)
            return processor, clap.eval()
        except Exception as exc:  # transformers raises OSError, ValueError or hub errors
            error = exc
    if path.is_dir():
        raise ConfigError(f"clap model directory {path} cannot be loaded ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}); it needs config.json, the weights "
                          "and the processor files that ClapModel/ClapProcessor.save_pretrained write")
    raise _not_available(model)


class ClapRetrieval(nn.Module):
    """``ClapModel`` as a :class:`bench.contracts.RetrievalModel`: normalised projections of both towers.

    transformers' ``ClapFeatureExtractor`` marks a random clip of a batch as "longer" when no clip
    is longer than the window (``feature_extraction_clap.py``, ``__call__``), which makes a fused
    model's embedding of a clip depend on the rest of its batch. bench passes every clip's true
    flag instead, so that embeddings are per clip and cacheable.
    """

    stochastic = True  # random crops of clips longer than the window (both truncation modes)

    def __init__(self, clap: nn.Module, processor: Any, *, model: str, truncation: str, padding: str,
                 max_seconds: float) -> None:
        super().__init__()
        self.clap = clap
        self.processor = processor
        extractor = processor.feature_extractor
        self.truncation = extractor.truncation if truncation == "auto" else truncation
        self.padding = extractor.padding if padding == "auto" else padding
        self.sample_rate = int(extractor.sampling_rate)
        self.window_samples = int(extractor.nb_max_samples)
        self.max_seconds = float(max_seconds)
        self.model_name = model
        # Every file the loader read but the weights (config, tokenizer, processor): part of the cache key.
        from bench_plugins._hub import source_fingerprint

        self.source_fingerprint = source_fingerprint(model, processor.tokenizer.init_kwargs, clap.config.to_dict(),
                                                     extractor.to_dict())
        self._fingerprint: str | None = None
        for param in self.clap.parameters():
            param.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return next(self.clap.parameters()).device

    @property
    def fingerprint(self) -> str:
        """Weights, preprocessing and the model folder's files: what makes two instances the same function.

        The folder's files (:func:`bench.toolkit.files_fingerprint`) cover the tokenizer: editing
        ``model_max_length`` in ``tokenizer_config.json`` changes the text embeddings, so it must
        change the key. ``weights_fingerprint`` folds in ``source_fingerprint``.
        """
        if self._fingerprint is None:
            from bench.toolkit import weights_fingerprint

            options = {"truncation": self.truncation, "padding": self.padding, "rate": self.sample_rate,
                       "window": self.window_samples, "extractor": self.processor.feature_extractor.to_dict()}
            options["tokenizer"] = self.processor.tokenizer.init_kwargs  # also when no folder was found
            payload = json.dumps(options, sort_keys=True, default=str) + weights_fingerprint(self)
            self._fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:20]
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        audio_config = self.clap.config.audio_config
        return {"name": "clap", "model": self.model_name, "truncation": self.truncation, "padding": self.padding,
                "sample_rate": self.sample_rate, "window_seconds": self.window_samples / self.sample_rate,
                "max_seconds": self.max_seconds, "enable_fusion": bool(getattr(audio_config, "enable_fusion", False))}

    def audio_inputs(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """The feature extractor's inputs for a padded batch, with each clip's own ``is_longer``."""
        clips = [waveforms[row, : int(n)].detach().cpu().numpy().astype(np.float64) for row, n in enumerate(lengths)]
        features = self.processor.feature_extractor(clips, sampling_rate=self.sample_rate, truncation=self.truncation,
                                                    padding=self.padding, return_tensors="pt")
        longer = torch.tensor([[len(clip) > self.window_samples] for clip in clips])
        return {"input_features": features["input_features"], "is_longer": longer}

    @torch.no_grad()
    def embed_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = {k: v.to(self.device) for k, v in self.audio_inputs(waveforms, lengths).items()}
        return _pooled(self.clap.get_audio_features(**inputs))

    @torch.no_grad()
    def embed_text(self, captions: list[str]) -> torch.Tensor:
        tokenizer = self.processor.tokenizer
        # RoBERTa's positions start after the padding index: 2 fewer tokens than position embeddings.
        limit = min(int(tokenizer.model_max_length), int(self.clap.config.text_config.max_position_embeddings) - 2)
        tokens = tokenizer(list(captions), padding=True, truncation=True, max_length=limit, return_tensors="pt")
        return _pooled(self.clap.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()}))


def _pooled(output: Any) -> torch.Tensor:
    """transformers 5 returns a ModelOutput whose ``pooler_output`` holds the features; 4.x a tensor."""
    return (output if isinstance(output, torch.Tensor) else output.pooler_output).float()
