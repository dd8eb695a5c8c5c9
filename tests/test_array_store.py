"""One cache root for every cache, one array store under the audio cache, embedding cache and teacher stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.core.array_store import ArrayStore
from bench.core.cache_dir import cache_path, cache_root
from bench.data.audio_cache import AudioCache
from bench.evaluation.embedding_cache import EmbeddingCache


def test_cache_root_follows_bench_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert cache_path("audio") == tmp_path / "c" / "audio"
    monkeypatch.setenv("BENCH_CACHE", "~/somewhere")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / "somewhere"
    monkeypatch.delenv("BENCH_CACHE")
    assert cache_root() == tmp_path / ".cache" / "bench"


def test_every_cache_uses_the_one_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bench.data import validate
    from bench_plugins.datasets import _synth_generate

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    assert AudioCache().cache_dir == tmp_path / "audio"
    assert EmbeddingCache().root == tmp_path / "embeddings"
    assert _synth_generate.default_root("abc") == tmp_path / "synthetic" / "abc"
    report = validate.validate_split_cached([], split="test", decode=False)
    assert report.items == [] and [p.parent.name for p in tmp_path.rglob("*.json")] == ["manifests"]


def test_put_get_round_trip_with_fanout(tmp_path: Path) -> None:
    store = ArrayStore(tmp_path)
    key = "abcdef0123"
    assert not store.exists(key) and store.get(key) is None
    array = np.arange(12, dtype=np.float16).reshape(3, 4)
    path = store.put(key, array)
    assert path == tmp_path / "ab" / f"{key}.npy" and store.exists(key)
    mapped = store.get(key)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, array)
    loaded = store.get(key, mmap=False)
    assert not isinstance(loaded, np.memmap) and loaded.dtype == np.float16
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ab", f"{key}.npy"]  # no temporary files left


def test_flat_store_and_replacement(tmp_path: Path) -> None:
    store = ArrayStore(tmp_path, fanout=False)
    store.put("audio", np.zeros(3))
    store.put("audio", np.ones(2))
    assert store.path("audio") == tmp_path / "audio.npy"
    np.testing.assert_array_equal(store.get("audio", mmap=False), np.ones(2))


def test_damaged_or_foreign_entries_read_as_absent(tmp_path: Path) -> None:
    store = ArrayStore(tmp_path)
    store.path("ffff").parent.mkdir(parents=True)
    store.path("ffff").write_bytes(b"not numpy")
    good = store.put("eeee", np.arange(1000, dtype=np.float32))
    good.write_bytes(good.read_bytes()[:200])  # truncated by a crash of something else
    store.path("dddd").parent.mkdir(parents=True)
    with open(store.path("dddd"), "wb") as handle:  # a pickled array must never be unpickled
        np.save(handle, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert store.get("ffff") is None and store.get("eeee") is None and store.get("dddd") is None
    assert store.get("eeee", mmap=False) is None


@pytest.mark.parametrize("key", ["", "../x", "a/b", ".hidden"])
def test_keys_are_plain_file_names(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        ArrayStore(tmp_path).path(key)


def test_embedding_and_audio_caches_share_the_store_layout(tmp_path: Path) -> None:
    embeddings = EmbeddingCache(tmp_path / "e")
    assert embeddings.path("0123abcd") == ArrayStore(tmp_path / "e").path("0123abcd")
    assert AudioCache(tmp_path / "a").store.root == tmp_path / "a"


def test_atomic_write_bytes(tmp_path: Path) -> None:
    from bench.core.atomic import atomic_write_bytes

    atomic_write_bytes(tmp_path / "sub" / "f.bin", b"\x00\x01")
    atomic_write_bytes(tmp_path / "sub" / "f.bin", b"\x02")
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"\x02"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.bin"]
