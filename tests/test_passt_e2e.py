"""PaSST through the whole harness: ``bench run --encoder passt`` as a user types it.

Every command runs as a real ``python -m bench`` subprocess with ``BENCH_CACHE`` and ``TORCH_HOME``
in the test's temporary directory. PaSST is always the full 12-layer, 86 M-parameter model (no
option makes it smaller), so the training runs keep the work small instead: 8 synthetic training
clips, 0.5 s windows (3 patch columns, so ``s_patchout_t=1``), one caption per clip, one batch
per epoch. On this 2-core machine one such run still takes about a minute (model construction
and AdamW over 86 M parameters dominate), so the training tests are marked ``slow``; the
missing-weights test is not.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=4",
    "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--set", "train.captions_per_audio=1",
    "--set", "train.keep=all",  # the tests read last.pt of a finished run
]
SHORT_WINDOWS = ["--set", "passt.window_seconds=0.5", "--set", "passt.max_seconds=0.5", "--set", "passt.s_patchout_t=1"]
CHECKPOINT_URL = "https://github.com/kkoutini/PaSST/releases/download/v0.0.2-audioset/passt-s-f128-p16-s16-ap.468.pt"


def bench(root: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m bench run ARGV`` with every cache and output under ``root``."""
    env = dict(os.environ)
    env.update(
        BENCH_CACHE=str(root / "cache"),
        TORCH_HOME=str(root / "torch_home"),  # empty: no PaSST weights can be found here
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("XDG_CACHE_HOME", None)
    command = [sys.executable, "-m", "bench", "run", *argv,
               "--results-dir", str(root / "results"), "--runs-dir", str(root / "runs"), "--no-leaderboard"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def results_of(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "results").glob("*.json"))]


def check_metrics(result: dict) -> None:
    for direction in ("t2a", "a2t"):
        for name in ("mAP@10", "R@1", "R@5", "R@10"):
            assert 0.0 <= result["metrics"][direction][name] <= 1.0
    assert result["metrics"]["t2a"]["R@1"] <= result["metrics"]["t2a"]["R@5"] <= result["metrics"]["t2a"]["R@10"]


# -- from scratch, NT-Xent ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ntxent_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("passt_ntxent")
    started = time.perf_counter()
    proc = bench(root, "--encoder", "passt", "--set", "passt.pretrained=false", "--loss", "ntxent",
                 *SHORT_WINDOWS, *TINY)
    return root, proc, time.perf_counter() - started


@pytest.mark.slow
def test_passt_from_scratch_trains_end_to_end(ntxent_run):
    root, proc, seconds = ntxent_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (result,) = results_of(root)
    assert result["audio_encoder"]["name"] == "passt" and result["loss"]["name"] == "ntxent"
    assert result["training"]["epochs"] == 1 and result["training"]["device"] == "cpu"
    assert len(result["history"]) == 1
    check_metrics(result)
    assert result["dataset"]["splits"]["test"]["n_audios"] == 4
    run_dir = root / "runs" / result["run_id"]
    assert (run_dir / "result.json").is_file() and (run_dir / "best.pt").is_file()
    print(f"passt ntxent tiny run: {seconds:.1f} s wall")


@pytest.mark.slow
def test_passt_gets_gradients_in_every_block(ntxent_run):
    # A from-scratch encoder is trained: AdamW must hold non-zero moments for all 12 transformer
    # blocks' parameters (not only the projections), and the checkpoint holds the whole encoder.
    import torch

    root, proc, _ = ntxent_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = results_of(root)
    run_dir = root / "runs" / result["run_id"]
    best = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True, mmap=True)
    block_keys = [k for k in best["model"] if k.startswith("audio_encoder.net.blocks.")]
    assert {k.split(".")[3] for k in block_keys} == {str(i) for i in range(12)}
    n_audio = sum(best["model"][k].numel() for k in best["model"] if k.startswith("audio_encoder."))
    assert n_audio > 80_000_000
    last = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True, mmap=True)
    moved = [s for s in last["optimizer"]["state"].values()
             if "exp_avg" in s and bool(s["exp_avg"].abs().sum() > 0)]
    assert len(moved) >= len(block_keys) + 2  # every block tensor, plus both projections


