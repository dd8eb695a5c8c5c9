"""bench.evaluation.metrics held against a literal per-query implementation of docs/metrics.md."""

from __future__ import annotations

import statistics
from fractions import Fraction

import numpy as np
import pytest
import torch

from bench.errors import DataError
from bench.evaluation.metrics import (
    A2T_KEYS,
    METRIC_KEYS,
    T2A_KEYS,
    CaptionTable,
    MetricInputError,
    a2t_ranks,
    audio_to_text,
    caption_table,
    chance_metrics,
    chunked_metrics,
    format_percent,
    retrieval_metrics,
    summarise_a2t,
    summarise_t2a,
    t2a_ranks,
    text_to_audio,
)

# ----------------------------------------------------------------------------- reference


def ref_t2a(scores, audio_of_caption) -> dict[str, float]:
    """docs/metrics.md t2a, literally: one query at a time, plain Python."""
    rows = np.asarray(scores, dtype=np.float64).tolist()  # exact for fp16/fp32/fp64 values
    ranks = []
    for i, row in enumerate(rows):
        p = int(audio_of_caption[i])
        s = row[p]
        higher = sum(1 for v in row if v > s)
        equal_others = sum(1 for j, v in enumerate(row) if j != p and v == s)
        ranks.append(1 + higher + equal_others)
    n = len(ranks)
    out = {f"R@{k}": sum(1 for r in ranks if r <= k) / n for k in (1, 5, 10)}
    out["mAP@10"] = sum(1 / r for r in ranks if r <= 10) / n
    out["mean_rank"] = sum(ranks) / n
    out["median_rank"] = float(statistics.median(ranks))
    return out


def ref_a2t(scores, audio_of_caption) -> dict[str, float]:
    """docs/metrics.md a2t, literally: sort each audio's captions (score desc, irrelevant first)."""
    rows = np.asarray(scores, dtype=np.float64).tolist()
    aoc = [int(a) for a in audio_of_caption]
    firsts, aps = [], []
    for a, row in enumerate(rows):
        relevant = [aoc[c] == a for c in range(len(row))]
        n_rel = sum(relevant)
        # Python's sort on (-score, is_relevant): higher score first, irrelevant first in ties.
        order = sorted(range(len(row)), key=lambda c: (-row[c], relevant[c]))
        hits = 0
        ap = 0.0
        first = None
        for pos, c in enumerate(order, start=1):
            if relevant[c]:
                hits += 1
                if first is None:
                    first = pos
                if pos <= 10:
                    ap += hits / pos
        firsts.append(first)
        aps.append(ap / min(n_rel, 10))
    n = len(rows)
    out = {f"R@{k}": sum(1 for f in firsts if f <= k) / n for k in (1, 5, 10)}
    out["mAP@10"] = sum(aps) / n
    return out


def assert_same(got: dict[str, float], want: dict[str, float]) -> None:
    assert list(got) == list(want)
    for key in want:
        assert isinstance(got[key], float), key
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key


def random_assignment(rng: np.random.Generator, n_audios: int, lo: int = 1, hi: int = 7):
    """A shuffled caption -> audio map with lo..hi captions per audio."""
    counts = rng.integers(lo, hi + 1, size=n_audios)
    aoc = np.repeat(np.arange(n_audios), counts)
    rng.shuffle(aoc)
    return aoc


# ----------------------------------------------------------------------------- vs reference


@pytest.mark.parametrize("seed", range(6))
def test_random_scores_match_reference(seed):
    rng = np.random.default_rng(seed)
    n_a = int(rng.integers(1, 40))
    aoc = random_assignment(rng, n_a)
    t2a_scores = rng.standard_normal((len(aoc), n_a)).astype(np.float32)
    a2t_scores = rng.standard_normal((n_a, len(aoc))).astype(np.float32)
    assert_same(text_to_audio(t2a_scores, aoc), ref_t2a(t2a_scores, aoc))
    assert_same(audio_to_text(a2t_scores, aoc), ref_a2t(a2t_scores, aoc))


