"""Metric conventions (protocols) that published numbers use, next to bench's own.

Each protocol turns the same embeddings into ``{"t2a": {...}, "a2t": {...}}`` with the keys of
:mod:`bench.evaluation.metric_table`; a result records which protocol produced it and the leaderboard never
puts two protocols in one table. docs/protocols.md writes each one out with its source.

``bench``
    One query per caption, pessimistic ties (:mod:`bench.evaluation.metrics`, docs/metrics.md).
``laion-clap``
    LAION-AI/CLAP, ``src/laion_clap/training/train.py``, ``evaluate_clotho_audiocaps``: exactly
    5 captions per recording. t2a: every caption is a query, ranked by a descending argsort;
    the median rank is ``floor(median(0-based position)) + 1``. a2t: R@k uses the best-ranked
    caption; "mAP@10" takes the 0-based positions ``p`` of the 5 captions *in caption order* (the
    source never sorts them), keeps those below 10 and sums ``j / (p_j + 1)`` over them
    (``j`` = 1, 2, ... in that order), divided by 5. When the kept positions happen to be
    increasing this is AP@10; otherwise it is not an average precision and can exceed 1.
    Ties: the source's ``torch.argsort`` leaves their order unspecified; bench uses the stable
    order (the lower index first), so results are deterministic.
``dcase``
    DCASE 2022 task 6b evaluation script (xieh97/dcase2022-audio-retrieval, ``eval_script.py``):
    t2a only. Ground truth is a dict from caption *text* to file name, so identical caption
    texts are ONE query whose relevant recording is the last one (in split order) carrying that
    text. The text is the CSV cell as pandas reads it, surrounding spaces kept: callers pass the
    split's ``source_captions``, not the stripped ones. R@k = relevant file in the top k,
    mAP@10 = reciprocal rank within the top 10. The script scores a submitted top-10 list;
    bench ranks with its pessimistic ties. The script has no a2t direction: a2t here is bench's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench.errors import ConfigError
from bench.evaluation.metric_table import summarise_t2a
from bench.evaluation.ranks import MAP_CUTOFF

PROTOCOLS: tuple[str, ...] = ("bench", "laion-clap", "dcase")
RECALL_KS = (1, 5, 10)  # the source's `for k in [1, 5, 10]`
LAION_CAPTIONS = 5  # evaluate_clotho_audiocaps reshapes the text features to [N, 5, D]


def check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        import difflib

        hint = difflib.get_close_matches(name, PROTOCOLS, n=1)
        raise ConfigError(f"unknown protocol {name!r}{f'; did you mean {hint[0]!r}?' if hint else ''} "
                          f"Protocols: {', '.join(PROTOCOLS)} (see docs/protocols.md)")
    return name


def protocol_metrics(protocol: str, audio: torch.Tensor, text: torch.Tensor, audio_of_caption: Any,
                     captions: list[str], chunk: int = 2048) -> dict[str, dict[str, float]]:
    """Metrics of embeddings ``audio [n_audios, D]``, ``text [n_captions, D]`` under ``protocol``."""
    from bench.evaluation.metrics import retrieval_metrics

    check_protocol(protocol)
    audio, text = audio.float(), text.float()
    aoc = np.asarray(audio_of_caption, dtype=np.int64)
    if protocol == "bench":
        return retrieval_metrics(audio, text, aoc, chunk_size=chunk)
    if protocol == "laion-clap":
        return laion_clap_metrics(text @ audio.T, aoc, chunk)
    return dcase_metrics(text @ audio.T, aoc, captions, bench_a2t=retrieval_metrics(audio, text, aoc, chunk)["a2t"])


# -- laion-clap ---------------------------------------------------------------------------------------
def _stable_positions(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based position of column ``targets[i, m]`` in row i sorted by descending score, stably.

    ``scores`` ``[q, n]``, ``targets`` ``[q, m]``; a stable descending sort puts j before the
    target when ``s_j > s_t``, or ``s_j == s_t`` and ``j < t``.
    """
    target_scores = scores.gather(1, targets)  # [q, m]
    columns = torch.arange(scores.shape[1], device=scores.device)
    higher = (scores[:, None, :] > target_scores[:, :, None]).sum(-1)
    tied_before = ((scores[:, None, :] == target_scores[:, :, None]) & (columns[None, None, :] < targets[:, :, None]))
    return higher + tied_before.sum(-1)


