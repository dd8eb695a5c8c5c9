"""Training one run: the loop, checkpoints, resume, validation and the final test.

Determinism: all randomness of an epoch is reseeded from (seed, epoch) when the epoch starts, and
data order and crops are pure functions of (seed, epoch, index). A run killed at any point
resumes from its last epoch checkpoint and replays the interrupted epoch exactly, so its final
metrics equal those of an uninterrupted run on the CPU.

The parts a trainer wires together are built in :mod:`bench.training.setup`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from bench.contracts import check_loss_value
from bench.core import interrupts
from bench.core.config import RunConfig, config_to_json
from bench.core.progress import progress
from bench.data.loading import AudioLoader, SplitData
from bench.evaluation.evaluate import TEST_EMBEDDINGS, embed_split, save_embeddings, score_split
from bench.model import distributed as dist
from bench.model.checkpoints import (
    CHECKPOINT_VERSION,
    atomic_torch_save,
    load_checkpoint,
    load_model_state,
    trainable_state,
)
from bench.model.devices import amp_dtype, autocast_factory, describe_device, seed_everything, select_device
from bench.training.setup import Components, TrainingParts, build_training, cached_rows

# Re-exported: callers of the trainer find the device helpers and Components here too.
__all__ = ["Trainer", "Components", "TrainingParts", "lr_factor", "amp_dtype", "autocast_factory",
           "describe_device", "seed_everything", "select_device"]

log = logging.getLogger("bench")


def lr_factor(step: int, *, warmup_steps: int, decay_steps: int, base_lr: float, min_lr: float) -> float:
    """Learning rate at ``step``: linear warm-up to ``base_lr``, cosine to ``min_lr`` at ``decay_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, decay_steps - warmup_steps)
    progress_ = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress_))


class Trainer:
    """Trains and tests one :class:`RunConfig` in ``run_dir``."""

    def __init__(
        self,
        cfg: RunConfig,
        parts: TrainingParts,
        splits: dict[str, SplitData],
        run_dir: Path,
        *,
        teachers: Any = None,
        lifecycle: Any = None,
    ) -> None:
        self.cfg = cfg
        self.settings = cfg.train
        self.splits = splits
        self.run_dir = Path(run_dir)
        self.teachers = teachers
        # Epoch-end hooks (bench.runs.lifecycle); the runner passes them on the main process only.
        self.lifecycle = lifecycle
        self.parts = parts
        self._loss_checked = False
        self.rank, self.world_size = parts.rank, parts.world_size
        self.device, self.amp, self.autocast = parts.device, parts.amp, parts.autocast
        self.loader = parts.loader
        self.model, self.loss, self.forward_model = parts.model, parts.loss, parts.forward_model
        self.optimizer, self.scaler = parts.optimizer, parts.scaler
        self.cached = parts.cached
        self.train_pairs, self.sampler, self.train_loader = parts.train_pairs, parts.sampler, parts.train_loader
        self.crop_seconds = parts.crop_seconds
        self.steps_per_epoch = len(self.train_loader)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "score": -1.0}
        self.start_epoch = 0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0

    @classmethod
    def build(cls, cfg: RunConfig, components: Components, splits: dict[str, SplitData], run_dir: Path, *,
              teachers: Any = None, init_state: dict[str, torch.Tensor] | None = None,
              audio_loader: AudioLoader | None = None, lifecycle: Any = None) -> Trainer:
        """Build the parts (:func:`bench.training.setup.build_training`) and wire them."""
        parts = build_training(cfg, components, splits, teachers=teachers, init_state=init_state,
                               audio_loader=audio_loader)
        return cls(cfg, parts, splits, run_dir, teachers=teachers, lifecycle=lifecycle)

    def _cached_rows(self, modality: str, index: torch.Tensor) -> torch.Tensor | None:
        return cached_rows(self.cached["train"], modality, index, self.device)
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
            interrupts.check()  # a SIGINT/SIGTERM whose exception a finalizer swallowed still stops here
            self.set_lr(epoch * self.steps_per_epoch + step_in_epoch)
            batch = batch.to(self.device, non_blocking=True)
            if self.teachers is not None:
                batch.teacher_audio, batch.teacher_text = self.teachers.lookup(batch.pair_index, self.device)
            audio_cached = self._cached_rows("audio", batch.item_index)
            text_cached = self._cached_rows("text", batch.pair_index)
            with self.autocast():
                audio, text = self.forward_model(batch.waveforms, batch.lengths, batch.captions,
                                                 audio_cached, text_cached)
            audio, text = audio.float(), text.float()
            if self.world_size > 1:
                audio, text, batch = dist.gather_batch_for_loss(audio, text, batch)
            loss = self.loss(audio, text, batch)
            if not self._loss_checked:  # the plugin contract, once: a finite scalar tensor
                check_loss_value(f"loss {self.cfg.loss.name!r}", loss)
                self._loss_checked = True
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
            interrupts.check()
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
            if self.lifecycle is not None:
                self.lifecycle.epoch_end(
                    run_dir=self.run_dir, epoch=epoch + 1, epochs=self.settings.epochs, train_loss=train_loss,
                    lr=entry["lr"], val=val,
                    timings={"train_s": trained - started, "eval_s": evaluated - trained,
                             "epoch_s": evaluated - started},
                    best=self.best["epoch"] == epoch + 1,
                )
            dist.barrier()
        started = time.perf_counter()
        best = load_checkpoint(self.best_path)
        load_model_state(self.model, best["model"], str(self.best_path))
        test, audio, text = self.evaluate("test")
        interrupts.check()
        self.eval_seconds += time.perf_counter() - started
        if dist.is_main_process():
            save_embeddings(self.run_dir / TEST_EMBEDDINGS, audio, text, self.splits["test"])
        return {
            "metrics": test,
            "best_val": {"epoch": self.best["epoch"], **self.best["val"]},
            "history": self.history,
            "timings": {"train_s": self.train_seconds, "eval_s": self.eval_seconds},
        }