@pytest.mark.parametrize("seed", range(6))
def test_tie_heavy_scores_match_reference(seed):
    rng = np.random.default_rng(100 + seed)
    n_a = int(rng.integers(2, 30))
    aoc = random_assignment(rng, n_a)
    n_levels = int(rng.integers(1, 4))  # scores in {0, .., n_levels}: ties everywhere
    t2a_scores = rng.integers(0, n_levels + 1, size=(len(aoc), n_a)).astype(np.float32)
    a2t_scores = rng.integers(0, n_levels + 1, size=(n_a, len(aoc))).astype(np.float32)
    assert_same(text_to_audio(t2a_scores, aoc), ref_t2a(t2a_scores, aoc))
    assert_same(audio_to_text(a2t_scores, aoc), ref_a2t(a2t_scores, aoc))


def test_more_than_ten_relevant_captions_match_reference():
    # Exercises the top-10 truncation and the 1/min(n_rel, 10) normaliser.
    rng = np.random.default_rng(7)
    aoc = random_assignment(rng, 6, lo=1, hi=14)
    for levels in (None, 2):
        if levels is None:
            scores = rng.standard_normal((6, len(aoc)))
        else:
            scores = rng.integers(0, levels + 1, size=(6, len(aoc))).astype(np.float64)
        assert_same(audio_to_text(scores, aoc), ref_a2t(scores, aoc))


def test_perfect_scorer_with_twelve_captions_has_ap_one():
    aoc = np.array([0] * 12 + [1] * 3)
    scores = np.stack([(aoc == 0), (aoc == 1)]).astype(np.float32)  # relevant score 1, others 0
    assert audio_to_text(scores, aoc) == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 1.0}


# ----------------------------------------------------------------------------- hand-computed


def test_t2a_hand_computed():
    scores = np.array(
        [
            [0.9, 0.1, 0.5],  # caption 0 -> audio 0 scores highest: rank 1
            [0.3, 0.3, 0.3],  # caption 1 -> audio 1 ties with two others: rank 1 + 0 + 2 = 3
            [0.8, 0.2, 0.5],  # caption 2 -> audio 2, one audio higher: rank 2
        ],
        dtype=np.float32,
    )
    got = text_to_audio(scores, [0, 1, 2])
    assert got == {
        "R@1": 1 / 3,
        "R@5": 1.0,
        "R@10": 1.0,
        "mAP@10": pytest.approx((1 + 1 / 3 + 1 / 2) / 3, abs=1e-15),  # = 11/18
        "mean_rank": 2.0,
        "median_rank": 2.0,
    }


def test_a2t_hand_computed():
    # audio 0 has captions 0 and 2, audio 1 has captions 1, 3, 4.
    aoc = [0, 1, 0, 1, 1]
    scores = np.array(
        [
            # c1 (0.9) and c4 (0.7) are irrelevant and above; c0, c2 tie at 0.5 -> positions 3, 4.
            # AP = (1/2) * (1/3 + 2/4) = 5/12; first relevant at 3.
            [0.5, 0.9, 0.5, 0.1, 0.7],
            # c2 (0.9, irrelevant) pos 1, c4 (0.8) pos 2, then the 0.2 tie: c0 (irrelevant) first
            # at pos 3, c1 and c3 at 4 and 5. AP = (1/3) * (1/2 + 2/4 + 3/5) = 8/15; first at 2.
            [0.2, 0.2, 0.9, 0.2, 0.8],
        ]
    )
    got = audio_to_text(scores, aoc)
    assert got["R@1"] == 0.0
    assert got["R@5"] == 1.0 and got["R@10"] == 1.0
    assert got["mAP@10"] == pytest.approx(float((Fraction(5, 12) + Fraction(8, 15)) / 2), abs=1e-15)
    first, ap = a2t_ranks(torch.tensor(scores), caption_table(aoc, 2))
    assert first.tolist() == [3, 2]
    assert ap.tolist() == pytest.approx([5 / 12, 8 / 15], abs=1e-15)


def test_median_rank_of_even_count_is_mean_of_middle_pair():
    assert summarise_t2a(torch.tensor([1, 2, 7, 9]))["median_rank"] == 4.5
    assert summarise_t2a(torch.tensor([3, 1, 2]))["median_rank"] == 2.0


# ----------------------------------------------------------------------------- worst case


