"""Grid resume: finished combinations are skipped, ``--force`` reruns them, an interrupted run
(killed with SIGKILL after its first epoch checkpoint) is continued by the grid, by
``--resume RUN_ID`` and by ``--resume latest``, and ends with exactly the metrics of an
uninterrupted run with the same seed (CPU)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from bench.cli.main import main
from tests.kill_runs import kill_at_checkpoint

TINY = ["--set", "synthetic.n_train=16", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
        "--batch-size", "8", "--num-workers", "0", "--device", "cpu", "--no-leaderboard"]
# A small trainable cnn: resuming must restore weights, BatchNorm statistics, optimizer state and
# the random state of crops and dropout, not only projections.
SMALL_CNN = ["--set", "cnn.channels=16,16", "--set", "cnn.n_mels=16", "--set", "cnn.crop_seconds=2.0"]


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def dirs(base: Path) -> list[str]:
    return ["--results-dir", str(base / "results"), "--runs-dir", str(base / "runs")]


def result_files(base: Path) -> list[Path]:
    return sorted((base / "results").glob("*.json"))


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def outcome(result: dict) -> dict:
    """What must be reproduced exactly: test metrics, best validation and the per-epoch history."""
    return {
        "metrics": result["metrics"],
        "best_val": result["best_val"],
        "history": [{k: v for k, v in h.items() if k != "seconds"} for h in result["history"]],
    }


@pytest.mark.slow
def test_rerun_skips_finished_combinations_and_force_reruns(tmp_path, cache_env, caplog):
    caplog.set_level(logging.INFO, logger="bench")
    grid = [*TINY, "--set", "cnn.freeze=true", "--epochs", "1", "--seed", "0,1", *dirs(tmp_path)]
    assert main(["run", *grid]) == 0
    first = result_files(tmp_path)
    assert len(first) == 2
    run_dirs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(run_dirs) == 2

    caplog.clear()
    started = time.perf_counter()
    assert main(["run", *grid]) == 0
    elapsed = time.perf_counter() - started
    assert result_files(tmp_path) == first
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == run_dirs
    skipped = [m for m in messages(caplog) if m.startswith("already done")]
    assert len(skipped) == 2
    assert not [m for m in messages(caplog) if m.startswith("epoch ")], "nothing may be trained again"
    assert elapsed < 20, f"skipping two finished runs took {elapsed:.1f} s"

    caplog.clear()
    assert main(["run", *TINY, "--set", "cnn.freeze=true", "--epochs", "1", "--seed", "0", "--force",
                 *dirs(tmp_path)]) == 0
    after = result_files(tmp_path)
    assert len(after) == 3 and set(first) < set(after)
    assert len(list((tmp_path / "runs").iterdir())) == 3
    assert [m for m in messages(caplog) if m.startswith("epoch 1/1")]
    new = json.loads((set(after) - set(first)).pop().read_text())
    assert new["seed"] == 0
    old = [json.loads(p.read_text()) for p in first]
    same_seed = next(r for r in old if r["seed"] == 0)
    assert new["combination"] == same_seed["combination"] and new["run_id"] != same_seed["run_id"]
    assert new["metrics"] == same_seed["metrics"], "a forced rerun of the same seed reproduces it"


def _interrupted_run(base: Path, args: list[str]) -> Path:
    """Start ``bench run`` in a subprocess and SIGKILL it as soon as its first last.pt exists."""
    run_dir = kill_at_checkpoint([*args, *dirs(base)], base / "runs", what="its first checkpoint")
    assert (run_dir / "config.json").is_file()
    assert not (run_dir / "result.json").exists()
    assert result_files(base) == []
    return run_dir


@pytest.mark.slow
def test_interrupted_run_is_continued_exactly_by_grid_resume_id_and_latest(tmp_path, cache_env, caplog):
    caplog.set_level(logging.INFO, logger="bench")
    args = [*TINY, *SMALL_CNN, "--epochs", "3"]
    killed = tmp_path / "killed"
    run_dir = _interrupted_run(killed, args)
    state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    assert 1 <= state["epoch"] < 3
    # Copies of the interrupted directory for --resume RUN_ID and --resume latest, taken before any resume.
    by_id = tmp_path / "by_id" / "runs" / "resumed-by-id"
    shutil.copytree(run_dir, by_id)
    latest = tmp_path / "latest" / "runs" / "resumed-latest"
    shutil.copytree(run_dir, latest)
    decoy = tmp_path / "latest" / "runs" / "zzzz-older-run"  # sorts last by name, is older by mtime
    shutil.copytree(run_dir, decoy)
    os.utime(decoy / "config.json", (time.time() - 3600, time.time() - 3600))
    os.utime(latest / "config.json", None)

    assert main(["run", *args, *dirs(tmp_path / "reference")]) == 0
    (reference_file,) = result_files(tmp_path / "reference")
    reference = json.loads(reference_file.read_text())
    assert len(reference["history"]) == 3

    caplog.clear()
    assert main(["run", *args, *dirs(killed)]) == 0  # the grid finds and continues the run
    assert f"continuing the interrupted run {run_dir.name}" in messages(caplog)
    assert any(m.startswith(f"resumed {run_dir.name} after epoch {state['epoch']}") for m in messages(caplog))
    (resumed_file,) = result_files(killed)
    resumed = json.loads(resumed_file.read_text())
    assert resumed["run_id"] == run_dir.name
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert outcome(resumed) == outcome(reference)

    # --resume writes into the results directory recorded in the run's config.json: the killed run's.
    for resume, runs_dir, expected in ((by_id.name, by_id.parent, by_id.name), ("latest", latest.parent, latest.name)):
        caplog.clear()
        assert main(["run", "--resume", resume, "--runs-dir", str(runs_dir), "--no-leaderboard"]) == 0
        path = killed / "results" / f"{expected}.json"
        assert path.is_file(), sorted(p.name for p in (killed / "results").iterdir())
        again = json.loads(path.read_text())
        assert again["run_id"] == expected
        assert outcome(again) == outcome(reference)
        assert (runs_dir / expected / "result.json").is_file()
    assert not (decoy / "result.json").exists(), "--resume latest picks the newest config.json, not the last name"


def test_resume_unknown_run_is_a_clear_error(tmp_path, cache_env, capsys):
    (tmp_path / "runs").mkdir()
    assert main(["run", "--resume", "no-such-run", "--runs-dir", str(tmp_path / "runs")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no-such-run" in error[0] and str(tmp_path / "runs") in error[0]
    assert main(["run", "--resume", "latest", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and str(tmp_path / "runs") in err
