"""Embedding a split with a trained dual encoder and scoring it (both directions)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.data import AudioLoader, EvalAudio, SplitData, collate_audio, worker_init
from bench.model import DualEncoder
from bench.progress import progress


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected, normalised embeddings ``(audio [n_audios, D], text [n_captions, D])`` on the CPU, fp32.

    Under DDP every rank embeds a strided share and the shares are gathered, so all ranks return
    the full matrices.
    """
    was_training = model.training
    model.eval()
    sample_rate = int(model.audio_encoder.sample_rate)
    max_seconds = getattr(model.audio_encoder, "max_seconds", 30.0)
    audio_set = EvalAudio(split, sample_rate, max_seconds, loader)
    indices = list(range(rank, len(audio_set), world_size))
    audio_loader = DataLoader(
        torch.utils.data.Subset(audio_set, indices),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_audio,
        worker_init_fn=worker_init,
        pin_memory=device.type == "cuda",
    )
    audio_parts, audio_index = [], []
    for waveforms, lengths, item_index in progress(audio_loader, desc=f"{desc} audio", unit="batch"):
        with autocast():
            emb = model.encode_audio(waveforms.to(device, non_blocking=True), lengths.to(device))
        audio_parts.append(emb.float().cpu())
        audio_index.append(item_index)
    text_parts = []
    caption_ids = list(range(rank, split.n_captions, world_size))
    for start in progress(range(0, len(caption_ids), batch_size), desc=f"{desc} text", unit="batch"):
        chunk = [split.captions[i] for i in caption_ids[start : start + batch_size]]
        with autocast():
            text_parts.append(model.encode_text(chunk).float().cpu())
    model.train(was_training)
    audio = torch.cat(audio_parts) if audio_parts else torch.zeros(0, model.audio_proj.out_features)
    text = torch.cat(text_parts) if text_parts else torch.zeros(0, model.text_proj.out_features)
    if world_size > 1:
        from bench.distributed import all_gather_nograd

        audio = _unstride(all_gather_nograd(audio.to(device)), world_size, split.n_audios)
        text = _unstride(all_gather_nograd(text.to(device)), world_size, split.n_captions)
    return audio, text


def _unstride(parts: list[torch.Tensor], world_size: int, total: int) -> torch.Tensor:
    """Rank r holds rows r, r+W, r+2W, ...: interleave the gathered shares back into order."""
    out = torch.empty(total, parts[0].shape[1], dtype=parts[0].dtype)
    for rank, part in enumerate(parts):
        out[rank::world_size] = part.cpu()[: len(range(rank, total, world_size))]
    return out


def score_split(audio: torch.Tensor, text: torch.Tensor, split: SplitData, chunk: int) -> dict[str, dict[str, float]]:
    """``{"t2a": {...}, "a2t": {...}}`` from embeddings, in bounded memory."""
    from bench.metrics import retrieval_metrics

    return retrieval_metrics(audio, text, split.audio_of_caption, chunk_size=chunk)


def save_embeddings(path: Any, audio: torch.Tensor, text: torch.Tensor, split: SplitData) -> None:
    """Test embeddings in a run directory, so that runs can be fused later without re-encoding."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(
            tmp,
            audio=audio.numpy(),
            text=text.numpy(),
            audio_of_caption=split.audio_of_caption,
            audio_ids=np.asarray([str(item.audio_id) for item in split.items]),
            fingerprint=np.asarray(split.fingerprint()),
        )
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
