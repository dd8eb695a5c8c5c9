"""bench.data.validate: every bad entry named with its reason; policy; manifest cache; audio cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.data.audio_cache import AudioCache
from bench.data.items import Item
from bench.data.validate import (
    BadEntry,
    apply_policy,
    check_caption,
    validate_dataset,
    validate_split,
    validate_split_cached,
)
from bench.errors import ConfigError, DataError


def _wav(path: Path, seconds: float = 0.2, sr: int = 16000, channels: int = 1, subtype: str = "PCM_16",
         data: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        n = int(sr * seconds)
        data = 0.1 * np.sin(np.arange(n) / 10.0).astype(np.float32)
        if channels > 1:
            data = np.stack([data] * channels, axis=1)
    sf.write(path, data, sr, subtype=subtype)
    return path


def _item(root: Path, name: str, captions=("a dog barks", "rain falls")) -> Item:
    return Item(audio_id=name, audio_path=root / name, captions=tuple(captions))


@pytest.fixture
def messy(tmp_path):
    """One good item and one item for each kind of problem, with the reason each must get."""
    root = tmp_path / "data"
    _wav(root / "good.wav", sr=44100)
    _wav(root / "short.wav", seconds=0.15, sr=48000)  # short, but above the 0.1 s minimum
    (root / "zero.wav").write_bytes(b"")
    (root / "text.wav").write_text("definitely not audio\n")
    (root / "trunc.wav").write_bytes((root / "good.wav").read_bytes()[:20])
    nan = np.zeros(1000, np.float32)
    nan[5] = np.nan
    _wav(root / "nan.wav", data=nan, subtype="FLOAT")
    _wav(tmp_path / "outside.wav")
    items = [
        _item(root, "good.wav"),
        _item(root, "short.wav"),
        _item(root, "zero.wav"),
        _item(root, "text.wav"),
        _item(root, "trunc.wav"),
        _item(root, "nan.wav"),
        _item(root, "missing.wav"),
        Item("escape", root / ".." / "outside.wav", ("a sound",)),
        Item("good.wav", root / "short.wav", ("duplicate id",)),
        Item("again", root / "good.wav", ("same file",)),
        _item(root, "emptycap.wav", ("fine", "   ")),
        _item(root, "punct.wav", ("fine", "?!...")),
        Item("nocaps", _wav(root / "nocaps.wav"), ()),
    ]
    expected = {
        "zero.wav": "empty (0 bytes)",
        "text.wav": "not an audio file",
        "trunc.wav": "header",
        "nan.wav": "NaN/inf",
        "missing.wav": "not found",
        "escape": "outside the dataset root",
        "again": "duplicate file name",
        "emptycap.wav": "caption 2: empty caption",
        "punct.wav": "caption 2: caption has no letters or digits",
        "nocaps": "no captions",
    }
    return root, items, expected


def test_every_bad_entry_named(messy):
    root, items, expected = messy
    rep = validate_split(items, root=root, split="train", sample_rate=32000)
    reasons = {b.audio_id: b.reason for b in rep.bad}
    for aid, fragment in expected.items():
        assert fragment in reasons[aid], (aid, reasons.get(aid))
    # the duplicate id is the second "good.wav" entry; the first one stays usable
    dup = [b for b in rep.bad if b.audio_id == "good.wav"]
    assert len(dup) == 1 and "duplicate audio_id" in dup[0].reason
    assert [it.audio_id for it in rep.ok_items] == ["good.wav", "short.wav"]
    assert len(rep.bad) == len(items) - 2
    assert rep.stats["sample_rates"] == {"44100": 1, "48000": 1}
    assert rep.stats["duration_min"] == pytest.approx(0.15, abs=1e-3)
    summary = rep.summary()
    assert "\n" not in summary and "2 usable item(s) of 13" in summary and "11 bad" in summary
    data = json.loads(rep.to_json())
    assert data["n_bad"] == 11 and {"split", "audio_id", "path", "reason"} <= set(data["bad"][0])


def test_policy_raise_lists_first_entries(messy):
    root, items, _ = messy
    rep = validate_split(items, root=root, split="val")
    with pytest.raises(DataError) as ei:
        apply_policy(rep, "raise")
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("11 bad entries in split 'val'")
    assert "zero.wav" in msg and "... and 1 more" in msg and "on_error=skip" in msg


def test_policy_skip_returns_kept_and_skipped(messy):
    root, items, _ = messy
    rep = validate_split(items, root=root, split="test")
    kept, skipped = apply_policy(rep, "skip")
    assert [it.audio_id for it in kept] == ["good.wav", "short.wav"]
    assert all(isinstance(b, BadEntry) and b.reason for b in skipped) and len(skipped) == 11
    with pytest.raises(ConfigError):
        apply_policy(rep, "ignore")


def test_clean_split_passes_policy(tmp_path):
    items = [_item(tmp_path, f"{i}.wav") for i in range(3)]
    for it in items:
        _wav(Path(it.audio_path))
    rep = validate_split(items, root=tmp_path, expected_captions=2)
    assert rep.ok and apply_policy(rep, "raise") == (items, [])
    rep = validate_split(items, root=tmp_path, expected_captions=5)
    assert all("has 2 captions, expected 5" in b.reason for b in rep.bad) and len(rep.bad) == 3


def test_check_caption():
    assert check_caption("A dog.") is None
    assert check_caption("über") is None
    assert check_caption("") == "empty caption"
    assert "no letters" in check_caption("-- ? --")
    assert "not text" in check_caption(None)


def test_manifest_cache_hit_and_invalidation(tmp_path):
    root = tmp_path / "d"
    items = [_item(root, f"{i}.wav") for i in range(3)]
    for it in items:
        _wav(Path(it.audio_path))
    cache = tmp_path / "cache"
    first = validate_split_cached(items, cache_dir=cache, root=root, split="train")
    assert not first.from_cache and first.ok
    manifests = list((cache / "manifests").glob("*.json"))
    assert len(manifests) == 1
    second = validate_split_cached(items, cache_dir=cache, root=root, split="train")
    assert second.from_cache and second.ok and second.stats == first.stats
    # Changing a file (size and mtime) must invalidate the cached manifest.
    (root / "1.wav").write_text("now it is text")
    third = validate_split_cached(items, cache_dir=cache, root=root, split="train")
    assert not third.from_cache and [b.audio_id for b in third.bad] == ["1.wav"]
    fourth = validate_split_cached(items, cache_dir=cache, root=root, split="train")
    assert fourth.from_cache and [it.audio_id for it in fourth.ok_items] == ["0.wav", "2.wav"]
    # A damaged manifest is ignored and rewritten, never trusted.
    for m in (cache / "manifests").glob("*.json"):
        m.write_text("{not json")
    fifth = validate_split_cached(items, cache_dir=cache, root=root, split="train")
    assert not fifth.from_cache and len(fifth.bad) == 1
    assert not list((cache / "manifests").glob("*.tmp"))


def test_validate_dataset_includes_dataset_skips(tmp_path, monkeypatch):
    from bench_plugins.datasets.clotho import ClothoDataset
    from tests.test_datasets import make_clotho

    root = make_clotho(tmp_path / "c")
    (root / "validation" / "validation sound, no 2.wav").unlink()
    (root / "evaluation" / "evaluation sound, no 0.wav").write_text("oops")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "bc"))
    ds = ClothoDataset(root, on_error="skip")
    reps = validate_dataset(ds, sample_rate=32000)
    assert reps["train"].ok
    assert [(b.audio_id, b.reason) for b in reps["val"].bad] == [("validation sound, no 2.wav", "audio file not found")]
    assert [b.audio_id for b in reps["test"].bad] == ["evaluation sound, no 0.wav"]
    assert "not an audio file" in reps["test"].bad[0].reason
    assert len(reps["test"].ok_items) == 2
    assert list((tmp_path / "bc" / "manifests").glob("*.json"))
    again = validate_dataset(ds, sample_rate=32000)
    assert all(r.from_cache for r in again.values())


def test_audio_cache_roundtrip_and_invalidation(tmp_path):
    src = _wav(tmp_path / "a.wav", seconds=1.0, sr=44100, channels=2)
    os.utime(src, ns=(10**18, 10**18))  # an old file: ctime stays recent, so racy_seconds=0 below
    cache = AudioCache(tmp_path / "cache", racy_seconds=0.0)
    a = cache.load(src, 32000, max_seconds=0.5)
    assert a.dtype == np.float32 and a.shape == (16000,) and cache.misses == 1
    b = cache.load(src, 32000, max_seconds=0.5)
    assert cache.hits == 1 and np.array_equal(a, b)
    from bench.data.audio import load_audio

    assert np.array_equal(a, load_audio(src, 32000, max_seconds=0.5))  # lossless: the same bits
    assert np.array_equal(cache.load(src, 32000, 0.25, 0.5), load_audio(src, 32000, offset_seconds=0.25,
                                                                        max_seconds=0.5))
    assert cache.hits == 2
    cache.load(src, 16000, max_seconds=0.5)  # another rate is another entry
    assert cache.misses == 2
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 2 and all(np.load(e).dtype == np.float32 for e in entries)
    os.utime(src, ns=(1, 1))  # same content, new mtime -> stale entry must not be used
    cache.load(src, 32000, max_seconds=0.5)
    assert cache.misses == 3
    # a damaged entry is decoded again
    for e in (tmp_path / "cache").rglob("*.npy"):
        e.write_bytes(b"garbage")
    c = cache.load(src, 32000, max_seconds=0.5)
    assert cache.misses == 4 and np.array_equal(c, a)
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_audio_cache_sees_a_file_edited_in_place(tmp_path):
    """Same path, same size, new samples written into the file: a miss, and the new audio."""
    import time

    import soundfile as sf

    src = _wav(tmp_path / "a.wav", seconds=1.0, sr=44100, channels=2)
    cache = AudioCache(tmp_path / "cache", racy_seconds=0.2)
    first = cache.load(src, 32000)
    assert cache.misses == 1 and cache.unstored == 1, "a file written just now is too fresh to cache"
    time.sleep(0.25)
    assert np.array_equal(cache.load(src, 32000), first) and cache.misses == 2 and cache.unstored == 1
    assert np.array_equal(cache.load(src, 32000), first) and cache.hits == 1
    size, inode = src.stat().st_size, src.stat().st_ino
    with sf.SoundFile(src, "r+") as f:  # overwrite the samples in place, as an audio editor would
        f.seek(0)
        f.write(np.zeros((f.frames, f.channels)))
    assert (src.stat().st_size, src.stat().st_ino) == (size, inode)
    edited = cache.load(src, 32000)
    assert cache.misses == 3 and cache.hits == 1
    assert not edited.any() and first.any()


def test_audio_cache_propagates_audio_errors(tmp_path):
    from bench.data.audio import AudioError

    cache = AudioCache(tmp_path / "cache")
    with pytest.raises(AudioError, match="not found"):
        cache.load(tmp_path / "nope.wav", 16000)
    (tmp_path / "z.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        cache.load(tmp_path / "z.wav", 16000)


@pytest.mark.slow
def test_audio_cache_concurrent_processes(tmp_path):
    """Several processes filling the same entries at once all get the same, complete arrays."""
    import subprocess
    import sys

    srcs = [_wav(tmp_path / f"s{i}.wav", seconds=0.5, sr=44100) for i in range(4)]
    code = ("import sys, numpy as np\n"
            "from bench.data.audio_cache import AudioCache\n"
            "c = AudioCache(sys.argv[1], racy_seconds=0.0)\n"  # the clips were written just now
            "print(sum(float(np.abs(c.load(p, 32000)).sum()) for p in sys.argv[2:]))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "cache"), *map(str, srcs)],
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 4
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_policy_prior_skips_do_not_raise_again(tmp_path):
    """Entries a dataset already skipped (on_error=skip while parsing) are listed, not re-raised."""
    items = [_item(tmp_path, "ok.wav")]
    _wav(tmp_path / "ok.wav")
    prior = [BadEntry("train", "gone.wav", str(tmp_path / "gone.wav"), "audio file not found")]
    rep = validate_split(items, root=tmp_path, split="train", prior_bad=prior)
    kept, skipped = apply_policy(rep, "raise")
    assert kept == items and skipped == prior
    assert "1 usable item(s) of 2" in rep.summary()
    (tmp_path / "ok.wav").write_bytes(b"")
    rep = validate_split(items, root=tmp_path, split="train", prior_bad=prior)
    with pytest.raises(DataError, match=r"^1 bad entry in split 'train': \[train\] ok.wav"):
        apply_policy(rep, "raise")


class _TwoSplits:
    """A minimal dataset: ``splits`` maps a split name to its items."""

    def __init__(self, splits: dict[str, list[Item]]) -> None:
        self.splits = splits

    def split(self, name: str) -> list[Item]:
        return self.splits[name]


@pytest.mark.parametrize("cached", [False, True])
def test_cross_split_copy_leaves_the_later_splits_stats(tmp_path, cached):
    # A train clip copied into test is a bad test entry (on_leak="error"); test's durations,
    # rates and caption counts must then describe only its usable items, as its usable count does.
    from bench.data.audio_checks import ValidationOptions

    root = tmp_path / "d"
    train = [_item(root, "t0.wav"), _item(root, "t1.wav")]
    test = [_item(root, "e0.wav", captions=("a", "b", "c")), _item(root, "copy.wav")]
    _wav(root / "t0.wav", seconds=0.5)
    _wav(root / "t1.wav", seconds=0.3, data=0.2 * np.cos(np.arange(4800) / 7.0).astype(np.float32))
    _wav(root / "e0.wav", seconds=0.25, sr=22050)
    (root / "copy.wav").write_bytes((root / "t1.wav").read_bytes())
    ds = _TwoSplits({"train": train, "test": test})
    opts = ValidationOptions(on_leak="error")
    cache = tmp_path / "cache" if cached else False
    for attempt in range(2 if cached else 1):
        reps = validate_dataset(ds, splits=("train", "test"), cache_dir=cache, options=opts, log_warnings=False)
        test_report = reps["test"]
        assert [b.audio_id for b in test_report.bad] == ["copy.wav"]
        assert test_report.from_cache == (attempt == 1)
        stats = test_report.stats
        assert stats["caption_counts"] == {"3": 1} and stats["n_captions"] == 3
        assert stats["sample_rates"] == {"22050": 1}
        assert stats["duration_total"] == 5512 / 22050 == stats["duration_max"]  # int(0.25 s * 22050) frames
        assert stats["n_identical_across_splits"] == 1
        assert reps["train"].stats["duration_total"] == pytest.approx(0.8)
        assert "split test: 1 usable item(s) of 2" in test_report.summary()
