"""Scoring a finished model without training: ``bench eval``.

A target is either a registered retrieval model (``--model clap``, the ``model`` plugin kind,
:class:`bench.contracts.RetrievalModel`) or a finished run (``RUN_ID``, :mod:`bench.model.run_model`).
The model is built first (missing weights fail before any data work), then the dataset's splits
are validated exactly as ``bench run`` does (:func:`bench.runs.run.load_splits`) and the test split is
embedded, through the embedding cache: a second evaluation of the same model on the same split
encodes nothing. Each protocol (:mod:`bench.evaluation.protocols`) then writes one result of the usual
schema with ``kind: "eval"``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import ConfigError

log = logging.getLogger("bench")

EVAL_CHUNK = 2048
"""Query rows per score chunk when scoring; recorded as ``training.eval_chunk`` so that
``bench verify`` recomputes with the very same GEMMs (as a trained run's default)."""


@dataclass(frozen=True)
class Target:
    """What to score: a registry model (``model`` + ``options``) or a finished run (``run_id``)."""

    model: str | None = None
    run_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.model or f"run:{self.run_id}"

    def key(self) -> dict[str, Any]:
        return {"model": self.model, "run_id": self.run_id, "options": self.options}


@dataclass
class Built:
    """A built target: the model and what the result records about it."""

    model: Any
    label: str  # how messages name it: "model 'clap'" or "run 2026..."
    eval_info: dict[str, Any]
    components: dict[str, dict[str, Any]]  # audio_encoder, text_encoder, loss blocks of the result
    plugins: dict[str, str]  # kind -> registry name, for provenance


def build_target(target: Target, registry: Any, runs_dir: Path) -> Built:
    if target.run_id is not None:
        from bench.model.run_model import load_run_model

        model = load_run_model(target.run_id, runs_dir, registry)
        cfg = model.config
        info = {"zero_shot": False, "trained_on": cfg.dataset.name, "run_id": target.run_id, "model": model.describe()}
        components = {"audio_encoder": cfg.audio_encoder.to_json(), "text_encoder": cfg.text_encoder.to_json(),
                      "loss": cfg.loss.to_json()}
        plugins = {"audio_encoder": cfg.audio_encoder.name, "text_encoder": cfg.text_encoder.name,
                   "loss": cfg.loss.name}
        return Built(model, f"run {target.run_id}", info, components, plugins)
    name = str(target.model)
    options = registry.resolve_options("model", name, target.options)
    model = registry.build("model", name, target.options)
    described = model.describe() if callable(getattr(model, "describe", None)) else {"name": name}
    info = {"zero_shot": True, "trained_on": None, "run_id": None, "model": _jsonable(described)}
    block = {"name": name, "options": _jsonable(options), "set": _jsonable(target.options)}
    components = {"audio_encoder": block, "text_encoder": block, "loss": {"name": "zero-shot", "options": {}}}
    return Built(model, f"model {name!r}", info, components, {"model": name})


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# -- embedding -------------------------------------------------------------------------------------
def check_embeddings(label: str, what: str, out: Any, rows: int, dim: int | None) -> int:
    """A model's output must be a finite ``[rows, D]`` float tensor (D fixed by the first batch)."""
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"{label}: {what} returned {type(out).__name__}, expected a [{rows}, D] tensor")
    if out.ndim != 2 or out.shape[0] != rows or (dim is not None and out.shape[1] != dim):
        expected = f"[{rows}, {dim if dim is not None else 'D'}]"
        raise ConfigError(f"{label}: {what} returned shape {tuple(out.shape)}, expected {expected}")
    if not out.is_floating_point():
        raise ConfigError(f"{label}: {what} returned {out.dtype} values, expected floating point")
    if not bool(torch.isfinite(out).all()):
        raise ConfigError(f"{label}: {what} returned NaN/inf values")
    return int(out.shape[1])


def _audio(model: Any, label: str, split: Any, batch_size: int, num_workers: int) -> np.ndarray:
    from torch.utils.data import DataLoader

    from bench.core.progress import progress
    from bench.data.loading import AudioLoader, EvalAudio, collate_audio
    from bench.data.workers import worker_init

    dataset = EvalAudio(split, int(model.sample_rate), float(getattr(model, "max_seconds", 30.0)), AudioLoader())
    batches = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_audio,
                         worker_init_fn=worker_init)
    parts, dim = [], None
    for waveforms, lengths, _ in progress(batches, desc="eval audio", unit="batch"):
        out = model.embed_audio(waveforms, lengths)
        dim = check_embeddings(label, "embed_audio", out, waveforms.shape[0], dim)
        parts.append(out.detach().float().cpu())
    return torch.cat(parts).numpy()