@pytest.mark.parametrize("n_a", [1, 3, 20])
def test_constant_scorer_gets_the_worst_result(n_a):
    rng = np.random.default_rng(n_a)
    aoc = random_assignment(rng, n_a)
    n_c = len(aoc)
    ranks = t2a_ranks(torch.full((n_c, n_a), 0.25), torch.as_tensor(aoc))
    assert ranks.tolist() == [n_a] * n_c
    t2a = text_to_audio(np.full((n_c, n_a), 0.25, dtype=np.float32), aoc)
    assert t2a["mean_rank"] == t2a["median_rank"] == float(n_a)
    assert t2a["R@1"] == (1.0 if n_a == 1 else 0.0)
    first, ap = a2t_ranks(torch.zeros(n_a, n_c), caption_table(aoc, n_a))
    counts = np.bincount(aoc, minlength=n_a)
    assert first.tolist() == (n_c - counts + 1).tolist()  # every relevant caption at the bottom
    assert_same(audio_to_text(np.zeros((n_a, n_c)), aoc), ref_a2t(np.zeros((n_a, n_c)), aoc))


# ----------------------------------------------------------------------------- input types


def test_numpy_and_torch_inputs_agree_across_dtypes():
    rng = np.random.default_rng(3)
    aoc = random_assignment(rng, 15)
    base = rng.integers(-3, 4, size=(len(aoc), 15)) / 4  # exact in every float dtype, tie-heavy
    want_t2a = ref_t2a(base, aoc)
    want_a2t = ref_a2t(base.T, aoc)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        s = torch.tensor(base, dtype=dtype)
        assert_same(text_to_audio(s, torch.as_tensor(aoc)), want_t2a)
        assert_same(audio_to_text(s.T, list(aoc)), want_a2t)
    for dtype in (np.float16, np.float32, np.float64):
        s = base.astype(dtype)
        assert_same(text_to_audio(s, aoc), want_t2a)
        assert_same(audio_to_text(s.T, aoc.astype(np.int32)), want_a2t)  # non-contiguous view
    ro = base.astype(np.float32)
    ro.flags.writeable = False
    assert_same(text_to_audio(ro, aoc), want_t2a)


def test_half_precision_upcast_keeps_close_scores_apart():
    # 1 and the next float16 above it differ in fp16 and must not become a tie.
    hi = float(np.nextafter(np.float16(1), np.float16(2)))
    scores = torch.tensor([[1.0, hi]], dtype=torch.float16)
    assert t2a_ranks(scores, torch.tensor([1])).tolist() == [1]
    assert t2a_ranks(scores, torch.tensor([0])).tolist() == [2]


# ----------------------------------------------------------------------------- chunking


