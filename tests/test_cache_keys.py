"""Cache keys cover everything that changes an entry (issue 24, docs/caches.md): each input is edited in
place and the next lookup misses. The decoded-audio cache (bench/data/audio_cache.py) is left to issue 25,
which rewrites it; synthetic wavs edited in place are covered by test_lifecycle_integrity.py."""

from __future__ import annotations

import json
import os
import time
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import bench
from bench.core.registry import Registry
from bench.data.loading import SplitData
from bench.data.validate import validate_split_cached
from bench.evaluation.embedding_cache import EmbeddingCache, audio_files_signature, weights_fingerprint
from bench.training.teachers import store_inputs, store_is_current
from tests.bad_corpus import noise


def _touch_edit(path: Path, content: bytes) -> None:
    """Rewrite ``path`` in place with ``content`` and make sure its mtime moves (coarse clocks)."""
    before = path.stat().st_mtime_ns
    path.write_bytes(content)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def _wav_bytes(seed: int, seconds: float = 0.2) -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, noise(seconds, 16000, seed), 16000, format="WAV")
    return buffer.getvalue()


def _csv_dataset(base: Path) -> tuple[Path, Path]:
    root = base / "audio"
    root.mkdir(parents=True)
    rows = ["file_name,caption,split"]
    for i, split in enumerate(["train", "train", "val", "val", "test", "test", "test"]):
        (root / f"{split}{i}.wav").write_bytes(_wav_bytes(i))
        rows.append(f"{split}{i}.wav,a sound number {i},{split}")
    (base / "captions.csv").write_text("\n".join(rows) + "\n")
    return root, base / "captions.csv"


# -- bench eval's embedding cache: the audio files -------------------------------------------------------
class _Model:
    """Embeds a clip by its samples and a caption by its characters (deterministic, cacheable)."""

    stochastic = False
    fingerprint = "cache-keys-v1"
    sample_rate = 16000

    def embed_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.stack([waveforms.abs().sum(1), lengths.float(),
                                                          waveforms[:, :10].sum(1)], dim=1), dim=1)

    def embed_text(self, captions: list[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.tensor([[len(c), sum(map(ord, c)) % 97, 1.0] for c in captions]),
                                             dim=1)


def test_eval_cache_misses_when_an_audio_file_is_edited_in_place(tmp_path, monkeypatch) -> None:
    from bench.runs.eval_run import Target, evaluate_target

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "bench-cache"))
    module = types.ModuleType("cache_keys_model")
    module.register_models = bench.hookimpl(lambda register: register("keys", _Model))
    registry = Registry()
    registry.load_entry_points(autoload=False)
    registry.register_module(module, "keys", distribution="bench-keys", version="1")
    root, captions = _csv_dataset(tmp_path)
    cache = EmbeddingCache(tmp_path / "embeddings")

    def evaluate() -> dict:
        options = {"csv": {"root": str(root), "captions": str(captions)}}
        (result,) = evaluate_target(Target(model="keys"), "csv", options,
                                    protocols=["bench"], seed=0, batch_size=4, num_workers=0, device="cpu",
                                    results_dir=tmp_path / "results", runs_dir=tmp_path / "runs", force=True,
                                    registry=registry, cache=cache)
        return result["timings"]

    assert evaluate()["cache_misses"] == 2
    assert evaluate()["cache_hits"] == 2
    _touch_edit(root / "test5.wav", _wav_bytes(99))  # same name, same length, other samples
    again = evaluate()
    assert again["cache_misses"] == 1 and again["cache_hits"] == 1  # the audio entry; the captions did not change


