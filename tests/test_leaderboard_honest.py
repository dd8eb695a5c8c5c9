"""An honest leaderboard: CIs and significance from per-query sidecars, provenance marks, training
budgets, unreadable results listed (not fatal), eval rows and protocols in their own tables."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from bench.cli.main import main
from bench.errors import BenchError
from bench.evaluation import per_query
from bench.leaderboard import tables as leaderboard
from bench.leaderboard.significance import CI_SEED
from bench.results import stats
from bench.results.files import read_results_report, write_result
from tests.test_leaderboard import only_table, tables

N_AUDIOS, PER_AUDIO = 100, 5  # 500 captions: big enough for no small-split warning, fast tests


def outcomes(quality: float, seed: int, n_audios: int = N_AUDIOS) -> per_query.Outcomes:
    """Plausible per-query outcomes: captions of a better system rank their recording higher."""
    rng = np.random.default_rng(seed)
    n_captions = n_audios * PER_AUDIO
    good = rng.random(n_captions) < quality
    ranks = np.where(good, 1, rng.integers(2, n_audios + 1, n_captions))
    first = np.where(rng.random(n_audios) < quality, 1, rng.integers(2, 30, n_audios))
    ap = np.where(first <= 10, 1.0 / first, 0.0) * rng.uniform(0.5, 1.0, n_audios)
    ap[first == 1] = np.maximum(ap[first == 1], 0.2)
    audio_of_caption = np.repeat(np.arange(n_audios), PER_AUDIO)
    return per_query.Outcomes(ranks.astype(np.int64), first.astype(np.int64), ap, np.array(
        [f"a{i:04d}" for i in range(n_audios)]), audio_of_caption, per_query.caption_slots(audio_of_caption, n_audios),
        "fp-test")


def with_sidecar(results_dir: Path, result: dict, found: per_query.Outcomes) -> dict:
    """Write ``result`` with its sidecar, its metrics those the sidecar reduces to (as a run does)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    sidecar = results_dir / f"{result['run_id']}{per_query.SIDECAR_SUFFIX}"
    result = dict(result, per_query=per_query.sidecar_entry(sidecar, per_query.write_sidecar(sidecar, found)))
    result["metrics"] = per_query.reduce(found)
    write_result(result, results_dir)
    return result


def rows_of(results_dir: Path) -> list[dict[str, str]]:
    markdown, _, _ = leaderboard.render_dir(results_dir)
    return only_table(markdown)


CI_CELL = re.compile(r"^(\*\*)?(\d+\.\d\d) \[(\d+\.\d\d), (\d+\.\d\d)\](\*\*)?$")


# -- confidence intervals --------------------------------------------------------------------------
def test_ci_cells_from_sidecars_match_stats_and_are_byte_identical(tmp_path, make_result):
    found = outcomes(0.5, seed=1)
    with_sidecar(tmp_path / "r", make_result("one"), found)
    first, _, _ = leaderboard.render_dir(tmp_path / "r")
    assert leaderboard.render_dir(tmp_path / "r")[0] == first
    (row, chance) = only_table(first)
    expected = stats.metric_cis([found], seed=CI_SEED)["t2a"]["mAP@10"]
    cell = CI_CELL.match(row["t2a mAP@10"])
    assert cell, row["t2a mAP@10"]
    assert cell.group(3, 4) == (f"{expected['low'] * 100:.2f}", f"{expected['high'] * 100:.2f}")
    assert float(cell.group(3)) < float(cell.group(2)) < float(cell.group(4))
    assert all(CI_CELL.match(row[c]) for c in ("t2a R@1", "t2a R@5", "t2a R@10", "a2t mAP@10"))
    assert "[" not in chance["t2a mAP@10"]


