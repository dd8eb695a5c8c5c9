"""Property: preset TOML (bench/core/config.py ``load_preset``, ``bench run --preset``; issue 24).

Any file given as a preset loads into ``[run]`` and ``[set]`` tables or is refused with one
ConfigError naming it; and every ``[set]`` value a preset can hold reaches the option as the value
written in the TOML file.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.cli.run import _merge_preset  # noqa: E402
from bench.core.config import load_preset  # noqa: E402
from bench.core.option_values import coerce_option, parse_set_options  # noqa: E402
from bench.errors import ConfigError  # noqa: E402

KEYS = st.sampled_from(["epochs", "batch_size", "lr", "dataset", "seed", "bogus", "num-workers", "set", "run"])
SCALARS = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True), st.booleans(),
                    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x7f", exclude_categories=["Cc"]),
                            max_size=12))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string for these characters
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


@st.composite
def preset_text(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(f"description = {_toml_value(draw(SCALARS))}")
    for table in draw(st.lists(st.sampled_from(["run", "set", "extra"]), max_size=3, unique=True)):
        if draw(st.booleans()):
            lines.append(f"{table} = {_toml_value(draw(SCALARS))}")  # a value where a table belongs
            continue
        lines.append(f"[{table}]")
        for key in draw(st.lists(KEYS, max_size=4, unique=True)):
            name = f'"cnn.{key}"' if table == "set" and draw(st.booleans()) else key
            value = draw(SCALARS | st.lists(SCALARS, max_size=3))
            lines.append(f"{name} = {_toml_value(value)}")
    garbage = draw(st.sampled_from(["", "", "[run", "= 3", "x = ", "[[run]]\n"]))
    return "\n".join(lines) + "\n" + garbage


@given(preset_text())
def test_a_preset_loads_as_tables_or_is_one_config_error(tmp_path_factory, text) -> None:
    path = tmp_path_factory.mktemp("preset") / "p.toml"
    path.write_text(text, encoding="utf-8")
    try:
        preset = load_preset(str(path))
        assert isinstance(preset["run"], dict) and isinstance(preset["set"], dict)
        args = argparse.Namespace(preset=str(path), set=[])
        _merge_preset(args, preset)
    except ConfigError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)


OPTION_VALUES = st.one_of(
    st.tuples(st.just(int), st.integers()),
    st.tuples(st.just(float), st.floats(allow_nan=False)),
    st.tuples(st.just(bool), st.booleans()),
    st.tuples(st.just(str), st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x7f",
                                                           exclude_categories=["Cc"]), max_size=12)),
    st.tuples(st.just(list[int]), st.lists(st.integers(), max_size=4)),
)


@given(OPTION_VALUES)
def test_a_set_value_reaches_the_option_as_written(tmp_path_factory, case) -> None:
    annotation, value = case
    path = tmp_path_factory.mktemp("preset") / "p.toml"
    path.write_text(f'[set]\n"cnn.key" = {_toml_value(value)}\n', encoding="utf-8")
    _values, sets, _user = _merge_preset(argparse.Namespace(preset=str(path), set=[]), load_preset(str(path)))
    raw = parse_set_options(sets)["cnn"]["key"]
    got = coerce_option(raw, annotation, None, "cnn.key")
    assert got == value and type(got) is type(value)
