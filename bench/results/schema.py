"""The published JSON Schema of result files (``result.schema.json``, draft 2020-12) and its checker.

Third parties validate a result with the same file (``docs/result-schema.md``). bench adds what a
schema cannot say to its checks: a metric added to :mod:`bench.evaluation.metric_table` after
the file was published (the required metrics and the known ones are taken from the table), finite
numbers only (JSON has no NaN; Python's parser would accept it), and a bounded nesting depth.
Every problem becomes one line naming the field.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from importlib import resources
from typing import Any

from bench.evaluation import metric_table

SCHEMA_FILE = "result.schema.json"
MAX_DEPTH = 64
"""Deeper nesting is refused: no result needs it, and renderers recurse."""


@functools.cache
def published_schema() -> dict[str, Any]:
    """The schema file shipped in the package, as a dict (do not modify it)."""
    return json.loads(resources.files("bench.results").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def _metric_keys() -> tuple[tuple[str, tuple[tuple[str, bool], ...]], ...]:
    return tuple((d, tuple((m.key, m.required) for m in metric_table.metrics(d))) for d in metric_table.DIRECTIONS)


@functools.cache
def _validator_for(keys: tuple[tuple[str, tuple[tuple[str, bool], ...]], ...]) -> Any:
    import jsonschema

    schema = copy.deepcopy(published_schema())
    for direction, table in keys:
        schema["$defs"][f"{direction}_metrics"] = {
            "type": "object",
            "required": [key for key, required in table if required],
            "properties": {key: {"type": "number"} for key, _ in table},
            "additionalProperties": {"type": "number"},
        }
        schema["$defs"]["metrics"]["properties"][direction] = {"$ref": f"#/$defs/{direction}_metrics"}
    return jsonschema.Draft202012Validator(schema)


def _validator() -> Any:
    # Keyed by the metric table, which tests (and later versions) extend at run time.
    return _validator_for(_metric_keys())


def _location(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the result"


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def describe(error: Any) -> str:
    """One line for one :class:`jsonschema.ValidationError`."""
    path = list(error.absolute_path)
    where = _location(path)
    if error.validator == "required":
        missing = next((name for name in error.validator_value if name not in error.instance), "?")
        if len(path) == 2 and path[0] in ("metrics", "chance"):
            return f"{path[0]}.{path[1]}[{missing!r}] is missing or not a number"
        if len(path) == 1 and path[0] in ("metrics", "chance"):
            return f"{path[0]}.{missing} is missing"
        return f"missing field {missing!r}" if not path else f"{where}: missing field {missing!r}"
    if len(path) == 3 and path[0] in ("metrics", "chance"):
        return f"{path[0]}.{path[1]}[{path[2]!r}] is missing or not a number"
    if error.validator in ("pattern", "not", "minLength", "maxLength"):
        rule = (error.schema.get("description") if isinstance(error.schema, dict) else None) or error.message
        if error.validator == "maxLength":
            rule = f"longer than {error.validator_value} characters"
        return f"{where} {_shown(error.instance)} is not allowed ({rule})"
    if error.validator == "type":
        return f"{where} must be {error.validator_value}, not {type(error.instance).__name__}"
    if error.validator == "enum":
        return f"{where} {_shown(error.instance)} is not one of {', '.join(map(str, error.validator_value))}"
    return f"{where}: {' '.join(error.message.split())[:160]}"


def _non_finite(value: Any, where: list[Any], depth: int = 0) -> str | None:
    if depth > MAX_DEPTH:
        return f"{_location(where)} is nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{_location(where)} is {value!r}: results hold finite numbers only"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, [*where, key], depth + 1)
        if found:
            return found
    return None


def problems(result: dict[str, Any]) -> list[str]:
    """Every problem of a result dict, one line each (empty: valid); the first is the most telling."""
    first = _non_finite(result, [])
    if first:  # a NaN or runaway nesting first: the schema walk would trip over the same thing
        return [first]
    import jsonschema

    errors = list(_validator().iter_errors(result))
    best = jsonschema.exceptions.best_match(errors)
    ordered = ([best] if best is not None else []) + [e for e in errors if e is not best]
    return [describe(e) for e in ordered]


def is_id(text: Any) -> bool:
    """Whether ``text`` is a valid run id (the schema's ``$defs/id``): safe as a file name."""

    return _id_validator().is_valid(text)


@functools.cache
def _id_validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator({"$ref": "#/$defs/id", "$defs": published_schema()["$defs"]})
