"""Training one run: the loop, checkpoints, resume, validation and the final test.

Determinism: all randomness of an epoch is reseeded from (seed, epoch) when the epoch starts, and
data order and crops are pure functions of (seed, epoch, index). A run killed at any point
resumes from its last epoch checkpoint and replays the interrupted epoch exactly, so its final
metrics equal those of an uninterrupted run on the CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench import distributed as dist
from bench.atomic import atomic_path
from bench.config import RunConfig, config_to_json
from bench.data import AudioLoader, EpochSampler, SplitData, TrainPairs, collate_pairs, worker_init
from bench.errors import ConfigError
from bench.evaluate import embed_split, save_embeddings, score_split
from bench.model import DualEncoder, is_frozen, parameter_groups
from bench.progress import progress

log = logging.getLogger("bench")
CHECKPOINT_VERSION = 1


# -- devices and precision --------------------------------------------------------------------
def select_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` / ``cuda:N`` must exist."""
    if spec == "auto":
        if dist.is_distributed() and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise ConfigError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU supports it, else fp16; none on the CPU unless asked."""
    if setting == "off":
        return None
    if setting == "bf16":
        return torch.bfloat16
    if setting == "fp16":
        return torch.float16
    if setting != "auto":
        raise ConfigError(f"train.amp={setting!r}: use auto, off, bf16 or fp16")
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_factory(device: torch.device, dtype: torch.dtype | None) -> Callable[[], Any]:
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


# -- schedule and seeding ---------------------------------------------------------------------
def lr_factor(step: int, *, warmup_steps: int, decay_steps: int, base_lr: float, min_lr: float) -> float:
    """Learning rate at ``step``: linear warm-up to ``base_lr``, cosine to ``min_lr`` at ``decay_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, decay_steps - warmup_steps)
    progress_ = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress_))


def seed_everything(seed: int, epoch: int = 0) -> None:
    value = (seed * 1_000_003 + epoch) % (2**31)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


# -- checkpoints ------------------------------------------------------------------------------
def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read checkpoint ({exc}); delete it to start the run again") from None


def trainable_state(model: DualEncoder) -> dict[str, torch.Tensor]:
    """The model's state minus frozen pretrained encoders, which the factory rebuilds identically."""
    skip = [prefix for prefix, enc in (("audio_encoder.", model.audio_encoder), ("text_encoder.", model.text_encoder))
            if is_frozen(enc) and getattr(enc, "pretrained", False)]
    return {k: v for k, v in model.state_dict().items() if not any(k.startswith(p) for p in skip)}


def load_model_state(model: DualEncoder, state: dict[str, torch.Tensor], source: str) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed = set(model.state_dict()) - set(trainable_state(model))
    missing = [k for k in missing if k not in allowed]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ConfigError(f"{source}: checkpoint does not fit this model ({detail}); were the encoders or options changed?")


# -- the run ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Components:
    """The built pieces of a run (the runner builds them, the trainer uses them)."""

    dataset: Any
    audio_encoder: nn.Module
    text_encoder: nn.Module
    loss: nn.Module


