"""bench.core.config: --set parsing and coercion, the grid, presets, and the JSON round trip of a RunConfig."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import hookimpl
from bench.core import config as config_mod
from bench.core.config import (
    ComponentSpec,
    RunConfig,
    TrainSettings,
    build_grid,
    coerce,
    config_from_json,
    config_to_json,
    load_preset,
    parse_set_options,
    parse_value,
    split_list,
)
from bench.core.registry import Registry
from bench.errors import ConfigError


# -- a registry with known factories, so the tests do not depend on the built-in plugins' options --
def _build_enc(n_mels: int = 64, hop_ms: float = 20.0, channels: str = "16,32", freeze: bool = False,
               checkpoint: str | None = None):
    return None


def _build_text(freeze: bool = True, max_length: int = 32):
    return None


def _build_loss(tau: float = 0.05, learnable_tau: bool = False):
    return None


def _build_data(root: str = "", n_train: int = 10, on_error: str = "raise"):
    return None


class _Plugin:
    @staticmethod
    @hookimpl
    def register_audio_encoders(register):
        register("enc", _build_enc)
        register("enc2", _build_enc)

    @staticmethod
    @hookimpl
    def register_text_encoders(register):
        register("txt", _build_text)

    @staticmethod
    @hookimpl
    def register_losses(register):
        register("nce", _build_loss)
        register("trip", _build_loss)

    @staticmethod
    @hookimpl
    def register_datasets(register):
        register("da", _build_data)
        register("db", _build_data)


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry()
    status = reg.register_module(_Plugin(), "testplugin")
    assert status.ok, status.error
    assert reg.names("loss") == ["nce", "trip"]
    return reg


def grid(registry: Registry, sets: list[str] = (), **kwargs) -> list[RunConfig]:
    args = dict(datasets=["da"], encoders=["enc"], text_encoders=["txt"], losses=["nce"], seeds=[0],
                set_options=parse_set_options(list(sets)), train_overrides={}, registry=registry)
    args.update(kwargs)
    return build_grid(**args)


# -- parse_value / parse_set_options ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True), ("False", False), ("yes", True), ("off", False),
        ("none", None), ("null", None),
        ("3", 3), ("-2", -2), ("0.5", 0.5), ("1e-3", 1e-3),
        ("[1, 2, 3]", [1, 2, 3]), ('["a", "b"]', ["a", "b"]),
        ("hard", "hard"), ("16,32,64", "16,32,64"), ('"quoted"', "quoted"),
    ],
)
def test_parse_value_types(text, expected):
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_set_options_groups_by_component():
    parsed = parse_set_options(["enc.n_mels=32", "enc.freeze=true", "nce.tau=0.1", "da.root=/data/x=y"])
    # Values stay text until coerce() knows each option's type.
    assert parsed == {"enc": {"n_mels": "32", "freeze": "true"}, "nce": {"tau": "0.1"}, "da": {"root": "/data/x=y"}}


def test_parse_set_options_later_value_wins():
    assert parse_set_options(["nce.tau=0.1", "nce.tau=0.2"]) == {"nce": {"tau": "0.2"}}


@pytest.mark.parametrize("bad", ["foo", "foo=1", ".tau=1", "nce.=1", "nce.tau"])
def test_parse_set_options_malformed(bad):
    with pytest.raises(ConfigError) as info:
        parse_set_options([bad])
    message = str(info.value)
    assert repr(bad) in message
    assert "NAME.KEY=VALUE" in message


# -- coerce ----------------------------------------------------------------------------------------
def test_coerce_int_to_float_default():
    value = coerce(1, 0.05, "ntxent.tau")
    assert value == 1.0 and type(value) is float


def test_coerce_integral_float_to_int_default():
    value = coerce(32.0, 64, "cnn.n_mels")
    assert value == 32 and type(value) is int


@pytest.mark.parametrize("value, default", [("abc", 64), (1.5, 64), ("abc", 0.05), (1, False), ("yes!", True),
                                            ([1, 2], 64)])
def test_coerce_rejects_wrong_type(value, default):
    with pytest.raises(ConfigError) as info:
        coerce(value, default, "cnn.n_mels")
    message = str(info.value)
    assert "cnn.n_mels" in message
    assert type(default).__name__ in message


def test_coerce_leaves_none_and_untyped_defaults():
    assert coerce(None, 64, "x.y") is None
    assert coerce("path/to/ckpt", None, "x.y") == "path/to/ckpt"


def test_grid_coerces_to_factory_default_type(registry):
    (cfg,) = grid(registry, ["nce.tau=1", "enc.hop_ms=10", "enc.n_mels=32", "enc.freeze=yes"])
    assert cfg.loss.options == {"tau": 1.0}
    assert type(cfg.loss.options["tau"]) is float
    assert cfg.audio_encoder.options == {"hop_ms": 10.0, "n_mels": 32, "freeze": True}
    assert type(cfg.audio_encoder.options["hop_ms"]) is float


def test_grid_rejects_value_of_wrong_type(registry):
    with pytest.raises(ConfigError, match=r"enc\.n_mels.*expected an int"):
        grid(registry, ["enc.n_mels=abc"])


def test_string_option_keeps_its_text(registry):
    (cfg,) = grid(registry, ["da.root=1.10"])
    assert cfg.dataset.options == {"root": "1.10"}
    (cfg,) = grid(registry, ["da.root=on"])
    assert cfg.dataset.options == {"root": "on"}


# -- build_grid ------------------------------------------------------------------------------------
def test_grid_is_cartesian_product(registry):
    configs = grid(registry, datasets=["da", "db"], encoders=["enc", "enc2"], losses=["nce", "trip"], seeds=[0, 1, 2])
    assert len(configs) == 2 * 2 * 1 * 2 * 3
    combos = {(c.dataset.name, c.audio_encoder.name, c.text_encoder.name, c.loss.name, c.seed) for c in configs}
    assert len(combos) == len(configs)
    assert {c.seed for c in configs} == {0, 1, 2}
    assert {c.dataset.name for c in configs} == {"da", "db"}
    assert {c.audio_encoder.name for c in configs} == {"enc", "enc2"}
    assert {c.loss.name for c in configs} == {"nce", "trip"}


def test_grid_without_seeds_uses_seed_zero(registry):
    assert [c.seed for c in grid(registry, seeds=[])] == [0]


def test_grid_passes_common_settings(registry, tmp_path):
    (cfg,) = grid(registry, device="cpu", results_dir=tmp_path / "res", runs_dir=tmp_path / "runs", preset="p")
    assert cfg.device == "cpu"
    assert cfg.results_dir == tmp_path / "res"
    assert cfg.runs_dir == tmp_path / "runs"
    assert cfg.preset == "p"


def test_grid_options_reach_only_their_component(registry):
    configs = grid(registry, ["enc.n_mels=32"], encoders=["enc", "enc2"])
    by_name = {c.audio_encoder.name: c.audio_encoder.options for c in configs}
    assert by_name == {"enc": {"n_mels": 32}, "enc2": {}}


def test_unknown_set_key_lists_valid_keys(registry):
    with pytest.raises(ConfigError) as info:
        grid(registry, ["enc.foo=1"])
    message = str(info.value)
    assert "enc.foo" in message
    for key in ("channels", "checkpoint", "freeze", "hop_ms", "n_mels"):
        assert key in message


def test_unknown_set_key_suggests_near_miss(registry):
    with pytest.raises(ConfigError, match=r"[Dd]id you mean enc\.n_mels"):
        grid(registry, ["enc.n_mel=1"])


def test_set_for_component_not_in_run(registry):
    with pytest.raises(ConfigError) as info:
        grid(registry, ["trip.tau=0.1"])  # trip is registered but the run uses nce
    message = str(info.value)
    assert "'trip'" in message
    assert "nce" in message and "enc" in message  # lists the run's components


def test_unknown_component_name_suggests(registry):
    with pytest.raises(ConfigError, match="did you mean 'enc'"):
        grid(registry, encoders=["enx"])


def test_train_settings_routed(registry):
    (cfg,) = grid(registry, ["train.epochs=3", "train.lr=1e-4", "train.decay_epochs=2", "train.amp=bf16"],
                  train_overrides={"batch_size": 16})
    assert cfg.train.epochs == 3 and type(cfg.train.epochs) is int
    assert cfg.train.lr == 1e-4
    assert cfg.train.decay_epochs == 2.0 and type(cfg.train.decay_epochs) is float
    assert cfg.train.amp == "bf16"
    assert cfg.train.batch_size == 16
    # Untouched fields keep their defaults, and no component received train options.
    assert cfg.train.head_lr == TrainSettings().head_lr
    assert cfg.audio_encoder.options == {} and cfg.loss.options == {}


def test_train_amp_off(registry):
    (cfg,) = grid(registry, ["train.amp=off"])
    assert cfg.train.amp == "off"


def test_train_set_overrides_flag(registry):
    (cfg,) = grid(registry, ["train.epochs=5"], train_overrides={"epochs": 2})
    assert cfg.train.epochs == 5


def test_unknown_train_key(registry):
    with pytest.raises(ConfigError) as info:
        grid(registry, ["train.epoch=3"])
    message = str(info.value)
    assert "train.epoch" in message
    assert "epochs" in message and "batch_size" in message and "captions_per_audio" in message


def test_train_value_of_wrong_type(registry):
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        grid(registry, ["train.epochs=many"])


def test_train_decay_epochs_bad_value_is_config_error(registry):
    with pytest.raises(ConfigError, match=r"train\.decay_epochs"):
        grid(registry, ["train.decay_epochs=abc"])


def test_each_config_has_its_own_train_settings(registry):
    a, b = grid(registry, seeds=[0, 1])
    a.train.epochs = 99
    assert b.train.epochs != 99


def test_combination_key_ignores_seed_only(registry):
    a, b = grid(registry, seeds=[0, 1])
    assert a.combination_key() == b.combination_key()
    (c,) = grid(registry, ["nce.tau=0.1"])
    assert c.combination_key() != a.combination_key()


def test_combined_dataset_options_per_member(registry):
    (cfg,) = grid(registry, ["da.n_train=5", "db.root=/x"], datasets=["da+db"])
    assert cfg.dataset.name == "da+db"
    assert cfg.dataset.options == {"da": {"n_train": 5}, "db": {"root": "/x"}}


def test_split_list():
    assert split_list("a, b,,c") == ["a", "b", "c"]
    assert split_list(["a,b", "c"]) == ["a", "b", "c"]
    assert split_list(None) == []


# -- presets -----------------------------------------------------------------------------------------
def test_load_preset_from_path(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text('description = "a small run"\n[run]\nencoder = "cnn"\nepochs = 2\n[set]\n"ntxent.tau" = 0.1\n')
    preset = load_preset(str(path))
    assert preset["description"] == "a small run"
    assert preset["run"] == {"encoder": "cnn", "epochs": 2}
    assert preset["set"] == {"ntxent.tau": 0.1}
    assert preset["path"] == str(path)


def test_load_preset_by_name_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "PRESET_DIR", tmp_path)
    (tmp_path / "quick.toml").write_text('description = "quick"\n')
    assert list(config_mod.available_presets()) == ["quick"]
    preset = load_preset("quick")
    assert preset["run"] == {} and preset["set"] == {}


def test_load_preset_unknown_table(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[run]\nencoder = "cnn"\n[train]\nepochs = 2\n')
    with pytest.raises(ConfigError) as info:
        load_preset(str(path))
    message = str(info.value)
    assert str(path) in message and "'train'" in message and "[set]" in message


def test_load_preset_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[run\nencoder = cnn\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_preset(str(path))
    assert str(path) in str(info.value)


def test_load_preset_unknown_name_lists_available(tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "PRESET_DIR", tmp_path)
    (tmp_path / "alpha.toml").write_text("")
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'; available: alpha"):
        load_preset("nope")


# -- JSON round trip ---------------------------------------------------------------------------------
def test_config_json_round_trip(tmp_path):
    import json

    cfg = RunConfig(
        dataset=ComponentSpec("da+db", {"da": {"n_train": 5}}),
        audio_encoder=ComponentSpec("enc", {"n_mels": 32, "freeze": True}),
        text_encoder=ComponentSpec("txt"),
        loss=ComponentSpec("nce", {"tau": 0.1}),
        seed=7,
        train=TrainSettings(epochs=3, decay_epochs=2.5, amp="off"),
        device="cpu",
        results_dir=tmp_path / "res",
        runs_dir=tmp_path / "runs",
        teachers=("t1", "t2"),
        init="t1",
        run_id="r1",
        preset="quick",
        role="teacher",
    )
    data = json.loads(json.dumps(config_to_json(cfg)))  # must survive real JSON
    back = config_from_json(data)
    assert back == cfg
    assert isinstance(back.results_dir, Path) and isinstance(back.teachers, tuple)
    assert dataclasses.asdict(back.train) == dataclasses.asdict(cfg.train)
    assert back.combination_key() == cfg.combination_key()
