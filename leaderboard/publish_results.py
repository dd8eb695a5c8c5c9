"""Rewrite committed results so that they name no path of the machine that made them.

    python leaderboard/publish_results.py [RESULTS_DIR]   (default: leaderboard/results)

Artifact paths become relative to the runs directory (``<run_id>/test_embeddings.npz``), the data
roots are dropped (the split fingerprints identify the data) and any other absolute path is named
by a placeholder or cut to its last part (bench.results.local_paths). Metrics, sidecars and their
hashes are untouched: `bench verify` and `bench leaderboard --check` hold before and after. Results
written by bench from now on are published like this already; this migrates the older ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.errors import BenchError
from bench.results.files import republish


def main(argv: list[str]) -> int:
    results_dir = Path(argv[0]) if argv else Path("leaderboard/results")
    try:
        changed = republish(results_dir)
    except BenchError as exc:
        print(f"publish_results: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"rewrote {path}")
    print(f"{len(changed)} of the results in {results_dir} rewritten without local paths")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
