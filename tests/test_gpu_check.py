"""benchmarks/gpu_check.py on the CPU: the autocast (bf16) training path of both recipes, and its report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_the_cpu_autocast_path_and_says_what_it_could_not_check(tmp_path):
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "CUDA_VISIBLE_DEVICES": ""}
    report = tmp_path / "report.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--steps", "4",
                           "--out", str(report)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text()
    assert "No CUDA device" in text and "Not checked without a GPU" in text and "fp16" in text
    rows = [line for line in text.splitlines() if line.startswith(("| default |", "| passt |"))]
    assert len(rows) == 2 and all("| bf16 | off |" in row and "| yes |" in row for row in rows), rows
    assert "all checks passed" in text
