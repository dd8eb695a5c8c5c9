"""Does bench train and evaluate correctly on a GPU? A check to run on a CUDA machine (and on the CPU in CI).

On CUDA it:

1. trains a few steps of the default recipe (synthetic, cnn, MiniLM, NT-Xent) and of a PaSST
   recipe (PaSST from scratch, MiniLM, NT-Xent) through bench's own trainer, with AMP bf16 and
   fp16 (fp16 with the gradient scaler): every loss must be finite, and the loss of the trained
   batch, computed in eval mode (no dropout, patchout or random crop), lower after than before;
2. evaluates the same embeddings on CUDA and on the CPU: the ranks must be identical, or the
   report counts the queries whose rank differs and the largest score difference (float
   summation order differs between the devices, so near-ties may swap);
3. reports the peak memory and steps per second of one training step on the salsa recipe's
   batch (bench/presets/salsa-clotho.toml: 64 x 10 s at 32 kHz through PaSST passt_s_p16_s16_128_ap468
   with patchout 15/2, NT-Xent, AdamW), per AMP dtype.

Without a GPU it says so, runs step 1 with CPU autocast (bf16), the path bench's ``train.amp=bf16``
takes on a CPU, on tiny data, and exits 0 if that passes; it lists what it could not check.
Each recipe trains on a tiny synthetic split (8 clips, one batch per epoch), so a few epochs
are a few steps on one repeated batch: the loss must fall.

    python benchmarks/gpu_check.py [--device auto|cpu|cuda] [--steps 6] [--out report.md]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

TINY = {"synthetic": {"n_train": 8, "n_val": 8, "n_test": 8}}
RECIPES: dict[str, dict[str, Any]] = {
    "default": {"encoder": "cnn", "set": {}, "cpu_set": {}, "head_lr": 1e-3},
    # Full PaSST from scratch; on the CPU with 0.5 s windows (the passt-synthetic-smoke preset) to stay small.
    "passt": {"encoder": "passt", "set": {"passt": {"pretrained": False}},
              # (SpecAugment's default time mask, up to 192 frames, would blank a 50-frame window.)
              "cpu_set": {"passt": {"pretrained": False, "window_seconds": 0.5, "max_seconds": 0.5,
                                    "s_patchout_t": 1, "timem": 0, "freqm": 0}},
              "head_lr": 5e-5},  # a transformer from scratch diverges at the cnn's 1e-3
}


def _config(recipe: str, amp: str, device: torch.device, steps: int, registry: Any) -> Any:
    from bench.core.config import build_grid

    spec = RECIPES[recipe]
    options = {**TINY, **(spec["cpu_set"] if device.type == "cpu" else spec["set"])}
    (cfg,) = build_grid(datasets=["synthetic"], encoders=[spec["encoder"]], text_encoders=["minilm"],
                        losses=["ntxent"], seeds=[0], set_options=options, registry=registry,
                        train_overrides={"amp": amp, "epochs": steps, "batch_size": 8, "captions_per_audio": 1,
                                         "num_workers": 0, "warmup_epochs": 0.0, "lr": 1e-4, "head_lr": spec["head_lr"],
                                         "embedding_cache": False},
                        device=str(device))
    return cfg


def train_steps(recipe: str, amp: str, device: torch.device, steps: int, work: Path) -> dict[str, Any]:
    """``steps`` one-batch epochs of ``recipe`` through bench's Trainer; losses, the trainer and its timing."""
    from bench.core.registry import get_registry
    from bench.runs.run import build_components, load_splits
    from bench.training.trainer import Trainer

    registry = get_registry()
    cfg = _config(recipe, amp, device, steps, registry)
    components = build_components(cfg, registry)
    splits, _, _ = load_splits(components.dataset, int(components.audio_encoder.sample_rate))
    trainer = Trainer.build(cfg, components, splits, work / f"{recipe}-{amp}")
    assert trainer.amp == {"bf16": torch.bfloat16, "fp16": torch.float16}[amp], trainer.amp
    trainer.sampler.set_epoch(0)
    batch = next(iter(trainer.train_loader)).to(device)  # the one batch of every epoch (8 pairs)
    before = batch_loss(trainer, batch)
    losses = []
    started = time.perf_counter()
    for epoch in range(steps):
        losses.append(trainer.train_epoch(epoch))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    after = batch_loss(trainer, batch)
    # Training losses are noisy (random crops, patchout, dropout); the same batch in eval mode is not.
    ok = all(math.isfinite(v) for v in [*losses, before, after]) and after < before
    return {"losses": losses, "before": before, "after": after, "ok": ok, "trainer": trainer,
            "steps_s": steps / seconds, "scaler": trainer.scaler.is_enabled()}


def batch_loss(trainer: Any, batch: Any) -> float:
    """The loss of ``batch`` in eval mode under the trainer's autocast: deterministic, so comparable."""
    trainer.model.eval()
    with torch.no_grad(), trainer.autocast():
        audio, text = trainer.forward_model(batch.waveforms, batch.lengths, batch.captions)
    with torch.no_grad():
        return float(trainer.loss(audio.float(), text.float(), batch))


