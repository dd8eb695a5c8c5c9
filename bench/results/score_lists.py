"""The ground truth a scored file is matched against, and ranked lists turned into per-query outcomes.

``bench score`` reads outside outputs (run files, submissions, arrays; :mod:`bench.results.run_files`,
:mod:`bench.results.score_arrays`) into one of two shapes, both scored by the driver behind every bench
metric (:func:`bench.evaluation.metrics.chunked_ranks`), so ties and cut-offs count exactly as in ``bench run``:

- :class:`Lists`: per query, a ranked list of (document, score); unlisted documents rank below
  every listed one. They become a dense ``[queries, documents]`` matrix with ``-inf`` where
  nothing was listed, scored chunk by chunk.
- score functions over embeddings or a score matrix (:mod:`bench.results.score_arrays`).

Queries and documents are named by the dataset's ids (:class:`Truth`): a recording by its
``audio_id`` (the file name), a caption by its *caption id* ``"<audio_id>#<k>"``, k the caption's
0-based position among that recording's captions (the keys of :mod:`bench.evaluation.per_query`).

A query missing from the file is a miss (as ``trec_eval -c`` counts it): its rank is stored as
``n_documents + 1`` in the sidecar, past every real rank, so R@k and mAP@10 count it as 0 and nothing
is dropped. A direction the file does not hold is stored the same way and left out of the result's
metrics. The mean and median rank are known only when every query is present and every query's
relevant document is listed; otherwise the result lists them as unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.errors import DataError
from bench.evaluation.metrics import MAP_CUTOFF, chunked_ranks
from bench.evaluation.per_query import Outcomes, caption_slots

UNKNOWN_WITHOUT_FULL_RANKS = ("mean_rank", "median_rank")
"""The t2a metrics a file can only give when every caption's recording is in its list."""


@dataclass(frozen=True)
class Truth:
    """The test split a file is scored against: ids, captions and which recording each caption describes."""

    dataset: str
    audio_ids: np.ndarray  # [n_audios] str: file names
    captions: np.ndarray  # [n_captions] str: caption texts
    audio_of_caption: np.ndarray  # [n_captions] int64
    fingerprint: str
    caption_ids: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        slots = caption_slots(self.audio_of_caption, self.n_audios)
        ids = np.char.add(np.char.add(self.audio_ids.astype(str)[self.audio_of_caption], "#"), slots.astype(str))
        object.__setattr__(self, "caption_ids", ids)

    @classmethod
    def from_split(cls, dataset: str, split: Any) -> Truth:
        """From a :class:`bench.data.loading.SplitData`."""
        return cls(dataset, np.asarray([str(item.audio_id) for item in split.items]),
                   np.asarray([str(c) for c in split.captions]), np.asarray(split.audio_of_caption, dtype=np.int64),
                   split.fingerprint())

    @property
    def n_audios(self) -> int:
        return int(self.audio_ids.shape[0])

    @property
    def n_captions(self) -> int:
        return int(self.audio_of_caption.shape[0])

    def summary(self) -> dict[str, Any]:
        return {"n_audios": self.n_audios, "n_captions": self.n_captions, "fingerprint": self.fingerprint}

    def n_docs(self, direction: str) -> int:
        return self.n_audios if direction == "t2a" else self.n_captions

    def n_queries(self, direction: str) -> int:
        return self.n_captions if direction == "t2a" else self.n_audios


def list_depth(truth: Truth, direction: str) -> int:
    """The shortest list bench accepts: the top 10 (R@10, mAP@10), or every document of a smaller split."""
    return min(MAP_CUTOFF, truth.n_docs(direction))


# ----------------------------------------------------------------------------- key matching


def audio_indices(keys: Any, truth: Truth) -> np.ndarray:
    """Each key's recording index, -1 where the key is no file name of the split (vectorised)."""
    return pd.Index(truth.audio_ids).get_indexer(pd.Index(np.asarray(keys, dtype=object).astype(str)))


def caption_indices(keys: Any, truth: Truth) -> np.ndarray:
    """Each key's caption index by caption id, -1 where the key is no caption id of the split."""
    return pd.Index(truth.caption_ids).get_indexer(pd.Index(np.asarray(keys, dtype=object).astype(str)))