def test_seed_group_ci_includes_seed_spread(tmp_path, make_result):
    group = [outcomes(q, seed=s) for s, q in enumerate((0.45, 0.5, 0.55))]
    for seed, found in enumerate(group):
        with_sidecar(tmp_path / "r", make_result(f"s{seed}", seed=seed, combination="same"), found)
    (row, _chance) = rows_of(tmp_path / "r")
    assert row["Seeds"] == "3" and "±" not in row["t2a mAP@10"]
    cell = CI_CELL.match(row["t2a mAP@10"])
    combined = stats.metric_cis(group, seed=CI_SEED)["t2a"]["mAP@10"]
    assert cell.group(3, 4) == (f"{combined['low'] * 100:.2f}", f"{combined['high'] * 100:.2f}")
    assert combined["low"] < combined["query_low"]  # the seed spread widens the query interval


def test_results_without_sidecars_render_as_before(make_result):
    results = [make_result(f"s{s}", t2a_map=v, seed=s, combination="x") for s, v in enumerate((0.2, 0.3, 0.4))]
    (row, _chance) = only_table(leaderboard.render(results))
    assert row["t2a mAP@10"] == "30.00 ± 10.00"


@pytest.mark.parametrize("damage", ["missing", "truncated", "edited"])
def test_bad_sidecar_renders_the_row_without_ci_and_says_why(tmp_path, make_result, damage):
    results_dir = tmp_path / "r"
    with_sidecar(results_dir, make_result("good", combination="g"), outcomes(0.5, seed=1))
    with_sidecar(results_dir, make_result("bad", combination="b"), outcomes(0.3, seed=2))
    sidecar = results_dir / f"bad{per_query.SIDECAR_SUFFIX}"
    if damage == "missing":
        sidecar.unlink()
    elif damage == "truncated":
        sidecar.write_bytes(sidecar.read_bytes()[:100])
    else:
        data = bytearray(sidecar.read_bytes())
        data[-5] ^= 1
        sidecar.write_bytes(bytes(data))
    markdown, _, _ = leaderboard.render_dir(results_dir)
    good, bad, _chance = only_table(markdown)
    assert CI_CELL.match(good["t2a mAP@10"])
    assert re.fullmatch(r"\d+\.\d\d", bad["t2a mAP@10"])
    why = {"missing": "missing", "truncated": "does not match the sha256", "edited": "does not match the sha256"}
    notes = [line for line in markdown.splitlines() if line.startswith("No confidence interval:")]
    assert len(notes) == 1 and f"bad{per_query.SIDECAR_SUFFIX}" in notes[0] and why[damage] in notes[0]
    assert str(tmp_path) not in markdown
    assert "Significance" not in markdown and "**Bold**" not in markdown  # one tested row: nothing to test


@pytest.mark.slow  # about 10 s of CPU: 24 sidecars, 8 CIs of seed groups, 7 permutation tests
def test_time_for_a_committed_sized_board(tmp_path, make_result):
    # 24 results of 1000 captions with sidecars, as the committed loss comparison (8 rows of 3 seeds).
    for combo in range(8):
        for seed in range(3):
            with_sidecar(tmp_path / "r", make_result(f"c{combo}s{seed}", seed=seed, combination=f"c{combo}"),
                         outcomes(0.3 + 0.04 * combo, seed=10 * combo + seed, n_audios=200))
    start = time.process_time()
    rows = rows_of(tmp_path / "r")
    elapsed = time.process_time() - start
    assert len(rows) == 9 and all(CI_CELL.match(r["t2a mAP@10"]) for r in rows[:-1])
    assert elapsed < 60, f"{elapsed:.1f} s of CPU"  # measured 11 s: 2 s of CIs, 9 s of permutation tests


