"""The top-k path of a2t ranking (many relevant captions) equals the one-pass-per-slot path exactly.

bench.evaluation.ranks switches from one counting pass per relevant slot to one topk(10) pass plus a
counting pass on the rows that need it when audios have more than FEW_RELEVANT captions. Both
paths must give the same first positions and AP@10 bit for bit, ties included (pessimistic rule).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.evaluation import ranks
from bench.evaluation.ranks import a2t_ranks, caption_table


def _both(monkeypatch, scores, aoc, n_audios):
    table = caption_table(aoc, n_audios)
    fast = a2t_ranks(scores, table)
    with monkeypatch.context() as m:
        m.setattr(ranks, "FEW_RELEVANT", 10**6)  # force one pass per relevant slot
        slow = a2t_ranks(scores, table)
    return fast, slow


@pytest.mark.parametrize("levels", [3, 6, 40, None])  # few distinct values = many exact ties
@pytest.mark.parametrize("seed", range(6))
def test_topk_path_equals_counting_path(monkeypatch, levels, seed):
    rng = np.random.default_rng(seed)
    n_audios = int(rng.integers(2, 30))
    counts = rng.integers(1, 14, size=n_audios)  # up to 13 relevant: beyond the cut-off too
    aoc = rng.permutation(np.repeat(np.arange(n_audios), counts))
    shape = (n_audios, aoc.size)
    if levels is None:
        scores = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    else:
        scores = torch.from_numpy(rng.integers(0, levels, size=shape).astype(np.float32))
    if seed % 2:  # make some relevant captions tie exactly with each row's 10th score
        top10 = torch.topk(scores, min(10, shape[1]), dim=1).values[:, -1]
        first_caption = [int(np.flatnonzero(aoc == a)[0]) for a in range(n_audios)]
        scores[torch.arange(n_audios), torch.tensor(first_caption)] = top10
    (first, ap), (first_ref, ap_ref) = _both(monkeypatch, scores, aoc, n_audios)
    assert torch.equal(first, first_ref)
    assert torch.equal(ap, ap_ref)


def test_topk_path_is_taken_and_exact_on_a_hand_case(monkeypatch):
    # One audio, 12 captions, 4 relevant (0, 3, 5, 11); scores with ties at the 10th value.
    scores = torch.tensor([[5.0, 9, 9, 5, 8, 1, 7, 7, 6, 6, 5, 0]])
    aoc = np.array([0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0])
    calls = []
    real_topk = torch.topk
    monkeypatch.setattr(torch, "topk", lambda *a, **k: calls.append(1) or real_topk(*a, **k))
    # audio 1 holds the other captions so that every audio has one
    first, ap = a2t_ranks(scores.repeat(2, 1), caption_table(aoc, 2))
    assert calls, "the top-k path was not used"
    # Audio 0: relevant scores 5, 5, 1, 0. Ranked: 9 9 8 7 7 6 6 | 5 (irrelevant, col 10) first,
    # then the relevant 5s at positions 9 and 10; 1 and 0 at 11 and 12.
    assert int(first[0]) == 9
    assert float(ap[0]) == (1 / 9 + 2 / 10) / 4


def test_embeddings_with_nan_are_still_refused():
    from bench.evaluation.metrics import MetricInputError, retrieval_metrics

    audio = torch.eye(4)
    text = torch.eye(4)[[0, 1, 2, 3, 0]].clone()
    text[3, 2] = float("nan")
    with pytest.raises(MetricInputError, match=r"NaN \(first in row 3\)"):
        retrieval_metrics(audio, text, [0, 1, 2, 3, 0])