def rows_of_captions(keys: Any, truth: Truth, source: str, what: str) -> np.ndarray:
    """``row[c]``: the row of ``keys`` naming caption c (by caption id, else by its text), -1 if none.

    A text shared by several captions of the split names all of them (a system ranks a text once).
    Unknown and duplicate keys raise one line naming the key and the row (``what`` says which row).
    """
    keys = np.asarray(keys, dtype=object).astype(str)
    by_id = caption_indices(keys, truth)
    texts = pd.Series(np.arange(truth.n_captions), index=pd.Index(truth.captions))
    row = np.full(truth.n_captions, -1, dtype=np.int64)
    for r in np.flatnonzero(by_id < 0):  # only keys that are not caption ids: texts (few files use them)
        if keys[r] not in texts.index:
            raise DataError(f"{source} {what} {r + 1}: {str(keys[r])!r} is neither a caption id nor a caption of "
                            f"{truth.dataset}/test; caption ids are '<file name>#<caption index>' "
                            f"(`bench score --template trec --dataset {truth.dataset}` lists them)")
    for r, key in enumerate(keys):
        targets = [by_id[r]] if by_id[r] >= 0 else list(np.atleast_1d(texts.loc[key]))
        for c in targets:
            if row[c] >= 0:
                raise DataError(f"{source} {what} {r + 1}: duplicate query {str(key)!r} (caption "
                                f"{truth.caption_ids[c]} is already given in {what} {row[c] + 1}); "
                                f"keep one {what} per caption")
            row[c] = r
    return row


def rows_of_audios(keys: Any, truth: Truth, source: str, what: str) -> np.ndarray:
    """``row[a]``: the row of ``keys`` naming recording a, -1 if none; unknown or repeated keys raise."""
    keys = np.asarray(keys, dtype=object).astype(str)
    index = audio_indices(keys, truth)
    if (index < 0).any():
        r = int(np.flatnonzero(index < 0)[0])
        raise DataError(f"{source} {what} {r + 1}: {str(keys[r])!r} is not a file name of {truth.dataset}/test "
                        f"(e.g. {str(truth.audio_ids[0])!r})")
    counts = np.bincount(index, minlength=truth.n_audios)
    if (counts > 1).any():
        a = int(np.flatnonzero(counts > 1)[0])
        first, again = np.flatnonzero(index == a)[:2]
        raise DataError(f"{source} {what} {again + 1}: duplicate file {str(keys[again])!r} (also {what} {first + 1}); "
                        f"keep one {what} per file")
    row = np.full(truth.n_audios, -1, dtype=np.int64)
    row[index] = np.arange(index.size)
    return row


# ----------------------------------------------------------------------------- ranked lists


@dataclass
class Lists:
    """The ranked lists of one direction: row i lists document ``d[i]`` for query ``q[i]`` with ``s[i]``.

    Queries and documents are indices into the :class:`Truth` (captions and files, by direction);
    ``line[i]`` is the 1-based line of the file the row came from, for messages.
    """

    direction: str
    q: np.ndarray
    d: np.ndarray
    s: np.ndarray
    line: np.ndarray


@dataclass
class Scored:
    """What a file gave for one direction: per-query ranks and what is unknown about them."""

    ranks: tuple[np.ndarray, ...]
    missing: int
    unknown: list[str]
    depth: int | None  # the shortest list (None: full rankings, as from embeddings or a matrix)


def _query_name(truth: Truth, direction: str, index: int) -> str:
    return str(truth.caption_ids[index] if direction == "t2a" else truth.audio_ids[index])


def _doc_name(truth: Truth, direction: str, index: int) -> str:
    return str(truth.audio_ids[index] if direction == "t2a" else truth.caption_ids[index])


