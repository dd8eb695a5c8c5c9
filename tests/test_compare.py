"""bench compare: paired differences with CI and p-value, seed groups, Holm, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import make_run

from bench.cli.main import main
from bench.errors import ConfigError, DataError
from bench.results.compare import compare, load_systems, not_significantly_worse, render, resolve_system

FAST = ["--permutations", "1000", "--bootstrap", "1000"]


def systems(tmp_path, *specs):
    out = [resolve_system(spec, tmp_path / "results") for spec in specs]
    load_systems(out)
    return out


def test_two_runs_difference_ci_and_p(tmp_path, make_result):
    good = make_run(tmp_path, "good", make_result(), noise=0.5)
    bad = make_run(tmp_path, "bad", make_result(), noise=3.0, seed=1)
    report = compare(systems(tmp_path, "good", "bad"), n_permutations=1000, n_bootstrap=1000, t_test=True)
    rows = {(r["direction"], r["metric"]): r for r in report["comparisons"]}
    row = rows[("t2a", "mAP@10")]
    claimed_good = json.loads(good.read_text())["metrics"]["t2a"]["mAP@10"]
    claimed_bad = json.loads(bad.read_text())["metrics"]["t2a"]["mAP@10"]
    assert row["a_value"] == pytest.approx(claimed_good) and row["b_value"] == pytest.approx(claimed_bad)
    assert row["difference"] == pytest.approx(claimed_good - claimed_bad)
    assert 0 < row["low"] < row["difference"] < row["high"]
    assert row["p_value"] < 0.01 and row["significant"] and row["t_p_value"] < 0.01
    assert report["correction"] == "none" and row["p_adjusted"] == row["p_value"]
    table = render(report)
    assert "paired randomisation test" in table and "alpha = 0.05" in table and "t2a mAP@10" in table


def test_run_against_itself_is_zero_with_p_one(tmp_path, make_result, capsys):
    make_run(tmp_path, "a", make_result())
    assert main(["compare", "a", "a", "--results-dir", str(tmp_path / "results"), "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    outcomes = {(r["difference"], r["low"], r["high"], r["p_value"]) for r in report["comparisons"]}
    assert outcomes == {(0.0, 0.0, 0.0, 1.0)}


def test_seed_groups_by_combination_and_holm_for_three_systems(tmp_path, make_result):
    for s in range(3):
        make_run(tmp_path, f"distill-s{s}", make_result(), noise=0.8, seed=s, combination="42bf37f128a8")
        make_run(tmp_path, f"ntxent-s{s}", make_result(), noise=1.2, seed=10 + s, combination="edf9af6b8bc9")
    make_run(tmp_path, "single", make_result(), noise=1.0, seed=99)
    found = systems(tmp_path, "42bf37", "edf9af", "single")
    assert [len(s.runs) for s in found] == [3, 3, 1]
    report = compare(found, (("t2a", "mAP@10"),), n_permutations=1000, n_bootstrap=1000)
    assert report["correction"] == "holm"
    rows = [r for r in report["comparisons"] if (r["direction"], r["metric"]) == ("t2a", "mAP@10")]
    assert len(rows) == 3 and all(r["p_adjusted"] >= r["p_value"] for r in rows)
    seed_maps = [json.loads((tmp_path / "results" / f"distill-s{s}.json").read_text())["metrics"]["t2a"]["mAP@10"]
                 for s in range(3)]
    assert rows[0]["a_value"] == pytest.approx(np.mean(seed_maps))


def test_comma_group_and_embeddings_fallback(tmp_path, make_result):
    make_run(tmp_path, "a0", make_result(), seed=0, sidecar=False)
    make_run(tmp_path, "a1", make_result(), seed=1, sidecar=False)
    make_run(tmp_path, "b", make_result(), seed=2)
    found = systems(tmp_path, "a0,a1", str(tmp_path / "results" / "b.json"))
    assert found[0].run_ids == ["a0", "a1"] and len(found[0].outcomes) == 2


def test_different_splits_are_refused_with_one_line(tmp_path, make_result, capsys):
    make_run(tmp_path, "a", make_result())
    make_run(tmp_path, "b", make_result(), fingerprint="fp-other")
    with pytest.raises(ConfigError, match="different test splits"):
        systems(tmp_path, "a", "b")
    assert main(["compare", "a", "b", "--results-dir", str(tmp_path / "results"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different test splits" in err


def test_unknown_system_and_missing_evidence(tmp_path, make_result):
    make_run(tmp_path, "a", make_result(), sidecar=False)
    with pytest.raises(ConfigError, match="neither a result file"):
        resolve_system("nope", tmp_path / "results")
    path = tmp_path / "results" / "a.json"
    result = json.loads(path.read_text())
    result["artifacts"] = {}
    path.write_text(json.dumps(result))
    with pytest.raises(DataError, match="no per-query sidecar and no test embeddings"):
        systems(tmp_path, "a", "a")


def test_systems_not_significantly_worse_than_the_best(tmp_path, make_result):
    make_run(tmp_path, "best", make_result(), noise=0.5)
    make_run(tmp_path, "twin", make_result(), noise=0.5, seed=0)  # same embeddings as best: p = 1
    make_run(tmp_path, "bad", make_result(), noise=3.0, seed=1)
    found = systems(tmp_path, "bad", "best", "twin")
    assert not_significantly_worse(found, n_permutations=1000) == ["best", "twin"]


def test_results_from_one_long_directory_get_labels_that_differ(tmp_path, make_result, capsys):
    """Given as paths, two systems share any prefix of the path; their labels say what differs."""
    deep = tmp_path / ("a-very-long-directory-name-" * 3) / "results"
    deep.mkdir(parents=True)
    first = make_run(tmp_path, "20260101-000000-synthetic-cnn-minilm-ntxent-s0-aaaaaa", make_result(), noise=0.5)
    second = make_run(tmp_path, "20260101-000000-synthetic-cnn-minilm-triplet-s0-bbbbbb",
                      make_result(loss={"name": "triplet", "set": {"margin": 0.2}}), noise=1.5)
    paths = []
    for path in (first, second):
        target = deep / path.name
        target.write_text(path.read_text())
        sidecar = path.with_name(path.stem + ".per_query.npz")
        (deep / sidecar.name).write_bytes(sidecar.read_bytes())
        paths.append(str(target))
    assert main(["compare", *paths, "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in report["systems"]]
    assert names == ["loss=ntxent", "loss=triplet, triplet.margin=0.2"]
    assert {(r["a"], r["b"]) for r in report["comparisons"]} == {tuple(names)}
    assert [s["spec"] for s in report["systems"]] == paths
    assert main(["compare", *paths, *FAST]) == 0
    table = capsys.readouterr().out
    assert "loss=triplet, triplet.margin=0.2" in table and "..." not in table


def test_identical_setups_fall_back_to_their_file_names(tmp_path, make_result, capsys):
    make_run(tmp_path, "run-one", make_result(), noise=0.5)
    make_run(tmp_path, "run-two", make_result(), noise=0.7)
    results = str(tmp_path / "results")
    assert main(["compare", "run-one", "run-two", "run-one", "--results-dir", results, "--json", *FAST]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)["systems"]]
    assert names == ["run-one", "run-two", "run-one #2"]


def test_distillation_systems_are_told_apart_by_their_teacher_count():
    from bench.results.labels import system_labels
    from tests.conftest import build_result

    ntxent = build_result("n0")
    def distill(run_id: str, m: int) -> dict:
        return build_result(run_id, loss={"name": "distill"}, replace={"stage": {"stage": 2, "M": m}})

    m3, m1 = distill("d3", 3), distill("d1", 1)
    labels = system_labels([[(r, Path(f"{r['run_id']}.json"))] for r in (ntxent, m3, m1)])
    assert labels == ["loss=ntxent", "loss=distill, stage=2, M=3", "loss=distill, stage=2, M=1"]
