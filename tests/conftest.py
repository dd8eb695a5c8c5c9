"""Shared test fixtures: a factory for valid result dicts (schema 1.x)."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

try:  # property-based tests: bounded in `make test-fast`, a longer run in `make test`
    from hypothesis import HealthCheck, settings

    settings.register_profile("fast", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("full", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
except ImportError:  # the test extra brings it; without it the property tests skip at import
    pass


def _metrics(map10: float) -> dict[str, dict[str, float]]:
    # Plausible, internally ordered numbers derived from one value so tables are easy to check.
    return {
        "t2a": {"mAP@10": map10, "R@1": map10 * 0.8, "R@5": min(1.0, map10 * 2), "R@10": min(1.0, map10 * 2.5)},
        "a2t": {"mAP@10": map10 * 0.9, "R@1": map10, "R@5": min(1.0, map10 * 2), "R@10": min(1.0, map10 * 2.5)},
    }


def _deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def build_result(run_id: str = "run-a", *, t2a_map: float = 0.25, replace: dict[str, Any] | None = None,
                 **overrides: Any) -> dict[str, Any]:
    """A valid result dict. Keyword overrides are merged into nested dicts; ``replace`` sets keys wholesale."""
    result: dict[str, Any] = {
        "schema_version": "1.0",
        "run_id": run_id,
        "created": "2025-01-01T00:00:00+00:00",
        "kind": "train",
        "combination": f"combo-{run_id}",
        "dataset": {
            "name": "synthetic",
            "options": {"n_train": 1000},
            "set": {},
            "splits": {"test": {"n_audios": 200, "n_captions": 1000, "fingerprint": "fp-test"}},
        },
        "audio_encoder": {"name": "cnn", "options": {"n_mels": 64}, "set": {}},
        "text_encoder": {"name": "minilm", "options": {"freeze": True}, "set": {}},
        "loss": {"name": "ntxent", "options": {"tau": 0.05}, "set": {}},
        "seed": 0,
        "training": {"epochs": 8, "device": "cpu"},
        "stage": {"stage": 1, "M": None, "teachers": [], "init": None, "role": None},
        "metrics": _metrics(t2a_map),
        "best_val": {"epoch": 3, **_metrics(t2a_map)},
        "chance": _metrics(0.01),
        "history": [],
        "skipped": [],
        "provenance": {"bench_version": "0.1.0", "device": "cpu"},
        "timings": {"train_s": 125.0, "eval_s": 10.0, "total_s": 140.0},
    }
    _deep_update(result, copy.deepcopy(overrides))
    result.update(copy.deepcopy(replace or {}))
    return result


@pytest.fixture
def make_result() -> Callable[..., dict[str, Any]]:
    """``make_result(run_id, t2a_map=..., seed=..., loss={"set": {...}}, replace={...})`` -> a valid result dict."""
    return build_result


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """Replace the training loop by a recorder of the RunConfigs `bench run` would have run."""
    import bench.runs.grid

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    calls: list[list] = []

    def fake_run_grid(configs, *, force=False, registry=None):
        calls.append(list(configs))
        return []

    monkeypatch.setattr(bench.runs.grid, "run_grid", fake_run_grid)
    # Nothing is built, so the components' disk checks (dataset roots, weights files: bench.core.preflight)
    # are not what these tests look at; names, option keys and values are still checked.
    monkeypatch.setattr("bench.core.preflight.factory_preflight", lambda factory: None)
    return calls


def drop_console_handlers() -> None:
    """Detach bench's console handler (bench.core.console marks it ``_bench_console``).

    The CLI binds it to the stderr of the test that ran it; later tests must not write to it.
    """
    logger = logging.getLogger("bench")
    for handler in list(logger.handlers):
        if getattr(handler, "_bench_console", False):
            logger.removeHandler(handler)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """No writes to ~/.cache (``BENCH_CACHE`` in the test's tmp dir), and no console handler left behind."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    yield
    drop_console_handlers()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside, restored after. Tests use 1: their GEMMs are
    tiny, and worker threads only spin against the other jobs of a loaded 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """:func:`torch_threads` (1) around one test."""
    with torch_threads(1):
        yield
