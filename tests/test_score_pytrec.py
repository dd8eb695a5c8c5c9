"""bench's per-query numbers against pytrec_eval (trec_eval's code) on an exported TREC run and its qrels.

Where no scores tie, trec_eval and bench rank alike, so per query: reciprocal rank (both directions),
recall@k and AP@10 (t2a, one relevant file per caption) and AP@10 of a2t (each file has fewer than
10 captions, so trec_eval's division by the number of relevant captions is bench's min(n, 10)).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from bench.results.export import Source, write_qrels, write_trec
from bench.results.run_files import read_trec
from bench.results.score_lists import Truth, score_lists
from tests.conftest import torch_threads

pytrec_eval = pytest.importorskip("pytrec_eval", reason="the test extra brings pytrec-eval-terrier")

N_AUDIOS, PER_AUDIO = 40, 3


def _parse(path: Path, columns: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        fields = line.split()
        assert len(fields) == columns
        if columns == 6:
            out[fields[0]][fields[2]] = float(fields[4])
        else:
            out[fields[0]][fields[2]] = int(fields[3])
    return dict(out)


@pytest.mark.slow
def test_pytrec_eval_agrees_per_query(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((N_AUDIOS, 12)).astype(np.float32)
    aoc = np.repeat(np.arange(N_AUDIOS), PER_AUDIO)
    text = (audio[aoc] + 1.2 * rng.standard_normal((aoc.size, 12))).astype(np.float32)
    ids = np.asarray([f"clip {i:02d}.wav" for i in range(N_AUDIOS)])  # a space: percent-encoded in TREC
    emb = tmp_path / "test_embeddings.npz"
    np.savez(emb, audio=audio, text=text, audio_of_caption=aoc, audio_ids=ids, fingerprint=np.asarray("fp"))
    assert np.unique(text @ audio.T).size == text.shape[0] * audio.shape[0]  # no tied scores at all
    source = Source(emb, 2048, "system")
    run, qrels = tmp_path / "system.trec", tmp_path / "system.qrels"
    write_trec(source, run, ("t2a", "a2t"), None)
    write_qrels(source, qrels, ("t2a", "a2t"))

    truth = Truth("toy", ids, np.asarray([f"caption {i}" for i in range(aoc.size)]), aoc, "fp")
    with torch_threads(1):
        lists = read_trec(run, truth)
        t2a = score_lists(lists["t2a"], truth, str(run), None).ranks[0]
        first, ap10 = score_lists(lists["a2t"], truth, str(run), None).ranks

    measures = {"recip_rank", "recall_1", "recall_5", "recall_10", "map_cut_10"}
    evaluated = pytrec_eval.RelevanceEvaluator(_parse(qrels, 4), measures).evaluate(_parse(run, 6))
    caption_keys = [cid.replace(" ", "%20") for cid in truth.caption_ids]
    audio_keys = [a.replace(" ", "%20") for a in ids]
    assert set(evaluated) == set(caption_keys) | set(audio_keys)
    for c, key in enumerate(caption_keys):
        trec = evaluated[key]
        rank = int(t2a[c])
        assert trec["recip_rank"] == pytest.approx(1.0 / rank, abs=1e-12)
        for k in (1, 5, 10):
            assert trec[f"recall_{k}"] == float(rank <= k)
        assert trec["map_cut_10"] == pytest.approx(1.0 / rank if rank <= 10 else 0.0, abs=1e-12)
    for a, key in enumerate(audio_keys):
        trec = evaluated[key]
        assert trec["recip_rank"] == pytest.approx(1.0 / int(first[a]), abs=1e-12)
        assert trec["map_cut_10"] == pytest.approx(float(ap10[a]), abs=1e-12)
    assert len({int(r) for r in t2a}) > 5  # a spread of ranks, not a trivial system
