"""Property: bench's metrics equal a literal per-query reference (docs/metrics.md) on arbitrary score
matrices with ties, uneven caption counts and any chunk size (issue 24).

The score matrix is drawn directly: ``audio`` is the identity and ``text`` the matrix, so
``text @ audio.T`` is exactly the drawn scores, which come from a few values so that ties are common.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.evaluation.metrics import retrieval_metrics  # noqa: E402


def reference(scores: list[list[float]], owner: list[int]) -> dict[str, dict[str, float]]:
    """One query at a time, straight from the definitions; ties count against the query."""
    n_captions, n_audios = len(scores), len(scores[0])
    ranks = []
    for q in range(n_captions):
        mine = scores[q][owner[q]]
        ranks.append(1 + sum(1 for j in range(n_audios) if j != owner[q] and scores[q][j] >= mine))
    t2a = {f"R@{k}": sum(r <= k for r in ranks) / n_captions for k in (1, 5, 10)}
    t2a["mAP@10"] = sum(1 / r for r in ranks if r <= 10) / n_captions
    t2a["mean_rank"] = sum(ranks) / n_captions
    t2a["median_rank"] = float(statistics.median(ranks))
    firsts, aps = [], []
    for a in range(n_audios):
        # Sort by score, highest first; within a tie the irrelevant captions come first.
        order = sorted(range(n_captions), key=lambda c: (-scores[c][a], owner[c] == a))
        relevant = [position for position, c in enumerate(order, 1) if owner[c] == a]
        firsts.append(relevant[0])
        hits = [position for position in relevant if position <= 10]
        aps.append(sum(i / p for i, p in enumerate(hits, 1)) / min(len(relevant), 10))
    a2t = {f"R@{k}": sum(f <= k for f in firsts) / n_audios for k in (1, 5, 10)}
    a2t["mAP@10"] = sum(aps) / n_audios
    return {"t2a": t2a, "a2t": a2t}


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[list[float]], list[int], int]:
    counts = draw(st.lists(st.integers(1, 13), min_size=1, max_size=7))  # uneven, some above 10
    owner = [a for a, n in enumerate(counts) for _ in range(n)]
    if draw(st.booleans()):
        owner = draw(st.permutations(owner))  # captions need not be grouped by recording
    levels = draw(st.lists(st.sampled_from([-1.0, -0.25, 0.0, 0.25, 0.5, 1.0]), min_size=1, max_size=4))
    scores = [[draw(st.sampled_from(levels)) for _ in counts] for _ in owner]
    chunk = draw(st.integers(1, len(owner) + 2))
    return scores, list(owner), chunk


@given(cases())
def test_metrics_equal_the_per_query_reference(case) -> None:
    scores, owner, chunk = case
    n_audios = len(scores[0])
    got = retrieval_metrics(torch.eye(n_audios), torch.tensor(scores), np.array(owner), chunk_size=chunk)
    want = reference(scores, owner)
    for direction, values in want.items():
        for key, value in values.items():
            assert got[direction][key] == pytest.approx(value, rel=1e-12, abs=1e-12), (direction, key)


@given(cases(), st.integers(1, 40))
def test_chunk_size_never_changes_a_number(case, other_chunk) -> None:
    scores, owner, chunk = case
    n_audios = len(scores[0])
    args = (torch.eye(n_audios), torch.tensor(scores), np.array(owner))
    assert retrieval_metrics(*args, chunk_size=chunk) == retrieval_metrics(*args, chunk_size=other_chunk)
