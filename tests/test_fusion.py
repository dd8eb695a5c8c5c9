"""Late fusion (bench/results/fusion.py, ``bench fuse``): CombSUM and reciprocal rank fusion.

The score functions are checked on small matrices worked out by hand; ``bench fuse`` runs on two
tiny finished runs (seeds 0 and 1, 12 test recordings) in-process through ``bench.cli.main.main``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench.cli.main import main
from bench.errors import ConfigError
from bench.evaluation.metrics import audio_to_text
from bench.leaderboard import tables as leaderboard
from bench.results.files import read_results, write_result
from bench.results.fusion import competition_ranks, fuse_runs, fuse_scores, minmax_rows

TINY = [
    "--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=12",
    "--set", "cnn.channels=8,8", "--set", "cnn.n_mels=16", "--set", "cnn.embed_dim=16", "--set", "cnn.crop_seconds=2",
    "--set", "train.captions_per_audio=1",
    "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--proj-dim", "16", "--no-leaderboard",
]


# -- the score functions, by hand ------------------------------------------------------------------
P1 = torch.tensor([[3.0, 1.0, 2.0, 2.0], [0.0, 4.0, 2.0, 4.0]])
P2 = torch.tensor([[1.0, 2.0, 3.0, 4.0], [7.0, 7.0, 7.0, 7.0]])


def test_minmax_rows_by_hand() -> None:
    # Row [3, 1, 2, 2]: low 1, span 2 -> [1, 0, .5, .5]; row [0, 4, 2, 4]: low 0, span 4 -> [0, 1, .5, 1].
    assert torch.allclose(minmax_rows(P1), torch.tensor([[1.0, 0.0, 0.5, 0.5], [0.0, 1.0, 0.5, 1.0]]))
    # Row [1, 2, 3, 4] -> [0, 1/3, 2/3, 1]; a constant row carries no ranking: all zeros (not NaN).
    assert torch.allclose(minmax_rows(P2), torch.tensor([[0.0, 1 / 3, 2 / 3, 1.0], [0.0, 0.0, 0.0, 0.0]]))


def test_competition_ranks_by_hand() -> None:
    # Rank = 1 + number of strictly higher scores: [3, 1, 2, 2] -> [1, 4, 2, 2]; [0, 4, 2, 4] -> [4, 1, 3, 1].
    assert torch.equal(competition_ranks(P1), torch.tensor([[1.0, 4.0, 2.0, 2.0], [4.0, 1.0, 3.0, 1.0]]))
    # [1, 2, 3, 4] -> [4, 3, 2, 1]; all tied -> all first.
    assert torch.equal(competition_ranks(P2), torch.tensor([[4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))
    # Negative and fractional scores, ties in the middle: [-.5, .25, -.5, 9] -> [3, 2, 3, 1].
    assert torch.equal(competition_ranks(torch.tensor([[-0.5, 0.25, -0.5, 9.0]])), torch.tensor([[3.0, 2.0, 3.0, 1.0]]))


def test_combsum_by_hand() -> None:
    # Equal weights: minmax(P1) + minmax(P2)
    #   row 0: [1 + 0, 0 + 1/3, .5 + 2/3, .5 + 1] = [1, 1/3, 7/6, 3/2];  row 1: [0, 1, .5, 1] + 0.
    fused = fuse_scores([P1, P2], "combsum", [1.0, 1.0], k=60.0)
    assert torch.allclose(fused, torch.tensor([[1.0, 1 / 3, 7 / 6, 1.5], [0.0, 1.0, 0.5, 1.0]]))
    # Weights 2 and .5: row 0: [2, .5/3, 1 + 1/3, 1 + .5] = [2, 1/6, 4/3, 3/2]; row 1: [0, 2, 1, 2].
    fused = fuse_scores([P1, P2], "combsum", [2.0, 0.5], k=60.0)
    assert torch.allclose(fused, torch.tensor([[2.0, 1 / 6, 4 / 3, 1.5], [0.0, 2.0, 1.0, 2.0]]))


def test_rrf_by_hand() -> None:
    # k = 1, ranks as above: row 0: [1/2 + 1/5, 1/5 + 1/4, 1/3 + 1/3, 1/3 + 1/2] = [.7, .45, 2/3, 5/6]
    #                        row 1: [1/5 + 1/2, 1/2 + 1/2, 1/4 + 1/2, 1/2 + 1/2] = [.7, 1, .75, 1].
    fused = fuse_scores([P1, P2], "rrf", [1.0, 1.0], k=1.0)
    assert torch.allclose(fused, torch.tensor([[0.7, 0.45, 2 / 3, 5 / 6], [0.7, 1.0, 0.75, 1.0]]))
    # Weight 3 on the first run, k = 60: row 0 item 0 = 3/61 + 1/64.
    fused = fuse_scores([P1, P2], "rrf", [3.0, 1.0], k=60.0)
    assert fused[0, 0].item() == pytest.approx(3 / 61 + 1 / 64)
    with pytest.raises(ConfigError, match="combsum, rrf"):
        fuse_scores([P1, P2], "borda", [1.0, 1.0], k=60.0)


# -- bench fuse on real runs -----------------------------------------------------------------------
class Env:
    def __init__(self, base: Path) -> None:
        self.results = base / "results"
        self.runs = base / "runs"

    def fuse(self, *args: str) -> int:
        return main(["fuse", "--results-dir", str(self.results), *args])

    def fuse_new(self, *args: str) -> dict[str, Any]:
        before = {r["run_id"] for r in read_results(self.results)}
        assert self.fuse("--no-leaderboard", *args) == 0
        (result,) = [r for r in read_results(self.results) if r["run_id"] not in before]
        return result


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    # One cache for the session (shared with the other test files).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "bench-cache"))
        env = Env(tmp_path_factory.mktemp("fusion"))
        assert main(["run", *TINY, "--seed", "0,1", "--results-dir", str(env.results),
                     "--runs-dir", str(env.runs)]) == 0
        yield env


@pytest.fixture(scope="module")
def runs(env: Env) -> dict[int, dict[str, Any]]:
    return {r["seed"]: r for r in read_results(env.results) if r.get("kind") == "train"}


def metrics_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    for direction in ("t2a", "a2t"):
        assert a[direction] == pytest.approx(b[direction], abs=1e-9), direction


def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("bench fuse: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["combsum", "rrf"])
def test_fusing_a_run_with_itself_keeps_its_ranking(env: Env, runs: dict[int, dict[str, Any]], method: str) -> None:
    run = runs[0]
    fused = env.fuse_new(run["run_id"], run["run_id"], "--method", method)
    metrics_equal(fused["metrics"], run["metrics"])
    assert fused["kind"] == "fusion"
    assert fused["fusion"]["method"] == method and fused["fusion"]["runs"] == [run["run_id"]] * 2
    assert fused["chance"] == run["chance"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["combsum", "rrf"])
def test_weight_zero_leaves_the_other_runs_ranking(env: Env, runs: dict[int, dict[str, Any]], method: str) -> None:
    ids = [runs[0]["run_id"], runs[1]["run_id"]]
    assert runs[0]["metrics"] != runs[1]["metrics"]  # otherwise this test could not tell them apart
    first = env.fuse_new(*ids, "--method", method, "--weights", "1,0")
    metrics_equal(first["metrics"], runs[0]["metrics"])
    second = env.fuse_new(*ids, "--method", method, "--weights", "0,1")
    metrics_equal(second["metrics"], runs[1]["metrics"])
    assert second["fusion"]["weights"] == [0.0, 1.0]


@pytest.mark.slow
def test_combsum_of_two_runs_matches_a_direct_computation(env: Env, runs: dict[int, dict[str, Any]]) -> None:
    ids = [runs[0]["run_id"], runs[1]["run_id"]]
    fused = fuse_runs(ids, method="combsum", weights=[1.0, 2.0], results_dir=env.results, chunk_size=5)
    data = [np.load(env.runs / run_id / "test_embeddings.npz") for run_id in ids]
    owner = torch.from_numpy(data[0]["audio_of_caption"])
    t2a = sum(w * minmax_rows(torch.from_numpy(d["text"]) @ torch.from_numpy(d["audio"]).T)
              for w, d in zip((1.0, 2.0), data))
    # docs/metrics.md: the rank of a caption's recording counts every recording scoring >= it (pessimistic ties).
    positive = t2a.gather(1, owner[:, None])
    ranks = (t2a >= positive).sum(1).double()
    expected = {"mAP@10": float(torch.where(ranks <= 10, 1 / ranks, torch.zeros_like(ranks)).mean()),
                **{f"R@{k}": float((ranks <= k).double().mean()) for k in (1, 5, 10)}}
    for key, value in expected.items():
        assert fused["metrics"]["t2a"][key] == pytest.approx(value, abs=1e-9), key
    a2t = sum(w * minmax_rows(torch.from_numpy(d["audio"]) @ torch.from_numpy(d["text"]).T)
              for w, d in zip((1.0, 2.0), data))
    for key, value in audio_to_text(a2t, owner).items():
        assert fused["metrics"]["a2t"][key] == pytest.approx(value, abs=1e-9), key


@pytest.mark.slow
def test_fusion_has_its_own_leaderboard_row(env: Env, runs: dict[int, dict[str, Any]], capsys) -> None:
    ids = [runs[0]["run_id"], runs[1]["run_id"]]
    assert env.fuse(*ids, "--method", "rrf", "--k", "10") == 0
    out = capsys.readouterr().out
    assert "fused 2 runs with rrf" in out
    assert "fusion: rrf of 2 runs" in out  # the printed table of the benchmark
    board = leaderboard.render(read_results(env.results))
    rows = [line.split("|") for line in board.splitlines() if "fusion: rrf of 2 runs" in line]
    assert rows and all(row[1].strip() == "cnn + cnn" for row in rows)
    # The trained runs keep their own row (two seeds of one combination).
    assert any(row[3].strip() == "ntxent" and row[9].strip() == "2" for row in
               (line.split("|") for line in board.splitlines() if line.startswith("| cnn ")))


def copy_result(env: Env, run: dict[str, Any], run_id: str, embeddings: Path | None) -> None:
    """A second result file for the run's model, whose test embeddings live at ``embeddings``."""
    result = json.loads(json.dumps(run))
    result["run_id"] = run_id
    result["artifacts"]["test_embeddings"] = str(embeddings) if embeddings else str(env.runs / run_id / "gone.npz")
    write_result(result, env.results)


