"""Property: ``--set`` value coercion round-trips (bench/core/option_values.py, issue 24).

For each supported annotation, a value written on the command line the way a user writes it comes
back as the same value of the same type; a coerced value coerces to itself again (a run's stored
options are coerced again on resume); and any text gives either a value or a one-line ConfigError.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.core.option_values import EMPTY, RawValue, coerce_option, jsonable_options  # noqa: E402
from bench.errors import ConfigError  # noqa: E402
from bench.options import Ge, Gt  # noqa: E402

# Names a user types: never a keyword that --set parses (none, true, no, off, ...: a one-element list[str]
# "no" is read as false and refused), never a comma.
NAMES = st.from_regex(r"[a-z][a-z0-9_./-]{0,12}", fullmatch=True).map(lambda s: "x" + s)
FLOATS = st.floats(allow_nan=False, allow_infinity=True, width=64)


def _float_text(value: float) -> str:
    return repr(value)


def _list_text(values: list[Any], item: Any) -> str:
    return ",".join(_text(v, item) for v in values)


def _text(value: Any, annotation: Any) -> str:
    """How a user writes ``value`` after ``--set name.key=``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, (list, tuple)):
        return _list_text(list(value), annotation)
    return str(value)


CASES: list[tuple[Any, st.SearchStrategy[Any], Any]] = [
    (int, st.integers(), 0),
    (float, FLOATS, 0.5),
    (bool, st.booleans(), False),
    (str, st.text(max_size=20).filter(lambda s: "\x00" not in s), ""),
    (Path, NAMES.map(Path), Path("x")),
    (Literal["random", "hard", "semihard"], st.sampled_from(["random", "hard", "semihard"]), "random"),
    (Annotated[int, Ge(1)], st.integers(min_value=1), 1),
    (Annotated[float, Gt(0)], st.floats(min_value=0, exclude_min=True, allow_infinity=False), 1.0),
    (int | None, st.none() | st.integers(), None),
    (float | None, st.none() | FLOATS, None),
    (list[int], st.lists(st.integers(), max_size=5), []),
    (tuple[float, ...], st.lists(FLOATS, max_size=5).map(tuple), ()),
    (list[str], st.lists(NAMES, max_size=5), []),
]
ITEM = {list[int]: int, tuple[float, ...]: float, list[str]: str}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isinf(a):
        return a == b
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(("annotation", "values", "default"), CASES, ids=[str(c[0]) for c in CASES])
@given(data=st.data())
def test_command_line_text_round_trips(annotation, values, default, data) -> None:
    value = data.draw(values)
    text = _text(value, ITEM.get(annotation, annotation))
    got = coerce_option(RawValue(text), annotation, default, "comp.key")
    assert _same(got, value), (text, got)
    # Coerced once, the value is a fixed point, also after the JSON round trip of a stored config.
    assert _same(coerce_option(got, annotation, default, "comp.key"), got)
    stored = json.loads(json.dumps(jsonable_options({"key": got}), allow_nan=True))["key"]
    assert _same(coerce_option(stored, annotation, default, "comp.key"), got)


@pytest.mark.parametrize(("annotation", "default"), [(c[0], c[2]) for c in CASES] + [(EMPTY, 3), (EMPTY, "x"),
                                                                                      (EMPTY, 0.5), (EMPTY, True)])
@given(text=st.text(max_size=30))
def test_any_text_is_a_value_or_one_config_error(annotation, default, text) -> None:
    try:
        got = coerce_option(RawValue(text), annotation, default, "comp.key")
    except ConfigError as exc:
        assert str(exc).startswith("--set comp.key=") and "\n" not in str(exc)
        return
    again = coerce_option(got, annotation, default, "comp.key")
    assert _same(again, got) or (isinstance(got, float) and math.isnan(got))
