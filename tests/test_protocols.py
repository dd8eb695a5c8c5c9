"""The metric protocols of `bench eval --protocol`, each against a case computed by hand (docs/protocols.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.errors import ConfigError
from bench.evaluation.metrics import retrieval_metrics
from bench.evaluation.protocols import check_protocol, dcase_queries, laion_clap_metrics, protocol_metrics

# LAION-CLAP case: two recordings with five captions each. Rows: recordings; columns: captions 0..9.
A2T = torch.tensor([
    # audio 0 (captions 0-4 relevant)
    [0.1, 0.9, 0.8, 0.1, 0.7, 0.6, 0.5, 0.4, 0.3, 0.05],
    # audio 1 (captions 5-9 relevant); c5 ties with c1 and c2, which come first (lower index)
    [0.9, 0.5, 0.5, 0.1, 0.2, 0.5, 0.3, 0.05, 0.01, 0.02],
])


def test_laion_clap_hand_computed() -> None:
    got = laion_clap_metrics(A2T.T.contiguous(), np.repeat([0, 1], 5))
    # t2a, 0-based positions: c0 1 (0.1 < 0.9); c1-c4 0 (c3 ties 0.1/0.1: audio 0 has the lower index);
    # c5-c9 1 (audio 0 scores higher for each).
    positions = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    assert got["t2a"]["R@1"] == pytest.approx(0.4)
    assert got["t2a"]["R@5"] == got["t2a"]["R@10"] == 1.0
    assert got["t2a"]["mAP@10"] == pytest.approx((4 * 1 + 6 * 0.5) / 10)
    assert got["t2a"]["mean_rank"] == pytest.approx(positions.mean() + 1)
    assert got["t2a"]["median_rank"] == 2.0  # floor(median(positions)) + 1 = floor(1) + 1
    # a2t. Audio 0 sorted: c1 .9, c2 .8, c4 .7, c5 .6, c6 .5, c7 .4, c8 .3, c0 .1, c3 .1, c9 .05, so its captions
    # c0..c4 sit at positions (7, 0, 1, 8, 2), taken in caption order, not sorted, as the source does.
    audio0 = (1 / 8 + 2 / 1 + 3 / 2 + 4 / 9 + 5 / 3) / 5
    # Audio 1 sorted: c0 .9, c1 .5, c2 .5, c5 .5, c6 .3, c4 .2, c3 .1, c7 .05, c9 .02, c8 .01:
    # c5..c9 at (3, 4, 7, 9, 8).
    audio1 = (1 / 4 + 2 / 5 + 3 / 8 + 4 / 10 + 5 / 9) / 5
    assert audio0 > 1  # not an average precision: unsorted positions can push it above 1
    assert got["a2t"]["mAP@10"] == pytest.approx((audio0 + audio1) / 2)
    assert got["a2t"]["R@1"] == 0.5 and got["a2t"]["R@5"] == 1.0 and got["a2t"]["R@10"] == 1.0


def test_laion_clap_needs_five_captions_in_order() -> None:
    with pytest.raises(ConfigError, match="exactly 5 captions per recording"):
        laion_clap_metrics(torch.zeros(9, 2), np.array([0, 0, 0, 0, 1, 1, 1, 1, 1]))
    with pytest.raises(ConfigError, match="exactly 5"):
        laion_clap_metrics(torch.zeros(10, 2), np.array([0, 1] * 5))  # right counts, interleaved


# DCASE case: three recordings; identical texts "a dog barks" (audio 0 and 1) and "rain" (audio 0 and 2).
CAPTIONS = ["a dog barks", "rain", "a dog barks", "wind", "rain", "birds"]
OWNER = np.array([0, 0, 1, 1, 2, 2])
T2A = torch.tensor([
    [0.9, 0.1, 0.1],  # "a dog barks" (audio 0): not a query, a later row has the same text
    [0.9, 0.1, 0.1],  # "rain" (audio 0): not a query either
    [0.9, 0.5, 0.1],  # "a dog barks" -> audio 1: rank 2
    [0.2, 0.2, 0.3],  # "wind" -> audio 1: audio 2 above, audio 0 tied: pessimistic rank 3
    [0.1, 0.2, 0.8],  # "rain" -> audio 2: rank 1
    [0.5, 0.4, 0.3],  # "birds" -> audio 2: rank 3
])


def test_dcase_merges_identical_texts_into_one_query() -> None:
    rows, positives = dcase_queries(OWNER, CAPTIONS)
    assert sorted(rows.tolist()) == [2, 3, 4, 5]
    assert dict(zip(rows.tolist(), positives.tolist())) == {2: 1, 3: 1, 4: 2, 5: 2}
    audio = torch.eye(3)
    got = protocol_metrics("dcase", audio, T2A, OWNER, CAPTIONS)  # text @ audio.T == T2A
    ranks = [2, 3, 1, 3]
    assert got["t2a"]["R@1"] == pytest.approx(0.25)
    assert got["t2a"]["R@5"] == 1.0
    assert got["t2a"]["mAP@10"] == pytest.approx(np.mean([1 / r for r in ranks]))
    assert got["t2a"]["median_rank"] == 2.5
    # a2t: the script has none; bench's is reported.
    assert got["a2t"] == retrieval_metrics(audio, T2A, OWNER)["a2t"]
    # bench's own protocol keeps all six queries, so the numbers differ.
    assert protocol_metrics("bench", audio, T2A, OWNER, CAPTIONS)["t2a"]["mAP@10"] != got["t2a"]["mAP@10"]


def test_bench_protocol_is_bench_metrics() -> None:
    gen = torch.Generator().manual_seed(0)
    audio, text = torch.randn(4, 3, generator=gen), torch.randn(20, 3, generator=gen)
    owner = np.repeat(np.arange(4), 5)
    assert protocol_metrics("bench", audio, text, owner, ["c"] * 20) == retrieval_metrics(audio, text, owner)


def test_unknown_protocol_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'laion-clap'"):
        check_protocol("laion_clap")


def test_dcase_keeps_texts_that_differ_only_by_surrounding_spaces_apart() -> None:
    # The DCASE script keys on the CSV cell as pandas reads it: "water runs" and "water runs " are two
    # queries with their own relevant file. Stripped, they would be one query (the last: audio 1).
    captions = ["water runs", "water runs ", " water runs", "birds"]
    owner = np.array([0, 1, 2, 2])
    rows, positives = dcase_queries(owner, captions)
    assert rows.tolist() == [0, 1, 2, 3] and positives.tolist() == [0, 1, 2, 2]
    scores = torch.tensor([[0.9, 0.5, 0.1]] * 3 + [[0.1, 0.2, 0.3]])  # identical texts, identical rows
    got = protocol_metrics("dcase", torch.eye(3), scores, owner, captions)["t2a"]
    assert got["mAP@10"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1) / 4)
    merged = protocol_metrics("dcase", torch.eye(3), scores, owner, [c.strip() for c in captions])["t2a"]
    assert merged["mAP@10"] == pytest.approx((1 / 3 + 1) / 2)  # "water runs" -> audio 2 only


def test_dcase_repeated_text_across_recordings_is_one_query_for_the_last() -> None:
    # The same text on three recordings: one query, relevant = the last row's file (a later row overwrites).
    captions = ["a door slams", "a door slams", "a door slams", "wind"]
    owner = np.array([0, 1, 2, 0])
    rows, positives = dcase_queries(owner, captions)
    assert dict(zip(rows.tolist(), positives.tolist())) == {2: 2, 3: 0}
    scores = torch.tensor([[0.1, 0.9, 0.5]] * 3 + [[0.8, 0.1, 0.2]])
    got = protocol_metrics("dcase", torch.eye(3), scores, owner, captions)["t2a"]
    assert got["R@1"] == 0.5 and got["mAP@10"] == pytest.approx((1 / 2 + 1) / 2)
