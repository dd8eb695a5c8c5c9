"""Launchers (issue 14): the plugin hook, --launcher slurm through submitit, its dry run and its errors.

There is no Slurm here: the slow tests run the grid through submitit's LocalExecutor, the same
code path as on a cluster (``--set slurm.cluster=local`` changes only the executor class).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.core.registry import get_registry
from bench.results.files import read_result
from bench.runs.launchers import split_launcher_sets, strip_launcher_argv
from tests.conftest import torch_threads

TINY = [
    "--set", "synthetic.n_train=24", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
    "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--no-leaderboard",
    "--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32",
]
SLURM = ["--launcher", "slurm", "--set", "slurm.cluster=local"]


def test_builtin_launchers_are_plugins_on_the_hook():
    registry = get_registry()
    assert {"local", "torchrun", "slurm"} <= set(registry.names("launcher"))
    assert registry.entries["launcher"]["slurm"].distribution == "bench"


def test_launcher_sets_are_split_from_the_components_sets():
    rest, options = split_launcher_sets(["cnn.n_mels=32", "slurm.partition=gpu", "slurm.sbatch=--x=1"], "slurm")
    assert rest == ["cnn.n_mels=32"]
    assert options == {"partition": "gpu", "sbatch": "--x=1"}
    argv = ["run", "--launcher", "slurm", "--set", "slurm.qos=hi", "--set", "cnn.n_mels=32", "--dry-run"]
    assert strip_launcher_argv(argv, "slurm") == ["run", "--set", "cnn.n_mels=32"]


def test_slurm_time_forms():
    from bench_plugins.launchers.slurm import _minutes

    assert (_minutes("90"), _minutes("1:30:00"), _minutes("2-00:00:00")) == (90, 90, 2880)


def test_dry_run_prints_the_sbatch_directives_of_the_options(tmp_path, capsys, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    code = main(["run", *TINY, "--seed", "0,1", "--results-dir", str(tmp_path / "res"),
                 "--runs-dir", str(tmp_path / "runs"), "--launcher", "slurm", "--dry-run",
                 "--set", "slurm.partition=gpu", "--set", "slurm.account=lab", "--set", "slurm.qos=high",
                 "--set", "slurm.time=2:00:00", "--set", "slurm.gpus_per_node=4", "--set", "slurm.nodes=2",
                 "--set", "slurm.cpus_per_task=8", "--set", "slurm.mem=64G", "--set", "slurm.constraint=a100",
                 "--set", "slurm.sbatch=--mail-type=END --exclusive", "--set", "slurm.array_parallelism=1"])
    assert code == 0
    out = capsys.readouterr().out
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --qos=high", "#SBATCH --time=120",
                 "#SBATCH --gpus-per-node=4", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=64G", "#SBATCH --constraint=a100",
                 "#SBATCH --mail-type=END", "#SBATCH --exclusive", "#SBATCH --signal=USR2@90",
                 "#SBATCH --array=0-1%1"):
        assert line in out.splitlines(), line
    assert "2 job(s) as one job array" in out
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("slurm/*/*.pkl"))  # nothing submitted


def _err_of(capsys) -> str:
    return capsys.readouterr().err.strip()


def test_bad_slurm_input_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    dirs = ["--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs")]
    assert main(["run", *TINY, *dirs, "--launcher", "slurm", "--set", "slurm.partiton=gpu"]) == 2
    assert "Did you mean slurm.partition?" in _err_of(capsys)
    assert main(["run", *TINY, *dirs, "--launcher", "slurn"]) == 2
    assert "did you mean 'slurm'?" in _err_of(capsys)
    assert main(["run", *TINY, *dirs, "--launcher", "slurm", "--force"]) == 2
    assert "--force" in _err_of(capsys)
    assert main(["run", *TINY, *dirs, "--dry-run"]) == 2
    assert "--launcher slurm" in _err_of(capsys)


def test_missing_submitit_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    monkeypatch.setitem(sys.modules, "submitit.slurm.slurm", None)
    dirs = ["--results-dir", str(tmp_path / "res"), "--runs-dir", str(tmp_path / "runs")]
    for extra in ([], ["--dry-run"]):
        assert main(["run", *TINY, *dirs, "--launcher", "slurm", *extra]) == 2
        err = _err_of(capsys)
        assert len(err.splitlines()) == 1 and "pip install 'bench[slurm]'" in err, err


# -- through submitit's LocalExecutor (slow: trains three tiny runs twice, starts processes) -------------

@pytest.fixture
def one_thread(monkeypatch):
    """One torch thread here and in the jobs: several processes share two cores, and spinning threads
    cost more CPU than they save; both sides of every comparison run alike."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with torch_threads(1):
        yield


def _metrics(folder: Path) -> dict[int, dict]:
    return {r["seed"]: r["metrics"] for r in (read_result(p) for p in sorted(folder.glob("*.json")))}


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    pytest.importorskip("submitit")
    base = tmp_path_factory.mktemp("launchers")
    with torch_threads(1), pytest.MonkeyPatch.context() as patch:  # see one_thread
        patch.setenv("BENCH_CACHE", str(base / "cache"))
        patch.setenv("OMP_NUM_THREADS", "1")  # the jobs' torch: three processes on two shared cores
        common = [*TINY, "--seed", "0,1,2"]
        assert main(["run", *common, "--results-dir", str(base / "seq"), "--runs-dir", str(base / "seq_runs")]) == 0
        assert main(["run", *common, *SLURM, "--results-dir", str(base / "jobs"),
                     "--runs-dir", str(base / "job_runs")]) == 0
    return base


