"""`bench leaderboard` on the committed results: the sign-flip test against scipy's permutation_test.

Two measurements, both on ``leaderboard/results`` as committed:

1. In one process, alternately, the time to render the leaderboard (``render_dir``: every CI
   and every significance test) with ``bench.results.stats.permutation_p_value`` as it is now
   (vectorised sign flips) and with the previous implementation (``scipy.stats.permutation_test``,
   reproduced below as ``scipy_p_value``); plus the time per comparison of each.
2. The whole command ``bench leaderboard --check`` (interpreter start included) run as a
   subprocess from this checkout and, with ``--old-tree DIR`` (a ``git archive`` of an earlier
   commit's bench/ and plugins/), from that tree, back to back.

    python benchmarks/bench_leaderboard.py --repeats 3 --old-tree /tmp/old --out benchmarks/leaderboard_results.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "leaderboard" / "results"


def scipy_p_value(a, b, statistic=None, *, n_resamples=10_000, seed=0):
    """The previous permutation_p_value: scipy.stats.permutation_test on the paired samples."""
    from scipy import stats as sps

    from bench.results import stats

    statistic = statistic or stats._mean
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.array_equal(a, b):
        return 1.0, True
    n = a.size
    exact = n < 63 and 2**n <= n_resamples
    res = sps.permutation_test(
        (a, b), stats._difference_statistic(statistic), permutation_type="samples", n_resamples=n_resamples,
        alternative="two-sided", vectorized=True, axis=-1, batch=stats._batch(n),
        **stats._rng_kwargs(sps.permutation_test, seed),
    )
    return float(res.pvalue), exact


def timed_render(implementation) -> tuple[float, list[tuple[float, float]]]:
    """Seconds to render the committed leaderboard, and (seconds, p) of each paired test it ran."""
    from bench.leaderboard import tables
    from bench.results import stats

    calls: list[tuple[float, float]] = []
    original = stats.permutation_p_value

    def recording(*args, **kwargs):
        start = time.perf_counter()
        out = implementation(*args, **kwargs)
        calls.append((time.perf_counter() - start, out[0]))
        return out

    stats.permutation_p_value = recording
    try:
        start = time.perf_counter()
        tables.render_dir(RESULTS)
        return time.perf_counter() - start, calls
    finally:
        stats.permutation_p_value = original


def command_seconds(cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    # --check exits 1 where a result's provenance does not match the tree; the work is done by then.
    subprocess.run([sys.executable, "-m", "bench", "leaderboard", "--check",
                    "--results-dir", str(RESULTS), "--output", str(ROOT / "leaderboard" / "README.md")],
                   cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-tree", type=Path, help="a checkout (bench/, plugins/) of the code before the change")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "leaderboard_results.md")
    args = parser.parse_args()

    from bench.results import stats

    load = os.getloadavg()[0]
    new_times, old_times = [], []
    for _ in range(args.repeats):
        seconds, new_calls = timed_render(stats.permutation_p_value)
        new_times.append(seconds)
        seconds, old_calls = timed_render(scipy_p_value)
        old_times.append(seconds)
    diffs = [abs(n[1] - o[1]) for n, o in zip(new_calls, old_calls)]
    lines = [
        "## `bench leaderboard` on the committed results: sign flips vs scipy.stats.permutation_test",
        "",
        f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}, numpy {np.__version__}; load average (1 min) at start {load:.1f} "
        "(shared machine: compare the columns, not the absolute times)",
        f"- Command: `python benchmarks/bench_leaderboard.py --repeats {args.repeats}"
        + (" --old-tree DIR" if args.old_tree else "") + "`",
        f"- {len(new_calls)} paired tests per render, 10,000 resamples each, seed 0",
        "",
        "| what | scipy.stats.permutation_test (before) | vectorised sign flips (now) | before / now |",
        "|---|---|---|---|",
        f"| render the leaderboard in one process (median of {args.repeats}, alternating) | "
        f"{statistics.median(old_times):.2f} s | {statistics.median(new_times):.2f} s | "
        f"{statistics.median(old_times) / statistics.median(new_times):.1f}x |",
        f"| one paired test (median over the render's tests) | {statistics.median(c[0] for c in old_calls):.3f} s | "
        f"{statistics.median(c[0] for c in new_calls):.3f} s | "
        f"{statistics.median(c[0] for c in old_calls) / statistics.median(c[0] for c in new_calls):.0f}x |",
    ]
    if args.old_tree:
        env_new = dict(os.environ)
        env_old = dict(os.environ, PYTHONPATH=str(args.old_tree.resolve()))
        new_cmd, old_cmd = [], []
        for _ in range(args.repeats):
            old_cmd.append(command_seconds(args.old_tree, env_old))
            new_cmd.append(command_seconds(ROOT, env_new))
        lines.append(f"| `bench leaderboard --check`, whole command (median of {args.repeats}, back to back) | "
                     f"{statistics.median(old_cmd):.2f} s | {statistics.median(new_cmd):.2f} s | "
                     f"{statistics.median(old_cmd) / statistics.median(new_cmd):.1f}x |")
    lines += [
        "",
        f"p-values: the largest difference between the two implementations over these tests is "
        f"{max(diffs) if diffs else 0:.4f} (different random flips of the same test; Monte-Carlo standard error "
        "at p = 0.5 with 10,000 resamples is 0.005).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