def _normalised(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("tie_heavy", [False, True])
def test_chunked_from_embeddings_equals_full_matrix(tie_heavy):
    rng = np.random.default_rng(11)
    n_a = 37
    aoc = random_assignment(rng, n_a)
    if tie_heavy:  # small integer embeddings: every dot product is exact, so ties survive any
        audio = rng.integers(-1, 2, size=(n_a, 4)).astype(np.float32)  # GEMM blocking
        text = rng.integers(-1, 2, size=(len(aoc), 4)).astype(np.float32)
    else:
        audio, text = _normalised(rng, n_a, 16), _normalised(rng, len(aoc), 16)
    want = {
        "t2a": text_to_audio(text @ audio.T, aoc),
        "a2t": audio_to_text(audio @ text.T, aoc),
    }
    if tie_heavy:
        assert_same(want["t2a"], ref_t2a(text @ audio.T, aoc))
        assert_same(want["a2t"], ref_a2t(audio @ text.T, aoc))
    for chunk in (1, 2, 7, 10, 36, 37, 64, 10_000, None):
        got = retrieval_metrics(torch.from_numpy(audio), torch.from_numpy(text), aoc, chunk_size=chunk)
        assert list(got) == ["t2a", "a2t"]
        assert_same(got["t2a"], want["t2a"])
        assert_same(got["a2t"], want["a2t"])


def test_chunked_metrics_with_fused_score_functions():
    # Late fusion: the chunk functions sum two systems' scores; the result must equal the
    # full-matrix metrics of the summed matrix, and each chunk must have the requested rows.
    rng = np.random.default_rng(5)
    n_a = 23
    aoc = random_assignment(rng, n_a)
    s1 = torch.from_numpy(rng.integers(0, 3, size=(len(aoc), n_a)).astype(np.float32))
    s2 = torch.from_numpy(rng.integers(0, 3, size=(len(aoc), n_a)).astype(np.float32))
    calls = []

    def t2a_fn(start, stop):
        calls.append(("t2a", start, stop))
        return s1[start:stop] + s2[start:stop]

    def a2t_fn(start, stop):
        calls.append(("a2t", start, stop))
        return (s1[:, start:stop] + s2[:, start:stop]).T

    got = chunked_metrics(t2a_fn, a2t_fn, n_a, len(aoc), aoc, chunk_size=4)
    assert_same(got["t2a"], ref_t2a(s1 + s2, aoc))
    assert_same(got["a2t"], ref_a2t((s1 + s2).T, aoc))
    assert max(stop - start for _, start, stop in calls) == 4
    assert [c for c in calls if c[0] == "t2a"][-1][2] == len(aoc)
    assert [c for c in calls if c[0] == "a2t"][-1][2] == n_a
    assert list(chunked_metrics(t2a_fn, None, n_a, len(aoc), aoc)) == ["t2a"]


def test_summaries_of_concatenated_chunks_equal_whole():
    rng = np.random.default_rng(9)
    n_a = 12
    aoc = random_assignment(rng, n_a)
    s = torch.from_numpy(rng.standard_normal((n_a, len(aoc))))
    table = caption_table(aoc, n_a)
    parts = [a2t_ranks(s[i : i + 5], table.rows(i, i + 5)) for i in range(0, n_a, 5)]
    firsts = torch.cat([p[0] for p in parts])
    aps = torch.cat([p[1] for p in parts])
    assert_same(summarise_a2t(firsts, aps), ref_a2t(s.numpy(), aoc))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(2)
    aoc = random_assignment(rng, 50)
    audio = torch.from_numpy(rng.integers(-1, 2, size=(50, 8)).astype(np.float32))
    text = torch.from_numpy(rng.integers(-1, 2, size=(len(aoc), 8)).astype(np.float32))
    cpu = retrieval_metrics(audio, text, aoc, chunk_size=13)
    gpu = retrieval_metrics(audio.cuda(), text.cuda(), torch.as_tensor(aoc).cuda(), chunk_size=13)
    assert cpu == gpu


# ----------------------------------------------------------------------------- chance level


def test_chance_metrics_closed_form_small_case():
    # 4 audios, each with 1 caption: t2a R@1 = 1/4, mAP@10 = (1 + 1/2 + 1/3 + 1/4) / 4.
    got = chance_metrics([0, 1, 2, 3], 4)
    assert got["t2a"] == {
        "R@1": 0.25,
        "R@5": 1.0,
        "R@10": 1.0,
        "mAP@10": pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, abs=1e-15),
        "mean_rank": 2.5,
        "median_rank": 2.5,
    }
    # a2t with one relevant among 4: the same uniform-rank numbers.
    assert got["a2t"]["R@1"] == pytest.approx(0.25, abs=1e-15)
    assert got["a2t"]["mAP@10"] == pytest.approx(got["t2a"]["mAP@10"], abs=1e-15)
    # Clotho-sized: 1045 audios x 5 captions.
    clotho = chance_metrics(np.repeat(np.arange(1045), 5), 1045)
    assert clotho["t2a"]["R@10"] == pytest.approx(10 / 1045)
    assert clotho["a2t"]["R@1"] == pytest.approx(5 / 5225)


def test_chance_metrics_match_monte_carlo_of_real_metrics():
    counts = [1, 2, 3, 1, 4, 2, 5]
    aoc = np.repeat(np.arange(len(counts)), counts)
    n_a, n_c = len(counts), len(aoc)
    want = chance_metrics(aoc, n_a)
    trials = 20_000
    gen = torch.Generator().manual_seed(0)
    # iid continuous scores rank the items by a uniformly random permutation (no ties).
    t2a_scores = torch.rand(trials * n_c, n_a, generator=gen, dtype=torch.float64)
    got_t2a = summarise_t2a(t2a_ranks(t2a_scores, torch.as_tensor(aoc).repeat(trials)))
    table = caption_table(aoc, n_a)
    tiled = CaptionTable(table.indices.repeat(trials, 1), table.counts.repeat(trials))
    a2t_scores = torch.rand(trials * n_a, n_c, generator=gen, dtype=torch.float64)
    got_a2t = summarise_a2t(*a2t_ranks(a2t_scores, tiled))
    for key in ("R@1", "R@5", "R@10", "mAP@10"):
        assert got_t2a[key] == pytest.approx(want["t2a"][key], abs=0.006), key
        assert got_a2t[key] == pytest.approx(want["a2t"][key], abs=0.006), key
    assert got_t2a["mean_rank"] == pytest.approx(want["t2a"]["mean_rank"], abs=0.02)
    assert abs(got_t2a["median_rank"] - want["t2a"]["median_rank"]) <= 0.5
    # The analytic a2t values are not trivial: recall is well above 1/n_c for multi-caption audios.
    assert want["a2t"]["R@1"] > 1 / n_c


