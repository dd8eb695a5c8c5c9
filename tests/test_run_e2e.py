"""End to end through the CLI on a tiny synthetic benchmark: results are complete and deterministic.

Training is the cost here, so the module trains once: one grid (2 losses x 2 seeds) and one
repeat of its first run. Every test reads those finished runs; none retrains.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.results.files import read_result
from tests.conftest import drop_console_handlers

pytestmark = pytest.mark.slow

TINY = [
    "--set", "synthetic.n_train=24", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
    "--epochs", "2", "--batch-size", "8", "--num-workers", "0", "--no-leaderboard",
    # A narrow CNN: these tests are about the result and determinism, and default widths cost seconds per run.
    "--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32",
    "--set", "train.keep=all",  # these tests read last.pt of finished runs (the default keeps best.pt only)
]


def _results(folder: Path) -> dict[tuple[str, int], dict]:
    """The results in ``folder`` by (loss, seed)."""
    found = [read_result(path) for path in sorted(folder.glob("*.json"))]
    return {(r["loss"]["name"], r["seed"]): r for r in found}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The grid's four results and a repeat of (ntxent, seed 0) in other directories."""
    base = tmp_path_factory.mktemp("run_e2e")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCH_CACHE", str(base / "cache"))
        code = main(["run", *TINY, "--seed", "0,1", "--loss", "ntxent,triplet",
                     "--results-dir", str(base / "grid"), "--runs-dir", str(base / "runs")])
        assert code == 0
        code = main(["run", *TINY, "--seed", "0", "--results-dir", str(base / "again"),
                     "--runs-dir", str(base / "runs_again")])
        assert code == 0
    drop_console_handlers()
    grid = _results(base / "grid")
    return {"grid": grid, "first": grid[("ntxent", 0)], "again": _results(base / "again")[("ntxent", 0)],
            "base": base}


def test_tiny_run_writes_a_complete_result(runs):
    result = runs["first"]
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
    assert result["artifacts"]["run_dir"] == result["run_id"]  # published relative to the runs directory
    run_dir = runs["base"] / "runs" / result["artifacts"]["run_dir"]
    for name in ("config.json", "last.pt", "best.pt", "log.txt", "test_embeddings.npz", "result.json"):
        assert (run_dir / name).is_file(), name
    assert "epoch 2/2" in (run_dir / "log.txt").read_text()
    # Nothing half-written is left behind.
    assert not list(run_dir.glob(".*tmp*"))


def test_checkpoints_load_with_weights_only(runs):
    import torch

    state = torch.load(runs["base"] / "runs" / runs["first"]["artifacts"]["run_dir"] / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and "optimizer" in state and "model" in state


def test_same_seed_same_metrics_different_seed_differs(runs):
    first, again, other = runs["first"], runs["again"], runs["grid"][("ntxent", 1)]
    assert first["run_id"] != again["run_id"] or first["artifacts"]["run_dir"] != again["artifacts"]["run_dir"]
    assert first["metrics"] == again["metrics"]
    assert first["history"][-1]["train_loss"] == again["history"][-1]["train_loss"]
    assert other["history"][-1]["train_loss"] != first["history"][-1]["train_loss"]


def test_grid_runs_every_combination(runs):
    assert sorted(runs["grid"]) == [("ntxent", 0), ("ntxent", 1), ("triplet", 0), ("triplet", 1)]
    assert all(json.dumps(r["metrics"]) for r in runs["grid"].values())


def test_result_metrics_are_what_its_sidecar_reduces_to_and_it_verifies(runs, tmp_path):
    import shutil

    from bench.evaluation.per_query import load_for_result, reduce
    from bench.results.verify import verify

    result = runs["first"]
    path = runs["base"] / "grid" / f"{result['run_id']}.json"
    assert result["per_query"]["file"] == f"{result['run_id']}.per_query.npz"
    assert reduce(load_for_result(result, path)) == result["metrics"]
    v = verify(path)
    assert v.ok and v.checked == ("embeddings", "chance", "sidecar"), v.message
    # The same result with mAP@10 edited by one digit fails, naming the metric.
    edited = json.loads(path.read_text())
    edited["metrics"]["t2a"]["mAP@10"] = float(repr(edited["metrics"]["t2a"]["mAP@10"])[:-1] + "0") - 1e-3
    shutil.copy(path.with_name(result["per_query"]["file"]), tmp_path)
    (tmp_path / path.name).write_text(json.dumps(edited, indent=2, sort_keys=True) + "\n")
    v = verify(tmp_path / path.name)
    assert not v.ok and "metrics.t2a['mAP@10']" in v.message
