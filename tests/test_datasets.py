"""Dataset plugins read the real on-disk layouts (docs/datasets in README) and never lose an item silently."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.data.combined import CombinedDataset, check_combination
from bench.data.items import Item
from bench.errors import ConfigError, DataError
from bench_plugins.datasets.audiocaps import AudioCapsDataset, build_audiocaps
from bench_plugins.datasets.clotho import ClothoDataset, build_clotho
from bench_plugins.datasets.csv_captions import build_csv
from bench_plugins.datasets.wavcaps import WavCapsDataset, build_wavcaps

FOLDERS = {"train": "development", "val": "validation", "test": "evaluation"}


def _wav(path: Path, seconds: float = 0.1, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(sr * seconds), np.float32), sr, format="FLAC" if path.suffix == ".flac" else "WAV")


def _write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> None:
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def make_clotho(root: Path, n: int = 3, metadata: bool = True) -> Path:
    for split, folder in FOLDERS.items():
        rows = []
        for i in range(n):
            name = f"{folder} sound, no {i}.wav"  # commas and spaces as in real Clotho names
            _wav(root / folder / name)
            rows.append([name] + [f"a {split} sound {i} caption {j}" for j in range(5)])
        _write_csv(root / f"clotho_captions_{folder}.csv", ["file_name"] + [f"caption_{j}" for j in range(1, 6)], rows)
        if metadata:
            _write_csv(root / f"clotho_metadata_{folder}.csv",
                       ["file_name", "keywords", "sound_id", "sound_link", "license"],
                       [[r[0], "caf\u00e9;r\u00e9sum\u00e9", str(1000 + i),
                         f"https://freesound.org/s/{1000 + i}", "CC0"]
                        for i, r in enumerate(rows)], encoding="iso-8859-1")
    return root


# ----------------------------------------------------------------------------------------- Clotho


def test_clotho_splits_and_metadata(tmp_path):
    root = make_clotho(tmp_path / "clotho")
    ds = ClothoDataset(root)
    for split, folder in FOLDERS.items():
        items = ds.split(split)
        assert len(items) == 3
        it = items[1]
        assert isinstance(it, Item)
        assert it.audio_id == f"{folder} sound, no 1.wav"
        assert Path(it.audio_path) == root / folder / it.audio_id
        assert len(it.captions) == 5 and it.captions[4] == f"a {split} sound 1 caption 4"
        # ISO-8859-1 metadata decoded as such, sound_id carried in meta
        assert it.meta["sound_id"] == "1001" and it.meta["keywords"] == "caf\u00e9;r\u00e9sum\u00e9"
    with pytest.raises(ConfigError, match="unknown split"):
        ds.split("dev")


def test_clotho_without_metadata(tmp_path):
    ds = ClothoDataset(make_clotho(tmp_path / "c", metadata=False))
    assert all(it.meta == {} for it in ds.split("train"))


def test_clotho_root_from_env_and_missing_root(tmp_path, monkeypatch):
    make_clotho(tmp_path / "clotho")
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    assert len(build_clotho().split("test")) == 3
    monkeypatch.delenv("BENCH_DATA")
    with pytest.raises(ConfigError, match=r"--set clotho.root=DIR or set BENCH_DATA"):
        build_clotho()
    with pytest.raises(ConfigError, match="does not exist"):
        build_clotho(root=str(tmp_path / "nowhere"))


def test_clotho_missing_file_raise_and_skip(tmp_path):
    root = make_clotho(tmp_path / "c")
    (root / "development" / "development sound, no 0.wav").unlink()
    with pytest.raises(DataError) as ei:
        ClothoDataset(root).split("train")
    assert "development sound, no 0.wav" in str(ei.value) and "not found" in str(ei.value)
    ds = ClothoDataset(root, on_error="skip")
    assert [it.audio_id for it in ds.split("train")] == ["development sound, no 1.wav", "development sound, no 2.wav"]
    skipped = ds.skipped("train")
    assert len(skipped) == 1 and skipped[0].reason == "audio file not found"


def test_clotho_bad_captions_and_traversal(tmp_path):
    root = make_clotho(tmp_path / "c")
    (root / "secret.wav").write_bytes((root / "development" / "development sound, no 0.wav").read_bytes())
    rows = [["development sound, no 0.wav", "", "b", "c", "d", "e"],
            ["development sound, no 1.wav", "a", "b", "...!", "d", "e"],
            ["../secret.wav", "a", "b", "c", "d", "e"],
            ["development sound, no 2.wav", "a", "b", "c", "d", "e"],
            ["development sound, no 2.wav", "a", "b", "c", "d", "e"]]
    _write_csv(root / "clotho_captions_development.csv", ["file_name"] + [f"caption_{j}" for j in range(1, 6)], rows)
    ds = ClothoDataset(root, on_error="skip")
    kept = ds.split("train")
    assert [it.audio_id for it in kept] == ["development sound, no 2.wav"]
    reasons = {b.audio_id: b.reason for b in ds.skipped("train")}
    assert reasons["development sound, no 0.wav"] == "caption 1: empty caption"
    reason = reasons["development sound, no 1.wav"]
    assert "caption 3" in reason and "no letters" in reason
    assert "path traversal" in reasons["../secret.wav"]
    # The identical second row of "no 2.wav" is a repeated train row: a counted warning, used once.
    assert [w.reason for w in ds.parse_warnings("train")] == [
        "duplicated row: 'development sound, no 2.wav' with the same captions is also at line 5; used once"]


def test_clotho_csv_problems(tmp_path):
    root = make_clotho(tmp_path / "c")
    _write_csv(root / "clotho_captions_validation.csv", ["file_name", "caption_1", "caption_2"], [["x.wav", "a", "b"]])
    with pytest.raises(DataError, match=r"missing column\(s\) caption_3, caption_4, caption_5"):
        ClothoDataset(root).split("val")
    # captions CSV must be UTF-8: a Latin-1 byte gives a clear, located error
    p = root / "clotho_captions_evaluation.csv"
    p.write_bytes(p.read_bytes() + "evaluation sound, no 0.wav,caf\u00e9,b,c,d,e\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 5 is not valid utf-8 \(byte 0xe9\)"):
        ClothoDataset(root).split("test")
    # a row with too few fields is named by its line
    p = root / "clotho_captions_development.csv"
    p.write_text(p.read_text() + "lonely.wav,a,b\n")
    with pytest.raises(DataError, match=r"clotho_captions_development.csv line 5: has 3 fields"):
        ClothoDataset(root).split("train")


def test_on_error_value_checked(tmp_path):
    with pytest.raises(ConfigError, match="on_error"):
        ClothoDataset(make_clotho(tmp_path / "c"), on_error="ignore")


# -------------------------------------------------------------------------------------- AudioCaps


def make_audiocaps(root: Path, missing: tuple[str, ...] = ()) -> Path:
    root.mkdir(parents=True)
    ids = {"train": ["aaa", "bbb", "ccc"], "val": ["ddd", "eee"], "test": ["fff", "ggg"]}
    cap_id = 0
    for split, yids in ids.items():
        rows = []
        for k, yid in enumerate(yids):
            if yid not in missing:
                _wav(root / "audio" / split / f"{yid}.wav")
            for j in range(1 if split == "train" else 5):
                cap_id += 1
                rows.append([str(cap_id), yid, str(30 * k), f"clip {yid} caption {j}"])
        rows.reverse()  # captions of one clip need not be adjacent
        _write_csv(root / f"{split}.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], rows)
    return root


def test_audiocaps_groups_captions(tmp_path):
    ds = AudioCapsDataset(make_audiocaps(tmp_path / "ac"))
    train = ds.split("train")
    assert sorted(it.audio_id for it in train) == ["aaa.wav", "bbb.wav", "ccc.wav"]
    assert all(len(it.captions) == 1 for it in train)
    test = {it.audio_id: it for it in ds.split("test")}
    assert len(test["ggg.wav"].captions) == 5 and test["ggg.wav"].meta["start_time"] == "30"
    assert sorted(test["ggg.wav"].captions) == [f"clip ggg caption {j}" for j in range(5)]


def test_audiocaps_missing_clips_are_counted(tmp_path):
    root = make_audiocaps(tmp_path / "ac", missing=("bbb", "eee"))
    with pytest.raises(DataError, match=r"1 bad entry in split 'train'.*bbb\.wav.*not found"):
        AudioCapsDataset(root).split("train")
    ds = build_audiocaps(root=str(root), on_error="skip")
    assert len(ds.split("train")) == 2 and len(ds.split("val")) == 1
    assert [b.audio_id for b in ds.skipped("val")] == ["eee.wav"]


def test_audiocaps_pattern_with_start_time(tmp_path):
    root = make_audiocaps(tmp_path / "ac")
    for p in (root / "audio").rglob("*.wav"):
        split = p.parent.name
        rows = list(csv.DictReader(open(root / f"{split}.csv")))
        start = next(r["start_time"] for r in rows if r["youtube_id"] == p.stem)
        p.rename(root / f"Y{p.stem}_{start}.wav")
    ds = AudioCapsDataset(root, audio_dir="", pattern="Y{youtube_id}_{start_time}.wav")
    assert sorted(it.audio_id for it in ds.split("val")) == ["Yddd_0.wav", "Yeee_30.wav"]
    with pytest.raises(ConfigError, match="unknown field"):
        AudioCapsDataset(root, pattern="{video}.wav")


def test_audiocaps_bad_start_time(tmp_path):
    root = make_audiocaps(tmp_path / "ac")
    p = root / "train.csv"
    p.write_text(p.read_text() + "99,zzz,soon,a caption\n")
    ds = AudioCapsDataset(root, on_error="skip")
    assert len(ds.split("train")) == 3
    assert "start_time 'soon'" in ds.skipped("train")[0].reason


# ---------------------------------------------------------------------------------------- WavCaps


def make_wavcaps(root: Path, exclusion_ids: list[str] | None = None) -> Path:
    entries = {
        "FreeSound": [{"id": "100", "caption": "rain on a roof"}, {"id": "200", "caption": "a dog barks"},
                      {"id": "300", "caption": "wind"}],
        "AudioSet_SL": [{"id": "Yabc.wav", "caption": "a car passes"}],
        "SoundBible": [{"id": "7", "caption": "a bell rings"}],
        "BBC_Sound_Effects": [{"id": "0001", "caption": "birds sing"}],
    }
    from bench_plugins.datasets.wavcaps import JSON_FILES

    for subset, data in entries.items():
        j = root / "json_files" / subset / JSON_FILES[subset]
        j.parent.mkdir(parents=True, exist_ok=True)
        j.write_text(json.dumps({"num_captions_per_audio": 1, "data": data}))
        for e in data:
            _wav(root / "audio" / subset / f"{e['id'].removesuffix('.wav')}.flac")
    if exclusion_ids is not None:
        _write_csv(root / "excluded.csv", ["freesound_id"], [[i] for i in exclusion_ids])
    return root


def test_wavcaps_exclusions_and_subsets(tmp_path):
    root = make_wavcaps(tmp_path / "wc", exclusion_ids=["200", "999"])
    ds = WavCapsDataset(root, exclusions=str(root / "excluded.csv"))
    ids = {it.audio_id for it in ds.split("train")}
    assert ids == {"FreeSound/100", "FreeSound/300", "AudioSet_SL/Yabc", "SoundBible/7", "BBC_Sound_Effects/0001"}
    assert ds.excluded_count == 1 and ds.exclusions_applied
    item = next(it for it in ds.split("train") if it.audio_id == "AudioSet_SL/Yabc")
    assert Path(item.audio_path).name == "Yabc.flac"
    only_fs = build_wavcaps(root=str(root), subsets="FreeSound", exclusions="none")
    assert len(only_fs.split("train")) == 3 and only_fs.exclusions_disabled and not only_fs.exclusions_applied
    with pytest.raises(ConfigError, match="unknown subset"):
        WavCapsDataset(root, subsets="FreeSound,Clotho")


def test_wavcaps_default_exclusion_file_in_root(tmp_path):
    root = make_wavcaps(tmp_path / "wc")
    _write_csv(root / "dcase2024_task6_excluded_freesound_ids.csv", ["id", "note"], [["100", "x"], ["300", "y"]])
    ds = WavCapsDataset(root)
    assert {it.audio_id for it in ds.split("train") if it.audio_id.startswith("FreeSound")} == {"FreeSound/200"}


def test_wavcaps_has_no_val_or_test(tmp_path):
    ds = WavCapsDataset(make_wavcaps(tmp_path / "wc"))
    for split in ("val", "test"):
        with pytest.raises(ConfigError, match=r"only a train split.*wavcaps\+clotho"):
            ds.split(split)


def test_wavcaps_bad_json(tmp_path):
    root = make_wavcaps(tmp_path / "wc")
    (root / "json_files" / "SoundBible" / "sb_final.json").write_text('{"data": [')
    with pytest.raises(DataError, match=r"sb_final.json: invalid JSON at line 1"):
        WavCapsDataset(root).split("train")


# ----------------------------------------------------------------------------------------- CSV


def test_csv_dataset(tmp_path):
    audio = tmp_path / "audio"
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        _wav(audio / name)
    _write_csv(tmp_path / "caps.csv", ["file_name", "caption", "split"],
               [["a.wav", "first", "train"], ["a.wav", "second", "train"], ["b.wav", "third", "val"],
                ["c.wav", "fourth", "TEST"], ["d.wav", "fifth", "holdout"], ["b.wav", "sixth", "test"]])
    ds = build_csv(root=str(audio), captions=str(tmp_path / "caps.csv"), on_error="skip")
    train = ds.split("train")
    assert [(it.audio_id, it.captions) for it in train] == [("a.wav", ("first", "second"))]
    assert [it.audio_id for it in ds.split("test")] == ["c.wav"]
    reasons = [b.reason for b in ds.skipped("train")] + [b.reason for b in ds.skipped("test")]
    assert any("'holdout' is not one of" in r for r in reasons)
    assert any("also in split 'val'" in r for r in reasons)
    with pytest.raises(DataError, match="holdout"):
        build_csv(root=str(audio), captions=str(tmp_path / "caps.csv")).split("train")
    with pytest.raises(ConfigError, match="csv.captions"):
        build_csv(root=str(audio), captions=str(tmp_path / "none.csv"))


# ----------------------------------------------------------------------------------- Combined


def test_combined_union_and_eval_from_last(tmp_path):
    clotho = ClothoDataset(make_clotho(tmp_path / "c"))
    ac = AudioCapsDataset(make_audiocaps(tmp_path / "ac"))
    wc = WavCapsDataset(make_wavcaps(tmp_path / "wc", exclusion_ids=["200"]),
                        exclusions=str(tmp_path / "wc" / "excluded.csv"))
    comb = CombinedDataset([wc, ac, clotho])
    assert comb.name == "wavcaps+audiocaps+clotho"
    train = comb.split("train")
    assert len(train) == 5 + 3 + 3
    ids = [it.audio_id for it in train]
    assert len(set(ids)) == len(ids)
    assert "wavcaps/FreeSound/100" in ids and "audiocaps/aaa.wav" in ids
    assert next(it for it in train if it.audio_id.startswith("clotho/")).meta["sound_id"] == "1000"
    assert comb.split("test") == clotho.split("test") and comb.split("val") == clotho.split("val")


def test_combined_leakage_rule(tmp_path):
    clotho = ClothoDataset(make_clotho(tmp_path / "c"))
    root = make_wavcaps(tmp_path / "wc")
    with pytest.raises(ConfigError, match=r"leak.*wavcaps.exclusions=PATH"):
        CombinedDataset([WavCapsDataset(root), clotho])
    # explicitly accepted
    CombinedDataset([WavCapsDataset(root, exclusions="none"), clotho])
    with pytest.raises(ConfigError, match="no val/test"):
        check_combination(["clotho", "wavcaps"], [clotho, WavCapsDataset(root, exclusions="none")])


@pytest.mark.slow
def test_plugin_modules_register_and_stay_light():
    import subprocess
    import sys

    code = ("import sys\n"
            "import bench_plugins.datasets.clotho, bench_plugins.datasets.audiocaps, bench_plugins.datasets.wavcaps, "
            "bench_plugins.datasets.csv_captions\n"
            "names = []\n"
            "for m in (bench_plugins.datasets.clotho, bench_plugins.datasets.audiocaps, "
            "bench_plugins.datasets.wavcaps, "
            "bench_plugins.datasets.csv_captions):\n"
            "    m.register_datasets(lambda n, f: names.append(n))\n"
            "print(','.join(names), 'numpy' in sys.modules, 'soundfile' in sys.modules, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert out == "clotho,audiocaps,wavcaps,csv False False False"


def test_combined_policy_and_options(tmp_path):
    clotho = ClothoDataset(make_clotho(tmp_path / "c"))
    ac = AudioCapsDataset(make_audiocaps(tmp_path / "ac", missing=("aaa",)), on_error="skip")
    comb = CombinedDataset([ac, clotho], names=["audiocaps", "clotho"], options={"audiocaps": {"on_error": "skip"}})
    assert comb.options == {"audiocaps": {"on_error": "skip"}}
    assert comb.on_error == "raise"  # one strict member keeps the combination strict
    assert [b.audio_id for b in comb.skipped("train")] == ["audiocaps/aaa.wav"]
    assert len(comb.split("train")) == 2 + 3
    assert CombinedDataset([ac, ClothoDataset(tmp_path / "c", on_error="skip")]).on_error == "skip"
    with pytest.raises(ConfigError, match="twice"):
        CombinedDataset([clotho, clotho])
