"""Where the time of the default run goes: data loading, forward, backward, evaluation.

Builds the default combination (or the one given) exactly as ``bench run`` does, then times a
number of training steps phase by phase and one validation pass. Not a test: it writes a
markdown section with the machine and the command.

    python benchmarks/bench_train.py --steps 20 --out benchmarks/train_results.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "?"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"load average {load:.1f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from bench.core.config import build_grid, parse_set_options
    from bench.core.registry import get_registry
    from bench.runs.run import build_components, load_splits
    from bench.training.trainer import Trainer, seed_everything

    registry = get_registry()
    overrides = {} if args.num_workers is None else {"num_workers": args.num_workers}
    (cfg,) = build_grid(datasets=["synthetic"], encoders=["cnn"], text_encoders=["minilm"], losses=["ntxent"],
                        seeds=[0], set_options=parse_set_options(args.set), train_overrides=overrides,
                        registry=registry)
    started = time.perf_counter()
    components = build_components(cfg, registry)
    splits, _, _ = load_splits(components.dataset, int(components.audio_encoder.sample_rate))
    setup_s = time.perf_counter() - started
    run_dir = Path("/tmp/bench-train-benchmark")
    run_dir.mkdir(exist_ok=True)
    started = time.perf_counter()
    trainer = Trainer.build(cfg, components, splits, run_dir)  # includes the frozen text encoder's cache
    cache_s = time.perf_counter() - started

    seed_everything(0, 0)
    trainer.model.train()
    times = {"data": 0.0, "forward": 0.0, "backward": 0.0}
    pairs = 0
    iterator = iter(trainer.train_loader)
    steps = min(args.steps, trainer.steps_per_epoch)
    for step in range(steps):
        t0 = time.perf_counter()
        batch = next(iterator)
        t1 = time.perf_counter()
        audio_cached = trainer._cached_rows("audio", batch.item_index)
        text_cached = trainer._cached_rows("text", batch.pair_index)
        audio, text = trainer.forward_model(batch.waveforms, batch.lengths, batch.captions, audio_cached, text_cached)
        loss = trainer.loss(audio, text, batch)
        t2 = time.perf_counter()
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        t3 = time.perf_counter()
        if step > 0:  # the first step includes worker start-up
            times["data"] += t1 - t0
            times["forward"] += t2 - t1
            times["backward"] += t3 - t2
            pairs += len(batch)
    del iterator
    train_s = sum(times.values())
    t0 = time.perf_counter()
    metrics, _, _ = trainer.evaluate("val")
    eval_s = time.perf_counter() - t0
    val = splits["val"]
    rows = [
        ("setup: dataset (cached), validation, encoders", f"{setup_s:.1f} s"),
        ("frozen text encoder: captions embedded once (or read from cache)", f"{cache_s:.1f} s"),
        (f"training throughput ({steps - 1} steps of {cfg.train.batch_size})", f"{pairs / train_s:.1f} pairs/s"),
        ("  waiting for data", f"{100 * times['data'] / train_s:.0f} %"),
        ("  forward (audio encoder, projections, loss)", f"{100 * times['forward'] / train_s:.0f} %"),
        ("  backward and optimiser step", f"{100 * times['backward'] / train_s:.0f} %"),
        (f"evaluation of val ({val.n_audios} clips, {val.n_captions} captions)",
         f"{eval_s:.1f} s = {val.n_audios / eval_s:.1f} clips/s"),
        ("steps per epoch / estimated epoch time",
         f"{trainer.steps_per_epoch} / {trainer.steps_per_epoch * cfg.train.batch_size / (pairs / train_s):.0f} s"),
    ]
    command = "python benchmarks/bench_train.py " + " ".join(sys.argv[1:])
    text = [f"Machine: {machine()}", f"Command: `{command}`", f"Settings: {cfg.train}", "",
            "| what | measured |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    text.append(f"\nval t2a mAP@10 after these {steps} steps: {metrics['t2a']['mAP@10']:.4f} (chance about 0.015)")
    output = "\n".join(text) + "\n"
    print(output)
    if args.out:
        args.out.write_text(output)


if __name__ == "__main__":
    main()