# -- a model folder's files: CLAP (tokenizer, processor, config) and a transformers text encoder ----------
@pytest.mark.slow  # loads a tiny CLAP ~10 times
def test_clap_key_follows_every_file_its_loader_reads(tmp_path) -> None:
    from clap_tiny import save_tiny_clap

    from bench_plugins.models.clap import build_clap

    folder = save_tiny_clap(tmp_path / "clap")
    first = build_clap(model=str(folder)).fingerprint
    assert build_clap(model=str(folder)).fingerprint == first
    read = sorted(p.name for p in folder.iterdir() if p.suffix != ".safetensors")
    assert {"config.json", "tokenizer_config.json", "vocab.json", "merges.txt"} <= set(read)
    assert {"processor_config.json", "preprocessor_config.json"} & set(read)  # transformers 5 / 4
    for name in read:
        original = (folder / name).read_bytes()
        _touch_edit(folder / name, original + b"\n")  # harmless to the parser, still an edit
        assert build_clap(model=str(folder)).fingerprint != first, name
        _touch_edit(folder / name, original)
    # The case: a shorter model_max_length changes the text embeddings, so it must change the key.
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["model_max_length"] = 6
    _touch_edit(folder / "tokenizer_config.json", json.dumps(config).encode())
    short = build_clap(model=str(folder))
    assert short.fingerprint != first
    assert not torch.equal(short.embed_text(["a dog barks in the rain"]),
                           build_clap(model=str(save_tiny_clap(tmp_path / "again"))).embed_text(
                               ["a dog barks in the rain"]))


@pytest.mark.slow  # loads MiniLM three times
def test_text_encoder_key_follows_its_tokenizer_files(tmp_path) -> None:
    from bench_plugins.encoders._text_model import minilm_path
    from bench_plugins.encoders.text import build_hf

    folder = tmp_path / "minilm"
    folder.mkdir()
    for path in minilm_path().iterdir():
        if path.is_file():  # weights linked, the small files copied so they can be edited
            target = folder / path.name
            target.symlink_to(path) if path.stat().st_size > 1_000_000 else target.write_bytes(path.read_bytes())
    first = weights_fingerprint(build_hf(model=str(folder), freeze=True))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["model_max_length"] = 6
    _touch_edit(folder / "tokenizer_config.json", json.dumps(config).encode())
    assert weights_fingerprint(build_hf(model=str(folder), freeze=True)) != first


# -- validation manifests, teacher stores ------------------------------------------------------------------
def test_manifest_misses_when_audio_or_caption_changes(tmp_path) -> None:
    from bench.data.items import Item

    root, _ = _csv_dataset(tmp_path)
    items = [Item(p.name, p, ("a sound",)) for p in sorted(root.glob("*.wav"))]
    assert not validate_split_cached(items, cache_dir=tmp_path / "c", split="train").from_cache
    assert validate_split_cached(items, cache_dir=tmp_path / "c", split="train").from_cache
    _touch_edit(items[0].audio_path, _wav_bytes(123))
    assert not validate_split_cached(items, cache_dir=tmp_path / "c", split="train").from_cache
    edited = [Item(items[0].audio_id, items[0].audio_path, ("another caption",)), *items[1:]]
    assert not validate_split_cached(edited, cache_dir=tmp_path / "c", split="train").from_cache


def test_teacher_store_is_rebuilt_when_checkpoint_or_audio_changes(tmp_path) -> None:
    from bench.data.items import Item

    root, _ = _csv_dataset(tmp_path)
    split = SplitData.from_items("train", [Item(p.name, p, ("a sound",)) for p in sorted(root.glob("*.wav"))])
    best = tmp_path / "teacher" / "best.pt"
    best.parent.mkdir()
    best.write_bytes(b"weights v1")
    store = tmp_path / "teacher" / "teacher_store" / split.fingerprint()
    store.mkdir(parents=True)
    inputs = store_inputs(best, split)
    (store / "meta.json").write_text(json.dumps({"version": 1, "fingerprint": split.fingerprint(), **inputs}))
    assert store_is_current(store, store_inputs(best, split))
    _touch_edit(best, b"weights v2")  # the teacher run was re-trained into the same directory
    assert not store_is_current(store, store_inputs(best, split))
    (store / "meta.json").write_text(json.dumps({"version": 1, **store_inputs(best, split)}))
    time.sleep(0.01)
    _touch_edit(split.items[0].audio_path, _wav_bytes(7))
    assert not store_is_current(store, store_inputs(best, split))
    assert audio_files_signature(split.items) != inputs["audio"]


def test_audio_signature_is_cheap_and_stable(tmp_path) -> None:
    root, _ = _csv_dataset(tmp_path)
    items = [types.SimpleNamespace(audio_path=p) for p in sorted(root.glob("*.wav"))]
    assert audio_files_signature(items) == audio_files_signature(list(items))
    assert audio_files_signature(items) != audio_files_signature(items[:-1])
    assert np.all([len(audio_files_signature(items[:n])) == 20 for n in range(len(items))])