# -- significance ------------------------------------------------------------------------------------
def test_not_significantly_worse_rows_in_bold_with_a_caption(tmp_path, make_result):
    best = outcomes(0.6, seed=1)
    with_sidecar(tmp_path / "r", make_result("best", combination="a", loss={"name": "best"}), best)
    with_sidecar(tmp_path / "r", make_result("same", combination="b", loss={"name": "same"}), best)  # a tie: p = 1
    with_sidecar(tmp_path / "r", make_result("worse", combination="c", loss={"name": "worse"}), outcomes(0.2, seed=2))
    markdown, _, _ = leaderboard.render_dir(tmp_path / "r")
    rows = {row["Loss"]: row["t2a mAP@10"] for row in only_table(markdown)}
    assert rows["best"].startswith("**") and rows["same"].startswith("**")
    assert not rows["worse"].startswith("**")
    assert not any(cell.startswith("**") for key, cell in only_table(markdown)[0].items() if key != "t2a mAP@10")
    caption = next(line for line in markdown.splitlines() if line.startswith("**Bold**"))
    assert "paired randomisation test" in caption and "Holm" in caption and "alpha 0.05" in caption
    assert "tested: all rows" in caption


def test_rows_without_sidecars_are_not_tested(tmp_path, make_result):
    with_sidecar(tmp_path / "r", make_result("a", combination="a"), outcomes(0.6, seed=1))
    with_sidecar(tmp_path / "r", make_result("b", combination="b"), outcomes(0.5, seed=2))
    write_result(make_result("old", t2a_map=0.9, combination="c"), tmp_path / "r")
    markdown, _, _ = leaderboard.render_dir(tmp_path / "r")
    assert "tested: the 2 rows with per-query sidecars" in markdown
    assert only_table(markdown)[0]["t2a mAP@10"] == "90.00"  # best by value, but untested: not bold


# -- provenance ----------------------------------------------------------------------------------------
def test_dirty_and_pinned_results_are_marked_with_footnotes(tmp_path, make_result):
    results_dir = tmp_path / "leaderboard" / "results"
    write_result(make_result("dirty", combination="d", provenance={"git_commit": "1" * 40, "git_dirty": True}),
                 results_dir)
    write_result(make_result("old", combination="o", provenance={"git_commit": "abc1234" + "0" * 33}), results_dir)
    write_result(make_result("clean", combination="c", provenance={"git_commit": "2" * 40}), results_dir)
    (results_dir.parent / "pinned.toml").write_text('[commits]\nabc1234 = "expensive; re-run with x.sh"\n')
    markdown, _, _ = leaderboard.render_dir(results_dir)
    marks = sorted(row.get("Provenance") for row in only_table(markdown))
    assert marks == ["", "", "†", "‡abc1234"]  # the clean row and chance unmarked
    assert "\n† Written from a working tree with uncommitted changes" in markdown
    assert "\n‡abc1234 Produced by commit abc1234" in markdown and "expensive; re-run with x.sh" in markdown


def test_no_provenance_column_when_nothing_is_marked(make_result):
    (row, _chance) = only_table(leaderboard.render([make_result("a", provenance={"git_commit": "2" * 40})]))
    assert "Provenance" not in row


