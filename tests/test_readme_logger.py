"""docs/plugins.md's "Writing a logger" example works when pasted into a new package and installed."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.readme_examples import ROOT, TINY, install_pasted, pasted_files, readme_section


def test_readme_names_every_lifecycle_hook():
    section = readme_section("Writing a logger")
    for hook in ("on_run_start", "on_epoch_end", "on_run_end", "on_result_written", "register_loggers"):
        assert hook in section


@pytest.mark.slow
def test_pasted_logger_writes_one_row_per_epoch(tmp_path):
    files = pasted_files(readme_section("Writing a logger"))
    assert set(files) == {"bench-csvlog/pyproject.toml", "bench-csvlog/bench_csvlog.py"}
    target = install_pasted(files, tmp_path, "bench-csvlog")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)]),
           "BENCH_CACHE": str(tmp_path / "cache")}
    work = tmp_path / "work"
    work.mkdir()
    bad = subprocess.run([sys.executable, "-m", "bench", "run", "--logger", "csvlog", "--set", "csvlog.filename=a/b"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "a file name, not a path" in bad.stderr and "Traceback" not in bad.stderr
    assert not (work / "runs").exists()  # refused before anything was written
    run = subprocess.run([sys.executable, "-m", "bench", "run", *TINY, "--logger", "csvlog"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    (result_path,) = (work / "runs" / "results").glob("*.json")
    result = json.loads(result_path.read_text())
    with open(work / "runs" / result["artifacts"]["run_dir"] / "epochs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["train_loss"]) for r in rows] == pytest.approx([h["train_loss"] for h in result["history"]])
