"""The presets that ship with bench: the paper recipe ``salsa-clotho`` and the ``passt-synthetic-smoke`` check.

``bench run --preset NAME`` is parsed through the real command line with ``bench.runs.grid.run_grid``
replaced by a recorder, so the resolved :class:`RunConfig` objects are inspected and nothing trains.
Building the grid validates every component name and option against the registry (without
building a component), so a preset that names a wrong option fails here.
"""

from __future__ import annotations

import dataclasses

import pytest

from bench.cli.main import main
from bench.core import config as config_mod
from bench.core.config import TrainSettings, config_from_json, config_to_json

# The reference recipe (arXiv:2408.11641, OptimusPrimus/salsa experiments/ex_dcase24.py): the values
# the salsa-clotho preset must resolve to.
SALSA_TRAIN = {
    "epochs": 20,
    "batch_size": 64,
    "lr": 2e-5,
    "head_lr": 2e-5,  # "2e-5 for every group": the new projections too
    "weight_decay": 0.0,
    "warmup_epochs": 1.0,
    "min_lr": 1e-7,
    "decay_epochs": 15.0,
    "proj_dim": 1024,
    "amp": "auto",
    "captions_per_audio": 0,  # salsa iterates over every (audio, caption) pair
}
SALSA_PASST = {"arch": "passt_s_p16_s16_128_ap468", "pretrained": True, "s_patchout_t": 15, "s_patchout_f": 2}
SALSA_HF = {"model": "roberta-large", "pooling": "cls", "max_length": 32, "dropout": 0.2, "clean_captions": True}


def resolve(recorded, *argv: str) -> list:
    """The configs of ``bench run ARGV`` (exit status 0 required)."""
    assert main(["run", *argv, "--no-leaderboard"]) == 0
    (configs,) = recorded
    return configs


def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("bench run: error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- listing ------------------------------------------------------------------------------------------
def test_presets_lists_the_paper_recipe(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.strip().splitlines()}
    assert "salsa-clotho" in rows and "passt-synthetic-smoke" in rows
    assert "PaSST" in rows["salsa-clotho"] and "RoBERTa" in rows["salsa-clotho"]
    assert "clotho.root" in rows["salsa-clotho"]  # the one thing the user must add


def test_salsa_preset_file_uses_only_known_keys():
    preset = config_mod.load_preset("salsa-clotho")
    assert preset["path"].endswith("bench/presets/salsa-clotho.toml")
    train_keys = set(TrainSettings.keys())
    from bench.cli.run import RUN_KEYS, TRAIN_FLAGS

    assert set(preset["run"]) <= set(RUN_KEYS) | set(TRAIN_FLAGS) | train_keys
    # The root of the user's Clotho copy is theirs to give, never baked into a shipped preset.
    assert not any(key.startswith("clotho.") for key in preset["set"])


# -- salsa-clotho resolves to the paper's recipe -------------------------------------------------------
def test_salsa_clotho_resolves_to_the_paper_recipe(recorded, tmp_path):
    (cfg,) = resolve(recorded, "--preset", "salsa-clotho", "--set", f"clotho.root={tmp_path}")
    assert cfg.preset == "salsa-clotho"
    assert cfg.dataset.name == "clotho" and cfg.dataset.options == {"root": str(tmp_path)}
    assert cfg.audio_encoder.name == "passt" and cfg.audio_encoder.options == SALSA_PASST
    assert cfg.text_encoder.name == "hf" and cfg.text_encoder.options == SALSA_HF
    assert cfg.loss.name == "ntxent" and cfg.loss.options == {"tau": 0.05}
    assert type(cfg.loss.options["tau"]) is float and type(cfg.text_encoder.options["max_length"]) is int
    train = dataclasses.asdict(cfg.train)
    assert {k: train[k] for k in SALSA_TRAIN} == SALSA_TRAIN
    assert type(cfg.train.decay_epochs) is float and type(cfg.train.epochs) is int
    # Everything the preset does not mention keeps TrainSettings' defaults.
    defaults = dataclasses.asdict(TrainSettings())
    assert {k: v for k, v in train.items() if k not in SALSA_TRAIN} == {
        k: v for k, v in defaults.items() if k not in SALSA_TRAIN}
    assert cfg.seed == 0 and cfg.device == "auto" and cfg.teachers == () and cfg.init is None


def test_salsa_config_round_trips_through_json(recorded, tmp_path):
    # What a run directory's config.json stores (and --resume reads back) carries the preset values.
    (cfg,) = resolve(recorded, "--preset", "salsa-clotho", "--set", f"clotho.root={tmp_path}")
    data = config_to_json(cfg)
    assert data["preset"] == "salsa-clotho"
    assert data["train"]["head_lr"] == 2e-5 and data["train"]["decay_epochs"] == 15.0
    assert data["audio_encoder"] == {"name": "passt", "options": SALSA_PASST}
    back = config_from_json(data)
    assert back.train == cfg.train and back.audio_encoder == cfg.audio_encoder
    assert back.combination_key() == cfg.combination_key()


# -- flags override the preset --------------------------------------------------------------------------
def test_epochs_flag_overrides_only_epochs(recorded, tmp_path):
    (cfg,) = resolve(recorded, "--preset", "salsa-clotho", "--epochs", "2")
    assert cfg.train.epochs == 2
    expected = {**SALSA_TRAIN, "epochs": 2}
    train = dataclasses.asdict(cfg.train)
    assert {k: train[k] for k in expected} == expected
    assert cfg.audio_encoder.options == SALSA_PASST and cfg.text_encoder.options == SALSA_HF


def test_flags_and_sets_override_the_preset(recorded, tmp_path):
    (cfg,) = resolve(
        recorded, "--preset", "salsa-clotho",
        "--batch-size", "8", "--lr", "1e-4", "--head-lr", "3e-4", "--proj-dim", "256", "--seed", "3",
        "--set", "ntxent.tau=0.1", "--set", "passt.s_patchout_t=5", "--set", "train.decay_epochs=10",
        "--set", "train.amp=off", "--set", "hf.model=roberta-base",
        "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "res"),
    )
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.head_lr, cfg.train.proj_dim) == (8, 1e-4, 3e-4, 256)
    assert cfg.train.decay_epochs == 10.0 and cfg.train.amp == "off"
    assert cfg.seed == 3
    assert cfg.loss.options == {"tau": 0.1}
    assert cfg.audio_encoder.options == {**SALSA_PASST, "s_patchout_t": 5}
    assert cfg.text_encoder.options == {**SALSA_HF, "model": "roberta-base"}
    # Untouched preset values stay.
    assert (cfg.train.epochs, cfg.train.warmup_epochs, cfg.train.min_lr) == (20, 1.0, 1e-7)
    assert cfg.runs_dir == tmp_path / "runs" and cfg.results_dir == tmp_path / "res"


