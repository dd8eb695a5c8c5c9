"""End to end through the CLI: real files on disk, broken ones included, from `bench validate` to a result.

Each scenario writes a small dataset in tmp_path in the layout a user would have (a CSV of their
own, AudioCaps, Clotho, WavCaps) and drives ``bench.cli.main.main`` in-process, so torch and the text
encoder load once for the whole file.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli.main import main

FOLDERS = {"train": "development", "val": "validation", "test": "evaluation"}
# A narrow CNN: these tests are about data handling, and the default widths cost seconds per run.
SMALL_MODEL = ["--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32"]
TINY_RUN = ["--epochs", "1", "--batch-size", "4", "--num-workers", "0", "--no-leaderboard", *SMALL_MODEL]


@pytest.fixture(autouse=True)
def _isolated(isolated_cache):
    """Every test here: its own BENCH_CACHE, no console handler left behind (tests/conftest.py)."""


def _noise(path: Path, seconds: float = 1.0, sr: int = 16000, channels: int = 1, seed: int = 0) -> Path:
    """A noise burst with a per-file spectral tilt, so clips are distinguishable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    x = rng.standard_normal(n).astype(np.float32)
    x = np.convolve(x, np.ones(1 + seed % 7, np.float32) / (1 + seed % 7), mode="same")
    x = (0.3 * x / (np.abs(x).max() + 1e-9)).astype(np.float32)
    data = np.stack([x, np.roll(x, 3)], axis=1) if channels == 2 else x
    sf.write(path, data, sr, format="FLAC" if path.suffix == ".flac" else "WAV", subtype="PCM_16")
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


# ------------------------------------------------------------------------------- layouts on disk


BAD_CSV_ENTRIES = {
    # audio_id -> a fragment the reason must contain
    "zero.wav": "empty (0 bytes)",
    "text.wav": "not an audio file",
    "nan.wav": "nan/inf",
    "missing.wav": "not found",
    "emptycap.wav": "empty caption",
    "../outside.wav": "outside the dataset root",
}


def make_user_csv(base: Path, *, bad: bool = True, n: dict[str, int] | None = None, sr: int = 16000,
                  seconds: float = 1.0, channels: int = 1) -> tuple[Path, Path]:
    """``base/audio/*.wav`` + ``base/captions.csv`` (file_name,caption,split); returns (root, csv)."""
    root = base / "audio"
    counts = n or {"train": 8, "val": 4, "test": 4}
    rows: list[list[str]] = []
    seed = 0
    for split, count in counts.items():
        for i in range(count):
            name = f"{split}_{i}.wav"
            _noise(root / name, seconds, sr, channels, seed=seed)
            seed += 1
            rows += [[name, f"{split} recording {i} with a humming sound", split],
                     [name, f"another description of {split} clip {i}", split]]
    if bad:
        (root / "zero.wav").write_bytes(b"")
        (root / "text.wav").write_text("this is a text file, not audio\n")
        nan = np.zeros(1600, np.float32)
        nan[11] = np.nan
        sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
        _noise(root / "emptycap.wav", seed=99)
        _noise(base / "outside.wav", seed=98)
        rows += [["zero.wav", "an empty file", "train"], ["text.wav", "a text file", "train"],
                 ["nan.wav", "samples that are not numbers", "train"], ["missing.wav", "gone", "train"],
                 ["emptycap.wav", "   ", "train"], ["../outside.wav", "escapes the audio folder", "train"]]
    captions = base / "captions.csv"
    _write_csv(captions, ["file_name", "caption", "split"], rows)
    return root, captions


def make_clotho(root: Path, n: int = 4, seconds: float = 1.0, sr: int = 16000, channels: int = 1,
                seed: int = 1000) -> Path:
    """ClothoV2 layout: development/validation/evaluation + clotho_captions_<folder>.csv (5 captions)."""
    for split, folder in FOLDERS.items():
        rows = []
        for i in range(n):
            name = f"{folder} clip, no {i}.wav"  # commas and spaces, as in real Clotho file names
            _noise(root / folder / name, seconds, sr, channels, seed=seed)
            seed += 1
            rows.append([name] + [f"clotho {split} clip {i} caption {j}" for j in range(5)])
        _write_csv(root / f"clotho_captions_{folder}.csv", ["file_name"] + [f"caption_{j}" for j in range(1, 6)], rows)
    return root


