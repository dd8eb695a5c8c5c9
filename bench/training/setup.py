"""Building what a :class:`bench.training.trainer.Trainer` trains with, one small factory per part.

The trainer only wires these parts together; choosing the device, building the data pipeline,
the optimizer, the frozen-feature cache and the DDP wrapper happen here, where each can be
replaced or tested on its own.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.core.config import RunConfig, TrainSettings
from bench.data.loading import AudioLoader, EpochSampler, SplitData, TrainPairs, collate_pairs
from bench.data.workers import DataLoader, worker_init
from bench.errors import ConfigError
from bench.model import distributed as dist
from bench.model.checkpoints import load_model_state
from bench.model.devices import amp_dtype, autocast_factory, select_device
from bench.model.dual_encoder import DualEncoder, is_frozen, parameter_groups

log = logging.getLogger("bench")


@dataclasses.dataclass
class Components:
    """The built pieces of a run (the runner builds them, the trainer uses them)."""

    dataset: Any
    audio_encoder: nn.Module
    text_encoder: nn.Module
    loss: nn.Module


@dataclasses.dataclass
class TrainingParts:
    """Everything the trainer needs besides the config: built by :func:`build_training`."""

    device: torch.device
    amp: torch.dtype | None
    autocast: Callable[[], Any]
    loader: AudioLoader
    model: DualEncoder
    loss: nn.Module
    forward_model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any
    cached: dict[str, dict[str, Any]]
    train_pairs: TrainPairs
    sampler: EpochSampler
    train_loader: DataLoader
    crop_seconds: float | None
    rank: int = 0
    world_size: int = 1


class ForwardBoth(nn.Module):
    """The forward pass DDP wraps: both towers at once, so gradient hooks see every parameter."""

    def __init__(self, model: DualEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor, captions: list[str],
                audio_features: torch.Tensor | None = None,
                text_features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if audio_features is None:
            audio_features = self.model.audio_features(waveforms, lengths)
        if text_features is None:
            text_features = self.model.text_features(captions)
        return self.model.project_audio(audio_features), self.model.project_text(text_features)


def build_model(components: Components, settings: TrainSettings, device: torch.device,
                init_state: dict[str, torch.Tensor] | None = None, *, audio_name: str | None = None,
                text_name: str | None = None) -> DualEncoder:
    """The dual encoder on ``device``, optionally starting from ``--init`` weights.

    The names are the registry names the first-output checks use in their messages.
    """
    model = DualEncoder(components.audio_encoder, components.text_encoder, settings.proj_dim,
                        audio_name=audio_name, text_name=text_name)
    if init_state is not None:
        load_model_state(model, init_state, "--init checkpoint")
    return model.to(device)


def wrap_for_ddp(model: DualEncoder, device: torch.device, world_size: int) -> nn.Module:
    """The module the training step calls: DDP-wrapped when several processes train."""
    if world_size > 1 and device.type == "cuda":
        # Batch-norm statistics over the global batch, as a single process would compute them
        # (SyncBatchNorm needs CUDA; on CPU/gloo each rank normalises its own share).
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    forward: nn.Module = ForwardBoth(model)
    if world_size > 1 and any(p.requires_grad for p in model.parameters()):
        device_ids = [device.index] if device.type == "cuda" else None
        forward = nn.parallel.DistributedDataParallel(forward, device_ids=device_ids)
    return forward


def build_optimizer(model: DualEncoder, loss: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW with one learning rate for pretrained encoders and one for new layers (bench.model.dual_encoder)."""
    groups = parameter_groups(model, loss, settings.lr, settings.head_lr, settings.weight_decay)
    return torch.optim.AdamW(groups, betas=(0.9, 0.999))


def frozen_features(model: DualEncoder, cfg: RunConfig, splits: dict[str, SplitData], device: torch.device,
                    loader: AudioLoader, autocast: Callable[[], Any]) -> dict[str, dict[str, Any]]:
    """Encoder outputs of frozen encoders for every split, from the cache or computed once."""
    cached: dict[str, dict[str, Any]] = {name: {} for name in splits}
    if not cfg.train.embedding_cache or not (is_frozen(model.audio_encoder) or is_frozen(model.text_encoder)):
        return cached
    from bench.evaluation.embedding_cache import EmbeddingCache
    from bench.evaluation.embedding_cache import frozen_features as compute

    cache = EmbeddingCache()
    cached = compute(
        model, splits, audio_spec=cfg.audio_encoder, text_spec=cfg.text_encoder,
        device=device, batch_size=cfg.train.eval_batch_size, num_workers=cfg.train.num_workers,
        loader=loader, autocast=autocast, cache=cache,
    )
    log.info("embedding cache: %d hit(s), %d computed, %d damaged and rebuilt (%s)", cache.hits, cache.misses,
             cache.damaged, cache.root)
    return cached


