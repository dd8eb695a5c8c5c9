"""A corpus of bad (and merely odd) inputs for a CSV dataset, each with the words that must name it.

``make_corpus(base)`` writes ``base/audio/*`` and ``base/captions.csv`` and returns the root, the
CSV and a list of :class:`Kind`: one per kind of problem, with the entry it is reported under
(``audio_id`` or ``captions.csv line N``), its split, the fragment its reason must contain and
whether it is a bad entry or a warning. Every other CSV entry is a good clip.
"""

from __future__ import annotations

import csv
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

GOOD = {"train": 6, "val": 3, "test": 3}


@dataclass(frozen=True)
class Kind:
    name: str  # what kind of problem
    split: str
    entry: str  # the audio id (file name) or "captions.csv line N" it is reported under
    fragment: str  # lower-case words its reason must contain
    warning: bool = False  # a warning (entry stays usable) instead of a bad entry


def noise(seconds: float, sr: int, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (0.3 * rng.uniform(-1, 1, int(seconds * sr))).astype(np.float32)
    return np.stack([x, x[::-1]], axis=1) if channels == 2 else x


def wav_bytes(data: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, data, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def make_corpus(base: Path) -> tuple[Path, Path, list[Kind], dict[str, int]]:
    """Write the corpus; returns (audio root, captions CSV, kinds, entries per split)."""
    root = base / "audio"
    root.mkdir(parents=True)
    rows: list[list[str]] = []
    kinds: list[Kind] = []
    seed = 0
    for split, count in GOOD.items():
        for i in range(count):
            sf.write(root / f"{split}_{i}.wav", noise(1.0, 16000, seed), 16000, subtype="PCM_16")
            seed += 1
            rows.append([f"{split}_{i}.wav", f"{split} clip number {i}", split])

    def bad_file(name: str, kind: str, fragment: str, content: bytes | None = None, *, split: str = "train",
                 caption: str = "a sound", warning: bool = False) -> None:
        if content is not None:
            (root / name).write_bytes(content)
        rows.append([name, caption, split])
        kinds.append(Kind(kind, split, name, fragment, warning))

    good = wav_bytes(noise(1.0, 16000, 100))
    huge = bytearray(good)
    huge[40:44] = struct.pack("<I", 0x7FFFFF00)
    nan_late = noise(2.0, 16000, 101)
    nan_late[24000] = np.nan  # 1.5 s in
    inf = noise(0.5, 16000, 102)
    inf[100] = np.inf
    flac = root / "whole.flac.tmpdata"
    sf.write(flac, noise(1.0, 16000, 103), 16000, format="FLAC")
    flac_bytes = flac.read_bytes()
    flac.unlink()

    bad_file("empty.wav", "0-byte file", "empty (0 bytes)", b"")
    bad_file("text.wav", "text file named .wav", "not an audio file", b"this is a text file, not audio\n")
    bad_file("binary.wav", "random bytes", "not an audio file", np.random.default_rng(7).bytes(4096))
    bad_file("header20.wav", "header cut at 20 bytes", "header", good[:20])
    bad_file("riffjunk.wav", "RIFF with a malformed fmt chunk", "cannot decode",
             b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    bad_file("shortdata.wav", "data shorter than the header says", "header says 16000 frames", good[:len(good) // 2])
    bad_file("hugeheader.wav", "header claims a huge length", "header says 1073741696 frames", bytes(huge))
    bad_file("nan_late.wav", "NaN after the first second", "first at 1.500 s", wav_bytes(nan_late, subtype="FLOAT"))
    bad_file("inf.wav", "+inf sample", "nan/inf", wav_bytes(inf, subtype="FLOAT"))
    bad_file("one_sample.wav", "1-sample file", "too short", wav_bytes(np.full(1, 0.2, np.float32)))
    bad_file("five_ms.wav", "5 ms file", "too short: 0.0050 s", wav_bytes(noise(0.005, 16000, 104)))
    bad_file("rate1.wav", "1 Hz sample rate", "implausible sample rate 1 hz",
             wav_bytes(np.full(10, 0.2, np.float32), sr=1))
    bad_file("rate500k.wav", "500 kHz sample rate", "implausible sample rate 500000 hz",
             wav_bytes(noise(0.2, 500000, 105), sr=500000))
    bad_file("noframes.wav", "valid header, no frames", "no audio frames", wav_bytes(np.zeros(0, np.float32)))
    bad_file("truncated.flac", "truncated FLAC", "cannot decode", flac_bytes[:len(flac_bytes) // 2])
    bad_file("missing.wav", "missing file", "not found")
    (root / "adir.wav").mkdir()
    bad_file("adir.wav", "a directory named .wav", "not a regular file")
    os.symlink(base / "nowhere.wav", root / "dangling.wav")
    bad_file("dangling.wav", "dangling symlink", "not found")
    sf.write(base / "outside.wav", noise(1.0, 16000, 106), 16000)
    bad_file("../outside.wav", "path outside the root", "outside the dataset root")
    sf.write(root / "emptycap.wav", noise(1.0, 16000, 107), 16000)
    bad_file("emptycap.wav", "blank caption", "empty caption", caption="   ")
    sf.write(root / "punct.wav", noise(1.0, 16000, 108), 16000)
    bad_file("punct.wav", "punctuation-only caption", "no letters or digits", caption="?!...")
    (root / "test_copy.wav").write_bytes((root / "train_1.wav").read_bytes())
    bad_file("test_copy.wav", "train clip copied into test", "identical audio to [train] train_1.wav", split="test")
    sf.write(root / "silent.wav", np.zeros(16000, np.float32), 16000)
    bad_file("silent.wav", "all-zero file", "silent (all zero)", warning=True)
    sf.write(root / "whisper.wav", noise(1.0, 16000, 109) * 1e-5, 16000, subtype="FLOAT")
    bad_file("whisper.wav", "peak below -80 dBFS", "silent (peak", warning=True)
    sf.write(root / "train_dup.flac", sf.read(root / "train_0.wav", dtype="float32")[0], 16000, format="FLAC")
    bad_file("train_dup.flac", "train clip re-encoded as FLAC in train", "identical audio to [train] train_0.wav",
             warning=True)
    # Structural CSV problems are reported under "captions.csv line N" (header is line 1).
    structural = [
        (["train_2.wav", "the same file listed in val", "val"], "file listed in two splits", "val",
         "also in split 'train'", "train_2.wav"),
        (["x.wav", "a caption", "training"], "unknown split name", "train", "is not one of train", None),
        (["", "no file name", "train"], "empty file_name", "train", "empty file_name", None),
        (["y.wav", "too", "many", "fields"], "row with too many fields", "train", "has 4 fields", None),
    ]
    for row, kind, split, fragment, entry in structural:
        rows.append(row)
        kinds.append(Kind(kind, split, entry or f"captions.csv line {len(rows) + 1}", fragment))
    with open(base / "captions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file_name", "caption", "split"])
        writer.writerows(rows)
    entries = {split: count + sum(1 for k in kinds if k.split == split) for split, count in GOOD.items()}
    return root, base / "captions.csv", kinds, entries
