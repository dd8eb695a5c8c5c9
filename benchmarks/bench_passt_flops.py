"""PaSST's cost per training clip: FLOPs counted from the model, and time on this CPU.

Builds bench's ``passt`` encoder (``passt_s_p16_s16_128_ap468``, ``pretrained=False``, the salsa
recipe's patchout 15/2) plus a 1024-d projection, and counts with ``torch.utils.flop_counter``
the floating-point operations of one 10 s clip at 32 kHz: a training forward+backward (patchout,
mel jitter and masks on) and an evaluation forward. Then times a training forward+backward of a
batch on this CPU. The counter counts matrix multiplies and convolutions (2 FLOPs per
multiply-add); elementwise work (softmax, GELU, layer norm, the STFT front end) is not counted.

    python benchmarks/bench_passt_flops.py --batch 2 --repeats 2 --out benchmarks/passt_flops_results.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from bench.core.registry import get_registry

    torch.manual_seed(0)
    encoder = get_registry().build("audio_encoder", "passt", {"pretrained": False, "s_patchout_t": 15,
                                                              "s_patchout_f": 2})
    head = torch.nn.Linear(int(encoder.embed_dim), 1024)
    params = sum(p.numel() for p in encoder.parameters())
    wave = torch.randn(1, 320_000).clamp(-1, 1) * 0.1
    lengths = torch.tensor([320_000])

    def train_step(x: torch.Tensor, n: torch.Tensor) -> None:
        encoder.train()
        head(encoder(x, n)).square().mean().backward()

    with FlopCounterMode(display=False) as counter:
        train_step(wave, lengths)
    train_flops = counter.get_total_flops()
    encoder.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        head(encoder(wave, lengths))
    eval_flops = counter.get_total_flops()

    batch = wave.repeat(args.batch, 1)
    batch_lengths = lengths.repeat(args.batch)
    train_step(batch, batch_lengths)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        train_step(batch, batch_lengths)
        times.append(time.perf_counter() - start)
    per_clip = statistics.median(times) / args.batch
    lines = [
        "## PaSST cost per training clip (FLOPs and CPU time)",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPU(s) shared with other jobs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average (1 min) {os.getloadavg()[0]:.1f} at the end",
        f"- Command: `python benchmarks/bench_passt_flops.py --batch {args.batch} --repeats {args.repeats}`",
        f"- Model: bench's passt encoder, passt_s_p16_s16_128_ap468, pretrained=False, patchout 15/2, "
        f"{params / 1e6:.1f} M parameters, plus a 1024-d projection; one 10 s clip at 32 kHz",
        "- FLOPs: torch.utils.flop_counter (matmuls and convolutions, 2 per multiply-add; elementwise ops excluded)",
        "",
        "| pass | GFLOPs per clip |",
        "|---|---|",
        f"| training forward+backward (patchout on) | {train_flops / 1e9:.1f} |",
        f"| evaluation forward (no patchout) | {eval_flops / 1e9:.1f} |",
        "",
        f"Training forward+backward on this CPU: {per_clip:.2f} s per clip (median of {args.repeats} batches of "
        f"{args.batch}, after one warm-up) = {train_flops / per_clip / 1e9:.1f} GFLOP/s achieved.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
