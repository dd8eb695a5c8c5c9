"""Three identical `bench run` processes started together on one results directory and one cache.

They must end with valid files and exactly one result for the combination: the first trains, the
others wait on the combination's lock (bench/runs/grid.py) and report it as already done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results.files import read_result

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=4",
        "--epochs", "1", "--batch-size", "4", "--num-workers", "0", "--no-leaderboard",
        "--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32"]


@pytest.mark.slow
def test_three_identical_runs_at_once_end_with_one_valid_result(tmp_path):
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "bench", "run", *TINY, "--results-dir", str(tmp_path / "results"),
            "--runs-dir", str(tmp_path / "runs")]
    procs = [subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    results = sorted((tmp_path / "results").glob("*.json"))
    assert len(results) == 1, [p.name for p in results]
    result = read_result(results[0])
    done = sum("already done" in err and result["run_id"] in err for _, err in outputs)
    assert done == 2, [err[-500:] for _, err in outputs]
    # Every file bench wrote is complete: JSON parses, no temporary files anywhere.
    for path in tmp_path.rglob("*"):
        assert not (path.name.startswith(".") and path.name.endswith(".tmp")), path
        if path.suffix == ".json" and path.is_file():
            json.loads(path.read_text())
    finished = [d for d in (tmp_path / "runs").iterdir() if (d / "result.json").is_file()]
    assert [d.name for d in finished] == [result["run_id"]]
