"""Per-query ranks of retrieval, chunk by chunk: the exact, vectorised core of :mod:`bench.evaluation.metrics`.

Text-to-audio: each caption query has one relevant audio, whose pessimistic rank is
``1 + #{audios scoring higher} + #{other audios scoring equal}``. Audio-to-text: each audio query
has all its captions relevant; irrelevant captions rank first among equal scores, and the
position of the first relevant caption and the query's AP@10 are what the metrics need.
The reductions of these per-query numbers into R@k, mAP@10 and ranks are in
:mod:`bench.evaluation.metric_table`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from bench.evaluation.metric_inputs import MetricInputError, as_index, check_scores

MAP_CUTOFF = 10
"""The cut-off of mAP@10: only the 10 best relevant items of a query can contribute to its AP."""

FEW_RELEVANT = 2
"""Up to this many relevant captions per audio, a2t counts each directly (one pass each); above
it, one top-k pass plus one counting pass is cheaper (measured in benchmarks/bench_metrics.py)."""


class CaptionTable(NamedTuple):
    """The captions of every audio, padded: row a lists the caption indices of audio a.

    ``indices`` is ``[n_audios, max_captions]`` long (ascending caption index, padded with 0),
    ``counts`` is ``[n_audios]`` long. Build it with :func:`caption_table`.
    """

    indices: torch.Tensor
    counts: torch.Tensor

    def to(self, device: torch.device | str) -> CaptionTable:
        """The same table on ``device``."""
        return CaptionTable(self.indices.to(device), self.counts.to(device))

    def rows(self, start: int, stop: int) -> CaptionTable:
        """The table of audios ``start:stop``."""
        return CaptionTable(self.indices[start:stop], self.counts[start:stop])


def caption_table(audio_of_caption: Any, n_audios: int, allow_empty: bool = False) -> CaptionTable:
    """Group caption indices by audio (see :class:`CaptionTable`).

    Raises :class:`MetricInputError` if an audio has no caption, unless ``allow_empty``.
    """
    aoc = as_index(audio_of_caption, n_audios, None)
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
    s = check_scores(scores, "scores", None, None)
    pos = torch.as_tensor(positives, device=s.device)
    if pos.shape != (s.shape[0],) or pos.is_floating_point() or pos.dtype == torch.bool:
        raise MetricInputError(
            f"positives has shape {tuple(pos.shape)} and dtype {pos.dtype}; expected "
            f"[{s.shape[0]}] integer column indices (one per score row)"
        )
    pos = pos.long()
    if pos.numel() and (int(pos.min()) < 0 or int(pos.max()) >= s.shape[1]):
        raise MetricInputError(f"positives must lie in [0, {s.shape[1]})")
    return t2a_ranks_raw(s, pos)


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


def _count_ge_many(s: torch.Tensor, thresholds: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per row i and column t, ``#{s[i, :] >= thresholds[i, t]}``, exact where it can matter.

    ``thresholds`` are a query's best relevant scores in rank order (column 0 the best).
    An entry whose caption cannot be within the first :data:`MAP_CUTOFF` positions is set to
    ``n_items + MAP_CUTOFF + 1`` instead, which puts its position past the cut-off (AP@10 ignores
    it); column 0 is always exact (it is the first relevant position).

    Few thresholds: one count per column. Many: one ``topk(11)`` per row, with ``v10`` and
    ``v11`` its 10th and 11th values. Every item outside the top 11 scores ``<= v11``, so a
    threshold ``x > v11`` has its count read off the top-11 values. A threshold ``x < v11``, or
    ``x == v11 < v10``, has at least 10 items strictly above it: past the cut-off. Only
    ``x == v11 == v10`` (an exact tie across the cut-off) and a column 0 at or below ``v11``
    need a counting pass, made on those rows only. This replaces up to 10 passes over the chunk
    by one top-k pass (plus one count pass on the rows whose first relevant caption is past 10).
    """
    q, width = thresholds.shape
    out = torch.empty(q, width, dtype=torch.long, device=s.device)
    if q == 0 or width == 0:
        return out
    if width <= FEW_RELEVANT or s.shape[1] <= MAP_CUTOFF + 1:
        buf = _count_buffer(s)
        for t in range(width):
            out[:, t] = _count_ge(s, thresholds[:, t : t + 1], buf)
        return out
    top = torch.topk(s, MAP_CUTOFF + 1, dim=1, sorted=True).values  # [q, 11], descending
    v10, v11 = top[:, MAP_CUTOFF - 1 : MAP_CUTOFF], top[:, MAP_CUTOFF:]
    out.copy_((top[:, None, :] >= thresholds[:, :, None]).sum(2))  # exact where thresholds > v11
    tie = (thresholds == v11) & (v10 == v11) & valid
    past = (thresholds < v11) | ((thresholds == v11) & ~tie)
    # position = k + count - #{relevant >= x} >= count - n_relevant + 1 > MAP_CUTOFF
    out.masked_fill_(past, s.shape[1] + MAP_CUTOFF + 1)
    exact = tie.any(1) | (thresholds[:, 0] <= v11[:, 0])  # rows needing real counts
    rows = exact.nonzero().flatten()
    if rows.numel():
        sub = s if rows.numel() == q else s.index_select(0, rows)
        need = torch.cat([torch.ones(1, dtype=torch.bool, device=s.device), tie[rows].any(0)[1:]])
        buf = _count_buffer(sub)
        for t in need.nonzero().flatten().tolist():
            out[rows, t] = _count_ge(sub, thresholds[rows, t : t + 1], buf)
    return out


