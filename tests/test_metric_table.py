"""The metric table is the one source: an entry flows into metrics, chance, checker, columns and plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.evaluation import metric_table
from bench.evaluation.metrics import chance_metrics, retrieval_metrics, t2a_ranks
from bench.leaderboard import tables as leaderboard
from bench.results.files import check_result


@pytest.fixture
def with_r50(monkeypatch: pytest.MonkeyPatch) -> metric_table.Metric:
    """The table with R@50 added after R@10: the one line a maintainer would write."""
    table = list(metric_table.METRICS)
    r50 = metric_table.recall(50)
    table.insert(3, r50)
    monkeypatch.setattr(metric_table, "METRICS", tuple(table))
    return r50


def test_table_is_consistent() -> None:
    keys = [m.key for m in metric_table.METRICS]
    assert len(keys) == len(set(keys))
    direction, key = metric_table.PRIMARY
    assert direction in metric_table.get(key).directions
    for metric in metric_table.METRICS:
        assert set(metric.columns) <= set(metric.directions) <= set(metric_table.DIRECTIONS)
        assert metric.chance_a2t is not None or "a2t" not in metric.directions
    with pytest.raises(KeyError, match="R@1"):
        metric_table.get("R@3")


def test_default_columns_are_the_published_ones() -> None:
    assert leaderboard.columns() == ["Audio encoder", "Text encoder", "Loss", "t2a mAP@10", "t2a R@1", "t2a R@5",
                                     "t2a R@10", "a2t mAP@10", "Seeds", "Training", "Train time", "Device"]


def test_formatting_by_kind() -> None:
    assert metric_table.get("R@1").format(0.28934) == "28.93"
    assert metric_table.get("mean_rank").format(12.25) == "12.2"  # round-half-even at 1 decimal
    assert metric_table.get("median_rank").format(3) == "3.0"
    assert metric_table.get("mAP@10").cell([0.2, 0.3]) == "25.00 ± 7.07"
    assert metric_table.get("mean_rank").cell([10.0, 12.0]) == "11.0 ± 1.4"
    assert metric_table.get("mAP@10").plot_value(0.25) == 25.0
    assert metric_table.get("mean_rank").plot_value(7.5) == 7.5


def test_added_recall_is_computed_in_both_directions(with_r50: metric_table.Metric) -> None:
    generator = torch.Generator().manual_seed(0)
    n_audios, per_audio = 80, 2
    audio = torch.randn(n_audios, 8, generator=generator)
    text = torch.randn(n_audios * per_audio, 8, generator=generator)
    aoc = np.repeat(np.arange(n_audios), per_audio)
    got = retrieval_metrics(audio, text, aoc)
    assert list(got["t2a"]) == ["R@1", "R@5", "R@10", "R@50", "mAP@10", "mean_rank", "median_rank"]
    assert list(got["a2t"]) == ["R@1", "R@5", "R@10", "R@50", "mAP@10"]
    ranks = t2a_ranks(text @ audio.T, torch.as_tensor(aoc))
    assert got["t2a"]["R@50"] == float((ranks <= 50).double().mean())
    assert got["t2a"]["R@10"] <= got["t2a"]["R@50"] <= 1.0
    assert got["a2t"]["R@10"] <= got["a2t"]["R@50"] <= 1.0


def test_added_recall_has_a_chance_level(with_r50: metric_table.Metric) -> None:
    chance = chance_metrics(np.repeat(np.arange(100), 5), 100)
    assert chance["t2a"]["R@50"] == 0.5
    # a2t: 1 - C(495, 50) / C(500, 50), some of 5 relevant captions among the top 50 of 500
    assert chance["a2t"]["R@50"] == pytest.approx(1 - np.prod([(450 - i) / (500 - i) for i in range(5)]), rel=1e-12)
    assert chance_metrics([0, 1], 2)["a2t"]["R@50"] == 1.0


def test_added_metric_reaches_the_checker(with_r50: metric_table.Metric, make_result) -> None:
    check_result(make_result(), source="old result")  # written before R@50 existed: still valid
    bad = make_result(metrics={"t2a": {"R@50": "high"}})
    with pytest.raises(BenchError, match=r"metrics.t2a\['R@50'\] is missing or not a number"):
        check_result(bad, source="r")


def test_a_required_metric_is_demanded(monkeypatch: pytest.MonkeyPatch, make_result) -> None:
    monkeypatch.setattr(metric_table, "METRICS", metric_table.METRICS + (metric_table.recall(50, required=True),))
    with pytest.raises(BenchError, match=r"metrics.t2a\['R@50'\] is missing"):
        check_result(make_result(), source="r")


def test_added_metric_reaches_the_leaderboard(with_r50: metric_table.Metric, make_result) -> None:
    # The chance row comes from the benchmark's first run id, here the new one.
    new = make_result("run-a", t2a_map=0.3, metrics={"t2a": {"R@50": 0.9}},
                      chance={"t2a": {"R@50": 0.25}})
    old = make_result("run-b", t2a_map=0.2)
    names = leaderboard.columns()
    assert names.index("t2a R@50") == names.index("t2a R@10") + 1
    (_title, table), = leaderboard.build_tables([old, new]).values()
    assert list(table.columns) == names
    assert list(table["t2a R@50"]) == ["90.00", "", "25.00"]  # best first, then the old run, then chance
    assert "| t2a R@50 " in leaderboard.render([old, new])


def test_plots_are_drawn_from_numbers(monkeypatch: pytest.MonkeyPatch, make_result, tmp_path) -> None:
    import matplotlib.axes

    drawn: list[list[float]] = []
    real_barh = matplotlib.axes.Axes.barh

    def barh(self, y, width, *args, **kwargs):
        drawn.append(list(width))
        return real_barh(self, y, width, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "barh", barh)
    # Formatted cells that no parser could read back: the plot must not depend on them.
    monkeypatch.setattr(metric_table.Metric, "cell", lambda self, values: "n/a")
    results = [make_result("a", t2a_map=0.123456), make_result("b", t2a_map=0.2, seed=0),
               make_result("c", t2a_map=0.3, seed=1, combination="combo-b")]
    paths = leaderboard.plot(results, tmp_path)
    assert len(paths) == 1 and paths[0].is_file()
    assert drawn == [[pytest.approx(12.3456), pytest.approx(25.0)]]  # unrounded, lowest first