@pytest.mark.slow
def test_runs_on_different_test_splits_are_refused(env: Env, runs: dict[int, dict[str, Any]], tmp_path: Path,
                                                   capsys) -> None:
    run = runs[1]
    with np.load(env.runs / run["artifacts"]["test_embeddings"]) as data:  # relative to the runs directory
        arrays = {key: data[key] for key in data.files}
    arrays["fingerprint"] = np.asarray("0123456789abcdef")
    other = env.runs / "other-test-split" / "test_embeddings.npz"
    other.parent.mkdir(exist_ok=True)
    np.savez(other, **arrays)
    copy_result(env, run, "other-test-split", other)
    assert env.fuse(runs[0]["run_id"], "other-test-split") == 2
    line = error_line(capsys.readouterr().err)
    assert "different test splits" in line and runs[0]["run_id"] in line and "other-test-split" in line
    assert "01234567" in line


@pytest.mark.slow
def test_missing_test_embeddings_is_a_clear_error(env: Env, runs: dict[int, dict[str, Any]], capsys) -> None:
    copy_result(env, runs[1], "moved-run", None)
    assert env.fuse(runs[0]["run_id"], "moved-run") == 2
    line = error_line(capsys.readouterr().err)
    assert "moved-run" in line and "test embeddings" in line and "gone.npz" in line


