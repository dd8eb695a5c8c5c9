"""The per-query sidecar as runs, fusions and the backfill write it, and the issue-12 subcommands' wiring."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from synthetic_runs import make_run

from bench.cli import compare as cli_compare
from bench.cli.main import main
from bench.core.config import DEFAULT_RESULTS_DIR
from bench.errors import DataError
from bench.evaluation.metrics import retrieval_metrics
from bench.evaluation.per_query import (
    attach_sidecar,
    load_for_result,
    outcomes_from_embeddings,
    reduce,
    write_per_query,
)
from bench.results import stats
from bench.results.files import read_result, write_result
from bench.results.verify import backfill_sidecar, verify

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _arrays(seed: int = 0, n_audios: int = 30, per: int = 5):
    rng = np.random.default_rng(seed)
    aoc = np.repeat(np.arange(n_audios), per)
    audio = rng.standard_normal((n_audios, 8)).astype(np.float32)
    # coarse values: many exact ties, so the pessimistic rule matters
    text = np.round(audio[aoc] + rng.standard_normal((aoc.size, 8)), 0).astype(np.float32)
    return audio, text, aoc, np.asarray([f"id{i}" for i in range(n_audios)])


def test_attached_sidecar_reduces_to_the_json_metrics(tmp_path, make_result):
    audio, text, aoc, ids = _arrays()
    outcomes = outcomes_from_embeddings(audio, text, aoc, ids, "fp", chunk_size=7)
    result = make_result("r1")
    path = attach_sidecar(result, tmp_path, outcomes)
    assert path.name == "r1.per_query.npz" and result["per_query"]["file"] == path.name
    assert result["metrics"] == retrieval_metrics(audio, text, aoc, chunk_size=7)
    written = write_result(result, tmp_path)
    stored = read_result(written)
    assert reduce(load_for_result(stored, written)) == stored["metrics"]
    with pytest.raises(DataError, match="already exists"):  # an existing result is never touched
        attach_sidecar(make_result("r1"), tmp_path, outcomes)


def test_write_per_query_uses_the_runs_chunk_and_keeps_equal_metrics(tmp_path, make_result):
    audio, text, aoc, ids = _arrays(1)
    npz = tmp_path / "test_embeddings.npz"
    np.savez(npz, audio=audio, text=text, audio_of_caption=aoc, audio_ids=ids, fingerprint=np.asarray("fp"))
    result = make_result("r2")
    result["metrics"] = retrieval_metrics(audio, text, aoc, chunk_size=4)
    claimed = json.loads(json.dumps(result["metrics"]))
    write_per_query(result, tmp_path / "results", npz, chunk_size=4)
    assert result["metrics"] == claimed
    assert (tmp_path / "results" / "r2.per_query.npz").is_file()


def test_backfill_adds_only_per_query_and_then_verifies(tmp_path, make_result):
    path = make_run(tmp_path, "old", make_result(), sidecar=False)
    before = json.loads(path.read_text())
    emb = tmp_path / "elsewhere.npz"
    shutil.move(str(tmp_path / "runs" / "old" / "test_embeddings.npz"), emb)  # as on another machine
    assert main(["verify", "--write-sidecar", str(path), "--embeddings", str(emb)]) == 0
    after = json.loads(path.read_text())
    assert set(after) - set(before) == {"per_query"}
    assert {k: v for k, v in after.items() if k != "per_query"} == before
    assert path.read_text() == json.dumps(after, indent=2, sort_keys=True, allow_nan=False) + "\n"
    v = verify(path)
    assert v.ok and v.checked == ("sidecar",)
    with pytest.raises(Exception, match="already records"):
        backfill_sidecar(path, emb)


def test_backfill_refuses_embeddings_that_do_not_reproduce_the_result(tmp_path, make_result, capsys):
    path = make_run(tmp_path, "old", make_result(), sidecar=False)
    result = json.loads(path.read_text())
    result["metrics"]["a2t"]["mAP@10"] += 1e-9
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    assert main(["verify", "--write-sidecar", str(path)]) == 2
    err = capsys.readouterr().err
    assert "metrics.a2t['mAP@10']" in err and "no sidecar written" in err and err.count("\n") == 1
    assert not (tmp_path / "results" / "old.per_query.npz").exists()


def test_subcommands_are_wired_with_the_runs_results_default(capsys):
    for command in ("compare", "verify", "inspect"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert command in capsys.readouterr().out
    parser_defaults = {"compare": cli_compare}
    assert parser_defaults["compare"].N_PERMUTATIONS == stats.N_PERMUTATIONS
    assert cli_compare.N_BOOTSTRAP == stats.N_BOOTSTRAP and cli_compare.ALPHA == stats.ALPHA
    import argparse

    parser = argparse.ArgumentParser()
    cli_compare.add_arguments(parser)
    assert parser.parse_args(["a", "b"]).results_dir == str(DEFAULT_RESULTS_DIR)


def test_compare_of_a_run_with_itself_and_a_foreign_split(tmp_path, make_result, capsys):
    make_run(tmp_path, "a", make_result())
    make_run(tmp_path, "b", make_result(), fingerprint="fp-other")
    results = str(tmp_path / "results")
    assert main(["compare", "a", "a", "--results-dir", results, "--json", "--permutations", "1000",
                 "--bootstrap", "1000"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(r["difference"] == 0 and r["p_value"] == 1 for r in report["comparisons"])
    assert main(["compare", "a", "b", "--results-dir", results]) == 2
    err = capsys.readouterr().err
    assert "different test splits" in err and err.count("\n") == 1
