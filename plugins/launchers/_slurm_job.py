"""What one Slurm job runs: one combination of the grid, resumable, in one process group per job."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class CombinationJob:
    """A picklable call that trains one combination; submitit pickles it into the job.

    On preemption or at the time limit submitit calls :meth:`checkpoint` and requeues what it
    returns: the same call, which finds the run directory with ``last.pt`` and continues it (the
    ``--resume`` path), so the result equals that of an uninterrupted run.
    """

    def __init__(self, cfg: Any, cwd: str) -> None:
        self.cfg = cfg
        self.cwd = cwd  # relative --runs-dir/--results-dir mean what they meant where `bench run` was typed

    def __call__(self) -> dict[str, Any]:
        os.chdir(self.cwd)
        _join_process_group()
        from bench.toolkit import attach_console, run_grid

        attach_console()
        result = run_grid([self.cfg])[0]
        t2a = ((result.get("metrics") or {}).get("t2a") or {}).get("mAP@10")
        return {"run_id": result.get("run_id"), "t2a_mAP@10": t2a,
                "run_dir": str(Path(self.cfg.runs_dir) / str(result.get("run_id")))}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self)  # the same call resumes from last.pt


def _join_process_group() -> None:
    """Rank, world size and master address from Slurm (submitit's JobEnvironment) into the DDP path.

    One task per GPU and node (``ntasks_per_node = gpus_per_node``): with more than one task the
    tasks form one process group, exactly as torchrun's environment would make them.
    """
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks <= 1:
        return
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    from bench.toolkit import join_process_group

    join_process_group()
