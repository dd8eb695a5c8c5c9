"""What full-file validation costs: 200 Clotho-like clips (15-30 s, 44.1 kHz, stereo, PCM_16 WAV).

Measures, on files in the page cache (the OS cache is not dropped on a shared machine):
- the old check (header + the first second decoded) for comparison;
- full validation (every sample decoded in blocks, judged and hashed), first run;
- the same validation again, answered by the manifest cache (size + mtime of every file);
- the content hash's share: a sequential whole-file scan with and without hashing;
- memory: the Python-visible peak (tracemalloc, which numpy reports to) while scanning one clip
  and one 10-minute file, to show the block-wise decode does not grow with the file.

Usage: python benchmarks/bench_validate.py [--n 200] [--data DIR] [--out benchmarks/validate_results.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.data.audio import audio_info, load_audio, scan_audio
from bench.data.items import Item
from bench.data.validate import validate_split_cached

SR = 44100


def make_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"clip_{i:04d}.wav"
        if not path.exists():
            seconds = float(rng.uniform(15, 30))
            data = rng.integers(-8000, 8000, size=(int(seconds * SR), 2), dtype=np.int16)
            sf.write(path, data, SR, subtype="PCM_16")
        paths.append(path)
    return paths


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "bench_validate_data"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    paths = make_files(Path(args.data), args.n)
    total_bytes = sum(p.stat().st_size for p in paths)
    total_seconds = sum(audio_info(p).duration for p in paths)
    items = [Item(audio_id=p.name, audio_path=p, captions=("a sound",)) for p in paths]
    for p in paths:  # warm the page cache once, so every timing below sees the same state
        p.read_bytes()
    load = os.getloadavg()[0]

    old, _ = timed(lambda: [(audio_info(p), load_audio(p, audio_info(p).sample_rate, max_seconds=1.0)) for p in paths])
    with tempfile.TemporaryDirectory() as cache:
        first, report = timed(lambda: validate_split_cached(items, cache_dir=cache, split="train", sample_rate=32000))
        again, cached = timed(lambda: validate_split_cached(items, cache_dir=cache, split="train", sample_rate=32000))
    assert report.ok and cached.from_cache and not report.from_cache, report.summary()
    plain, _ = timed(lambda: [scan_audio(p, hash_content=False) for p in paths])
    hashed, _ = timed(lambda: [scan_audio(p) for p in paths])
    long_path = Path(args.data) / "long_10min.wav"
    if not long_path.exists():
        sf.write(long_path, np.random.default_rng(1).integers(-8000, 8000, size=(600 * SR, 2), dtype=np.int16), SR,
                 subtype="PCM_16")
    clip_peak = peak_mib(lambda: scan_audio(paths[0]))
    long_peak = peak_mib(lambda: scan_audio(long_path))

    rate = total_seconds / 3600
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, load average {load:.1f} at start (shared machine: times are noisy)",
        f"Command: `python benchmarks/bench_validate.py --n {args.n}"
        f"{' --out ' + args.out if args.out else ''}`",
        f"Data: {args.n} WAV files, 15-30 s, 44.1 kHz stereo PCM_16: {rate:.2f} h of audio, "
        f"{total_bytes / 2**20:.0f} MiB, in the page cache",
        "",
        "| what | time | per hour of audio |",
        "|---|---|---|",
        f"| old check: header + first 1 s decoded | {old:.1f} s | {old / rate:.1f} s |",
        f"| full validation, first run (decode all, judge, hash; {os.cpu_count()} cores, threads) | {first:.1f} s | "
        f"{first / rate:.1f} s |",
        f"| full validation again (manifest cache: size + mtime) | {again:.3f} s | {again / rate:.3f} s |",
        f"| whole-file scan, one thread, without hashing | {plain:.1f} s | {plain / rate:.1f} s |",
        f"| whole-file scan, one thread, with the content hash | {hashed:.1f} s | {hashed / rate:.1f} s |",
        "",
        f"Content-hash overhead: {100 * (hashed - plain) / plain:+.0f} % of a sequential scan "
        f"({hashed - plain:+.1f} s for {rate:.2f} h). Python-visible peak memory while scanning: "
        f"{clip_peak:.1f} MiB for a {audio_info(paths[0]).duration:.0f} s clip, {long_peak:.1f} MiB for a 10-minute "
        "file (blocks of 65536 frames; it does not grow with the file).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
