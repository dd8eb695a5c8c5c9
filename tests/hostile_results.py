"""A corpus of hostile result files among good ones, as a stranger's pull request could bring them.

``make_corpus(base)`` writes ``base/results`` (two good runs with sidecars and embeddings in
``base/runs``, one good run whose option values carry markup, and the hostile files), ``base/outside``
(what symlinks and absolute paths point at) and ``base/pinned.toml`` (pins the corpus's commit, so the
provenance rules do not name every file). Every hostile file's name starts with ``h-``; each is
refused, or its unusable part is, with one line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from synthetic_runs import make_run

from bench.evaluation.per_query import file_sha256
from bench.results.files import republish

COMMIT = "0123abcd" * 5
INJECTION = "<img src=x onerror=alert(1)>|md|"
MARKUP = "<b>x</b>|md|\n`c` **b**"
"""Markup in an option value (a valid result; labels show values up to 24 characters, so all of it)."""


def _write(path: Path, result: Any) -> None:
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")


def _hostile(base_result: dict[str, Any]) -> dict[str, Any]:
    """name -> result dict (or raw bytes) written as ``results/<name>.json``."""
    def r(run_id: str, **changes: Any) -> dict[str, Any]:
        result = json.loads(json.dumps(base_result))
        result["run_id"] = run_id
        result["combination"] = run_id
        for key, value in changes.items():
            result[key] = value
        return result

    nested: Any = 1
    for _ in range(100):
        nested = {"a": nested}
    bad_metrics = json.loads(json.dumps(base_result["metrics"]))
    bad_metrics["t2a"]["mAP@10"] = "high"
    return {
        "h-traversal": r("../../escaped-x"),
        "h-slash-id": r("runs/../../x"),
        "h-control-id": r("h-control-id\u0007\n"),
        "h-long-id": r("x" * 300),
        "h-name-injection": r("h-name-injection", audio_encoder={"name": INJECTION, "options": {}}),
        "h-dataset-traversal": r("h-dataset-traversal", dataset={**base_result["dataset"], "name": "../../etc"}),
        "h-protocol-traversal": r("h-protocol-traversal", protocol="x/../../y"),
        "h-wrong-types": r("h-wrong-types", metrics=bad_metrics),
        "h-seed-string": r("h-seed-string", seed="zero"),
        "h-commit-option": r("h-commit-option", provenance={"git_commit": "--output=/tmp/pwned", "git_dirty": False}),
        "h-sidecar-traversal": r("h-sidecar-traversal", per_query={"file": "../outside/x.npz", "sha256": "0" * 64}),
        "h-fusion-traversal": r("h-fusion-traversal", kind="fusion", fusion={"method": "combsum", "runs": ["../x"]}),
        "h-created-markup": r("h-created-markup", created="<script>alert(1)</script>"),
        "h-future-major": r("h-future-major", schema_version="2.0"),
        "h-deep-extra": r("h-deep-extra", extra=nested),
        "h-dup": r("good-a"),  # a second file claiming a run id that exists
        "h-not-object": b"[1, 2, 3]",
        "h-not-utf8": b'{"run_id": "\xff\xfe"}',
        "h-nan": json.dumps(r("h-nan")).replace('"mAP@10": 0.', '"mAP@10": NaN, "x": 0.', 1).encode(),
        "h-infinity": json.dumps(r("h-infinity")).replace('"R@1": ', '"R@1": Infinity, "y": ', 1).encode(),
        "h-deep-nesting": b"[" * 100_000 + b"]" * 100_000,
        "h-truncated": json.dumps(r("h-truncated")).encode()[:200],
    }


def make_corpus(base: Path, make_result: Any) -> dict[str, Any]:
    """Write the corpus; returns ``{"good": [run ids], "hostile": [file stems]}``."""
    provenance = {"git_commit": COMMIT, "git_dirty": False, "device": "cpu"}
    good = make_result(provenance=provenance)
    make_run(base, "good-a", good, noise=0.5, combination="combo-a")
    make_run(base, "good-b", good, noise=2.0, combination="combo-b", seed=1)
    marked = make_result(provenance=provenance, loss={"set": {"negatives": MARKUP}})
    make_run(base, "good-markup", marked, noise=1.0, combination="combo-markup")
    results, outside = base / "results", base / "outside"
    outside.mkdir()
    republish(results)  # the good ones as bench publishes them: artifacts relative to base/runs
    (base / "pinned.toml").write_text(f'[commits]\n"{COMMIT[:10]}" = "the hostile-corpus test"\n', encoding="utf-8")
    base_result = json.loads((results / "good-a.json").read_text(encoding="utf-8"))
    base_result.pop("per_query")
    base_result.pop("artifacts")
    hostile = _hostile(base_result)
    for name, content in hostile.items():
        path = results / f"{name}.json"
        path.write_bytes(content) if isinstance(content, bytes) else _write(path, content)
    # Over the size limit: a valid result padded with 17 MiB of text in a field of its own.
    _write(results / "h-huge.json", {**base_result, "run_id": "h-huge", "padding": "x" * (17 * 2**20)})
    # A symlink out of the results directory, to a valid result.
    _write(outside / "h-symlink.json", {**base_result, "run_id": "h-symlink", "combination": "h-symlink"})
    (results / "h-symlink.json").symlink_to(outside / "h-symlink.json")
    # A sidecar holding a pickled object array (its sha256 recorded, so only its content is wrong).
    pickled = results / "h-pickle.per_query.npz"
    np.savez(pickled, format=np.asarray("bench-per-query-1"), t2a_rank=np.array([{"x": 1}], dtype=object))
    _write(results / "h-pickle.json", {**base_result, "run_id": "h-pickle", "combination": "h-pickle",
                                       "per_query": {"file": pickled.name, "sha256": file_sha256(pickled),
                                                     "format": "bench-per-query-1"}})
    # A sidecar that is a symlink out of the results directory (to good-a's real sidecar, hash and all).
    real = results / "good-a.per_query.npz"
    (outside / "real.per_query.npz").write_bytes(real.read_bytes())
    (results / "h-sidecar-link.per_query.npz").symlink_to(outside / "real.per_query.npz")
    _write(results / "h-sidecar-link.json", {**base_result, "run_id": "h-sidecar-link",
                                             "combination": "h-sidecar-link",
                                             "per_query": {"file": "h-sidecar-link.per_query.npz",
                                                           "sha256": file_sha256(real),
                                                           "format": "bench-per-query-1"}})
    # An absolute artifact path outside any runs directory (a real npz there).
    emb = outside / "test_embeddings.npz"
    emb.write_bytes((base / "runs" / "good-a" / "test_embeddings.npz").read_bytes())
    _write(results / "h-abs-artifact.json", {**base_result, "run_id": "h-abs-artifact",
                                             "combination": "h-abs-artifact",
                                             "artifacts": {"run_dir": str(outside), "test_embeddings": str(emb)}})
    stems = sorted(p.stem for p in results.glob("h-*.json"))
    return {"good": ["good-a", "good-b", "good-markup"], "hostile": stems}
