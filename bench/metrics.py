"""Retrieval metrics for language-based audio retrieval (SPEC section 2), exact and vectorised.

Definitions (``bench``'s standard; every number in a results file is a fraction in [0, 1]):

**Text-to-audio (t2a).** Each caption is a query; its one relevant item is the audio it describes.
The rank of that audio is ``r = 1 + #{audios scoring strictly higher} + #{other audios scoring
exactly equal}``: ties count against the query, so a constant scorer gets rank ``n_audios`` for
every caption (the worst result), never a perfect one. ``R@k = mean(r <= k)`` for k = 1, 5, 10,
``mAP@10 = mean(1/r if r <= 10 else 0)``, plus the mean and the median rank (the median of an
even number of ranks is the mean of the two middle ones, as in ``numpy.median``).

**Audio-to-text (a2t).** Each audio is a query; all its captions are relevant. Within equal
scores the irrelevant captions rank first (pessimistic again). ``R@k`` is the fraction of audio
queries with at least one relevant caption in the top k (CLAP / WavCaps / DCASE convention, not
divided by the number of relevant captions). ``mAP@10`` is the mean over queries of
``(1 / min(n_rel, 10)) * sum over relevant positions i <= 10 of precision@i``.
An audio without any caption cannot be an a2t query: the a2t functions raise
:class:`MetricInputError` naming the audio (drop it, or evaluate t2a only, where it is a valid
distractor).

**Scores.** ``scores[i, j]`` is the agreement of query i with item j (higher is better).
numpy arrays and torch tensors of any floating dtype are accepted and compared in their own
dtype, except float16 / bfloat16, which are upcast to float32 (exact, so ties are unchanged).
Scores computed here from embeddings are fp32. NaN scores raise :class:`MetricInputError`.

**Layout of the API.**

- Full matrices: :func:`text_to_audio`, :func:`audio_to_text`.
- From embeddings, chunk by chunk, never holding more than ``chunk x n_audios`` (t2a) or
  ``chunk x n_captions`` (a2t) scores: :func:`retrieval_metrics`.
- Generic chunking over any score function ``score_fn(start, stop) -> scores chunk``, for late
  fusion of several systems' scores: :func:`chunked_metrics`.
- Per-chunk pieces: :func:`t2a_ranks`, :func:`a2t_ranks` (with :func:`caption_table`), and the
  reductions :func:`summarise_t2a`, :func:`summarise_a2t`.
- :func:`chance_metrics`: the expected metrics of a uniformly random ranking, analytically.
- :func:`format_percent`: ``0.28934 -> "28.93"``.

Everything runs on the device of the scores (CPU or CUDA); results are Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import torch

from bench.errors import DataError

RECALL_KS: tuple[int, ...] = (1, 5, 10)
"""The k of the reported R@k."""

MAP_CUTOFF = 10
"""The cut-off of mAP@10."""

T2A_KEYS: tuple[str, ...] = ("R@1", "R@5", "R@10", "mAP@10", "mean_rank", "median_rank")
"""Keys of a text-to-audio result, in table order. R@k and mAP@10 are fractions, ranks are 1-based."""

A2T_KEYS: tuple[str, ...] = ("R@1", "R@5", "R@10", "mAP@10")
"""Keys of an audio-to-text result, in table order (all fractions)."""

METRIC_KEYS: dict[str, tuple[str, ...]] = {"t2a": T2A_KEYS, "a2t": A2T_KEYS}
"""Keys per direction, as in the output of :func:`retrieval_metrics`."""

DEFAULT_CHUNK_ELEMENTS = 1 << 24
"""Automatic chunking keeps one score chunk at about 16 M elements (64 MB in fp32)."""

ScoreFn = Callable[[int, int], Any]
"""``score_fn(start, stop)`` returns the score rows of queries ``start:stop`` (tensor or array)."""


class MetricInputError(DataError, ValueError):
    """Scores or caption-to-audio indices that the metrics cannot use (NaN, wrong shape, ...).

    It is both a :class:`bench.errors.DataError` (shown to the user on one line) and a
    ``ValueError`` (what a numerical caller expects).
    """


class CaptionTable(NamedTuple):
    """The captions of every audio, padded: row a lists the caption indices of audio a.

    ``indices`` is ``[n_audios, max_captions]`` long (ascending caption index, padded with 0),
    ``counts`` is ``[n_audios]`` long. Build it with :func:`caption_table`.
    """

    indices: torch.Tensor
    counts: torch.Tensor

    def to(self, device: torch.device | str) -> "CaptionTable":
        """The same table on ``device``."""
        return CaptionTable(self.indices.to(device), self.counts.to(device))

    def rows(self, start: int, stop: int) -> "CaptionTable":
        """The table of audios ``start:stop``."""
        return CaptionTable(self.indices[start:stop], self.counts[start:stop])


# ----------------------------------------------------------------------------- input checks


def _as_float_tensor(x: Any, name: str) -> torch.Tensor:
    """A float tensor view of ``x``; float16/bfloat16 upcast to float32 (exact: ties survive)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise MetricInputError(
                f"{name} has numpy dtype {x.dtype}; pass floating-point scores (e.g. float32)"
            )
        if not x.flags.writeable or not x.dtype.isnative:
            # torch.from_numpy needs a writable, native-endian buffer.
            x = np.array(x, dtype=x.dtype.newbyteorder("="))
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        raise MetricInputError(
            f"{name} is a {type(x).__name__}; pass a numpy array or a torch tensor"
        )
    if not x.is_floating_point():
        raise MetricInputError(f"{name} has dtype {x.dtype}; pass floating-point scores")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return x


