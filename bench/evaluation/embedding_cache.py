"""On-disk cache of frozen encoders' outputs.

A frozen encoder is a fixed function, so its output for a caption or a recording only has to
be computed once. Entries are keyed by the encoder's name and options, a fingerprint of its
weights, the split's content fingerprint and the audio view (the crop/window policy). Each entry
is one fp32 array per (key, split, modality) in the shared :class:`bench.core.array_store.ArrayStore`
(atomic writes), so an interrupted or concurrent run never sees half an entry; two runs that
compute the same entry at once both write identical bytes and the last rename wins.

Crops: random training crops and caching conflict. With a frozen audio encoder bench always
trains on the evaluation view (the whole clip up to ``max_seconds``, cut into the encoder's own
windows), cached or not, so that caching never changes what is computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.core.array_store import ArrayStore
from bench.core.cache_dir import EMBEDDINGS, cache_path

CACHE_VERSION = 1


def weights_fingerprint(module: nn.Module) -> str:
    """Hash of every parameter and buffer: what makes two frozen encoders the same function."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(str(tensor.dtype).encode())
        data = tensor.detach().cpu().contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()[:20]


def entry_key(*, encoder: str, options: dict[str, Any], weights: str, split: str, view: str) -> str:
    payload = json.dumps(
        {"v": CACHE_VERSION, "encoder": encoder, "options": options, "weights": weights, "split": split, "view": view},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


class EmbeddingCache:
    """``get(key, compute)`` returns the cached array, computing and storing it on a miss."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_path(EMBEDDINGS)
        self.store = ArrayStore(self.root)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.store.path(key)

    @property
    def damaged(self) -> int:
        """Entries found damaged (checksum, truncation) and rebuilt; each is named in the log."""
        return len(self.store.damaged)

    def get(self, key: str, compute: Callable[[], np.ndarray], write: bool = True) -> np.ndarray:
        array = self.store.get(key)  # memory-mapped
        if array is not None:
            self.hits += 1
            return array
        # Absent, or damaged (the store checked its checksum and logged it): recompute and replace it.
        self.misses += 1
        array = np.ascontiguousarray(compute(), dtype=np.float32)
        if write:
            self.store.put(key, array)
        return array


def frozen_features(model: Any, splits: dict[str, Any], *, audio_spec: Any, text_spec: Any, device: torch.device,
                    batch_size: int, num_workers: int, loader: Any, autocast: Any,
                    cache: EmbeddingCache, collective: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {"audio"|"text": encoder outputs}}`` of the frozen towers of a dual encoder.

    Served from ``cache`` or computed once (whole clips up to ``max_seconds``, every caption).
    ``audio_spec`` and ``text_spec`` are the towers' ComponentSpecs (name and options, part of the
    key). Under DDP (``collective``, every rank calling) rank 0 computes and writes and the other
    ranks read after a barrier; ``collective=False`` is for code that only one process runs.
    """
    from bench.evaluation.evaluate import audio_features, text_features
    from bench.model import distributed as dist
    from bench.model.dual_encoder import is_frozen

    towers = []
    if is_frozen(model.audio_encoder):
        max_seconds = getattr(model.audio_encoder, "max_seconds", 30.0)
        towers.append(("audio", audio_spec, model.audio_encoder, f"eval:max_seconds={max_seconds}"))
    if is_frozen(model.text_encoder):
        towers.append(("text", text_spec, model.text_encoder, "captions"))
    out: dict[str, dict[str, np.ndarray]] = {name: {} for name in splits}
    for modality, spec, encoder, view in towers:
        weights = weights_fingerprint(encoder)
        for name, split in splits.items():
            key = entry_key(encoder=spec.name, options=spec.options, weights=weights, split=split.fingerprint(),
                            view=view)

            def compute(split: Any = split, modality: str = modality, name: str = name) -> np.ndarray:
                if modality == "audio":
                    return audio_features(model, split, device=device, batch_size=batch_size, num_workers=num_workers,
                                          loader=loader, autocast=autocast, desc=f"cache {name}").numpy()
                return text_features(model, split.captions, batch_size=batch_size, autocast=autocast,
                                     desc=f"cache {name}").numpy()

            if not collective:
                out[name][modality] = cache.get(key, compute)
                continue
            if dist.is_main_process():
                out[name][modality] = cache.get(key, compute)
            dist.barrier()
            if not dist.is_main_process():
                out[name][modality] = cache.get(key, compute, write=False)
    return out
