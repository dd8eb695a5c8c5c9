"""The three attacks of issue 24 on `bench leaderboard`, as an attacker would try them.

Each failed on the code before the fix (checked by running this file against it): a run id that
climbs out of the site directory, markup in a component name that broke the committed table, and a
site build for other results that rewrote the committed leaderboard/README.md.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from bench.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def _result(make_result, run_id: str, **changes) -> dict:
    return make_result(run_id, provenance={"bench_version": "0.1.0", "device": "cpu"}, **changes)


def test_a_run_id_that_climbs_out_writes_nothing_outside_the_site(tmp_path, make_result, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "evil.json").write_text(json.dumps(_result(make_result, "../../escaped-x")), encoding="utf-8")
    (results / "good.json").write_text(json.dumps(_result(make_result, "good")), encoding="utf-8")
    site = tmp_path / "SITE" / "public"
    assert main(["leaderboard", "--results-dir", str(results), "--html", str(site)]) == 0
    err = capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped-x*"))
    assert sorted(p.name for p in (site / "runs").iterdir()) == ["good.html"]
    assert [line for line in err.splitlines() if "evil.json" in line and "run_id" in line]


def test_markup_in_a_component_name_cannot_break_the_table(tmp_path, make_result, capsys):
    results = tmp_path / "results"
    results.mkdir()
    injected = "<img src=x onerror=alert(1)>|md|"
    (results / "evil.json").write_text(json.dumps(_result(make_result, "evil", audio_encoder={"name": injected})),
                                       encoding="utf-8")
    (results / "good.json").write_text(json.dumps(_result(make_result, "good")), encoding="utf-8")
    out = tmp_path / "README.md"
    assert main(["leaderboard", "--results-dir", str(results), "--output", str(out)]) == 0
    markdown = out.read_text(encoding="utf-8")
    assert "<img" not in markdown
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    widths = {len(re.findall(r"(?<!\\)\|", line)) for line in table}
    assert len(widths) == 1  # every row has the header's columns: no cell was split
    assert sum(line.startswith("| cnn ") for line in table) == 1  # the good row; the evil file is refused
    assert "evil.json" in capsys.readouterr().err


def test_a_site_for_other_results_leaves_the_committed_table_alone(tmp_path, make_result, monkeypatch, capsys):
    shutil.copytree(ROOT / "leaderboard", tmp_path / "leaderboard")
    committed = (tmp_path / "leaderboard" / "README.md").read_bytes()
    other = tmp_path / "OTHER"
    other.mkdir()
    (other / "mine.json").write_text(json.dumps(_result(make_result, "mine")), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard", "--results-dir", str(other), "--html", str(tmp_path / "DIR")]) == 0
    assert (tmp_path / "leaderboard" / "README.md").read_bytes() == committed
    assert (tmp_path / "DIR" / "runs" / "mine.html").is_file()
    # Other results without --output: the table is printed, the committed file still untouched.
    assert main(["leaderboard", "--results-dir", str(other)]) == 0
    assert "| cnn " in capsys.readouterr().out
    assert (tmp_path / "leaderboard" / "README.md").read_bytes() == committed
    # The committed results alone still write the committed table (what `make leaderboard` does).
    (tmp_path / "leaderboard" / "README.md").write_text("stale\n", encoding="utf-8")
    assert main(["leaderboard"]) == 0
    assert (tmp_path / "leaderboard" / "README.md").read_bytes() == committed
