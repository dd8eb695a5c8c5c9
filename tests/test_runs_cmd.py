"""``bench runs`` and ``bench runs clean`` (issue 17, item 5): what finished runs keep on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.runs.retention import apply_retention, human_size, policy_of, removable, run_summary


def make_run(runs: Path, run_id: str, *, finished: bool, keep: str | None = "best", t2a: float = 0.5,
             files: tuple[str, ...] = ("best.pt", "last.pt")) -> Path:
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    train = {"epochs": 2} if keep is None else {"epochs": 2, "keep": keep}
    (run_dir / "config.json").write_text(json.dumps({"config": {"train": train}, "seed": 0}))
    for name in files:
        (run_dir / name).write_bytes(b"x" * (3000 if name == "last.pt" else 1000))
    if finished:
        (run_dir / "result.json").write_text(json.dumps({"metrics": {"t2a": {"mAP@10": t2a}}}))
    return run_dir


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "a-finished", finished=True, t2a=0.7018)
    make_run(runs, "b-unfinished", finished=False)
    make_run(runs, "c-old-no-keep", finished=True, keep=None)
    make_run(runs, "d-keep-all", finished=True, keep="all")
    (runs / "results").mkdir()  # results live under runs/ by default: not a run directory
    return runs


def test_policies_of_finished_and_unfinished_runs(runs):
    assert removable(runs / "a-finished") == [runs / "a-finished" / "last.pt"]
    assert removable(runs / "b-unfinished", "none") == []  # --resume needs last.pt
    assert policy_of(runs / "c-old-no-keep") == "best"  # runs from before the setting
    assert removable(runs / "d-keep-all") == []
    assert removable(runs / "d-keep-all", "none") == [runs / "d-keep-all" / "best.pt", runs / "d-keep-all" / "last.pt"]
    assert removable(runs / "a-finished", "last") == [runs / "a-finished" / "best.pt"]


def test_apply_retention_removes_and_reports(runs):
    removed = apply_retention(runs / "a-finished", "best")
    assert removed == [(runs / "a-finished" / "last.pt", 3000)]
    assert (runs / "a-finished" / "best.pt").is_file() and not (runs / "a-finished" / "last.pt").exists()
    assert apply_retention(runs / "b-unfinished", "none") == []


def test_bench_runs_lists_size_status_and_result(runs, capsys):
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["run", "status", "size", "checkpoints", "test", "t2a", "mAP@10"]
    rows = {line.split()[0]: line for line in out[1:-1]}
    assert sorted(rows) == ["a-finished", "b-unfinished", "c-old-no-keep", "d-keep-all"]
    assert "finished" in rows["a-finished"] and "70.18" in rows["a-finished"] and " 4.1 KB " in rows["a-finished"]
    assert "unfinished (resumable)" in rows["b-unfinished"] and rows["b-unfinished"].rstrip().endswith("-")
    assert out[-1].startswith("4 runs, ")


def test_clean_dry_run_lists_and_removes_nothing(runs, capsys):
    before = sorted(p for p in runs.rglob("*") if p.is_file())
    assert main(["runs", "clean", "--dry-run", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"would remove {runs / 'a-finished' / 'last.pt'} (3.0 KB, train.keep=best)",
                   f"would remove {runs / 'c-old-no-keep' / 'last.pt'} (3.0 KB, train.keep=best)",
                   f"would free 6.0 KB (2 files) in {runs}; run without --dry-run to remove them"]
    assert sorted(p for p in runs.rglob("*") if p.is_file()) == before


def test_clean_removes_what_the_policy_says(runs, capsys):
    assert main(["runs", "clean", "--keep", "none", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert out.count("removed ") == 6 and "freed 12.0 KB (6 files)" in out
    assert sorted(p.name for p in (runs / "b-unfinished").iterdir()) == ["best.pt", "config.json", "last.pt"]
    assert not list((runs / "a-finished").glob("*.pt")) and (runs / "a-finished" / "result.json").is_file()


def test_missing_runs_dir_is_one_line(tmp_path, capsys):
    assert main(["runs", "--runs-dir", str(tmp_path / "nope")]) == 2
    assert "no runs directory here" in capsys.readouterr().err


def test_human_sizes():
    assert human_size(0) == "0 B" and human_size(346_000_000) == "346.0 MB" and human_size(1.04e9) == "1.0 GB"


def test_summary_of_an_unreadable_result(tmp_path):
    run_dir = make_run(tmp_path, "r", finished=True)
    (run_dir / "result.json").write_text("{")
    assert run_summary(run_dir)["status"] == "finished (unreadable result.json)"
