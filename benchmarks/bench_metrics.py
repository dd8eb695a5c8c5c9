"""Benchmark: retrieval metrics at scale (time and peak RSS), against the GEMM floor and argsort.

For each size (captions x audios) and each method, a fresh subprocess builds seeded random
L2-normalised embeddings (text = normalise(audio of the caption + noise), so the metrics are not
at chance level) and times one method:

- ``ours``: :func:`bench.evaluation.metrics.retrieval_metrics` (chunked, both directions).
- ``gemm``: the same chunked fp32 GEMMs in both directions with the scores thrown away: the
  physical floor of any exact evaluation from embeddings.
- ``argsort``: the full-matrix approach of public reference scripts: build the whole score
  matrix, argsort every row, look up the relevant positions (vectorised with torch, which is the
  fast variant; some scripts loop in Python). Skipped when its estimated peak does not fit in
  the available memory.

Peak memory is the child's ``ru_maxrss`` from ``os.wait4`` (whole process: interpreter, torch,
the embeddings and the method). Usage::

    python benchmarks/bench_metrics.py --out benchmarks/metrics_results.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("ours", "gemm", "argsort")
ARGSORT_BYTES_PER_SCORE = 4 + 4 + 8 + 8 + 1  # scores, sorted values, int64 indices, gathered ids, mask


def parse_size(text: str) -> tuple[int, int]:
    """``"5000x1000"`` -> (5000 captions, 1000 audios)."""
    try:
        n_c, n_a = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 5000x1000 (captions x audios)") from None
    return n_c, n_a


def mem_available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


# ----------------------------------------------------------------------------- worker side


def make_embeddings(n_c: int, n_a: int, dim: int, noise: float, seed: int):
    """Seeded unit embeddings, generated in blocks so no temporary doubles the footprint."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    per_audio = n_c // n_a
    audio_of_caption = torch.arange(n_c) // per_audio
    audio_of_caption.clamp_(max=n_a - 1)
    audio = torch.randn(n_a, dim, generator=gen)
    audio /= audio.norm(dim=1, keepdim=True)
    text = torch.empty(n_c, dim)
    block = 8192
    for s in range(0, n_c, block):
        e = min(s + block, n_c)
        noise_block = torch.randn(e - s, dim, generator=gen)
        noise_block /= noise_block.norm(dim=1, keepdim=True)
        text[s:e] = audio[audio_of_caption[s:e]] + noise * noise_block
        text[s:e] /= text[s:e].norm(dim=1, keepdim=True)
    return audio, text, audio_of_caption


def run_ours(audio, text, aoc, chunk_size):
    from bench.evaluation.metrics import retrieval_metrics

    return retrieval_metrics(audio, text, aoc, chunk_size=chunk_size)


