"""On-disk cache of frozen encoders' outputs.

A frozen encoder is a fixed function, so its output for a caption or a recording only has to
be computed once. Entries are keyed by the encoder's name and options, a fingerprint of its
weights and of the files it was loaded from (tokenizer, config), the split's content fingerprint,
for audio the size and mtime of every file, and the audio view (the crop/window policy); the
whole key is written out in docs/caches.md. Each entry
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


# Weight files are hashed from the loaded module (weights_fingerprint), not read a second time.
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf"})


def files_fingerprint(folder: str | Path) -> str:
    """Hash of the name and bytes of every file directly in ``folder`` except weight files.

    ``from_pretrained`` reads a model's configuration, tokenizer and processor files from one
    folder (a local directory or a hub snapshot); each of them can change what the model
    computes (``model_max_length`` in ``tokenizer_config.json``, a vocabulary, the feature
    extractor's settings), so an edit to any of them must change a cache key. Hidden files
    (``.gitattributes``) are skipped; an extra file (a README) costs one needless miss.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() in WEIGHT_SUFFIXES:
            continue
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def weights_fingerprint(module: nn.Module) -> str:
    """Hash of every parameter and buffer, and of the files the module was loaded from.

    The files are the ``source_fingerprint`` strings (:func:`files_fingerprint`) that a module or
    any of its submodules declares, e.g. a text encoder's tokenizer files: what makes two frozen
    encoders the same function.
    """
    digest = hashlib.sha256()
    for sub in module.modules():
        declared = getattr(sub, "source_fingerprint", None)
        if isinstance(declared, str) and declared:
            digest.update(f"source:{declared}\0".encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(str(tensor.dtype).encode())
        data = tensor.detach().cpu().contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()[:20]


def audio_files_signature(items: Any) -> str:
    """Hash of each item's audio path, size and modification time (ns).

    A split's fingerprint names its files and captions, not their bytes: an audio file edited in
    place must still change the key of an audio embedding (as it changes the validation
    manifest's key). Reading every file again would cost a decode; ``stat`` costs microseconds.
    """
    import os

    digest = hashlib.sha256()
    for item in items:
        path = os.path.abspath(str(getattr(item, "audio_path", "")))
        try:
            st = os.stat(path)
            signature = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            signature = "missing"
        digest.update(f"{path}\x1e{signature}\x1d".encode("utf-8", "surrogatepass"))
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
            content = split.fingerprint() + (f":{audio_files_signature(split.items)}" if modality == "audio" else "")
            key = entry_key(encoder=spec.name, options=spec.options, weights=weights, split=content, view=view)

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
