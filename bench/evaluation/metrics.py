"""Retrieval metrics for language-based audio retrieval, exact and vectorised.

Definitions (``bench``'s standard, written out in ``docs/metrics.md``; every number in a results
file is a fraction in [0, 1], except the ranks):

**Text-to-audio (t2a).** Each caption is a query; its one relevant item is the audio it describes.
The rank of that audio is ``r = 1 + #{audios scoring strictly higher} + #{other audios scoring
exactly equal}``: ties count against the query, so a constant scorer gets rank ``n_audios`` for
every caption (the worst result), never a perfect one. ``R@k = mean(r <= k)`` for k = 1, 5, 10,
``mAP@10 = mean(1/r if r <= 10 else 0)``, plus the mean and the median rank (the median of an
even number of ranks is the mean of the two middle ones, as in ``numpy.median``).

**Audio-to-text (a2t).** Each audio is a query; all its captions are relevant. Within equal
scores the irrelevant captions rank first (pessimistic again). ``R@k`` is the fraction of audio
queries with at least one relevant caption in the top k (the CLAP / WavCaps / DCASE convention,
e.g. "WavCaps", arXiv:2303.17395, not divided by the number of relevant captions). ``mAP@10`` is
the mean over queries of ``(1 / min(n_rel, 10)) * sum over relevant positions i <= 10 of
precision@i``. An audio without any caption cannot be an a2t query: the a2t functions raise
:class:`MetricInputError` naming the audio (drop it, or evaluate t2a only, where it is a valid
distractor).

**Scores.** ``scores[i, j]`` is the agreement of query i with item j (higher is better).
numpy arrays and torch tensors of any floating dtype are accepted and compared in their own
dtype, except float16 / bfloat16, which are upcast to float32 (exact, so ties are unchanged).
Scores computed here from embeddings are fp32. NaN scores raise :class:`MetricInputError`.

**Layout.** Which metrics exist, how each is reduced, formatted and its chance level: the table
in :mod:`bench.evaluation.metric_table`. Per-query ranks: :mod:`bench.evaluation.ranks`. Input checks:
:mod:`bench.evaluation.metric_inputs`. This module holds the drivers and re-exports the public names:

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
from typing import Any

import torch

from bench.evaluation import metric_table
from bench.evaluation.metric_inputs import (
    DEFAULT_CHUNK_ELEMENTS,
    MetricInputError,
    as_float_tensor,
    as_index,
    check_scores,
    resolve_chunk,
)
from bench.evaluation.metric_table import chance_metrics, format_percent, summarise_a2t, summarise_t2a
from bench.evaluation.ranks import (
    MAP_CUTOFF,
    CaptionTable,
    a2t_ranks,
    a2t_ranks_raw,
    caption_table,
    t2a_ranks,
    t2a_ranks_raw,
)

RECALL_KS: tuple[int, ...] = tuple(
    int(m.key[2:]) for m in metric_table.METRICS if m.key.startswith("R@")
)
"""The k of the reported R@k (from :data:`bench.evaluation.metric_table.METRICS` at import)."""

T2A_KEYS: tuple[str, ...] = metric_table.keys("t2a")
"""Keys of a text-to-audio result, in table order. R@k and mAP@10 are fractions, ranks are 1-based."""

A2T_KEYS: tuple[str, ...] = metric_table.keys("a2t")
"""Keys of an audio-to-text result, in table order (all fractions)."""

METRIC_KEYS: dict[str, tuple[str, ...]] = {"t2a": T2A_KEYS, "a2t": A2T_KEYS}
"""Keys per direction, as in the output of :func:`retrieval_metrics`."""

ScoreFn = Callable[[int, int], Any]
"""``score_fn(start, stop)`` returns the score rows of queries ``start:stop`` (tensor or array)."""


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
    return summarise(chunked_ranks(t2a_scores, a2t_scores, n_audios, n_captions, audio_of_caption, chunk_size))


def summarise(per_query: dict[str, tuple[torch.Tensor, ...]]) -> dict[str, dict[str, float]]:
    """The metrics of :func:`chunked_ranks`' per-query ranks (the directions present)."""
    out: dict[str, dict[str, float]] = {}
    if "t2a" in per_query:
        out["t2a"] = summarise_t2a(*per_query["t2a"])
    if "a2t" in per_query:
        out["a2t"] = summarise_a2t(*per_query["a2t"])
    return out


def chunked_ranks(
    t2a_scores: ScoreFn | None,
    a2t_scores: ScoreFn | None,
    n_audios: int,
    n_captions: int,
    audio_of_caption: Any,
    chunk_size: int | None = None,
    *,
    finite: bool = False,
) -> dict[str, tuple[torch.Tensor, ...]]:
    """The per-query ranks behind :func:`chunked_metrics`, on the CPU.

    ``{"t2a": (rank [n_captions],), "a2t": (first_position [n_audios], ap10 [n_audios])}`` for
    the directions asked. Every metric and every per-query sidecar comes from here, so they agree
    by construction. ``finite=True`` skips the per-chunk NaN check (the caller has proved the
    scores finite, see :func:`retrieval_metrics`).
    """
    if n_audios < 1 or n_captions < 1:
        raise MetricInputError(
            f"need at least one audio and one caption, got {n_audios} audios, {n_captions} captions"
        )
    aoc = as_index(audio_of_caption, n_audios, n_captions)
    out: dict[str, tuple[torch.Tensor, ...]] = {}
    with torch.no_grad():
        if t2a_scores is not None:
            out["t2a"] = (_t2a_chunks(t2a_scores, n_audios, n_captions, aoc, chunk_size, finite),)
        if a2t_scores is not None:
            out["a2t"] = _a2t_chunks(a2t_scores, n_audios, n_captions, aoc, chunk_size, finite)
    return out


