"""Per-query outcomes of a retrieval evaluation, and the sidecar file that stores them.

trec_eval reports one line per query so that two systems can be compared query by query; this
module keeps the same information for both directions of language-based audio retrieval:

- **t2a**: for each caption, the (pessimistic) rank of its recording;
- **a2t**: for each recording, the position of its first relevant caption and its AP@10.

These are exactly the per-query pieces that :mod:`bench.evaluation.metrics` reduces to R@k, mAP@10 and the
ranks, computed by the same driver (:func:`bench.evaluation.metrics.chunked_ranks`), so :func:`reduce` of
the outcomes equals :func:`bench.evaluation.metrics.retrieval_metrics` of the embeddings bit for bit.

Queries are keyed by the dataset's own ids: a recording by its ``audio_id``, a caption by
``"<audio_id>#<k>"`` where k is the caption's 0-based position among that recording's captions
(what :class:`bench.data.loading.SplitData` calls ``caption_slot``). Two runs on the same split therefore
align by key, never by position, and runs on different splits are refused.

The sidecar is a compressed ``.npz`` written atomically next to the result JSON; its sha256 is
recorded in the JSON so that a truncated or edited sidecar is detected (:func:`read_sidecar`).
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.atomic import atomic_path
from bench.core.safe_paths import inside
from bench.errors import BenchError, ConfigError, DataError
from bench.evaluation.metrics import chunked_ranks, embedding_ranks, summarise_a2t, summarise_t2a

SIDECAR_FORMAT = "bench-per-query-1"
"""Written into every sidecar; a reader refuses any other value."""

SIDECAR_SUFFIX = ".per_query.npz"
"""A run's sidecar is ``<run_id>.per_query.npz`` beside ``<run_id>.json``."""

@dataclass(frozen=True)
class Outcomes:
    """Per-query outcomes of one evaluation on one split.

    ``t2a_rank[i]``: 1-based rank of caption i's recording (ties pessimistic).
    ``a2t_first[a]``: 1-based position of recording a's first relevant caption.
    ``a2t_ap10[a]``: AP@10 of recording a (float64).
    ``audio_ids[a]``: the dataset's id of recording a; ``audio_of_caption[i]``: caption i's
    recording (row index); ``caption_slot[i]``: caption i's position among its recording's
    captions (see :func:`caption_slots`). ``fingerprint``: the split fingerprint ("" when unknown).
    """

    t2a_rank: np.ndarray
    a2t_first: np.ndarray
    a2t_ap10: np.ndarray
    audio_ids: np.ndarray
    audio_of_caption: np.ndarray
    caption_slot: np.ndarray
    fingerprint: str = ""

    @property
    def n_audios(self) -> int:
        return int(self.a2t_first.shape[0])

    @property
    def n_captions(self) -> int:
        return int(self.t2a_rank.shape[0])

    def caption_keys(self) -> np.ndarray:
        """``"<audio_id>#<k>"`` per caption, k = position among the recording's captions."""
        ids = np.asarray(self.audio_ids).astype(str)
        return np.char.add(np.char.add(ids[self.audio_of_caption], "#"), self.caption_slot.astype(str))

    def take(self, audio_order: np.ndarray, caption_order: np.ndarray) -> Outcomes:
        """The same outcomes with recordings and captions reordered (for alignment)."""
        remap = np.empty(self.n_audios, dtype=np.int64)
        remap[audio_order] = np.arange(self.n_audios)
        return Outcomes(
            self.t2a_rank[caption_order], self.a2t_first[audio_order], self.a2t_ap10[audio_order],
            self.audio_ids[audio_order], remap[self.audio_of_caption[caption_order]],
            self.caption_slot[caption_order], self.fingerprint,
        )


def caption_slots(audio_of_caption: Any, n_audios: int) -> np.ndarray:
    """Each caption's 0-based position among its recording's captions, in caption order.

    This is ``SplitData.caption_slot`` (captions are listed item by item, in the item's order),
    recomputed from ``audio_of_caption`` alone, which is all a test_embeddings.npz stores.
    """
    aoc = np.asarray(audio_of_caption, dtype=np.int64)
    order = np.argsort(aoc, kind="stable")
    counts = np.bincount(aoc, minlength=n_audios)
    starts = np.cumsum(counts) - counts
    slot = np.empty_like(aoc)
    slot[order] = np.arange(aoc.size) - starts[aoc[order]]
    return slot


