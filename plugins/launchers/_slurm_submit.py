"""Submitting a grid with submitit: skip the finished, print the sbatch script or the job ids."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.toolkit import atomic_write_text

INSTALL_HINT = "--launcher slurm needs submitit: pip install 'bench[slurm]' (or pip install submitit)"
SUBMISSIONS = "submissions.json"  # in the log folder: which job ran which combination (bench status)


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return submitit


def grid_id(configs: list[Any]) -> str:
    """The same grid (combinations, seeds, results directory) gets the same id, so the same log folder."""
    from bench.toolkit import combination_id

    keys = sorted(f"{combination_id(c)}-s{c.seed}" for c in configs)
    payload = json.dumps({"keys": keys, "results": str(Path(configs[0].results_dir).expanduser().resolve())})
    return "grid-" + hashlib.sha256(payload.encode()).hexdigest()[:12]


def label(cfg: Any) -> str:
    return f"{cfg.dataset.name} {cfg.audio_encoder.name} {cfg.text_encoder.name} {cfg.loss.name} seed {cfg.seed}"


def submit_grid(launcher: Any, configs: list[Any], request: Any) -> None:
    """Submit the unfinished combinations (or print their sbatch script with ``--dry-run``)."""
    from bench.toolkit import combination_id, find_existing, reuse_line

    folder = launcher.log_folder(configs)
    todo = []
    for cfg in configs:
        done, _unfinished = find_existing(cfg)
        if done is not None:
            print(f"{label(cfg)}: {reuse_line(done, cfg.results_dir)}", flush=True)
        else:
            todo.append(cfg)
    if not todo:
        print(f"every combination of the grid is done; nothing submitted (logs of earlier jobs: {folder})")
        return
    if request.dry_run:
        print(dry_run_script(launcher, folder, len(todo)))
        print(f"# --dry-run: {len(todo)} job(s) not submitted; logs would go to {folder}")
        return
    submitit = _submitit()
    from bench_plugins.launchers._slurm_job import CombinationJob

    executor = make_executor(submitit, launcher, folder)
    cwd = os.getcwd()
    jobs_in = [CombinationJob(cfg, cwd) for cfg in todo]
    if launcher.array and len(jobs_in) > 1:
        jobs = _submit_array(executor, jobs_in)  # one sbatch: a job array of len(todo)
    else:
        jobs = [executor.submit(job) for job in jobs_in]
    records = []
    for cfg, job in zip(todo, jobs):
        print(f"submitted {label(cfg)}: job {job.job_id}", flush=True)
        records.append({"combination": combination_id(cfg), "seed": cfg.seed, "label": label(cfg),
                        "job_id": str(job.job_id), "cluster": launcher.cluster,
                        "results_dir": str(Path(cfg.results_dir).expanduser().resolve()),
                        "runs_dir": str(Path(cfg.runs_dir).expanduser().resolve()),
                        "submitted": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")})
    _record(folder, records)
    print(f"{len(jobs)} job(s) submitted; logs in {folder}; `bench status {folder}` shows where they are",
          flush=True)
    request.jobs = jobs  # for a caller (tests) that waits on them
    if launcher.cluster != "slurm":  # local jobs are children of this process: wait for them
        wait_for(todo, jobs, folder)


def wait_for(configs: list[Any], jobs: list[Any], folder: Path) -> None:
    """Each job's outcome, one line; the failed ones named at the end (exit 2), the rest still finish."""
    failed = []
    for cfg, job in zip(configs, jobs):
        error = job.exception()
        if error is None:
            out = job.result()
            print(f"job {job.job_id} done: {label(cfg)}: run {out['run_id']}, t2a mAP@10 {out['t2a_mAP@10']}",
                  flush=True)
        else:
            last = [line for line in str(error).strip().splitlines() if line.strip()][-1:] or ["(no message)"]
            failed.append(f"job {job.job_id} ({label(cfg)}): {last[0].strip()} (log {job.paths.stderr})")
    if failed:
        raise ConfigError(f"{len(failed)} of {len(jobs)} job(s) failed: " + "; ".join(failed))


def _submit_array(executor: Any, jobs_in: list[Any]) -> list[Any]:
    with executor.batch():
        jobs = [executor.submit(job) for job in jobs_in]
    return jobs


def make_executor(submitit: Any, launcher: Any, folder: Path) -> Any:
    """submitit's SlurmExecutor, or its LocalExecutor/DebugExecutor: the only difference between them."""
    log_pattern = Path(folder)  # flat: FOLDER/JOBID_0_log.out, .err, JOBID_submitted.pkl, JOBID_0_result.pkl
    if launcher.cluster == "slurm":
        executor = submitit.SlurmExecutor(folder=log_pattern, max_num_timeout=launcher.max_requeue)
        executor.update_parameters(job_name="bench", **launcher.params)
        return executor
    if launcher.cluster == "debug":  # in this process, one job after another
        return submitit.DebugExecutor(folder=log_pattern)
    executor = submitit.LocalExecutor(folder=log_pattern, max_num_timeout=launcher.max_requeue)
    executor.update_parameters(timeout_min=launcher.params["time"], nodes=1,
                               tasks_per_node=launcher.params["ntasks_per_node"])
    return executor


def dry_run_script(launcher: Any, folder: Path, n_jobs: int) -> str:
    """The sbatch script submitit would submit, rendered without sbatch (submitit's own renderer)."""
    try:
        from submitit.slurm.slurm import _make_sbatch_string
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    params = dict(launcher.params)
    params.setdefault("job_name", "bench")
    if launcher.array and n_jobs > 1:
        params["map_count"] = n_jobs
    else:
        params.pop("array_parallelism", None)
    command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(folder))])
    script = _make_sbatch_string(command=command, folder=folder, **params)
    head = f"# {n_jobs} job(s)" + (" as one job array" if "map_count" in params else ", each with this script")
    return head + "\n" + script


def _record(folder: Path, records: list[dict[str, Any]]) -> None:
    path = Path(folder) / SUBMISSIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        known = json.loads(path.read_text()) if path.is_file() else []
    except ValueError:
        known = []
    atomic_write_text(path, json.dumps(known + records, indent=2) + "\n")