@pytest.mark.slow
def test_local_jobs_equal_the_sequential_grid(grids):
    sequential, jobs = _metrics(grids / "seq"), _metrics(grids / "jobs")
    assert sorted(sequential) == [0, 1, 2]
    assert jobs == sequential
    submissions = json.loads(next((grids / "job_runs" / "slurm").glob("grid-*/submissions.json")).read_text())
    assert len(submissions) == 3 and len({s["job_id"] for s in submissions}) == 3


@pytest.mark.slow
def test_a_second_submission_skips_finished_combinations(grids, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(grids / "cache"))
    assert main(["run", *TINY, "--seed", "0,1,2", *SLURM, "--results-dir", str(grids / "jobs"),
                 "--runs-dir", str(grids / "job_runs")]) == 0
    out = capsys.readouterr().out
    assert out.count("already done") == 3 and "nothing submitted" in out
    submissions = json.loads(next((grids / "job_runs" / "slurm").glob("grid-*/submissions.json")).read_text())
    assert len(submissions) == 3  # no new job


def _job_tasks(pid: int) -> list[int]:
    """The processes running ``submitit.core._submit`` under the local controller ``pid``."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            cmdline = Path(f"/proc/{current}/cmdline").read_bytes()
        except OSError:
            continue
        if b"submitit.core._submit" in cmdline:
            found.append(current)
        todo += [int(c) for c in children]
    return found


@pytest.mark.slow
def test_a_preempted_job_is_requeued_and_ends_with_the_same_metrics(grids, monkeypatch, one_thread):
    """USR2 is what Slurm sends before preemption or the time limit (``--signal=USR2@90``)."""
    import submitit

    from bench.runs.grid import config_for_resume
    from bench_plugins.launchers._slurm_job import CombinationJob
    from bench_plugins.launchers._slurm_submit import make_executor
    from bench_plugins.launchers.slurm import slurm

    monkeypatch.setenv("BENCH_CACHE", str(grids / "cache"))
    # Two epochs, so that USR2 can land after epoch 1's last.pt; the uninterrupted run is the reference.
    assert main(["run", *TINY, "--epochs", "2", "--seed", "0", "--results-dir", str(grids / "ref"),
                 "--runs-dir", str(grids / "ref_runs")]) == 0
    reference = read_result(next((grids / "ref").glob("*.json")))
    cfg = config_for_resume(reference["run_id"], grids / "ref_runs")
    cfg.run_id, cfg.resume = None, False
    cfg.runs_dir, cfg.results_dir = grids / "pre_runs", grids / "pre"
    executor = make_executor(submitit, slurm(cluster="local"), grids / "pre_logs")
    job = executor.submit(CombinationJob(cfg, os.getcwd()))
    deadline = time.monotonic() + 120
    while not list((grids / "pre_runs").glob("*/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list((grids / "pre_runs").glob("*/last.pt")), "the job never finished an epoch"
    tasks = _job_tasks(job._process.pid)
    assert tasks, "no running task under the job's controller"
    for pid in tasks:  # USR2 to the task, as Slurm sends it (submitit's local controller forwards only TERM)
        os.kill(pid, signal.SIGUSR2)
    out = job.result()
    log = Path(job.paths.stderr).read_text() + Path(job.paths.stdout).read_text()
    assert "this job is preempted" in log and "Requeued job" in log, log[-2000:]
    assert "resumed " in log and "after epoch" in log, log[-2000:]  # the second start picked up last.pt
    assert len(list((grids / "pre_runs").glob("*/config.json"))) == 1  # the same run, continued
    result = read_result(next((grids / "pre").glob("*.json")))
    assert result["run_id"] == out["run_id"]
    assert result["metrics"] == reference["metrics"]


@pytest.mark.slow
def test_status_shows_pending_running_done_and_failed(grids, tmp_path, capsys):
    """Three real finished jobs (done), and a pending, a running and a failed one as submitit leaves them."""
    import pickle
    import shutil

    folder = tmp_path / "grid"
    shutil.copytree(next((grids / "job_runs" / "slurm").glob("grid-*")), folder)
    records = json.loads((folder / "submissions.json").read_text())
    base = dict(records[0], combination="c" * 12)
    runs = tmp_path / "runs"
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "config.json").write_text(json.dumps({"combination": "c" * 12, "seed": 8}))
    (runs / "r1" / "log.txt").write_text("epoch 1/4 loss 2.0\nepoch 2/4 loss 1.9\n")
    records += [dict(base, seed=7, label="pending one", job_id="900"),
                dict(base, seed=8, label="running one", job_id="901", runs_dir=str(runs)),
                dict(base, seed=9, label="failed one", job_id="902")]
    (folder / "submissions.json").write_text(json.dumps(records))
    (folder / "901_0_log.err").write_text("submitit INFO - Starting with JobEnvironment(job_id=901, hostname=gpu17, "
                                          "local_rank=0(1))\n")
    (folder / "902_0_log.err").write_text("submitit INFO - Starting with JobEnvironment(job_id=902, hostname=gpu3)\n")
    with open(folder / "902_0_result.pkl", "wb") as handle:
        error = "Traceback (most recent call last):\n  ...\nDataError: clotho: no audio folder\n"
        pickle.dump(("error", error), handle)
    assert main(["status", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("done ") and "t2a mAP@10" in line for line in lines) == 3
    assert any(line.startswith("pending") and "pending one" in line for line in lines)
    assert any(line.startswith("running") and "node gpu17" in line and "epoch 2/4" in line for line in lines)
    failed = next(line for line in lines if line.startswith("failed"))
    assert "DataError: clotho: no audio folder" in failed and str(folder / "902_0_log.err") in failed
    assert lines[-1].endswith("3 done, 1 failed, 1 pending, 1 running")