@pytest.mark.slow
def test_result_records_the_passt_options(ntxent_run):
    root, proc, _ = ntxent_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = results_of(root)
    encoder = result["audio_encoder"]
    # Every option, defaults filled in, so the run can be reproduced from the JSON alone.
    assert encoder["options"] == {
        "arch": "passt_s_p16_s16_128_ap468", "pretrained": False, "checkpoint": None,
        "s_patchout_t": 1, "s_patchout_f": 2, "window_seconds": 0.5, "max_seconds": 0.5,
        "freeze": False, "freqm": 48, "timem": 192,
    }
    # What the user set is kept apart from the defaults.
    assert encoder["set"] == {"pretrained": False, "window_seconds": 0.5, "max_seconds": 0.5, "s_patchout_t": 1}
    assert type(encoder["options"]["s_patchout_t"]) is int and type(encoder["options"]["window_seconds"]) is float


# -- distillation, both stages, frozen PaSST ---------------------------------------------------------------
@pytest.mark.slow
def test_passt_distill_runs_both_stages_from_the_smoke_preset(tmp_path):
    # A frozen encoder makes both stages cheap: PaSST's embeddings are computed once, cached on
    # disk, and stage 2 reads them back instead of running PaSST again.
    proc = bench(tmp_path, "--preset", "passt-synthetic-smoke", "--loss", "distill", "--set", "passt.freeze=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    results = {r["loss"]["name"]: r for r in results_of(tmp_path)}
    assert set(results) == {"ntxent", "distill"}
    teacher, student = results["ntxent"], results["distill"]
    assert teacher["stage"]["stage"] == 1 and teacher["stage"]["role"] == "teacher"
    assert student["stage"]["stage"] == 2 and student["stage"]["M"] == 1
    assert student["stage"]["teachers"] == [teacher["run_id"]]
    assert student["stage"]["init"] == teacher["run_id"]
    for result in (teacher, student):
        check_metrics(result)
        assert result["audio_encoder"]["options"]["freeze"] is True
        assert result["audio_encoder"]["options"]["pretrained"] is False
        assert result["training"]["preset"] == "passt-synthetic-smoke"
    # Stage 2 found every embedding stage 1 cached (train, val and test audio): no recomputation.
    lines = [line for line in proc.stderr.splitlines() if line.startswith("embedding cache:")]
    assert len(lines) == 2, proc.stderr[-3000:]
    assert " 0 computed" in lines[1] and " 0 hit(s)" not in lines[1]


# -- no weights offline: fail fast ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def missing_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("passt_missing")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = bench(root, "--encoder", "passt", *TINY, timeout=300)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return root, proc, wall, cpu


@pytest.mark.slow
def test_missing_weights_fail_fast_with_one_line(missing_weights):
    root, proc, wall, cpu = missing_weights
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    # The error is all there is on stderr: no run was announced, since none could start.
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench run: error: passt:"), proc.stderr
    line = lines[0]
    expected = root / "torch_home" / "hub" / "checkpoints" / "passt-s-f128-p16-s16-ap.468.pt"
    assert str(expected) in line
    assert CHECKPOINT_URL in line
    assert "--set passt.checkpoint=PATH" in line and "--set passt.pretrained=false" in line
    # Seconds, not the 12+ CPU seconds of building the 86 M-parameter model. CPU time is the
    # measure that holds on a loaded machine; wall time gets a generous bound.
    assert cpu < 15, f"{cpu:.1f} CPU s"
    assert wall < 60, f"{wall:.1f} s wall"
    print(f"missing weights: exit 2 after {wall:.1f} s wall, {cpu:.1f} CPU s")


@pytest.mark.slow
def test_missing_weights_write_no_checkpoint_or_result(missing_weights):
    root, proc, _, _ = missing_weights
    assert proc.returncode == 2
    assert not list(root.rglob("*.pt"))
    assert not (root / "results").exists() or not list((root / "results").glob("*.json"))
    # Nothing was fetched either: the torch hub cache stays empty.
    assert not (root / "torch_home").exists() or not any((root / "torch_home").rglob("*"))


@pytest.mark.slow
def test_missing_weights_leave_no_run_directory(missing_weights):
    root, proc, _, _ = missing_weights
    assert proc.returncode == 2
    # The run could not start, so nothing under runs/ (which find_existing would take for an
    # interrupted run of this combination).
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())
