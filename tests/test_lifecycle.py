"""Lifecycle hooks and loggers (bench/runs/lifecycle.py, bench/hookspecs.py), and the run-structure rules
that come with them: the ``a+b`` dataset syntax parsed once (DatasetSpec), the WavCaps-style
leakage rule read from dataset metadata, and distill's stage-1 loss option. All fast: no training.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pluggy
import pytest

import bench
from bench import hookspecs
from bench.core.config import ComponentSpec, DatasetSpec, RunConfig
from bench.data.combined import CombinedDataset, check_combination
from bench.errors import ConfigError
from bench.runs.lifecycle import Lifecycle, build_logger


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(hookspecs)
    return pm


class Recorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    @bench.hookimpl
    def on_epoch_end(self, epoch: int, train_loss: float) -> None:
        self.calls.append(f"{self.name}:{epoch}:{train_loss}")


class First(Recorder):
    @bench.hookimpl(tryfirst=True)
    def on_epoch_end(self, epoch: int) -> None:
        self.calls.append(f"{self.name}:{epoch}")


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    @bench.hookimpl
    def on_epoch_end(self, epoch: int) -> None:
        self.calls += 1
        raise RuntimeError("dashboard is down")


EPOCH = dict(run_dir=".", epoch=1, epochs=2, train_loss=0.5, lr=[1e-3], val={"t2a": {"mAP@10": 0.3}},
             timings={"epoch_s": 1.0}, best=True)


def test_hooks_go_through_pluggy_so_tryfirst_orders_them() -> None:
    calls: list[str] = []
    pm = plugin_manager()
    with Lifecycle(pm, {"plain": Recorder("plain", calls), "first": First("first", calls)}) as lifecycle:
        lifecycle.epoch_end(**EPOCH)
    assert calls == ["first:1", "plain:1:0.5"]
    assert pm.get_plugins() == set()  # loggers are registered for the run's duration only


def test_a_hook_wrapper_in_a_plugin_sees_every_call() -> None:
    seen: list[int] = []

    class Wrapper:
        @bench.hookimpl(wrapper=True)
        def on_epoch_end(self, epoch: int) -> Any:
            seen.append(epoch)
            return (yield)

    pm = plugin_manager()
    pm.register(Wrapper())
    with Lifecycle(pm, {"plain": Recorder("plain", [])}) as lifecycle:
        lifecycle.epoch_end(**EPOCH)
        lifecycle.epoch_end(**{**EPOCH, "epoch": 2})
    assert seen == [1, 2]


def test_a_logger_that_raises_is_reported_once_and_the_others_go_on(caplog) -> None:
    calls: list[str] = []
    broken = Broken()
    with caplog.at_level(logging.WARNING, logger="bench"):
        with Lifecycle(plugin_manager(), {"broken": broken, "plain": Recorder("plain", calls)}) as lifecycle:
            for epoch in (1, 2, 3):
                lifecycle.epoch_end(**{**EPOCH, "epoch": epoch})
    assert broken.calls == 1  # switched off after the first failure
    assert calls == ["plain:1:0.5", "plain:2:0.5", "plain:3:0.5"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "broken" in warnings[0] and "dashboard is down" in warnings[0]


def test_every_lifecycle_hook_has_a_spec() -> None:
    pm = plugin_manager()
    for name in ("on_run_start", "on_epoch_end", "on_run_end", "on_result_written", "register_loggers"):
        assert getattr(pm.hook, name).spec is not None, name


def test_a_logger_that_cannot_start_is_one_line(monkeypatch) -> None:
    from bench.core.registry import get_registry

    registry = get_registry()
    with pytest.raises(ConfigError, match=r"wandb.mode='loud'.*'online', 'offline', 'disabled'"):
        build_logger(registry, ComponentSpec("wandb", {"mode": "loud"}))
    monkeypatch.setitem(__import__("sys").modules, "wandb", None)  # the package is not installed
    with pytest.raises(ConfigError, match=r"pip install 'bench\[wandb\]'"):
        build_logger(registry, ComponentSpec("wandb", {"mode": "offline"}))


def test_builtin_loggers_are_registered() -> None:
    from bench.core.registry import get_registry

    assert {"log_txt", "history_png", "tensorboard", "wandb"} <= set(get_registry().names("logger"))


# -- DatasetSpec: the a+b syntax, parsed once ---------------------------------------------------
def test_dataset_spec_members() -> None:
    combo = DatasetSpec("wavcaps+clotho", {"clotho": {"root": "/c"}})
    assert combo.members == ("wavcaps", "clotho") and combo.is_combination and combo.evaluated_on == "clotho"
    assert combo.member_options("clotho") == {"root": "/c"} and combo.member_options("wavcaps") == {}
    single = DatasetSpec("clotho", {"root": "/c"})
    assert single.members == ("clotho",) and not single.is_combination
    assert single.member_options("clotho") == {"root": "/c"}


def test_run_config_turns_a_component_spec_into_a_dataset_spec() -> None:
    cfg = RunConfig(dataset=ComponentSpec("a+b"), audio_encoder=ComponentSpec("cnn"),
                    text_encoder=ComponentSpec("minilm"), loss=ComponentSpec("ntxent"))
    assert isinstance(cfg.dataset, DatasetSpec) and cfg.dataset.members == ("a", "b")


# -- leakage metadata: a third-party dataset declares it like WavCaps does -----------------------
class Toy:
    """A third-party dataset whose training audio overlaps Clotho's evaluation audio."""

    name = "toy"
    contains_eval_audio_of = ("clotho",)
    leakage_advice = "pass --set toy.drop_clotho=true"

    def __init__(self, excluded: bool = False, eval_splits: bool = True) -> None:
        self.leakage_excluded = excluded
        self.has_eval_splits = eval_splits

    def split(self, name: str) -> list[Any]:
        return [SimpleNamespace(audio_id="x", audio_path="x.wav", captions=["a"])]


