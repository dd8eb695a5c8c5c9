"""``bench score``: a result of the usual schema (``kind: "score"``) from someone else's outputs.

Four formats (grammar in ``docs/formats.md``), detected from the content or forced:

- ``trec``: a TREC run, ``QID Q0 DOCID RANK SCORE TAG`` (t2a: QID a caption id, DOCID a file name;
  a2t the reverse; one file may hold both);
- ``dcase``: a DCASE submission CSV, ``caption,fname_1,...,fname_10`` (t2a, top 10 only);
- ``npz-embeddings``: ``audio``/``text`` arrays with their keys (both directions, every metric);
- ``npz-scores``: a ``scores`` matrix with its keys.

Every format ends in per-query outcomes of the driver behind ``bench run``'s metrics, a per-query
sidecar, and metrics that equal what the sidecar reduces to, minus what the file cannot tell
(``score.unknown``: the mean and median rank when a caption's file is not in its list, a whole
direction a file does not hold). Missing queries count as misses and are counted in ``score.missing``.
"""

from __future__ import annotations

import hashlib
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import ConfigError, DataError
from bench.evaluation.metric_table import DIRECTIONS, chance_metrics
from bench.evaluation.per_query import Outcomes, attach_sidecar, file_sha256
from bench.results.files import utc_now, write_result
from bench.results.run_files import read_dcase, read_trec, trec_id
from bench.results.score_arrays import score_embeddings, score_matrix
from bench.results.score_lists import Truth, outcomes, score_lists

FORMATS = ("trec", "dcase", "npz-embeddings", "npz-scores")
SCORE_CHUNK = 2048
"""Query rows per score chunk (as ``bench eval``'s); recorded as ``training.eval_chunk`` for ``bench verify``."""


@dataclass
class ScoredFile:
    """A scored file: its per-query outcomes, the ``score`` block of its result, and (for complete
    embeddings) the embeddings in split order, kept with the result for ``bench verify``/``export``."""

    outcomes: Outcomes
    info: dict[str, Any]
    embeddings: dict[str, Any]


def detect_format(path: str | Path) -> str:
    """The format of a file from its content: a zip is an ``.npz``, a comma line a DCASE CSV, else TREC."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = {Path(n).stem for n in archive.namelist()}
        if "scores" in names:
            return "npz-scores"
        if {"audio", "text"} <= names:
            return "npz-embeddings"
        raise DataError(f"{path}: an .npz with neither 'scores' nor 'audio' and 'text' arrays (it holds "
                        f"{', '.join(sorted(names)) or 'nothing'}); see docs/formats.md")
    with open(path, "rb") as handle:
        first = handle.readline(1 << 16).decode("utf-8", errors="replace")
    if _trec_line(first):
        return "trec"
    if "," in first:
        return "dcase"
    raise DataError(f"{path}: cannot tell its format from the first line {first.strip()[:80]!r}; "
                    f"pass --format ({', '.join(FORMATS)})")


def _trec_line(line: str) -> bool:
    """Six fields whose RANK is an integer and SCORE a number (a caption text with commas is not one)."""
    fields = line.split()
    if len(fields) != 6:
        return False
    try:
        int(fields[3])
        float(fields[4])
    except ValueError:
        return False
    return True


def score_path(path: str | Path, truth: Truth, fmt: str | None = None) -> ScoredFile:
    """Parse and score one file against ``truth``; every bad row raises one :class:`DataError` line."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    started = time.perf_counter()
    embeddings: dict[str, Any] = {}
    if fmt in ("trec", "dcase"):
        lists = (read_trec if fmt == "trec" else read_dcase)(path, truth)
        parsed = time.perf_counter()
        scored = {d: score_lists(lists[d], truth, str(path), SCORE_CHUNK) for d in DIRECTIONS if d in lists}
    elif fmt == "npz-embeddings":
        parsed = time.perf_counter()
        scored, embeddings = score_embeddings(path, truth, SCORE_CHUNK)
    else:
        parsed = time.perf_counter()
        scored = score_matrix(path, truth, SCORE_CHUNK)
    done = time.perf_counter()
    info = {
        "file": path.name,
        "sha256": file_sha256(path),
        "format": fmt,
        "directions": [d for d in DIRECTIONS if d in scored],
        "n_queries": {d: truth.n_queries(d) for d in scored},
        "missing": {d: s.missing for d, s in scored.items()},
        "unknown": {d: s.unknown for d, s in scored.items() if s.unknown},
        "list_depth": {d: s.depth for d, s in scored.items() if s.depth is not None},
        "parse_s": parsed - started,
        "score_s": done - parsed,
    }
    return ScoredFile(outcomes(truth, scored), info, embeddings)


