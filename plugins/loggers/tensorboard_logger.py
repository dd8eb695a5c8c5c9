"""Built-in logger ``tensorboard``: scalars per epoch as TensorBoard event files.

``bench run --logger tensorboard``; the events go to the run directory unless
``--set tensorboard.log_dir=DIR``. Needs the ``tensorboard`` package
(``pip install 'bench[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import hookimpl
from bench.errors import ConfigError
from bench.toolkit import missing_package
from bench_plugins.loggers._scalars import epoch_scalars, flatten


@hookimpl
def register_loggers(register: Any) -> None:
    """Register ``tensorboard``."""
    register("tensorboard", build_tensorboard)


def build_tensorboard(log_dir: str = "") -> Any:
    """A TensorBoard writer; ``log_dir`` empty means the run directory."""
    try:
        import tensorboard  # noqa: F401  (torch's SummaryWriter needs it)
    except ImportError:
        raise ConfigError("logger 'tensorboard' needs the tensorboard package: "
                          "pip install 'bench[tensorboard]'") from None
    return TensorBoardLogger(log_dir)


class TensorBoardLogger:
    """One SummaryWriter per run; ``global_step`` is the epoch."""

    def __init__(self, log_dir: str = "") -> None:
        self.log_dir = log_dir
        self.writer: Any = None

    @hookimpl
    def on_run_start(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(self.log_dir).expanduser() if self.log_dir else run_dir))

    @hookimpl
    def on_epoch_end(self, epoch: int, train_loss: float, lr: list[float], val: dict[str, Any],
                     timings: dict[str, float]) -> None:
        for tag, value in epoch_scalars(train_loss, lr, val, timings).items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    @hookimpl
    def on_run_end(self, result: dict[str, Any] | None) -> None:
        if self.writer is None:
            return
        if result is not None:
            epoch = len(result.get("history") or [])
            for tag, value in flatten("test", result.get("metrics", {})).items():
                self.writer.add_scalar(tag, value, epoch)
        self.writer.close()
        self.writer = None


def _preflight_tensorboard(**_: Any) -> list[str]:
    """Torch-free check for bench.core.preflight: the package is installed (not imported)."""
    return missing_package("tensorboard", "'bench[tensorboard]'")


build_tensorboard.preflight = _preflight_tensorboard  # type: ignore[attr-defined]
