"""The embedding cache of frozen encoders: same metrics with or without it, hits on the second run,
keys that follow options / weights / split, atomic and concurrent writes, and the crop policy.

Crop policy (bench.evaluation.embedding_cache, bench.training.trainer): a cache entry holds one vector per recording,
computed on the *evaluation view* (the clip from its start up to ``max_seconds``). Random training
crops would need a different vector per crop, which a cache cannot hold. So whenever the audio
encoder is frozen, training uses the evaluation view too, cached or not: ``TrainPairs.crop_seconds``
is ``None``. Only then does turning the cache on leave the computation unchanged.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from bench.cli.main import main
from bench.core.config import ComponentSpec, RunConfig, TrainSettings
from bench.data.loading import AudioLoader, EvalAudio, SplitData
from bench.evaluation.embedding_cache import EmbeddingCache, entry_key, weights_fingerprint

TINY = ["--set", "synthetic.n_train=16", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
        "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--device", "cpu", "--no-leaderboard"]
HITS = re.compile(r"embedding cache: (\d+) hit\(s\), (\d+) computed")


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE", str(root))
    return root


def run_bench(tmp_path: Path, name: str, *extra: str, caplog: pytest.LogCaptureFixture | None = None
              ) -> tuple[dict, tuple[int, int] | None]:
    """One in-process ``bench run``; returns its result and the (hits, computed) it logged."""
    results = tmp_path / name / "results"
    if caplog is not None:
        caplog.clear()
    assert main(["run", *TINY, "--results-dir", str(results), "--runs-dir", str(tmp_path / name / "runs"), *extra]) == 0
    files = list(results.glob("*.json"))
    assert len(files) == 1, files
    counts = None
    if caplog is not None:
        found = [HITS.search(r.getMessage()) for r in caplog.records]
        found = [m for m in found if m]
        counts = (int(found[-1].group(1)), int(found[-1].group(2))) if found else None
    return json.loads(files[0].read_text()), counts


def entries(cache_root: Path) -> dict[str, int]:
    """Cache entry files -> mtime in ns (temp files, which start with a dot, excluded)."""
    root = cache_root / "embeddings"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.npy") if not p.name.startswith(".")}


def assert_metrics_close(a: dict, b: dict, tol: float = 1e-5) -> None:
    for direction in ("t2a", "a2t"):
        assert a["metrics"][direction].keys() == b["metrics"][direction].keys()
        for metric, value in a["metrics"][direction].items():
            assert value == pytest.approx(b["metrics"][direction][metric], abs=tol), (direction, metric)
    assert [h["train_loss"] for h in a["history"]] == pytest.approx([h["train_loss"] for h in b["history"]], rel=1e-4)
    assert [h["val"]["t2a"]["mAP@10"] for h in a["history"]] == pytest.approx(
        [h["val"]["t2a"]["mAP@10"] for h in b["history"]], abs=tol)


# -- end to end ---------------------------------------------------------------------------------
FROZEN = ["--set", "cnn.freeze=true"]
@pytest.mark.slow
def test_frozen_audio_cache_on_off_same_metrics(tmp_path, cache_env, caplog):
    caplog.set_level(logging.INFO, logger="bench")
    plain, counts = run_bench(tmp_path, "nocache", *FROZEN, "--set", "train.embedding_cache=false", caplog=caplog)
    assert counts is None, "the cache must not be consulted when it is off"
    assert entries(cache_env) == {}
    cached, counts = run_bench(tmp_path, "cache", *FROZEN, caplog=caplog)
    assert counts == (0, 6)
    assert_metrics_close(plain, cached)


@pytest.mark.slow
def test_second_run_hits_without_recompute_and_keys_follow_weights_and_options(tmp_path, cache_env, caplog):
    caplog.set_level(logging.INFO, logger="bench")
    cold, counts = run_bench(tmp_path, "cold", *FROZEN, caplog=caplog)
    # audio + text for train, val and test
    assert counts == (0, 6)
    written = entries(cache_env)
    assert len(written) == 6
    contents = {name: np.load(cache_env / "embeddings" / name) for name in written}
    assert {a.dtype for a in contents.values()} == {np.dtype(np.float32)}
    assert sorted(a.shape[0] for a in contents.values()) == sorted([16, 8, 8] + [80, 40, 40])  # clips, 5 captions each

    warm, counts = run_bench(tmp_path, "warm", *FROZEN, caplog=caplog)
    assert counts == (6, 0)
    assert entries(cache_env) == written, "a hit must not rewrite the entry"
    for name, array in contents.items():
        np.testing.assert_array_equal(np.load(cache_env / "embeddings" / name), array)
    assert warm["metrics"] == cold["metrics"]
    assert [h["train_loss"] for h in warm["history"]] == [h["train_loss"] for h in cold["history"]]

    # The frozen cnn is a random (scratch) network, so another seed gives other weights: the
    # audio entries must be recomputed, the text ones (same MiniLM) reused.
    _, counts = run_bench(tmp_path, "seed1", *FROZEN, "--seed", "1", caplog=caplog)
    assert counts == (3, 3)
    assert len(entries(cache_env)) == 9
    # Another encoder option is another key, even one that does not change the frozen output.
    _, counts = run_bench(tmp_path, "dropout", *FROZEN, "--set", "cnn.dropout=0.0", caplog=caplog)
    assert counts == (3, 3)
    assert len(entries(cache_env)) == 12


@pytest.mark.slow
def test_frozen_text_only_cache_same_metrics(tmp_path, cache_env, caplog):
    caplog.set_level(logging.INFO, logger="bench")
    # Small trainable cnn so the audio tower trains (random crops, dropout, BN) while MiniLM is frozen.
    small = ["--set", "cnn.channels=16,16", "--set", "cnn.n_mels=16", "--set", "cnn.crop_seconds=2.0"]
    plain, counts = run_bench(tmp_path, "nocache", *small, "--set", "train.embedding_cache=false", caplog=caplog)
    assert counts is None
    cached, counts = run_bench(tmp_path, "cache", *small, caplog=caplog)
    assert counts == (0, 3), "only the frozen text tower is cached"
    assert len(entries(cache_env)) == 3
    assert_metrics_close(plain, cached)


# -- keys ---------------------------------------------------------------------------------------
def _key(**change: object) -> str:
    base = {"encoder": "cnn", "options": {"n_mels": 64, "freeze": True}, "weights": "w1", "split": "s1",
            "view": "eval:max_seconds=30.0"}
    base.update(change)
    return entry_key(**base)  # type: ignore[arg-type]


def test_key_changes_with_each_part():
    keys = {
        _key(),
        _key(encoder="passt"),
        _key(options={"n_mels": 32, "freeze": True}),
        _key(weights="w2"),
        _key(split="s2"),
        _key(view="eval:max_seconds=10.0"),
    }
    assert len(keys) == 6
    assert _key() == _key(options={"freeze": True, "n_mels": 64}), "option order must not matter"


def test_weights_fingerprint_follows_parameters_and_buffers():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    b = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    b.load_state_dict(a.state_dict())
    assert weights_fingerprint(a) == weights_fingerprint(b)
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-6
    assert weights_fingerprint(a) != weights_fingerprint(b)
    b.load_state_dict(a.state_dict())
    b[1].running_mean += 0.5  # a buffer changes a frozen encoder's output too
    assert weights_fingerprint(a) != weights_fingerprint(b)
    assert weights_fingerprint(a.to(torch.bfloat16)) != weights_fingerprint(b.to(torch.bfloat16))


def _split(captions: list[list[str]], ids: list[str] | None = None) -> SplitData:
    ids = ids or [f"a{i}" for i in range(len(captions))]
    items = [SimpleNamespace(audio_id=i, audio_path=f"{i}.wav", captions=c) for i, c in zip(ids, captions)]
    return SplitData.from_items("train", items)


def test_split_fingerprint_follows_content():
    base = _split([["a dog barks", "a dog"], ["rain falls"]])
    assert base.fingerprint() == _split([["a dog barks", "a dog"], ["rain falls"]]).fingerprint()
    others = [
        _split([["a dog barks", "a dog!"], ["rain falls"]]),  # one caption edited
        _split([["a dog", "a dog barks"], ["rain falls"]]),  # caption order (pair index) changed
        _split([["rain falls"], ["a dog barks", "a dog"]]),  # item order changed
        _split([["a dog barks", "a dog"], ["rain falls"]], ids=["a0", "b1"]),  # another recording
        _split([["a dog barks"], ["a dog", "rain falls"]]),  # caption moved to another clip
    ]
    prints = {s.fingerprint() for s in others}
    assert base.fingerprint() not in prints and len(prints) == len(others)


# -- atomic and concurrent writes ----------------------------------------------------------------
def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_compute_failure_leaves_nothing(tmp_path):
    cache = EmbeddingCache(tmp_path)

    def broken() -> np.ndarray:
        raise RuntimeError("encoder crashed midway")

    with pytest.raises(RuntimeError, match="midway"):
        cache.get("ab" + "0" * 22, broken)
    assert _files(tmp_path) == []
    assert (cache.hits, cache.misses) == (0, 1)


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_write_leaves_no_half_entry_and_no_temp(tmp_path, monkeypatch, error):
    cache = EmbeddingCache(tmp_path)
    key = "cd" + "1" * 22
    real_save = np.save

    def half_save(file, array, *args, **kwargs):
        # Part of the bytes reach the disk, then the write dies (np.save gets a path or a handle).
        if hasattr(file, "write"):
            file.write(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'")
        else:
            with open(file, "wb") as handle:
                handle.write(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'")
        raise error

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(type(error)):
        cache.get(key, lambda: np.ones((3, 2)))
    assert not cache.path(key).exists()
    assert _files(tmp_path) == [], "the temp file must be removed"

    monkeypatch.setattr(np, "save", real_save)
    value = cache.get(key, lambda: np.full((3, 2), 2.0))
    np.testing.assert_array_equal(value, np.full((3, 2), 2.0, dtype=np.float32))
    assert _files(tmp_path) == [str(cache.path(key).relative_to(tmp_path))]


def test_stale_temp_from_killed_writer_is_not_an_entry(tmp_path):
    # A writer killed with SIGKILL cannot clean up; its temp file must never be read as the entry.
    cache = EmbeddingCache(tmp_path)
    key = "ef" + "2" * 22
    cache.path(key).parent.mkdir(parents=True)
    (cache.path(key).parent / f".{key}.xyz.npy").write_bytes(b"\x93NUMPY half")
    value = cache.get(key, lambda: np.arange(4.0))
    assert (cache.hits, cache.misses) == (0, 1)
    np.testing.assert_array_equal(np.load(cache.path(key)), np.arange(4.0, dtype=np.float32))
    np.testing.assert_array_equal(value, np.arange(4.0))


def test_unreadable_entry_is_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = "0a" + "3" * 22
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(b"not a numpy file")
    value = cache.get(key, lambda: np.eye(2))
    np.testing.assert_array_equal(value, np.eye(2, dtype=np.float32))
    np.testing.assert_array_equal(np.load(cache.path(key)), np.eye(2, dtype=np.float32))


def _writer(root: str, key: str, barrier: object, queue: object) -> None:
    cache = EmbeddingCache(Path(root))

    def compute() -> np.ndarray:
        barrier.wait(timeout=30)  # both processes have missed and are computing at the same time
        return np.arange(5000, dtype=np.float64).reshape(100, 50) / 7.0

    array = cache.get(key, compute)
    queue.put((cache.hits, cache.misses, float(np.asarray(array).sum())))


@pytest.mark.slow
def test_concurrent_writers_end_with_one_valid_entry(tmp_path):
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    queue = context.Queue()
    key = "77" + "4" * 22
    workers = [context.Process(target=_writer, args=(str(tmp_path), key, barrier, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    reports = [queue.get(timeout=5) for _ in workers]
    expected = np.arange(5000, dtype=np.float32).reshape(100, 50) / np.float32(7.0)
    assert [r[:2] for r in reports] == [(0, 1), (0, 1)], "both computed: neither saw the other's entry early"
    assert _files(tmp_path) == [str(EmbeddingCache(tmp_path).path(key).relative_to(tmp_path))]
    stored = np.load(EmbeddingCache(tmp_path).path(key))
    np.testing.assert_allclose(stored, expected, rtol=1e-6)
    assert EmbeddingCache(tmp_path).get(key, lambda: pytest.fail("must be a hit")).shape == (100, 50)


# -- crop policy ---------------------------------------------------------------------------------
class FrozenText(nn.Module):
    """A tiny frozen text encoder: bag of character codes."""

    embed_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4), requires_grad=False)

    def forward(self, captions: list[str]) -> torch.Tensor:
        return torch.stack([torch.tensor([len(c), c.count("a"), c.count("e"), 1.0]) * self.weight for c in captions])


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_audio_encoder_trains_on_the_evaluation_view(tmp_path, monkeypatch, freeze):
    from bench.core.registry import get_registry
    from bench.training.trainer import Components, Trainer

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    rate = 16000
    items = []
    for index, seconds in enumerate((12.0, 11.0, 3.0)):
        path = tmp_path / f"clip{index}.wav"
        sf.write(path, np.random.default_rng(index).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32), rate)
        items.append(SimpleNamespace(audio_id=f"clip{index}", audio_path=path, captions=["a sound", "the same sound"]))
    split = SplitData.from_items("train", items)
    registry = get_registry()
    encoder = registry.build("audio_encoder", "cnn", {"freeze": freeze, "channels": "8", "n_mels": 16})
    cfg = RunConfig(dataset=ComponentSpec("synthetic"), audio_encoder=ComponentSpec("cnn", {"freeze": freeze}),
                    text_encoder=ComponentSpec("tiny"), loss=ComponentSpec("ntxent"), device="cpu",
                    train=TrainSettings(batch_size=2, num_workers=0, embedding_cache=False, proj_dim=8))
    components = Components(dataset=None, audio_encoder=encoder, text_encoder=FrozenText(),
                            loss=registry.build("loss", "ntxent", {}))
    trainer = Trainer.build(cfg, components, {"train": split, "val": split, "test": split}, tmp_path / "run",
                      audio_loader=AudioLoader())
    eval_view = EvalAudio(split, rate, encoder.max_seconds, AudioLoader())
    if freeze:
        assert trainer.crop_seconds is None and trainer.train_pairs.crop_seconds is None
        for pair in range(split.n_captions):
            sample = trainer.train_pairs[pair]
            np.testing.assert_array_equal(sample["audio"], eval_view[sample["item_index"]]["audio"])
    else:
        assert trainer.crop_seconds == pytest.approx(encoder.crop_seconds) == pytest.approx(10.0)
        assert trainer.train_pairs.crop_seconds == pytest.approx(10.0)
        assert len(trainer.train_pairs[0]["audio"]) == 10 * rate  # a 10 s crop of the 12 s clip