def compare_devices(trainer: Any) -> dict[str, Any]:
    """The same embeddings ranked on the trainer's device and on the CPU."""
    from bench.evaluation.metrics import embedding_ranks

    _, audio, text = trainer.evaluate("test")
    split = trainer.splits["test"]
    on_device = embedding_ranks(audio, text, split.audio_of_caption)
    on_cpu = embedding_ranks(audio.float().cpu(), text.float().cpu(), split.audio_of_caption)
    differing = 0
    for key in on_cpu:
        for a, b in zip(on_device[key], on_cpu[key]):
            differing += int((a.cpu() != b).sum())
    a32, t32 = audio.float(), text.float()
    gap = float((a32 @ t32.T).cpu().sub(a32.cpu() @ t32.cpu().T).abs().max())
    return {"differing": differing, "max_score_difference": gap}


def salsa_batch(device: torch.device, amp: str, steps: int) -> dict[str, Any]:
    """Peak memory and steps/s of one training step on the salsa recipe's batch (64 x 10 s, PaSST)."""
    from bench.core.registry import get_registry
    from bench.data.batch import Batch
    from bench.model.devices import autocast_factory
    from bench.model.dual_encoder import DualEncoder

    registry = get_registry()
    audio_encoder = registry.build("audio_encoder", "passt", {"pretrained": False, "s_patchout_t": 15,
                                                               "s_patchout_f": 2})
    text_name = "minilm"  # roberta-large needs a download; the text tower's share is stated in the report
    text_encoder = registry.build("text_encoder", text_name, {})
    loss = registry.build("loss", "ntxent", {"tau": 0.05}).to(device)
    model = DualEncoder(audio_encoder, text_encoder, 1024).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad] + list(loss.parameters()),
                                  lr=2e-5)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    autocast = autocast_factory(device, dtype)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    n = 64
    waveforms = torch.randn(n, 320_000, device=device).clamp_(-1, 1) * 0.1
    lengths = torch.full((n,), 320_000, dtype=torch.long, device=device)
    captions = [f"a sound number {i} with some words in it" for i in range(n)]
    ids = torch.arange(n, device=device)
    batch = Batch(waveforms=waveforms, lengths=lengths, captions=captions, audio_ids=ids, item_index=ids,
                  caption_index=torch.zeros_like(ids), pair_index=ids)
    torch.cuda.reset_peak_memory_stats(device)
    timings = []
    for _ in range(steps + 2):
        torch.cuda.synchronize(device)
        started = time.perf_counter()
        with autocast():
            audio = model.project_audio(model.audio_features(waveforms, lengths))
            text = model.project_text(model.text_features(captions))
        value = loss(audio.float(), text.float(), batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(value).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - started)
    steady = sorted(timings[2:])[len(timings[2:]) // 2]
    return {"peak_gib": torch.cuda.max_memory_allocated(device) / 2**30, "steps_s": 1.0 / steady,
            "loss": float(value), "text": text_name}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--steps", type=int, default=6, help="training steps per recipe and precision")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    lines = [f"## GPU check ({'CUDA: ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'})",
             "", f"- Command: `python benchmarks/gpu_check.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             f"- torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}", ""]
    not_checked = []
    if device.type != "cuda":
        lines.append("No CUDA device: running the CPU autocast (bf16) path only.")
        not_checked = ["AMP fp16 with the gradient scaler (a CUDA path)", "CUDA vs CPU ranking of the same embeddings",
                       "peak GPU memory and steps/s on the salsa recipe's batch", "pinned-memory host-to-device copies"]
    amps = ["bf16", "fp16"] if device.type == "cuda" else ["bf16"]
    failures = 0
    lines += ["", "| recipe | amp | grad scaler | training losses (one per step) | batch loss before -> after "
              "(eval mode) | finite and falling | steps/s |", "|---|---|---|---|---|---|---|"]
    trainers = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-check-") as tmp:
        for recipe in RECIPES:
            for amp in amps:
                out = train_steps(recipe, amp, device, args.steps, Path(tmp))
                failures += not out["ok"]
                trainers.append(out["trainer"])
                losses = ", ".join(f"{v:.4f}" for v in out["losses"])
                lines.append(f"| {recipe} | {amp} | {'on' if out['scaler'] else 'off'} | {losses} | "
                             f"{out['before']:.4f} -> {out['after']:.4f} | {'yes' if out['ok'] else 'NO'} | "
                             f"{out['steps_s']:.2f} |")
        if device.type == "cuda":
            lines += ["", "| recipe | ranks differing CUDA vs CPU | largest score difference |", "|---|---|---|"]
            for recipe, trainer in zip([r for r in RECIPES for _ in amps], trainers):
                found = compare_devices(trainer)
                lines.append(f"| {recipe} | {found['differing']} | {found['max_score_difference']:.2e} |")
            lines += ["", "Salsa recipe's batch (64 x 10 s at 32 kHz, PaSST from scratch, AdamW):", "",
                      "| amp | peak memory (GiB) | steps/s | text tower |", "|---|---|---|---|"]
            for amp in amps:
                found = salsa_batch(device, amp, steps=5)
                failures += not math.isfinite(found["loss"])
                lines.append(f"| {amp} | {found['peak_gib']:.1f} | {found['steps_s']:.2f} | {found['text']} "
                             "(roberta-large adds its own 355 M parameters) |")
    if not_checked:
        lines += ["", "Not checked without a GPU: " + "; ".join(not_checked) + "."]
    lines += ["", "Result: " + ("all checks passed" if not failures else f"{failures} check(s) FAILED"), ""]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
