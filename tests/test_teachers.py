"""The teacher store of ensemble distillation (bench/training/teachers.py).

The store keeps each teacher's projected embeddings of the training split on disk, keyed by
position (item index for audio, pair index for captions), never by caption text: Clotho has the
same caption for different recordings. The split used here is the synthetic training split with
one caption of recording 1 replaced by a caption of recording 0, so the two recordings share an
identical caption string. One tiny ntxent run is the teacher.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench.cli.main import main
from bench.core.array_store import ArrayStore
from bench.core.registry import get_registry
from bench.data.loading import SplitData
from bench.errors import BenchError, ConfigError
from bench.training.teachers import TeacherEmbeddings, TeacherEnsemble, build_store, load_ensemble, store_directory

DATASET = {"n_train": 8, "n_val": 4, "n_test": 12}
TINY = [
    *(arg for key, value in DATASET.items() for arg in ("--set", f"synthetic.{key}={value}")),
    "--set", "cnn.channels=8,8", "--set", "cnn.n_mels=16", "--set", "cnn.embed_dim=16", "--set", "cnn.crop_seconds=2",
    "--set", "train.captions_per_audio=1",
    "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--proj-dim", "16", "--no-leaderboard",
]
DIM = 16
BUILD = {"device": "cpu", "batch_size": 64, "num_workers": 0}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # One cache for the session (shared with the other test files): audio and MiniLM outputs are computed once.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "bench-cache"))
        yield tmp_path_factory.mktemp("teachers")


@pytest.fixture(scope="module")
def teacher(env: Path) -> Path:
    """The run directory of one finished ntxent run."""
    runs = env / "runs"
    assert main(["run", *TINY, "--results-dir", str(env / "results"), "--runs-dir", str(runs)]) == 0
    (run_dir,) = [p for p in runs.iterdir() if (p / "result.json").is_file()]
    return run_dir


@pytest.fixture(scope="module")
def train_split(env: Path) -> SplitData:
    dataset = get_registry().build("dataset", "synthetic", DATASET)
    return SplitData.from_items("train", dataset.split("train"))


@pytest.fixture(scope="module")
def twin_split(train_split: SplitData) -> SplitData:
    """The training split with caption 3 of recording 1 set to caption 2 of recording 0 (the same string)."""
    items = list(train_split.items)
    shared = items[0].captions[2]
    captions = list(items[1].captions)
    assert shared not in captions
    captions[3] = shared
    items[1] = dataclasses.replace(items[1], captions=tuple(captions))
    split = SplitData.from_items("train", items)
    assert split.fingerprint() != train_split.fingerprint()
    return split


def twin_pairs(split: SplitData) -> tuple[int, int]:
    """The pair indices of the shared caption: (recording 0's, recording 1's)."""
    first, second = [i for i, c in enumerate(split.captions) if c == split.items[0].captions[2]]
    assert split.audio_of_caption[first] == 0 and split.audio_of_caption[second] == 1
    return first, second


@pytest.fixture(scope="module")
def twin_store(teacher: Path, twin_split: SplitData) -> Path:
    return build_store(teacher, twin_split, registry=get_registry(), **BUILD)


def write_store(directory: Path, split: SplitData, offset: float) -> None:
    """A hand-made store whose rows hold their own index (+ offset), so a lookup shows which rows it read."""
    directory.mkdir(parents=True)
    audio = np.repeat(np.arange(split.n_audios, dtype=np.float16)[:, None] + offset, DIM, axis=1)
    text = np.repeat(np.arange(split.n_captions, dtype=np.float16)[:, None] + offset, DIM, axis=1)
    store = ArrayStore(directory, fanout=False)  # with the checksums the store verifies on read
    store.put("audio", audio)
    store.put("text", text)
    (directory / "meta.json").write_text(json.dumps({"version": 1, "fingerprint": split.fingerprint()}))


def teacher_model(run_dir: Path) -> Any:
    """The teacher's best checkpoint in a DualEncoder, built here independently of bench.training.teachers."""
    from bench.core.config import config_from_json
    from bench.model.dual_encoder import DualEncoder

    registry = get_registry()
    cfg = config_from_json(json.loads((run_dir / "config.json").read_text())["config"])
    model = DualEncoder(registry.build("audio_encoder", cfg.audio_encoder.name, cfg.audio_encoder.options),
                        registry.build("text_encoder", cfg.text_encoder.name, cfg.text_encoder.options),
                        cfg.train.proj_dim)
    state = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(state, strict=False)
    return model.eval()


