"""Built-in logger ``wandb``: Weights & Biases, online or offline.

``bench run --logger wandb --set wandb.project=P --set wandb.entity=E --set wandb.mode=offline``.
W&B's files go to the run directory (``WANDB_DIR``), so an offline run is synced later with
``wandb sync <run dir>/wandb/offline-run-*``. Needs the ``wandb`` package
(``pip install 'bench[wandb]'``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from bench import hookimpl
from bench.errors import ConfigError
from bench.toolkit import missing_package
from bench_plugins.loggers._scalars import epoch_scalars, flatten

Mode = Literal["online", "offline", "disabled"]  # the options layer (bench.options) checks it


@hookimpl
def register_loggers(register: Any) -> None:
    """Register ``wandb``."""
    register("wandb", build_wandb)


def build_wandb(project: str = "bench", entity: str = "", mode: Mode = "online") -> Any:
    """A W&B logger; ``mode`` is online, offline or disabled, ``entity`` empty means your default."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ConfigError("logger 'wandb' needs the wandb package: pip install 'bench[wandb]'") from None
    return WandbLogger(project=project, entity=entity or None, mode=mode)


class WandbLogger:
    """One W&B run per bench run; its step is the epoch."""

    def __init__(self, project: str, entity: str | None, mode: str) -> None:
        self.project, self.entity, self.mode = project, entity, mode
        self.run: Any = None

    @hookimpl
    def on_run_start(self, config: Any, run_dir: Path) -> None:
        import wandb

        from bench.toolkit import config_to_json

        os.environ["WANDB_DIR"] = str(run_dir)  # W&B's own files stay with the run
        self.run = wandb.init(project=self.project, entity=self.entity, mode=self.mode, dir=str(run_dir),
                              name=config.run_id, config=config_to_json(config),
                              settings=wandb.Settings(silent=True))

    @hookimpl
    def on_epoch_end(self, epoch: int, train_loss: float, lr: list[float], val: dict[str, Any],
                     timings: dict[str, float]) -> None:
        self.run.log({"epoch": epoch, **epoch_scalars(train_loss, lr, val, timings)}, step=epoch)

    @hookimpl
    def on_run_end(self, result: dict[str, Any] | None, error: BaseException | None) -> None:
        if self.run is None:
            return
        if result is not None:
            self.run.summary.update(flatten("test", result.get("metrics", {})))
        self.run.finish(exit_code=0 if error is None else 1)
        self.run = None


def _preflight_wandb(**_: Any) -> list[str]:
    """Cheap check for bench.core.preflight: the package is installed (importing wandb takes seconds)."""
    return missing_package("wandb", "'bench[wandb]'")


build_wandb.preflight = _preflight_wandb  # type: ignore[attr-defined]
