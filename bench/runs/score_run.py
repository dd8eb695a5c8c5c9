"""``bench score``'s ground truth and writing: the dataset's test split, loaded as ``bench run`` loads it.

The split is validated exactly as a run validates it (:func:`bench.runs.run.load_splits`: the same
``on_error`` policy, the same skipped entries), so its fingerprint, and therefore ``bench compare``
and the leaderboard, line a scored file up with the runs on that split. The parsing and scoring
are :mod:`bench.results.score_files`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bench.results.score_lists import Truth

log = logging.getLogger("bench")


def load_truth(dataset_name: str, set_options: dict[str, dict[str, Any]], registry: Any,
               split: str = "test") -> tuple[Truth, dict[str, Any], list[Any], Any]:
    """``(truth, the result's dataset block, skipped entries, the spec)`` of one split of a dataset."""
    from bench.core.config import dataset_spec
    from bench.data.datasets import build_dataset
    from bench.errors import ConfigError
    from bench.runs.run import SPLITS, component_json, load_splits

    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: use one of {', '.join(SPLITS)}")
    spec = dataset_spec(registry, dataset_name, set_options)
    dataset = build_dataset(spec, registry)
    splits, skipped, validation = load_splits(dataset, None)  # no model: no resampling to check
    block = {**component_json(registry, "dataset", spec), "splits": {"test": splits[split].summary()},
             "validation": validation}
    if split != "test":
        block["scored_split"] = split
    return Truth.from_split(spec.name, splits[split]), block, skipped, spec


def score_file(path: str | Path, dataset_name: str, set_options: dict[str, dict[str, Any]], *, registry: Any,
               results_dir: Path, runs_dir: Path, fmt: str | None = None, name: str | None = None,
               split: str = "test", force: bool = False) -> tuple[dict[str, Any], bool]:
    """Score ``path`` on the dataset's split; ``(result, written)``: an existing score of the same file,
    format and split is returned unwritten unless ``force``."""
    from bench.core.registry import plugin_distributions
    from bench.results.files import read_results_report
    from bench.results.provenance import provenance
    from bench.results.score_files import build_result, existing_score, score_path, write_score

    started = time.perf_counter()
    truth, block, skipped, spec = load_truth(dataset_name, set_options, registry, split)
    scored = score_path(path, truth, fmt)
    result = build_result(scored, truth, name=name or Path(path).stem, dataset_block=block, skipped=skipped,
                          provenance=provenance("cpu", plugin_distributions({"dataset": spec.evaluated_on},
                                                                            registry)),
                          started=started)
    if not force:
        found = existing_score(read_results_report(results_dir)[0], result["combination"])
        if found is not None:
            log.info("already scored as %s (use --force to score again)", found["run_id"])
            return found, False
    return write_score(result, scored, Path(results_dir), Path(runs_dir), truth), True


def template(fmt: str, dataset_name: str, set_options: dict[str, dict[str, Any]], registry: Any,
             split: str = "test") -> str:
    from bench.results.score_files import template as render

    truth = load_truth(dataset_name, set_options, registry, split)[0]
    return render(fmt, truth)
