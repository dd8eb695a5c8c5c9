"""bench verify: a consistent result verifies; a result edited by one digit does not."""

from __future__ import annotations

import json

import pytest
from synthetic_runs import make_run

from bench.cli.main import main
from bench.errors import DataError
from bench.results.verify import verify, verify_dir


def test_consistent_result_verifies_from_embeddings_and_sidecar(tmp_path, make_result):
    path = make_run(tmp_path, "run-a", make_result())
    v = verify(path)
    assert v.ok and v.message == "run-a.json: verified (embeddings, chance, sidecar)"


def _edit_one_digit(path, direction="t2a", key="mAP@10"):
    result = json.loads(path.read_text())
    text = repr(result["metrics"][direction][key])
    i = max(i for i, c in enumerate(text) if c.isdigit() and c != "0")  # last non-zero digit
    edited = text[:i] + str(int(text[i]) - 1) + text[i + 1:]
    result["metrics"][direction][key] = float(edited)
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return text, edited


@pytest.mark.parametrize("direction", ["t2a", "a2t"])
def test_map_edited_by_one_digit_fails_with_one_line(tmp_path, make_result, direction):
    path = make_run(tmp_path, "run-a", make_result())
    _edit_one_digit(path, direction)
    v = verify(path)
    assert not v.ok
    assert "\n" not in v.message and f"metrics.{direction}['mAP@10']" in v.message
    assert "test_embeddings.npz" in v.message  # the first source checked finds it


def test_sidecar_alone_catches_the_edit_too(tmp_path, make_result):
    path = make_run(tmp_path, "run-a", make_result())
    result = json.loads(path.read_text())
    del result["artifacts"]
    path.write_text(json.dumps(result))
    assert verify(path).message == "run-a.json: verified (sidecar)"
    _edit_one_digit(path)
    v = verify(path)
    assert not v.ok and "per-query sidecar" in v.message


def test_tampered_sidecar_is_named(tmp_path, make_result):
    path = make_run(tmp_path, "run-a", make_result())
    side = tmp_path / "results" / "run-a.per_query.npz"
    side.write_bytes(side.read_bytes()[:-10])
    with pytest.raises(DataError, match="run-a.per_query.npz.*sha256"):
        verify(path)


def test_wrong_embeddings_split_is_reported(tmp_path, make_result):
    path = make_run(tmp_path, "run-a", make_result(), sidecar=False)
    other = make_run(tmp_path, "run-b", make_result(), fingerprint="fp-other", sidecar=False)
    emb = tmp_path / "runs" / "run-b" / "test_embeddings.npz"
    v = verify(path, emb)
    assert not v.ok and "holds split fp-other" in v.message
    assert verify(other).ok


def test_directory_lists_results_without_evidence(tmp_path, make_result, capsys):
    make_run(tmp_path, "run-a", make_result())
    bare = make_result("run-bare")
    (tmp_path / "results" / "run-bare.json").write_text(json.dumps(bare))
    done, without = verify_dir(tmp_path / "results")
    assert [v.ok for v in done] == [True] and [p.name for p in without] == ["run-bare.json"]
    assert main(["verify", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and "1 result(s) without embeddings or sidecar: run-bare.json" in out
    assert main(["verify", str(tmp_path / "results" / "run-bare.json")]) == 2
    assert "nothing to verify against" in capsys.readouterr().err
