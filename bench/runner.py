"""Running configurations: building components, validating data, training, writing results.

Data flows one way: CLI -> config -> registry -> data -> model -> trainer -> evaluator ->
results -> leaderboard. This module is the glue between config and results.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from bench import distributed as dist
from bench.atomic import atomic_path, atomic_write_text
from bench.config import RunConfig, config_from_json, config_to_json
from bench.data import SplitData
from bench.errors import ConfigError, DataError
from bench.registry import Registry, get_registry, plugin_distributions
from bench.provenance import provenance
from bench.results import read_results, write_result

log = logging.getLogger("bench")
SPLITS = ("train", "val", "test")


def combination_id(cfg: RunConfig) -> str:
    return hashlib.sha256(cfg.combination_key().encode()).hexdigest()[:12]


def new_run_id(cfg: RunConfig) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    parts = [cfg.dataset.name.replace("+", "-"), cfg.audio_encoder.name, cfg.text_encoder.name, cfg.loss.name]
    return f"{stamp}-{'-'.join(parts)}-s{cfg.seed}-{combination_id(cfg)[:6]}"


def setup_logging(run_dir: Path) -> logging.Handler:
    log.setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and getattr(h, "_bench", False) for h in log.handlers):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(message)s"))
        console._bench = True  # type: ignore[attr-defined]
        log.addHandler(console)
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    return handler


def component_json(registry: Registry, kind: str, spec: Any) -> dict[str, Any]:
    if kind == "dataset" and "+" in spec.name:
        resolved = {m: registry.resolve_options("dataset", m, spec.options.get(m, {})) for m in spec.name.split("+")}
    else:
        resolved = registry.resolve_options(kind, spec.name, spec.options)
    return {"name": spec.name, "options": _jsonable(resolved), "set": _jsonable(spec.options)}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def load_splits(dataset: Any, sample_rate: int, validate: bool = True) -> tuple[dict[str, SplitData], list[dict[str, Any]], dict[str, Any]]:
    """Validate every split before training; apply the dataset's ``on_error`` policy.

    Returns the splits, the entries skipped on the user's request, and the validation summaries.
    """
    from bench.validate import apply_policy, validate_dataset

    on_error = getattr(dataset, "on_error", "raise")
    splits, skipped, summaries = {}, [], {}
    if validate:
        reports = validate_dataset(dataset, SPLITS, sample_rate=sample_rate)
        for name in SPLITS:
            kept, bad = apply_policy(reports[name], on_error)
            skipped.extend(b._asdict() for b in bad)
            if not kept and bad:
                raise DataError(f"the {name} split is empty: all {len(bad)} of its entries were bad and skipped "
                                f"(on_error=skip), e.g. {bad[0]}; run `bench validate` for the full list")
            summaries[name] = reports[name].summary()
            splits[name] = SplitData.from_items(name, kept)
    else:
        for name in SPLITS:
            splits[name] = SplitData.from_items(name, dataset.split(name))
    return splits, skipped, summaries


def find_existing(cfg: RunConfig) -> tuple[dict[str, Any] | None, Path | None]:
    """A finished result of the same combination and seed, or an unfinished run directory of it."""
    combo = combination_id(cfg)
    for result in read_results(cfg.results_dir):
        if result.get("combination") == combo and result.get("seed") == cfg.seed and result.get("kind", "train") == "train":
            return result, None
    runs_dir = Path(cfg.runs_dir)
    if runs_dir.is_dir():
        for config_path in sorted(runs_dir.glob("*/config.json"), reverse=True):
            try:
                data = json.loads(config_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("combination") == combo and data.get("seed") == cfg.seed and not (config_path.parent / "result.json").exists():
                return None, config_path.parent
    return None, None


def latest_run(runs_dir: Path) -> str:
    candidates = sorted((p.parent for p in Path(runs_dir).glob("*/config.json")), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError(f"--resume latest: no runs in {runs_dir}")
    return candidates[-1].name


def config_for_resume(run_id: str, runs_dir: Path) -> RunConfig:
    path = Path(runs_dir) / run_id / "config.json"
    if not path.is_file():
        known = sorted(p.parent.name for p in Path(runs_dir).glob("*/config.json"))
        raise ConfigError(f"--resume {run_id}: no run directory {path.parent} (known: {', '.join(known[-5:]) or 'none'})")
    cfg = config_from_json(json.loads(path.read_text())["config"])
    cfg.run_id = run_id
    cfg.runs_dir = Path(runs_dir)
    cfg.resume = True
    return cfg


def build_components(cfg: RunConfig, registry: Registry) -> Any:
    """Dataset, encoders and loss of a run, built after seeding so random inits are reproducible."""
    from bench.datasets import build_dataset
    from bench.trainer import Components, seed_everything

    seed_everything(cfg.seed, 0)
    # Encoders first: a missing checkpoint fails in seconds, before a dataset is generated or read.
    audio_encoder = registry.build("audio_encoder", cfg.audio_encoder.name, cfg.audio_encoder.options)
    text_encoder = registry.build("text_encoder", cfg.text_encoder.name, cfg.text_encoder.options)
    loss = registry.build("loss", cfg.loss.name, cfg.loss.options)
    return Components(dataset=build_dataset(cfg.dataset, registry), audio_encoder=audio_encoder,
                      text_encoder=text_encoder, loss=loss)


def run_one(cfg: RunConfig, *, registry: Registry | None = None, teachers: Any = None,
            init_state: Any = None, stage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, validate and test one configuration; write and return its result."""
    import torch

    from bench.metrics import chance_metrics
    from bench.trainer import Trainer, describe_device

    registry = registry or get_registry()
    started = time.perf_counter()
    cfg.run_id = dist.broadcast_object(cfg.run_id or new_run_id(cfg))
    run_dir = Path(cfg.runs_dir) / cfg.run_id
    if (run_dir / "result.json").exists():
        result = json.loads((run_dir / "result.json").read_text())
        log.info("run %s is already complete", cfg.run_id)
        return result
    # Components are built and the data validated before the run directory exists, so a run
    # that cannot start (missing weights, a bad dataset) leaves nothing behind.
    components = build_components(cfg, registry)
    splits, skipped, validation = load_splits(components.dataset, int(components.audio_encoder.sample_rate))
    if dist.is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "config.json").exists():
            atomic_write_text(
                run_dir / "config.json",
                json.dumps({"config": config_to_json(cfg), "combination": combination_id(cfg), "seed": cfg.seed}, indent=2) + "\n",
            )
    dist.barrier()
    handler = setup_logging(run_dir) if dist.is_main_process() else None
    try:
        log.info("run %s: %s + %s, %s on %s, seed %d", cfg.run_id, cfg.audio_encoder.name, cfg.text_encoder.name,
                 cfg.loss.name, cfg.dataset.name, cfg.seed)
        if skipped:
            log.info("skipping %d bad entries as asked (on_error=skip); they are listed in the result", len(skipped))
        if callable(teachers):
            teachers = teachers(splits["train"])
        trainer = Trainer(cfg, components, splits, run_dir, teachers=teachers, init_state=init_state)
        trainer.try_resume()
        outcome = trainer.fit()
        test = splits["test"]
        result = {
            "run_id": cfg.run_id,
            "kind": "train",
            "combination": combination_id(cfg),
            "dataset": {**component_json(registry, "dataset", cfg.dataset),
                        "splits": {name: split.summary() for name, split in splits.items()},
                        "validation": validation},
            "audio_encoder": component_json(registry, "audio_encoder", cfg.audio_encoder),
            "text_encoder": component_json(registry, "text_encoder", cfg.text_encoder),
            "loss": component_json(registry, "loss", cfg.loss),
            "seed": cfg.seed,
            "training": {**_jsonable(vars(cfg.train)), "device": describe_device(trainer.device),
                         "amp": str(trainer.amp).replace("torch.", "") if trainer.amp else "off",
                         "world_size": trainer.world_size, "preset": cfg.preset},
            "stage": stage or {"stage": 1, "M": None, "teachers": [], "init": cfg.init, "role": cfg.role},
            "metrics": outcome["metrics"],
            "best_val": outcome["best_val"],
            "chance": chance_metrics(test.audio_of_caption, test.n_audios),
            "history": outcome["history"],
            "skipped": skipped,
            "provenance": provenance(
                describe_device(trainer.device),
                plugin_distributions({
                    "dataset": cfg.dataset.name.split("+")[-1],
                    "audio_encoder": cfg.audio_encoder.name,
                    "text_encoder": cfg.text_encoder.name,
                    "loss": cfg.loss.name,
                }),
            ),
            "timings": {**outcome["timings"], "total_s": time.perf_counter() - started,
                        "torch_threads": torch.get_num_threads()},
            "artifacts": {"run_dir": str(run_dir), "test_embeddings": str(run_dir / "test_embeddings.npz")},
        }
        if dist.is_main_process():
            path = write_result(result, cfg.results_dir)
            atomic_write_text(run_dir / "result.json", path.read_text())
            log.info("test t2a mAP@10 %.4f (chance %.4f); result %s", result["metrics"]["t2a"]["mAP@10"],
                     result["chance"]["t2a"]["mAP@10"], path)
            plot_history(result, run_dir / "history.png")
        return result
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


def plot_history(result: dict[str, Any], path: Path) -> None:
    """Training loss and validation mAP@10 per epoch, next to the checkpoints."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is a convenience, never a reason to fail a run
        return
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


def run_grid(configs: list[RunConfig], *, force: bool = False, registry: Registry | None = None) -> list[dict[str, Any]]:
    """Run every configuration; finished combinations are skipped and interrupted ones resumed."""
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
        from bench.distill import run_distillation

        return run_distillation(cfg, registry=registry)
    if cfg.init:
        from bench.distill import init_state_of

        stage = {"stage": 1, "M": None, "teachers": [], "init": cfg.init, "role": cfg.role}
        return run_one(cfg, registry=registry, init_state=init_state_of(cfg.init, Path(cfg.runs_dir)), stage=stage)
    return run_one(cfg, registry=registry)