def _ids(audio_ids: Any, n_audios: int) -> np.ndarray:
    if audio_ids is None:
        return np.arange(n_audios).astype(str)
    ids = np.asarray([str(x) for x in audio_ids])
    if ids.shape != (n_audios,):
        raise DataError(f"{ids.size} audio ids for {n_audios} recordings; pass one id per recording")
    if np.unique(ids).size != n_audios:
        raise DataError("audio ids are not unique; per-query outcomes need one id per recording")
    return ids


def outcomes_from_embeddings(
    audio_emb: Any,
    text_emb: Any,
    audio_of_caption: Any,
    audio_ids: Any = None,
    fingerprint: str = "",
    chunk_size: int | None = None,
) -> Outcomes:
    """Per-query outcomes from embeddings: :func:`bench.evaluation.metrics.embedding_ranks`, the very driver
    behind :func:`bench.evaluation.metrics.retrieval_metrics` (same fp32 GEMMs, same chunks, same ties)."""
    ranks = embedding_ranks(audio_emb, text_emb, audio_of_caption, chunk_size)
    return _outcomes(ranks, audio_of_caption, audio_ids, fingerprint)


def outcomes_from_scores(
    t2a_scores: Any, a2t_scores: Any, audio_of_caption: Any, audio_ids: Any = None, fingerprint: str = ""
) -> Outcomes:
    """Per-query outcomes from full score matrices ``[n_captions, n_audios]`` and ``[n_audios, n_captions]``."""
    s_t = torch.as_tensor(t2a_scores)
    s_a = torch.as_tensor(a2t_scores)
    return outcomes_from_score_fns(
        lambda i, j: s_t[i:j], lambda i, j: s_a[i:j], s_a.shape[0], s_t.shape[0],
        audio_of_caption, audio_ids, fingerprint, None,
    )


def outcomes_from_score_fns(
    t2a_fn: Any, a2t_fn: Any, n_audios: int, n_captions: int, audio_of_caption: Any,
    audio_ids: Any = None, fingerprint: str = "", chunk_size: int | None = None,
) -> Outcomes:
    """Per-query outcomes of score functions, through :func:`bench.evaluation.metrics.chunked_ranks` (the
    driver of :func:`bench.evaluation.metrics.chunked_metrics`): ``fn(start, stop)`` returns score rows."""
    ranks = chunked_ranks(t2a_fn, a2t_fn, n_audios, n_captions, audio_of_caption, chunk_size)
    return _outcomes(ranks, audio_of_caption, audio_ids, fingerprint)


def _outcomes(ranks: dict[str, tuple[torch.Tensor, ...]], audio_of_caption: Any, audio_ids: Any,
              fingerprint: str) -> Outcomes:
    aoc = np.asarray(torch.as_tensor(audio_of_caption).cpu(), dtype=np.int64)
    (t2a_rank,), (first, ap) = ranks["t2a"], ranks["a2t"]
    n_audios = int(first.shape[0])
    return Outcomes(
        t2a_rank.numpy().astype(np.int64), first.numpy().astype(np.int64), ap.numpy().astype(np.float64),
        _ids(audio_ids, n_audios), aoc.copy(), caption_slots(aoc, n_audios), str(fingerprint),
    )


def reduce(outcomes: Outcomes) -> dict[str, dict[str, float]]:
    """The metrics the outcomes reduce to, with bench.evaluation.metrics' own reductions (bit-exact)."""
    return {
        "t2a": summarise_t2a(torch.from_numpy(np.asarray(outcomes.t2a_rank, dtype=np.int64))),
        "a2t": summarise_a2t(torch.from_numpy(np.asarray(outcomes.a2t_first, dtype=np.int64)),
                             torch.from_numpy(np.asarray(outcomes.a2t_ap10, dtype=np.float64))),
    }


# ----------------------------------------------------------------------------- embeddings file