def test_a_third_party_dataset_declares_the_leak() -> None:
    clotho = SimpleNamespace(name="clotho", split=lambda name: [])
    with pytest.raises(ConfigError, match=r"training on toy and evaluating on clotho would leak.*toy.drop_clotho"):
        check_combination(["toy", "clotho"], [Toy(), clotho])
    check_combination(["toy", "clotho"], [Toy(excluded=True), clotho])
    check_combination(["toy", "audiocaps"], [Toy(), SimpleNamespace(name="audiocaps")])  # no leak there
    with pytest.raises(ConfigError, match="toy has no val/test split"):
        CombinedDataset([clotho, Toy(eval_splits=False)], names=["clotho", "toy"])


# -- distill's stage-1 loss is an option -------------------------------------------------------
def _distill_config(**options: Any) -> RunConfig:
    return RunConfig(dataset=ComponentSpec("synthetic"), audio_encoder=ComponentSpec("cnn"),
                     text_encoder=ComponentSpec("minilm"), loss=ComponentSpec("distill", options))


def test_stage_one_loss_defaults_to_ntxent_and_is_an_option() -> None:
    from bench.core.registry import get_registry
    from bench.runs.distill import stage_one_config

    registry = get_registry()
    assert stage_one_config(_distill_config(tau=0.1), registry).loss == ComponentSpec("ntxent", {"tau": 0.1})
    teacher = stage_one_config(_distill_config(tau=0.1, stage1_loss="triplet"), registry)
    assert teacher.loss == ComponentSpec("triplet", {}) and teacher.role == "teacher"  # triplet has no tau
    with pytest.raises(ConfigError, match="unknown loss 'tripple'"):
        stage_one_config(_distill_config(stage1_loss="tripple"), registry)
    with pytest.raises(ConfigError, match="cannot need teachers"):
        stage_one_config(_distill_config(stage1_loss="distill"), registry)
