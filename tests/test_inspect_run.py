"""bench inspect: worst queries with their top recordings, and per-query differences between runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_runs import make_run

from bench.cli.main import main
from bench.evaluation.per_query import outcomes_from_npz
from bench.results.inspect_run import rank_differences, worst_queries


def test_worst_queries_rank_and_top_recordings(tmp_path, make_result):
    make_run(tmp_path, "a", make_result(), noise=2.0)
    emb = tmp_path / "runs" / "a" / "test_embeddings.npz"
    rows = worst_queries(emb, n=4, k=5)
    o = outcomes_from_npz(emb)
    assert [r["rank"] for r in rows] == sorted(o.t2a_rank.tolist(), reverse=True)[:4]
    with np.load(emb) as data:
        audio, text = torch.from_numpy(data["audio"]), torch.from_numpy(data["text"])
    first = rows[0]
    scores = text[first["caption_index"]] @ audio.T
    assert [s for _, s in first["top"]] == pytest.approx(sorted(scores.tolist(), reverse=True)[:5], rel=1e-5)
    assert first["caption"] is None and first["caption_key"].startswith(first["audio_id"] + "#")
    texts = [f"caption {i}" for i in range(o.n_captions)]
    assert worst_queries(emb, n=1, captions=texts)[0]["caption"] == f"caption {first['caption_index']}"


def test_rank_differences_and_cli(tmp_path, make_result, capsys):
    make_run(tmp_path, "good", make_result(), noise=0.5)
    make_run(tmp_path, "bad", make_result(), noise=3.0, seed=1)
    good = outcomes_from_npz(tmp_path / "runs" / "good" / "test_embeddings.npz")
    bad = outcomes_from_npz(tmp_path / "runs" / "bad" / "test_embeddings.npz")
    diff = rank_differences(good, bad, n=3)
    assert diff["improved"][0]["gain"] == int((bad.t2a_rank - good.t2a_rank).max())
    assert all(r["gain"] < 0 for r in diff["worsened"])
    assert main(["inspect", "good", "--vs", "bad", "-n", "3", "--results-dir", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "top retrieved" in out and "improved most against bad" in out
    assert main(["inspect", "nope", "--results-dir", str(tmp_path / "results")]) == 2
