"""bench.leaderboard.tables: grouping, sorting, formatting, seed aggregation, labels, determinism and --check."""

from __future__ import annotations

import itertools
import json
import statistics

import pytest

from bench.cli.main import main
from bench.errors import BenchError
from bench.leaderboard import tables as leaderboard
from bench.results.files import write_result


def tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Parse the rendered markdown into {section title: [row dicts]} (titles made unique by a counter)."""
    out: dict[str, list[dict[str, str]]] = {}
    for index, section in enumerate(markdown.split("\n## ")[1:]):
        title, _, body = section.partition("\n")
        lines = [line for line in body.splitlines() if line.startswith("|")]
        if not lines:  # "## Unreadable results": a list, not a table
            continue
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]
        out[f"{index}:{title}"] = rows
    return out


def only_table(markdown: str) -> list[dict[str, str]]:
    parsed = tables(markdown)
    assert len(parsed) == 1, list(parsed)
    return next(iter(parsed.values()))


def test_one_table_per_dataset_and_test_fingerprint(make_result):
    results = [
        make_result("a", t2a_map=0.2),
        make_result("b", t2a_map=0.3),
        make_result("c", t2a_map=0.4, dataset={"name": "clotho"}),
        make_result("d", t2a_map=0.5, dataset={"splits": {"test": {"fingerprint": "fp-other"}}}),
    ]
    parsed = tables(leaderboard.render(results))
    assert len(parsed) == 3
    sizes = sorted(len(rows) - 1 for rows in parsed.values())  # minus the chance row
    assert sizes == [1, 1, 2]
    assert any("clotho" in title for title in parsed)


def test_title_names_dataset_options_and_test_size(make_result):
    result = make_result("a", dataset={"set": {"n_train": 50}, "splits": {"test": {"n_audios": 7, "n_captions": 35}}})
    markdown = leaderboard.render([result])
    assert "\n## synthetic (n_train=50) — test: 7 audios, 35 captions [" in markdown


def test_different_test_splits_have_different_titles(make_result):
    results = [make_result("a"), make_result("b", dataset={"splits": {"test": {"fingerprint": "fp-other"}}})]
    titles = [title.split(":", 1)[1] for title in tables(leaderboard.render(results))]
    assert len(titles) == 2
    assert titles[0] != titles[1]


def test_sorted_by_t2a_map_descending(make_result):
    values = [0.12, 0.45, 0.3, 0.05, 0.33]
    results = [make_result(f"run-{i}", t2a_map=v, audio_encoder={"name": f"enc{i}"}) for i, v in enumerate(values)]
    rows = only_table(leaderboard.render(results))
    assert rows[-1]["Audio encoder"] == "*chance*"
    shown = [float(row["t2a mAP@10"]) for row in rows[:-1]]
    assert shown == sorted((v * 100 for v in values), reverse=True)
    assert [row["Audio encoder"] for row in rows[:-1]] == ["enc1", "enc4", "enc2", "enc0", "enc3"]


def test_percent_with_two_decimals(make_result):
    result = make_result("a", t2a_map=0.28934)
    result["metrics"]["t2a"]["R@1"] = 0.1
    result["metrics"]["a2t"]["mAP@10"] = 0.99999
    (row, _chance) = only_table(leaderboard.render([result]))
    assert row["t2a mAP@10"] == "28.93"
    assert row["t2a R@1"] == "10.00"
    assert row["a2t mAP@10"] == "100.00"
    assert row["Seeds"] == "1"
    assert row["Training"] == "8 epochs"
    assert row["Train time"] == "2m 05s"
    assert row["Device"] == "cpu"


def test_seeds_aggregated_with_mean_and_sample_std(make_result):
    values = [0.2, 0.3, 0.4]
    results = [make_result(f"s{seed}", t2a_map=v, seed=seed, combination="same") for seed, v in enumerate(values)]
    results.append(make_result("other", t2a_map=0.1, combination="different"))
    rows = only_table(leaderboard.render(results))
    assert len(rows) == 3  # the three seeds are one row, plus the other combination and chance
    row = rows[0]
    mean = statistics.fmean(values) * 100
    std = statistics.stdev(values) * 100  # sample std: 10.00, where the population std would be 8.16
    assert row["t2a mAP@10"] == f"{mean:.2f} ± {std:.2f}" == "30.00 ± 10.00"
    assert row["Seeds"] == "3"
    assert rows[1]["t2a mAP@10"] == "10.00"
    assert rows[1]["Seeds"] == "1"


def test_chance_row(make_result):
    result = make_result("a", chance={"t2a": {"mAP@10": 0.0123, "R@1": 0.005, "R@5": 0.025, "R@10": 0.05},
                                      "a2t": {"mAP@10": 0.0456}})
    rows = only_table(leaderboard.render([result]))
    chance = rows[-1]
    assert chance["Audio encoder"] == "*chance*"
    assert (chance["t2a mAP@10"], chance["t2a R@1"], chance["t2a R@5"], chance["t2a R@10"], chance["a2t mAP@10"]) == (
        "1.23", "0.50", "2.50", "5.00", "4.56")
    assert chance["Loss"] == "" and chance["Seeds"] == ""


def _varied_results(make_result):
    return [
        make_result("r1", t2a_map=0.2, seed=0, combination="x"),
        make_result("r2", t2a_map=0.25, seed=1, combination="x"),
        make_result("r3", t2a_map=0.2, combination="y", loss={"name": "triplet", "set": {"negatives": "hard"}}),
        make_result("r4", t2a_map=0.2, combination="z", audio_encoder={"name": "passt"}),
        make_result("r5", t2a_map=0.4, dataset={"name": "clotho", "splits": {"test": {"fingerprint": "c"}}}),
        make_result("r6", t2a_map=0.1, dataset={"name": "audiocaps"}, timings={"train_s": 4000.0}),
    ]


def test_render_is_order_independent(make_result):
    results = _varied_results(make_result)
    expected = leaderboard.render(results)
    for permutation in itertools.islice(itertools.permutations(results), 0, 720, 37):
        assert leaderboard.render(list(permutation)) == expected


def test_write_is_byte_identical_whatever_the_file_order(tmp_path, make_result):
    results = _varied_results(make_result)
    outputs = []
    for name, order in (("first", results), ("second", list(reversed(results)))):
        results_dir = tmp_path / name / "results"
        for result in order:
            write_result(result, results_dir)
        outputs.append(leaderboard.write(results_dir, tmp_path / name / "README.md").read_bytes())
    assert outputs[0] == outputs[1]
    assert b"1h 06m" in outputs[0]  # 4000 s of training


def test_empty_leaderboard(tmp_path):
    markdown = leaderboard.render([])
    assert markdown.startswith(leaderboard.HEADER)
    assert "No results yet" in markdown
    assert "\n## " not in markdown


# -- labels --------------------------------------------------------------------------------------
def test_component_label_shows_set_options_only():
    assert leaderboard.component_label({"name": "cnn", "options": {"n_mels": 64}, "set": {}}) == "cnn"
    label = leaderboard.component_label({"name": "triplet", "options": {}, "set": {"negatives": "hard", "margin": 0.1}})
    assert label == "triplet (margin=0.1, negatives=hard)"


def test_distillation_label(make_result):
    result = make_result("d", loss={"name": "distill"}, stage={"stage": 2, "M": 3, "teachers": ["t1", "t2", "t3"]})
    assert leaderboard.loss_label(result) == "distill (M=3)"
    result["loss"]["set"] = {"w_sup": 0.5}
    assert leaderboard.loss_label(result) == "distill (w_sup=0.5) (M=3)"
    assert leaderboard.loss_label(make_result("plain")) == "ntxent"


def test_stage1_teacher_marked(make_result):
    teacher = make_result("t", stage={"role": "teacher"})
    assert leaderboard.loss_label(teacher) == "ntxent [stage 1]"
    rows = only_table(leaderboard.render([teacher, make_result("plain", combination="other")]))
    assert sorted(row["Loss"] for row in rows[:-1]) == ["ntxent", "ntxent [stage 1]"]


def test_fusion_label(make_result):
    fused = make_result("f", kind="fusion", fusion={"method": "combsum", "runs": ["a", "b", "c"]})
    assert leaderboard.loss_label(fused) == "fusion: combsum of 3 runs"
    rows = only_table(leaderboard.render([fused]))
    assert rows[0]["Loss"] == "fusion: combsum of 3 runs"


def test_dataset_table_only_that_benchmark(make_result):
    results = [make_result("a", t2a_map=0.2), make_result("b", t2a_map=0.3, dataset={"name": "clotho"})]
    text = leaderboard.dataset_table(results, results[1])
    assert text.startswith("clotho")
    assert "30.00" in text and "20.00" not in text


# -- check -----------------------------------------------------------------------------------------
@pytest.fixture
def board(tmp_path, make_result, monkeypatch):
    # These hand-made results record no git commit; provenance is tested in test_leaderboard_honest.py.
    monkeypatch.setattr("bench.results.reproduce.provenance_problems", lambda results, repo, pinned: [])
    results_dir = tmp_path / "results"
    for result in _varied_results(make_result):
        write_result(result, results_dir)
    output = tmp_path / "README.md"
    leaderboard.write(results_dir, output)
    return results_dir, output


def test_check_passes_on_fresh_write(board):
    leaderboard.check(*board)


def test_check_fails_after_hand_edit(board):
    results_dir, output = board
    output.write_text(output.read_text().replace("25.00", "26.00", 1))
    with pytest.raises(BenchError) as info:
        leaderboard.check(results_dir, output)
    message = str(info.value)
    assert str(output) in message and "stale" in message and "bench leaderboard" in message


def test_check_fails_after_new_result(board, make_result):
    results_dir, output = board
    write_result(make_result("late", t2a_map=0.9), results_dir)
    with pytest.raises(BenchError, match="stale"):
        leaderboard.check(results_dir, output)


def test_check_fails_when_missing(board):
    results_dir, output = board
    output.unlink()
    with pytest.raises(BenchError, match="missing"):
        leaderboard.check(results_dir, output)


def test_cli_check_exit_codes(board, capsys):
    results_dir, output = board
    argv = ["leaderboard", "--results-dir", str(results_dir), "--output", str(output), "--check"]
    assert main(argv) == 0
    assert "is current" in capsys.readouterr().out
    output.write_text(output.read_text() + "edited\n")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(output) in err and "Traceback" not in err


def test_cli_writes_leaderboard(tmp_path, make_result, capsys):
    write_result(make_result("a", t2a_map=0.5), tmp_path / "results")
    output = tmp_path / "board.md"
    assert main(["leaderboard", "--results-dir", str(tmp_path / "results"), "--output", str(output)]) == 0
    assert "50.00" in output.read_text()
    assert str(output) in capsys.readouterr().out


def test_cli_lists_future_schema_and_renders_the_rest(tmp_path, make_result, capsys):
    results_dir = tmp_path / "results"
    write_result(make_result("good", t2a_map=0.5), results_dir)
    (results_dir / "future.json").write_text(json.dumps(make_result("future", schema_version="2.0")))
    assert main(["leaderboard", "--results-dir", str(results_dir), "--output", str(tmp_path / "b.md")]) == 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "future.json" in err and "2.0" in err and "Traceback" not in err
    markdown = (tmp_path / "b.md").read_text()
    assert "50.00" in markdown
    assert "## Unreadable results" in markdown and "- future.json: schema_version 2.0" in markdown
    assert str(tmp_path) not in markdown  # files named relative to the results directory


def test_cli_result_with_incomplete_metrics(tmp_path, make_result, capsys):
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    result = make_result("partial")
    del result["metrics"]["t2a"]["R@5"]
    (results_dir / "partial.json").write_text(json.dumps(result))
    assert main(["leaderboard", "--results-dir", str(results_dir), "--output", str(tmp_path / "b.md")]) == 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "partial.json" in err and "R@5" in err
    assert "No results yet" in (tmp_path / "b.md").read_text()


def test_plot_draws_one_png_per_benchmark(make_result, tmp_path):
    results = [make_result("a", t2a_map=0.3), make_result("b", t2a_map=0.5, seed=1),
               make_result("c", t2a_map=0.2, dataset={"splits": {"test": {"fingerprint": "ffff0000"}}})]
    paths = leaderboard.plot(results, tmp_path / "plots")
    assert len(paths) == len(leaderboard.build_tables(results)) == 2
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "plots").glob(".*"))  # written atomically, nothing left behind
