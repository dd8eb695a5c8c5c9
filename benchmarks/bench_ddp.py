"""Two gloo CPU processes (torchrun) against one process with the same global batch.

For each audio-encoder setting (frozen cnn: only projections train, so the runs should agree up to
float rounding; trainable cnn: BatchNorm statistics are per rank, so they may not) it runs
``bench run`` under ``torch.distributed.run --nproc_per_node=2`` with per-process batch B and
plainly with batch 2B, then prints the metric deltas and wall times as a markdown table.

    .venv/bin/python benchmarks/bench_ddp.py --n-train 32 --epochs 2 --batch-size 8
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embedding_cache import machine  # noqa: E402


def run(command: list[str], out: Path, env: dict[str, str]) -> dict:
    started = time.perf_counter()
    subprocess.run(command + ["--results-dir", str(out / "results"), "--runs-dir", str(out / "runs")],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    (path,) = (out / "results").glob("*.json")
    result = json.loads(path.read_text())
    result["_wall_s"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="per-process batch of the 2-process run")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--settings", default="frozen,trainable")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    env = {**os.environ, "BENCH_CACHE": str(workdir / "cache"), "OMP_NUM_THREADS": "1"}
    common = ["run", "--set", f"synthetic.n_train={args.n_train}", "--set", "synthetic.n_val=16",
              "--set", "synthetic.n_test=16", "--epochs", str(args.epochs), "--num-workers", "0",
              "--device", "cpu", "--no-leaderboard"]
    encoders = {"frozen": ["--set", "cnn.freeze=true"],
                "trainable": ["--set", "cnn.channels=32,32", "--set", "cnn.n_mels=32", "--set", "cnn.crop_seconds=4.0"]}
    print(f"machine before: {machine()}", flush=True)
    rows = []
    for name in args.settings.split(","):
        two_cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "bench",
                   *common, *encoders[name], "--batch-size", str(args.batch_size)]
        one_cmd = [sys.executable, "-m", "bench", *common, *encoders[name], "--batch-size", str(2 * args.batch_size)]
        # The first run of a setting fills the synthetic and embedding caches; run 1 process first
        # and then both timed runs, so neither pays for it.
        run(one_cmd, workdir / f"{name}-warmup", env)
        two = run(two_cmd, workdir / f"{name}-two", env)
        one = run(one_cmd, workdir / f"{name}-one", env)
        deltas = {f"{d} {m}": abs(two["metrics"][d][m] - one["metrics"][d][m])
                  for d in ("t2a", "a2t") for m in ("mAP@10", "R@1", "R@10")}
        loss_delta = max(abs(a["train_loss"] - b["train_loss"]) for a, b in zip(two["history"], one["history"]))
        rows.append((name, two, one, deltas, loss_delta))
        print(f"{name}: max metric delta {max(deltas.values()):.2e}, max train-loss delta {loss_delta:.2e}, "
              f"wall 2 proc {two['_wall_s']:.1f} s, 1 proc {one['_wall_s']:.1f} s", flush=True)
        print("  2 proc:", " ".join(two_cmd[1:]), flush=True)
        print("  1 proc:", " ".join(one_cmd[1:]), flush=True)
    print(f"machine after: {machine()}\n")
    print("| audio encoder | max abs metric delta | max abs train-loss delta | t2a mAP@10 2 proc / 1 proc "
          "| train_s 2 proc / 1 proc | wall s 2 proc / 1 proc |")
    print("|---|---|---|---|---|---|")
    for name, two, one, deltas, loss_delta in rows:
        print(f"| {name} cnn | {max(deltas.values()):.2e} | {loss_delta:.2e} | "
              f"{two['metrics']['t2a']['mAP@10']:.4f} / {one['metrics']['t2a']['mAP@10']:.4f} | "
              f"{two['timings']['train_s']:.1f} / {one['timings']['train_s']:.1f} | "
              f"{two['_wall_s']:.1f} / {one['_wall_s']:.1f} |")


if __name__ == "__main__":
    main()
