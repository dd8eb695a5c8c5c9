"""Running ONE configuration: build its components, validate its data, train, write its result.

Data flows one way: CLI -> config -> registry -> data -> model -> trainer -> evaluator ->
results. Grids of configurations are :mod:`bench.runs.grid`'s business; checkpoints are
:mod:`bench.model.checkpoints`'.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import torch

from bench.core import faults, interrupts
from bench.core.atomic import atomic_write_text, remove_stale_temps
from bench.core.cache_dir import cache_root
from bench.core.config import RunConfig, config_to_json
from bench.core.console import attach_console
from bench.core.registry import Registry, get_registry, plugin_distributions
from bench.data.datasets import build_dataset
from bench.data.extra_captions import extra_captions_info
from bench.data.loading import SplitData
from bench.data.validate import apply_policy, validate_dataset
from bench.errors import DataError
from bench.evaluation.evaluate import TEST_EMBEDDINGS, embedding_artifacts
from bench.evaluation.per_query import write_per_query
from bench.model import distributed as dist
from bench.model.devices import describe_device, seed_everything
from bench.results.files import read_results_report, write_result
from bench.results.provenance import provenance
from bench.runs.lifecycle import Lifecycle, NoLifecycle
from bench.runs.retention import apply_retention
from bench.training.setup import Components
from bench.training.trainer import Trainer

log = logging.getLogger("bench")
SPLITS = ("train", "val", "test")
_WARNED: set[str] = set()  # unreadable result files already named in this process


def combination_id(cfg: RunConfig) -> str:
    return hashlib.sha256(cfg.combination_key().encode()).hexdigest()[:12]


def new_run_id(cfg: RunConfig) -> str:
    """Time, combination and seed, and a random suffix: two runs started in the same second by two
    processes never get the same id (and :func:`claim_run_dir` makes sure of it)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    parts = ["-".join(cfg.dataset.members), cfg.audio_encoder.name, cfg.text_encoder.name, cfg.loss.name]
    return f"{stamp}-{'-'.join(parts)}-s{cfg.seed}-{combination_id(cfg)[:6]}-{secrets.token_hex(3)}"


