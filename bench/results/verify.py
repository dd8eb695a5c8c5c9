"""``bench verify RESULT``: re-check a result JSON against the evidence stored with it.

A result JSON is a claim. bench keeps each run's test embeddings (``test_embeddings.npz``) and,
per query, the outcomes (the ``per_query`` sidecar). Verification recomputes every metric

- from the embeddings, with :func:`bench.evaluation.metrics.retrieval_metrics` (the function a run uses),
- from the sidecar (hash-checked), with :func:`bench.evaluation.per_query.reduce`,
- and the chance level from the split's caption-to-recording map,

and compares each with the JSON exactly: JSON floats round-trip (``repr``), so a stored fraction
equals its recomputation bit for bit or the result was not produced by these inputs. The split
fingerprint stored with the evidence must match the JSON's test split. The first mismatch is
reported as one line; otherwise "verified" and what was checked.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.errors import BenchError, DataError
from bench.evaluation.metrics import chance_metrics, retrieval_metrics
from bench.evaluation.per_query import (
    load_for_result,
    outcomes_from_embeddings,
    read_embeddings,
    reduce,
    sidecar_entry,
    sidecar_path,
    write_sidecar,
)
from bench.results.files import read_result, read_result_in, result_paths
from bench.results.local_paths import artifact_path, reader_runs_dirs
from bench.results.score_files import known_metrics


@dataclass(frozen=True)
class Verification:
    """``ok``: everything checked matched; ``message``: "verified (...)" or the first mismatch."""

    path: Path
    ok: bool
    message: str
    checked: tuple[str, ...] = ()


def _first_mismatch(stored: dict[str, Any], recomputed: dict[str, dict[str, float]], source: str,
                    block: str = "metrics") -> str | None:
    if block == "metrics":  # a scored file claims only what it can give (bench.results.score_files)
        recomputed = known_metrics(stored, recomputed)
    for direction in ("t2a", "a2t"):
        claimed = (stored.get(block) or {}).get(direction) or {}
        ours = recomputed.get(direction) or {}
        for key in sorted(claimed):
            if key not in ours:
                return f"{block}.{direction}[{key!r}] is not a metric bench computes"
            if float(claimed[key]) != float(ours[key]):
                return (f"{block}.{direction}[{key!r}] = {claimed[key]!r} but {source} gives {ours[key]!r}")
        for key in sorted(ours):
            if key not in claimed:
                return f"{block}.{direction}[{key!r}] is missing from the result"
    return None


def _test_fingerprint(result: dict[str, Any]) -> str:
    test = ((result.get("dataset") or {}).get("splits") or {}).get("test") or {}
    return str(test.get("fingerprint", ""))


def _eval_chunk(result: dict[str, Any]) -> int | None:
    """The run's own evaluation chunk (``training.eval_chunk``), so the GEMMs are the run's."""
    chunk = (result.get("training") or {}).get("eval_chunk")
    return chunk if isinstance(chunk, int) and not isinstance(chunk, bool) and chunk > 0 else None


def embeddings_path(result: dict[str, Any], result_path: Path, runs_dir: Path | None = None) -> Path | None:
    """The run's stored test embeddings, if they exist here: the recorded artifact joined to the runs
    directory (``runs_dir``, else :func:`bench.results.local_paths.reader_runs_dirs`'s guesses)."""
    try:
        return artifact_path(result, "test_embeddings", reader_runs_dirs(runs_dir, Path(result_path).parent))
    except BenchError as exc:
        raise DataError(f"{result_path}: {' '.join(str(exc).split())}") from None


def verify(result_path: str | Path, embeddings: str | Path | None = None,
           runs_dir: Path | None = None) -> Verification:
    """Verify one result file; raises :class:`DataError` when there is nothing to check it against."""
    result_path = Path(result_path)
    result = read_result(result_path)
    fingerprint = _test_fingerprint(result)
    emb_path = Path(embeddings) if embeddings is not None else embeddings_path(result, result_path, runs_dir)
    has_sidecar = isinstance(result.get("per_query"), dict)
    if emb_path is None and not has_sidecar:
        raise DataError(f"{result_path}: no test embeddings here and no per-query sidecar; nothing to verify against")
    checked: list[str] = []

    def fail(message: str) -> Verification:
        return Verification(result_path, False, f"{result_path.name}: {message}", tuple(checked))

    if emb_path is not None:
        e = read_embeddings(emb_path)
        if fingerprint and e["fingerprint"] and e["fingerprint"] != fingerprint:
            return fail(f"{emb_path} holds split {e['fingerprint'][:8]}, the result's test split is {fingerprint[:8]}")
        aoc = e["audio_of_caption"]
        recomputed = retrieval_metrics(e["audio"], e["text"], aoc, chunk_size=_eval_chunk(result))
        mismatch = _first_mismatch(result, recomputed, f"{emb_path.name}")
        if mismatch:
            return fail(mismatch)
        mismatch = _first_mismatch(result, chance_metrics(aoc, int(e["audio"].shape[0])), "the split",
                                   block="chance")
        if mismatch:
            return fail(mismatch)
        checked += ["embeddings", "chance"]
    if has_sidecar:
        outcomes = load_for_result(result, result_path)
        if fingerprint and outcomes.fingerprint and outcomes.fingerprint != fingerprint:
            return fail(f"the sidecar holds split {outcomes.fingerprint[:8]}, "
                        f"the result's test split is {fingerprint[:8]}")
        mismatch = _first_mismatch(result, reduce(outcomes), "the per-query sidecar")
        if mismatch:
            return fail(mismatch)
        checked.append("sidecar")
    return Verification(result_path, True, f"{result_path.name}: verified ({', '.join(checked)})", tuple(checked))


def verify_dir(results_dir: str | Path, runs_dir: Path | None = None) -> tuple[list[Verification], list[Path]]:
    """Verify every result in a directory that has evidence; also list those that have none.

    A file that cannot be read is a failed verification (one line naming it), not an exception."""
    done: list[Verification] = []
    without: list[Path] = []
    for path in result_paths(Path(results_dir)):
        try:
            read_result_in(path, Path(results_dir))
            done.append(verify(path, runs_dir=runs_dir))
        except DataError as exc:
            if "nothing to verify against" in str(exc):
                without.append(path)
            else:
                done.append(Verification(path, False, " ".join(str(exc).split())))
        except BenchError as exc:
            done.append(Verification(path, False, " ".join(str(exc).split())))
    return done, without


def backfill_sidecar(result_path: str | Path, embeddings: str | Path | None = None,
                     runs_dir: Path | None = None) -> Path:
    """Write the per-query sidecar of a result that has none, from the run's test embeddings.

    The embeddings must reproduce every metric of the JSON exactly (else nothing is written and
    the first mismatch is the error). The JSON gains exactly one field, ``per_query``; it is
    re-serialised as :func:`bench.results.files.write_result` writes it, so no other byte changes.
    """
    result_path = Path(result_path)
    result = read_result(result_path)
    if isinstance(result.get("per_query"), dict):
        raise BenchError(f"{result_path}: already records a per-query sidecar ({result['per_query'].get('file')})")
    emb_path = Path(embeddings) if embeddings is not None else embeddings_path(result, result_path, runs_dir)
    if emb_path is None:
        raise DataError(f"{result_path}: its test embeddings are not here; "
                        "pass --embeddings RUN_DIR/test_embeddings.npz")
    e = read_embeddings(emb_path)
    fingerprint = _test_fingerprint(result)
    if fingerprint and e["fingerprint"] and e["fingerprint"] != fingerprint:
        raise DataError(f"{emb_path} holds split {e['fingerprint'][:8]}, the result's test split is {fingerprint[:8]}")
    outcomes = outcomes_from_embeddings(e["audio"], e["text"], e["audio_of_caption"], e["audio_ids"],
                                        e["fingerprint"] or fingerprint, _eval_chunk(result))
    mismatch = _first_mismatch(result, reduce(outcomes), emb_path.name)
    if mismatch:
        raise DataError(f"{result_path.name}: {mismatch}; no sidecar written")
    path = sidecar_path(result_path)
    result["per_query"] = sidecar_entry(path, write_sidecar(path, outcomes))
    atomic_write_text(result_path, json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def run(args: argparse.Namespace) -> int:
    """0 when everything verified, 1 on a mismatch; user mistakes raise BenchError."""
    runs_dir = Path(args.runs_dir) if getattr(args, "runs_dir", None) else None
    if args.embeddings and len(args.results) != 1:
        raise BenchError("--embeddings goes with exactly one RESULT")
    if getattr(args, "write_sidecar", False):
        if len(args.results) != 1 or Path(args.results[0]).is_dir():
            raise BenchError("--write-sidecar takes exactly one RESULT file")
        path = backfill_sidecar(args.results[0], args.embeddings, runs_dir)
        print(f"wrote {path} and recorded it in {args.results[0]}")
        # then verify it as usual, against both the embeddings and the new sidecar
    status = 0
    for target in map(Path, args.results):
        if target.is_dir():
            done, without = verify_dir(target, runs_dir)
            for v in done:
                print(v.message)
                status |= 0 if v.ok else 1
            if without:
                print(f"{len(without)} result(s) without embeddings or sidecar: " + ", ".join(p.name for p in without))
            continue
        v = verify(target, args.embeddings, runs_dir)
        print(v.message)
        status |= 0 if v.ok else 1
    return status