# -- lookup ----------------------------------------------------------------------------------------
def test_lookup_reads_rows_by_pair_index_not_by_caption(tmp_path: Path, twin_split: SplitData) -> None:
    write_store(tmp_path / "a", twin_split, 0.0)
    write_store(tmp_path / "b", twin_split, 100.0)
    ensemble = TeacherEnsemble([TeacherEmbeddings(tmp_path / "a", twin_split),
                                TeacherEmbeddings(tmp_path / "b", twin_split)],
                               ["a", "b"])
    first, second = twin_pairs(twin_split)
    pairs = torch.tensor([second, 0, first, twin_split.n_captions - 1, second])
    audio, text = ensemble.lookup(pairs, "cpu")
    assert audio.shape == text.shape == (2, len(pairs), DIM)
    assert audio.dtype == text.dtype == torch.float32
    expected_text = pairs.float()
    expected_audio = torch.from_numpy(twin_split.audio_of_caption[pairs.numpy()]).float()
    for member, offset in enumerate((0.0, 100.0)):
        assert torch.equal(text[member], (expected_text + offset)[:, None].expand(-1, DIM))
        assert torch.equal(audio[member], (expected_audio + offset)[:, None].expand(-1, DIM))
    # The identical caption of recording 1 reads recording 1's audio row and its own caption row.
    assert audio[0, 0, 0] == 1 and audio[0, 2, 0] == 0
    assert text[0, 0, 0] == second and text[0, 2, 0] == first
    assert len(ensemble) == 2 and ensemble.run_ids == ["a", "b"]


@pytest.mark.slow
def test_store_is_memory_mapped_fp16(twin_store: Path, twin_split: SplitData) -> None:
    member = TeacherEmbeddings(twin_store, twin_split)
    assert isinstance(member.audio, np.memmap) and isinstance(member.text, np.memmap)
    assert member.audio.dtype == member.text.dtype == np.float16
    assert member.audio.shape == (twin_split.n_audios, DIM)
    # One row per pair, not per distinct caption string.
    assert member.text.shape == (twin_split.n_captions, DIM)
    assert len(set(twin_split.captions)) == twin_split.n_captions - 1


def test_empty_ensemble_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one teacher"):
        TeacherEnsemble([], [])