# ----------------------------------------------------------------------------- errors


def _raises(fn, *args, match, **kwargs):
    with pytest.raises(MetricInputError, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_errors_are_clear_one_line_value_errors():
    s = np.zeros((3, 2), dtype=np.float32)
    nan = s.copy()
    nan[2, 1] = np.nan
    _raises(text_to_audio, nan, [0, 1, 0], match=r"NaN \(first in row 2\)")
    _raises(audio_to_text, nan.T.copy(), [0, 1, 1], match="NaN")
    _raises(text_to_audio, s, [0, 1], match="has 2 entries but there are 3 captions")
    _raises(text_to_audio, s, [0, 1, 2], match=r"audio_of_caption\[2\] = 2 is out of range \[0, 2\)")
    _raises(text_to_audio, s, [0, -1, 1], match=r"audio_of_caption\[1\] = -1")
    _raises(text_to_audio, s, [0.0, 1.0, 1.0], match="integer audio indices")
    _raises(text_to_audio, s, torch.tensor([True, False, True]), match="integer")
    _raises(text_to_audio, s, [[0, 1, 1]], match="1-D")
    _raises(text_to_audio, np.zeros(3, dtype=np.float32), [0], match="2-D")
    _raises(text_to_audio, np.zeros((3, 2), dtype=np.int64), [0, 1, 1], match="floating-point")
    _raises(text_to_audio, [[0.0, 1.0]], [0], match="numpy array or a torch tensor")
    _raises(audio_to_text, np.zeros((3, 4)), [0, 0, 1, 1], match="audio 2 has no caption")
    _raises(chance_metrics, [0, 0, 1], 3, match="audio 2 has no caption")
    _raises(chance_metrics, [0], 0, match="positive integer")
    audio, text = torch.zeros(3, 4), torch.zeros(5, 3)
    _raises(retrieval_metrics, audio, text, [0] * 5, match="dimension 4 but text_emb has 3")
    _raises(retrieval_metrics, audio, torch.zeros(5, 4), [0, 1, 2, 0, 1], chunk_size=0, match="chunk_size")
    _raises(chunked_metrics, lambda a, b: torch.zeros(b - a, 3), None, 2, 4, [0, 0, 1, 1],
            match=r"shape \(\d+, 3\), expected \[\d+, 2\]")
    _raises(t2a_ranks, torch.zeros(2, 3), torch.tensor([0, 3]), match=r"\[0, 3\)")
    _raises(t2a_ranks, torch.zeros(2, 3), torch.tensor([0]), match="expected")
    _raises(a2t_ranks, torch.zeros(2, 3), caption_table([0, 1, 1], 3, allow_empty=True).rows(1, 3),
            match="no relevant caption")


def test_t2a_allows_audios_without_captions_as_distractors():
    scores = np.array([[0.9, 0.1, 0.95], [0.1, 0.8, 0.2]], dtype=np.float32)  # audio 2 uncaptioned
    got = text_to_audio(scores, [0, 1])
    assert_same(got, ref_t2a(scores, [0, 1]))
    assert got["R@1"] == 0.5  # the distractor beats caption 0's audio


# ----------------------------------------------------------------------------- formatting/keys


def test_format_percent_and_keys():
    assert format_percent(0.28934) == "28.93"
    assert format_percent(0.0) == "0.00"
    assert format_percent(1) == "100.00"
    assert format_percent(0.5, decimals=1) == "50.0"
    assert METRIC_KEYS == {"t2a": T2A_KEYS, "a2t": A2T_KEYS}
    got = retrieval_metrics(torch.eye(3), torch.eye(3), [0, 1, 2])
    assert tuple(got["t2a"]) == T2A_KEYS and tuple(got["a2t"]) == A2T_KEYS
    assert got["t2a"]["R@1"] == got["a2t"]["mAP@10"] == 1.0
