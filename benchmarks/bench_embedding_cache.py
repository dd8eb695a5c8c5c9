"""Epoch time with and without the embedding cache for frozen encoders (frozen cnn + frozen MiniLM).

Runs ``bench run`` three times on the same synthetic set: cache off, cache on with an empty cache
(computes the entries before epoch 1), cache on again (all hits). Prints a markdown table of the
per-epoch seconds the harness records (training + validation of that epoch), the run's total
wall time and the test metrics, plus the machine and load it ran under.

    .venv/bin/python benchmarks/bench_embedding_cache.py --n-train 200 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> str:
    """CPU model, core count and load average, for the results file."""
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average {load}"


def bench_run(workdir: Path, name: str, common: list[str], extra: list[str], env: dict[str, str]) -> dict:
    """One ``bench run`` in a fresh results/runs directory; returns the result JSON plus wall seconds."""
    results = workdir / name / "results"
    command = [sys.executable, "-m", "bench", "run", *common, "--results-dir", str(results),
               "--runs-dir", str(workdir / name / "runs"), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    (path,) = results.glob("*.json")
    result = json.loads(path.read_text())
    result["_wall_s"] = wall
    result["_command"] = " ".join(["bench", "run", *common, *extra])
    return result


FROZEN = {
    "cnn": ["--set", "cnn.freeze=true"],
    "passt": ["--encoder", "passt", "--set", "passt.freeze=true", "--set", "passt.pretrained=false"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-eval", type=int, default=50, help="clips in val and in test")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir (also the BENCH_CACHE)")
    parser.add_argument("--encoder", choices=["cnn", "passt"], default="cnn",
                        help="the frozen audio encoder (passt: random-init PaSST, no weights needed)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-embcache-"))
    env = {**os.environ, "BENCH_CACHE": str(workdir / "cache")}
    common = ["--set", f"synthetic.n_train={args.n_train}", "--set", f"synthetic.n_val={args.n_eval}",
              "--set", f"synthetic.n_test={args.n_eval}", *FROZEN[args.encoder], "--epochs", str(args.epochs),
              "--batch-size", str(args.batch_size), "--num-workers", "0", "--device", "cpu", "--no-leaderboard"]
    print(f"machine before: {machine()}", flush=True)
    runs = {}
    for name, extra in (("cache off", ["--set", "train.embedding_cache=false"]), ("cache on, cold", []),
                        ("cache on, warm", [])):
        runs[name] = bench_run(workdir, name.replace(" ", "_").replace(",", ""), common, extra, env)
        print(f"{name}: {[round(h['seconds'], 2) for h in runs[name]['history']]} s/epoch, "
              f"{runs[name]['_wall_s']:.1f} s wall", flush=True)
    print(f"machine after: {machine()}\n")
    base = runs["cache off"]
    header = "| run | " + " | ".join(f"epoch {i + 1} s" for i in range(args.epochs))
    print(header + " | epoch speed-up vs off | total_s (in run) | wall s (process) | test t2a mAP@10 |")
    print("|---" * (args.epochs + 5) + "|")
    for name, result in runs.items():
        seconds = [h["seconds"] for h in result["history"]]
        ratios = "/".join(f"{b['seconds'] / s:.1f}x" for b, s in zip(base["history"], seconds))
        print(f"| {name} | " + " | ".join(f"{s:.2f}" for s in seconds)
              + f" | {ratios} | {result['timings']['total_s']:.1f} | {result['_wall_s']:.1f} | "
              f"{result['metrics']['t2a']['mAP@10']:.4f} |")
    print("\ncommands:")
    for result in runs.values():
        print(f"  BENCH_CACHE={workdir / 'cache'} {result['_command']} --results-dir ... --runs-dir ...")


if __name__ == "__main__":
    main()
