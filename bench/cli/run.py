"""``bench run``: the grid a command line (and a preset) asks for, and the torchrun launcher."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

DEFAULTS = {
    "dataset": "synthetic",
    "encoder": "cnn",
    "text_encoder": "minilm",
    "loss": "ntxent",
}
RUN_KEYS = ("dataset", "encoder", "text_encoder", "loss", "seed", "device", "results_dir", "runs_dir", "teachers",
            "init", "logger")
# Flags that map onto TrainSettings (flag dest -> field).
TRAIN_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "head_lr": "head_lr",
    "proj_dim": "proj_dim",
    "num_workers": "num_workers",
}


def _merge_preset(args: argparse.Namespace, preset: dict[str, Any] | None = None,
                  stage: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str], list[str]]:
    """Values from the preset (and a pipeline stage's tables over its own), overridden by explicit
    flags; returns (values, preset sets, user sets)."""
    from bench.core.config import TrainSettings

    values: dict[str, Any] = {}
    sets: list[str] = []
    if preset is not None:
        allowed = set(RUN_KEYS) | set(TRAIN_FLAGS) | set(TrainSettings.keys())
        where = f"{preset['path']}" + (f" (stage {stage['name']!r})" if stage else "")
        for key, value in {**preset["run"], **(stage or {}).get("run", {})}.items():
            key = key.replace("-", "_")
            if key not in allowed:
                valid = ", ".join(sorted(allowed))
                raise ConfigError(f"{where}: unknown [run] key {key!r}; valid keys: {valid}")
            values[key] = ",".join(str(v) for v in value) if isinstance(value, list) else value
        for key, value in {**_flatten(preset["set"]), **_flatten((stage or {}).get("set", {}))}.items():
            sets.append(f"{key}={_preset_value(value)}")
    for key in (*RUN_KEYS, *TRAIN_FLAGS):
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    return values, sets, _user_sets(args, preset, stage)


def _user_sets(args: argparse.Namespace, preset: dict[str, Any] | None, stage: dict[str, Any] | None) -> list[str]:
    """The command line's ``--set``; ``STAGE:NAME.KEY=VALUE`` applies to one stage of a pipeline only."""
    names = [st["name"] for st in (preset or {}).get("stages", [])]
    out = []
    for text in args.set:
        scope, colon, rest = text.partition("=")[0].partition(":")
        if not colon:
            out.append(text)
        elif scope not in names:
            where = (f"stages of this pipeline: {', '.join(names)}" if names
                     else "only a preset with [[stages]] has stages")
            raise ConfigError(f"--set {text}: no stage named {scope!r} ({where})")
        elif stage is not None and scope == stage["name"]:
            out.append(text.split(":", 1)[1])
    return out


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"cnn": {"n_mels": 32}}`` (TOML's reading of ``cnn.n_mels = 32``) -> ``{"cnn.n_mels": 32}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _preset_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def cmd_run(args: argparse.Namespace) -> int:
    """``bench run``: build the grid of configurations, check the loggers, train what is not done."""
    from bench.core.console import attach_console
    from bench.runs.launchers import join_process_group, relaunch_with_torchrun

    attach_console()  # every line below, including "already done", must reach the terminal
    if args.launcher == "torchrun":
        return relaunch_with_torchrun(args)
    join_process_group()
    from bench.core import interrupts
    from bench.core.preflight import PreflightError
    from bench.core.registry import get_registry
    from bench.runs import launchers
    from bench.runs.lifecycle import check_loggers

    with interrupts.handling():
        try:
            registry = get_registry()
            if args.dry_run and args.preset and launchers.launcher_name(args) == launchers.DEFAULT_LAUNCHER:
                print_configs(args, registry)
                return 0
            launcher, args.set = launchers.build_launcher(args, registry)  # --set slurm.* is the launcher's
            try:
                configs = _resumed_configs(args, registry) if args.resume else _grid_configs(args, registry)
            except PreflightError as exc:  # every problem, one per line (main() would join them)
                print(f"bench run: error: {exc}", file=sys.stderr)
                return 2
            from bench.model import distributed as dist  # torch: only once the request is known to be sound

            if any(cfg.pipeline for cfg in configs) and launchers.launcher_name(args) not in ("local", "torchrun"):
                raise ConfigError("a pipeline's stages run one after another in one process: use the local or "
                                  "torchrun launcher (e.g. inside one Slurm job), not one job per stage")
            check_loggers(registry, configs[0].loggers)  # a logger that cannot start fails before training
            results = launcher.launch(configs, launchers.request_of(args, sys.argv[1:]))
            if results is None:  # submitted elsewhere (bench.runs.launchers): nothing finished here yet
                return 0
            interrupts.check()  # a signal whose exception a finalizer swallowed still ends the command
        except interrupts.Interrupted as exc:
            return _stopped(exc)
    if not args.no_leaderboard and results and dist.is_main_process():
        _show_leaderboard(configs[0].results_dir, results[-1])
    return 0


def print_configs(args: argparse.Namespace, registry: Any) -> None:
    """``--dry-run`` with a preset: every configuration (each stage of a pipeline), options resolved
    to the values a run would use, as JSON; nothing is checked on disk and nothing is trained."""
    import json

    from bench.core.config import config_to_json

    configs = _grid_configs(args, registry, check=False)
    for index, cfg in enumerate(configs, 1):
        info = cfg.pipeline or {}
        where = (f"pipeline {info['name']}, stage {info['stage']}/{len(info['stages'])} {info['stage_name']!r}"
                 + (f" (starts from stage {info['init_stage']!r})" if info.get("init_stage") else "")) if info else ""
        print(f"# configuration {index}/{len(configs)}: {where or cfg.preset or 'run'}, seed {cfg.seed}")
        data = config_to_json(cfg)
        for key, kind in (("dataset", "dataset"), ("audio_encoder", "audio_encoder"),
                          ("text_encoder", "text_encoder"), ("loss", "loss")):
            spec = getattr(cfg, key)
            members = spec.members if kind == "dataset" and spec.is_combination else ()
            data[key]["resolved"] = ({m: registry.resolve_options(kind, m, spec.member_options(m)) for m in members}
                                     or registry.resolve_options(kind, spec.name, spec.options))
        print(json.dumps(data, indent=2, default=str))


def _stopped(exc: Any) -> int:
    """The one line printed when SIGINT/SIGTERM stopped ``bench run``; 128 + the signal's number."""
    from bench.core import interrupts
    from bench.core.config import DEFAULT_RUNS_DIR

    print(f"bench: interrupted ({exc}); {interrupts.resume_hint(Path(DEFAULT_RUNS_DIR))}", file=sys.stderr,
          flush=True)
    return int(exc.exit_code)


def _resumed_configs(args: argparse.Namespace, registry: Any) -> list[Any]:
    from bench.core.config import DEFAULT_RUNS_DIR, component_spec, parse_set_options, split_list
    from bench.model.devices import select_device
    from bench.runs.grid import config_for_resume, latest_run

    runs_dir = Path(args.runs_dir or DEFAULT_RUNS_DIR)
    if args.resume == "latest":
        # Resolved within what the command line names: its --results-dir and, when it names
        # components or seeds, those combinations; never silently some other run.
        results_dir = Path(args.results_dir) if args.results_dir else None
        run_id = latest_run(runs_dir, results_dir=results_dir, combinations=_named_combinations(args, registry))
    else:
        run_id = args.resume
    cfg = config_for_resume(run_id, runs_dir)
    select_device(args.device or cfg.device)  # fail before any data or model work
    if args.device:
        cfg.device = args.device
    if args.results_dir:  # where the finished result goes may change; what is trained may not
        cfg.results_dir = Path(args.results_dir)
    if args.logger:  # how a run is watched may change too
        sets = parse_set_options(args.set)
        cfg.loggers = tuple(component_spec(registry, "logger", name, sets.get(name, {}))
                            for name in split_list(args.logger))
    return [cfg]


def _named_combinations(args: argparse.Namespace, registry: Any) -> set[tuple[str, int]] | None:
    """(combination id, seed) of the grid the flags name, or None when no flag names one."""
    from bench.runs.run import combination_id

    named = ("dataset", "encoder", "text_encoder", "loss", "seed", "preset")
    if all(getattr(args, key, None) is None for key in named):  # --set alone may be a logger's option
        return None
    return {(combination_id(cfg), cfg.seed) for cfg in _grid_configs(args, registry)}


def _grid_configs(args: argparse.Namespace, registry: Any, *, check: bool = True) -> list[Any]:
    """The grid the command line asks for; a preset with ``[[stages]]`` gives its pipeline's stages
    in order (:mod:`bench.runs.pipeline`). ``check=False`` skips the preflight (``--dry-run``)."""
    from bench.core.config import load_preset

    preset = load_preset(args.preset) if args.preset else None
    if preset is not None and preset["stages"]:
        from bench.runs.pipeline import pipeline_configs

        return pipeline_configs(preset, lambda stage, used: _stage_configs(args, registry, preset, stage, check, used),
                                list(args.set))
    return _stage_configs(args, registry, preset, None, check, None)


def _stage_configs(args: argparse.Namespace, registry: Any, preset: dict[str, Any] | None,
                   stage: dict[str, Any] | None, check: bool, used: set[str] | None) -> list[Any]:
    """One grid (a pipeline's stage when ``stage``; ``used`` collects the user's ``--set`` it took)."""
    from bench.core.config import (
        DEFAULT_RESULTS_DIR,
        DEFAULT_RUNS_DIR,
        DatasetSpec,
        build_grid,
        parse_set_options,
        split_list,
    )

    values, preset_sets, user_sets = _merge_preset(args, preset, stage)
    chosen = {key: split_list(values.get(key, default)) for key, default in DEFAULTS.items()}
    loggers = split_list(values.get("logger"))
    # A preset's options for a component that a flag replaced (e.g. --text-encoder minilm
    # instead of the preset's hf) no longer apply; a user's own stray --set is still an error.
    in_run = {"train", *chosen["encoder"], *chosen["text_encoder"], *chosen["loss"], *loggers,
              *(m for d in chosen["dataset"] for m in DatasetSpec.members_of(d))}
    if used is not None:  # a pipeline: a user's --set goes to the stages that have its component
        user_sets = [s for s in user_sets if s not in args.set or s.partition(".")[0] in in_run]  # STAGE:… stays
        used.update(user_sets)
    sets = [s for s in preset_sets if s.partition(".")[0] in in_run] + user_sets  # later --set wins
    train_overrides = {field: values[flag] for flag, field in TRAIN_FLAGS.items() if flag in values}
    for key in list(values):
        if key not in TRAIN_FLAGS and key not in RUN_KEYS:
            train_overrides[key] = values.pop(key)  # preset [run] keys naming TrainSettings fields
    seeds = [_int(s, "--seed") for s in split_list(str(values.get("seed", "0")))]
    if check:
        _preflight(registry, chosen, loggers, parse_set_options(sets), train_overrides, values)
    from bench.model.devices import select_device  # torch

    select_device(values.get("device", "auto"))  # fail before any data or model work
    return build_grid(
        datasets=chosen["dataset"],
        encoders=chosen["encoder"],
        text_encoders=chosen["text_encoder"],
        losses=chosen["loss"],
        seeds=seeds,
        set_options=parse_set_options(sets),
        train_overrides=train_overrides,
        registry=registry,
        loggers=loggers,
        device=values.get("device", "auto"),
        results_dir=Path(values.get("results_dir", DEFAULT_RESULTS_DIR)),
        runs_dir=Path(values.get("runs_dir", DEFAULT_RUNS_DIR)),
        teachers=tuple(split_list(values.get("teachers"))),
        init=values.get("init"),
        preset=args.preset,
    )


def _preflight(registry: Any, chosen: dict[str, list[str]], loggers: list[str], sets: dict[str, Any],
               train_overrides: dict[str, Any], values: dict[str, Any]) -> None:
    """Every problem of the request in one list, before torch is imported (bench.core.preflight)."""
    from bench.core.config import DEFAULT_RUNS_DIR
    from bench.core.preflight import raise_if_problems, request_problems

    raise_if_problems(request_problems(
        registry, datasets=chosen["dataset"], encoders=chosen["encoder"], text_encoders=chosen["text_encoder"],
        losses=chosen["loss"], loggers=loggers, set_options=sets, train_overrides=train_overrides,
        runs_dir=values.get("runs_dir", DEFAULT_RUNS_DIR), init=values.get("init"),
        flags={field: "--" + flag.replace("_", "-") for flag, field in TRAIN_FLAGS.items() if flag in values}))


def _show_leaderboard(results_dir: Path, result: dict[str, Any]) -> None:
    """Print the benchmark's table; leaderboard/README.md is rewritten only by `bench leaderboard`."""
    from bench.leaderboard import tables as leaderboard
    from bench.results.files import read_results_report

    results, _unreadable = read_results_report(results_dir)  # the run already named them once
    if any(r["run_id"] == result["run_id"] for r in results):
        print(leaderboard.dataset_table(results, result))


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected an integer or a comma-separated list of integers") from None
