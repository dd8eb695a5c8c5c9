"""Audio decoding: header inspection and bounded, resampled mono reads.

Every failure surfaces as :class:`AudioError` (a :class:`bench.errors.DataError`) with a one-line
message that names the file and the reason, so a bad file in a 400k-item dataset is reported
as data, never as a soundfile traceback.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from bench.errors import DataError

__all__ = ["AudioError", "AudioInfo", "AudioScan", "audio_info", "load_audio", "resample", "scan_audio"]


class AudioError(DataError):
    """An audio file that cannot be decoded; the message names the file and the reason."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: frame count, native rate, channel count, duration in seconds."""

    frames: int
    sample_rate: int
    channels: int
    duration: float


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_file(path: Path) -> None:
    """Reject the cases libsndfile reports confusingly (missing, directory, empty) up front."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(f"{path}: file not found") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot access file ({_one_line(exc.strerror or exc)})") from None
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")


def _reason(path: Path, exc: BaseException) -> str:
    """Turn a libsndfile error into a short reason a user can act on."""
    msg = _one_line(getattr(exc, "error_string", "") or exc)
    low = msg.lower()
    head = b""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        pass
    looks_audio = head[:4] in (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3\x03", b"ID3\x04") or (
        len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0
    )
    if "format not recognised" in low or "unknown format" in low:
        if looks_audio:
            return f"unreadable or truncated audio header ({msg})"
        if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
            return "not an audio file (looks like text)"
        return "not an audio file (format not recognised)"
    if looks_audio and len(head) < 44:
        return f"truncated audio header ({msg})"
    return f"cannot decode ({msg})"


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of ``path`` without decoding samples.

    Raises :class:`AudioError` for a missing, empty, truncated or non-audio file.
    """
    import soundfile as sf

    p = Path(path)
    _check_file(p)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile raises several types (LibsndfileError, RuntimeError)
        raise AudioError(f"{p}: {_reason(p, exc)}") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{p}: invalid header (sample rate {info.samplerate}, {info.channels} channels)")
    frames = int(info.frames)
    return AudioInfo(frames=frames, sample_rate=int(info.samplerate), channels=int(info.channels),
                     duration=frames / float(info.samplerate))


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a 1-D float signal from ``orig_sr`` to ``target_sr``."""
    if orig_sr == target_sr or x.size == 0:
        return x
    from scipy.signal import resample_poly

    g = gcd(int(orig_sr), int(target_sr))
    up, down = int(target_sr) // g, int(orig_sr) // g
    return resample_poly(x, up, down).astype(np.float32, copy=False)


def load_audio(path: str | os.PathLike[str], sample_rate: int, *, offset_seconds: float = 0.0,
               max_seconds: float | None = None) -> np.ndarray:
    """Decode ``path`` to a float32 mono array ``[T]`` in [-1, 1] at ``sample_rate``.

    Only the frames in ``[offset_seconds, offset_seconds + max_seconds)`` are read from disk, so
    cropping a long recording costs the crop, not the file. Channels are averaged to mono and the
    result is resampled polyphase (``scipy.signal.resample_poly``).

    Raises :class:`AudioError` (one line, naming the file) if the file is missing, empty, not
    audio, truncated, holds no frames in the requested range, or contains NaN/inf samples.
    """
    import soundfile as sf

    p = Path(path)
    if int(sample_rate) <= 0:
        raise AudioError(f"{p}: target sample rate must be positive, got {sample_rate}")
    if offset_seconds < 0 or not math.isfinite(offset_seconds):
        raise AudioError(f"{p}: offset_seconds must be a finite number >= 0, got {offset_seconds}")
    if max_seconds is not None and (not math.isfinite(max_seconds) or max_seconds <= 0):
        raise AudioError(f"{p}: max_seconds must be a finite number > 0, got {max_seconds}")
    _check_file(p)
    try:
        with sf.SoundFile(str(p)) as f:
            sr = int(f.samplerate)
            total = int(f.frames)
            start = int(round(offset_seconds * sr))
            if total > 0 and start >= total:
                raise AudioError(f"{p}: offset {offset_seconds:g} s is past the end of the file "
                                 f"({total / sr:g} s)")
            want = -1 if max_seconds is None else max(1, int(round(max_seconds * sr)))
            if start:
                f.seek(start)
            data = f.read(frames=want, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{p}: {_reason(p, exc)}") from None
    if data.shape[0] == 0:
        raise AudioError(f"{p}: no audio frames could be decoded (empty or truncated data)")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(f"{p}: contains {bad} NaN/inf samples; re-export the file")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    out = resample(np.ascontiguousarray(mono, dtype=np.float32), sr, int(sample_rate))
    # Float files may exceed full scale and polyphase filtering overshoots slightly; the
    # encoders' contract is [-1, 1].
    np.clip(out, -1.0, 1.0, out=out)
    return out


@dataclass(frozen=True)
class AudioScan:
    """What a whole-file decode found (see :func:`scan_audio`).

    ``frames`` is what libsndfile reports (it clamps a header's length to the file),
    ``declared_frames`` what the container header itself claims (WAV data chunk, FLAC
    STREAMINFO; None when unknown or not recorded), ``decoded_frames`` what actually decoded.
    ``content_hash`` hashes the decoded float32 samples with the rate and channel count, so a
    lossless re-encode of the same audio (WAV <-> FLAC, PCM_16 <-> PCM_24 of the same values) has
    the same hash.
    """

    frames: int
    declared_frames: int | None
    decoded_frames: int
    sample_rate: int
    channels: int
    peak: float
    first_nonfinite_s: float | None
    n_nonfinite: int
    content_hash: str

    @property
    def duration(self) -> float:
        return self.decoded_frames / float(self.sample_rate)


def declared_frames(path: str | os.PathLike[str]) -> int | None:
    """The frame count a WAV or FLAC header declares, read from the raw bytes (None if unknown).

    libsndfile silently clamps a WAV data chunk that claims more than the file holds, so a
    truncated download looks complete through ``soundfile.info``; this reads the claim itself.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:4] == b"fLaC":
                fh.seek(4)
                block = fh.read(4 + 34)
                if len(block) < 38 or (block[0] & 0x7F) != 0:
                    return None
                info = block[4:]
                total = ((info[13] & 0x0F) << 32) | struct.unpack(">I", info[14:18])[0]
                return total or None  # 0 means "unknown" in FLAC
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = 0
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(size + (size & 1))
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                elif cid == b"data":
                    # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back.
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    fh.seek(size + (size & 1), os.SEEK_CUR)
    except (OSError, struct.error, IndexError):
        return None


