"""On-disk cache of decoded, resampled audio, so epochs after the first skip decoding and resampling.

Each entry is one float32 ``.npy`` file holding the whole file's signal exactly as
:func:`bench.data.audio.load_audio` computes it (channels averaged to mono, resampled, clipped):
the same bits, so a crop cut from the cache equals the crop decoded from the file, and a run with
the cache gives the metrics of a run without it, bit for bit. (int16 would halve the disk where a
16-bit source needs no resampling, but a resampled signal is not 16-bit any more; one format
everywhere keeps the two paths one.) A 10 s crop is read memory-mapped, so it costs its own
1.3 MB, not the file's.

The key covers everything that changes an entry: the format version, the source file's identity
and content as the file system reports them (absolute path, device, inode, size, mtime and ctime
in nanoseconds), the target sample rate, the resampler (its name and scipy's version, which
designs its filter) and the channel mixing. An edit in place changes mtime and ctime; a tool that
restores mtime (``cp -p``, ``rsync -t``) cannot restore ctime. To catch an edit within one tick of
the file system's clock, an entry is only written when the file is at least :data:`RACY_SECONDS`
old (git's "racy" rule): a later edit then gets a strictly later timestamp. Entries live in the shared
:class:`bench.core.array_store.ArrayStore`, whose atomic writes let concurrent processes (DataLoader
workers, DDP ranks) fill the same cache safely; an entry's checksum is verified the first time a
process reads it.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

import numpy as np

from bench.core.array_store import ArrayStore
from bench.core.cache_dir import AUDIO, cache_path
from bench.data.audio import MIXING, load_audio, resampler_id

__all__ = ["FORMAT", "RACY_SECONDS", "AudioCache"]

FORMAT = 2  # 1: float16 of the whole file; 2: float32, the exact signal the uncached path crops from
RACY_SECONDS = 2.0
"""A file modified less than this long ago is read but not cached (FAT's mtime has 2 s granularity)."""


class AudioCache:
    """Decoded-audio cache in ``cache_dir`` (default ``audio/`` under :func:`bench.core.cache_dir.cache_root`)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, *, racy_seconds: float | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_path(AUDIO)
        self.store = ArrayStore(self.cache_dir)
        self.racy_seconds = RACY_SECONDS if racy_seconds is None else racy_seconds
        self.hits = 0
        self.misses = 0
        self.unstored = 0  # misses not written because the file was modified too recently
        self._verified: set[str] = set()
        self._resampler = resampler_id()

    @property
    def damaged(self) -> int:
        """Entries this process found damaged and rebuilt; each is named in the log."""
        return len(self.store.damaged)

    def _key(self, path: str | os.PathLike[str], sample_rate: int) -> tuple[str, os.stat_result]:
        p = os.path.abspath(path)
        st = os.stat(p)
        ident = "\x1f".join(str(part) for part in (
            FORMAT, p, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, int(sample_rate),
            self._resampler, MIXING))
        return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest(), st

    def key(self, path: str | os.PathLike[str], sample_rate: int) -> str:
        """Cache key of the whole of ``path`` decoded at ``sample_rate`` (see the module docstring)."""
        return self._key(path, sample_rate)[0]

    def _stored(self, key: str) -> np.ndarray | None:
        # The checksum is read once per entry and process: a crop then costs its own bytes.
        arr = self.store.get(key, verify=key not in self._verified)
        if arr is not None and arr.dtype == np.float32 and arr.ndim == 1:
            self._verified.add(key)
            return arr
        return None

    def load(self, path: str | os.PathLike[str], sample_rate: int, offset_seconds: float = 0.0,
             max_seconds: float | None = None) -> np.ndarray:
        """Samples of ``path`` as :func:`bench.data.audio.load_audio` returns them, from the cache.

        The first call decodes the whole file and stores it; every call returns the slice
        ``[round(offset_seconds * sample_rate), + round(max_seconds * sample_rate))``, the same bits
        ``load_audio`` gives for these arguments.
        """
        try:
            key, st = self._key(path, sample_rate)
        except OSError:
            # Let load_audio produce its one-line AudioError for the missing/unreadable file.
            return load_audio(path, sample_rate, offset_seconds=offset_seconds, max_seconds=max_seconds)
        whole = self._stored(key)
        if whole is None:
            # Absent or damaged entry (the store verified its checksum and logged it): decode again, overwrite it.
            self.misses += 1
            whole = load_audio(path, sample_rate)
            if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 < self.racy_seconds:
                self.unstored += 1
            else:
                try:
                    self.store.put(key, whole)
                except OSError:
                    pass  # an unwritable cache only costs speed
        else:
            self.hits += 1
        return _slice(whole, path, sample_rate, offset_seconds, max_seconds)


def _slice(whole: np.ndarray, path: str | os.PathLike[str], sample_rate: int, offset_seconds: float,
           max_seconds: float | None) -> np.ndarray:
    """The samples :func:`bench.data.audio.load_audio` would return, cut from the whole signal (same checks)."""
    valid = math.isfinite(offset_seconds) and offset_seconds >= 0 and (
        max_seconds is None or (math.isfinite(max_seconds) and max_seconds > 0))
    start = int(round(offset_seconds * sample_rate)) if valid else 0
    if not valid or start >= len(whole):
        return load_audio(path, sample_rate, offset_seconds=offset_seconds, max_seconds=max_seconds)  # its error
    stop = len(whole) if max_seconds is None else min(len(whole), start + max(1, int(round(max_seconds * sample_rate))))
    return np.array(whole[start:stop], dtype=np.float32)
