"""Pipelines: a preset's ``[[stages]]`` run in order, a later stage starting from an earlier one's model.

Fast tests resolve presets through the real command line with the training loop replaced by a
recorder (the ``recorded`` fixture). The slow test trains the two-stage synthetic pipeline of
``tests/data/pipeline-synthetic.toml`` (a second synthetic set, read as ``clotho``, stands in for
the large pre-training data), kills it in stage 2, runs the command again and compares with an
uninterrupted pipeline.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.core import config as config_mod
from bench.core.config import config_from_json, config_to_json
from bench.errors import ConfigError
from bench.leaderboard import rows
from tests.kill_runs import kill_at_checkpoint
from tests.test_presets import error_line, resolve  # bench run's configs and its one error line

PRESET = Path(__file__).parent / "data" / "pipeline-synthetic.toml"


# -- parsing and configuration -----------------------------------------------------------------------------
def test_paper_pipeline_resolves_to_two_stages(recorded, tmp_path):
    for name in ("clotho", "audiocaps", "wavcaps"):
        (tmp_path / name).mkdir()
    configs = resolve(recorded, "--preset", "passt-large-data", *[
        f"--set={n}.root={tmp_path / n}" for n in ("clotho", "audiocaps", "wavcaps")], "--seed", "0,1")
    assert [(c.pipeline["stage"], c.seed) for c in configs] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    pre, fine = configs[0], configs[2]
    assert pre.dataset.name == "audiocaps+wavcaps+clotho" and fine.dataset.name == "clotho"
    assert pre.dataset.member_options("clotho") == {"root": str(tmp_path / "clotho")}
    assert fine.dataset.options == {"root": str(tmp_path / "clotho")}  # the other roots belong to stage 1 only
    for cfg in (pre, fine):
        assert cfg.audio_encoder.options["arch"] == "passt_s_p16_s16_128_ap468"
        assert cfg.text_encoder.options["model"] == "roberta-large"
        assert cfg.loss.options == {"tau": 0.01, "learnable_tau": True}
        assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.head_lr) == (16, 64, 2e-5, 2e-5)
        assert (cfg.train.decay_epochs, cfg.train.grad_clip, cfg.train.captions_per_audio) == (15.0, 0.0, 0)
    assert pre.pipeline["init_stage"] is None and fine.pipeline["init_stage"] == "pre-train"
    assert fine.pipeline["stages"] == [{"name": "pre-train", "epochs": 16, "init": None},
                                       {"name": "fine-tune", "epochs": 16, "init": "pre-train"}]
    from bench.runs.run import combination_id

    # A stage's seeds share one combination; stage 2 names stage 1's combination, not a run id.
    assert combination_id(configs[2]) == combination_id(configs[3]) != combination_id(configs[0])
    assert fine.pipeline["init_combination"] == combination_id(pre)
    back = config_from_json(config_to_json(fine))
    assert back.pipeline == fine.pipeline and combination_id(back) == combination_id(fine)


def test_the_reproduce_doc_command_resolves_to_the_pipeline(recorded):
    doc = Path(__file__).resolve().parents[1] / "docs" / "reproduce.md"
    (line,) = [li for li in doc.read_text().splitlines() if li.startswith("bench run --preset passt-large-data")]
    argv = shlex.split(line)[1:]
    del argv[argv.index("--device"):argv.index("--device") + 2]  # no GPU needed to resolve it
    configs = resolve(recorded, *argv[1:])
    assert [c.pipeline["stage_name"] for c in configs] == ["pre-train", "fine-tune"]


def test_stage_scoped_set_reaches_one_stage(recorded, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    configs = resolve(recorded, "--preset", str(PRESET), "--set", f"clotho.root={other}",
                      "--set", "fine-tune:train.epochs=3", "--set", "pre-train:cnn.n_mels=8")
    assert [c.train.epochs for c in configs] == [1, 3]
    assert [c.audio_encoder.options["n_mels"] for c in configs] == [8, 16]
    assert configs[1].pipeline["stages"][1]["epochs"] == 3


def test_pipeline_mistakes_are_one_line(recorded, tmp_path, capsys):
    assert main(["run", "--preset", str(PRESET), "--set", "nope:cnn.n_mels=8"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "no stage named 'nope' (stages of this pipeline: pre-train, fine-tune)" in line
    assert main(["run", "--preset", str(PRESET), "--set", f"clotho.root={tmp_path}", "--set", "passt.freqm=1"]) == 2
    assert "no stage of this pipeline has a component named 'passt'" in error_line(capsys.readouterr().err)
    assert main(["run", "--set", "fine-tune:cnn.n_mels=8"]) == 2
    assert "only a preset with [[stages]] has stages" in error_line(capsys.readouterr().err)


def test_bad_stage_tables_are_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[stages]]\nname = "b"\ninit = "a"\n[[stages]]\nname = "a"\n')
    with pytest.raises(ConfigError, match="init = 'a' names no earlier stage"):
        config_mod.load_preset(str(bad))
    bad.write_text('[[stages]]\nname = "a"\nepochs = 3\n')
    with pytest.raises(ConfigError, match="unknown key 'epochs'"):
        config_mod.load_preset(str(bad))


def test_show_prints_both_stages_full_configuration(isolated_cache, capsys):
    assert main(["presets", "--show", "passt-large-data"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("# configuration")]
    assert len(headers) == 2 and "'pre-train'" in headers[0] and "starts from stage 'pre-train'" in headers[1]
    blocks = [json.loads(chunk) for chunk in re.split(r"^# configuration.*$", out, flags=re.M)[1:]]
    assert [b["dataset"]["name"] for b in blocks] == ["audiocaps+wavcaps+clotho", "clotho"]
    # Resolved: every option a run would use, the defaults too.
    assert blocks[1]["audio_encoder"]["resolved"]["max_seconds"] == 30.0
    assert blocks[1]["train"]["epochs"] == 16 and blocks[1]["pipeline"]["init_stage"] == "pre-train"
    assert set(blocks[0]["dataset"]["resolved"]) == {"audiocaps", "wavcaps", "clotho"}


def test_leaderboard_shows_the_final_stage_with_the_whole_budget(make_result):
    stages = [{"name": "pre-train", "epochs": 10, "init": None},
              {"name": "fine-tune", "epochs": 5, "init": "pre-train"}]
    first = make_result("a-stage1", pipeline={"name": "p", "stage": 1, "stage_name": "pre-train", "stages": stages})
    final = make_result("b-stage2", pipeline={"name": "p", "stage": 2, "stage_name": "fine-tune", "stages": stages})
    assert rows.training_label(final, {}) == "pre-train 10 + fine-tune 5 epochs"
    assert rows.is_intermediate_stage(first) and not rows.is_intermediate_stage(final)
    tables = rows.aggregate([first, final])
    ranked = [run["run_id"] for _, table, _ in tables.values() for row in table for run in row["runs"]]
    assert ranked == ["b-stage2"]


# -- end to end on the synthetic benchmark ------------------------------------------------------------------
def _dirs(base: Path) -> list[str]:
    return ["--results-dir", str(base / "results"), "--runs-dir", str(base / "runs")]


def _args(other: Path) -> list[str]:
    return ["--preset", str(PRESET), "--set", f"clotho.root={other}", "--device", "cpu", "--no-leaderboard"]


def _results(base: Path) -> dict[int, dict]:
    found = [json.loads(p.read_text()) for p in sorted((base / "results").glob("*.json"))]
    return {r["pipeline"]["stage"]: r for r in found}


def _outcome(result: dict) -> dict:
    return {"metrics": result["metrics"], "best_val": result["best_val"],
            "history": [{k: v for k, v in h.items() if k != "seconds"} for h in result["history"]]}


def _kill_in_stage_two(base: Path, args: list[str]) -> Path:
    """Run the pipeline in a subprocess; SIGKILL it once stage 2 has written its first last.pt."""

    def in_stage_two(run_dir: Path) -> bool:
        config = json.loads((run_dir / "config.json").read_text())["config"]
        return config.get("pipeline", {}).get("stage") == 2

    stage_two = kill_at_checkpoint([*args, *_dirs(base)], base / "runs", in_stage_two,
                                   what="stage 2's first checkpoint", poll=0.02)
    assert not (stage_two / "result.json").exists()
    assert sorted(_results(base)) == [1], "stage 1 finished, stage 2 did not"
    return stage_two


@pytest.mark.slow
def test_two_stage_pipeline_runs_resumes_in_stage_two_and_records_the_pipeline(tmp_path, isolated_cache, caplog):
    from bench_plugins.datasets.synthetic import build_synthetic

    caplog.set_level(logging.INFO, logger="bench")
    other = tmp_path / "other-synthetic"
    build_synthetic(n_train=8, n_val=4, n_test=4, seed=1, root=str(other))
    args = _args(other)

    assert main(["run", *args, *_dirs(tmp_path / "reference")]) == 0
    reference = _results(tmp_path / "reference")
    assert sorted(reference) == [1, 2]
    one, two = reference[1], reference[2]
    assert one["dataset"]["name"] == "clotho+synthetic" and two["dataset"]["name"] == "synthetic"
    for stage, result in reference.items():
        info = result["pipeline"]
        assert (info["name"], info["stage"], [s["name"] for s in info["stages"]]) == (
            "pipeline-synthetic", stage, ["pre-train", "fine-tune"])
    assert two["pipeline"]["init_run"] == one["run_id"] == two["stage"]["init"]
    assert two["pipeline"]["init_combination"] == one["combination"]
    assert [h["epoch"] for h in two["history"]] == [1, 2]

    killed = tmp_path / "killed"
    run_dir = _kill_in_stage_two(killed, args)
    stage_one = _results(killed)[1]
    caplog.clear()
    assert main(["run", *args, *_dirs(killed)]) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("already done: reusing result") and stage_one["run_id"] in m for m in lines)
    assert f"continuing the interrupted run {run_dir.name}" in lines
    assert not [m for m in lines if m.startswith("epoch 1/1")], "stage 1 must not be trained again"
    resumed = _results(killed)
    assert resumed[1] == stage_one and resumed[2]["run_id"] == run_dir.name
    assert resumed[2]["pipeline"]["init_run"] == stage_one["run_id"]
    # The same stage-1 weights (a deterministic stage 1 in another directory) and an exact resume:
    assert _outcome(resumed[1]) == _outcome(one)
    assert _outcome(resumed[2]) == _outcome(two)

    caplog.clear()  # a third time: both stages are done
    assert main(["run", *args, *_dirs(killed)]) == 0
    assert len([r for r in caplog.records if r.getMessage().startswith("already done")]) == 2
