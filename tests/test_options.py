"""bench.options: option values coerced and checked once, by the factories' annotations."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Literal

import pytest

from bench import hookimpl
from bench.core.config import TrainSettings
from bench.core.option_values import (
    EMPTY,
    Ge,
    Gt,
    Le,
    RawValue,
    coerce_field,
    coerce_option,
    coerce_options,
    component_options,
    describe,
    option_types,
)
from bench.core.registry import Registry
from bench.errors import ConfigError

Mode = Literal["random", "full", "semihard", "hard"]


def _factory(
    mode: Mode = "hard",
    path: str | None = None,
    scale: float | None = None,
    level: Literal[1, 2, 3] = 1,
    tau: Annotated[float, Gt(0)] = 0.05,
    rate: Annotated[float, Ge(0), Le(1)] = 0.1,
    root: Path = Path("."),
    widths: list[int] | None = None,
    flag: bool = False,
    count: int = 3,
    plain=7,
):
    return SimpleNamespace(split=lambda name: [], **locals())


def _one(key: str, value, name: str = "comp"):
    return coerce_options(_factory, {key: value}, name)[key]


def test_literal_keeps_command_line_text_and_names_the_choices():
    assert _one("mode", RawValue("semihard")) == "semihard"
    with pytest.raises(ConfigError) as info:
        _one("mode", RawValue("hardest"), "triplet")
    assert str(info.value) == "--set triplet.mode='hardest': expected one of 'random', 'full', 'semihard', 'hard'"


def test_literal_of_ints_parses_the_text():
    assert _one("level", RawValue("2")) == 2
    with pytest.raises(ConfigError, match=r"expected one of 1, 2, 3$"):
        _one("level", RawValue("4"))
    with pytest.raises(ConfigError):
        _one("level", True)  # True == 1 in Python, but not a valid choice here


@pytest.mark.parametrize(
    "key, raw, expected",
    [
        ("path", "none", None), ("path", "1.10", "1.10"), ("path", "on", "on"),
        ("scale", "none", None), ("scale", "2", 2.0), ("scale", "1e-3", 1e-3),
        ("widths", "16,32", [16, 32]), ("widths", "[8, 4]", [8, 4]), ("widths", "none", None),
        ("flag", "yes", True), ("flag", "off", False),
        ("count", "4", 4), ("count", "4.0", 4),
        ("plain", "9", 9),  # no annotation: the default's type decides
    ],
)
def test_optional_and_scalar_values_from_the_command_line(key, raw, expected):
    value = _one(key, RawValue(raw))
    assert value == expected and type(value) is type(expected)


def test_optional_float_rejects_text():
    with pytest.raises(ConfigError) as info:
        _one("scale", RawValue("big"), "enc")
    assert str(info.value) == "--set enc.scale='big': expected a float or none"


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("tau", RawValue("0"), "expected a float > 0"),
        ("tau", RawValue("nan"), "expected a float > 0"),
        ("rate", 1.5, "expected a float >= 0 and <= 1"),
        ("count", 1.5, "expected an int"),
        ("count", True, "expected an int"),
        ("flag", 1, "expected true or false"),
        ("root", 3, "expected a path"),
        ("widths", RawValue("a,b"), "expected a comma-separated list or none"),
    ],
)
def test_bad_values_are_one_line(key, value, fragment):
    with pytest.raises(ConfigError) as info:
        _one(key, value)
    message = str(info.value)
    assert message.startswith(f"--set comp.{key}=") and message.endswith(fragment) and "\n" not in message


def test_paths_are_paths_for_the_factory_and_text_in_the_config():
    assert _one("root", RawValue("/data/x")) == Path("/data/x")
    plugin = SimpleNamespace(register_datasets=hookimpl(lambda register: register("ds", _factory)))
    registry = Registry()
    assert registry.register_module(plugin, "p").ok
    assert component_options(registry, "dataset", "ds", {"root": RawValue("/data/x")}) == {"root": "/data/x"}
    built = registry.build("dataset", "ds", {"root": "/data/x", "mode": RawValue("full")})
    assert built.root == Path("/data/x") and built.mode == "full"
    with pytest.raises(ConfigError, match=r"^--set ds.mode='x': expected one of"):
        registry.build("dataset", "ds", {"mode": "x"})


def test_unresolvable_annotations_fall_back_to_the_default():
    def factory(n: "NoSuchType" = 3):  # noqa: F821, UP037
        return n

    assert option_types(factory) == {"n": (EMPTY, 3)}
    assert coerce_options(factory, {"n": RawValue("5")}, "f") == {"n": 5}


def test_train_settings_use_the_same_coercion():
    assert coerce_field(TrainSettings, "decay_epochs", RawValue("none")) is None
    assert coerce_field(TrainSettings, "decay_epochs", RawValue("3")) == 3.0
    assert coerce_field(TrainSettings, "epochs", RawValue("2")) == 2
    assert coerce_field(TrainSettings, "amp", RawValue("off")) == "off"
    with pytest.raises(ConfigError, match=r"^--set train.epochs='many': expected an int >= 1$"):
        coerce_field(TrainSettings, "epochs", RawValue("many"))


def test_describe():
    assert describe(Annotated[int, Ge(1)]) == "an int >= 1"
    assert describe(Mode | None) == "one of 'random', 'full', 'semihard', 'hard' or none"
    assert coerce_option(None, float, None, "x.y") is None