def read_embeddings(path: str | Path) -> dict[str, Any]:
    """A run's ``test_embeddings.npz`` (see bench.evaluation.evaluate.save_embeddings); one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: test embeddings not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {key: data[key] for key in ("audio", "text", "audio_of_caption", "audio_ids")}
            out["fingerprint"] = str(data["fingerprint"]) if "fingerprint" in data.files else ""
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable test embeddings ({type(exc).__name__}: {exc})") from None
    return out


def outcomes_from_npz(path: str | Path, chunk_size: int | None = None) -> Outcomes:
    """Per-query outcomes recomputed from a run's stored test embeddings."""
    e = read_embeddings(path)
    return outcomes_from_embeddings(e["audio"], e["text"], e["audio_of_caption"], e["audio_ids"],
                                    e["fingerprint"], chunk_size)


# ----------------------------------------------------------------------------- sidecar


def sidecar_path(result_path: str | Path) -> Path:
    """``<dir>/<run_id>.per_query.npz`` for ``<dir>/<run_id>.json``."""
    result_path = Path(result_path)
    return result_path.with_name(result_path.stem + SIDECAR_SUFFIX)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _smallest_int(values: np.ndarray) -> np.ndarray:
    # Ranks fit in int32 below 2**31 items; keep the file small without losing anything.
    big = values.size and int(values.max()) >= np.iinfo(np.int32).max
    return values.astype(np.int64 if big else np.int32)


def write_sidecar(path: str | Path, outcomes: Outcomes) -> str:
    """Write the outcomes to ``path`` atomically; returns the file's sha256 (hex) for the result JSON."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            format=np.asarray(SIDECAR_FORMAT),
            t2a_rank=_smallest_int(np.asarray(outcomes.t2a_rank)),
            a2t_first=_smallest_int(np.asarray(outcomes.a2t_first)),
            a2t_ap10=np.asarray(outcomes.a2t_ap10, dtype=np.float64),
            audio_ids=np.asarray(outcomes.audio_ids).astype(str),
            audio_of_caption=_smallest_int(np.asarray(outcomes.audio_of_caption)),
            caption_slot=_smallest_int(np.asarray(outcomes.caption_slot)),
            fingerprint=np.asarray(outcomes.fingerprint),
        )
    return file_sha256(path)


def sidecar_entry(path: str | Path, sha256: str) -> dict[str, str]:
    """The result-JSON field ``per_query``: the sidecar's file name (relative to the JSON) and hash."""
    return {"file": Path(path).name, "sha256": sha256, "format": SIDECAR_FORMAT}


def attach_sidecar(result: dict[str, Any], results_dir: str | Path, outcomes: Outcomes) -> Path:
    """Write ``<run_id>.per_query.npz`` into ``results_dir`` and record it in ``result``.

    Sets ``result["per_query"]`` (file and sha256) and ``result["metrics"]`` to what the outcomes
    reduce to, so the JSON and its sidecar agree by construction. Call it right before
    :func:`bench.results.files.write_result`; an existing result of that run id is never touched.
    """
    json_path = inside(results_dir, f"{result['run_id']}.json", what="result file")
    if json_path.exists():
        raise DataError(f"{json_path} already exists: results are immutable; use a new run id")
    path = sidecar_path(json_path)
    result["per_query"] = sidecar_entry(path, write_sidecar(path, outcomes))
    result["metrics"] = reduce(outcomes)
    return path


def write_per_query(result: dict[str, Any], results_dir: str | Path, embeddings: str | Path,
                    chunk_size: int | None = None) -> Path:
    """A run's sidecar from its saved test embeddings (``chunk_size``: the run's eval chunk, so the
    GEMMs are the run's own); sets ``per_query`` and ``metrics`` as :func:`attach_sidecar` does."""
    claimed = result.get("metrics")
    path = attach_sidecar(result, results_dir, outcomes_from_npz(embeddings, chunk_size))
    if claimed is not None and claimed != result["metrics"]:
        logging.getLogger("bench").warning(
            "run %s: the test metrics recomputed from the saved embeddings differ from the trainer's; "
            "the result records the recomputed ones (those its sidecar and `bench verify` reproduce)",
            result.get("run_id"))
    return path