def known_metrics(result: dict[str, Any], metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The metrics a result may claim: for ``kind: "score"`` only its directions, minus ``score.unknown``."""
    if result.get("kind") != "score":
        return metrics
    score = result.get("score") or {}
    unknown = score.get("unknown") or {}
    return {d: {k: v for k, v in metrics[d].items() if k not in (unknown.get(d) or [])}
            for d in score.get("directions") or [] if d in metrics}


def missing_lines(info: dict[str, Any]) -> list[str]:
    """One line per direction with missing queries (they are counted, never dropped)."""
    return [f"{n} of {info['n_queries'][d]} {d} queries are missing from {info['file']}: counted as misses "
            "(as trec_eval -c does)" for d, n in info["missing"].items() if n]


def build_result(scored: ScoredFile, truth: Truth, *, name: str, dataset_block: dict[str, Any],
                 provenance: dict[str, Any], skipped: list[Any], started: float) -> dict[str, Any]:
    """The result dict of a scored file (not yet written; see :func:`write_score`)."""
    info = scored.info
    key = f"{info['sha256']}|{info['format']}|{truth.fingerprint}|{dataset_block.get('name')}"
    combination = hashlib.sha256(key.encode()).hexdigest()[:12]
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)[:40].strip("-") or "file"
    stamp = utc_now().replace(":", "").replace("-", "")[:15]
    system = {"name": name, "options": {}, "set": {}}
    return {
        "run_id": f"{stamp}-score-{slug}-{dataset_block.get('name')}-{combination[:6]}",
        "kind": "score",
        "score": info,
        "combination": combination,
        "dataset": dataset_block,
        "audio_encoder": system,
        "text_encoder": system,
        "loss": {"name": f"scored {info['format']}", "options": {}, "set": {}},
        "seed": 0,
        "training": {"eval_chunk": SCORE_CHUNK},
        "stage": None,
        "metrics": {},
        "best_val": {},
        "chance": chance_metrics(truth.audio_of_caption, truth.n_audios),
        "history": [],
        "skipped": skipped,
        "provenance": provenance,
        "timings": {"parse_s": info.pop("parse_s"), "score_s": info.pop("score_s"),
                    "total_s": time.perf_counter() - started},
    }


def write_score(result: dict[str, Any], scored: ScoredFile, results_dir: Path, runs_dir: Path,
                truth: Truth) -> dict[str, Any]:
    """Write the sidecar, the embeddings (complete embeddings only) and the result; returns the result."""
    run_id = result["run_id"]
    for again in range(2, 1000):  # two scores within one second: ids stay unique, results immutable
        if not (Path(results_dir) / f"{run_id}.json").exists():
            break
        run_id = f"{result['run_id']}-{again}"
    result["run_id"] = run_id
    attach_sidecar(result, results_dir, scored.outcomes)
    result["metrics"] = known_metrics(result, result["metrics"])
    if scored.embeddings:
        from bench.evaluation.evaluate import TEST_EMBEDDINGS, embedding_artifacts

        run_dir = Path(runs_dir) / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        _save_embeddings(run_dir / TEST_EMBEDDINGS, scored.embeddings, truth)
        result["artifacts"] = embedding_artifacts(run_dir)
    write_result(result, results_dir)
    return result


def _save_embeddings(path: Path, embeddings: dict[str, Any], truth: Truth) -> None:
    from bench.core.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, audio=embeddings["audio"].numpy(), text=embeddings["text"].numpy(),
                 audio_of_caption=truth.audio_of_caption, audio_ids=truth.audio_ids.astype(str),
                 fingerprint=np.asarray(truth.fingerprint), captions=truth.captions.astype(str))


def existing_score(results: list[dict[str, Any]], combination: str) -> dict[str, Any] | None:
    for result in results:
        if result.get("kind") == "score" and result.get("combination") == combination:
            return result
    return None


def template(fmt: str, truth: Truth) -> str:
    """What a file of ``fmt`` for this split looks like, with the split's real ids."""
    head = [f"# bench score --format {fmt}: {truth.dataset}, test split {truth.fingerprint} "
            f"({truth.n_captions} captions, {truth.n_audios} files); grammar in docs/formats.md"]
    if fmt == "trec":
        head += ["# One line per (query, document): QID Q0 DOCID RANK SCORE TAG, separated by one space or tab.",
                 "# t2a: QID = caption id '<file name>#<k>' (k = the caption's 0-based position among its file's",
                 "#      captions), DOCID = file name; a2t: QID = file name, DOCID = caption id.",
                 "# Ids are percent-encoded ('%' -> %25, space -> %20, tab -> %09). At least the top 10 per query;",
                 "# bench orders by SCORE (higher is better, ties count against the query).",
                 "# caption id<TAB>caption text:"]
        ids = trec_id(truth.caption_ids)
        body = [f"# {i}\t{c}" for i, c in zip(ids, truth.captions)]
        example = f"{ids[0]} Q0 {trec_id(truth.audio_ids[:1])[0]} 1 0.875 mysystem"
        return "\n".join(head + body + ["# example line:", example]) + "\n"
    if fmt == "dcase":
        header = "caption," + ",".join(f"fname_{k}" for k in range(1, 11))
        return "\n".join(head + [header] + [_csv(c) + "," * 10 for c in truth.captions]) + "\n"
    raise ConfigError(f"--template {fmt!r}: templates exist for trec and dcase (the .npz arrays are in "
                      "docs/formats.md)")


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text
