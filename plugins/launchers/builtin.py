"""The built-in launchers, registered on ``register_launchers`` as a third party's would be.

Importing this module is cheap (``bench ls`` imports every plugin): torch and submitit are imported
only when a launcher launches.
"""

from __future__ import annotations

from typing import Any

import bench
from bench_plugins.launchers.slurm import slurm


class LocalLauncher:
    """Today's grid: every combination in this process, one after another."""

    def launch(self, configs: list[Any], request: Any) -> list[dict[str, Any]]:
        from bench.toolkit import run_grid

        return run_grid(configs, force=request.force)


class TorchrunLauncher:
    """Re-execute the same ``bench run`` under torchrun (DDP within this node)."""

    def launch(self, configs: list[Any], request: Any) -> list[dict[str, Any]] | None:
        from bench.toolkit import relaunch_with_torchrun

        relaunch_with_torchrun(request.args)  # replaces this process
        return None  # pragma: no cover


def local() -> LocalLauncher:
    return LocalLauncher()


def torchrun() -> TorchrunLauncher:
    return TorchrunLauncher()


@bench.hookimpl
def register_launchers(register: Any) -> None:
    register("local", local)
    register("torchrun", torchrun)
    register("slurm", slurm)
