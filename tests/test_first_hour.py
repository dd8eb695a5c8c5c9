"""The first hour of a new user (issue 17): say what happens, write where documented, show progress.

Fast tests pin the pieces (progress lines off a terminal, the reuse line, the default results
directory of every command that reads results). One slow test walks README's "Using it" commands
with a tiny configuration in a fresh clone of this repository and checks that they tell the user
what they did and leave ``git status`` clean (nothing written into the committed leaderboard/).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.config import DEFAULT_RESULTS_DIR
from bench.core.progress import LogProgress, progress

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_progress_off_a_terminal_is_a_log_line(monkeypatch):
    monkeypatch.setenv("BENCH_PROGRESS", "0")
    assert isinstance(progress(range(3), desc="x"), LogProgress)
    monkeypatch.setenv("BENCH_PROGRESS", "1")
    assert not isinstance(progress(range(3), desc="x"), LogProgress)


def test_log_progress_lines_carry_done_total_rate_and_time_left(caplog):
    caplog.set_level(logging.INFO, logger="bench")
    # 100 items, 7 s each: with a line every 20 s, a line every third item, and one at the end.
    bar = LogProgress(range(100), desc="cache train text", unit="batch", every=20.0, clock=FakeClock(7.0))
    bar.set_postfix(loss="2.1032")
    assert list(bar) == list(range(100))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == ("cache train text: 3/100 batches (3%), 7.0 s/batch, ~11 min 19 s left, loss=2.1032")
    assert len(lines) == 34  # 33 while running (every 21 s of items) + the end
    assert lines[-1] == "cache train text: 100/100 batches (100%), done in 11 min 47 s, 7.1 s/batch, loss=2.1032"
    # A line every 3 items of 7 s: never more than 30 s between two lines while items keep finishing.
    assert [int(line.split(": ")[1].split("/")[0]) for line in lines[:3]] == [3, 6, 9]


def test_short_phases_stay_silent_and_unknown_totals_are_counted(caplog):
    caplog.set_level(logging.INFO, logger="bench")
    assert list(LogProgress(iter(range(5)), desc="quick", every=20.0, clock=FakeClock(1.0))) == list(range(5))
    assert caplog.records == []
    list(LogProgress(iter(range(4)), desc="files", unit="file", every=1.0, clock=FakeClock(0.5)))
    assert caplog.records[0].getMessage() == "files: 2 files, 2.0 file/s"


def test_reuse_line_names_the_result_its_commit_and_force():
    from bench.runs.grid import reuse_line

    result = {"run_id": "r1", "created": "2026-11-22T01:14:41+00:00", "metrics": {"t2a": {"mAP@10": 0.7018}},
              "provenance": {"git_commit": "bf2d7a59a1f587ef", "git_dirty": False}}
    line = reuse_line(result, Path("runs/results"))
    assert line == ("already done: reusing result runs/results/r1.json, test t2a mAP@10 70.18, made 2026-11-22 by "
                    "commit bf2d7a59; nothing is trained. --force trains it again")


def test_every_command_that_reads_results_defaults_to_runs_results():
    from bench.cli import main as cli

    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    readers = {name: sub.choices[name] for name in ("fuse", "compare", "inspect", "eval", "run")}
    for name, command in readers.items():
        (results_dir,) = [a.default for a in command._actions if a.dest == "results_dir"]
        assert results_dir in (None, str(DEFAULT_RESULTS_DIR)), name  # run: None means the default
    assert str(DEFAULT_RESULTS_DIR) == "runs/results"


def test_docs_document_progress_cache_and_disk():
    readme = (REPO / "docs" / "getting-started.md").read_text() + (REPO / "docs" / "usage.md").read_text()
    for needle in ("BENCH_PROGRESS", "BENCH_CACHE", "~/.cache/bench", "train.keep", "bench runs clean --dry-run",
                   "Your first hour"):
        assert needle in readme, needle


# -- the README's commands, as printed, in a fresh clone ------------------------------------------------
TINY = ["--set", "synthetic.n_train=16", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
        "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--set", "cnn.channels=16,32",
        "--set", "cnn.embed_dim=32", "--proj-dim", "32"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    base = tmp_path_factory.mktemp("first_hour")
    target = base / "bench"
    subprocess.run(["git", "clone", "-q", "--local", str(REPO), str(target)], check=True, timeout=120)
    env = {**os.environ, "BENCH_CACHE": str(base / "cache"), "BENCH_PROGRESS": "0", "BENCH_PROGRESS_EVERY": "0"}
    return target, env


def bench(clone, *argv: str) -> subprocess.CompletedProcess:
    target, env = clone
    exe = Path(sys.executable).with_name("bench")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "bench"]
    proc = subprocess.run([*command, *argv], cwd=target, env=env, capture_output=True, text=True, timeout=900)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_readme_commands_tell_what_they_do_and_leave_git_status_clean(clone):
    target, _ = clone
    assert bench(clone, "ls").returncode == 0
    first = bench(clone, "run", *TINY, "--seed", "0,1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[1/2] synthetic cnn minilm ntxent seed 0" in first.stderr and "[2/2]" in first.stderr
    assert "epoch 1/1: " in first.stderr and " batches (" in first.stderr  # progress lines off a terminal
    results = sorted((target / "runs" / "results").glob("*.json"))
    assert len(results) == 2
    ids = [json.loads(p.read_text())["run_id"] for p in results]
    # The published result names no local path; the run directory's config.json keeps the data roots.
    from bench.results.local_paths import absolute_paths

    assert all(absolute_paths(json.loads(p.read_text())) == [] for p in results)
    assert "roots" not in json.loads(results[0].read_text())["dataset"]
    roots = json.loads((target / "runs" / ids[0] / "config.json").read_text())["local"]["dataset_roots"]
    assert roots and all(os.path.isabs(r) for r in roots.values())
    # Each finished run kept best.pt only (train.keep=best).
    for run_id in ids:
        assert sorted(p.name for p in (target / "runs" / run_id).glob("*.pt")) == ["best.pt"]

    again = bench(clone, "run", *TINY, "--seed", "0")
    assert again.returncode == 0
    assert "already done: reusing result runs/results/" in again.stderr and "--force trains it again" in again.stderr
    assert bench(clone, "fuse", *ids, "--method", "rrf").returncode == 0  # as printed: no --results-dir
    listing = bench(clone, "runs")
    assert listing.returncode == 0 and all(run_id in listing.stdout for run_id in ids)
    dry = bench(clone, "runs", "clean", "--dry-run", "--keep", "none")
    assert dry.returncode == 0 and dry.stdout.count("would remove ") == 2
    assert all((target / "runs" / run_id / "best.pt").is_file() for run_id in ids)
    zero = bench(clone, "run", "--epochs", "0")
    assert zero.returncode == 2 and "--epochs 0: expected an int >= 1" in zero.stderr
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=target,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status  # nothing in leaderboard/ (or anywhere tracked); runs/ is ignored
    shutil.rmtree(target / "runs")
