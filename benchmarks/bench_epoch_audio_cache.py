"""Epoch time of a real training run with and without the decoded-audio cache.

Generates a Clotho-layout dataset of long 44.1 kHz stereo WAV clips (where decoding and
resampling to the encoder's 16 kHz cost the most), then runs the default training setup
(``cnn`` + frozen ``minilm`` + ``ntxent``, default batch size and workers) twice through the
CLI: once plain and once with ``--set train.audio_cache=true``. Each run gets its own empty
``BENCH_CACHE``, so the cached run pays for filling the cache in epoch 1. Per-epoch seconds
(training + validation, the result JSON's ``history[i].seconds``) and the speedup are printed
as a markdown table. Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_epoch_audio_cache.py --root /tmp/clotho_bench \\
        --n-train 200 --n-eval 20 --epochs 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

FOLDERS = {"train": "development", "val": "validation", "test": "evaluation"}
SR = 44100


def make_clotho(root: Path, n: dict[str, int], min_s: float, max_s: float) -> int:
    """Write the layout (skipped when it is already complete); returns total bytes of audio."""
    rng = np.random.default_rng(0)
    total = 0
    for split, folder in FOLDERS.items():
        rows = []
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n[split]):
            name = f"{folder}_{i:04d}.wav"
            path = root / folder / name
            seconds = float(rng.uniform(min_s, max_s))
            if not path.exists():
                t = np.arange(int(SR * seconds)) / SR
                # Noise + a per-clip tone, stereo with a small inter-channel delay: decodes and
                # resamples like a field recording (full-band content).
                x = 0.1 * rng.standard_normal(t.size).astype(np.float32)
                x += (0.2 * np.sin(2 * np.pi * (150 + 7 * i) * t)).astype(np.float32)
                data = np.stack([x, np.roll(x, 5)], axis=1)
                tmp = path.with_suffix(".tmp.wav")
                sf.write(tmp, data, SR, subtype="PCM_16")
                os.replace(tmp, path)
            total += path.stat().st_size
            rows.append([name] + [f"{split} recording {i} with a tone near {150 + 7 * i} hertz, take {j}"
                                  for j in range(5)])
        with open(root / f"clotho_captions_{folder}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["file_name"] + [f"caption_{j}" for j in range(1, 6)])
            w.writerows(rows)
    return total


def warm_page_cache(root: Path) -> None:
    """Read every file once so neither run pays for cold disk reads."""
    for p in sorted(root.rglob("*.wav")):
        with open(p, "rb") as fh:
            while fh.read(1 << 22):
                pass


def run(args: argparse.Namespace, cached: bool, work: Path) -> tuple[dict, list[str], float]:
    tag = "cached" if cached else "plain"
    cache_dir = work / f"cache_{tag}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    results = work / f"results_{tag}"
    shutil.rmtree(results, ignore_errors=True)
    cmd = [str(Path(sys.executable).with_name("bench")), "run", "--dataset", "clotho",
           "--set", f"clotho.root={args.root}",
           "--epochs", str(args.epochs), "--results-dir", str(results), "--runs-dir", str(work / f"runs_{tag}"),
           "--no-leaderboard", "--force", *args.extra]
    if cached:
        cmd += ["--set", "train.audio_cache=true"]
    env = {**os.environ, "BENCH_CACHE": str(cache_dir)}
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - started
    (result_path,) = results.glob("*.json")
    result = json.loads(result_path.read_text())
    if cached:
        n_entries = len(list((cache_dir / "audio").rglob("*.npy")))
        size = sum(p.stat().st_size for p in (cache_dir / "audio").rglob("*.npy"))
        result["_cache"] = {"entries": n_entries, "mib": size / 2**20}
    return result, cmd, wall


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("/tmp/clotho_bench"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/clotho_bench_work"))
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--n-eval", type=int, default=20, help="clips in validation and in evaluation")
    ap.add_argument("--min-seconds", type=float, default=15.0)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--order", choices=["plain-first", "cached-first"], default="plain-first")
    ap.add_argument("extra", nargs="*", help="more `bench run` arguments (after --)")
    args = ap.parse_args()

    n = {"train": args.n_train, "val": args.n_eval, "test": args.n_eval}
    t0 = time.perf_counter()
    size = make_clotho(args.root, n, args.min_seconds, args.max_seconds)
    print(f"dataset: {sum(n.values())} clips, {size / 2**20:.0f} MiB WAV ({time.perf_counter() - t0:.0f} s to write)",
          flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    warm_page_cache(args.root)

    order = [False, True] if args.order == "plain-first" else [True, False]
    runs = {}
    for cached in order:
        load_before = load_average()
        result, cmd, wall = run(args, cached, args.work)
        runs[cached] = (result, cmd, wall, load_before, load_average())

    print(f"\nmachine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    for cached in order:
        result, cmd, wall, before, after = runs[cached]
        print(f"\n{'cached' if cached else 'plain'}: load average before {before}, after {after}; wall {wall:.1f} s")
        print("  " + " ".join(c if " " not in c else repr(c) for c in cmd))
    print("\n| epoch | no cache (s) | audio cache (s) | speedup |\n|---|---|---|---|")
    plain, cached = runs[False][0], runs[True][0]
    for a, b in zip(plain["history"], cached["history"]):
        print(f"| {a['epoch']} | {a['seconds']:.1f} | {b['seconds']:.1f} | {a['seconds'] / b['seconds']:.2f}x |")
    print(f"| train_s total | {plain['timings']['train_s']:.1f} | {cached['timings']['train_s']:.1f} | |")
    print(f"| eval_s total | {plain['timings']['eval_s']:.1f} | {cached['timings']['eval_s']:.1f} | |")
    print(f"| run total_s | {plain['timings']['total_s']:.1f} | {cached['timings']['total_s']:.1f} | |")
    print(f"\ncache: {cached['_cache']['entries']} entries, {cached['_cache']['mib']:.0f} MiB")
    print(f"test t2a mAP@10: plain {plain['metrics']['t2a']['mAP@10']:.4f}, "
          f"cached {cached['metrics']['t2a']['mAP@10']:.4f}")
    print(f"train loss per epoch: plain {[round(h['train_loss'], 4) for h in plain['history']]}, "
          f"cached {[round(h['train_loss'], 4) for h in cached['history']]}")


if __name__ == "__main__":
    main()
