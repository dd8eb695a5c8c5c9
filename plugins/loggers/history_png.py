"""Built-in logger ``history_png`` (always on): training loss and validation mAP@10 per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import hookimpl


@hookimpl
def register_loggers(register: Any) -> None:
    """Register ``history_png``."""
    register("history_png", HistoryPlot)


class HistoryPlot:
    """Draws ``<run dir>/history.png`` when a run finishes."""

    @hookimpl
    def on_run_end(self, run_dir: Path, result: dict[str, Any] | None) -> None:
        if result is not None:
            plot_history(result, Path(run_dir) / "history.png")


def plot_history(result: dict[str, Any], path: Path) -> None:
    """Training loss and validation mAP@10 per epoch, next to the checkpoints."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is a convenience, never a reason to fail a run
        return
    from bench.toolkit import atomic_path

    history = result.get("history") or []
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="train loss", title="loss")
    right.plot(epochs, [h["val"]["t2a"]["mAP@10"] * 100 for h in history], marker="o", label="val t2a mAP@10")
    right.axhline(result["chance"]["t2a"]["mAP@10"] * 100, color="grey", linestyle="--", label="chance")
    right.set(xlabel="epoch", ylabel="%", title="validation")
    right.legend()
    fig.suptitle(result["run_id"], fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
