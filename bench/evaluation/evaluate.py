"""Embedding a split with a dual encoder and scoring it (both directions)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from bench.core.atomic import atomic_path
from bench.core.progress import progress
from bench.data.loading import AudioLoader, EvalAudio, SplitData, collate_audio
from bench.data.workers import DataLoader, worker_init
from bench.model.dual_encoder import DualEncoder


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Any:
    """Evaluate ``module`` (dropout off, batch-norm running statistics), then restore its mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@torch.no_grad()
def audio_features(model: DualEncoder, split: SplitData, *, device: torch.device, batch_size: int, num_workers: int,
                   loader: AudioLoader, autocast: Any = contextlib.nullcontext, desc: str = "embed",
                   indices: list[int] | None = None) -> torch.Tensor:
    """The audio encoder's outputs (before projection) for whole clips, in item order, fp32 on the CPU."""
    sample_rate = int(model.audio_encoder.sample_rate)
    max_seconds = getattr(model.audio_encoder, "max_seconds", 30.0)
    dataset = EvalAudio(split, sample_rate, max_seconds, loader)
    if indices is not None:
        dataset = Subset(dataset, indices)
    batches = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_audio,
                         worker_init_fn=worker_init, pin_memory=device.type == "cuda")
    parts = []
    with eval_mode(model.audio_encoder):
        for waveforms, lengths, _ in progress(batches, desc=f"{desc} audio", unit="batch"):
            with autocast():
                out = model.audio_encoder(waveforms.to(device, non_blocking=True), lengths.to(device))
                parts.append(out.float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, model.audio_encoder.embed_dim)


@torch.no_grad()
def text_features(model: DualEncoder, captions: list[str], *, batch_size: int,
                  autocast: Any = contextlib.nullcontext, desc: str = "embed") -> torch.Tensor:
    """The text encoder's outputs (before projection), fp32 on the CPU."""
    parts = []
    with eval_mode(model.text_encoder):
        for start in progress(range(0, len(captions), batch_size), desc=f"{desc} text", unit="batch"):
            with autocast():
                parts.append(model.text_encoder(captions[start : start + batch_size]).float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, model.text_encoder.embed_dim)


@torch.no_grad()
def _project(project: Any, features: Any, device: torch.device) -> torch.Tensor:
    """Apply a projection in chunks; ``features`` may be a tensor or a (memory-mapped) array."""
    parts = []
    for start in range(0, len(features), 4096):
        chunk = features[start : start + 4096]
        chunk = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.array(chunk, dtype=np.float32))
        parts.append(project(chunk.to(device)).float().cpu())
    return torch.cat(parts)


@torch.no_grad()
def embed_split(
    model: DualEncoder,
    split: SplitData,
    *,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    loader: AudioLoader,
    autocast: Any = contextlib.nullcontext,
    desc: str = "embed",
    rank: int = 0,
    world_size: int = 1,
    cached: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected, normalised embeddings ``(audio [n_audios, D], text [n_captions, D])``, fp32 on the CPU.

    ``cached`` may hold precomputed encoder outputs (``"audio"``, ``"text"`` arrays) of frozen
    encoders; only the projections are applied to them. Under DDP every rank encodes a strided
    share and the shares are gathered, so every rank returns the full matrices.
    """
    cached = cached or {}
    with eval_mode(model):
        if cached.get("audio") is not None:
            audio = _project(model.project_audio, cached["audio"], device)
        else:
            share = list(range(rank, split.n_audios, world_size))
            features = audio_features(model, split, device=device, batch_size=batch_size, num_workers=num_workers,
                                      loader=loader, autocast=autocast, desc=desc, indices=share)
            audio = _gather(_project(model.project_audio, features, device), world_size, split.n_audios, device)
        if cached.get("text") is not None:
            text = _project(model.project_text, cached["text"], device)
        else:
            share_captions = split.captions[rank::world_size]
            features = text_features(model, share_captions, batch_size=batch_size, autocast=autocast, desc=desc)
            text = _gather(_project(model.project_text, features, device), world_size, split.n_captions, device)
    return audio, text


def _gather(local: torch.Tensor, world_size: int, total: int, device: torch.device) -> torch.Tensor:
    """Rank r holds rows r, r+W, r+2W, ...: gather the shares and interleave them back into order."""
    if world_size == 1:
        return local
    from bench.model.distributed import all_gather_nograd

    gathered = all_gather_nograd(local.to(device)).cpu()
    sizes = [len(range(r, total, world_size)) for r in range(world_size)]
    out = torch.empty(total, local.shape[1], dtype=local.dtype)
    offset = 0
    for r, size in enumerate(sizes):
        out[r::world_size] = gathered[offset : offset + size]
        offset += size
    return out


def score_split(audio: torch.Tensor, text: torch.Tensor, split: SplitData, chunk: int) -> dict[str, dict[str, float]]:
    """``{"t2a": {...}, "a2t": {...}}`` from embeddings, in bounded memory."""
    from bench.evaluation.metrics import retrieval_metrics

    return retrieval_metrics(audio, text, split.audio_of_caption, chunk_size=chunk)


TEST_EMBEDDINGS = "test_embeddings.npz"
"""The file in a run directory that holds its test embeddings (:func:`save_embeddings`)."""


def embedding_artifacts(run_dir: Path) -> dict[str, str]:
    """The ``artifacts`` entry of a result whose run directory holds its test embeddings."""
    return {"run_dir": str(run_dir), "test_embeddings": str(Path(run_dir) / TEST_EMBEDDINGS)}


def save_embeddings(path: Path, audio: torch.Tensor, text: torch.Tensor, split: SplitData) -> None:
    """Test embeddings in a run directory, so that runs can be fused, verified and inspected later
    without re-encoding (caption texts included, for ``bench inspect``)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            audio=audio.numpy(),
            text=text.numpy(),
            audio_of_caption=split.audio_of_caption,
            audio_ids=np.asarray([str(item.audio_id) for item in split.items]),
            fingerprint=np.asarray(split.fingerprint()),
            captions=np.asarray([str(c) for c in split.captions]),  # for `bench inspect` (worst queries)
        )
