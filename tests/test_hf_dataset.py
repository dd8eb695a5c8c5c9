"""The ``huggingface`` dataset plugin on tiny Hugging Face datasets built here (no download).

Each dataset has a few noise clips (wav bytes in an ``Audio`` column), five caption columns and
three splits named like Clotho's (development / validation / evaluation), saved with
``save_to_disk`` and as parquet files. The slow tests train and score a tiny run from each.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

datasets = pytest.importorskip("datasets", reason="the hf extra is not installed (pip install 'bench[hf]')")

from bench.cli.main import main  # noqa: E402
from bench.data.audio import load_audio  # noqa: E402
from bench.errors import ConfigError, DataError  # noqa: E402
from bench_plugins.datasets.hf import build_huggingface  # noqa: E402

SIZES = {"development": 8, "validation": 4, "evaluation": 4}
SPLIT_MAP = "train:development,val:validation,test:evaluation"
CAPTIONS = ",".join(f"caption_{j}" for j in range(1, 6))
TINY_RUN = ["--epochs", "1", "--batch-size", "4", "--num-workers", "0", "--no-leaderboard",
            "--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32"]
WORDS = ["dog", "rain", "car", "bird", "door", "wind", "bell", "train", "water", "crowd", "engine", "clock"]


@pytest.fixture(autouse=True)
def _isolated(isolated_cache):
    """Every test here: its own BENCH_CACHE, no console handler left behind (tests/conftest.py)."""


def _wav_bytes(seed: int, seconds: float = 1.0, sr: int = 16000) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(sr * seconds)).astype(np.float32)
    x = np.convolve(x, np.ones(1 + seed % 5, np.float32) / (1 + seed % 5), mode="same")
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * x / np.abs(x).max(), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def make_dataset(*, bad_row: int | None = None, caption_list: bool = False) -> datasets.DatasetDict:
    """Three splits of noise clips with captions; ``bad_row`` of the development split holds text, not audio."""
    splits = {}
    for s, (name, n) in enumerate(SIZES.items()):
        rows = {"audio": [], "clip": []}
        caps = [[] for _ in range(5)]
        for i in range(n):
            seed = 100 * s + i
            data = b"these are notes, not audio" if (name == "development" and i == bad_row) else _wav_bytes(seed)
            rows["audio"].append({"bytes": data, "path": f"{name}_{i}.wav"})
            rows["clip"].append(f"{name}_{i}.wav")
            for j in range(5):
                caps[j].append(f"a {WORDS[(seed + j) % len(WORDS)]} sound number {i} variant {j}")
        # Raw {bytes, path} structs cast to Audio below: encoding through Audio() would need torchcodec.
        features = {"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                    "clip": datasets.Value("string")}
        if caption_list:
            rows["captions"] = [list(c) for c in zip(*caps)]
            features["captions"] = datasets.Sequence(datasets.Value("string"))
        else:
            for j in range(5):
                rows[f"caption_{j + 1}"] = caps[j]
                features[f"caption_{j + 1}"] = datasets.Value("string")
        split = datasets.Dataset.from_dict(rows, features=datasets.Features(features))
        splits[name] = split.cast_column("audio", datasets.Audio())
    return datasets.DatasetDict(splits)


def save_parquet(data: datasets.DatasetDict, directory: Path) -> Path:
    """One parquet file per split, named as on the hub (train / validation / test), which load_dataset infers."""
    directory.mkdir(parents=True)
    for split, hub_name in zip(data.values(), ("train", "validation", "test")):
        split.to_parquet(str(directory / f"{hub_name}.parquet"))
    return directory


def test_reads_a_saved_dataset_without_the_library_decoding_audio(tmp_path):
    make_dataset().save_to_disk(str(tmp_path / "ds"))
    dataset = build_huggingface(path=str(tmp_path / "ds"), caption_columns=CAPTIONS)  # default split names
    assert dataset.split_names == {"train": "development", "val": "validation", "test": "evaluation"}
    train = dataset.split("train")
    assert [item.audio_id for item in train[:2]] == ["development[0]", "development[1]"]
    assert len(train) == 8 and len(dataset.split("test")) == 4
    assert train[3].captions[0] == "a bird sound number 3 variant 0"
    assert len(train[3].captions) == 5
    # The bytes became a file bench's own reader decodes (and resamples).
    path = Path(train[0].audio_path)
    assert path.suffix == ".wav" and path.is_relative_to(tmp_path / "cache" / "huggingface")
    audio = load_audio(path, 8000)
    assert audio.shape == (8000,) and np.isfinite(audio).all()
    again = build_huggingface(path=str(tmp_path / "ds"), caption_columns=CAPTIONS).split("train")
    assert [i.audio_path for i in again] == [i.audio_path for i in train]  # same dataset, same cache files


def test_one_caption_column_with_a_list_of_captions(tmp_path):
    make_dataset(caption_list=True).save_to_disk(str(tmp_path / "ds"))
    dataset = build_huggingface(path=str(tmp_path / "ds"), caption_columns="captions", split_map=SPLIT_MAP)
    item = dataset.split("val")[1]
    assert item.audio_id == "validation[1]" and len(item.captions) == 5


def test_a_string_column_of_paths_is_read_from_disk(tmp_path):
    audio_dir = tmp_path / "ds" / "clips"
    audio_dir.mkdir(parents=True)
    data = make_dataset()
    for name, split in data.items():
        for i in range(len(split)):
            (audio_dir / f"{name}_{i}.wav").write_bytes(_wav_bytes(i))
    data = data.map(lambda row: {"clip": f"clips/{row['clip']}"}).remove_columns("audio")
    data.save_to_disk(str(tmp_path / "ds"))
    item = build_huggingface(path=str(tmp_path / "ds"), audio_column="clip", caption_columns=CAPTIONS).split("test")[2]
    assert load_audio(item.audio_path, 16000).shape == (16000,)


def test_rows_of_one_recording_are_gathered_by_id_column(tmp_path):
    data = make_dataset()
    # One row per caption, as AudioCaps mirrors often are: the "clip" column says which rows belong together.
    data = data.remove_columns([f"caption_{j}" for j in range(2, 6)])
    per_caption = datasets.DatasetDict({name: datasets.concatenate_datasets([split, split])
                                        for name, split in data.items()})
    per_caption.save_to_disk(str(tmp_path / "ds"))
    dataset = build_huggingface(path=str(tmp_path / "ds"), caption_columns="caption_1", id_column="clip")
    test = dataset.split("test")
    assert len(test) == 4 and [len(item.captions) for item in test] == [2, 2, 2, 2]
    assert test[1].audio_id == "evaluation[1]" and test[1].meta["id"] == "evaluation_1.wav"


def test_missing_column_is_one_line_listing_the_columns(tmp_path):
    make_dataset().save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError) as error:
        build_huggingface(path=str(tmp_path / "ds"), caption_columns="caption").split("train")
    message = str(error.value)
    assert "\n" not in message and "no column 'caption'" in message
    assert "columns: audio, clip, caption_1, caption_2" in message and "huggingface.caption_columns" in message


def test_a_missing_split_lists_the_splits_there_are(tmp_path):
    make_dataset().save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(ConfigError, match=r"no split 'dev'.*splits: development, validation, evaluation"):
        build_huggingface(path=str(tmp_path / "ds"), caption_columns=CAPTIONS, split_map="train:dev")
    with pytest.raises(ConfigError, match="BENCH_SPLIT:DATASET_SPLIT"):
        build_huggingface(path=str(tmp_path / "ds"), caption_columns=CAPTIONS, split_map="training=development")


def test_undecodable_bytes_are_named_by_split_and_row(tmp_path, capsys):
    make_dataset(bad_row=2).save_to_disk(str(tmp_path / "ds"))
    args = ["validate", "--dataset", "huggingface", "--set", f"huggingface.path={tmp_path / 'ds'}",
            "--set", f"huggingface.caption_columns={CAPTIONS}"]
    assert main(args) == 1
    out = capsys.readouterr().out
    bad = [line for line in out.splitlines() if "development[2]" in line]
    assert len(bad) == 1 and "000002" in bad[0], out
    assert "1 bad entry" in out


def test_offline_hub_id_that_is_not_cached_fails_fast_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    started = time.monotonic()
    with pytest.raises(ConfigError) as error:
        build_huggingface(path="no-such-org/no-such-clotho-mirror", caption_columns=CAPTIONS)
    assert time.monotonic() - started < 15
    message = str(error.value)
    assert "\n" not in message and "offline and not in the local Hugging Face cache" in message
    assert "save_to_disk(DIR)" in message and "--set huggingface.path=DIR" in message


def test_a_local_path_that_does_not_exist_is_not_looked_up_on_the_hub(tmp_path):
    with pytest.raises(ConfigError, match=r"directory .*nowhere does not exist; pass --set huggingface.path=DIR"):
        build_huggingface(path=str(tmp_path / "nowhere"))


def test_preflight_lists_every_problem_before_torch_is_needed(tmp_path):
    from bench_plugins.datasets.hf import preflight

    assert preflight(path=str(tmp_path)) == []
    problems = preflight(path=str(tmp_path / "nowhere"), split_map="training=development")
    assert len(problems) == 2 and "nowhere does not exist" in problems[0] and "BENCH_SPLIT" in problems[1]
    assert preflight() == ["huggingface: no dataset given; pass --set huggingface.path=HUB_ID_OR_LOCAL_DIR"]


def _run(tmp_path: Path, source: Path, *extra: str) -> dict:
    code = main(["run", "--dataset", "huggingface", "--set", f"huggingface.path={source}",
                 "--set", f"huggingface.caption_columns={CAPTIONS}",
                 "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs"), *TINY_RUN, *extra])
    assert code == 0
    files = sorted((tmp_path / "results").glob("*.json"))
    assert len(files) == 1
    return json.loads(files[0].read_text())


@pytest.mark.slow
def test_trains_and_scores_from_save_to_disk(tmp_path):
    make_dataset().save_to_disk(str(tmp_path / "ds"))
    result = _run(tmp_path, tmp_path / "ds", "--set", f"huggingface.split_map={SPLIT_MAP}")
    assert result["dataset"]["name"] == "huggingface"
    splits = result["dataset"]["splits"]
    assert (splits["train"]["n_audios"], splits["val"]["n_audios"], splits["test"]["n_audios"]) == (8, 4, 4)
    assert splits["test"]["n_captions"] == 20
    assert 0.0 <= result["metrics"]["t2a"]["mAP@10"] <= 1.0 and len(result["history"]) == 1
    assert result["skipped"] == []


@pytest.mark.slow
def test_trains_and_scores_from_parquet_skipping_a_bad_row_as_asked(tmp_path):
    source = save_parquet(make_dataset(bad_row=5), tmp_path / "parquet")
    result = _run(tmp_path, source, "--set", "huggingface.on_error=skip")
    assert [(e["split"], e["audio_id"]) for e in result["skipped"]] == [("train", "train[5]")]
    assert result["dataset"]["splits"]["train"]["n_audios"] == 7
    assert 0.0 <= result["metrics"]["a2t"]["mAP@10"] <= 1.0
