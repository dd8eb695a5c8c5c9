"""End to end through the CLI on a tiny synthetic benchmark: a run learns, writes a valid result and is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import read_result

TINY = [
    "--set", "synthetic.n_train=24", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
    "--epochs", "2", "--batch-size", "8", "--num-workers", "0", "--no-leaderboard",
]


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _run(dirs: Path, *extra: str, results: str = "results", runs: str = "runs") -> dict:
    code = main(["run", *TINY, "--results-dir", str(dirs / results), "--runs-dir", str(dirs / runs), *extra])
    assert code == 0
    (path,) = sorted((dirs / results).glob("*.json"))[-1:]
    return read_result(path)


def test_tiny_run_writes_a_complete_result(dirs):
    result = _run(dirs)
    assert result["schema_version"].startswith("1.")
    assert result["dataset"]["name"] == "synthetic"
    assert result["dataset"]["splits"]["test"]["n_audios"] == 8
    assert result["dataset"]["splits"]["test"]["n_captions"] == 40
    for direction in ("t2a", "a2t"):
        for key in ("R@1", "R@5", "R@10", "mAP@10"):
            assert 0.0 <= result["metrics"][direction][key] <= 1.0
    assert result["metrics"]["t2a"]["mean_rank"] >= 1.0
    assert len(result["history"]) == 2
    assert result["best_val"]["epoch"] in (1, 2)
    assert result["audio_encoder"]["options"]["n_mels"] == 64  # defaults are recorded, not only what was set
    assert result["provenance"]["plugins"]["audio_encoder"]["distribution"] == "bench"
    assert result["training"]["device"] == "cpu"
    run_dir = Path(result["artifacts"]["run_dir"])
    for name in ("config.json", "last.pt", "best.pt", "log.txt", "test_embeddings.npz", "result.json"):
        assert (run_dir / name).is_file(), name
    assert "epoch 2/2" in (run_dir / "log.txt").read_text()
    # Nothing half-written is left behind.
    assert not list(run_dir.glob(".*tmp*"))


def test_checkpoints_load_with_weights_only(dirs):
    import torch

    result = _run(dirs)
    state = torch.load(Path(result["artifacts"]["run_dir"]) / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and "optimizer" in state and "model" in state


def test_same_seed_same_metrics_different_seed_differs(dirs):
    first = _run(dirs, "--seed", "3", results="a", runs="ra")
    again = _run(dirs, "--seed", "3", results="b", runs="rb")
    other = _run(dirs, "--seed", "4", results="c", runs="rc")
    assert first["metrics"] == again["metrics"]
    assert first["history"][-1]["train_loss"] == again["history"][-1]["train_loss"]
    assert other["history"][-1]["train_loss"] != first["history"][-1]["train_loss"]


def test_grid_runs_every_combination(dirs):
    main(["run", *TINY, "--epochs", "1", "--seed", "0,1", "--loss", "ntxent,triplet",
          "--results-dir", str(dirs / "grid"), "--runs-dir", str(dirs / "runs")])
    results = [json.loads(p.read_text()) for p in (dirs / "grid").glob("*.json")]
    assert sorted((r["loss"]["name"], r["seed"]) for r in results) == [
        ("ntxent", 0), ("ntxent", 1), ("triplet", 0), ("triplet", 1)]
