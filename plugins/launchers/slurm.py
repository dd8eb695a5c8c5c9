"""``bench run --launcher slurm``: every combination of the grid as one Slurm job, through submitit.

submitit (https://github.com/facebookincubator/submitit, ``pip install bench[slurm]``) writes the
sbatch script, submits it, pickles the call and requeues a preempted or timed-out job after
calling its ``checkpoint()``. Each job calls :func:`bench.runs.grid.run_grid` with its one
combination, so a requeued job resumes from ``last.pt``, a finished one is skipped, and the
combination's lock keeps a second submission from training it at the same time.

Options (``--set slurm.KEY=VALUE``) map onto sbatch: partition, account, qos, time (minutes or
[D-]HH:MM:SS), gpus_per_node, nodes, cpus_per_task, mem (``32G``), constraint, sbatch (extra flags,
``"--mail-type=END --exclusive"``), setup (shell lines before the job, ``;``-separated, e.g.
``module load cuda``), array_parallelism (N > 0: one job array running at most N at once),
folder (the log folder; default ``RUNS_DIR/slurm/GRID_ID``), cluster (``slurm``; ``local`` or
``debug`` run the same jobs with submitit's local executors, for tests and laptops).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

CLUSTERS = ("slurm", "local", "debug")


def slurm(partition: str = "", account: str = "", qos: str = "", time: str = "60", gpus_per_node: int = 0,
          nodes: int = 1, cpus_per_task: int = 0, mem: str = "", constraint: str = "", sbatch: str = "",
          setup: str = "", array_parallelism: int = 0, folder: str = "", cluster: str = "slurm",
          max_requeue: int = 3) -> SlurmLauncher:
    """The Slurm launcher; every option is an sbatch parameter unless said otherwise above."""
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster {cluster!r}: use one of {', '.join(CLUSTERS)}")
    if nodes < 1 or gpus_per_node < 0 or cpus_per_task < 0 or array_parallelism < 0 or max_requeue < 0:
        raise ValueError("nodes must be >= 1; gpus_per_node, cpus_per_task, array_parallelism and "
                         "max_requeue >= 0")
    params: dict[str, Any] = {"time": _minutes(time), "nodes": nodes,
                              # one task per GPU: each is one rank of the job's process group
                              "ntasks_per_node": max(1, gpus_per_node)}
    for key, value in (("partition", partition), ("account", account), ("qos", qos),
                       ("constraint", constraint)):
        if value:
            params[key] = value
    if gpus_per_node:
        params["gpus_per_node"] = gpus_per_node
    if cpus_per_task:
        params["cpus_per_task"] = cpus_per_task
    extra = _sbatch_flags(sbatch)
    if mem:  # given as sbatch spells it (32G, 500M); submitit's own mem would expect gigabytes
        extra["mem"] = mem
    if extra:
        params["additional_parameters"] = extra
    if setup:
        params["setup"] = [line.strip() for line in setup.split(";") if line.strip()]
    if array_parallelism:
        params["array_parallelism"] = array_parallelism
    return SlurmLauncher(params, folder=folder, cluster=cluster, array=array_parallelism > 0,
                         max_requeue=max_requeue)


def _minutes(text: str) -> int:
    """``90`` -> 90; ``1:30:00`` -> 90; ``2-00:00:00`` -> 2880 (sbatch's --time forms)."""
    text = str(text).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ValueError(f"time {text!r}: minutes (90) or [D-]HH:MM:SS (1:30:00)")
    days, first, second, third = match.groups()
    if second is None and days is None:
        return int(first)
    hours, minutes = int(first), int(second or 0)
    return int(days or 0) * 1440 + hours * 60 + minutes + (1 if third and int(third) else 0)


def _sbatch_flags(text: str) -> dict[str, Any]:
    """``"--mail-type=END --exclusive"`` -> ``{"mail-type": "END", "exclusive": True}``."""
    flags: dict[str, Any] = {}
    for token in shlex.split(text or ""):
        if not token.startswith("--"):
            raise ValueError(f"sbatch flag {token!r}: write long flags, e.g. --mail-type=END")
        key, eq, value = token[2:].partition("=")
        flags[key] = value if eq else True
    return flags


class SlurmLauncher:
    """Submits each unfinished combination of the grid (see the module docstring)."""

    def __init__(self, params: dict[str, Any], *, folder: str, cluster: str, array: bool, max_requeue: int) -> None:
        self.params = params
        self.folder = folder
        self.cluster = cluster
        self.array = array
        self.max_requeue = max_requeue

    def launch(self, configs: list[Any], request: Any) -> None:
        from bench_plugins.launchers._slurm_submit import submit_grid

        if request.args is not None and getattr(request.args, "resume", None):
            raise ConfigError("--launcher slurm resumes by itself: submit the same command again (finished "
                              "combinations are skipped, interrupted ones continue from last.pt); drop --resume")
        if request.force:
            raise ConfigError("--launcher slurm with --force: a requeued job could not tell its own run from "
                              "the old one; use another --results-dir and --runs-dir instead")
        submit_grid(self, configs, request)
        return None

    def log_folder(self, configs: list[Any]) -> Path:
        from bench_plugins.launchers._slurm_submit import grid_id

        folder = Path(self.folder) if self.folder else Path(configs[0].runs_dir) / "slurm" / grid_id(configs)
        return folder.expanduser().resolve()  # the jobs may start elsewhere