def _check_scores(
    scores: Any, name: str, n_rows: int | None, n_cols: int | None, row_offset: int = 0
) -> torch.Tensor:
    """Validate a score matrix (or chunk): 2-D float, expected shape, no NaN."""
    s = _as_float_tensor(scores, name)
    if s.ndim != 2:
        raise MetricInputError(f"{name} must be 2-D, got shape {tuple(s.shape)}")
    if (n_rows is not None and s.shape[0] != n_rows) or (n_cols is not None and s.shape[1] != n_cols):
        want = f"[{'*' if n_rows is None else n_rows}, {'*' if n_cols is None else n_cols}]"
        raise MetricInputError(f"{name} has shape {tuple(s.shape)}, expected {want}")
    if s.numel() and bool(torch.isnan(s).any()):
        row = int(torch.isnan(s).any(dim=1).nonzero()[0, 0]) + row_offset
        raise MetricInputError(
            f"{name} contains NaN (first in row {row}); fix the model or fusion that produced it"
        )
    return s


def _as_index(audio_of_caption: Any, n_audios: int, n_captions: int | None) -> torch.Tensor:
    """Validate ``audio_of_caption``: 1-D integers in ``[0, n_audios)``, one per caption."""
    if isinstance(audio_of_caption, torch.Tensor):
        idx = audio_of_caption
    else:
        arr = np.asarray(audio_of_caption)
        if arr.dtype.kind not in "iu":
            raise MetricInputError(
                f"audio_of_caption has dtype {arr.dtype}; pass integer audio indices, one per caption"
            )
        idx = torch.from_numpy(arr.astype(np.int64, copy=False))
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
        raise MetricInputError(
            f"audio_of_caption has dtype {idx.dtype}; pass integer audio indices, one per caption"
        )
    if idx.ndim != 1:
        raise MetricInputError(f"audio_of_caption must be 1-D, got shape {tuple(idx.shape)}")
    if n_captions is not None and idx.shape[0] != n_captions:
        raise MetricInputError(
            f"audio_of_caption has {idx.shape[0]} entries but there are {n_captions} captions"
        )
    idx = idx.long()
    bad = (idx < 0) | (idx >= n_audios)
    if idx.numel() and bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise MetricInputError(
            f"audio_of_caption[{i}] = {int(idx[i])} is out of range [0, {n_audios}); "
            "it must index the audio rows"
        )
    return idx


