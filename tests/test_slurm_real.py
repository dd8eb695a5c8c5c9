"""The grid on a real one-node Slurm cluster (issue 14), where this machine can run one.

tests/slurm_single_node.sh starts slurmctld, slurmd and munged (root and Debian's packages, which
.ci/run installs); elsewhere the test skips with that script's reason. The same tiny combination
runs once in process and once as a Slurm job through `--launcher slurm`; the job's result must
have identical metrics, and `bench status` must show it done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.results.files import read_result
from tests.conftest import torch_threads

SCRIPT = Path(__file__).with_name("slurm_single_node.sh")
TINY = [
    "--set", "synthetic.n_train=24", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
    "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--no-leaderboard",
    "--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32",
]


@pytest.fixture(scope="module")
def slurm() -> None:
    pytest.importorskip("submitit")
    if shutil.which("sbatch") is None:
        pytest.skip("no Slurm client here (apt-get install slurmctld slurmd slurm-client munge)")
    started = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.skip(f"no one-node Slurm cluster could start here: {(started.stdout + started.stderr).strip()[-300:]}")


@pytest.mark.slow
def test_a_combination_runs_as_a_real_slurm_job_with_the_in_process_metrics(slurm, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the job's torch and this process's alike
    with torch_threads(1):
        assert main(["run", *TINY, "--results-dir", str(tmp_path / "here"),
                     "--runs-dir", str(tmp_path / "runs_here")]) == 0
    monkeypatch.chdir(tmp_path)  # the job starts where it was submitted
    bench = [sys.executable, "-m", "bench"]
    submitted = subprocess.run(
        [*bench, "run", *TINY, "--results-dir", str(tmp_path / "slurm"), "--runs-dir", str(tmp_path / "runs_slurm"),
         "--launcher", "slurm", "--set", "slurm.partition=debug", "--set", "slurm.time=10",
         "--set", "slurm.cpus_per_task=1", "--set", "slurm.mem=2G"],
        capture_output=True, text=True, timeout=120, env={**os.environ})
    assert submitted.returncode == 0, submitted.stderr[-800:]
    assert "1 job(s) submitted" in submitted.stdout
    deadline = time.monotonic() + 240
    while not list((tmp_path / "slurm").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(2)
    results = sorted((tmp_path / "slurm").glob("*.json"))
    folder = next((tmp_path / "runs_slurm" / "slurm").glob("grid-*"))
    assert results, f"no result after 240 s; job logs: {[p.name for p in folder.iterdir()]}"
    here = read_result(next((tmp_path / "here").glob("*.json")))
    assert read_result(results[0])["metrics"] == here["metrics"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the job writes its submitit result after the bench result
        status = subprocess.run([*bench, "status", str(folder)], capture_output=True, text=True, timeout=60)
        if "done" in status.stdout:
            break
        time.sleep(2)
    assert status.returncode == 0 and "done" in status.stdout, status.stdout + status.stderr
