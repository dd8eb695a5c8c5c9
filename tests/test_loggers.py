"""Loggers on the command line: ``bench run --logger NAME[,NAME]`` with ``--set NAME.KEY=VALUE``.

The slow test is the issue's done-when check: a tiny synthetic run with
``--logger tensorboard,wandb --set wandb.mode=offline`` writes a TensorBoard event file and an
offline W&B run whose per-epoch scalars are read back (TensorBoard's EventAccumulator; the
``.wandb`` file's records, parsed with W&B's own protobuf classes).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.cli.main import main

TINY = [
    "--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=12",
    "--set", "cnn.channels=8,8", "--set", "cnn.n_mels=16", "--set", "cnn.embed_dim=16", "--set", "cnn.crop_seconds=2",
    "--set", "train.captions_per_audio=1", "--device", "cpu",
    "--epochs", "2", "--batch-size", "8", "--num-workers", "0", "--proj-dim", "16", "--no-leaderboard",
]


@pytest.fixture
def no_training(monkeypatch):
    import bench.runs.grid

    def refuse(configs, *, force=False, registry=None):
        raise AssertionError("bench run reached run_grid: the logger should have failed before any work")

    monkeypatch.setattr(bench.runs.grid, "run_grid", refuse)


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("bench run: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_missing_logger_package_fails_before_training(monkeypatch, capsys, no_training) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert main(["run", "--logger", "tensorboard"]) == 2
    assert "pip install 'bench[tensorboard]'" in one_error_line(capsys.readouterr().err)


def test_bad_logger_option_fails_before_training(capsys, no_training) -> None:
    assert main(["run", "--logger", "wandb", "--set", "wandb.mood=offline"]) == 2
    assert "wandb.mode" in one_error_line(capsys.readouterr().err)  # did-you-mean


def test_unknown_logger_is_one_line(capsys, no_training) -> None:
    assert main(["run", "--logger", "tensorbord"]) == 2
    assert "did you mean 'tensorboard'" in one_error_line(capsys.readouterr().err)


def test_logger_options_reach_the_config(recorded, capsys) -> None:
    assert main(["run", "--logger", "wandb", "--set", "wandb.mode=offline", "--set", "wandb.project=p"]) == 0
    (cfg,) = recorded[0]
    assert [(s.name, s.options) for s in cfg.loggers] == [("wandb", {"mode": "offline", "project": "p"})]
    assert str(cfg.results_dir) == "runs/results"  # never the committed leaderboard/results by default


def wandb_history(run_dir: Path) -> list[dict[str, Any]]:
    """The history rows of the offline W&B run in ``run_dir``.

    A ``.wandb`` file is a ``:W&B`` header followed by LevelDB-log-style records (32 KiB blocks,
    7-byte record headers: crc32, length, type FULL/FIRST/MIDDLE/LAST), each a serialised
    ``wandb.proto.wandb_internal_pb2.Record``.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, raw, partial = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            raw.append(chunk)
        elif kind == 2:
            partial = chunk
        elif kind == 3:
            partial += chunk
        elif kind == 4:
            raw.append(partial + chunk)
    rows = []
    for record_bytes in raw:
        record = pb.Record()
        record.ParseFromString(record_bytes)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


@pytest.mark.slow
def test_tensorboard_and_offline_wandb_record_every_epoch(tmp_path, monkeypatch) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")  # belt and braces: never reach the network
    monkeypatch.chdir(tmp_path)
    assert main(["run", *TINY, "--logger", "tensorboard,wandb", "--set", "wandb.mode=offline"]) == 0
    (result_path,) = (tmp_path / "runs" / "results").glob("*.json")
    result = json.loads(result_path.read_text())
    run_dir = tmp_path / "runs" / result["artifacts"]["run_dir"]  # relative to the runs directory
    losses = [h["train_loss"] for h in result["history"]]
    val_map = [h["val"]["t2a"]["mAP@10"] for h in result["history"]]

    assert list(run_dir.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(losses)
    assert [e.value for e in events.Scalars("val/t2a/mAP@10")] == pytest.approx(val_map)

    rows = wandb_history(run_dir)
    assert [row["epoch"] for row in rows] == [1, 2]
    assert [row["train/loss"] for row in rows] == pytest.approx(losses)
    assert [row["val/t2a/mAP@10"] for row in rows] == pytest.approx(val_map)
    assert (run_dir / "log.txt").is_file() and (run_dir / "history.png").is_file()  # always on
    assert not (tmp_path / "leaderboard").exists()
