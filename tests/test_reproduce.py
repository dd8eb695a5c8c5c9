"""Committed results must come from clean trees and from the current code (bench.results.reproduce)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.results.reproduce import (
    code_differs,
    load_pinned,
    matching_committed,
    metric_mismatches,
    provenance_problems,
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "core.py").write_text("x = 1\n")
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "leaderboard" / "README.md").write_text("table\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    return tmp_path


def _result(run_id: str, commit: str | None, dirty: bool = False, **extra) -> dict:
    return {"run_id": run_id, "provenance": {"git_commit": commit, "git_dirty": dirty}, **extra}


@pytest.mark.slow
def test_result_of_current_code_passes_and_docs_only_change_is_fine(repo: Path) -> None:
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "leaderboard" / "README.md").write_text("new table\n")
    _git(repo, "commit", "-qam", "results only")
    assert code_differs(first, repo) is False
    assert provenance_problems([_result("a", first)], repo, {}) == []


@pytest.mark.slow
def test_code_change_after_the_result_is_named(repo: Path) -> None:
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "bench" / "core.py").write_text("x = 2\n")
    _git(repo, "commit", "-qam", "change the code")
    problems = provenance_problems([_result("a", first)], repo, {})
    assert len(problems) == 1 and problems[0].startswith("a: produced by commit") and "pinned.toml" in problems[0]
    # Pinning that commit accepts it.
    assert provenance_problems([_result("a", first)], repo, {first[:7]: "expensive"}) == []


@pytest.mark.slow
def test_dirty_unknown_and_missing_commits_are_refused(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    problems = provenance_problems(
        [_result("dirty", head, dirty=True), _result("nocommit", None), _result("foreign", "f" * 40)], repo,
        {head: "x"})
    assert [p.split(":")[0] for p in problems] == ["dirty", "nocommit", "foreign"]
    assert "uncommitted" in problems[0] and "unknown" in problems[1] and "history" in problems[2]


@pytest.mark.slow
def test_fusion_checks_its_members_commits(repo: Path) -> None:
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "bench" / "core.py").write_text("x = 3\n")
    _git(repo, "commit", "-qam", "change")
    head = _git(repo, "rev-parse", "HEAD")
    fusion = {"run_id": "f", "kind": "fusion", "provenance": {"git_commit": head, "git_dirty": False,
                                                               "fused_from": [head, first]}}
    assert len(provenance_problems([fusion], repo, {})) == 1


def test_metric_mismatch_names_metric_and_both_values() -> None:
    old = {"metrics": {"t2a": {"mAP@10": 0.7018, "R@1": 0.558}}, "best_val": {"epoch": 8}, "chance": {}}
    new = {"metrics": {"t2a": {"mAP@10": 0.6984, "R@1": 0.558}}, "best_val": {"epoch": 8}, "chance": {}}
    assert metric_mismatches(new, old) == ["metrics.t2a.mAP@10: committed 0.7018, new 0.6984"]
    assert metric_mismatches(old, old) == []


def test_matching_committed_by_combination_and_seed() -> None:
    committed = [{"run_id": "1", "combination": "c", "seed": 0}, {"run_id": "2", "combination": "c", "seed": 1},
                 {"run_id": "3", "combination": "d", "seed": 0}]
    assert matching_committed({"combination": "c", "seed": 1}, committed)["run_id"] == "2"
    assert matching_committed({"combination": "e", "seed": 0}, committed) is None


def test_pinned_file(tmp_path: Path) -> None:
    assert load_pinned(tmp_path / "missing.toml") == {}
    path = tmp_path / "pinned.toml"
    path.write_text('[commits]\nabc1234 = "loss comparison"\n')
    assert load_pinned(path) == {"abc1234": "loss comparison"}
    path.write_text("[commits\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pinned(path)