@pytest.mark.slow
def test_weights_must_match_the_runs(env: Env, runs: dict[int, dict[str, Any]], capsys) -> None:
    assert env.fuse(runs[0]["run_id"], runs[1]["run_id"], "--weights", "1,2,3") == 2
    assert "3 values for 2 runs" in error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_one_or_unknown_run_is_a_clear_error(env: Env, runs: dict[int, dict[str, Any]], capsys) -> None:
    assert env.fuse(runs[0]["run_id"]) == 2
    assert "at least two" in error_line(capsys.readouterr().err)
    assert env.fuse(runs[0]["run_id"], "no-such-run") == 2
    assert "no-such-run" in error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_weights_that_are_not_numbers_are_one_line(env: Env, runs: dict[int, dict[str, Any]], capsys) -> None:
    assert env.fuse(runs[0]["run_id"], runs[1]["run_id"], "--weights", "a,b") == 2
    assert "--weights" in error_line(capsys.readouterr().err)


@pytest.mark.slow
@pytest.mark.parametrize("k", ["-1", "-60.5"])
def test_negative_rrf_k_is_refused(env: Env, runs: dict[int, dict[str, Any]], capsys, k: str) -> None:
    assert env.fuse(runs[0]["run_id"], runs[1]["run_id"], "--method", "rrf", f"--k={k}") == 2
    assert "--k" in error_line(capsys.readouterr().err)


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["nan,1", "0,0", "-1,1"])
def test_weights_must_be_finite_nonnegative_and_not_all_zero(env: Env, runs: dict[int, dict[str, Any]], capsys,
                                                             weights: str) -> None:
    assert env.fuse(runs[0]["run_id"], runs[1]["run_id"], f"--weights={weights}") == 2
    assert "--weights" in error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_fusion_and_its_runs_record_sidecars_that_verify(env: Env, runs: dict[int, dict[str, Any]]) -> None:
    from bench.evaluation.per_query import load_for_result, reduce
    from bench.results.verify import verify

    fused = env.fuse_new(runs[0]["run_id"], runs[1]["run_id"], "--method", "rrf")
    for result in (fused, runs[0], runs[1]):
        path = env.results / f"{result['run_id']}.json"
        assert reduce(load_for_result(result, path)) == result["metrics"]
        assert verify(path).ok
