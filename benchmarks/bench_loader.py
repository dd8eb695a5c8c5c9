"""Clips per second per loader process for PaSST's input: the floor, bench's loader, bench's cache.

Writes 200 Clotho-like files (15-30 s, 44.1 kHz stereo, 16-bit PCM WAV, noise plus a tone) into a
temporary folder, then, in this one process (one core, as one DataLoader worker), loads one
10 s crop at 32 kHz of every file per pass, at the offsets bench's training sampler draws
(a grid of 10 ms), several ways:

- ``floor``: ``soundfile`` decode of the crop's frames alone (441,000 stereo frames to float32),
  no mixing, no resampling: what any loader must pay;
- ``uncached``: ``AudioLoader(None).load`` (bench.data.loading), the loader the trainer uses
  without the cache: the crop's frames plus the filter's reach, mixed, resampled, clipped;
- ``cached``: ``AudioLoader(AudioCache(...)).load`` once the cache is filled: a memory-mapped
  slice of the stored float32 signal; ``cache fill`` is the first pass, which decodes whole files;
- ``whole file``: decode and resample the whole file, then slice (what "crop the same signal"
  costs without a windowed resample, for comparison);
- ``resample only``: ``bench.data.audio.resample`` of an already decoded, mixed crop (where the
  uncached loader's time goes).

Files are in the page cache (written just before), so the numbers are CPU cost, not disk. Passes
alternate between the variants; the best pass of each is reported. Usage::

    python benchmarks/bench_loader.py --files 200 --passes 3 --out benchmarks/loader_results.md
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per loader process, as in a DataLoader worker
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SR_IN, SR_OUT, CROP = 44100, 32000, 10.0


def make_files(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        seconds = float(rng.uniform(15.0, 30.0))
        frames = int(seconds * SR_IN)
        x = 0.1 * rng.standard_normal((frames, 2)).astype(np.float32)
        x += (0.3 * np.sin(2 * np.pi * (200 + i) * np.arange(frames) / SR_IN))[:, None].astype(np.float32)
        path = folder / f"clip{i:04d}.wav"
        sf.write(path, x, SR_IN, subtype="PCM_16")
        paths.append(path)
    return paths


def crop_offsets(paths: list[Path], seed: int) -> list[float]:
    """Offsets as bench.data.loading.TrainPairs draws them: uniform over the spare time, on a 10 ms grid."""
    rng = np.random.default_rng(seed)
    step = 1.0 / math.gcd(SR_IN, SR_OUT)
    out = []
    for p in paths:
        spare = max(0.0, sf.info(str(p)).duration - CROP)
        out.append(math.floor(spare * rng.random() / step) * step)
    return out


def floor_load(path: Path, offset: float) -> np.ndarray:
    with sf.SoundFile(str(path)) as f:
        f.seek(int(round(offset * f.samplerate)))
        return f.read(frames=int(round(CROP * f.samplerate)), dtype="float32", always_2d=True)


def timed_pass(load, paths: list[Path], offsets: list[float]) -> float:
    start = time.perf_counter()
    for path, offset in zip(paths, offsets):
        out = load(path, offset)
        assert out.shape[0] > 0
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "loader_results.md")
    args = parser.parse_args()

    from bench.data import audio_cache
    from bench.data.audio import _mono, load_audio, resample
    from bench.data.audio_cache import AudioCache
    from bench.data.loading import AudioLoader

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        folder = Path(tmp) / "audio"
        folder.mkdir()
        paths = make_files(folder, args.files)
        hours = sum(sf.info(str(p)).duration for p in paths) / 3600
        plain = AudioLoader(None)
        audio_cache.RACY_SECONDS = 0.0  # the files were written a moment ago; nothing edits them here
        cached = AudioLoader(AudioCache(Path(tmp) / "cache"))
        for p in paths:  # header reads, as a worker's first epoch does them once per file
            plain.duration(p), cached.duration(p)
        decoded = {p: _mono(floor_load(p, 0.0)) for p in paths[:50]}

        variants = {
            "floor": lambda p, o: floor_load(p, o),
            "uncached": lambda p, o: plain.load(p, SR_OUT, o, CROP),
            "cached": lambda p, o: cached.load(p, SR_OUT, o, CROP),
            "whole file": lambda p, o: load_audio(p, SR_OUT)[round(o * SR_OUT): round((o + CROP) * SR_OUT)],
            "resample only": lambda p, o: resample(decoded[p], SR_IN, SR_OUT),
        }
        fill_start = time.perf_counter()
        for p, o in zip(paths, crop_offsets(paths, 99)):
            cached.load(p, SR_OUT, o, CROP)
        fill = len(paths) / (time.perf_counter() - fill_start)
        assert cached.cache.misses == len(paths)
        best: dict[str, float] = {name: 0.0 for name in variants}
        for k in range(args.passes):
            offsets = crop_offsets(paths, k)
            for name, load in variants.items():
                subset = paths[:50] if name in ("whole file", "resample only") else paths
                best[name] = max(best[name], timed_pass(load, subset, offsets[: len(subset)]))
        same = all(np.array_equal(plain.load(p, SR_OUT, o, CROP), cached.load(p, SR_OUT, o, CROP))
                   for p, o in zip(paths[:20], crop_offsets(paths, 7)))
        disk = sum(f.stat().st_size for f in (Path(tmp) / "cache").rglob("*.npy"))
        src = sum(p.stat().st_size for p in paths)
    load_end = os.getloadavg()[0]

    floor = best["floor"]
    lines = [
        "## Audio loader throughput for PaSST's input (10 s crops at 32 kHz), one process",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPU(s) shared with other jobs, Python "
        f"{platform.python_version()}, numpy {np.__version__}, soundfile {sf.__version__} "
        f"(libsndfile {sf.__libsndfile_version__}); load average (1 min) {load_start:.1f} at start, "
        f"{load_end:.1f} at the end",
        f"- Command: `python benchmarks/bench_loader.py --files {args.files} --passes {args.passes}`",
        f"- Data: {args.files} files, 15-30 s ({hours:.2f} h), 44.1 kHz stereo 16-bit WAV, in the page cache "
        f"({src / 2**20:.0f} MiB); one random 10 s crop per file per pass (10 ms grid, as training draws them)",
        f"- One process, one thread (OMP_NUM_THREADS=1): clips/s per core = per DataLoader worker; best of "
        f"{args.passes} alternating passes (`whole file` and `resample only` on the first 50 files)",
        f"- Cached crops equal uncached crops bit for bit: {'yes' if same else 'NO'} (20 crops compared)",
        "",
        "| loader | clips/s per core | ms per clip | / floor (time) | vs uncached (speed) |",
        "|---|---|---|---|---|",
    ]
    for name in ("floor", "uncached", "cached", "whole file", "resample only"):
        rate = best[name]
        lines.append(f"| {name} | {rate:.1f} | {1000 / rate:.2f} | {floor / rate:.2f} | "
                     f"{rate / best['uncached']:.2f}x |")
    lines.append(f"| cache fill (first pass: whole-file decode, resample, store) | {fill:.1f} | {1000 / fill:.2f} | "
                 f"{floor / fill:.2f} | {fill / best['uncached']:.2f}x |")
    lines += [
        "",
        f"Cache on disk: {disk / 2**20:.0f} MiB for {hours:.2f} h of audio = {disk / hours / 2**20:.0f} MiB per hour "
        f"(float32 at 32 kHz: 32000 x 4 x 3600 B = {32000 * 4 * 3600 / 2**20:.0f} MiB per hour, plus the "
        "npy header and checksum trailer).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