def scan_audio(path: str | os.PathLike[str], block_frames: int = 1 << 16, hash_content: bool = True) -> AudioScan:
    """Decode the whole of ``path`` in blocks of ``block_frames`` frames (bounded memory).

    Returns frame counts, peak, the time of the first non-finite sample and a content hash
    (empty with ``hash_content=False``, which only benchmarks use to measure its cost).
    Raises :class:`AudioError` (one line, naming the file) if it cannot be opened or decoded.
    """
    import soundfile as sf

    p = Path(path)
    _check_file(p)
    # SHA-256 runs at about 1 GB/s here with the CPU's SHA extensions (blake2b: 0.5 GB/s); only
    # identity matters, so a truncated digest is plenty.
    digest = hashlib.sha256()
    peak = 0.0
    decoded = 0
    first_bad: float | None = None
    n_bad = 0
    try:
        with sf.SoundFile(str(p)) as f:
            sr, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
            if sr <= 0 or channels <= 0:
                raise AudioError(f"{p}: invalid header (sample rate {sr}, {channels} channels)")
            digest.update(f"{sr}:{channels}:".encode())
            buf = np.empty((block_frames, channels), dtype=np.float32)
            while True:
                blk = f.read(frames=block_frames, dtype="float32", always_2d=True, out=buf)
                n = len(blk)
                if n == 0:
                    break
                if hash_content:
                    digest.update(memoryview(blk).cast("B"))
                hi, lo = float(blk.max()), float(blk.min())
                if math.isfinite(hi) and math.isfinite(lo):
                    peak = max(peak, hi, -lo)
                else:
                    finite = np.isfinite(blk)
                    bad_rows = np.flatnonzero(~finite.all(axis=1))
                    if first_bad is None:
                        first_bad = (decoded + int(bad_rows[0])) / sr
                    n_bad += int((~finite).sum())
                    if finite.any():
                        peak = max(peak, float(np.abs(blk[finite]).max()))
                decoded += n
                if n < block_frames:
                    break
    except AudioError:
        raise
    except Exception as exc:  # libsndfile raises several types
        raise AudioError(f"{p}: {_reason(p, exc)}") from None
    return AudioScan(frames=frames, declared_frames=declared_frames(p), decoded_frames=decoded, sample_rate=sr,
                     channels=channels, peak=peak, first_nonfinite_s=first_bad, n_nonfinite=n_bad,
                     content_hash=digest.hexdigest()[:32] if hash_content else "")
