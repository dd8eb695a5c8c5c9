"""Benchmark: scoring a Clotho-sized TREC run file with ``bench score`` against ranx, on the same file.

The split has Clotho's evaluation size (1,045 files x 5 captions = 5,225 caption queries); a seeded
random system (text = audio of the caption + noise, so metrics are far from chance) is written as a
full t2a TREC run (every file ranked for every caption: 5,460,125 lines) and its qrels, by
``bench export``'s writer. Each method then runs in a fresh subprocess, which times

- ``bench``: :func:`bench.results.run_files.read_trec` (pyarrow, dictionary-encoded ids, numpy
  checks) + :func:`bench.results.score_lists.score_lists` (the chunked metric driver) = parse + score;
- ``ranx``: ``Run.from_file(path, kind="trec")`` + ``Qrels.from_file`` + ``evaluate(qrels, run,
  [mrr@10 ... ])``; ranx JIT-compiles its metrics with numba, so it runs twice in its process and
  both passes are reported (the second is ranx at its best).

Peak memory is each child's ``ru_maxrss`` (whole process) from ``os.wait4``; the baseline is a child
that only imports the method's modules. The metrics of both are printed and must agree (t2a has one
relevant file per caption, so ranx's mrr@10 / map@10 is bench's mAP@10 and recall@k its R@k).
ranx comes with the ``benchmarks`` extra (``pip install -e '.[benchmarks]'``)::

    python benchmarks/bench_score_runfile.py --out benchmarks/score_runfile_results.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_AUDIOS, PER_AUDIO, DIM = 1045, 5, 64


def make_files(directory: Path) -> tuple[Path, Path, Path]:
    import numpy as np

    from bench.results.export import Source, write_qrels, write_trec

    rng = np.random.default_rng(0)
    audio = rng.standard_normal((N_AUDIOS, DIM)).astype(np.float32)
    aoc = np.repeat(np.arange(N_AUDIOS), PER_AUDIO)
    text = (audio[aoc] + 2.0 * rng.standard_normal((aoc.size, DIM))).astype(np.float32)
    ids = np.asarray([f"clotho_eval_{i:04d} take {i % 7}.wav" for i in range(N_AUDIOS)])  # spaces, as Clotho's
    emb = directory / "system.npz"
    np.savez(emb, audio=audio, text=text, audio_of_caption=aoc, audio_ids=ids, fingerprint=np.asarray("bench"))
    source = Source(emb, 2048, "system")
    run, qrels = directory / "system.trec", directory / "system.qrels"
    write_trec(source, run, ("t2a",), None)
    write_qrels(source, qrels, ("t2a",))
    return emb, run, qrels


def child(method: str, emb: Path, run: Path, qrels: Path, passes: int) -> dict:
    """Runs in the subprocess: import, then ``passes`` timed parse+score passes."""
    import numpy as np

    out: dict = {"passes": []}
    if method == "baseline-bench":
        import bench.results.run_files  # noqa: F401
        import bench.results.score_lists  # noqa: F401
        return out
    if method == "baseline-ranx":
        import ranx  # noqa: F401
        return out
    if method == "bench":
        import torch

        from bench.evaluation.metric_table import summarise_t2a
        from bench.results.run_files import read_trec
        from bench.results.score_lists import Truth, score_lists

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        with np.load(emb) as data:
            truth = Truth("clotho-sized", data["audio_ids"].astype(str), np.asarray([""] * data["text"].shape[0]),
                          data["audio_of_caption"].astype(np.int64), "bench")
        for _ in range(passes):
            start = time.perf_counter()
            lists = read_trec(run, truth)["t2a"]
            parsed = time.perf_counter()
            scored = score_lists(lists, truth, str(run), 2048)
            metrics = summarise_t2a(torch.from_numpy(scored.ranks[0]))
            out["passes"].append({"parse_s": parsed - start, "score_s": time.perf_counter() - parsed,
                                  "total_s": time.perf_counter() - start})
        out["metrics"] = {k: metrics[k] for k in ("R@1", "R@5", "R@10", "mAP@10")}
        return out
    from ranx import Qrels, Run, evaluate

    for _ in range(passes):
        start = time.perf_counter()
        qrels_obj = Qrels.from_file(str(qrels), kind="trec")
        run_obj = Run.from_file(str(run), kind="trec")
        parsed = time.perf_counter()
        values = evaluate(qrels_obj, run_obj, ["recall@1", "recall@5", "recall@10", "mrr@10"])
        out["passes"].append({"parse_s": parsed - start, "score_s": time.perf_counter() - parsed,
                              "total_s": time.perf_counter() - start})
    out["metrics"] = {"R@1": values["recall@1"], "R@5": values["recall@5"], "R@10": values["recall@10"],
                      "mAP@10": values["mrr@10"]}
    return out


def measure(method: str, files: tuple[Path, Path, Path], passes: int) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        argv = [sys.executable, __file__, "--child", method, "--report", report.name, "--passes", str(passes),
                *map(str, files)]
        proc = subprocess.Popen(argv)
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"{method} failed with status {status}")
        result = json.loads(Path(report.name).read_text() or "{}")
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the markdown section here")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--child")
    parser.add_argument("--report")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    if args.child:
        Path(args.report).write_text(json.dumps(child(args.child, *args.files, args.passes)))
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        files = make_files(Path(tmp))
        written_s = time.perf_counter() - started
        lines = sum(1 for _ in open(files[1], "rb"))
        size_mb = files[1].stat().st_size / 1e6
        results = {m: measure(m, files, args.passes) for m in ("baseline-bench", "bench", "baseline-ranx", "ranx")}
    bench, ranx = results["bench"], results["ranx"]
    for key in bench["metrics"]:
        if abs(bench["metrics"][key] - ranx["metrics"][key]) > 1e-9:
            raise SystemExit(f"bench and ranx disagree on {key}: {bench['metrics'][key]} vs {ranx['metrics'][key]}")
    rows = ["| method | pass | parse s | score s | parse + score s | peak RSS MB (over import-only child) |",
            "|---|---|---|---|---|---|"]
    for method in ("bench", "ranx"):
        extra = results[method]["peak_mb"] - results[f"baseline-{method}"]["peak_mb"]
        for i, p in enumerate(results[method]["passes"], 1):
            rows.append(f"| {method} | {i} | {p['parse_s']:.2f} | {p['score_s']:.2f} | {p['total_s']:.2f} | "
                        f"{results[method]['peak_mb']:.0f} ({extra:+.0f}) |")
    best = {m: min(p["total_s"] for p in results[m]["passes"]) for m in ("bench", "ranx")}
    first = {m: results[m]["passes"][0]["total_s"] for m in ("bench", "ranx")}
    metrics = ", ".join(f"{k} {v * 100:.2f}" for k, v in bench["metrics"].items())
    text = "\n".join([
        "## bench score on a Clotho-sized TREC run, against ranx",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {load:.1f} at start (a shared machine: compare the ratio, not the seconds)",
        "Command: `python benchmarks/bench_score_runfile.py --out benchmarks/score_runfile_results.md`",
        f"File: {lines:,} lines ({size_mb:.0f} MB), {N_AUDIOS * PER_AUDIO} caption queries x {N_AUDIOS} files, "
        f"written in {written_s:.1f} s by bench export's TREC writer",
        "",
        *rows,
        "",
        f"Same metrics from both (checked to 1e-9): {metrics}.",
        f"Whole path, best pass: ranx / bench = {best['ranx'] / best['bench']:.1f}x; first pass (ranx compiling "
        f"with numba): {first['ranx'] / first['bench']:.1f}x.",
        "",
    ])
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
