"""The teacher store of ensemble distillation.

Stage 2 of "Estimated Audio-Caption Correspondences Improve Language-Based Audio Retrieval"
(Primus, Schmid and Widmer, arXiv:2408.11641) trains on the audio-caption correspondences that
an ensemble of stage-1 models estimates. For each stage-1 model, the projected audio embedding of
every training recording and the projected caption embedding of every training caption are
computed once and kept on disk as fp16 arrays in an :class:`bench.core.array_store.ArrayStore`
(``audio.npy``, ``text.npy``), memory-mapped when read. They are keyed by position in the split (item
index for audio, pair index for captions), never by caption text: Clotho has identical captions
for different recordings. The batch target matrix is built from the rows of one batch, so no
N x N matrix ever exists and the store scales to WavCaps (400k items x 1024 dims x 2 bytes =
0.8 GB per teacher and modality, on disk, not in RAM).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.array_store import ArrayStore
from bench.core.atomic import atomic_write_text
from bench.data.loading import SplitData
from bench.errors import ConfigError

STORE_VERSION = 1


class TeacherEmbeddings:
    """One teacher's stored embeddings of one training split (memory-mapped fp16)."""

    def __init__(self, directory: Path, split: SplitData) -> None:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("fingerprint") != split.fingerprint():
            raise ConfigError(f"{directory}: teacher store belongs to another training split; delete it to rebuild")
        self.directory = directory
        store = ArrayStore(directory, fanout=False)
        audio, text = store.get("audio"), store.get("text")
        if audio is None or text is None:
            raise ConfigError(f"{directory}: teacher store is incomplete or damaged; delete it to rebuild")
        self.audio, self.text = audio, text
        self.audio_of_caption = split.audio_of_caption

    def rows(self, pair_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.audio[self.audio_of_caption[pair_index]], self.text[pair_index]


class TeacherEnsemble:
    """M teachers; ``lookup(pair_index)`` gives ``[M, B, D]`` audio and caption embeddings."""

    def __init__(self, members: list[TeacherEmbeddings], run_ids: list[str]) -> None:
        if not members:
            raise ConfigError("distillation needs at least one teacher")
        self.members = members
        self.run_ids = run_ids

    def __len__(self) -> int:
        return len(self.members)

    def lookup(self, pair_index: torch.Tensor, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        index = pair_index.detach().cpu().numpy()
        audio, text = zip(*(member.rows(index) for member in self.members))
        to_tensor = lambda rows: torch.from_numpy(np.stack(rows).astype(np.float32)).to(device)  # noqa: E731
        return to_tensor(audio), to_tensor(text)


def store_directory(teacher_run_dir: Path, split: SplitData) -> Path:
    return Path(teacher_run_dir) / "teacher_store" / split.fingerprint()


def store_inputs(best_path: Path, split: SplitData) -> dict[str, Any]:
    """What a store's embeddings depend on beyond the split's ids and captions (its directory name):
    the teacher checkpoint's size and mtime and every training file's (an edit in place is new data)."""
    from bench.evaluation.embedding_cache import audio_files_signature

    try:
        st = Path(best_path).stat()
        checkpoint = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        checkpoint = "missing"
    return {"checkpoint": checkpoint, "audio": audio_files_signature(split.items)}


def store_is_current(directory: Path, inputs: dict[str, Any], fingerprint: str | None = None) -> bool:
    """A finished store (meta.json, written last) built from exactly ``inputs``; otherwise it is rebuilt.

    A store of another split (``fingerprint`` differs: copied or linked under this split's name)
    is not rebuilt over: :class:`TeacherEmbeddings` refuses it with its own message.
    """
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        return True
    if meta.get("version") == STORE_VERSION and all(meta.get(k) == v for k, v in inputs.items()):
        return True
    import logging

    logging.getLogger("bench").info("teacher store %s was built from another checkpoint or other audio; "
                                    "rebuilding it", directory)
    return False


def build_store(teacher_run_dir: Path, split: SplitData, *, device: str, batch_size: int, num_workers: int,
                registry: Any) -> Path:
    """Embed ``split`` with the teacher's best checkpoint, once; later calls reuse the files.

    Only one process builds a store (the distillation runner's rank 0), so nothing here is collective.
    """
    from bench.core.config import config_from_json
    from bench.data.loading import AudioLoader
    from bench.evaluation.embedding_cache import EmbeddingCache, frozen_features
    from bench.evaluation.evaluate import embed_split
    from bench.model.dual_encoder import DualEncoder
    from bench.training.trainer import load_checkpoint, load_model_state, select_device

    directory = store_directory(teacher_run_dir, split)
    config_path = Path(teacher_run_dir) / "config.json"
    best_path = Path(teacher_run_dir) / "best.pt"
    inputs = store_inputs(best_path, split)
    if store_is_current(directory, inputs, split.fingerprint()):
        return directory
    if not config_path.is_file() or not best_path.is_file():
        raise ConfigError(
            f"teacher run directory {teacher_run_dir} has no config.json/best.pt; pass the id of a finished run "
            "that lives under --runs-dir"
        )
    cfg = config_from_json(json.loads(config_path.read_text())["config"])
    model = DualEncoder(
        registry.build("audio_encoder", cfg.audio_encoder.name, cfg.audio_encoder.options),
        registry.build("text_encoder", cfg.text_encoder.name, cfg.text_encoder.options),
        cfg.train.proj_dim,
    )
    load_model_state(model, load_checkpoint(best_path)["model"], str(best_path))
    torch_device = select_device(device)
    model.to(torch_device)
    loader = AudioLoader()
    # A teacher's frozen towers (e.g. MiniLM) are read from the embedding cache its own run filled.
    cached = frozen_features(model, {"train": split}, audio_spec=cfg.audio_encoder, text_spec=cfg.text_encoder,
                             device=torch_device, batch_size=batch_size, num_workers=num_workers, loader=loader,
                             autocast=contextlib.nullcontext, cache=EmbeddingCache(), collective=False)["train"]
    audio, text = embed_split(model, split, device=torch_device, batch_size=batch_size, num_workers=num_workers,
                              loader=loader, desc=f"teacher {Path(teacher_run_dir).name[:24]}", cached=cached)
    store = ArrayStore(directory, fanout=False)
    store.put("audio", audio.numpy().astype(np.float16))
    store.put("text", text.numpy().astype(np.float16))
    meta = {"version": STORE_VERSION, "fingerprint": split.fingerprint(), "n_audios": split.n_audios,
            "n_captions": split.n_captions, "dim": int(audio.shape[1]), "teacher": Path(teacher_run_dir).name,
            **inputs}
    atomic_write_text(directory / "meta.json", json.dumps(meta, indent=2))  # last: no meta.json = incomplete
    return directory


def load_ensemble(teacher_run_dirs: list[Path], split: SplitData, **build_kwargs: Any) -> TeacherEnsemble:
    members = [TeacherEmbeddings(build_store(d, split, **build_kwargs), split) for d in teacher_run_dirs]
    return TeacherEnsemble(members, [Path(d).name for d in teacher_run_dirs])
