"""Throughput of the ``passt`` audio encoder (random init, arch passt_s_p16_s16_128_ap468).

Measures clips/s for an evaluation forward pass (no grad) and a training forward+backward pass
(patchout, mel jitter and masks on) at a fixed batch of fixed-length clips, and the share of
that time spent in the front end (pre-emphasis, STFT, mel, log), timed on its own on the same
windows. Prints a markdown table. Not a test.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_passt.py --batch 4 --seconds 10 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable


def _timeit(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> list[float]:
    fn()  # warm-up: allocator, first-run code paths
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="passt_s_p16_s16_128_ap468")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from bench_plugins.encoders.passt import build_passt

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    start = time.perf_counter()
    enc = build_passt(arch=args.arch, pretrained=False).to(device)
    build_s = time.perf_counter() - start
    n_params = sum(p.numel() for p in enc.parameters())

    torch.manual_seed(0)
    samples = int(args.seconds * enc.sample_rate)
    x = (torch.randn(args.batch, samples) * 0.1).to(device)
    lengths = torch.full((args.batch,), samples, dtype=torch.long, device=device)
    windows = -(-samples // enc.window_samples)  # per clip
    win = torch.nn.functional.pad(x, (0, windows * enc.window_samples - samples)).reshape(-1, enc.window_samples)

    def forward() -> None:
        with torch.no_grad():
            enc(x, lengths)

    def train_step() -> None:
        enc.zero_grad(set_to_none=True)
        enc(x, lengths).pow(2).mean().backward()

    def frontend() -> None:
        with torch.no_grad():
            enc.frontend(win)

    enc.eval()
    fwd = _timeit(forward, args.repeats, sync)
    fe_eval = _timeit(frontend, args.repeats, sync)
    enc.train()
    trn = _timeit(train_step, args.repeats, sync)
    fe_train = _timeit(frontend, args.repeats, sync)

    def row(name: str, times: list[float], fe: list[float]) -> str:
        med = statistics.median(times)
        share = 100.0 * statistics.median(fe) / med
        return (
            f"| {name} | {args.batch / med:.2f} | {med:.2f} | {min(times):.2f} | {max(times):.2f} | {share:.1f} % |"
        )

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"arch {args.arch}, random init, {n_params / 1e6:.1f} M parameters, built in {build_s:.1f} s")
    print(f"batch {args.batch} x {args.seconds:g} s clips = {args.batch * windows} windows of {enc.crop_seconds:g} s")
    print(f"device {device} ({cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}), "
          f"torch {torch.__version__}, load average before {os.getloadavg()[0]:.2f}")
    print()
    print("| pass | clips/s | median s/batch | min s | max s | front-end share |")
    print("|---|---|---|---|---|---|")
    print(row("forward (eval, no grad)", fwd, fe_eval))
    print(row("forward+backward (train)", trn, fe_train))
    print(f"\nfront end alone per batch: eval {statistics.median(fe_eval) * 1000:.0f} ms, "
          f"train {statistics.median(fe_train) * 1000:.0f} ms; repeats {args.repeats} after 1 warm-up")


if __name__ == "__main__":
    main()
