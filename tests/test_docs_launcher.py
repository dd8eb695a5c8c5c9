"""docs/plugins.md's "Writing a launcher" example works when pasted into a new package and installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.readme_examples import ROOT, TINY, install_pasted, pasted_files, readme_section


def test_the_launcher_section_names_its_contract():
    section = readme_section("Writing a launcher")
    for needle in ("register_launchers", "launch(configs, request)", "bench.toolkit", "run_grid"):
        assert needle in section, needle


@pytest.mark.slow
def test_pasted_pool_launcher_trains_each_seed_once_with_the_local_launchers_metrics(tmp_path):
    files = pasted_files(readme_section("Writing a launcher"))
    assert set(files) == {"bench-pool/pyproject.toml", "bench-pool/bench_pool.py"}
    target = install_pasted(files, tmp_path, "bench-pool")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)]),
           "BENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}

    def bench(work: str, *argv: str) -> subprocess.CompletedProcess:
        (tmp_path / work).mkdir(exist_ok=True)
        return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=tmp_path / work, env=env,
                              capture_output=True, text=True, timeout=600)

    dry = bench("pool", "run", *TINY, "--seed", "0,1", "--launcher", "pool", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would train ntxent seed 0" in dry.stdout and "would train ntxent seed 1" in dry.stdout
    bad = bench("pool", "run", *TINY, "--launcher", "pool", "--set", "pool.workers=0")
    assert bad.returncode == 2 and "pool.workers" in bad.stderr and "Traceback" not in bad.stderr

    pooled = bench("pool", "run", *TINY, "--seed", "0,1", "--launcher", "pool", "--set", "pool.workers=2")
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    local = bench("local", "run", *TINY, "--seed", "0,1")
    assert local.returncode == 0, local.stderr[-3000:]

    def metrics(work: str) -> dict[int, dict]:
        results = [json.loads(p.read_text()) for p in (tmp_path / work / "runs" / "results").glob("*.json")]
        return {r["seed"]: r["metrics"] for r in results}

    assert sorted(metrics("pool")) == [0, 1]
    assert metrics("pool") == metrics("local")  # same seeds, same thread count: the same bits
    again = bench("pool", "run", *TINY, "--seed", "0,1", "--launcher", "pool")
    assert again.returncode == 0 and again.stderr.count("already done") == 2, again.stderr[-3000:]