# -- building the store ----------------------------------------------------------------------------
@pytest.mark.slow
def test_store_holds_the_teachers_embeddings_per_pair(teacher: Path, twin_store: Path, twin_split: SplitData) -> None:
    from bench.data.audio import load_audio

    assert twin_store == store_directory(teacher, twin_split) == teacher / "teacher_store" / twin_split.fingerprint()
    meta = json.loads((twin_store / "meta.json").read_text())
    assert meta["fingerprint"] == twin_split.fingerprint()
    assert (meta["n_audios"], meta["n_captions"], meta["dim"]) == (twin_split.n_audios, twin_split.n_captions, DIM)
    assert meta["teacher"] == teacher.name
    assert sorted(p.name for p in twin_store.iterdir()) == ["audio.npy", "meta.json", "text.npy"]  # no temp files

    model = teacher_model(teacher)
    with torch.no_grad():
        text = model.encode_text(twin_split.captions)
        audio = torch.cat([
            model.encode_audio(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
            for wave in (load_audio(item.audio_path, model.audio_encoder.sample_rate, max_seconds=30.0)
                         for item in twin_split.items)
        ])
    stored_audio = np.load(twin_store / "audio.npy")
    stored_text = np.load(twin_store / "text.npy")
    np.testing.assert_allclose(stored_text.astype(np.float32), text.numpy(), atol=2e-3)
    np.testing.assert_allclose(stored_audio.astype(np.float32), audio.numpy(), atol=2e-3)

    first, second = twin_pairs(twin_split)
    audio_rows, text_rows = TeacherEnsemble([TeacherEmbeddings(twin_store, twin_split)], [teacher.name]).lookup(
        torch.tensor([first, second]), "cpu")
    assert torch.equal(text_rows[0, 0], text_rows[0, 1])  # the same string, the same teacher embedding
    assert not torch.allclose(audio_rows[0, 0], audio_rows[0, 1], atol=1e-2)  # but two recordings
    np.testing.assert_array_equal(audio_rows[0].numpy(), stored_audio[[0, 1]].astype(np.float32))


@pytest.mark.slow
def test_store_is_reused_without_recomputing(teacher: Path, twin_store: Path, twin_split: SplitData,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.evaluation.evaluate

    stamps = {p.name: p.stat().st_mtime_ns for p in twin_store.iterdir()}

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the teacher store was computed again")

    monkeypatch.setattr(bench.evaluation.evaluate, "embed_split", refuse)
    assert build_store(teacher, twin_split, registry=get_registry(), **BUILD) == twin_store
    ensemble = load_ensemble([teacher, teacher], twin_split, registry=get_registry(), **BUILD)
    assert len(ensemble) == 2 and ensemble.run_ids == [teacher.name, teacher.name]
    assert {p.name: p.stat().st_mtime_ns for p in twin_store.iterdir()} == stamps


@pytest.mark.slow
def test_store_without_meta_is_rebuilt(teacher: Path, twin_store: Path, twin_split: SplitData) -> None:
    audio = np.load(twin_store / "audio.npy")
    text = np.load(twin_store / "text.npy")
    # An interrupted build: meta.json is written last, so it is missing, and a data file is garbage.
    (twin_store / "meta.json").unlink()
    np.save(twin_store / "audio.npy", np.zeros((1, 3), dtype=np.float16))
    assert build_store(teacher, twin_split, registry=get_registry(), **BUILD) == twin_store
    assert (twin_store / "meta.json").is_file()
    np.testing.assert_array_equal(np.load(twin_store / "audio.npy"), audio)
    np.testing.assert_array_equal(np.load(twin_store / "text.npy"), text)
    assert TeacherEmbeddings(twin_store, twin_split).audio.shape == (twin_split.n_audios, DIM)


@pytest.mark.slow
def test_store_of_another_split_is_refused(teacher: Path, twin_store: Path, twin_split: SplitData,
                                           train_split: SplitData, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="another training split") as info:
        TeacherEmbeddings(twin_store, train_split)
    assert str(twin_store) in str(info.value)
    # A store copied under the other split's name is caught when the ensemble loads it.
    fake_teacher = tmp_path / "copied-run"
    target = store_directory(fake_teacher, train_split)
    target.parent.mkdir(parents=True)
    os.symlink(twin_store, target)
    with pytest.raises(ConfigError, match="another training split"):
        load_ensemble([fake_teacher], train_split, registry=get_registry(), **BUILD)


def test_teacher_without_checkpoint_is_a_clear_error(tmp_path: Path, train_split: SplitData) -> None:
    unfinished = tmp_path / "unfinished-run"
    unfinished.mkdir()
    with pytest.raises(BenchError, match="unfinished-run.*finished run"):
        build_store(unfinished, train_split, registry=get_registry(), **BUILD)
    assert not (unfinished / "teacher_store").exists()


@pytest.mark.slow
def test_store_reads_a_frozen_teacher_tower_from_the_embedding_cache(teacher: Path, train_split: SplitData,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The teacher run cached its frozen MiniLM outputs for this training split; the store reuses them."""
    import bench.evaluation.evaluate

    store = store_directory(teacher, train_split)
    if store.exists():
        shutil.rmtree(store)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the frozen text encoder ran again")

    monkeypatch.setattr(bench.evaluation.evaluate, "text_features", refuse)
    assert build_store(teacher, train_split, registry=get_registry(), **BUILD) == store
    assert np.load(store / "text.npy").shape[0] == train_split.n_captions
