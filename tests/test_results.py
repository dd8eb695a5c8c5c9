"""bench.results.files: the write/read round trip, immutability, atomicity and errors that name the file."""

from __future__ import annotations

import json
import os

import pytest

from bench.errors import BenchError
from bench.results.files import (
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    atomic_write_text,
    find_result,
    read_result,
    read_results,
    write_result,
)


def test_round_trip(tmp_path, make_result):
    result = make_result("run-1", t2a_map=0.28934)
    path = write_result(result, tmp_path)
    assert path == tmp_path / "run-1.json"
    assert read_result(path) == result


def test_write_fills_version_and_time(tmp_path, make_result):
    result = make_result("run-1")
    del result["schema_version"], result["created"]
    back = read_result(write_result(result, tmp_path))
    assert back["schema_version"] == SCHEMA_VERSION
    assert back["created"].endswith("+00:00")
    assert "schema_version" not in result  # the caller's dict is not modified


def test_write_is_deterministic_text(tmp_path, make_result):
    # Sorted keys and a trailing newline: the same result is the same bytes.
    result = make_result("run-1")
    a = write_result(result, tmp_path / "a").read_bytes()
    b = write_result(dict(reversed(list(result.items()))), tmp_path / "b").read_bytes()
    assert a == b
    assert a.endswith(b"}\n")


def test_existing_result_never_overwritten(tmp_path, make_result):
    path = write_result(make_result("run-1", t2a_map=0.3), tmp_path)
    before = path.read_bytes()
    with pytest.raises(BenchError, match="already exists") as info:
        write_result(make_result("run-1", t2a_map=0.9), tmp_path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_no_temp_files_left(tmp_path, make_result):
    for index in range(3):
        write_result(make_result(f"run-{index}"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-0.json", "run-1.json", "run-2.json"]


def test_atomic_write_cleans_up_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_invalid_result_is_not_written(tmp_path, make_result):
    result = make_result("run-1")
    del result["metrics"]
    with pytest.raises(BenchError, match="'metrics'"):
        write_result(result, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.1"])
def test_unknown_major_version_refused(tmp_path, make_result, version):
    path = tmp_path / "future.json"
    path.write_text(json.dumps(make_result("future", schema_version=version)))
    with pytest.raises(BenchError) as info:
        read_result(path)
    message = str(info.value)
    assert str(path) in message
    assert version in message
    assert "1.x" in message


def test_newer_minor_version_accepted(tmp_path, make_result):
    path = tmp_path / "minor.json"
    result = make_result("minor", schema_version="1.7", extra_field={"new": True})
    path.write_text(json.dumps(result))
    assert read_result(path) == result


@pytest.mark.parametrize("version", [None, "", "v1", "one"])
def test_malformed_version_refused(tmp_path, make_result, version):
    result = make_result("bad")
    if version is None:
        del result["schema_version"]
    else:
        result["schema_version"] = version
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(result))
    with pytest.raises(BenchError, match="schema_version") as info:
        read_result(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("field", [f for f in REQUIRED_FIELDS if f != "schema_version"])
def test_missing_field_named(tmp_path, make_result, field):
    result = make_result("partial")
    del result[field]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(result))
    with pytest.raises(BenchError) as info:
        read_result(path)
    message = str(info.value)
    assert str(path) in message
    assert repr(field) in message


@pytest.mark.parametrize("text", ['{"run_id": "x",', "", "not json", '[1, 2]'])
def test_malformed_json_names_file(tmp_path, text):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(BenchError) as info:
        read_result(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_missing_file_names_file(tmp_path):
    with pytest.raises(BenchError) as info:
        read_result(tmp_path / "absent.json")
    assert "absent.json" in str(info.value)


def test_read_results_sorted_and_strict(tmp_path, make_result):
    for run_id in ("b", "c", "a"):
        write_result(make_result(run_id), tmp_path)
    (tmp_path / "notes.txt").write_text("ignored: not a result")
    assert [r["run_id"] for r in read_results(tmp_path)] == ["a", "b", "c"]
    assert read_results(tmp_path / "missing") == []
    (tmp_path / "d.json").write_text("{")
    with pytest.raises(BenchError, match="d.json"):
        read_results(tmp_path)


def test_find_result(tmp_path, make_result):
    write_result(make_result("known-run"), tmp_path)
    assert find_result("known-run", tmp_path)["run_id"] == "known-run"
    with pytest.raises(BenchError) as info:
        find_result("other-run", tmp_path)
    message = str(info.value)
    assert "'other-run'" in message and "known-run" in message and "--results-dir" in message