def _resolve_chunk(chunk_size: int | None, width: int) -> int:
    if chunk_size is None:
        return max(1, DEFAULT_CHUNK_ELEMENTS // max(1, width))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise MetricInputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return chunk_size


# ----------------------------------------------------------------------------- per-chunk pieces


def caption_table(audio_of_caption: Any, n_audios: int, allow_empty: bool = False) -> CaptionTable:
    """Group caption indices by audio (see :class:`CaptionTable`).

    Raises :class:`MetricInputError` if an audio has no caption, unless ``allow_empty``.
    """
    aoc = _as_index(audio_of_caption, n_audios, None)
    counts = torch.bincount(aoc, minlength=n_audios)
    if not allow_empty and n_audios and bool((counts == 0).any()):
        a = int((counts == 0).nonzero()[0, 0])
        n_empty = int((counts == 0).sum())
        raise MetricInputError(
            f"audio {a} has no caption ({n_empty} audio(s) without captions); audio-to-text needs "
            "every audio to have at least one caption: drop such audios or evaluate t2a only"
        )
    width = int(counts.max()) if aoc.numel() else 0
    order = torch.sort(aoc, stable=True).indices
    starts = torch.cumsum(counts, 0) - counts
    sorted_audio = aoc[order]
    slot = torch.arange(aoc.numel(), device=aoc.device) - starts[sorted_audio]
    indices = torch.zeros(n_audios, width, dtype=torch.long, device=aoc.device)
    indices[sorted_audio, slot] = order
    return CaptionTable(indices, counts)


def t2a_ranks(scores: Any, positives: Any) -> torch.Tensor:
    """Pessimistic rank of each query's positive: ``#{items scoring >= the positive}``.

    ``scores`` is ``[q, n_items]`` (float), ``positives`` is ``[q]`` (the relevant column per
    row). Returns ``[q]`` long ranks in ``1..n_items``. Counting ``>=`` includes the positive
    itself, so this is exactly ``1 + #{higher} + #{other equal}``.
    """
    s = _check_scores(scores, "scores", None, None)
    pos = torch.as_tensor(positives, device=s.device)
    if pos.shape != (s.shape[0],) or pos.is_floating_point() or pos.dtype == torch.bool:
        raise MetricInputError(
            f"positives has shape {tuple(pos.shape)} and dtype {pos.dtype}; expected "
            f"[{s.shape[0]}] integer column indices (one per score row)"
        )
    pos = pos.long()
    if pos.numel() and (int(pos.min()) < 0 or int(pos.max()) >= s.shape[1]):
        raise MetricInputError(f"positives must lie in [0, {s.shape[1]})")
    return _t2a_ranks(s, pos)


def _count_ge(s: torch.Tensor, threshold: torch.Tensor, buf: torch.Tensor | None = None) -> torch.Tensor:
    """Per row, ``#{s[i, :] >= threshold[i]}`` as long.

    Comparing into a float buffer and summing is about 10x faster on CPU than summing a bool
    tensor (which torch widens to int64), and exact: 0/1 partial sums stay integers below 2**24
    (float32) or 2**53 (float64, chosen for wider rows).
    """
    if buf is None or buf.shape != s.shape:
        buf = _count_buffer(s)
    torch.ge(s, threshold, out=buf)
    return buf.sum(dim=1).long()


def _count_buffer(s: torch.Tensor) -> torch.Tensor:
    dtype = torch.float32 if s.shape[-1] < (1 << 24) else torch.float64
    return torch.empty(s.shape, dtype=dtype, device=s.device)


def _t2a_ranks(s: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    positive_score = s.gather(1, pos[:, None])
    return _count_ge(s, positive_score)


def a2t_ranks(scores: Any, table: CaptionTable) -> tuple[torch.Tensor, torch.Tensor]:
    """Per audio query: the position of its first relevant caption and its AP@10.

    ``scores`` is ``[q, n_captions]`` for q audio queries; ``table`` holds those q audios' rows
    of the :func:`caption_table` (``table.rows(start, stop)``). Irrelevant captions rank before
    relevant ones of equal score. Returns ``(first_position [q] long, ap10 [q] float64)``.

    The k-th best relevant caption (k = 1, 2, ...) sits at position
    ``k + #{irrelevant captions scoring >= it}``; only k <= 10 can contribute to AP@10, so at most
    10 passes over the chunk are made (a loop over relevant slots, not over queries).
    """
    s = _check_scores(scores, "scores", None, None)
    q = s.shape[0]
    idx, counts = table.indices.to(s.device), table.counts.to(s.device)
    if idx.shape[0] != q:
        raise MetricInputError(f"caption table has {idx.shape[0]} rows, expected {q}")
    if q and int(counts.min()) < 1:
        raise MetricInputError("an audio query has no relevant caption; a2t needs at least one")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= s.shape[1]):
        raise MetricInputError(f"caption table indices must lie in [0, {s.shape[1]})")
    return _a2t_ranks(s, idx, counts)


def _a2t_ranks(
    s: torch.Tensor, idx: torch.Tensor, counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    q, m = idx.shape
    slots = torch.arange(m, device=s.device)
    valid = slots[None, :] < counts[:, None]  # [q, m]
    rel = s.gather(1, idx)  # [q, m] relevant scores; padded slots are masked out below

    # k_j: 1-based order of relevant caption j among the query's relevant captions (score
    # descending, ties broken by slot) -- a permutation of 1..n_rel over the valid slots.
    other = rel[:, None, :]  # slot l
    this = rel[:, :, None]  # slot j
    v_other = valid[:, None, :]
    before = (slots[None, :] < slots[:, None])[None]  # l < j
    k = 1 + ((other > this) & v_other).sum(2) + ((other == this) & v_other & before).sum(2)
    rel_ge = ((other >= this) & v_other).sum(2)  # relevant (incl. j) scoring >= s_j

    # Keep the (at most) 10 best relevant captions, in order.
    key = torch.where(valid, k, m + 1 + slots[None, :])
    top = key.argsort(dim=1)[:, : min(m, MAP_CUTOFF)]
    k_top = k.gather(1, top)
    s_top = rel.gather(1, top)
    ge_top = rel_ge.gather(1, top)
    valid_top = valid.gather(1, top)

    all_ge = torch.empty_like(k_top)
    buf = _count_buffer(s)
    for t in range(k_top.shape[1]):
        all_ge[:, t] = _count_ge(s, s_top[:, t : t + 1], buf)
    position = k_top + (all_ge - ge_top)  # k + #{irrelevant scoring >= s_k}

    hit = valid_top & (position <= MAP_CUTOFF)
    precision = k_top.double() / position.double()
    ap = torch.where(hit, precision, torch.zeros_like(precision)).sum(dim=1)
    ap = ap / counts.clamp(max=MAP_CUTOFF).double()
    first = position[:, 0] if q else torch.zeros(0, dtype=torch.long, device=s.device)
    return first, ap


def summarise_t2a(ranks: torch.Tensor) -> dict[str, float]:
    """Text-to-audio metrics (:data:`T2A_KEYS`) from the 1-based ranks of all caption queries."""
    r = torch.as_tensor(ranks).long().flatten().cpu()
    n = r.numel()
    if n == 0:
        raise MetricInputError("no caption queries: the metrics of an empty set are undefined")
    out = {f"R@{k}": int((r <= k).sum()) / n for k in RECALL_KS}
    recip = torch.where(r <= MAP_CUTOFF, 1.0 / r.double(), torch.zeros((), dtype=torch.float64))
    out["mAP@10"] = float(recip.sum()) / n
    out["mean_rank"] = float(r.sum()) / n  # exact: an integer sum
    srt = r.sort().values
    mid = n // 2
    out["median_rank"] = float(srt[mid]) if n % 2 else (int(srt[mid - 1]) + int(srt[mid])) / 2
    return out


def summarise_a2t(first_position: torch.Tensor, ap10: torch.Tensor) -> dict[str, float]:
    """Audio-to-text metrics (:data:`A2T_KEYS`) from per-query first positions and AP@10."""
    f = torch.as_tensor(first_position).long().flatten().cpu()
    ap = torch.as_tensor(ap10).double().flatten().cpu()
    n = f.numel()
    if n == 0:
        raise MetricInputError("no audio queries: the metrics of an empty set are undefined")
    if ap.numel() != n:
        raise MetricInputError(f"{n} first positions but {ap.numel()} AP values")
    out = {f"R@{k}": int((f <= k).sum()) / n for k in RECALL_KS}
    out["mAP@10"] = float(ap.sum()) / n
    return out


# ----------------------------------------------------------------------------- chunked drivers


def chunked_metrics(
    t2a_scores: ScoreFn | None,
    a2t_scores: ScoreFn | None,
    n_audios: int,
    n_captions: int,
    audio_of_caption: Any,
    chunk_size: int | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics from score functions evaluated chunk by chunk (the shared driver).

    ``t2a_scores(start, stop)`` returns the ``[stop - start, n_audios]`` scores of captions
    ``start:stop``; ``a2t_scores(start, stop)`` returns the ``[stop - start, n_captions]`` scores
    of audios ``start:stop``. Either may be ``None`` to skip that direction. Only one chunk is
    alive at a time. ``chunk_size`` is the number of query rows per chunk (``None``: about
    :data:`DEFAULT_CHUNK_ELEMENTS` scores per chunk). Returns ``{"t2a": {...}, "a2t": {...}}``
    with the directions computed.
    """
    if n_audios < 1 or n_captions < 1:
        raise MetricInputError(
            f"need at least one audio and one caption, got {n_audios} audios, {n_captions} captions"
        )
    aoc = _as_index(audio_of_caption, n_audios, n_captions)
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        _chunked_into(out, t2a_scores, a2t_scores, n_audios, n_captions, aoc, chunk_size)
    return out


def _chunked_into(
    out: dict[str, dict[str, float]],
    t2a_scores: ScoreFn | None,
    a2t_scores: ScoreFn | None,
    n_audios: int,
    n_captions: int,
    aoc: torch.Tensor,
    chunk_size: int | None,
) -> None:
    if t2a_scores is not None:
        rows = _resolve_chunk(chunk_size, n_audios)
        ranks = []
        for start in range(0, n_captions, rows):
            stop = min(start + rows, n_captions)
            chunk = _check_scores(
                t2a_scores(start, stop), f"t2a scores of captions {start}:{stop}",
                stop - start, n_audios, row_offset=start,
            )
            ranks.append(_t2a_ranks(chunk, aoc[start:stop].to(chunk.device)).cpu())
        out["t2a"] = summarise_t2a(torch.cat(ranks))
    if a2t_scores is not None:
        table = caption_table(aoc, n_audios)
        rows = _resolve_chunk(chunk_size, n_captions)
        # The [rows, m, m] relevant-vs-relevant comparisons must stay small too.
        m = table.indices.shape[1]
        rows = max(1, min(rows, DEFAULT_CHUNK_ELEMENTS // max(1, m * m)))
        firsts, aps = [], []
        for start in range(0, n_audios, rows):
            stop = min(start + rows, n_audios)
            chunk = _check_scores(
                a2t_scores(start, stop), f"a2t scores of audios {start}:{stop}",
                stop - start, n_captions, row_offset=start,
            )
            rows_table = table.rows(start, stop).to(chunk.device)
            first, ap = _a2t_ranks(chunk, rows_table.indices, rows_table.counts)
            firsts.append(first.cpu())
            aps.append(ap.cpu())
        out["a2t"] = summarise_a2t(torch.cat(firsts), torch.cat(aps))


def text_to_audio(scores: Any, audio_of_caption: Any) -> dict[str, float]:
    """Text-to-audio metrics (:data:`T2A_KEYS`) of a full ``[n_captions, n_audios]`` score matrix.

    ``audio_of_caption[i]`` is the index (column) of caption i's audio. Audios without captions
    are allowed here: they are distractors.
    """
    s = _as_float_tensor(scores, "scores")
    if s.ndim != 2:
        raise MetricInputError(f"scores must be 2-D [n_captions, n_audios], got {tuple(s.shape)}")
    n_c, n_a = s.shape
    return chunked_metrics(lambda a, b: s[a:b], None, n_a, n_c, audio_of_caption)["t2a"]


def audio_to_text(scores: Any, audio_of_caption: Any) -> dict[str, float]:
    """Audio-to-text metrics (:data:`A2T_KEYS`) of a full ``[n_audios, n_captions]`` score matrix.

    Every audio must have at least one caption (else :class:`MetricInputError`).
    """
    s = _as_float_tensor(scores, "scores")
    if s.ndim != 2:
        raise MetricInputError(f"scores must be 2-D [n_audios, n_captions], got {tuple(s.shape)}")
    n_a, n_c = s.shape
    return chunked_metrics(None, lambda a, b: s[a:b], n_a, n_c, audio_of_caption)["a2t"]


def retrieval_metrics(
    audio_emb: Any,
    text_emb: Any,
    audio_of_caption: Any,
    chunk_size: int | None = None,
) -> dict[str, dict[str, float]]:
    """Both directions from embeddings: ``scores = text @ audio.T`` in fp32, chunk by chunk.

    ``audio_emb`` is ``[n_audios, D]``, ``text_emb`` is ``[n_captions, D]`` (already normalised
    if cosine agreement is wanted; this function does not normalise). At most ``chunk_size x
    n_audios`` t2a scores or ``chunk_size x n_captions`` a2t scores exist at once. Runs on
    ``text_emb``'s device. Returns ``{"t2a": {...}, "a2t": {...}}``.
    """
    a = _as_float_tensor(audio_emb, "audio_emb")
    t = _as_float_tensor(text_emb, "text_emb")
    if a.ndim != 2 or t.ndim != 2:
        raise MetricInputError(
            f"audio_emb and text_emb must be 2-D [n, D], got {tuple(a.shape)} and {tuple(t.shape)}"
        )
    if a.shape[1] != t.shape[1]:
        raise MetricInputError(
            f"audio_emb has dimension {a.shape[1]} but text_emb has {t.shape[1]}; they must match"
        )
    # The standard fixes fp32 scores, whatever the embeddings' dtype.
    a = a.to(device=t.device, dtype=torch.float32)
    t = t.to(dtype=torch.float32)
    with torch.inference_mode():
        return chunked_metrics(
            lambda i, j: t[i:j] @ a.T,
            lambda i, j: a[i:j] @ t.T,
            a.shape[0],
            t.shape[0],
            audio_of_caption,
            chunk_size,
        )


# ----------------------------------------------------------------------------- chance level


def chance_metrics(audio_of_caption: Any, n_audios: int) -> dict[str, dict[str, float]]:
    """Expected metrics of a uniformly random ranking (every order of the items equally likely).

    Computed analytically and exactly (rational arithmetic), not by simulation:

    - t2a with n = ``n_audios``: the relevant audio's rank is uniform on 1..n, so
      ``R@k = min(k, n) / n``, ``mAP@10 = (1/n) * sum_{r <= min(10, n)} 1/r``, and the mean and
      the median rank are ``(n + 1) / 2``.
    - a2t, for a query with ``n_rel`` relevant among ``n_c`` captions:
      ``R@k = 1 - C(n_c - n_rel, k) / C(n_c, k)`` (some relevant in the top k), and by linearity
      ``E[AP@10] = (1 / min(n_rel, 10)) * sum_{i <= min(10, n_c)} (n_rel / n_c) *
      (1 + (i - 1)(n_rel - 1)/(n_c - 1)) / i`` (position i is relevant with probability
      n_rel/n_c, and then each of the i - 1 positions above it is relevant with probability
      (n_rel - 1)/(n_c - 1)); both averaged over the audio queries.

    Every audio needs at least one caption (the a2t queries).
    """
    if isinstance(n_audios, bool) or not isinstance(n_audios, int) or n_audios < 1:
        raise MetricInputError(f"n_audios must be a positive integer, got {n_audios!r}")
    table = caption_table(audio_of_caption, n_audios)
    n = n_audios
    n_c = int(table.counts.sum())
    t2a = {f"R@{k}": min(k, n) / n for k in RECALL_KS}
    t2a["mAP@10"] = float(sum(Fraction(1, r) for r in range(1, min(MAP_CUTOFF, n) + 1)) / n)
    t2a["mean_rank"] = (n + 1) / 2
    t2a["median_rank"] = (n + 1) / 2

    values, multiplicity = torch.unique(table.counts, return_counts=True)
    sums = {key: Fraction(0) for key in A2T_KEYS}
    for n_rel, mult in zip(values.tolist(), multiplicity.tolist()):
        for k in RECALL_KS:
            recall = 1 - Fraction(math.comb(n_c - n_rel, k), math.comb(n_c, k)) if k < n_c else Fraction(1)
            sums[f"R@{k}"] += mult * recall
        ap = Fraction(0)
        for i in range(1, min(MAP_CUTOFF, n_c) + 1):
            above = Fraction((i - 1) * (n_rel - 1), n_c - 1) if i > 1 else Fraction(0)
            ap += Fraction(n_rel, n_c) * (1 + above) / i
        sums["mAP@10"] += mult * ap / min(n_rel, MAP_CUTOFF)
    a2t = {key: float(sums[key] / n) for key in A2T_KEYS}
    return {"t2a": t2a, "a2t": a2t}


def format_percent(fraction: float, decimals: int = 2) -> str:
    """A fraction as a percentage string with ``decimals`` decimals: ``0.28934 -> "28.93"``."""
    return f"{100.0 * float(fraction):.{decimals}f}"


__all__ = [
    "A2T_KEYS",
    "DEFAULT_CHUNK_ELEMENTS",
    "MAP_CUTOFF",
    "METRIC_KEYS",
    "RECALL_KS",
    "T2A_KEYS",
    "CaptionTable",
    "MetricInputError",
    "ScoreFn",
    "a2t_ranks",
    "audio_to_text",
    "caption_table",
    "chance_metrics",
    "chunked_metrics",
    "format_percent",
    "retrieval_metrics",
    "summarise_a2t",
    "summarise_t2a",
    "t2a_ranks",
    "text_to_audio",
]
