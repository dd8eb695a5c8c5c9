"""The two-stage procedure of ensemble distillation of estimated correspondences.

``bench run --loss distill`` without ``--teachers`` first trains the same combination with the
stage-1 loss (``--set distill.stage1_loss=NAME``, default ``ntxent``; skipped when a finished
stage-1 run exists), then trains stage 2 from the
stage-1 best checkpoint with that model as its single teacher (self-distillation, M = 1).
``--teachers A,B,C`` uses earlier runs of any encoders as the ensemble; the student starts from
the teacher with the same encoders, or from ``--init RUN_ID``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from bench.core.config import ComponentSpec, RunConfig, config_from_json
from bench.core.registry import Registry
from bench.errors import ConfigError
from bench.model import distributed as dist
from bench.model.checkpoints import load_checkpoint
from bench.runs.run import find_existing, run_one
from bench.training.teachers import load_ensemble

log = logging.getLogger("bench")


def stage_one_loss(cfg: RunConfig, registry: Registry) -> ComponentSpec:
    """The loss of the stage-1 run: ``distill.stage1_loss`` (default ntxent), sharing the student's tau."""
    name = str(registry.resolve_options("loss", cfg.loss.name, cfg.loss.options).get("stage1_loss", "ntxent"))
    entry = registry.get("loss", name)  # an unknown name fails here, with the available losses
    if getattr(registry.build("loss", name, {}), "requires_teachers", False):
        raise ConfigError(f"--set {cfg.loss.name}.stage1_loss={name}: the stage-1 loss cannot need teachers itself")
    tau = cfg.loss.options.get("tau")
    return ComponentSpec(name, {"tau": tau} if tau is not None and "tau" in entry.option_defaults() else {})


def stage_one_config(cfg: RunConfig, registry: Registry) -> RunConfig:
    """The run that teaches a self-distilled student (see :func:`stage_one_loss`)."""
    return dataclasses.replace(
        cfg,
        loss=stage_one_loss(cfg, registry),
        teachers=(),
        init=None,
        run_id=None,
        resume=False,
        role="teacher",
    )


def _teacher_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"--teachers: {run_dir} is not a run directory (no config.json); check --runs-dir")
    return config_from_json(json.loads(path.read_text())["config"])


def _same_encoders(a: RunConfig, b: RunConfig) -> bool:
    return (a.audio_encoder == b.audio_encoder and a.text_encoder == b.text_encoder
            and a.train.proj_dim == b.train.proj_dim)


def init_state_of(run_id: str, runs_dir: Path) -> dict[str, Any]:
    """The best checkpoint's weights of a finished run (``--init``)."""
    path = Path(runs_dir) / run_id / "best.pt"
    if not path.is_file():
        raise ConfigError(f"--init {run_id}: {path} does not exist; pass a finished run under --runs-dir")
    return load_checkpoint(path)["model"]


def run_distillation(cfg: RunConfig, registry: Registry) -> dict[str, Any]:
    runs_dir = Path(cfg.runs_dir)
    teacher_ids = list(cfg.teachers)
    if not teacher_ids:
        teacher_cfg = stage_one_config(cfg, registry)
        done, unfinished = dist.broadcast_object(find_existing(teacher_cfg) if dist.is_main_process() else None)
        if done is not None:
            log.info("stage 1: reusing finished run %s", done["run_id"])
            teacher_ids = [done["run_id"]]
        else:
            if unfinished is not None:
                teacher_cfg.run_id = unfinished.name
            log.info("stage 1: training the %s teacher", teacher_cfg.loss.name)
            teacher_ids = [run_one(teacher_cfg, registry=registry)["run_id"]]
    teacher_dirs = [runs_dir / run_id for run_id in teacher_ids]
    teacher_cfgs = [_teacher_config(d) for d in teacher_dirs]

    init_id = cfg.init
    if init_id is None:
        # Prefer the teacher with the student's own seed, so that students of different seeds
        # start from different stage-1 models.
        by_seed = sorted(zip(teacher_ids, teacher_cfgs), key=lambda p: p[1].seed != cfg.seed)
        matching = [run_id for run_id, tcfg in by_seed
                    if _same_encoders(tcfg, cfg)]
        if not matching:
            raise ConfigError(
                "no teacher has the student's encoders and projection size, so the student has no stage-1 weights to "
                "start from; pass --init RUN_ID of a run with the same encoders"
            )
        init_id = matching[0]
    init_state = init_state_of(init_id, runs_dir)

    def teachers(train_split: Any) -> Any:
        kwargs = dict(device=cfg.device, batch_size=cfg.train.eval_batch_size, num_workers=cfg.train.num_workers,
                      registry=registry)
        if dist.is_main_process():  # one process embeds; the others read the finished store
            load_ensemble(teacher_dirs, train_split, **kwargs)
        dist.barrier()
        return load_ensemble(teacher_dirs, train_split, **kwargs)

    stage = {"stage": 2, "M": len(teacher_ids), "teachers": teacher_ids, "init": init_id, "role": cfg.role}
    log.info("stage 2: distilling from %d teacher(s), starting from %s", len(teacher_ids), init_id)
    return run_one(cfg, registry=registry, teachers=teachers, init_state=init_state, stage=stage)
