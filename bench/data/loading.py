"""From dataset items to batches: pair lists, samplers, audio loading and collation.

Everything random here is a pure function of (seed, epoch, index), so a run gives the same
batches whatever the number of DataLoader workers, and a resumed epoch replays exactly.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from bench.data.batch import Batch
from bench.data.items import source_captions
from bench.errors import DataError


@dataclass
class SplitData:
    """A dataset split flattened into captions, with integer audio ids."""

    name: str
    items: list[Any]
    captions: list[str]
    audio_of_caption: np.ndarray  # caption index -> item index
    caption_slot: np.ndarray  # caption index -> position within the item's captions

    @classmethod
    def from_items(cls, name: str, items: Sequence[Any]) -> SplitData:
        items = list(items)
        if not items:
            raise DataError(f"the {name} split is empty; check the dataset root and options")
        captions: list[str] = []
        owner: list[int] = []
        slot: list[int] = []
        for index, item in enumerate(items):
            for missing in ("audio_id", "audio_path", "captions"):
                if not hasattr(item, missing):
                    raise DataError(f"{name} item {index} ({type(item).__name__}) has no {missing!r} attribute")
            item_captions = list(item.captions)
            if not item_captions:
                raise DataError(f"{name} item {item.audio_id!r} has no captions")
            for position, caption in enumerate(item_captions):
                captions.append(str(caption))
                owner.append(index)
                slot.append(position)
        return cls(name, items, captions, np.asarray(owner, dtype=np.int64), np.asarray(slot, dtype=np.int64))

    @functools.cached_property
    def source_captions(self) -> list[str]:
        """Each caption as its source file holds it (surrounding spaces kept; see :class:`bench.data.items.Item`)."""
        return [caption for item in self.items for caption in source_captions(item)]

    @property
    def n_audios(self) -> int:
        return len(self.items)

    @property
    def n_captions(self) -> int:
        return len(self.captions)

    def fingerprint(self) -> str:
        """Identity of the split's content: audio ids and captions, in order.

        Computed once per split object (hashing every caption of a large split is not free, and
        caches, stores, results and embeddings all ask for it); a split is not edited after
        :meth:`from_items`, so the cached value stays true.
        """
        return self._fingerprint

    @functools.cached_property
    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(str(item.audio_id).encode())
            digest.update(b"\0")
        for caption, owner in zip(self.captions, self.audio_of_caption):
            digest.update(f"{owner}\0{caption}\0".encode())
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {"n_audios": self.n_audios, "n_captions": self.n_captions, "fingerprint": self.fingerprint()}


def stable_uniform(*keys: int) -> float:
    """A uniform number in [0, 1) that depends only on ``keys``."""
    seq = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys])
    return float(np.random.default_rng(seq).random())


class EpochSampler(Sampler[int]):
    """Shuffled pair indices per epoch, optionally a subset of captions per audio, sharded by rank.

    ``captions_per_audio = k > 0`` draws k captions of each recording per epoch instead of every
    pair; the draw depends on (seed, epoch) only. The permutation is cut to whole global batches
    (``world_size * batch_size`` pairs; the remainder is dropped, as ``drop_last`` would), and rank
    r takes the r-th block of ``batch_size`` of every global batch, so the batch the loss sees after
    gathering is exactly the batch of a single process with ``world_size * batch_size``. A split
    smaller than one global batch is padded by wrapping and split evenly.
    """

    def __init__(self, split: SplitData, seed: int, batch_size: int, captions_per_audio: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        self.split = split
        self.seed = seed
        self.batch_size = batch_size
        self.captions_per_audio = captions_per_audio
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def permutation(self) -> list[int]:
        """This epoch's order of pair indices, before sharding."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.captions_per_audio > 0:
            chosen = []
            starts = np.flatnonzero(np.r_[True, np.diff(self.split.audio_of_caption) != 0])
            ends = np.r_[starts[1:], len(self.split.audio_of_caption)]
            for start, end in zip(starts, ends):
                order = torch.randperm(int(end - start), generator=generator)[: self.captions_per_audio]
                chosen.extend(int(start) + int(i) for i in order)
            pool = torch.tensor(chosen)
            return pool[torch.randperm(len(pool), generator=generator)].tolist()
        return torch.randperm(self.split.n_captions, generator=generator).tolist()

    def _indices(self) -> list[int]:
        perm = self.permutation()
        world, size = self.world_size, self.batch_size
        global_batch = world * size
        if len(perm) >= global_batch:
            steps = len(perm) // global_batch
            return [i for k in range(steps) for i in perm[k * global_batch + self.rank * size:
                                                           k * global_batch + (self.rank + 1) * size]]
        total = -(-len(perm) // world) * world
        perm = perm + perm[: total - len(perm)]
        share = total // world
        return perm[self.rank * share : (self.rank + 1) * share]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


class TrainPairs(Dataset):
    """(audio crop, caption) pairs of a split; the crop offset is a pure function of (seed, epoch, pair).

    ``crop_seconds=None`` gives the evaluation view (the clip from its start up to
    ``max_seconds``); ``load_audio=False`` skips decoding when cached features replace the audio.
    """

    def __init__(self, split: SplitData, sample_rate: int, crop_seconds: float | None, seed: int, loader: Any,
                 max_seconds: float | None = None, load_audio: bool = True) -> None:
        self.split = split
        self.sample_rate = sample_rate
        self.crop_seconds = crop_seconds
        self.max_seconds = max_seconds
        self.seed = seed
        self.loader = loader
        self.load_audio = load_audio
        self.epoch = 0

    def __len__(self) -> int:
        return self.split.n_captions

    def __getitem__(self, pair: int) -> dict[str, Any]:
        item_index = int(self.split.audio_of_caption[pair])
        item = self.split.items[item_index]
        if not self.load_audio:
            audio = np.zeros(1, dtype=np.float32)
        elif self.crop_seconds is None:
            audio = self.loader.load(item.audio_path, self.sample_rate, 0.0, self.max_seconds)
        else:
            duration = self.loader.duration(item.audio_path)
            spare = max(0.0, duration - self.crop_seconds)
            # Offsets on a grid that is a whole number of samples at both the file's and the
            # encoder's rate: a crop starts on a source frame and on an output sample alike.
            # (Cached or not, a crop is a slice of one whole-file signal: bench.data.audio.load_audio.)
            step = 1.0 / math.gcd(self.loader.sample_rate(item.audio_path), self.sample_rate)
            offset = math.floor(spare * stable_uniform(self.seed, self.epoch, pair) / step) * step
            audio = self.loader.load(item.audio_path, self.sample_rate, offset, self.crop_seconds)
        return {
            "audio": audio,
            "caption": self.split.captions[pair],
            "item_index": item_index,
            "caption_index": int(self.split.caption_slot[pair]),
            "pair_index": pair,
        }


class EvalAudio(Dataset):
    """Whole clips (up to ``max_seconds``) of a split, in item order."""

    def __init__(self, split: SplitData, sample_rate: int, max_seconds: float | None, loader: Any) -> None:
        self.split = split
        self.sample_rate = sample_rate
        self.max_seconds = max_seconds
        self.loader = loader

    def __len__(self) -> int:
        return self.split.n_audios

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.split.items[index]
        audio = self.loader.load(item.audio_path, self.sample_rate, 0.0, self.max_seconds)
        return {"audio": audio, "item_index": index}


class TrainingDecodeError(DataError):
    """A file that validated but no longer decodes (changed on disk during the run); one line.

    DataLoader workers re-raise an exception as ``type(exc)(text with the worker's traceback)``;
    this class keeps only the original message, so the user still sees one line.
    """

    def __init__(self, message: str) -> None:
        if "Original Traceback" in message:
            last = message.strip().splitlines()[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


class AudioLoader:
    """Decodes through :mod:`bench.data.audio`, or through the decoded-audio cache when one is given.

    Both give the same bits: the cache holds each file's whole signal (float32, decoded, mixed,
    resampled) and crops are cut from it, while :func:`bench.data.audio.load_audio` computes the
    same slice of the same signal from the crop's frames. The cache is used only where it pays
    off (:meth:`cache_pays_off`: the file must be resampled); a file already at the encoder's rate
    is decoded directly.
    A file that stops decoding after validation follows the dataset's ``on_error``: ``raise``
    stops the run with one line naming the file, ``skip`` logs it once and feeds silence in its place.
    """

    def __init__(self, cache: Any = None, on_error: str = "raise") -> None:
        self.cache = cache
        self.on_error = on_error
        self._infos: dict[str, Any] = {}
        self._failed: set[str] = set()

    def _info(self, path: Any) -> Any:
        key = str(path)
        if key not in self._infos:
            from bench.data.audio import AudioError, audio_info

            try:
                self._infos[key] = audio_info(path)
            except AudioError as exc:
                raise TrainingDecodeError(f"{' '.join(str(exc).split())} (it passed validation, so it changed "
                                          "during the run; fix it and run `bench validate`)") from None
        return self._infos[key]

    def duration(self, path: Any) -> float:
        return float(self._info(path).duration)

    def sample_rate(self, path: Any) -> int:
        """The file's own sample rate."""
        return int(self._info(path).sample_rate)

    def load(self, path: Any, sample_rate: int, offset: float, seconds: float | None) -> np.ndarray:
        from bench.data.audio import AudioError

        try:
            return self._load(path, sample_rate, offset, seconds)
        except AudioError as exc:
            reason = " ".join(str(exc).split())
            if self.on_error != "skip":
                raise TrainingDecodeError(f"{reason} (it passed validation, so it changed during the run; "
                                          "fix it and run `bench validate`, or use on_error=skip)") from None
            if str(path) not in self._failed:
                self._failed.add(str(path))
                logging.getLogger("bench").warning("skipping audio that no longer decodes, silence in its "
                                                   "place (on_error=skip): %s", reason)
            return np.zeros(1, dtype=np.float32)

    def cache_pays_off(self, path: Any, sample_rate: int) -> bool:
        """Whether reading ``path`` through the cache saves work: only if it must be resampled.

        Resampling a 10 s crop costs several times its decoding (benchmarks/loader_results.md); a
        file already at the encoder's rate is decoded directly, even compressed (FLAC decodes a crop
        in a few ms, and WavCaps' 7,568 h at 32 kHz would fill 3.5 TB as float32).
        """
        try:
            info = self._info(path)
        except TrainingDecodeError:
            return False  # decoding it reports the problem the dataset's on_error expects
        return int(info.sample_rate) != int(sample_rate)

    def _load(self, path: Any, sample_rate: int, offset: float, seconds: float | None) -> np.ndarray:
        if self.cache is not None and self.cache_pays_off(path, sample_rate):
            audio = self.cache.load(path, sample_rate, offset, seconds)
        else:
            from bench.data.audio import load_audio

            audio = load_audio(path, sample_rate, offset_seconds=offset, max_seconds=seconds)
        if audio.size == 0:
            # A clip shorter than one sample at the target rate still needs a valid input.
            audio = np.zeros(1, dtype=np.float32)
        return audio


def _pad(audios: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(a) for a in audios], dtype=torch.long)
    waveforms = torch.zeros(len(audios), int(lengths.max()), dtype=torch.float32)
    for row, audio in enumerate(audios):
        waveforms[row, : len(audio)] = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return waveforms, lengths


def collate_pairs(samples: list[dict[str, Any]]) -> Batch:
    waveforms, lengths = _pad([s["audio"] for s in samples])
    item_index = torch.tensor([s["item_index"] for s in samples], dtype=torch.long)
    return Batch(
        waveforms=waveforms,
        lengths=lengths,
        captions=[s["caption"] for s in samples],
        audio_ids=item_index.clone(),
        item_index=item_index,
        caption_index=torch.tensor([s["caption_index"] for s in samples], dtype=torch.long),
        pair_index=torch.tensor([s["pair_index"] for s in samples], dtype=torch.long),
    )


def collate_audio(samples: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    waveforms, lengths = _pad([s["audio"] for s in samples])
    return waveforms, lengths, torch.tensor([s["item_index"] for s in samples], dtype=torch.long)