def t2a_ranks_raw(s: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """:func:`t2a_ranks` of inputs already checked (the chunked drivers check each chunk once)."""
    positive_score = s.gather(1, pos[:, None])
    return _count_ge(s, positive_score)


def a2t_ranks(scores: Any, table: CaptionTable) -> tuple[torch.Tensor, torch.Tensor]:
    """Per audio query: the position of its first relevant caption and its AP@10.

    ``scores`` is ``[q, n_captions]`` for q audio queries; ``table`` holds those q audios' rows
    of the :func:`caption_table` (``table.rows(start, stop)``). Irrelevant captions rank before
    relevant ones of equal score. Returns ``(first_position [q] long, ap10 [q] float64)``.

    The k-th best relevant caption (k = 1, 2, ...) sits at position
    ``k + #{irrelevant captions scoring >= it}``; only k <= 10 can contribute to AP@10. With up to
    :data:`FEW_RELEVANT` relevant captions per query, one counting pass per relevant slot is made;
    with more, one top-k pass plus a counting pass on the rows that need one (see :func:`_count_ge_many`).
    """
    s = check_scores(scores, "scores", None, None)
    q = s.shape[0]
    idx, counts = table.indices.to(s.device), table.counts.to(s.device)
    if idx.shape[0] != q:
        raise MetricInputError(f"caption table has {idx.shape[0]} rows, expected {q}")
    if q and int(counts.min()) < 1:
        raise MetricInputError("an audio query has no relevant caption; a2t needs at least one")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= s.shape[1]):
        raise MetricInputError(f"caption table indices must lie in [0, {s.shape[1]})")
    return a2t_ranks_raw(s, idx, counts)


def a2t_ranks_raw(
    s: torch.Tensor, idx: torch.Tensor, counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`a2t_ranks` of inputs already checked, with the table as ``(indices, counts)``."""
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

    all_ge = _count_ge_many(s, s_top, valid_top)
    position = k_top + (all_ge - ge_top)  # k + #{irrelevant scoring >= s_k}

    hit = valid_top & (position <= MAP_CUTOFF)
    precision = k_top.double() / position.double()
    ap = torch.where(hit, precision, torch.zeros_like(precision)).sum(dim=1)
    ap = ap / counts.clamp(max=MAP_CUTOFF).double()
    first = position[:, 0] if q else torch.zeros(0, dtype=torch.long, device=s.device)
    return first, ap
