"""The published result schema, the limits around it, and results published without local paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from bench.cli.main import main
from bench.errors import BenchError
from bench.evaluation import metric_table
from bench.results.files import read_result, read_results_report, republish, write_result
from bench.results.local_paths import absolute_paths, artifact_path, publishable
from bench.results.schema import published_schema

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "leaderboard" / "results"


def test_the_schema_is_draft_2020_12_and_every_committed_result_follows_it():
    schema = published_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.Draft202012Validator(schema)
    paths = sorted(COMMITTED.glob("*.json"))
    assert paths
    for path in paths:
        result = json.loads(path.read_text(encoding="utf-8"))
        assert not list(validator.iter_errors(result)), path
        assert absolute_paths(result) == [], path  # published: no path of the machine that made it


def test_the_schema_requires_the_metric_tables_required_metrics():
    required = published_schema()["$defs"]["direction_metrics"]["required"]
    for direction in metric_table.DIRECTIONS:
        assert sorted(required) == sorted(m.key for m in metric_table.metrics(direction) if m.required)


def test_the_docs_explain_every_field_and_the_package_ships_the_schema():
    page = (ROOT / "docs" / "result-schema.md").read_text(encoding="utf-8")
    for name in published_schema()["properties"]:
        assert f"| `{name}`" in page or f"`{name}`, " in page, name
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"bench.results" = ["result.schema.json"]' in pyproject and '"jsonschema' in pyproject


@pytest.mark.parametrize("change, fragment", [
    ({"run_id": "../../escaped"}, "run_id '../../escaped' is not allowed"),
    ({"run_id": "a" * 201}, "longer than 200 characters"),
    ({"run_id": "0."}, "run_id '0.' is not allowed"),  # its sidecar would be "0..per_query.npz"
    ({"loss": {"name": "x|y"}}, "loss.name 'x|y' is not allowed"),
    ({"provenance": {"git_commit": "--output=x"}}, "provenance.git_commit"),
    ({"per_query": {"file": "sub/x.npz", "sha256": "0" * 64}}, "per_query.file 'sub/x.npz'"),
    ({"artifacts": {"test_embeddings": "../x.npz"}}, "artifacts.test_embeddings '../x.npz'"),
    ({"seed": "0"}, "seed must be integer"),
    ({"kind": "other"}, "kind 'other' is not one of train, fusion, eval, score"),
])
def test_refusals_are_one_line_naming_the_field(tmp_path, make_result, change, fragment):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**make_result("r"), **change}), encoding="utf-8")
    with pytest.raises(BenchError) as info:
        read_result(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message


def test_size_and_symlink_limits(tmp_path, make_result, monkeypatch):
    import bench.results.files as files

    results, outside = tmp_path / "results", tmp_path / "outside"
    results.mkdir()
    outside.mkdir()
    (outside / "x.json").write_text(json.dumps(make_result("x")), encoding="utf-8")
    (results / "x.json").symlink_to(outside / "x.json")
    (results / "big.json").write_text(json.dumps(make_result("big", padding="y" * 5000)), encoding="utf-8")
    monkeypatch.setattr(files, "MAX_RESULT_BYTES", 4096)
    found, problems = read_results_report(results)
    assert found == []
    assert any("big.json" in p and "over the 4,096-byte limit" in p for p in problems)
    assert any("x.json" in p and "symlink out of the results directory" in p for p in problems)


def test_a_written_result_is_published_without_local_paths(tmp_path, make_result):
    runs, results = tmp_path / "runs", tmp_path / "results"
    root = tmp_path / "data" / "clotho"
    result = make_result("r1", dataset={"roots": {"clotho": str(root)}, "set": {"root": str(root)}},
                         skipped=[{"split": "test", "audio_id": "a", "path": str(root / "a.wav"), "reason": "bad"}],
                         provenance={"argv": ["run", "--runs-dir", str(runs), "--set", f"x.model={tmp_path}/m"]})
    result["artifacts"] = {"run_dir": str(runs / "r1"), "test_embeddings": str(runs / "r1" / "test_embeddings.npz")}
    written = json.loads(write_result(result, results, runs_dir=runs).read_text(encoding="utf-8"))
    assert absolute_paths(written) == []
    assert written["artifacts"] == {"run_dir": "r1", "test_embeddings": "r1/test_embeddings.npz"}
    assert "roots" not in written["dataset"] and written["dataset"]["set"]["root"] == "$DATA_ROOT_CLOTHO"
    assert written["skipped"][0]["path"] == "$DATA_ROOT_CLOTHO/a.wav"
    assert written["provenance"]["argv"][2] == "$RUNS_DIR" and written["provenance"]["argv"][4] == "x.model=…/m"
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "test_embeddings.npz").write_bytes(b"")
    assert artifact_path(written, "test_embeddings", [runs]) == runs / "r1" / "test_embeddings.npz"
    with pytest.raises(BenchError, match="outside the runs directory"):
        artifact_path({"run_id": "r1", "artifacts": {"test_embeddings": "/etc/passwd"}}, "test_embeddings", [runs])


def test_republish_migrates_old_results_once_and_they_still_verify(tmp_path, capsys):
    copy = tmp_path / "leaderboard" / "results"
    shutil.copytree(COMMITTED, copy)
    old = json.loads((copy / sorted(p.name for p in copy.glob("*.json"))[0]).read_text(encoding="utf-8"))
    old["artifacts"] = {"run_dir": f"/tmp/x/runs/{old['run_id']}",
                        "test_embeddings": f"/tmp/x/runs/{old['run_id']}/test_embeddings.npz"}
    old["dataset"]["roots"] = {"synthetic": "/home/someone/.cache/bench/synthetic/abc"}
    path = copy / f"{old['run_id']}.json"
    path.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert republish(copy) == [path]
    migrated = json.loads(path.read_text(encoding="utf-8"))
    assert absolute_paths(migrated) == [] and migrated == publishable(old)
    assert migrated["artifacts"]["test_embeddings"] == f"{old['run_id']}/test_embeddings.npz"
    assert republish(copy) == []  # idempotent
    assert main(["verify", str(copy)]) == 0
    assert "verified (sidecar)" in capsys.readouterr().out


def test_check_refuses_a_committed_result_with_an_absolute_path(tmp_path, make_result, capsys):
    results = tmp_path / "results"
    results.mkdir()
    result = make_result("abs", artifacts={"test_embeddings": "/home/me/runs/abs/test_embeddings.npz"})
    (results / "abs.json").write_text(json.dumps(result), encoding="utf-8")
    out = tmp_path / "board.md"
    assert main(["leaderboard", "--results-dir", str(results), "--output", str(out)]) == 0
    assert main(["leaderboard", "--results-dir", str(results), "--output", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "abs: holds 1 absolute path(s)" in err and "publish_results.py" in err


def test_reproduce_replace_touches_exactly_the_results_own_files(tmp_path, make_result):
    fresh, committed = tmp_path / "fresh", tmp_path / "committed"
    fresh.mkdir()
    committed.mkdir()
    for run_id in ("a", "ab"):
        (committed / f"{run_id}.json").write_text(json.dumps(make_result(run_id, combination=f"c-{run_id}")))
    (fresh / "new.json").write_text(json.dumps(make_result("new", combination="c-a")))
    (fresh / "new-other.json").write_text("not mine")
    assert main(["reproduce", str(fresh / "new.json"), "--against", str(committed), "--replace"]) == 0
    assert sorted(p.name for p in committed.iterdir()) == ["ab.json", "new.json"]  # "a" replaced, "ab" kept