def read_sidecar(path: str | Path, sha256: str | None = None) -> Outcomes:
    """Read a sidecar; missing, truncated, foreign or hash-mismatched files give one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: per-query sidecar is missing")
    if sha256 is not None and file_sha256(path) != sha256:
        raise DataError(f"{path}: per-query sidecar does not match the sha256 recorded in its result")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data.files or str(data["format"]) != SIDECAR_FORMAT:
                raise DataError(f"{path}: not a bench per-query sidecar (format {SIDECAR_FORMAT} expected)")
            out = Outcomes(
                data["t2a_rank"].astype(np.int64), data["a2t_first"].astype(np.int64),
                data["a2t_ap10"].astype(np.float64), data["audio_ids"].astype(str),
                data["audio_of_caption"].astype(np.int64), data["caption_slot"].astype(np.int64),
                str(data["fingerprint"]),
            )
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # an object array: never unpickled
            raise DataError(f"{path}: per-query sidecar is not a plain npz (it holds pickled objects)") from None
        raise DataError(f"{path}: per-query sidecar is truncated or unreadable (ValueError)") from None
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: per-query sidecar is truncated or unreadable ({type(exc).__name__})") from None
    _check_consistent(out, path)
    return out


def _check_consistent(o: Outcomes, path: Path) -> None:
    if (o.a2t_ap10.shape != o.a2t_first.shape or o.audio_ids.shape != o.a2t_first.shape
            or o.audio_of_caption.shape != o.t2a_rank.shape or o.caption_slot.shape != o.t2a_rank.shape):
        raise DataError(f"{path}: per-query sidecar arrays have inconsistent lengths")
    if o.audio_of_caption.size and (o.audio_of_caption.min() < 0 or o.audio_of_caption.max() >= o.n_audios):
        raise DataError(f"{path}: per-query sidecar maps a caption to a recording that is not in it")


def load_for_result(result: dict[str, Any], result_path: str | Path) -> Outcomes:
    """The sidecar a result JSON names in its ``per_query`` field, hash-checked."""
    entry = result.get("per_query")
    if not isinstance(entry, dict) or not entry.get("file"):
        raise DataError(f"{result_path}: the result records no per-query sidecar")
    try:  # the name is the result's: a plain file beside it (no directory part, no symlink out)
        path = inside(Path(result_path).parent, str(entry["file"]), what="per-query sidecar")
    except BenchError as exc:
        raise DataError(f"{result_path}: {' '.join(str(exc).split())}") from None
    if Path(path).name != str(entry["file"]):
        raise DataError(f"{result_path}: per-query sidecar {str(entry['file'])[:80]!r} is not a file name beside it")
    return read_sidecar(path, entry.get("sha256"))


# ----------------------------------------------------------------------------- alignment


def align(first: Outcomes, second: Outcomes, names: tuple[str, str] = ("A", "B")) -> tuple[Outcomes, Outcomes]:
    """Both outcomes in the first's query order; refuses two different splits with one line."""
    a_name, b_name = names
    if first.fingerprint and second.fingerprint and first.fingerprint != second.fingerprint:
        raise ConfigError(
            f"{a_name} and {b_name} were evaluated on different test splits (fingerprints "
            f"{first.fingerprint[:8]} and {second.fingerprint[:8]}); only runs on the same split can be compared"
        )
    a_ids, b_ids = first.audio_ids.astype(str), second.audio_ids.astype(str)
    a_keys, b_keys = first.caption_keys(), second.caption_keys()
    if set(a_ids) != set(b_ids) or set(a_keys) != set(b_keys):
        raise ConfigError(
            f"{a_name} and {b_name} have different queries ({first.n_captions} vs {second.n_captions} "
            "captions or different ids); only runs on the same split can be compared"
        )
    if np.array_equal(a_ids, b_ids) and np.array_equal(a_keys, b_keys):
        return first, second
    audio_order = np.argsort(b_ids)[np.searchsorted(np.sort(b_ids), a_ids)]
    caption_order = np.argsort(b_keys)[np.searchsorted(np.sort(b_keys), a_keys)]
    return first, second.take(audio_order, caption_order)


__all__ = [
    "SIDECAR_FORMAT", "SIDECAR_SUFFIX", "Outcomes", "align", "caption_slots", "file_sha256", "load_for_result",
    "outcomes_from_embeddings", "outcomes_from_npz", "outcomes_from_score_fns", "outcomes_from_scores",
    "read_embeddings", "read_sidecar", "reduce", "sidecar_entry", "sidecar_path", "write_sidecar",
]