def _t2a_chunks(fn: ScoreFn, n_audios: int, n_captions: int, aoc: torch.Tensor, chunk_size: int | None,
                finite: bool) -> torch.Tensor:
    rows = resolve_chunk(chunk_size, n_audios)
    ranks = []
    for start in range(0, n_captions, rows):
        stop = min(start + rows, n_captions)
        chunk = check_scores(fn(start, stop), f"t2a scores of captions {start}:{stop}",
                             stop - start, n_audios, row_offset=start, nan_check=not finite)
        ranks.append(t2a_ranks_raw(chunk, aoc[start:stop].to(chunk.device)).cpu())
    return torch.cat(ranks)


def _a2t_chunks(fn: ScoreFn, n_audios: int, n_captions: int, aoc: torch.Tensor, chunk_size: int | None,
                finite: bool) -> tuple[torch.Tensor, torch.Tensor]:
    table = caption_table(aoc, n_audios)
    rows = resolve_chunk(chunk_size, n_captions)
    # The [rows, m, m] relevant-vs-relevant comparisons must stay small too.
    m = table.indices.shape[1]
    rows = max(1, min(rows, DEFAULT_CHUNK_ELEMENTS // max(1, m * m)))
    firsts, aps = [], []
    for start in range(0, n_audios, rows):
        stop = min(start + rows, n_audios)
        chunk = check_scores(fn(start, stop), f"a2t scores of audios {start}:{stop}",
                             stop - start, n_captions, row_offset=start, nan_check=not finite)
        rows_table = table.rows(start, stop).to(chunk.device)
        first, ap = a2t_ranks_raw(chunk, rows_table.indices, rows_table.counts)
        firsts.append(first.cpu())
        aps.append(ap.cpu())
    return torch.cat(firsts), torch.cat(aps)


def text_to_audio(scores: Any, audio_of_caption: Any) -> dict[str, float]:
    """Text-to-audio metrics (:data:`T2A_KEYS`) of a full ``[n_captions, n_audios]`` score matrix.

    ``audio_of_caption[i]`` is the index (column) of caption i's audio. Audios without captions
    are allowed here: they are distractors.
    """
    s = as_float_tensor(scores, "scores")
    if s.ndim != 2:
        raise MetricInputError(f"scores must be 2-D [n_captions, n_audios], got {tuple(s.shape)}")
    n_c, n_a = s.shape
    return chunked_metrics(lambda a, b: s[a:b], None, n_a, n_c, audio_of_caption)["t2a"]


def audio_to_text(scores: Any, audio_of_caption: Any) -> dict[str, float]:
    """Audio-to-text metrics (:data:`A2T_KEYS`) of a full ``[n_audios, n_captions]`` score matrix.

    Every audio must have at least one caption (else :class:`MetricInputError`).
    """
    s = as_float_tensor(scores, "scores")
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
    return summarise(embedding_ranks(audio_emb, text_emb, audio_of_caption, chunk_size))


def embedding_ranks(
    audio_emb: Any,
    text_emb: Any,
    audio_of_caption: Any,
    chunk_size: int | None = None,
) -> dict[str, tuple[torch.Tensor, ...]]:
    """The per-query ranks behind :func:`retrieval_metrics` (see :func:`chunked_ranks`)."""
    a = as_float_tensor(audio_emb, "audio_emb")
    t = as_float_tensor(text_emb, "text_emb")
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
        return chunked_ranks(
            lambda i, j: t[i:j] @ a.T,
            lambda i, j: a[i:j] @ t.T,
            a.shape[0],
            t.shape[0],
            audio_of_caption,
            chunk_size,
            finite=_scores_finite(a, t),
        )


def _scores_finite(a: torch.Tensor, t: torch.Tensor) -> bool:
    """True when every score ``t @ a.T`` is provably finite, so no chunk needs a NaN check.

    Every partial sum of a D-term dot product is at most ``D * max|a| * max|t|`` in magnitude,
    so finite entries whose bound is far below the fp32 maximum (3.4e38) rule out inf, and hence
    NaN, in every score. One read of each matrix (``aminmax`` propagates NaN); when the bound
    fails (a NaN or inf entry, or huge values) the chunks are checked as usual.
    """
    if a.numel() == 0 or t.numel() == 0:
        return False
    bounds = [max(-float(low), float(high)) for low, high in (torch.aminmax(a), torch.aminmax(t))]
    bound = a.shape[1] * bounds[0] * bounds[1]
    return math.isfinite(bound) and bound < 1e36


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
    "chunked_ranks",
    "embedding_ranks",
    "format_percent",
    "retrieval_metrics",
    "summarise",
    "summarise_a2t",
    "summarise_t2a",
    "t2a_ranks",
    "text_to_audio",
]
