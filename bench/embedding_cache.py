"""On-disk cache of frozen encoders' outputs.

A frozen encoder is a fixed function, so its output for a caption or a recording only has to
be computed once. Entries are keyed by the encoder's name and options, a fingerprint of its
weights, the split's content fingerprint and the audio view (the crop/window policy). Each entry
is one fp32 ``.npy`` file per (key, split, modality), written to a temp file and renamed, so an
interrupted or concurrent run never sees half an entry; two runs that compute the same entry at
once both write identical bytes and the last rename wins.

Crops: random training crops and caching conflict. With a frozen audio encoder bench always
trains on the evaluation view (the whole clip up to ``max_seconds``, cut into the encoder's own
windows), cached or not, so that caching never changes what is computed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from bench.atomic import atomic_save_npy

CACHE_VERSION = 1


def default_cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "bench") / "embeddings"


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
        self.root = Path(root) if root is not None else default_cache_root()
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str, compute: Callable[[], np.ndarray], write: bool = True) -> np.ndarray:
        path = self.path(key)
        if path.is_file():
            try:
                array = np.load(path, mmap_mode="r")
                self.hits += 1
                return array
            except (ValueError, OSError):
                pass  # unreadable entry (e.g. a foreign file): recompute and replace it
        self.misses += 1
        array = np.ascontiguousarray(compute(), dtype=np.float32)
        if write:
            atomic_save_npy(path, array)
        return array