def _text(model: Any, label: str, captions: list[str], batch_size: int) -> np.ndarray:
    from bench.core.progress import progress

    parts, dim = [], None
    for start in progress(range(0, len(captions), batch_size), desc="eval text", unit="batch"):
        chunk = captions[start : start + batch_size]
        out = model.embed_text(chunk)
        dim = check_embeddings(label, "embed_text", out, len(chunk), dim)
        parts.append(out.detach().float().cpu())
    return torch.cat(parts).numpy()


def model_fingerprint(model: Any) -> str | None:
    """What identifies the model for the cache; None: not cacheable (not a module, no ``fingerprint``)."""
    declared = getattr(model, "fingerprint", None)
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(model, nn.Module):
        from bench.evaluation.embedding_cache import weights_fingerprint

        return weights_fingerprint(model)
    return None


def embed_test(built: Built, split: Any, *, seed: int, batch_size: int, num_workers: int,
               cache: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(audio [n_audios, D], text [n_captions, D])`` of the test split, from the cache when possible."""
    from bench.evaluation.embedding_cache import audio_files_signature, entry_key
    from bench.model.devices import seed_everything

    model, label = built.model, built.label
    fingerprint = model_fingerprint(model)
    stochastic = bool(getattr(model, "stochastic", False))
    seeded = f";seed={seed}" if stochastic else ""
    max_seconds = float(getattr(model, "max_seconds", 30.0))
    jobs = {
        "audio": (f"eval:max_seconds={max_seconds};rate={int(model.sample_rate)}{seeded}",
                  lambda: _audio(model, label, split, batch_size, num_workers)),
        "text": (f"captions{seeded}", lambda: _text(model, label, split.captions, batch_size)),
    }
    out = {}
    for modality, (view, compute) in jobs.items():
        seed_everything(seed, 0)  # random crops replay identically, cached or not
        if fingerprint is None:
            out[modality] = compute()
            continue
        content = split.fingerprint() + (f":{audio_files_signature(split.items)}" if modality == "audio" else "")
        key = entry_key(encoder=f"model:{label}", options=built.eval_info["model"], weights=fingerprint,
                        split=content, view=view)
        out[modality] = np.array(cache.get(key, compute), dtype=np.float32)  # a copy: the cache's is read-only
    audio, text = out["audio"], out["text"]
    if audio.shape[1] != text.shape[1]:
        raise ConfigError(f"{label}: embed_audio gives {audio.shape[1]}-d and embed_text {text.shape[1]}-d "
                          "embeddings; they must share one space")
    return audio, text


# -- one evaluation ----------------------------------------------------------------------------------
def combination(target: Target, dataset: Any, protocol: str) -> str:
    key = json.dumps({"target": target.key(), "dataset": dataset.to_json(), "protocol": protocol},
                     sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def existing_result(results_dir: Path, combo: str, seed: int) -> dict[str, Any] | None:
    from bench.results.files import read_results

    for result in read_results(results_dir):
        if result.get("kind") == "eval" and result.get("combination") == combo and result.get("seed") == seed:
            return result
    return None


def evaluate_target(target: Target, dataset_name: str, set_options: dict[str, dict[str, Any]], *,
                    protocols: list[str], seed: int, batch_size: int, num_workers: int, device: str,
                    results_dir: Path, runs_dir: Path, force: bool, registry: Any,
                    cache: Any = None) -> list[dict[str, Any]]:
    """Score ``target`` on the test split of ``dataset_name``; one written result per protocol."""
    from bench.core.config import dataset_spec
    from bench.data.datasets import build_dataset
    from bench.evaluation.embedding_cache import EmbeddingCache
    from bench.model.devices import describe_device, seed_everything, select_device
    from bench.runs.run import load_splits

    started = time.perf_counter()
    spec = dataset_spec(registry, dataset_name, set_options)
    combos = {p: combination(target, spec, p) for p in protocols}
    done = {p: existing_result(results_dir, c, seed) for p, c in combos.items()} if not force else {}
    if all(done.get(p) is not None for p in protocols):
        for p in protocols:
            log.info("already scored as %s (use --force to score again)", done[p]["run_id"])
        return [done[p] for p in protocols]
    seed_everything(seed, 0)
    built = build_target(target, registry, runs_dir)  # before any data work: missing weights fail now
    torch_device = select_device(device)
    if isinstance(built.model, nn.Module):
        built.model.to(torch_device).eval()
    dataset = build_dataset(spec, registry)
    splits, skipped, validation = load_splits(dataset, int(built.model.sample_rate))
    test = splits["test"]
    cache = cache if cache is not None else EmbeddingCache()
    hits, misses = cache.hits, cache.misses
    embed_started = time.perf_counter()
    audio, text = embed_test(built, test, seed=seed, batch_size=batch_size, num_workers=num_workers, cache=cache)
    embed_s = time.perf_counter() - embed_started
    results = []
    for protocol in protocols:
        if done.get(protocol) is not None:
            results.append(done[protocol])
            continue
        results.append(_write(built, target, spec, test, audio, text, protocol=protocol, combo=combos[protocol],
                              seed=seed, device=describe_device(torch_device), batch_size=batch_size,
                              skipped=skipped, validation=validation, registry=registry, results_dir=results_dir,
                              runs_dir=runs_dir,
                              timings={"embed_s": embed_s, "cache_hits": cache.hits - hits,
                                       "cache_misses": cache.misses - misses,
                                       "total_s": time.perf_counter() - started,
                                       "torch_threads": torch.get_num_threads()},
                              splits=splits))
    return results


def _write(built: Built, target: Target, spec: Any, test: Any, audio: np.ndarray, text: np.ndarray, *,
           protocol: str, combo: str, seed: int, device: str, batch_size: int, skipped: list[Any],
           validation: dict[str, Any], registry: Any, results_dir: Path, runs_dir: Path,
           timings: dict[str, Any], splits: dict[str, Any]) -> dict[str, Any]:
    from bench.core.registry import plugin_distributions
    from bench.evaluation.metric_table import chance_metrics
    from bench.evaluation.protocols import protocol_metrics
    from bench.results.files import write_result
    from bench.results.provenance import provenance
    from bench.runs.run import component_json

    scored = time.perf_counter()
    # The caption texts as the dataset's files hold them: the dcase protocol keys its queries on them.
    metrics = protocol_metrics(protocol, torch.from_numpy(audio), torch.from_numpy(text), test.audio_of_caption,
                               test.source_captions, chunk=EVAL_CHUNK)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    name = target.model or "run"
    run_id = base = f"{stamp}-eval-{name}-{'-'.join(spec.members)}-{protocol}-s{seed}-{combo[:6]}"
    for again in range(2, 1000):  # --force within the same second: results are immutable, ids unique
        if not (Path(results_dir) / f"{run_id}.json").exists():
            break
        run_id = f"{base}-{again}"
    result = {
        "run_id": run_id,
        "kind": "eval",
        "protocol": protocol,
        "eval": built.eval_info,
        "combination": combo,
        "dataset": {**component_json(registry, "dataset", spec),
                    "splits": {n: s.summary() for n, s in splits.items()}, "validation": validation},
        **built.components,
        "seed": seed,
        "training": {"device": device, "batch_size": batch_size, "eval_chunk": EVAL_CHUNK},
        "stage": None,
        "metrics": metrics,
        "best_val": {},
        "chance": chance_metrics(test.audio_of_caption, test.n_audios),
        "history": [],
        "skipped": skipped,
        "provenance": provenance(device, plugin_distributions({"dataset": spec.evaluated_on, **built.plugins},
                                                              registry)),
        "timings": {**timings, "score_s": time.perf_counter() - scored},
    }
    if protocol == "bench":  # per-query outcomes and stored embeddings follow bench's conventions only
        from bench.evaluation.evaluate import TEST_EMBEDDINGS, embedding_artifacts, save_embeddings
        from bench.evaluation.per_query import attach_sidecar, outcomes_from_embeddings

        outcomes = outcomes_from_embeddings(audio, text, test.audio_of_caption,
                                            [item.audio_id for item in test.items], test.fingerprint(), EVAL_CHUNK)
        attach_sidecar(result, results_dir, outcomes)
        # Kept like a trained run's, so that `bench fuse`, `bench verify` and `bench inspect` work on
        # a zero-shot or cross-dataset score too. The directory has no config.json or best.pt, so
        # it is never mistaken for a trained run.
        from bench.core.safe_paths import inside

        run_dir = inside(runs_dir, run_id, what="run directory")
        run_dir.mkdir(parents=True, exist_ok=True)
        save_embeddings(run_dir / TEST_EMBEDDINGS, torch.from_numpy(audio), torch.from_numpy(text), test)
        result["artifacts"] = embedding_artifacts(run_dir)
    write_result(result, results_dir, runs_dir=runs_dir)
    log.info("%s on %s (%s): t2a mAP@10 %.4f (chance %.4f)", built.label, spec.name, protocol,
             metrics["t2a"]["mAP@10"], result["chance"]["t2a"]["mAP@10"])
    return result
