"""Consistent synthetic runs for the compare/verify/inspect tests: a result JSON whose metrics
are the ones its stored test embeddings and per-query sidecar give (no training involved)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.evaluation.metrics import chance_metrics, retrieval_metrics
from bench.evaluation.per_query import outcomes_from_embeddings, sidecar_entry, sidecar_path, write_sidecar
from tests.conftest import torch_threads

N_AUDIOS = 40
CAPTIONS_PER_AUDIO = 3


def split_arrays(fingerprint_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    aoc = np.repeat(np.arange(N_AUDIOS), CAPTIONS_PER_AUDIO)
    ids = np.asarray([f"clip{fingerprint_seed}-{i:03d}" for i in range(N_AUDIOS)])
    return aoc, ids


def make_run(
    tmp_path: Path,
    run_id: str,
    base: dict[str, Any],
    *,
    noise: float = 1.0,
    seed: int = 0,
    combination: str | None = None,
    fingerprint: str = "fp-test",
    sidecar: bool = True,
    dim: int = 16,
) -> Path:
    """Write ``<tmp>/results/<run_id>.json`` (+ sidecar) and ``<tmp>/runs/<run_id>/test_embeddings.npz``."""
    with torch_threads(1):
        return _make_run(tmp_path, run_id, base, noise=noise, seed=seed, combination=combination,
                         fingerprint=fingerprint, sidecar=sidecar, dim=dim)


def _make_run(tmp_path: Path, run_id: str, base: dict[str, Any], *, noise: float, seed: int,
              combination: str | None, fingerprint: str, sidecar: bool, dim: int) -> Path:
    aoc, ids = split_arrays(0 if fingerprint == "fp-test" else 1)
    rng = np.random.default_rng(1000 + seed)
    truth = np.random.default_rng(0).standard_normal((N_AUDIOS, dim)).astype(np.float32)
    audio = (truth + 0.3 * rng.standard_normal(truth.shape)).astype(np.float32)
    text = (truth[aoc] + noise * rng.standard_normal((aoc.size, dim))).astype(np.float32)
    run_dir = tmp_path / "runs" / run_id
    run_dir.mkdir(parents=True)
    emb = run_dir / "test_embeddings.npz"
    np.savez(emb, audio=audio, text=text, audio_of_caption=aoc, audio_ids=ids, fingerprint=np.asarray(fingerprint))
    result = dict(base)
    result.update({
        "run_id": run_id,
        "seed": seed,
        "combination": combination or run_id,
        "metrics": retrieval_metrics(audio, text, aoc),
        "chance": chance_metrics(aoc, N_AUDIOS),
        "artifacts": {"run_dir": str(run_dir), "test_embeddings": str(emb)},
    })
    result["dataset"] = dict(base["dataset"], splits={"test": {"n_audios": N_AUDIOS, "n_captions": int(aoc.size),
                                                               "fingerprint": fingerprint}})
    results_dir = tmp_path / "results"
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"{run_id}.json"
    if sidecar:
        side = sidecar_path(path)
        sha = write_sidecar(side, outcomes_from_embeddings(audio, text, aoc, ids, fingerprint))
        result["per_query"] = sidecar_entry(side, sha)
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
