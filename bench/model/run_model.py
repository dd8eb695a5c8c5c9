"""A finished ``bench run`` as a retrieval model: its best checkpoint (encoders plus projections).

``bench eval RUN_ID --dataset X`` scores it on another benchmark without training. The run's
config.json says which components to rebuild; frozen pretrained towers are rebuilt by their
factories and everything else comes from ``best.pt`` (:mod:`bench.model.checkpoints`). The harness loads
audio at the run's own encoder rate, so a run trained at 32 kHz is scored at 32 kHz whatever the
files' rate.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import ConfigError


def _known_runs(runs_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in Path(runs_dir).glob("*/best.pt"))


def run_directory(run_id: str, runs_dir: Path) -> Path:
    """``runs_dir/run_id`` of a finished run, or a one-line error with a did-you-mean."""
    directory = Path(runs_dir) / run_id
    if (directory / "config.json").is_file() and (directory / "best.pt").is_file():
        return directory
    if (directory / "config.json").is_file():
        raise ConfigError(f"run {run_id} in {runs_dir} has no best.pt: it never finished an epoch; "
                          f"finish it with `bench run --resume {run_id}`")
    known = _known_runs(runs_dir)
    hint = difflib.get_close_matches(run_id, known, n=1, cutoff=0.5)
    where = f"no finished run {run_id!r} in {runs_dir}"
    if hint:
        raise ConfigError(f"{where}; did you mean {hint[0]!r}? (--runs-dir sets where runs are)")
    recent = ", ".join(known[-3:]) or "none"
    raise ConfigError(f"{where} (latest: {recent}); pass --runs-dir if it lives elsewhere")


def _plugin_of(directory: Path, kind: str) -> dict[str, str]:
    """The distribution that provided a component of the run, from its result's provenance."""
    try:
        result = json.loads((directory / "result.json").read_text())
        return dict(result["provenance"]["plugins"][kind])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def check_installed(directory: Path, registry: Any, components: dict[str, str]) -> None:
    """One line naming the missing plugin distribution if a component of the run is not installed."""
    for kind, name in components.items():
        if name in registry.entries.get(kind, {}):
            continue
        plugin = _plugin_of(directory, kind)
        dist = plugin.get("distribution")
        label = kind.replace("_", " ")
        if dist:
            version = plugin.get("version", "")
            raise ConfigError(f"run {directory.name} needs {label} {name!r} from plugin distribution {dist} {version}, "
                              f"which is not installed here; install it (pip install '{dist}=={version}')")
        registry.get(kind, name)  # unknown, with the registry's did-you-mean and failed plugins


class RunModel(nn.Module):
    """A trained :class:`bench.model.dual_encoder.DualEncoder` behind the retrieval-model contract."""

    stochastic = False

    def __init__(self, model: nn.Module, run_id: str, config: Any) -> None:
        super().__init__()
        self.model = model
        self.run_id = run_id
        self.config = config
        self.sample_rate = int(model.audio_encoder.sample_rate)
        self.max_seconds = float(getattr(model.audio_encoder, "max_seconds", 30.0))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {"name": "run", "run_id": self.run_id, "trained_on": cfg.dataset.name, "seed": cfg.seed,
                "audio_encoder": cfg.audio_encoder.to_json(), "text_encoder": cfg.text_encoder.to_json(),
                "loss": cfg.loss.to_json(), "sample_rate": self.sample_rate, "max_seconds": self.max_seconds}

    @torch.no_grad()
    def embed_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(waveforms.to(self.device), lengths.to(self.device))

    @torch.no_grad()
    def embed_text(self, captions: list[str]) -> torch.Tensor:
        return self.model.encode_text(list(captions))


def load_run_model(run_id: str, runs_dir: Path, registry: Any) -> RunModel:
    """Rebuild a finished run's dual encoder from its config.json and best.pt."""
    from bench.core.config import config_from_json
    from bench.model.checkpoints import load_checkpoint, load_model_state
    from bench.model.devices import seed_everything
    from bench.model.dual_encoder import DualEncoder

    directory = run_directory(run_id, runs_dir)
    cfg = config_from_json(json.loads((directory / "config.json").read_text())["config"])
    check_installed(directory, registry, {"audio_encoder": cfg.audio_encoder.name,
                                          "text_encoder": cfg.text_encoder.name})
    seed_everything(cfg.seed, 0)  # as the run built them: a frozen random tower is then the same
    audio = registry.build("audio_encoder", cfg.audio_encoder.name, cfg.audio_encoder.options)
    text = registry.build("text_encoder", cfg.text_encoder.name, cfg.text_encoder.options)
    model = DualEncoder(audio, text, cfg.train.proj_dim, audio_name=cfg.audio_encoder.name,
                        text_name=cfg.text_encoder.name)
    best = directory / "best.pt"
    load_model_state(model, load_checkpoint(best)["model"], str(best))
    return RunModel(model.eval(), run_id, cfg)
