"""Epoch time with and without the decoded-audio cache.

Writes N synthetic stereo 44.1 kHz clips (FLAC and WAV), then times one "epoch" of loading all
of them at 32 kHz mono three ways: plain ``load_audio`` (decode + resample every epoch), the
cache's first epoch (decode + store) and a later epoch (cache hits). Usage::

    python benchmarks/bench_audio_cache.py --n 200 --seconds 20 --format flac
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.data.audio import load_audio
from bench.data.audio_cache import AudioCache


def make_files(folder: Path, n: int, seconds: float, fmt: str, sr: int = 44100) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        # Noise plus a tone: realistic for FLAC compression ratio (noise compresses badly).
        x = 0.1 * rng.standard_normal((int(sr * seconds), 2)).astype(np.float32)
        x += 0.3 * np.sin(2 * np.pi * (200 + i) * np.arange(x.shape[0]) / sr)[:, None].astype(np.float32)
        p = folder / f"clip{i:04d}.{fmt}"
        sf.write(p, x, sr, subtype="PCM_16")
        paths.append(p)
    return paths


def epoch(fn, paths: list[Path]) -> float:
    t0 = time.perf_counter()
    total = 0
    for p in paths:
        total += fn(p).shape[0]
    assert total > 0
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--format", choices=("flac", "wav"), default="flac")
    ap.add_argument("--sample-rate", type=int, default=32000)
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--repeats", type=int, default=2, help="timed epochs per variant (best is reported)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "audio"
        folder.mkdir()
        paths = make_files(folder, args.n, args.seconds, args.format)
        sr, ms = args.sample_rate, args.max_seconds
        # Warm the OS page cache so both variants read from memory, as in epochs 2+ of training.
        epoch(lambda p: load_audio(p, sr, max_seconds=ms), paths)
        plain = min(epoch(lambda p: load_audio(p, sr, max_seconds=ms), paths) for _ in range(args.repeats))
        cache = AudioCache(Path(d) / "cache")
        first = epoch(lambda p: cache.load(p, sr, ms), paths)
        cached = min(epoch(lambda p: cache.load(p, sr, ms), paths) for _ in range(args.repeats))
        assert cache.misses == args.n and cache.hits == args.n * args.repeats
        size = sum(f.stat().st_size for f in (Path(d) / "cache").rglob("*.npy"))
        src = sum(p.stat().st_size for p in paths)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, "
          f"python {platform.python_version()}, numpy {np.__version__}, libsndfile {sf.__libsndfile_version__}")
    print(f"files: {args.n} x {args.seconds:g} s stereo 44.1 kHz {args.format} -> {sr} Hz mono"
          f"{'' if ms is None else f', max_seconds={ms:g}'}")
    print(f"no cache (decode+resample): {plain:.3f} s/epoch ({plain / args.n * 1e3:.1f} ms/file)")
    print(f"cache, first epoch (decode+store): {first:.3f} s")
    print(f"cache, later epochs: {cached:.3f} s/epoch ({cached / args.n * 1e3:.2f} ms/file)")
    print(f"speedup later epochs vs no cache: {plain / cached:.1f}x")
    print(f"source {src / 2**20:.1f} MiB, cache {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