def test_check_fails_on_provenance_problems_and_prints_each(tmp_path, make_result, capsys, monkeypatch):
    results_dir = tmp_path / "results"
    write_result(make_result("dirty-run", combination="d", provenance={"git_commit": "1" * 40, "git_dirty": True}),
                 results_dir)
    write_result(make_result("unknown-run", combination="u"), results_dir)
    output = tmp_path / "README.md"
    leaderboard.write(results_dir, output)
    argv = ["leaderboard", "--results-dir", str(results_dir), "--output", str(output), "--check"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any("dirty-run" in line and "uncommitted changes" in line for line in err)
    assert any("unknown-run" in line and "records no git commit" in line for line in err)
    assert "2 result problem(s)" in err[-1] and "Traceback" not in "\n".join(err)
    monkeypatch.setattr("bench.results.reproduce.provenance_problems", lambda results, repo, pinned: [])
    assert main(argv) == 0


# -- budgets ---------------------------------------------------------------------------------------------
def test_distill_and_fusion_budgets_and_fusion_mean_train_time(make_result):
    teachers = [make_result(f"t{s}", seed=s, combination="t", training={"epochs": 4}, timings={"train_s": 60.0 + s})
                for s in range(3)]
    student = make_result("st", combination="st", training={"epochs": 2}, loss={"name": "distill"},
                          stage={"stage": 2, "M": 3, "teachers": ["t0", "t1", "t2"], "init": "t0"})
    fused = make_result("fu", combination="fu", kind="fusion", training={"epochs": ""}, timings={"train_s": 183.0},
                        fusion={"method": "combsum", "runs": ["t0", "t1", "t2"]})
    rows = {row["Loss"]: row for row in only_table(leaderboard.render([*teachers, student, fused]))}
    assert rows["ntxent"]["Training"] == "4 epochs"
    assert rows["distill (M=3)"]["Training"] == "4+2 epochs"
    assert rows["fusion: combsum of 3 runs"]["Training"] == "3 × 4 epochs"
    assert rows["fusion: combsum of 3 runs"]["Train time"] == "1m 01s"  # mean of 60, 61, 62; not the sum
    # Without its members' results, an older fusion's recorded total is divided by their number.
    (alone, _chance) = only_table(leaderboard.render([fused]))
    assert alone["Training"] == "3 × ? epochs" and alone["Train time"] == "1m 01s"


def test_budgets_are_grouped_never_interleaved(make_result):
    results = [make_result("e8-low", t2a_map=0.30, combination="a", training={"epochs": 8}),
               make_result("e4-high", t2a_map=0.50, combination="b", training={"epochs": 4}),
               make_result("e8-high", t2a_map=0.60, combination="c", training={"epochs": 8}),
               make_result("e4-low", t2a_map=0.40, combination="d", training={"epochs": 4})]
    markdown = leaderboard.render(results)
    rows = only_table(markdown)[:-1]
    assert [(r["Training"], r["t2a mAP@10"]) for r in rows] == [
        ("8 epochs", "60.00"), ("8 epochs", "30.00"), ("4 epochs", "50.00"), ("4 epochs", "40.00")]
    assert "Rows are grouped by training budget" in markdown
    assert "grouped by training budget" not in leaderboard.render(results[:1])


def test_small_test_split_warns_and_roots_are_shortened(make_result):
    small = make_result("s", dataset={"name": "csv", "set": {"root": "/home/someone/data/sounds/desk"},
                                      "splits": {"test": {"n_audios": 4, "n_captions": 20}}})
    markdown = leaderboard.render([small])
    assert "⚠ This test split has only 20 t2a queries and 4 a2t queries (fewer than 100)" in markdown
    assert "root=…/sounds/desk" in markdown and "/home/someone" not in markdown
    assert "⚠" not in leaderboard.render([make_result("big")])


# -- resilience ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ['{"run_id": "x",', "", "not json", "[1, 2]", '{"schema_version": "9.0"}'])
def test_one_unreadable_result_never_blocks_the_rest(tmp_path, make_result, capsys, text):
    results_dir = tmp_path / "results"
    write_result(make_result("good", t2a_map=0.5), results_dir)
    (results_dir / "broken.json").write_text(text)
    output = tmp_path / "README.md"
    assert main(["leaderboard", "--results-dir", str(results_dir), "--output", str(output)]) == 0
    err = capsys.readouterr().err
    assert "broken.json" in err and "Traceback" not in err
    markdown = output.read_text()
    assert only_table(markdown)[0]["t2a mAP@10"] == "50.00"
    assert "## Unreadable results" in markdown and "\n- broken.json: " in markdown
    with pytest.raises(BenchError, match="broken.json"):
        leaderboard.check(results_dir, output, provenance=False, warn=lambda line: None)


def test_result_with_missing_embeddings_and_sidecar_still_appears(tmp_path, make_result):
    result = with_sidecar(tmp_path / "r", make_result("r", artifacts={"test_embeddings": "runs/r/gone.npz"}),
                          outcomes(0.5, seed=1))
    (tmp_path / "r" / result["per_query"]["file"]).unlink()
    (row, _chance) = rows_of(tmp_path / "r")
    assert re.fullmatch(r"\d+\.\d\d", row["t2a mAP@10"])


def test_read_results_report(tmp_path, make_result):
    write_result(make_result("b"), tmp_path)
    write_result(make_result("a"), tmp_path)
    (tmp_path / "c.json").write_text("{")
    results, problems = read_results_report(tmp_path)
    assert [r["run_id"] for r in results] == ["a", "b"]
    assert len(problems) == 1 and "c.json" in problems[0] and "\n" not in problems[0]
    assert read_results_report(tmp_path / "absent") == ([], [])


# -- kinds and protocols -----------------------------------------------------------------------------------
def test_eval_rows_marked_and_protocols_in_separate_tables(make_result):
    trained = make_result("clotho-run", combination="cr", dataset={"name": "clotho"}, training={"epochs": 8})
    results = [
        make_result("trained", t2a_map=0.3, combination="t"),
        make_result("zs", t2a_map=0.2, combination="zs", kind="eval", audio_encoder={"name": "clap"},
                    eval={"zero_shot": True, "trained_on": None, "run_id": None}),
        make_result("cross", t2a_map=0.1, combination="x", kind="eval",
                    eval={"zero_shot": False, "trained_on": "clotho", "run_id": "clotho-run"}),
        make_result("cross-unknown", t2a_map=0.05, combination="y", kind="eval",
                    eval={"zero_shot": False, "trained_on": "audiocaps", "run_id": "gone"}),
        make_result("laion", t2a_map=0.4, combination="zs", kind="eval", protocol="laion-clap",
                    eval={"zero_shot": True, "trained_on": None, "run_id": None}),
        trained,
    ]
    parsed = tables(leaderboard.render(results))
    synthetic = [rows for title, rows in parsed.items() if "synthetic" in title and "protocol: bench" in title]
    laion = [rows for title, rows in parsed.items() if "protocol: laion-clap" in title]
    assert len(synthetic) == 1 and len(laion) == 1 and len(parsed) == 3  # + clotho
    training = [row["Training"] for row in synthetic[0][:-1]]
    assert training == ["8 epochs", "zero-shot", "trained on clotho (8 epochs)", "trained on audiocaps"]
    assert [row["t2a mAP@10"] for row in laion[0][:-1]] == ["40.00"]
    # bench trained none of the eval models but the clotho run: only that row has a train time.
    assert [row["Train time"] for row in synthetic[0][:-1]] == ["2m 05s", "", "2m 05s", ""]


def test_seed_without_sidecar_in_a_sidecar_group_is_named(tmp_path, make_result):
    with_sidecar(tmp_path / "r", make_result("s0", seed=0, combination="x"), outcomes(0.5, seed=1))
    write_result(make_result("s1", seed=1, combination="x"), tmp_path / "r")
    markdown, _, _ = leaderboard.render_dir(tmp_path / "r")
    assert "±" in only_table(markdown)[0]["t2a mAP@10"]
    assert "No confidence interval: " in markdown and "s1.json: the result records no per-query sidecar" in markdown


def test_committed_leaderboard_is_current():
    # The committed markdown is what the committed results render to (provenance is CI's --check).
    root = Path(__file__).resolve().parents[1]
    leaderboard.check(root / "leaderboard" / "results", root / "leaderboard" / "README.md", provenance=False,
                      warn=lambda line: None)


def test_render_is_deterministic_with_sidecars_in_any_file_order(tmp_path, make_result):
    outputs = []
    for name, order in (("one", (0, 1, 2)), ("two", (2, 0, 1))):
        for i in order:
            with_sidecar(tmp_path / name, make_result(f"r{i}", combination=f"c{i}", loss={"name": f"l{i}"}),
                         outcomes(0.3 + 0.1 * i, seed=i, n_audios=40))
        outputs.append(leaderboard.render_dir(tmp_path / name)[0])
    assert outputs[0] == outputs[1]
    assert json.dumps(outputs[0]).count("**") >= 2


def test_header_states_the_bootstrap_that_cells_use():
    assert f"({stats.N_BOOTSTRAP:,} resamples, seeded)" in leaderboard.HEADER.replace("\n", " ")
    assert stats.N_BOOTSTRAP >= 1000 and stats.CONFIDENCE == 0.95
