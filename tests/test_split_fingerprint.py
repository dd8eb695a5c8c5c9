"""A split's fingerprint is computed once per split object, and stays what it was."""

from __future__ import annotations

import hashlib
import pickle
from types import SimpleNamespace

import pytest

import bench.data.loading
from bench.data.loading import SplitData


def _split(n: int = 4) -> SplitData:
    items = [SimpleNamespace(audio_id=f"a{i}", audio_path=f"a{i}.wav", captions=[f"sound {i}", f"noise {i}"])
             for i in range(n)]
    return SplitData.from_items("test", items)


def test_fingerprint_is_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hashlib.sha256

    def counting_sha256(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(bench.data.loading.hashlib, "sha256", counting_sha256)
    split = _split()
    first = split.fingerprint()
    assert [split.fingerprint() for _ in range(5)] == [first] * 5
    assert split.summary()["fingerprint"] == first
    assert len(calls) == 1


def test_cached_value_equals_a_fresh_computation_and_survives_pickling() -> None:
    split = _split()
    value = split.fingerprint()
    assert _split().fingerprint() == value and _split(5).fingerprint() != value
    copy = pickle.loads(pickle.dumps(split))  # DataLoader workers and spawn-started ranks get a copy
    assert copy.fingerprint() == value and copy.captions == split.captions
