"""Property: result JSON reading. A schema-valid result reads back unchanged, and bench's checker
accepts exactly what the published schema accepts (third parties validate with the same file).

Examples are bounded by the hypothesis profiles of tests/conftest.py ("fast" in make test-fast,
"full" in make test).
"""

from __future__ import annotations

import json
import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.errors import BenchError  # noqa: E402
from bench.results.files import check_result, read_result  # noqa: E402
from bench.results.schema import published_schema  # noqa: E402
from tests.conftest import build_result  # noqa: E402

IDS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,30}\Z").filter(lambda s: ".." not in s and not s.endswith("."))
NAMES = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_ .,+:@=-]{0,30}\Z").filter(lambda s: ".." not in s)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | st.integers(-2**53, 2**53) | FINITE | st.text(max_size=20)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
METRICS = st.fixed_dictionaries({key: FINITE for key in ("mAP@10", "R@1", "R@5", "R@10")})


@st.composite
def valid_results(draw) -> dict:
    result = build_result(draw(IDS))
    result["combination"] = draw(IDS)
    result["seed"] = draw(st.integers(-2**31, 2**31))
    result["kind"] = draw(st.sampled_from(["train", "fusion", "eval", "score"]))
    for block in ("audio_encoder", "text_encoder", "loss"):
        result[block] = {"name": draw(NAMES), "options": draw(st.dictionaries(st.text(max_size=8), JSON_VALUES,
                                                                            max_size=3)),
                         "set": draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=2))}
    result["dataset"]["name"] = draw(NAMES)
    result["metrics"] = {"t2a": draw(METRICS), "a2t": draw(METRICS)}
    if result["kind"] == "score":  # a scored file holds one direction or both
        directions = draw(st.sampled_from([["t2a"], ["a2t"], ["t2a", "a2t"]]))
        result["score"] = {"directions": directions, "file": "run.trec", "sha256": "b" * 64, "format": "trec"}
        result["metrics"] = {d: result["metrics"][d] for d in directions}
    result["chance"] = {"t2a": draw(METRICS), "a2t": draw(METRICS)}
    result["training"] = draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4))
    result["history"] = draw(st.lists(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3), max_size=3))
    if draw(st.booleans()):
        result["stage"] = {"stage": 2, "M": draw(st.integers(1, 5)), "teachers": draw(st.lists(IDS, max_size=3)),
                           "init": None, "role": None}
    if draw(st.booleans()):
        result["per_query"] = {"file": f"{result['run_id']}.per_query.npz", "sha256": "a" * 64,
                               "format": "bench-per-query-1"}
    return result


@given(valid_results())
def test_a_schema_valid_result_reads_back_unchanged(tmp_path_factory, result):
    import jsonschema

    jsonschema.Draft202012Validator(published_schema()).validate(result)  # what a third party checks
    path = tmp_path_factory.mktemp("r") / f"{result['run_id']}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True), encoding="utf-8")
    assert read_result(path) == result


FIELDS = [("run_id",), ("combination",), ("dataset", "name"), ("audio_encoder", "name"), ("loss", "name"),
          ("protocol",), ("per_query", "file")]


@given(valid_results(), st.sampled_from(FIELDS), st.text(max_size=40))
def test_bench_accepts_exactly_what_the_published_schema_accepts(result, field, text):
    import jsonschema

    target = result
    for key in field[:-1]:
        target = target.setdefault(key, {"sha256": "a" * 64})
    target[field[-1]] = text
    by_schema = jsonschema.Draft202012Validator(published_schema()).is_valid(result)
    try:
        check_result(result, source="r")
        by_bench = True
    except BenchError as exc:
        by_bench = False
        assert "\n" not in str(exc) and str(exc).startswith("r: ")
    assert by_bench == by_schema, (field, text)
    if by_schema:  # a safe id or name: no path separator, no "..", no control character
        assert "/" not in text and ".." not in text and not any(ord(c) < 32 for c in text)


@given(valid_results(), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_metrics_are_refused_with_one_line(result, value):
    direction = next(iter(result["metrics"]))
    result["metrics"][direction]["R@5"] = value
    with pytest.raises(BenchError, match=rf"metrics\.{direction}\.R@5 is .*finite numbers only"):
        check_result(result, source="r")
