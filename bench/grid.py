"""Running a GRID of configurations: skip the finished, resume the interrupted, dispatch each.

One configuration is :mod:`bench.run`'s job; losses that need stage-1 teachers go through the
two-stage procedure of :mod:`bench.distill`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from bench import distributed as dist
from bench.config import RunConfig, config_from_json
from bench.console import attach_console
from bench.distill import init_state_of, run_distillation
from bench.errors import ConfigError
from bench.registry import Registry, get_registry
from bench.run import find_existing, run_one

log = logging.getLogger("bench")


def latest_run(runs_dir: Path) -> str:
    """The id of the most recently started run under ``runs_dir`` (``--resume latest``)."""
    candidates = sorted((p.parent for p in Path(runs_dir).glob("*/config.json")), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError(f"--resume latest: no runs in {runs_dir}")
    return candidates[-1].name


def config_for_resume(run_id: str, runs_dir: Path) -> RunConfig:
    """The configuration an interrupted run was started with, read back from its config.json."""
    path = Path(runs_dir) / run_id / "config.json"
    if not path.is_file():
        known = sorted(p.parent.name for p in Path(runs_dir).glob("*/config.json"))
        recent = ", ".join(known[-5:]) or "none"
        raise ConfigError(f"--resume {run_id}: no run directory {path.parent} (known: {recent})")
    cfg = config_from_json(json.loads(path.read_text())["config"])
    cfg.run_id = run_id
    cfg.runs_dir = Path(runs_dir)
    cfg.resume = True
    return cfg


def run_grid(configs: list[RunConfig], *, force: bool = False,
             registry: Registry | None = None) -> list[dict[str, Any]]:
    """Run every configuration; finished combinations are skipped and interrupted ones resumed."""
    attach_console()  # before the first line below, or "already done" would be invisible
    results = []
    for index, cfg in enumerate(configs, 1):
        if len(configs) > 1:
            log.info("[%d/%d] %s %s %s %s seed %d", index, len(configs), cfg.dataset.name, cfg.audio_encoder.name,
                     cfg.text_encoder.name, cfg.loss.name, cfg.seed)
        if cfg.run_id is None and not force:
            done, unfinished = dist.broadcast_object(find_existing(cfg) if dist.is_main_process() else None)
            if done is not None:
                log.info("already done as %s (use --force to run it again)", done["run_id"])
                results.append(done)
                continue
            if unfinished is not None:
                log.info("continuing the interrupted run %s", unfinished.name)
                cfg.run_id = unfinished.name
        results.append(run_training(cfg, registry=registry))
    return results


def run_training(cfg: RunConfig, registry: Registry | None = None) -> dict[str, Any]:
    """One configuration, dispatching losses that need teachers to the two-stage procedure."""
    registry = registry or get_registry()
    # The loss declares whether it needs teachers; building it is cheap and validates its options.
    if getattr(registry.build("loss", cfg.loss.name, cfg.loss.options), "requires_teachers", False):
        return run_distillation(cfg, registry=registry)
    if cfg.init:
        stage = {"stage": 1, "M": None, "teachers": [], "init": cfg.init, "role": cfg.role}
        return run_one(cfg, registry=registry, init_state=init_state_of(cfg.init, Path(cfg.runs_dir)), stage=stage)
    return run_one(cfg, registry=registry)