class Trainer:
    """Trains and tests one :class:`RunConfig` in ``run_dir``."""

    def __init__(
        self,
        cfg: RunConfig,
        components: Components,
        splits: dict[str, SplitData],
        run_dir: Path,
        *,
        teachers: Any = None,
        init_state: dict[str, torch.Tensor] | None = None,
        audio_loader: AudioLoader | None = None,
    ) -> None:
        self.cfg = cfg
        self.settings = cfg.train
        self.components = components
        self.splits = splits
        self.run_dir = Path(run_dir)
        self.teachers = teachers
        self.rank = dist.rank()
        self.world_size = dist.world_size()
        self.device = select_device(cfg.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.amp = amp_dtype(self.settings.amp, self.device)
        self.autocast = autocast_factory(self.device, self.amp)
        if audio_loader is None:
            from bench.audio_cache import AudioCache

            audio_loader = AudioLoader(AudioCache() if self.settings.audio_cache else None)
        self.loader = audio_loader

        self.model = DualEncoder(components.audio_encoder, components.text_encoder, self.settings.proj_dim)
        if init_state is not None:
            load_model_state(self.model, init_state, "--init checkpoint")
        self.model.to(self.device)
        self.loss = components.loss.to(self.device)
        if getattr(self.loss, "requires_teachers", False) and teachers is None:
            raise ConfigError(
                f"loss {cfg.loss.name!r} needs stage-1 teachers: pass --teachers RUN_ID[,RUN_ID] or run it through "
                "`bench run --loss distill`, which trains stage 1 first"
            )
        if self.world_size > 1 and self.device.type == "cuda":
            # Batch-norm statistics over the global batch, as a single process would compute them
            # (SyncBatchNorm needs CUDA; on CPU/gloo each rank normalises its own share).
            nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.forward_model: nn.Module = _Forward(self.model)
        if self.world_size > 1 and any(p.requires_grad for p in self.model.parameters()):
            self.forward_model = nn.parallel.DistributedDataParallel(
                self.forward_model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, self.loss, self.settings.lr, self.settings.head_lr, self.settings.weight_decay),
            betas=(0.9, 0.999),
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.sample_rate = int(self.model.audio_encoder.sample_rate)
        self.max_seconds = getattr(self.model.audio_encoder, "max_seconds", 30.0)
        self.audio_frozen = is_frozen(self.model.audio_encoder)
        self.text_frozen = is_frozen(self.model.text_encoder)
        # A frozen audio encoder trains on the evaluation view, cached or not (bench.embedding_cache).
        self.crop_seconds = None if self.audio_frozen else float(getattr(self.model.audio_encoder, "crop_seconds", 10.0))
        self.cached: dict[str, dict[str, Any]] = {name: {} for name in splits}
        if self.settings.embedding_cache and (self.audio_frozen or self.text_frozen):
            self.prepare_cache()
        self.train_pairs = TrainPairs(
            splits["train"], self.sample_rate, self.crop_seconds, cfg.seed, self.loader,
            max_seconds=self.max_seconds, load_audio=self.cached["train"].get("audio") is None,
        )
        self.sampler = EpochSampler(
            splits["train"], cfg.seed, self.settings.batch_size, self.settings.captions_per_audio,
            rank=self.rank, world_size=self.world_size,
        )
        if len(self.sampler) < 2:
            raise ConfigError("the training split has fewer than 2 pairs per process; a contrastive batch needs more")
        self.train_loader = DataLoader(
            self.train_pairs,
            batch_size=self.settings.batch_size,
            sampler=self.sampler,
            num_workers=self.settings.num_workers,
            collate_fn=collate_pairs,
            worker_init_fn=worker_init,
            pin_memory=self.device.type == "cuda",
            drop_last=False,  # the sampler already yields whole global batches (EpochSampler)
        )
        self.steps_per_epoch = len(self.train_loader)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "score": -1.0}
        self.start_epoch = 0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0

    # -- frozen encoders -----------------------------------------------------------------------
    def prepare_cache(self) -> None:
        """Encoder outputs of frozen encoders for every split, from the cache or computed once."""
        from bench.embedding_cache import EmbeddingCache, frozen_features

        cache = EmbeddingCache()
        self.cached = frozen_features(
            self.model, self.splits, audio_spec=self.cfg.audio_encoder, text_spec=self.cfg.text_encoder,
            device=self.device, batch_size=self.settings.eval_batch_size, num_workers=self.settings.num_workers,
            loader=self.loader, autocast=self.autocast, cache=cache,
        )
        log.info("embedding cache: %d hit(s), %d computed (%s)", cache.hits, cache.misses, cache.root)

    def _cached_rows(self, modality: str, index: torch.Tensor) -> torch.Tensor | None:
        array = self.cached["train"].get(modality)
        if array is None:
            return None
        return torch.from_numpy(np.asarray(array[index.cpu().numpy()])).to(self.device, non_blocking=True)

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    def save_last(self, completed_epochs: int) -> None:
        if not dist.is_main_process():
            return
        atomic_torch_save(
            {
                "version": CHECKPOINT_VERSION,
                "model": trainable_state(self.model),
                "loss": self.loss.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": completed_epochs,
                "best": self.best,
                "history": self.history,
                "train_seconds": self.train_seconds,
                "eval_seconds": self.eval_seconds,
                "config": json.dumps(config_to_json(self.cfg)),
            },
            self.last_path,
        )

    def try_resume(self) -> bool:
        """Continue from ``last.pt`` if the run directory has one."""
        if not self.last_path.is_file():
            return False
        state = load_checkpoint(self.last_path)
        load_model_state(self.model, state["model"], str(self.last_path))
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.best = state["best"]
        self.history = list(state["history"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.eval_seconds = float(state.get("eval_seconds", 0.0))
        log.info("resumed %s after epoch %d", self.run_dir.name, self.start_epoch)
        return True

    # -- loop ----------------------------------------------------------------------------------
    def set_lr(self, step: int) -> None:
        total = self.settings.epochs * self.steps_per_epoch
        decay_epochs = self.settings.decay_epochs or self.settings.epochs
        for group in self.optimizer.param_groups:
            group["lr"] = lr_factor(
                step,
                warmup_steps=int(round(self.settings.warmup_epochs * self.steps_per_epoch)),
                decay_steps=min(total, int(round(decay_epochs * self.steps_per_epoch))),
                base_lr=group["base_lr"],
                min_lr=min(self.settings.min_lr, group["base_lr"]),
            )

    def train_epoch(self, epoch: int) -> float:
        seed_everything(self.cfg.seed, epoch)
        self.sampler.set_epoch(epoch)
        self.train_pairs.epoch = epoch
        self.model.train()
        self.loss.train()
        total, count, pairs = 0.0, 0, 0
        started = time.perf_counter()
        bar = progress(self.train_loader, desc=f"epoch {epoch + 1}/{self.settings.epochs}", unit="batch")
        for step_in_epoch, batch in enumerate(bar):
            self.set_lr(epoch * self.steps_per_epoch + step_in_epoch)
            batch = batch.to(self.device, non_blocking=True)
            if self.teachers is not None:
                batch.teacher_audio, batch.teacher_text = self.teachers.lookup(batch.pair_index, self.device)
            audio_cached = self._cached_rows("audio", batch.item_index)
            text_cached = self._cached_rows("text", batch.pair_index)
            with self.autocast():
                audio, text = self.forward_model(batch.waveforms, batch.lengths, batch.captions, audio_cached, text_cached)
            audio, text = audio.float(), text.float()
            if self.world_size > 1:
                audio, text, batch = dist.gather_batch_for_loss(audio, text, batch)
            loss = self.loss(audio, text, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch + 1}, step {step_in_epoch}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.settings.grad_clip and self.settings.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                params = [p for group in self.optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, self.settings.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += float(loss.detach())
            count += 1
            pairs += len(batch.captions) if self.world_size == 1 else len(batch.captions) // self.world_size
            if hasattr(bar, "set_postfix"):
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(loss=f"{total / count:.4f}", pairs_s=f"{pairs / elapsed:.1f}")
        return total / max(count, 1)

    def evaluate(self, split_name: str) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        split = self.splits[split_name]
        audio, text = embed_split(
            self.model, split,
            device=self.device, batch_size=self.settings.eval_batch_size, num_workers=self.settings.num_workers,
            loader=self.loader, autocast=self.autocast, desc=split_name,
            rank=self.rank, world_size=self.world_size, cached=self.cached.get(split_name),
        )
        return score_split(audio, text, split, self.settings.eval_chunk), audio, text

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs, then test the best checkpoint. Returns metrics and timings."""
        for epoch in range(self.start_epoch, self.settings.epochs):
            started = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            trained = time.perf_counter()
            val, _, _ = self.evaluate("val")
            evaluated = time.perf_counter()
            self.train_seconds += trained - started
            self.eval_seconds += evaluated - trained
            score = val["t2a"]["mAP@10"]
            entry = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val": val,
                "lr": [g["lr"] for g in self.optimizer.param_groups],
                "seconds": evaluated - started,
            }
            self.history.append(entry)
            if score > self.best["score"]:
                self.best = {"epoch": epoch + 1, "score": score, "val": val}
                if dist.is_main_process():
                    atomic_torch_save({"model": trainable_state(self.model), "epoch": epoch + 1}, self.best_path)
            self.save_last(epoch + 1)
            log.info(
                "epoch %d/%d loss %.4f val t2a mAP@10 %.4f R@1 %.4f (%.1fs)%s",
                epoch + 1, self.settings.epochs, train_loss, score, val["t2a"]["R@1"], evaluated - started,
                " best" if self.best["epoch"] == epoch + 1 else "",
            )
            dist.barrier()
        started = time.perf_counter()
        best = load_checkpoint(self.best_path)
        load_model_state(self.model, best["model"], str(self.best_path))
        test, audio, text = self.evaluate("test")
        self.eval_seconds += time.perf_counter() - started
        if dist.is_main_process():
            save_embeddings(self.run_dir / "test_embeddings.npz", audio, text, self.splits["test"])
        return {
            "metrics": test,
            "best_val": {"epoch": self.best["epoch"], **self.best["val"]},
            "history": self.history,
            "timings": {"train_s": self.train_seconds, "eval_s": self.eval_seconds},
        }


class _Forward(nn.Module):
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
