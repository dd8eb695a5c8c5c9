"""bench leaderboard --html: the static site's files, determinism, --check, skipped results, run pages."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.errors import BenchError
from bench.leaderboard import site as leaderboard_html
from bench.leaderboard import tables as leaderboard
from bench.leaderboard.run_page import reproduce_command
from bench.results.files import write_result
from tests.conftest import build_result

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboard" / "results"


def visible_rows(page: str, view: str = "agg") -> list[str]:
    return re.findall(rf'<tr class="row" data-view="{view}"[^>]*>(.*?)</tr>', page)


@pytest.fixture(scope="module")
def committed_site(tmp_path_factory) -> tuple[Path, list[Path]]:
    site = tmp_path_factory.mktemp("site")
    written, warnings = leaderboard_html.write_site(COMMITTED, site)
    assert warnings == []
    return site, written


def test_site_for_the_committed_results_has_index_benchmark_runs_and_assets(committed_site):
    site, _ = committed_site
    n_results = len(list(COMMITTED.glob("*.json")))
    assert {p.name for p in site.iterdir()} >= {"index.html", "style.css", "app.js", "runs"}
    assert len(list((site / "runs").glob("*.html"))) == n_results
    index = (site / "index.html").read_text(encoding="utf-8")
    pages = re.findall(r'<a href="([^"/]+\.html)">', index)
    assert pages == ["synthetic-5ad84006.html"]
    board = (site / pages[0]).read_text(encoding="utf-8")
    # Self-contained: relative links only, no CDN, no inline third-party script.
    assert "http://" not in board and "https://" not in board
    assert '<script src="app.js">' in board and 'href="style.css"' in board
    # Every result is an individual row; every combination one aggregated row; every run page linked.
    assert len(visible_rows(board, "run")) == n_results
    assert len(visible_rows(board, "agg")) == 9
    for path in (site / "runs").glob("*.html"):
        assert f'href="runs/{path.name}"' in board
    # Filters offer what the rows hold.
    assert re.findall(r'<select id="board-kind" data-filter="kind">(.*?)</select>', board)[0].count("<option") == 3
    assert 'value="triplet (negatives=hard)"' in board


def test_same_results_give_byte_identical_files_and_check_passes(committed_site, tmp_path):
    site, _ = committed_site
    second = tmp_path / "again"
    leaderboard_html.write_site(COMMITTED, second)
    for path in site.rglob("*"):
        if path.is_file():
            assert (second / path.relative_to(site)).read_bytes() == path.read_bytes(), path
    leaderboard_html.check_site(COMMITTED, site)
    written, _ = leaderboard_html.write_site(COMMITTED, second)
    assert written == []  # nothing changed, nothing rewritten


def test_check_names_a_stale_page_and_a_page_left_from_a_removed_run(tmp_path):
    results = tmp_path / "results"
    write_result(build_result("run-a", t2a_map=0.3), results)
    write_result(build_result("run-b", t2a_map=0.2, combination="other"), results)
    site = tmp_path / "site"
    leaderboard_html.write_site(results, site)
    (results / "run-b.json").unlink()
    with pytest.raises(BenchError, match=r"site/.* is stale .*bench leaderboard --html"):
        leaderboard_html.check_site(results, site)
    leaderboard_html.write_site(results, site)
    assert not (site / "runs" / "run-b.html").exists()  # removed with its result
    leaderboard_html.check_site(results, site)
    (site / "index.html").write_text("edited by hand", encoding="utf-8")
    with pytest.raises(BenchError, match="index.html is stale"):
        leaderboard_html.check_site(results, site)


def test_unreadable_or_unknown_schema_results_are_named_and_skipped(tmp_path, capsys):
    results = tmp_path / "results"
    write_result(build_result("run-a", t2a_map=0.3), results)
    (results / "future.json").write_text(json.dumps({**build_result("future"), "schema_version": "9.0"}))
    (results / "broken.json").write_text("{not json")
    site = tmp_path / "site"
    code = main(["leaderboard", "--results-dir", str(results), "--output", str(tmp_path / "README.md"),
                 "--html", str(site)])
    err = capsys.readouterr().err.splitlines()
    site_warnings = [line for line in err if line.startswith("warning: the site skips")]
    assert len(site_warnings) == 2
    assert "broken.json: cannot read result" in site_warnings[0]
    assert "future.json: schema_version 9.0" in site_warnings[1]
    assert code in (0, 1)  # the markdown's own rules for bad files; the site is built either way
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Skipped result files" in index and "future.json" in index
    assert (site / "runs" / "run-a.html").is_file()


def test_cli_html_check_fails_when_stale_and_passes_when_current(tmp_path, capsys):
    results = tmp_path / "results"
    write_result(build_result("run-a"), results)
    args = ["leaderboard", "--results-dir", str(results), "--output", str(tmp_path / "README.md")]
    assert main([*args, "--html", str(tmp_path / "site")]) == 0
    capsys.readouterr()
    main([*args, "--html", str(tmp_path / "site"), "--check"])  # the markdown check has its own rules (provenance)
    assert f"{tmp_path / 'site'} is current" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "site" / "runs")
    assert main([*args, "--html", str(tmp_path / "site"), "--check"]) == 1
    assert "run-a.html is stale" in capsys.readouterr().err


def test_kinds_and_cis_and_significance_from_per_query_sidecars(tmp_path):
    from tests.test_leaderboard_honest import outcomes, with_sidecar

    results = tmp_path / "results"
    with_sidecar(results, build_result("run-a"), outcomes(0.6, seed=1, n_audios=20))
    for seed in (0, 1):
        with_sidecar(results, build_result(f"run-b{seed}", seed=seed, combination="b"),
                     outcomes(0.2, seed=5 + seed, n_audios=20))
    write_result(build_result("run-z", t2a_map=0.1, kind="eval", combination="zs",
                              eval={"zero_shot": True, "trained_on": None, "run_id": None, "model": "clap"}), results)
    leaderboard_html.write_site(results, tmp_path / "site")
    board = next((tmp_path / "site").glob("synthetic-*.html")).read_text(encoding="utf-8")
    kinds = {re.search(r"runs/([\w-]+)\.html", cells).group(1): kind for kind, cells in
             re.findall(r'<tr class="row" data-view="run"[^>]*data-kind="([^"]+)"[^>]*>(.*?)</tr>', board)}
    assert kinds == {"run-a": "trained", "run-b0": "trained", "run-b1": "trained", "run-z": "zero-shot"}
    # The markdown's CIs and bold cells, from the same annotate(): compare the two renderings.
    markdown = leaderboard.render_dir(results)[0]
    best_md = re.search(r"\| \*\*(\d+\.\d\d) \[(\d+\.\d\d), (\d+\.\d\d)\]\*\* \|", markdown)
    agg = visible_rows(board, "agg")
    assert f"<strong>{best_md.group(1)}</strong><span class=\"ci\">[{best_md.group(2)}, {best_md.group(3)}]" in agg[0]
    assert agg[1].count('class="ci"') == 5 and "<strong>" not in agg[1]  # the 2-seed row: CIs, not the best
    seed_rows = [r for r in visible_rows(board, "run") if "run-b" in r]
    assert len(seed_rows) == 2 and all(r.count('class="ci"') == 5 for r in seed_rows)
    assert "no ci" not in board.lower() and "not significantly worse than the best row" in board


def test_run_page_has_config_provenance_curves_and_command(tmp_path):
    history = [{"epoch": e, "train_loss": 3.0 / e, "lr": [1e-3], "val": {"t2a": {"mAP@10": 0.1 * e}}}
               for e in (1, 2, 3)]
    result = build_result("run-a", history=history, seed=2, training={"epochs": 3, "batch_size": 32},
                          loss={"name": "triplet", "set": {"negatives": "hard"}},
                          provenance={"git_commit": "abc123", "python": "3.11.7"})
    results = tmp_path / "results"
    write_result(result, results)
    leaderboard_html.write_site(results, tmp_path / "site")
    run_page = (tmp_path / "site" / "runs" / "run-a.html").read_text(encoding="utf-8")
    assert run_page.count("<svg") == 2 and run_page.count("<circle") == 6
    command = reproduce_command(result)
    assert command.startswith("git checkout abc123\nbench run --dataset synthetic --encoder cnn")
    assert "--seed 2" in command and "--set triplet.negatives=hard" in command
    assert "--set train.epochs=3" in command and "--set train.batch_size=32" in command
    assert "bench run --dataset synthetic" in run_page and "3.11.7" in run_page and "abc123" in run_page
    assert '"history"' not in run_page  # the full config leaves the (plotted) history out


def test_reproduce_command_of_a_fusion_is_bench_fuse():
    fusion = {"method": "rrf", "runs": ["a", "b"], "weights": [1.0, 1.0], "k": 60}
    result = build_result("f", kind="fusion", fusion=fusion)
    assert reproduce_command(result).endswith("bench fuse a b --method rrf --k 60")
