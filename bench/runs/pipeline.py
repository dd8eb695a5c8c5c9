"""Pipelines: a preset's ``[[stages]]`` run in order, a later stage starting from an earlier one's model.

Each stage is a full run configuration (the preset's ``[run]``/``[set]`` with the stage's own tables
over them, then the command line's flags; ``--set STAGE:NAME.KEY=VALUE`` reaches one stage only).
A stage with ``init = "NAME"`` starts from the best checkpoint of stage NAME's run with the same
seed. The stages are ordinary configurations, in order, so :func:`bench.runs.grid.run_grid` skips
the finished ones, continues an interrupted one and reruns them with ``--force`` exactly as it does
for any grid: a pipeline killed in stage 2 reuses stage 1's result and continues stage 2.

Every stage records ``cfg.pipeline`` (``{name, stage, stage_name, stages: [{name, epochs, init}],
init_stage, init_combination}``) in its config and result. A stage's combination id includes the
pipeline's name, its stage and the combination of the stage it starts from (not that stage's run
id), so a stage's seeds share one combination and the leaderboard aggregates them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core.config import RunConfig
from bench.errors import ConfigError
from bench.results.files import read_results_report
from bench.runs.run import combination_id

log = logging.getLogger("bench")


def pipeline_configs(preset: dict[str, Any], build_stage: Callable[[dict[str, Any], set[str] | None], list[RunConfig]],
                     user_sets: list[str]) -> list[RunConfig]:
    """Every stage's configurations, stage by stage; ``build_stage(stage, used)`` builds one stage's
    grid and adds the command line's ``--set`` (of ``user_sets``) it used to ``used``."""
    name = Path(str(preset["path"])).stem
    stages = preset["stages"]
    used: set[str] = set()
    built: list[list[RunConfig]] = []
    for stage in stages:
        configs = build_stage(stage, used)
        if len({combination_id(cfg) for cfg in configs}) != 1:
            raise ConfigError(f"pipeline {name}: stage {stage['name']!r} names several combinations (lists of "
                              f"datasets, encoders or losses); a stage is one combination (seeds may be a list)")
        built.append(configs)
    record = [{"name": st["name"], "epochs": configs[0].train.epochs, "init": st.get("init")}
              for st, configs in zip(stages, built)]
    combinations: dict[str, str] = {}
    for index, (stage, configs) in enumerate(zip(stages, built), 1):
        for cfg in configs:
            cfg.pipeline = {"name": name, "stage": index, "stage_name": stage["name"], "stages": record,
                            "init_stage": stage.get("init"), "init_combination": combinations.get(stage.get("init"))}
        combinations[stage["name"]] = combination_id(configs[0])
    check_user_sets(user_sets, used)
    return [cfg for configs in built for cfg in configs]


def check_user_sets(sets: list[str], used: set[str]) -> None:
    """A ``--set`` that no stage of the pipeline took is a mistake, as it is for one grid."""
    for text in sets:
        if ":" not in text.partition("=")[0] and text not in used:
            raise ConfigError(f"--set {text}: no stage of this pipeline has a component named "
                              f"{text.partition('.')[0]!r}")


def stage_init(cfg: RunConfig) -> str | None:
    """The run id a pipeline stage starts from: the latest finished run of its init stage's
    combination with the same seed (None for a stage that starts from scratch)."""
    info = cfg.pipeline or {}
    if not info.get("init_stage"):
        return None
    started = Path(cfg.runs_dir) / str(cfg.run_id) / "config.json"
    if cfg.run_id and started.is_file():  # an interrupted stage keeps the run it started from
        recorded = json.loads(started.read_text())["config"].get("init")
        if recorded:
            return str(recorded)
    wanted = info.get("init_combination")
    results, _ = read_results_report(cfg.results_dir)
    found = sorted(r["run_id"] for r in results if r.get("combination") == wanted and r.get("seed") == cfg.seed
                   and r.get("kind", "train") == "train")
    if not found:
        raise ConfigError(f"pipeline {info.get('name')}: stage {info.get('stage_name')!r} starts from stage "
                          f"{info['init_stage']!r}, which has no finished run with seed {cfg.seed} in "
                          f"{cfg.results_dir}; run the whole pipeline (bench run --preset {info.get('name')})")
    log.info("pipeline %s, stage %d (%s): starting from %s, the %s stage's run", info.get("name"), info.get("stage"),
             info.get("stage_name"), found[-1], info["init_stage"])
    return found[-1]
