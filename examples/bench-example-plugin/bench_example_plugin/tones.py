"""The ``example-tones`` dataset: 32 synthetic one-second tones, each with two captions.

It uses only the standard library. Items are this module's own :class:`Tone`: bench reads
``audio_id``, ``audio_path`` and ``captions`` and never needs its own item class.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 16000
PITCHES = {"low": 220.0, "middle": 440.0, "high": 880.0, "very high": 1760.0}
SHAPES = {"steady": "constant", "pulsing": "pulsing", "rising": "going up", "falling": "going down"}
LEVELS = {"quiet": 0.1, "loud": 0.8}


@dataclass(frozen=True)
class Tone:
    """One clip: what bench needs from an item, and nothing else."""

    audio_id: str
    audio_path: Path
    captions: tuple[str, ...]


class Tones:
    """Every (pitch, shape, level) combination once; clip i goes to train, val or test by ``i % 4``."""

    def __init__(self, root: str = "", seconds: float = 1.0) -> None:
        if not seconds > 0:
            raise ValueError(f"example-tones: seconds must be > 0, got {seconds}")
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / "bench-example-tones"
        self.seconds = seconds
        self.options = {"root": str(self.root), "seconds": seconds}
        self._splits: dict[str, list[Tone]] = {"train": [], "val": [], "test": []}
        combos = [(p, s, v) for p in PITCHES for s in SHAPES for v in LEVELS]
        for index, (pitch, shape, level) in enumerate(combos):
            split = ("train", "train", "val", "test")[index % 4]
            audio_id = f"tone{index:02d}"
            path = self.root / split / f"{audio_id}.wav"
            self._write_if_missing(path, PITCHES[pitch], shape, LEVELS[level])
            captions = (f"a {level} {shape} {pitch} tone",
                        f"a {pitch} pitched beep, {SHAPES[shape]} and {level}")
            self._splits[split].append(Tone(audio_id, path, captions))

    def split(self, name: str) -> list[Tone]:
        """The items of ``train``, ``val`` or ``test``."""
        if name not in self._splits:
            raise ValueError(f"example-tones has splits train, val and test, not {name!r}")
        return list(self._splits[name])

    def _write_if_missing(self, path: Path, freq: float, shape: str, level: float) -> None:
        n = int(round(self.seconds * SAMPLE_RATE))
        if path.is_file():
            try:
                with wave.open(str(path), "rb") as existing:
                    if existing.getnframes() == n and existing.getframerate() == SAMPLE_RATE:
                        return
            except (wave.Error, EOFError):
                pass  # a damaged file is rewritten below
        path.parent.mkdir(parents=True, exist_ok=True)
        samples, phase = [], 0.0
        for i in range(n):
            t = i / SAMPLE_RATE
            glide = {"rising": 2.0 ** (t / self.seconds), "falling": 2.0 ** (-t / self.seconds)}.get(shape, 1.0)
            phase += 2.0 * math.pi * freq * glide / SAMPLE_RATE
            envelope = 0.5 * (1.0 + math.sin(2.0 * math.pi * 4.0 * t)) if shape == "pulsing" else 1.0
            fade = min(1.0, i / 160, (n - 1 - i) / 160)  # 10 ms fades: no clicks at the edges
            samples.append(int(32767 * level * envelope * fade * math.sin(phase)))
        # Write to a temp file in the same directory, then rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".wav.tmp")
        try:
            with os.fdopen(fd, "wb") as handle, wave.open(handle, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(SAMPLE_RATE)
                out.writeframes(struct.pack(f"<{n}h", *samples))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