def build_train_loader(cfg: RunConfig, model: DualEncoder, train: SplitData, loader: AudioLoader,
                       cached_train: dict[str, Any], device: torch.device, rank: int, world_size: int
                       ) -> tuple[TrainPairs, EpochSampler, DataLoader, float | None]:
    """Pairs, the epoch sampler and the DataLoader of the training split, and its crop length."""
    settings = cfg.train
    encoder = model.audio_encoder
    # A frozen audio encoder trains on the evaluation view, cached or not (bench.evaluation.embedding_cache).
    crop_seconds = None if is_frozen(encoder) else float(getattr(encoder, "crop_seconds", 10.0))
    pairs = TrainPairs(train, int(encoder.sample_rate), crop_seconds, cfg.seed, loader,
                       max_seconds=getattr(encoder, "max_seconds", 30.0), load_audio=cached_train.get("audio") is None)
    sampler = EpochSampler(train, cfg.seed, settings.batch_size, settings.captions_per_audio,
                           rank=rank, world_size=world_size)
    if len(sampler) < 2:
        raise ConfigError("the training split has fewer than 2 pairs per process; a contrastive batch needs more")
    data = DataLoader(
        pairs,
        batch_size=settings.batch_size,
        sampler=sampler,
        num_workers=settings.num_workers,
        collate_fn=collate_pairs,
        worker_init_fn=worker_init,
        pin_memory=device.type == "cuda",
        drop_last=False,  # the sampler already yields whole global batches (EpochSampler)
    )
    return pairs, sampler, data, crop_seconds


def build_training(cfg: RunConfig, components: Components, splits: dict[str, SplitData], *,
                   teachers: Any = None, init_state: dict[str, torch.Tensor] | None = None,
                   audio_loader: AudioLoader | None = None) -> TrainingParts:
    """Every part of a training run, in the order that fails fastest."""
    if getattr(components.loss, "requires_teachers", False) and teachers is None:
        raise ConfigError(
            f"loss {cfg.loss.name!r} needs stage-1 teachers: pass --teachers RUN_ID[,RUN_ID] or run it through "
            "`bench run --loss distill`, which trains stage 1 first"
        )
    rank, world_size = dist.rank(), dist.world_size()
    device = select_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    amp = amp_dtype(cfg.train.amp, device)
    autocast = autocast_factory(device, amp)
    if audio_loader is None:
        from bench.data.audio_cache import AudioCache

        audio_loader = AudioLoader(AudioCache() if cfg.train.audio_cache else None,
                                   on_error=getattr(components.dataset, "on_error", "raise"))
    model = build_model(components, cfg.train, device, init_state, audio_name=cfg.audio_encoder.name,
                        text_name=cfg.text_encoder.name)
    loss = components.loss.to(device)
    forward_model = wrap_for_ddp(model, device, world_size)
    optimizer = build_optimizer(model, loss, cfg.train)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    cached = frozen_features(model, cfg, splits, device, audio_loader, autocast)
    pairs, sampler, train_loader, crop_seconds = build_train_loader(
        cfg, model, splits["train"], audio_loader, cached["train"], device, rank, world_size)
    return TrainingParts(device=device, amp=amp, autocast=autocast, loader=audio_loader, model=model, loss=loss,
                         forward_model=forward_model, optimizer=optimizer, scaler=scaler, cached=cached,
                         train_pairs=pairs, sampler=sampler, train_loader=train_loader, crop_seconds=crop_seconds,
                         rank=rank, world_size=world_size)


def cached_rows(cached_train: dict[str, Any], modality: str, index: torch.Tensor,
                device: torch.device) -> torch.Tensor | None:
    """Rows of a frozen tower's cached outputs for a batch, or None when that tower runs live."""
    array = cached_train.get(modality)
    if array is None:
        return None
    return torch.from_numpy(np.asarray(array[index.cpu().numpy()])).to(device, non_blocking=True)
