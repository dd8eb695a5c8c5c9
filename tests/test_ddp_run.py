"""`bench run` under torchrun: two gloo CPU processes against one process with the same global batch.

What "equivalent" means here. Rank r of W takes indices r, r+W, r+2W, ... of one shared
permutation (bench.data.loading.EpochSampler), so batch k of rank r holds perm[W*k*B + r :: W] for B
pairs and the union over ranks of batch k is perm[W*k*B : W*(k+1)*B]: exactly the pairs of batch
k of one process with batch W*B, in another order (rank 0's rows first). The loss gathers the
global batch on every rank (bench.model.distributed.gather_batch_for_loss) and the contrastive loss is
invariant to the order of rows, so each step sees the same loss and, after DDP's averaging, the
same gradient. What can still differ: BatchNorm in a *trainable* audio encoder normalises with
per-rank batch statistics. So the comparison freezes the cnn (``cnn.freeze=true``; frozen encoders
run in eval mode) and MiniLM: only the projections train, and metrics must agree up to float
rounding (sums in another order).

The torchrun tests start 2-3 fresh interpreters each (torch + transformers imports) and take 30-90 s
on a loaded 2-core machine, so they are marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.data.loading import EpochSampler, SplitData

TINY = ["--set", "synthetic.n_train=16", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
        "--set", "cnn.freeze=true", "--epochs", "2", "--num-workers", "0", "--device", "cpu", "--no-leaderboard",
        "--set", "train.keep=all"]  # the tests look at last.pt of finished runs
PER_RANK_BATCH = 8
TIMEOUT = 400


# -- the sampler argument, checked without processes ---------------------------------------------
def _batches(sampler: EpochSampler, batch_size: int) -> list[list[int]]:
    indices = list(sampler)
    drop_last = len(indices) > batch_size  # the trainer's rule
    chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    return [c for c in chunks if len(c) == batch_size or not drop_last]


def _split(n_items: int, captions_per_item: int) -> SplitData:
    items = [SimpleNamespace(audio_id=f"a{i}", audio_path=f"a{i}.wav",
                             captions=[f"c{i}.{j}" for j in range(captions_per_item)]) for i in range(n_items)]
    return SplitData.from_items("train", items)


def _check_global_batches(n_items: int, captions: int, batch: int, captions_per_audio: int) -> None:
    split = _split(n_items, captions)
    for epoch in range(3):
        ranks = []
        for rank in range(2):
            sampler = EpochSampler(split, seed=5, batch_size=batch, captions_per_audio=captions_per_audio,
                                   rank=rank, world_size=2)
            sampler.set_epoch(epoch)
            ranks.append(_batches(sampler, batch))
        single = EpochSampler(split, seed=5, batch_size=2 * batch, captions_per_audio=captions_per_audio)
        single.set_epoch(epoch)
        single_batches = _batches(single, 2 * batch)
        assert len(ranks[0]) == len(ranks[1]) == len(single_batches), "same number of steps per epoch"
        for k, expected in enumerate(single_batches):
            # Contiguous blocks per global batch: the gathered batch is even in the same order.
            assert ranks[0][k] + ranks[1][k] == expected, (epoch, k)


# (items, captions per item, per-rank batch, captions_per_audio): 80, 32, 26, 14, 39 and 35 pairs per
# epoch; the last two do not divide by 2 x batch, and the remainder must be dropped, not padded into
# an extra DDP step.
@pytest.mark.parametrize("case", [(16, 5, 8, 0), (16, 5, 8, 2), (13, 3, 4, 2), (7, 5, 3, 2), (13, 3, 4, 0),
                                  (7, 5, 3, 0)])
def test_global_batches_of_two_ranks_are_the_single_process_batches(case):
    _check_global_batches(*case)


# -- real runs -----------------------------------------------------------------------------------
def _env(cache: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "BENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    env.update(extra or {})
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def _torchrun(nproc: int, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "bench", "run", *TINY, "--results-dir", str(out / "results"), "--runs-dir", str(out / "runs"), *extra]


def _only_result(out: Path) -> dict:
    files = list((out / "results").glob("*.json"))
    assert len(files) == 1, f"exactly one result file expected, found {files}"
    return json.loads(files[0].read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("ddp")
    cache = root / "cache"
    two = _run(_torchrun(2, root / "two", "--batch-size", str(PER_RANK_BATCH)), root, _env(cache))
    assert two.returncode == 0, two.stderr[-3000:]
    one = _run([sys.executable, "-m", "bench", "run", *TINY, "--batch-size", str(2 * PER_RANK_BATCH),
                "--results-dir", str(root / "one" / "results"), "--runs-dir", str(root / "one" / "runs")],
               root, _env(cache))
    assert one.returncode == 0, one.stderr[-3000:]
    return SimpleNamespace(root=root, cache=cache, two=root / "two", one=root / "one")


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(runs):
    two, one = _only_result(runs.two), _only_result(runs.one)
    assert two["training"]["world_size"] == 2 and one["training"]["world_size"] == 1
    assert two["training"]["batch_size"] == PER_RANK_BATCH and one["training"]["batch_size"] == 2 * PER_RANK_BATCH
    for direction in ("t2a", "a2t"):
        for metric, value in one["metrics"][direction].items():
            assert two["metrics"][direction][metric] == pytest.approx(value, abs=1e-6), (direction, metric)
    assert len(two["history"]) == len(one["history"]) == 2
    for a, b in zip(two["history"], one["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val"]["t2a"]["mAP@10"] == pytest.approx(b["val"]["t2a"]["mAP@10"], abs=1e-6)
        assert a["lr"] == pytest.approx(b["lr"]), "same number of steps, same schedule"
    # Training moved the projections: equality is not two untrained models agreeing.
    assert two["history"][0]["train_loss"] != pytest.approx(two["history"][1]["train_loss"], rel=1e-3)


@pytest.mark.slow
def test_only_rank_zero_writes(runs):
    result = _only_result(runs.two)
    run_dirs = [p for p in (runs.two / "runs").iterdir() if p.is_dir()]
    assert [p.name for p in run_dirs] == [result["run_id"]]
    names = sorted(p.name for p in run_dirs[0].iterdir())
    for required in ("best.pt", "config.json", "last.pt", "log.txt", "result.json", "test_embeddings.npz"):
        assert required in names
    assert not [n for n in names if n.startswith(".")], f"temp files left: {names}"
    log = (run_dirs[0] / "log.txt").read_text()
    assert log.count("epoch 2/2") == 1, "only rank 0 logs to the run's log file"


@pytest.mark.slow
def test_launcher_flag_reexecs_through_torchrun(runs):
    out = runs.root / "launcher"
    done = _run([sys.executable, "-m", "bench", "run", "--launcher", "torchrun", "--nproc", "2", *TINY,
                 "--batch-size", str(PER_RANK_BATCH), "--results-dir", str(out / "results"),
                 "--runs-dir", str(out / "runs")], runs.root, _env(runs.cache))
    assert done.returncode == 0, done.stderr[-3000:]
    result, reference = _only_result(out), _only_result(runs.two)
    assert result["training"]["world_size"] == 2
    for direction in ("t2a", "a2t"):
        for metric, value in reference["metrics"][direction].items():
            assert result["metrics"][direction][metric] == pytest.approx(value, abs=1e-7)


@pytest.mark.slow
def test_ranks_agree_on_the_run_id_when_rank_zero_is_late(runs, tmp_path):
    # Rank 0 is delayed by 1.5 s right after joining the process group, as on a loaded machine, so
    # rank 1 reaches the run id in an earlier second; the id must still be rank 0's (one run dir).
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '0' and os.environ.get('BENCH_TEST_DELAY_RANK0'):\n"
        "    import time\n"
        "    import torch.distributed as _d\n"
        "    _init = _d.init_process_group\n"
        "    def _late(*a, **k):\n"
        "        out = _init(*a, **k)\n"
        "        time.sleep(1.5)\n"
        "        return out\n"
        "    _d.init_process_group = _late\n"
    )
    env = _env(runs.cache, {"BENCH_TEST_DELAY_RANK0": "1",
                            "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))})
    out = tmp_path / "late"
    done = _run(_torchrun(2, out, "--batch-size", str(PER_RANK_BATCH), "--epochs", "1"), tmp_path, env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((out / "runs").iterdir())) == 1
    assert _only_result(out)["training"]["world_size"] == 2