def check_lists(lists: Lists, truth: Truth, source: str) -> np.ndarray:
    """Finite scores, one line per (query, document), lists long enough; returns each query's list length."""
    direction, n_q, n_d = lists.direction, truth.n_queries(lists.direction), truth.n_docs(lists.direction)
    bad = ~np.isfinite(lists.s)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source} line {lists.line[i]}: score {lists.s[i]} is not a finite number; "
                        "write a real score for every line")
    key = lists.q * n_d + lists.d
    counts = np.bincount(key, minlength=n_q * n_d)
    if (counts > 1).any():
        k = int(np.flatnonzero(counts > 1)[0])
        first, again = np.flatnonzero(key == k)[:2]
        raise DataError(f"{source} line {lists.line[again]}: duplicate document "
                        f"{_doc_name(truth, direction, k % n_d)!r} in the list of query "
                        f"{_query_name(truth, direction, k // n_d)!r} (also line {lists.line[first]}); "
                        "list each document once per query")
    listed = np.bincount(lists.q, minlength=n_q)
    need = list_depth(truth, direction)
    short = (listed > 0) & (listed < need)
    if short.any():
        query = int(np.flatnonzero(short)[0])
        line = int(lists.line[np.flatnonzero(lists.q == query)[0]])
        raise DataError(f"{source} line {line}: query {_query_name(truth, direction, query)!r} lists "
                        f"{int(listed[query])} document(s); bench needs the top {need} of every query "
                        f"(R@10 and mAP@10): write at least {need} per query")
    return listed


def score_lists(lists: Lists, truth: Truth, source: str, chunk_size: int | None) -> Scored:
    """Per-query outcomes of ranked lists, through :func:`bench.evaluation.metrics.chunked_ranks`."""
    direction, n_q, n_d = lists.direction, truth.n_queries(lists.direction), truth.n_docs(lists.direction)
    listed = check_lists(lists, truth, source)
    matrix = np.full((n_q, n_d), -np.inf, dtype=np.float64)  # unlisted: below every listed document
    matrix.ravel()[lists.q * n_d + lists.d] = lists.s
    scores = torch.from_numpy(matrix)
    missing = listed == 0
    fn: Callable[[int, int], torch.Tensor] = lambda i, j: scores[i:j]  # noqa: E731
    depth = int(listed[~missing].min()) if (~missing).any() else 0
    if direction == "t2a":
        (rank,) = chunked_ranks(fn, None, n_d, n_q, truth.audio_of_caption, chunk_size)["t2a"]
        found = matrix[np.arange(n_q), truth.audio_of_caption] > -np.inf
        full = bool(found.all())
        return Scored((_miss(rank.numpy(), missing, n_d),), int(missing.sum()),
                      [] if full else list(UNKNOWN_WITHOUT_FULL_RANKS), depth)
    first, ap = chunked_ranks(None, fn, n_q, n_d, truth.audio_of_caption, chunk_size)["a2t"]
    return Scored((_miss(first.numpy(), missing, n_d), np.where(missing, 0.0, ap.numpy())), int(missing.sum()),
                  [], depth)


def _miss(ranks: np.ndarray, missing: np.ndarray, n_docs: int) -> np.ndarray:
    return np.where(missing, n_docs + 1, ranks).astype(np.int64)


def absent(truth: Truth, direction: str) -> tuple[np.ndarray, ...]:
    """The stored outcomes of a direction the file does not hold: every query a miss."""
    n_q, n_d = truth.n_queries(direction), truth.n_docs(direction)
    ranks = np.full(n_q, n_d + 1, dtype=np.int64)
    return (ranks,) if direction == "t2a" else (ranks, np.zeros(n_q, dtype=np.float64))


def outcomes(truth: Truth, scored: dict[str, Scored]) -> Outcomes:
    """The sidecar's :class:`Outcomes` of the directions scored (the others as :func:`absent`)."""
    t2a = scored["t2a"].ranks if "t2a" in scored else absent(truth, "t2a")
    a2t = scored["a2t"].ranks if "a2t" in scored else absent(truth, "a2t")
    return Outcomes(np.asarray(t2a[0], dtype=np.int64), np.asarray(a2t[0], dtype=np.int64),
                    np.asarray(a2t[1], dtype=np.float64), truth.audio_ids.astype(str),
                    truth.audio_of_caption.astype(np.int64), caption_slots(truth.audio_of_caption, truth.n_audios),
                    truth.fingerprint)