def test_preset_seed_flag_makes_a_grid(recorded):
    configs = resolve(recorded, "--preset", "salsa-clotho", "--seed", "0,1,2")
    assert [c.seed for c in configs] == [0, 1, 2]
    assert all(c.train.head_lr == 2e-5 and c.audio_encoder.options == SALSA_PASST for c in configs)
    assert len({c.combination_key() for c in configs}) == 1  # seeds of one experiment


def test_bad_override_of_a_preset_option_is_one_line(recorded, capsys):
    code = main(["run", "--preset", "salsa-clotho", "--set", "passt.s_patchout=3", "--no-leaderboard"])
    assert code == 2 and recorded == []
    line = error_line(capsys.readouterr().err)
    assert "s_patchout" in line and "s_patchout_t" in line  # the valid keys are listed


def test_preset_device_is_checked_before_any_work(recorded, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["run", "--preset", "salsa-clotho", "--device", "cuda", "--no-leaderboard"])
    assert code == 2 and recorded == []
    assert "cuda" in error_line(capsys.readouterr().err).lower()


def test_replacing_a_preset_component_drops_its_preset_options(recorded):
    # The natural offline use of the paper recipe: MiniLM instead of RoBERTa-large (not on disk).
    (cfg,) = resolve(recorded, "--preset", "salsa-clotho", "--text-encoder", "minilm")
    assert cfg.text_encoder.name == "minilm" and cfg.text_encoder.options == {}
    assert cfg.audio_encoder.options == SALSA_PASST and cfg.train.head_lr == 2e-5


def test_replacing_the_encoder_and_loss_of_a_preset(recorded):
    (cfg,) = resolve(recorded, "--preset", "salsa-clotho", "--encoder", "cnn", "--loss", "triplet",
                     "--set", "triplet.margin=0.3")
    assert (cfg.audio_encoder.name, cfg.audio_encoder.options) == ("cnn", {})
    assert (cfg.loss.name, cfg.loss.options) == ("triplet", {"margin": 0.3})
    assert cfg.text_encoder.options == SALSA_HF and cfg.train.decay_epochs == 15.0


def test_a_users_stray_set_is_still_an_error_with_a_preset(recorded, capsys):
    code = main(["run", "--preset", "salsa-clotho", "--set", "cnn.n_mels=32", "--no-leaderboard"])
    assert code == 2 and recorded == []
    assert "cnn" in error_line(capsys.readouterr().err)


# -- passt-synthetic-smoke --------------------------------------------------------------------------------
def test_smoke_preset_is_tiny_and_from_scratch(recorded):
    (cfg,) = resolve(recorded, "--preset", "passt-synthetic-smoke")
    assert cfg.dataset.name == "synthetic"
    assert cfg.dataset.options["n_train"] <= 16 and cfg.dataset.options["n_test"] <= 8
    assert cfg.audio_encoder.name == "passt" and cfg.audio_encoder.options["pretrained"] is False
    assert cfg.audio_encoder.options["window_seconds"] <= 1.0
    assert cfg.train.epochs == 1 and cfg.train.num_workers == 0
