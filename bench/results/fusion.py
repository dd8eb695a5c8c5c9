"""Late fusion of several runs' test scores: CombSUM and reciprocal rank fusion.

Each run keeps its test embeddings (``test_embeddings.npz`` in its run directory), so the
score matrices are recomputed chunk by chunk and fused without ever holding a full matrix:
the fused scores feed the same chunked metric driver as a single run.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.config import DEFAULT_RESULTS_DIR
from bench.errors import BenchError, ConfigError
from bench.results.files import find_result, read_results_report, utc_now, write_result

METHODS = ("combsum", "rrf")


def minmax_rows(scores: torch.Tensor) -> torch.Tensor:
    """Scale each query's scores to [0, 1]; a constant row becomes all zeros."""
    low = scores.min(dim=1, keepdim=True).values
    span = scores.max(dim=1, keepdim=True).values - low
    return torch.where(span > 0, (scores - low) / span.clamp(min=1e-12), torch.zeros_like(scores))


def competition_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Rank 1 + number of strictly higher scores in the row; tied items share a rank."""
    ordered = scores.sort(dim=1, descending=True).values
    # Items strictly above s = n - (items <= s); searchsorted on the ascending order counts them.
    ascending = ordered.flip(1).contiguous()
    at_most = torch.searchsorted(ascending, scores.contiguous(), right=True)
    return (scores.shape[1] - at_most + 1).to(scores.dtype)


def fuse_scores(parts: list[torch.Tensor], method: str, weights: list[float], k: float) -> torch.Tensor:
    """Fuse the score chunks of several runs for the same queries and items."""
    if method == "combsum":
        return sum(w * minmax_rows(p) for w, p in zip(weights, parts))
    if method == "rrf":
        return sum(w / (k + competition_ranks(p)) for w, p in zip(weights, parts))
    raise ConfigError(f"fusion method {method!r}: use one of {', '.join(METHODS)}")


def _load_embeddings(result: dict[str, Any], runs_dirs: list[Path]) -> dict[str, np.ndarray]:
    from bench.results.local_paths import artifact_path

    path = artifact_path(result, "test_embeddings", runs_dirs)
    if path is None or not path.is_file():
        recorded = (result.get("artifacts") or {}).get("test_embeddings", "none recorded")
        raise BenchError(
            f"run {result['run_id']}: its test embeddings ({recorded}) are not under {', '.join(map(str, runs_dirs))}; "
            "fusion needs the run directory of every run (pass --runs-dir; they are not part of the committed results)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as exc:  # truncated zip, foreign file, pickled arrays: all "unusable", one line
        raise BenchError(f"{path}: unreadable test embeddings of run {result['run_id']} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:120]}); run it again with --force to rewrite them") from None
    missing = [key for key in ("audio", "text", "audio_of_caption", "fingerprint") if key not in arrays]
    if missing:
        raise BenchError(f"{path}: not test embeddings of bench (missing {', '.join(missing)}); "
                         f"run {result['run_id']} again with --force to rewrite them")
    return arrays


def fuse_runs(run_ids: list[str], *, method: str, weights: list[float] | None = None, k: float = 60.0,
              results_dir: Path = DEFAULT_RESULTS_DIR, chunk_size: int = 2048,
              force: bool = False, runs_dir: Path | None = None) -> dict[str, Any]:
    """Fuse runs on the same test split into a new result (written to ``results_dir``).

    The same fusion (method, runs, weights, k) already in ``results_dir`` is returned as it is
    unless ``force``.
    """
    from bench.evaluation.metrics import chance_metrics
    from bench.evaluation.per_query import attach_sidecar, outcomes_from_score_fns, reduce

    if method not in METHODS:
        raise ConfigError(f"fusion method {method!r}: use one of {', '.join(METHODS)}")
    if len(run_ids) < 2:
        raise ConfigError("bench fuse needs at least two run ids")
    weights = list(weights) if weights is not None else [1.0] * len(run_ids)
    if len(weights) != len(run_ids):
        raise ConfigError(f"--weights has {len(weights)} values for {len(run_ids)} runs; give one per run")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(w > 0 for w in weights):
        raise ConfigError(f"--weights {weights}: weights must be finite and >= 0, at least one of them > 0")
    if method == "rrf" and not (math.isfinite(k) and k >= 0):
        raise ConfigError(f"--k {k}: the RRF constant must be a finite number >= 0 (the usual value is 60)")
    key = json.dumps({"method": method, "runs": run_ids, "weights": weights, "k": k}, sort_keys=True)
    combination = hashlib.sha256(key.encode()).hexdigest()[:12]
    for existing in read_results_report(results_dir)[0]:  # an unreadable file is not this fusion
        if existing.get("kind") == "fusion" and existing.get("combination") == combination and not force:
            return existing  # results are immutable: the same fusion is not written twice
    results = [find_result(run_id, results_dir) for run_id in run_ids]
    from bench.results.local_paths import reader_runs_dirs

    runs_dirs = reader_runs_dirs(runs_dir, results_dir)
    embeddings = [_load_embeddings(result, runs_dirs) for result in results]
    fingerprints = {str(e["fingerprint"]) for e in embeddings}
    if len(fingerprints) != 1:
        names = ", ".join(f"{r['run_id']} ({r['dataset']['name']}, test {str(e['fingerprint'])[:8]})"
                          for r, e in zip(results, embeddings))
        raise ConfigError(f"cannot fuse runs evaluated on different test splits: {names}")
    audio_of_caption = embeddings[0]["audio_of_caption"]
    audios = [torch.from_numpy(e["audio"]).float() for e in embeddings]
    texts = [torch.from_numpy(e["text"]).float() for e in embeddings]

    def fused(direction: str) -> Callable[[int, int], torch.Tensor]:
        def scores(start: int, stop: int) -> torch.Tensor:
            if direction == "t2a":
                parts = [t[start:stop] @ a.T for a, t in zip(audios, texts)]
            else:
                parts = [a[start:stop] @ t.T for a, t in zip(audios, texts)]
            return fuse_scores(parts, method, weights, k)

        return scores

    n_audios, n_captions = audios[0].shape[0], texts[0].shape[0]
    outcomes = outcomes_from_score_fns(fused("t2a"), fused("a2t"), n_audios, n_captions, audio_of_caption,
                                       embeddings[0].get("audio_ids"), str(embeddings[0]["fingerprint"]), chunk_size)
    metrics = reduce(outcomes)
    first = results[0]
    result = {
        "run_id": f"{utc_now().replace(':', '').replace('-', '')[:15]}-fuse-{method}-{combination[:6]}",
        "kind": "fusion",
        "combination": combination,
        "dataset": first["dataset"],
        "audio_encoder": {"name": " + ".join(r["audio_encoder"]["name"] for r in results), "options": {}},
        "text_encoder": {"name": " + ".join(r["text_encoder"]["name"] for r in results), "options": {}},
        "loss": {"name": method, "options": {"k": k, "weights": weights} if method == "rrf" else {"weights": weights}},
        "fusion": {"method": method, "runs": run_ids, "weights": weights, "k": k if method == "rrf" else None},
        "seed": first["seed"],
        "training": {"epochs": "", "fused_runs": run_ids},
        "stage": None,
        "metrics": metrics,
        "best_val": {},
        "chance": chance_metrics(audio_of_caption, n_audios),
        "history": [],
        "skipped": [],
        "provenance": {**first["provenance"], "fused_from": [r["provenance"].get("git_commit") for r in results]},
        "timings": {"train_s": sum(float(r["timings"].get("train_s", 0.0)) for r in results)},
    }
    attach_sidecar(result, results_dir, outcomes)  # per-query sidecar next to the JSON
    write_result(result, results_dir)
    return result