def laion_clap_metrics(scores_t2a: torch.Tensor, audio_of_caption: np.ndarray, chunk: int = 256) -> dict[str, Any]:
    """LAION-CLAP's multi-caption evaluation from ``scores_t2a [n_captions, n_audios]``."""
    n_captions, n_audios = scores_t2a.shape
    counts = np.bincount(audio_of_caption, minlength=n_audios)
    expected = np.repeat(np.arange(n_audios), LAION_CAPTIONS)
    if not (counts == LAION_CAPTIONS).all() or not np.array_equal(audio_of_caption, expected):
        bad = int(np.flatnonzero(counts != LAION_CAPTIONS)[0]) if (counts != LAION_CAPTIONS).any() else 0
        raise ConfigError(f"protocol laion-clap needs exactly {LAION_CAPTIONS} captions per recording, in order "
                          f"(its source reshapes the captions to [N, {LAION_CAPTIONS}]); recording {bad} has "
                          f"{counts[bad]}; use --protocol bench or dcase")
    positive = torch.as_tensor(audio_of_caption)
    t2a_pos = torch.cat([_stable_positions(scores_t2a[i:i + chunk], positive[i:i + chunk, None])[:, 0]
                         for i in range(0, n_captions, chunk)]).double()
    t2a = {f"R@{k}": float((t2a_pos < k).double().mean()) for k in RECALL_KS}
    t2a[f"mAP@{MAP_CUTOFF}"] = float(torch.where(t2a_pos < MAP_CUTOFF, 1 / (t2a_pos + 1), 0.0).mean())
    t2a["mean_rank"] = float(t2a_pos.mean()) + 1
    t2a["median_rank"] = float(np.floor(np.median(t2a_pos.numpy()))) + 1
    scores_a2t = scores_t2a.T
    own = torch.arange(n_audios)[:, None] * LAION_CAPTIONS + torch.arange(LAION_CAPTIONS)[None, :]
    small = max(1, chunk // LAION_CAPTIONS)
    a2t_pos = torch.cat([_stable_positions(scores_a2t[i:i + small].contiguous(), own[i:i + small])
                         for i in range(0, n_audios, small)])  # [n_audios, 5], caption order
    best = a2t_pos.min(dim=1).values
    a2t = {f"R@{k}": float((best < k).double().mean()) for k in RECALL_KS}
    ap = []
    for row in a2t_pos.tolist():  # n_audios x 5: a Python loop is cheap and mirrors the source
        kept = [p for p in row if p < MAP_CUTOFF]  # caption order, NOT sorted: what the source does
        ap.append(sum((j + 1) / (p + 1) for j, p in enumerate(kept)) / LAION_CAPTIONS)
    a2t[f"mAP@{MAP_CUTOFF}"] = float(np.mean(ap))
    return {"t2a": t2a, "a2t": a2t}


# -- dcase ------------------------------------------------------------------------------------------
def dcase_queries(audio_of_caption: np.ndarray, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(caption rows, relevant audio)`` of the DCASE queries: one per distinct text, the last occurrence."""
    last: dict[str, int] = {}
    for index, caption in enumerate(captions):
        last[caption] = index  # a dict keyed by text: a later row overwrites, as in the script
    rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    return rows, np.asarray(audio_of_caption)[rows]


def dcase_metrics(scores_t2a: torch.Tensor, audio_of_caption: np.ndarray, captions: list[str],
                  bench_a2t: dict[str, float]) -> dict[str, Any]:
    """The DCASE script's t2a over distinct caption texts; a2t is passed in (bench's)."""
    from bench.evaluation.ranks import t2a_ranks

    rows, positives = dcase_queries(audio_of_caption, captions)
    ranks = t2a_ranks(scores_t2a[torch.as_tensor(rows)], torch.as_tensor(positives))
    return {"t2a": summarise_t2a(ranks), "a2t": dict(bench_a2t)}