def claim_run_dir(cfg: RunConfig) -> Path:
    """Create a NEW run directory for ``cfg`` atomically (``mkdir`` without ``exist_ok``).

    ``mkdir`` succeeds in exactly one process, so a run directory is never shared; an id that is
    taken (a collision of the random suffix) is replaced by a fresh one.
    """
    runs_dir = Path(cfg.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            (runs_dir / cfg.run_id).mkdir()
            return runs_dir / cfg.run_id
        except FileExistsError:
            cfg.run_id = new_run_id(cfg)


def finish_from_results(cfg: RunConfig, run_dir: Path) -> dict[str, Any] | None:
    """The result of this run if it is already in ``--results-dir``, with the run directory completed.

    A run killed after writing its result but before copying it into its run directory is
    finished: its result is immutable, so training again could only fail at the end.
    """
    path = Path(cfg.results_dir) / f"{cfg.run_id}.json"
    if not path.is_file():
        return None
    text = path.read_text()
    result = json.loads(text)
    if run_dir.is_dir() and not (run_dir / "result.json").exists():
        atomic_write_text(run_dir / "result.json", text)
        log.info("run %s had finished (result %s); its run directory is now complete too", cfg.run_id, path)
    return result


def component_json(registry: Registry, kind: str, spec: Any) -> dict[str, Any]:
    if kind == "dataset" and spec.is_combination:
        resolved = {m: registry.resolve_options("dataset", m, spec.member_options(m)) for m in spec.members}
    else:
        resolved = registry.resolve_options(kind, spec.name, spec.options)
    return {"name": spec.name, "options": _jsonable(resolved), "set": _jsonable(spec.options)}


def dataset_roots(dataset: Any) -> dict[str, str]:
    """Absolute, resolved root of each member of the built dataset: the run's config.json keeps them; the
    published result only uses them to name paths under them ``$DATA_ROOT_<member>``."""
    members = list(zip(getattr(dataset, "names", ()), getattr(dataset, "datasets", ()))) or [
        (str(getattr(dataset, "name", "dataset")), dataset)]
    return {str(name): str(Path(member.root).expanduser().resolve())
            for name, member in members if getattr(member, "root", None) is not None}


def _extra_captions(dataset: Any) -> dict[str, Any]:
    """``{"extra_captions": {member: {file, sha256, n_captions, n_audios}}}`` when a member has them."""
    info = extra_captions_info(dataset)
    return {"extra_captions": info} if info else {}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def load_splits(dataset: Any, sample_rate: int,
                validate: bool = True) -> tuple[dict[str, SplitData], list[dict[str, Any]], dict[str, Any]]:
    """Validate every split before training; apply the dataset's ``on_error`` policy.

    Returns the splits, the entries skipped on the user's request, and the validation summaries.
    """
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


def _load_or_list_all(cfg: RunConfig, registry: Registry,
                      components: Components) -> tuple[dict[str, SplitData], list[dict[str, Any]], dict[str, Any]]:
    """:func:`load_splits`; a refused dataset is refused with every bad entry, as `bench validate` lists them."""
    from bench.data.full_report import full_reports, n_bad, refusal, report_lines

    sample_rate = int(components.audio_encoder.sample_rate)
    try:
        return load_splits(components.dataset, sample_rate)
    except DataError:
        if getattr(components.dataset, "on_error", "raise") != "raise":
            raise
        reports = full_reports(registry, cfg.dataset, sample_rate=sample_rate)
        if not n_bad(reports):
            raise  # not a bad entry (e.g. an empty split): the original message says it
        for line in report_lines(reports):
            log.error("%s", line)
        raise DataError(refusal(reports, cfg.dataset.name, cfg.dataset.evaluated_on)) from None


def find_existing(cfg: RunConfig) -> tuple[dict[str, Any] | None, Path | None]:
    """A finished result of the same combination and seed, or an unfinished run directory of it."""
    combo = combination_id(cfg)
    results, unreadable = read_results_report(cfg.results_dir)
    for problem in unreadable:  # not finished as far as we know; the file is left as it is
        if problem not in _WARNED:
            _WARNED.add(problem)
            log.warning("ignoring an unreadable result (treated as not finished): %s", problem)
    for result in results:
        if (result.get("combination") == combo and result.get("seed") == cfg.seed
                and result.get("kind", "train") == "train"):
            return result, None
    runs_dir = Path(cfg.runs_dir)
    if runs_dir.is_dir():
        for config_path in sorted(runs_dir.glob("*/config.json"), reverse=True):
            try:
                data = json.loads(config_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            finished = (config_path.parent / "result.json").exists()
            if data.get("combination") == combo and data.get("seed") == cfg.seed and not finished:
                return None, config_path.parent
    return None, None


def build_components(cfg: RunConfig, registry: Registry) -> Components:
    """Dataset, encoders and loss of a run, built after seeding so random inits are reproducible."""
    seed_everything(cfg.seed, 0)
    # Encoders first: a missing checkpoint fails in seconds, before a dataset is generated or read.
    audio_encoder = registry.build("audio_encoder", cfg.audio_encoder.name, cfg.audio_encoder.options)
    text_encoder = registry.build("text_encoder", cfg.text_encoder.name, cfg.text_encoder.options)
    loss = registry.build("loss", cfg.loss.name, cfg.loss.options)
    return Components(dataset=build_dataset(cfg.dataset, registry), audio_encoder=audio_encoder,
                      text_encoder=text_encoder, loss=loss)


def _write_config(cfg: RunConfig, run_dir: Path, roots: dict[str, str]) -> None:
    # The local absolute paths stay here, with the run; the published result names none of them.
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").exists():
        local = {"dataset_roots": roots, "runs_dir": str(Path(cfg.runs_dir).absolute()),
                 "results_dir": str(Path(cfg.results_dir).absolute())}
        atomic_write_text(
            run_dir / "config.json",
            json.dumps({"config": config_to_json(cfg), "combination": combination_id(cfg), "seed": cfg.seed,
                        "local": local}, indent=2) + "\n",
        )


def run_one(cfg: RunConfig, *, registry: Registry | None = None, teachers: Any = None,
            init_state: Any = None, stage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, validate and test one configuration; write and return its result."""
    attach_console()
    if dist.is_main_process():
        remove_stale_temps((cfg.runs_dir, cfg.results_dir, cache_root()))
    registry = registry or get_registry()
    started = time.perf_counter()
    fresh = cfg.run_id is None
    cfg.run_id = dist.broadcast_object(cfg.run_id or new_run_id(cfg))
    run_dir = Path(cfg.runs_dir) / cfg.run_id
    if (run_dir / "result.json").exists():
        result = json.loads((run_dir / "result.json").read_text())
        log.info("run %s is already complete (result in %s)", cfg.run_id, run_dir)
        return result
    finished = finish_from_results(cfg, run_dir) if dist.is_main_process() else None
    if dist.broadcast_object(finished) is not None:
        return finished
    # Components are built, the data validated and the loggers started before the run directory
    # exists, so a run that cannot start (missing weights, a bad dataset, a logger's missing
    # package) leaves nothing behind.
    components = build_components(cfg, registry)
    splits, skipped, validation = _load_or_list_all(cfg, registry, components)
    lifecycle = Lifecycle.for_run(registry, cfg.loggers) if dist.is_main_process() else NoLifecycle()
    resumed = (run_dir / "last.pt").is_file()
    if dist.is_main_process():
        if fresh:
            run_dir = claim_run_dir(cfg)
        _write_config(cfg, run_dir, dataset_roots(components.dataset))
    cfg.run_id = dist.broadcast_object(cfg.run_id)
    run_dir = Path(cfg.runs_dir) / cfg.run_id
    interrupts.note_run(cfg.run_id, Path(cfg.runs_dir))
    dist.barrier()
    with lifecycle:
        lifecycle.run_start(config=cfg, run_dir=run_dir, resumed=resumed)
        try:
            result = _train_and_test(cfg, registry, components, splits, skipped, validation, run_dir,
                                     teachers=teachers, init_state=init_state, stage=stage, lifecycle=lifecycle,
                                     started=started)
            interrupts.check()  # a stop signal whose exception was swallowed: no result, the run stops
        except BaseException as exc:
            lifecycle.run_end(config=cfg, run_dir=run_dir, result=None, error=exc)
            raise
        lifecycle.run_end(config=cfg, run_dir=run_dir, result=result, error=None)
        if dist.is_main_process():
            write_per_query(result, cfg.results_dir, run_dir / TEST_EMBEDDINGS, cfg.train.eval_chunk)
            path = write_result(result, cfg.results_dir, runs_dir=cfg.runs_dir)
            faults.reached("result-written")
            atomic_write_text(run_dir / "result.json", path.read_text())
            apply_retention(run_dir, cfg.train.keep)  # e.g. last.pt (weights + optimizer state) is not needed now
            lifecycle.result_written(path=path, result=result)
            log.info("test t2a mAP@10 %.4f (chance %.4f); result %s", result["metrics"]["t2a"]["mAP@10"],
                     result["chance"]["t2a"]["mAP@10"], path)
    return result


def _train_and_test(cfg: RunConfig, registry: Registry, components: Components, splits: dict[str, SplitData],
                    skipped: list[dict[str, Any]], validation: dict[str, Any], run_dir: Path, *, teachers: Any,
                    init_state: Any, stage: dict[str, Any] | None, lifecycle: Any, started: float) -> dict[str, Any]:
    from bench.evaluation.metrics import chance_metrics

    log.info("run %s: %s + %s, %s on %s, seed %d", cfg.run_id, cfg.audio_encoder.name, cfg.text_encoder.name,
             cfg.loss.name, cfg.dataset.name, cfg.seed)
    if skipped:
        log.info("skipping %d bad entries as asked (on_error=skip); they are listed in the result", len(skipped))
    if callable(teachers):
        teachers = teachers(splits["train"])
    trainer = Trainer.build(cfg, components, splits, run_dir, teachers=teachers, init_state=init_state,
                            lifecycle=lifecycle)
    trainer.try_resume()
    outcome = trainer.fit()
    test = splits["test"]
    device = describe_device(trainer.device)
    return {
        "run_id": cfg.run_id,
        "kind": "train",
        "combination": combination_id(cfg),
        "dataset": {**component_json(registry, "dataset", cfg.dataset), "roots": dataset_roots(components.dataset),
                    "splits": {name: split.summary() for name, split in splits.items()},
                    "validation": validation, **_extra_captions(components.dataset)},
        "audio_encoder": component_json(registry, "audio_encoder", cfg.audio_encoder),
        "text_encoder": component_json(registry, "text_encoder", cfg.text_encoder),
        "loss": component_json(registry, "loss", cfg.loss),
        "seed": cfg.seed,
        "training": {**_jsonable(vars(cfg.train)), "device": device,
                     "amp": str(trainer.amp).replace("torch.", "") if trainer.amp else "off",
                     "world_size": trainer.world_size, "preset": cfg.preset},
        "stage": stage or {"stage": 1, "M": None, "teachers": [], "init": cfg.init, "role": cfg.role},
        **({"pipeline": {**cfg.pipeline, "init_run": cfg.init}} if cfg.pipeline else {}),
        "metrics": outcome["metrics"],
        "best_val": outcome["best_val"],
        "chance": chance_metrics(test.audio_of_caption, test.n_audios),
        "history": outcome["history"],
        "skipped": skipped,
        "provenance": provenance(
            device,
            plugin_distributions({
                "dataset": cfg.dataset.evaluated_on,
                "audio_encoder": cfg.audio_encoder.name,
                "text_encoder": cfg.text_encoder.name,
                "loss": cfg.loss.name,
            }),
        ),
        "timings": {**outcome["timings"], "total_s": time.perf_counter() - started,
                    "torch_threads": torch.get_num_threads()},
        "artifacts": embedding_artifacts(run_dir),
    }