def run_gemm(audio, text, aoc, chunk_size):
    import torch

    from bench.evaluation.metrics import DEFAULT_CHUNK_ELEMENTS

    n_a, n_c = audio.shape[0], text.shape[0]
    # Same chunk rows as retrieval_metrics uses, so this is its exact GEMM workload.
    rows_t = chunk_size or max(1, DEFAULT_CHUNK_ELEMENTS // n_a)
    rows_a = chunk_size or max(1, DEFAULT_CHUNK_ELEMENTS // n_c)
    checksum = 0.0
    with torch.inference_mode():
        for s in range(0, n_c, rows_t):
            checksum += float((text[s : s + rows_t] @ audio.T)[:, 0].sum())
        for s in range(0, n_a, rows_a):
            checksum += float((audio[s : s + rows_a] @ text.T)[:, 0].sum())
    return {"checksum": checksum}


def run_argsort(audio, text, aoc, chunk_size):
    import torch

    with torch.inference_mode():
        n_a = audio.shape[0]
        sims = text @ audio.T  # [n_c, n_a], the whole matrix
        order = torch.argsort(sims, dim=1, descending=True)
        t2a_rank = (order == aoc[:, None]).nonzero()[:, 1] + 1
        del order
        sims_t = sims.T.contiguous()  # [n_a, n_c]
        del sims
        order = torch.argsort(sims_t, dim=1, descending=True)
        del sims_t
        relevant = aoc[order] == torch.arange(n_a)[:, None]  # [n_a, n_c] in ranked order
        del order
        first = relevant.float().argmax(dim=1) + 1
        top = relevant[:, :10].double()
        precision = top.cumsum(dim=1) / torch.arange(1, 11, dtype=torch.float64)
        n_rel = torch.bincount(aoc, minlength=n_a).clamp(max=10).double()
        ap = (precision * top).sum(dim=1) / n_rel
    r = t2a_rank.double()
    t2a = {f"R@{k}": float((t2a_rank <= k).double().mean()) for k in (1, 5, 10)}
    t2a["mAP@10"] = float(torch.where(t2a_rank <= 10, 1 / r, torch.zeros_like(r)).mean())
    t2a["mean_rank"] = float(r.mean())
    t2a["median_rank"] = float(r.median())  # torch's lower median; see the note in the report
    a2t = {f"R@{k}": float((first <= k).double().mean()) for k in (1, 5, 10)}
    a2t["mAP@10"] = float(ap.mean())
    return {"t2a": t2a, "a2t": a2t}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    n_c, n_a = args.size
    audio, text, aoc = make_embeddings(n_c, n_a, args.dim, args.noise, args.seed)
    rss_data_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = {"ours": run_ours, "gemm": run_gemm, "argsort": run_argsort}[args.worker]
    times, paired, ratios = [], [], []
    result = None
    for i in range(args.repeats):
        # The machine is shared: time the bare GEMMs next to each run of ours, in the same
        # process, alternating which goes first, so each ours / GEMM ratio compares runs under
        # the same load; the report gives the median of those ratios.
        if args.worker == "ours" and i % 2:
            t0 = time.perf_counter()
            run_gemm(audio, text, aoc, args.chunk_size)
            paired.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = fn(audio, text, aoc, args.chunk_size)
        times.append(time.perf_counter() - t0)
        if args.worker == "ours" and not i % 2:
            t0 = time.perf_counter()
            run_gemm(audio, text, aoc, args.chunk_size)
            paired.append(time.perf_counter() - t0)
        if paired:
            ratios.append(times[-1] / paired[-1])
    print(json.dumps({"seconds": statistics.median(times), "all_seconds": times, "rss_data_kb": rss_data_kb,
                      "paired_gemm_seconds": statistics.median(paired) if paired else None,
                      "all_paired_gemm_seconds": paired,
                      "ratio": statistics.median(ratios) if ratios else None, "all_ratios": ratios,
                      "result": result}))


# ----------------------------------------------------------------------------- parent side


def run_child(method: str, size: tuple[int, int], args: argparse.Namespace, repeats: int) -> dict:
    cmd = [
        sys.executable, __file__, "--worker", method, "--size", f"{size[0]}x{size[1]}",
        "--dim", str(args.dim), "--noise", str(args.noise), "--seed", str(args.seed),
        "--threads", str(args.threads), "--repeats", str(repeats),
    ]
    if args.chunk_size:
        cmd += ["--chunk-size", str(args.chunk_size)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{method} {size} failed with exit code {proc.returncode}")
    record = json.loads(out.strip().splitlines()[-1])
    record["peak_rss_kb"] = usage.ru_maxrss  # KiB on Linux
    return record


def machine_description() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{fields.get('Model name', '?')}, {fields.get('CPU(s)', '?')} CPU(s) "
        f"({fields.get('Thread(s) per core', '?')} thread(s) per core), {mem_gib:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def compare(a: dict, b: dict) -> float:
    """Largest absolute difference between two {"t2a": {...}, "a2t": {...}} results (not median)."""
    worst = 0.0
    for d in ("t2a", "a2t"):
        for key, value in a[d].items():
            if key != "median_rank":
                worst = max(worst, abs(value - b[d][key]))
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")],
                   default=[(5000, 1000), (20000, 5000), (100000, 20000)],
                   help="comma-separated captions x audios (default 5000x1000,20000x5000,100000x20000)")
    p.add_argument("--methods", default=",".join(METHODS), help="subset of ours,gemm,argsort")
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--noise", type=float, default=8.0,
                   help="weight of the unit noise added to a caption's audio embedding")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    p.add_argument("--chunk-size", type=int, default=None, help="rows per chunk (default: automatic)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs per configuration, median kept (1 for sizes above 2e8 scores)")
    p.add_argument("--large-repeats", type=int, default=1, help="timed runs above 2e8 scores")
    p.add_argument("--out", type=Path, default=None, help="write a markdown report here")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--size", type=parse_size, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    methods = [m for m in args.methods.split(",") if m]
    load_before = os.getloadavg()
    rows = []
    notes = []
    for size in args.sizes:
        n_c, n_a = size
        repeats = args.repeats if n_c * n_a <= 2e8 else args.large_repeats
        records = {}
        for method in methods:
            if method == "argsort":
                need = n_c * n_a * ARGSORT_BYTES_PER_SCORE + (n_c + n_a) * args.dim * 4
                avail = mem_available_bytes()
                if need > 0.8 * avail:
                    notes.append(f"argsort skipped at {n_c}x{n_a}: it needs about {need / 2**30:.0f} GiB "
                                 f"(full score matrix + int64 argsort indices), {avail / 2**30:.0f} GiB available")
                    print(notes[-1], flush=True)
                    continue
            rec = run_child(method, size, args, repeats)
            records[method] = rec
            print(f"{n_c}x{n_a} {method}: {rec['seconds']:.3f} s (paired GEMM {rec['paired_gemm_seconds']}), "
                  f"peak RSS {rec['peak_rss_kb'] / 1024:.0f} MiB", flush=True)
        if "ours" in records and "argsort" in records:
            diff = compare(records["ours"]["result"], records["argsort"]["result"])
            notes.append(f"{n_c}x{n_a}: ours vs argsort, largest metric difference {diff:.2e}")
            print(notes[-1], flush=True)
        rows.append((size, repeats, records))
        if "ours" in records:
            print(json.dumps(records["ours"]["result"]), flush=True)

    lines = [
        "# Metrics benchmark",
        "",
        f"- Machine: {machine_description()}",
        f"- torch {torch.__version__}, `torch.set_num_threads({args.threads})`",
        f"- Embeddings: {args.dim}-d fp32, L2-normalised, {args.sizes[0][0] // args.sizes[0][1]} captions per audio "
        f"(text = normalise(audio + {args.noise} x unit noise), seed {args.seed})",
        f"- Chunk size: {args.chunk_size or 'automatic (about 16 M scores per chunk)'}",
        f"- Command: `{' '.join(['python'] + [Path(sys.argv[0]).as_posix()] + sys.argv[1:])}`",
        f"- Load average (1 min) before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} "
        "(the machine is shared, so times are noisy)",
        "- `ours / GEMM`: the median over the timed runs of ours / the bare chunked GEMMs timed next",
        "  to it in the same child process (alternately before and after, so both see the same",
        "  load); the `gemm` row is a separate child, for its peak RSS.",
        "- Time: median of the timed runs (column `runs`), embedding generation excluded. Peak RSS: the",
        "  whole child process (`ru_maxrss` via `os.wait4`); `data RSS` is the peak before the method",
        "  started (interpreter + torch + embeddings).",
        "",
        "| captions x audios | method | runs | time (s) | peak RSS (MiB) | data RSS (MiB) | ours / GEMM "
        "| argsort / ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (n_c, n_a), repeats, records in rows:
        for method, rec in records.items():
            ratio_gemm = ratio_arg = ""
            if method == "ours":
                ratio_gemm = f"{rec['ratio']:.2f}"
            if method == "ours" and "argsort" in records:
                ratio_arg = f"{records['argsort']['seconds'] / rec['seconds']:.2f}"
            lines.append(
                f"| {n_c} x {n_a} | {method} | {repeats} | {rec['seconds']:.3f} | "
                f"{rec['peak_rss_kb'] / 1024:.0f} | {rec['rss_data_kb'] / 1024:.0f} | {ratio_gemm} | {ratio_arg} |"
            )
        if "argsort" not in records and "argsort" in methods:
            lines.append(f"| {n_c} x {n_a} | argsort | - | skipped | - | - | | |")
    lines += ["", *[f"- {n}" for n in notes]]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
