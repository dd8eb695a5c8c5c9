"""Scoring arrays: ``.npz`` embeddings (both directions, every metric) and ``.npz`` score matrices.

Embeddings are scored exactly as ``bench run`` scores its test split: fp32 ``text @ audio.T`` (t2a)
and ``audio @ text.T`` (a2t), chunk by chunk, through :func:`bench.evaluation.metrics.chunked_ranks`.
Rows are matched to the split by key (file names; caption ids or caption texts), so a file may list
them in any order. A recording or caption the file lacks is a miss (see :mod:`bench.results.score_lists`).
The array names are in ``docs/formats.md``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import DataError
from bench.evaluation.metrics import chunked_ranks
from bench.evaluation.per_query import caption_slots
from bench.results.score_lists import (
    UNKNOWN_WITHOUT_FULL_RANKS,
    Scored,
    Truth,
    rows_of_audios,
    rows_of_captions,
)

AUDIO_KEYS = ("audio_ids",)
CAPTION_KEYS = ("caption_ids", "captions")


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable .npz ({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); "
                        "save it with numpy.savez (string keys as str arrays, no pickled objects)") from None


def caption_keys(arrays: dict[str, np.ndarray], path: Path, n_rows: int, what: str) -> np.ndarray:
    """The caption key of each row: ``caption_ids``, else ``captions`` (texts), else derived from a bench
    ``test_embeddings.npz`` (``audio_ids`` + ``audio_of_caption``)."""
    for key in CAPTION_KEYS:
        if key in arrays:
            keys = np.asarray(arrays[key]).astype(str)
            break
    else:
        if "audio_of_caption" not in arrays or "audio_ids" not in arrays:
            raise DataError(f"{path}: no caption keys; add an array 'caption_ids' (or 'captions') with one key "
                            f"per row of {what!r}")
        ids = np.asarray(arrays["audio_ids"]).astype(str)
        aoc = np.asarray(arrays["audio_of_caption"], dtype=np.int64)
        keys = np.char.add(np.char.add(ids[aoc], "#"), caption_slots(aoc, ids.size).astype(str))
    if keys.shape != (n_rows,):
        raise DataError(f"{path}: {keys.size} caption keys for {n_rows} rows of {what!r}; give one key per row")
    return keys


def audio_keys(arrays: dict[str, np.ndarray], path: Path, n_rows: int, what: str) -> np.ndarray:
    if "audio_ids" not in arrays:
        raise DataError(f"{path}: no array 'audio_ids' (one file name per row of {what!r})")
    keys = np.asarray(arrays["audio_ids"]).astype(str)
    if keys.shape != (n_rows,):
        raise DataError(f"{path}: {keys.size} audio_ids for {n_rows} rows of {what!r}; give one file name per row")
    return keys


def _matrix(arrays: dict[str, np.ndarray], name: str, path: Path, ndim: int = 2) -> np.ndarray:
    if name not in arrays:
        raise DataError(f"{path}: no array {name!r}")
    value = np.asarray(arrays[name])
    if value.ndim != ndim or value.dtype.kind != "f":
        raise DataError(f"{path}: {name!r} has shape {value.shape} and dtype {value.dtype}; expected a 2-D float "
                        "array (rows x dimensions, or queries x documents)")
    return value


def _finite(value: np.ndarray, name: str, keys: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(value).all(axis=tuple(range(1, value.ndim)))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: {name!r} has NaN or inf in row {r} ({str(keys[r])!r}); fix the model that wrote it")


def _masked(fn: Callable[[int, int], torch.Tensor], dropped: torch.Tensor | None) -> Callable[[int, int], torch.Tensor]:
    """Documents the file lacks rank below every document it has (they are unlisted)."""
    if dropped is None:
        return fn
    return lambda i, j: fn(i, j).masked_fill(dropped, float("-inf"))


def _direction(direction: str, fn: Callable[[int, int], torch.Tensor], truth: Truth, query_missing: np.ndarray,
               doc_missing: np.ndarray, chunk: int | None) -> Scored:
    n_d = truth.n_docs(direction)
    dropped = torch.from_numpy(doc_missing) if doc_missing.any() else None
    t2a = direction == "t2a"
    ranks = chunked_ranks(_masked(fn, dropped) if t2a else None, None if t2a else _masked(fn, dropped),
                          truth.n_audios, truth.n_captions, truth.audio_of_caption, chunk)[direction]
    first = np.where(query_missing, n_d + 1, ranks[0].numpy()).astype(np.int64)
    if t2a:
        full = not query_missing.any() and not doc_missing[truth.audio_of_caption].any()
        return Scored((first,), int(query_missing.sum()), [] if full else list(UNKNOWN_WITHOUT_FULL_RANKS), None)
    return Scored((first, np.where(query_missing, 0.0, ranks[1].numpy())), int(query_missing.sum()), [], None)


def _gathered(value: np.ndarray, row: np.ndarray) -> np.ndarray:
    """``value[row]`` with zero rows where ``row`` is -1 (those queries are set to misses afterwards)."""
    out = value[np.maximum(row, 0)]
    out[row < 0] = 0
    return out


def score_embeddings(path: str | Path, truth: Truth, chunk: int | None) -> tuple[dict[str, Scored], dict[str, Any]]:
    """Both directions from ``audio`` [n, D] and ``text`` [m, D] with their keys; also the embeddings in split
    order (``audio``, ``text``: fp32) when the file covers the whole split, else ``{}``."""
    path = Path(path)
    arrays = load_npz(path)
    audio, text = _matrix(arrays, "audio", path), _matrix(arrays, "text", path)
    if audio.shape[1] != text.shape[1]:
        raise DataError(f"{path}: 'audio' is {audio.shape[1]}-d but 'text' is {text.shape[1]}-d; "
                        "both must be embeddings in one space")
    akeys = audio_keys(arrays, path, audio.shape[0], "audio")
    ckeys = caption_keys(arrays, path, text.shape[0], "text")
    _finite(audio, "audio", akeys, path)
    _finite(text, "text", ckeys, path)
    arow = rows_of_audios(akeys, truth, str(path), "row of 'audio'")
    crow = rows_of_captions(ckeys, truth, str(path), "row of 'text'")
    a = torch.from_numpy(_gathered(audio, arow).astype(np.float32))
    t = torch.from_numpy(_gathered(text, crow).astype(np.float32))
    amiss, cmiss = arow < 0, crow < 0
    with torch.inference_mode():
        scored = {"t2a": _direction("t2a", lambda i, j: t[i:j] @ a.T, truth, cmiss, amiss, chunk),
                  "a2t": _direction("a2t", lambda i, j: a[i:j] @ t.T, truth, amiss, cmiss, chunk)}
    complete = {"audio": a, "text": t} if not amiss.any() and not cmiss.any() else {}
    return scored, complete


def score_matrix(path: str | Path, truth: Truth, chunk: int | None) -> dict[str, Scored]:
    """t2a from ``scores`` [captions, files]; a2t from ``a2t_scores`` [files, captions] if given, else
    from the transpose of ``scores``."""
    path = Path(path)
    arrays = load_npz(path)
    scores = _matrix(arrays, "scores", path)
    ckeys = caption_keys(arrays, path, scores.shape[0], "scores")
    akeys = audio_keys(arrays, path, scores.shape[1], "scores (columns)")
    crow = rows_of_captions(ckeys, truth, str(path), "row of 'scores'")
    acol = rows_of_audios(akeys, truth, str(path), "column of 'scores'")
    _finite(scores, "scores", ckeys, path)
    if "a2t_scores" in arrays:
        a2t = _matrix(arrays, "a2t_scores", path)
        if a2t.shape != scores.shape[::-1]:
            raise DataError(f"{path}: 'a2t_scores' has shape {a2t.shape}; expected {scores.shape[::-1]} "
                            "(files x captions, the transpose of 'scores')")
        _finite(a2t, "a2t_scores", akeys, path)
    else:
        a2t = scores.T
    t2a_full = torch.from_numpy(_gathered(_gathered(scores, crow).T.copy(), acol).T.copy())
    a2t_full = torch.from_numpy(_gathered(_gathered(np.ascontiguousarray(a2t), acol).T.copy(), crow).T.copy())
    amiss, cmiss = acol < 0, crow < 0
    with torch.inference_mode():
        return {"t2a": _direction("t2a", lambda i, j: t2a_full[i:j], truth, cmiss, amiss, chunk),
                "a2t": _direction("a2t", lambda i, j: a2t_full[i:j], truth, amiss, cmiss, chunk)}