def make_audiocaps(root: Path, n: int = 4, missing_train: int = 2) -> Path:
    """AudioCaps layout: {train,val,test}.csv + audio/<split>/<youtube_id>.wav; some train clips absent."""
    for split in ("train", "val", "test"):
        rows = []
        n_caps = 1 if split == "train" else 5
        total = n + (missing_train if split == "train" else 0)
        for i in range(total):
            yid = f"{split[:2]}YT{i:03d}"
            if i < n:
                _noise(root / "audio" / split / f"{yid}.wav", seed=2000 + 10 * i + len(split))
            rows += [[str(100 * i + j), yid, "30", f"audiocaps {split} clip {i} caption {j}"] for j in range(n_caps)]
        _write_csv(root / f"{split}.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], rows)
    return root


def make_wavcaps(root: Path, freesound_ids: list[str]) -> Path:
    """WavCaps layout with only the FreeSound subset: json_files/FreeSound/fsd_final_2s.json + flac files."""
    data = [{"id": sid, "caption": f"freesound clip {sid}"} for sid in freesound_ids]
    jpath = root / "json_files" / "FreeSound" / "fsd_final_2s.json"
    jpath.parent.mkdir(parents=True, exist_ok=True)
    jpath.write_text(json.dumps({"data": data}), encoding="utf-8")
    for k, sid in enumerate(freesound_ids):
        _noise(root / "audio" / "FreeSound" / f"{sid}.flac", seed=3000 + k)
    return root


# ----------------------------------------------------------------------------------------- helpers


def _csv_args(root: Path, captions: Path) -> list[str]:
    return ["--dataset", "csv", "--set", f"csv.root={root}", "--set", f"csv.captions={captions}"]


def _run_dirs(tmp_path: Path, tag: str = "") -> list[str]:
    return ["--results-dir", str(tmp_path / f"results{tag}"), "--runs-dir", str(tmp_path / f"runs{tag}")]


def _only_result(results_dir: Path) -> dict:
    files = sorted(results_dir.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def _error_lines(err: str, command: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"bench {command}: error:")]


# -------------------------------------------------------------------------------- a user's CSV set


@pytest.mark.parametrize("policy", [[], ["--set", "csv.on_error=skip"]], ids=["default", "skip"])
def test_validate_names_every_bad_entry(tmp_path, capsys, policy):
    # Whatever the dataset's on_error, validate decodes everything and lists every problem,
    # structural (missing, empty caption, ../) and audio (empty, text, NaN) alike.
    root, captions = make_user_csv(tmp_path / "mine")
    code = main(["validate", *_csv_args(root, captions), *policy])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    out = captured.out
    listed = [line.strip() for line in out.splitlines() if line.startswith("  [")]
    assert len(listed) == len(BAD_CSV_ENTRIES), out
    for audio_id, reason in BAD_CSV_ENTRIES.items():
        line = next((entry for entry in listed if entry.startswith(f"[train] {audio_id} ")), None)
        assert line is not None, f"{audio_id} not named:\n{out}"
        assert reason in line.lower(), line
    assert "split train: 8 usable item(s) of 14" in out
    assert "split val: 4 usable item(s) of 4" in out and "split test: 4 usable item(s) of 4" in out
    assert "6 bad entries" in out
    assert "Traceback" not in captured.err


def test_run_refuses_bad_csv_before_training(tmp_path, capsys):
    root, captions = make_user_csv(tmp_path / "mine")
    code = main(["run", *_csv_args(root, captions), *_run_dirs(tmp_path), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2
    errors = _error_lines(err, "run")
    assert len(errors) == 1, err
    assert "Traceback" not in err
    assert "on_error=skip" in errors[0]
    # The structural problems are found while reading the CSV, before any audio is decoded.
    for audio_id in ("zero.wav", "missing.wav", "emptycap.wav", "../outside.wav"):
        assert audio_id in errors[0]
    assert not list((tmp_path / "runs").glob("*/*.pt")), "a checkpoint was written for a refused dataset"
    # A run that cannot start leaves no run directory that a later run would try to resume.
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").glob("*.json"))


def test_run_refuses_undecodable_audio_before_training(tmp_path, capsys):
    """Files that exist but do not decode are caught by the pre-training validation, not mid-epoch."""
    root, captions = make_user_csv(tmp_path / "mine", bad=False)
    (root / "val_1.wav").write_text("exported the notes instead of the audio\n")
    code = main(["run", *_csv_args(root, captions), *_run_dirs(tmp_path), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2
    errors = _error_lines(err, "run")
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "val_1.wav" in errors[0] and "not an audio file" in errors[0]
    assert not list((tmp_path / "runs").glob("*/*.pt"))


@pytest.mark.slow
def test_run_with_skip_trains_on_the_rest_and_lists_skipped(tmp_path, capsys):
    root, captions = make_user_csv(tmp_path / "mine")
    code = main(["run", *_csv_args(root, captions), "--set", "csv.on_error=skip", *_run_dirs(tmp_path), *TINY_RUN])
    assert code == 0, capsys.readouterr().err
    result = _only_result(tmp_path / "results")
    skipped = result["skipped"]
    assert len(skipped) == len(BAD_CSV_ENTRIES)
    by_id = {entry["audio_id"]: entry for entry in skipped}
    assert set(by_id) == set(BAD_CSV_ENTRIES)
    for audio_id, reason in BAD_CSV_ENTRIES.items():
        assert reason in by_id[audio_id]["reason"].lower()
        assert by_id[audio_id]["split"] == "train"
    splits = result["dataset"]["splits"]
    assert splits["train"]["n_audios"] == 8 and splits["train"]["n_captions"] == 16
    assert splits["val"]["n_audios"] == 4 and splits["test"]["n_audios"] == 4
    assert len(result["history"]) == 1 and np.isfinite(result["history"][0]["train_loss"])
    assert list((tmp_path / "runs").glob("*/best.pt"))


def test_skip_that_empties_a_split_is_an_error_not_a_run(tmp_path, capsys):
    root, captions = make_user_csv(tmp_path / "mine", bad=False)
    for i in range(4):
        (root / f"test_{i}.wav").write_bytes(b"")
    code = main(["run", *_csv_args(root, captions), "--set", "csv.on_error=skip", *_run_dirs(tmp_path), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2
    errors = _error_lines(err, "run")
    assert len(errors) == 1 and "test split is empty" in errors[0] and "Traceback" not in err, err
    assert "all 4 of its entries were bad and skipped" in errors[0] and "test_0.wav" in errors[0], errors[0]
    assert not list((tmp_path / "runs").glob("*/*.pt"))


# ----------------------------------------------------------------------------- combined datasets


@pytest.mark.slow
def test_audiocaps_plus_clotho_trains_and_tests_on_clotho(tmp_path, capsys):
    from bench.data.loading import SplitData
    from bench_plugins.datasets.clotho import ClothoDataset

    ac = make_audiocaps(tmp_path / "audiocaps", n=4, missing_train=2)
    cl = make_clotho(tmp_path / "clotho", n=4)
    code = main(["run", "--dataset", "audiocaps+clotho", "--set", f"audiocaps.root={ac}",
                 "--set", "audiocaps.on_error=skip", "--set", f"clotho.root={cl}", *_run_dirs(tmp_path), *TINY_RUN])
    assert code == 0, capsys.readouterr().err
    result = _only_result(tmp_path / "results")
    clotho = ClothoDataset(cl)
    for split in ("val", "test"):
        expected = SplitData.from_items(split, clotho.split(split)).summary()
        assert result["dataset"]["splits"][split] == expected
    # Train is the union: 4 AudioCaps clips (1 caption) + 4 Clotho clips (5 captions).
    assert result["dataset"]["splits"]["train"] == {**result["dataset"]["splits"]["train"], "n_audios": 8,
                                                     "n_captions": 4 + 20}
    skipped = result["skipped"]
    assert len(skipped) == 2
    assert all(s["audio_id"].startswith("audiocaps/") and "not found" in s["reason"] for s in skipped)
    assert sorted(Path(s["path"]).name for s in skipped) == ["trYT004.wav", "trYT005.wav"]


def test_audiocaps_plus_clotho_missing_clips_refused_without_skip(tmp_path, capsys):
    ac = make_audiocaps(tmp_path / "audiocaps", n=3, missing_train=1)
    cl = make_clotho(tmp_path / "clotho", n=3)
    code = main(["run", "--dataset", "audiocaps+clotho", "--set", f"audiocaps.root={ac}",
                 "--set", f"clotho.root={cl}", *_run_dirs(tmp_path), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2
    errors = _error_lines(err, "run")
    assert len(errors) == 1 and "trYT003" in errors[0] and "not found" in errors[0], err


def test_wavcaps_plus_clotho_needs_an_exclusion_decision(tmp_path, capsys):
    wc = make_wavcaps(tmp_path / "wavcaps", ["101", "102", "103"])
    cl = make_clotho(tmp_path / "clotho", n=3)
    base = ["--dataset", "wavcaps+clotho", "--set", f"wavcaps.root={wc}", "--set", "wavcaps.subsets=FreeSound",
            "--set", f"clotho.root={cl}"]

    code = main(["run", *base, *_run_dirs(tmp_path), *TINY_RUN])
    err = capsys.readouterr().err
    assert code == 2
    errors = _error_lines(err, "run")
    assert len(errors) == 1 and "wavcaps.exclusions" in errors[0] and "leak" in errors[0], err
    assert not list((tmp_path / "runs").glob("*/*.pt"))

    code = main(["validate", *base])
    assert code == 2 and "wavcaps.exclusions" in capsys.readouterr().err

    code = main(["validate", *base, "--set", "wavcaps.exclusions=none"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "split train: 6 usable item(s) of 6" in out

    # With the DCASE list in the root, the listed FreeSound ids leave training.
    _write_csv(wc / "dcase2024_task6_excluded_freesound_ids.csv", ["id"], [["102"]])
    code = main(["validate", *base])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "split train: 5 usable item(s) of 5" in out


# ------------------------------------------------------------------------------- manifest cache


def test_manifest_cache_serves_second_validate_and_mtime_invalidates(tmp_path, capsys):
    root, captions = make_user_csv(tmp_path / "mine")
    args = ["validate", *_csv_args(root, captions), "--set", "csv.on_error=skip"]

    assert main(args) == 1
    first = capsys.readouterr().out
    assert "from manifest cache" not in first
    manifests = list((tmp_path / "cache" / "manifests").glob("*.json"))
    assert len(manifests) == 3

    assert main(args) == 1
    second = capsys.readouterr().out
    summaries = [line for line in second.splitlines() if line.startswith("split ")]
    assert len(summaries) == 3 and all("(from manifest cache)" in line for line in summaries), second
    assert second.replace("; (from manifest cache)", "") == first

    # Same size, new mtime: the train entry must be re-validated, val/test still cached.
    target = root / "train_3.wav"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert main(args) == 1
    third = capsys.readouterr().out
    lines = {line.split(":")[0]: line for line in third.splitlines() if line.startswith("split ")}
    assert "from manifest cache" not in lines["split train"]
    assert "from manifest cache" in lines["split val"] and "from manifest cache" in lines["split test"]

    # Repairing a file is seen at once: the NaN file re-exported with finite samples.
    _noise(root / "nan.wav", seed=97)  # a seed no other clip uses: seed 7 is train_7.wav, identical audio
    assert main(args) == 1
    fourth = capsys.readouterr().out
    assert "nan.wav" not in fourth and "5 bad entries" in fourth
    assert "split train: 9 usable item(s) of 14" in fourth


# -------------------------------------------------------------------------------- audio cache


@pytest.mark.slow
def test_audio_cache_run_matches_uncached_run(tmp_path, capsys, monkeypatch):
    # 44.1 kHz stereo, so every load resamples and downmixes; 1 s crops of 2.5 s clips, so crops
    # start at random offsets. Cache on and off must give the same run, bit for bit.
    from bench.data import audio_cache

    monkeypatch.setattr(audio_cache, "RACY_SECONDS", 0.0)  # the clips were written a moment ago
    root, captions = make_user_csv(tmp_path / "mine", bad=False, sr=44100, seconds=2.5, channels=2,
                                   n={"train": 6, "val": 4, "test": 4})
    common = [*_csv_args(root, captions), "--set", "cnn.crop_seconds=1.0", "--seed", "3", "--epochs", "2",
              "--batch-size", "4", "--num-workers", "0", "--no-leaderboard", *SMALL_MODEL]
    assert main(["run", *common, "--set", "train.audio_cache=false", *_run_dirs(tmp_path, "_plain")]) == 0, \
        capsys.readouterr().err
    audio_dir = tmp_path / "cache" / "audio"
    assert not audio_dir.exists() or not list(audio_dir.rglob("*.npy")), "cache written although disabled"

    assert main(["run", *common, "--set", "train.audio_cache=true", *_run_dirs(tmp_path, "_cached")]) == 0, \
        capsys.readouterr().err
    entries = list(audio_dir.rglob("*.npy"))
    assert len(entries) == 6 + 4 + 4  # one whole clip per recording, shared by every crop and epoch
    assert all(np.load(e).dtype == np.float32 for e in entries)
    assert not list(audio_dir.rglob("*.tmp")), "a temporary cache file was left behind"

    plain = _only_result(tmp_path / "results_plain")
    cached = _only_result(tmp_path / "results_cached")
    assert cached["training"]["audio_cache"] is True and plain["training"]["audio_cache"] is False
    assert len(plain["history"]) == len(cached["history"]) == 2
    assert [h["train_loss"] for h in plain["history"]] == [h["train_loss"] for h in cached["history"]]
    assert [h["val"] for h in plain["history"]] == [h["val"] for h in cached["history"]]
    assert plain["metrics"] == cached["metrics"]
    emb_plain = np.load(tmp_path / "runs_plain" / plain["artifacts"]["test_embeddings"])
    emb_cached = np.load(tmp_path / "runs_cached" / cached["artifacts"]["test_embeddings"])
    for key in emb_plain.files:
        assert np.array_equal(emb_plain[key], emb_cached[key]), key


def test_cached_crops_equal_uncached_crops_bit_for_bit(tmp_path):
    """The loader the trainer uses, with and without the cache: the same samples at any offset."""
    from bench.data.audio_cache import AudioCache
    from bench.data.loading import AudioLoader

    path = _noise(tmp_path / "clip.wav", seconds=1.5, sr=44100, channels=2, seed=5)
    plain, cached = AudioLoader(None), AudioLoader(AudioCache(tmp_path / "cache" / "audio", racy_seconds=0.0))
    assert cached.cache_pays_off(path, 16000) and not cached.cache_pays_off(path, 44100)  # only resampled files
    for offset, seconds in ((0.0, 1.0), (0.37, 1.0), (0.5, 1.0), (0.0, None), (1.2, 1.0)):
        a = plain.load(path, 16000, offset, seconds)
        b = cached.load(path, 16000, offset, seconds)
        assert a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32)), offset
    assert cached.cache.misses == 1 and cached.cache.hits == 4
    cached.load(path, 44100, 0.0, 1.0)  # already at the rate: decoded directly
    assert cached.cache.misses == 1 and cached.cache.hits == 4
