"""Audio decoding: header inspection and bounded, resampled mono reads.

Every failure surfaces as :class:`AudioError` (a :class:`bench.errors.DataError`) with a one-line
message that names the file and the reason, so a bad file in a 400k-item dataset is reported
as data, never as a soundfile traceback.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import struct
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from bench.errors import DataError

__all__ = ["MIXING", "AudioError", "AudioInfo", "AudioScan", "audio_info", "load_audio", "resample", "resampler_id",
           "scan_audio"]


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


MIXING = "mean"
"""How channels become mono: the float32 mean of the channels of each frame."""


def _ratio(orig_sr: int, target_sr: int) -> tuple[int, int]:
    g = gcd(int(orig_sr), int(target_sr))
    return int(target_sr) // g, int(orig_sr) // g


def resampler_id() -> str:
    """Identity of :func:`resample` (its filter comes from scipy), for cache keys: another one is another signal."""
    import scipy

    return f"scipy.signal.resample_poly(window=kaiser5,padtype=constant)@{scipy.__version__}"


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a 1-D float signal from ``orig_sr`` to ``target_sr``."""
    if orig_sr == target_sr or x.size == 0:
        return x
    from scipy.signal import resample_poly

    up, down = _ratio(orig_sr, target_sr)
    # The filter resample_poly would design on every call (3 ms for 44.1 -> 32 kHz), designed once;
    # used only where it gives resample_poly's own bits (checked once per ratio and dtype).
    taps = _filter(up, down, x.dtype.str)
    if taps is None:
        return resample_poly(x, up, down).astype(np.float32, copy=False)
    return resample_poly(x, up, down, window=taps).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=16)
def _filter(up: int, down: int, dtype: str) -> np.ndarray | None:
    """``resample_poly``'s default filter for ``up / down`` as it designs it for input of ``dtype``
    (Kaiser-windowed sinc, beta 5, ``20 * max(up, down) + 1`` taps; scipy >= 1.13 rounds it to the
    input's dtype), or None if passing it as ``window`` does not reproduce the default call exactly."""
    from scipy.signal import firwin, resample_poly

    half = 10 * max(up, down)
    taps = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0))
    probe = np.random.default_rng(0).standard_normal(4 * down + 64).astype(dtype)
    for candidate in (taps.astype(dtype), taps):
        if np.array_equal(resample_poly(probe, up, down, window=candidate), resample_poly(probe, up, down)):
            candidate.setflags(write=False)  # resample_poly copies it before scaling
            return candidate
    return None


def _filter_margin(up: int, down: int) -> int:
    """Input frames on each side of a crop that the resampling filter reaches, rounded up generously.

    ``resample_poly``'s filter has ``2 * 10 * max(up, down) + 1`` taps at the upsampled rate, so an
    output sample depends on the inputs within ``10 * max(up, down) / up`` frames of it (plus the
    filter's alignment padding, under ``down / up`` frames); twice that plus a few frames is plenty.
    """
    half = 10 * max(up, down)
    return 2 * (-(-half // up)) + 2 * (-(-down // up)) + 8


def _mono(data: np.ndarray) -> np.ndarray:
    """The float32 mean of each frame's channels."""
    if data.shape[1] == 2:
        # The same bits as data.mean(axis=1), whose reduction over a 2-wide axis costs 15 ms per 10 s
        # of 44.1 kHz stereo (more than resampling it); this costs 1 ms (tests/test_audio.py holds it).
        return np.divide(data[:, 0] + data[:, 1], np.float32(2), dtype=np.float32)
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32)


def load_audio(path: str | os.PathLike[str], sample_rate: int, *, offset_seconds: float = 0.0,
               max_seconds: float | None = None) -> np.ndarray:
    """Decode ``path`` to a float32 mono array ``[T]`` in [-1, 1] at ``sample_rate``.

    The result is always samples ``[round(offset_seconds * sample_rate), + round(max_seconds *
    sample_rate))`` of one signal: the whole file, channels averaged to mono (float32 mean),
    resampled polyphase (``scipy.signal.resample_poly``) and clipped to [-1, 1]. Only the crop's
    frames and the resampling filter's reach around them are read and resampled, and the
    result is bit-identical to slicing the whole-file resample: the window starts on a multiple
    of the rate ratio's denominator, so every output sample sees the same input samples and
    filter taps, summed in the same order. The decoded-audio cache (:mod:`bench.data.audio_cache`)
    stores the whole-file signal, so a crop is the same with or without it.

    Raises :class:`AudioError` (one line, naming the file) if the file is missing, empty, not
    audio, truncated, holds no frames in the requested range, or contains NaN/inf samples in the
    frames read.
    """
    import soundfile as sf

    p = Path(path)
    target = int(sample_rate)
    if target <= 0:
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
            up, down = _ratio(sr, target)
            full = -(-total * up // down)  # length of the whole-file resample
            start = int(round(offset_seconds * target))
            if total > 0 and start >= full:
                raise AudioError(f"{p}: offset {offset_seconds:g} s is past the end of the file "
                                 f"({total / sr:g} s)")
            stop = full if max_seconds is None else min(full, start + max(1, int(round(max_seconds * target))))
            if up == down:
                first, last = start, stop
            else:
                margin = _filter_margin(up, down)
                first = max(0, (start * down // up - margin) // down * down)  # a multiple of down
                last = min(total, -(-stop * down // up) + margin)
            if first:
                f.seek(first)
            data = f.read(frames=last - first if total > 0 else -1, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{p}: {_reason(p, exc)}") from None
    if data.shape[0] == 0:
        raise AudioError(f"{p}: no audio frames could be decoded (empty or truncated data)")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(f"{p}: contains {bad} NaN/inf samples; re-export the file")
    out = resample(_mono(data), sr, target)
    if up != down:
        # Output j of the window is output j + first * up / down of the whole file.
        shift = first * up // down
        out = out[start - shift: stop - shift]
    # Float files may exceed full scale and polyphase filtering overshoots slightly; the
    # encoders' contract is [-1, 1].
    out = np.clip(out, -1.0, 1.0)
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
