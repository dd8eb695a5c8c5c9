"""Running a GRID of configurations: skip the finished, resume the interrupted, dispatch each.

One configuration is :mod:`bench.runs.run`'s job; losses that need stage-1 teachers go through the
two-stage procedure of :mod:`bench.runs.distill`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.core.cache_dir import cache_path
from bench.core.config import RunConfig, config_from_json
from bench.core.console import attach_console
from bench.core.registry import Registry, get_registry
from bench.errors import ConfigError
from bench.model import distributed as dist
from bench.runs.distill import init_state_of, run_distillation
from bench.runs.pipeline import stage_init
from bench.runs.run import combination_id, find_existing, run_one

log = logging.getLogger("bench")


def _same_dir(a: Any, b: Any) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def latest_run(runs_dir: Path, *, results_dir: Path | None = None,
               combinations: set[tuple[str, int]] | None = None) -> str:
    """The run ``--resume latest`` means: the most recent UNFINISHED run under ``runs_dir`` that
    writes to ``results_dir`` and is one of ``combinations`` ((combination id, seed); None: any).

    When every matching run is finished, the latest finished one (resuming it completes its run
    directory and reports it). When none matches, a :class:`ConfigError` says so: resuming never
    silently picks a run of another results directory or combination.
    """
    matching: list[tuple[float, bool, str]] = []
    for config_path in Path(runs_dir).glob("*/config.json"):
        try:
            data = json.loads(config_path.read_text())
            stamp = config_path.stat().st_mtime
        except (OSError, ValueError):
            continue
        run_dir, written_to = config_path.parent, data.get("config", {}).get("results_dir", "")
        if results_dir is not None and not _same_dir(written_to, results_dir):
            continue
        if combinations is not None and (data.get("combination"), data.get("seed")) not in combinations:
            continue
        target = Path(results_dir or written_to)
        finished = (run_dir / "result.json").exists() or (target / f"{run_dir.name}.json").exists()
        matching.append((stamp, not finished, run_dir.name))
    scope = f"in {runs_dir}" + (f" writing to {results_dir}" if results_dir is not None else "") + (
        " for the combination(s) asked for" if combinations is not None else "")
    if not matching:
        raise ConfigError(f"--resume latest: nothing to resume: no run {scope}; start it with `bench run` "
                          f"(without --resume)")
    unfinished = sorted(m for m in matching if m[1])
    if unfinished:
        log.info("--resume latest: resuming %s, the latest unfinished run %s", unfinished[-1][2], scope)
        return unfinished[-1][2]
    latest = max(matching)[2]
    log.info("--resume latest: nothing to resume: every run %s is finished; the latest is %s", scope, latest)
    return latest


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
        log.info("[%d/%d] %s %s %s %s seed %d", index, len(configs), cfg.dataset.name, cfg.audio_encoder.name,
                 cfg.text_encoder.name, cfg.loss.name, cfg.seed)
        with claim_combination(cfg, skip=force):
            if cfg.run_id is None and not force:
                done, unfinished = dist.broadcast_object(find_existing(cfg) if dist.is_main_process() else None)
                if done is not None:
                    log.info("%s", reuse_line(done, cfg.results_dir))
                    if dist.is_main_process():
                        complete_run_dir(done, cfg.runs_dir)
                    results.append(done)
                    continue
                if unfinished is not None:
                    log.info("continuing the interrupted run %s", unfinished.name)
                    cfg.run_id = unfinished.name
            results.append(run_training(cfg, registry=registry))
    return results


def reuse_line(result: dict[str, Any], results_dir: Path) -> str:
    """What a reused result is: which file, its number, when and from which commit; how to retrain."""
    prov = result.get("provenance") or {}
    commit = prov.get("git_commit") or (prov.get("source") or {}).get("commit")
    made = f"commit {commit[:8]}{' (uncommitted changes)' if prov.get('git_dirty') else ''}" if commit else \
        f"bench {prov.get('bench_version', '?')} (no git commit recorded)"
    t2a = ((result.get("metrics") or {}).get("t2a") or {}).get("mAP@10")
    score = f", test t2a mAP@10 {100 * t2a:.2f}" if isinstance(t2a, (int, float)) else ""
    return (f"already done: reusing result {Path(results_dir) / (result['run_id'] + '.json')}{score}, "
            f"made {str(result.get('created', '?'))[:10]} by {made}; nothing is trained. "
            f"--force trains it again")


def complete_run_dir(result: dict[str, Any], runs_dir: Path) -> None:
    """Copy a finished result into its run directory if a kill left that directory without it."""
    from bench.core.safe_paths import inside

    run_dir = inside(runs_dir, str(result["run_id"]), what="run directory")
    if (run_dir / "config.json").is_file() and not (run_dir / "result.json").exists():
        atomic_write_text(run_dir / "result.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
        log.info("completed the run directory %s with its result", run_dir)


@contextlib.contextmanager
def claim_combination(cfg: RunConfig, *, skip: bool = False) -> Iterator[None]:
    """Hold the combination's lock for the block (a file under ``claims/`` of the cache root, named by
    the runs directory, the combination and the seed: nothing is written into the runs directory
    of a run that cannot start).

    Two identical ``bench run`` at once: the second WAITS (saying so) until the first finishes,
    then finds its result and reports it as already done, instead of training the same
    combination into the same or a second directory. The lock is an ``flock``, released by the
    kernel when its holder exits, killed or not. ``skip`` (``--force``: a deliberate repeat,
    which gets its own run id) takes no lock; nor do other ranks than 0, nor systems without
    ``fcntl``.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None  # type: ignore[assignment]
    if skip or fcntl is None or not dist.is_main_process():
        yield
        return
    runs = hashlib.sha256(str(Path(cfg.runs_dir).expanduser().resolve()).encode()).hexdigest()[:12]
    path = cache_path("claims", f"{runs}-{combination_id(cfg)}-s{cfg.seed}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another bench process is running this combination and seed into %s (lock %s); "
                     "waiting for it to finish", cfg.runs_dir, path)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_training(cfg: RunConfig, registry: Registry | None = None) -> dict[str, Any]:
    """One configuration, dispatching losses that need teachers to the two-stage procedure."""
    registry = registry or get_registry()
    # The loss declares whether it needs teachers; building it is cheap and validates its options.
    if cfg.pipeline and not cfg.init:  # a pipeline stage starts from its init stage's run (bench.runs.pipeline)
        cfg.init = stage_init(cfg)
    if getattr(registry.build("loss", cfg.loss.name, cfg.loss.options), "requires_teachers", False):
        return run_distillation(cfg, registry=registry)
    if cfg.init:
        stage = {"stage": 1, "M": None, "teachers": [], "init": cfg.init, "role": cfg.role}
        return run_one(cfg, registry=registry, init_state=init_state_of(cfg.init, Path(cfg.runs_dir)), stage=stage)
    return run_one(cfg, registry=registry)
