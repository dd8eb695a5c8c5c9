"""A duplicated (file, caption) row is named with both line numbers (issue 24): a bad entry in val and
test, where it would count a query twice, and a counted warning in train, where it is used once."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from bench.cli.main import main
from bench.data.validate import validate_dataset
from bench.errors import DataError
from bench_plugins.datasets.audiocaps import AudioCapsDataset
from bench_plugins.datasets.clotho import ClothoDataset
from bench_plugins.datasets.csv_captions import build_csv
from tests.bad_corpus import noise


@pytest.fixture(autouse=True)
def _isolated(isolated_cache):
    """Its own BENCH_CACHE (tests/conftest.py)."""


def _csv_dataset(base: Path) -> tuple[Path, Path]:
    root = base / "audio"
    root.mkdir(parents=True)
    rows = ["file_name,caption,split"]
    for seed, split in enumerate(("train", "val", "test")):
        for i in range(2):
            sf.write(root / f"{split}{i}.wav", noise(0.3, 16000, seed * 2 + i), 16000)
            rows.append(f"{split}{i}.wav,a {split} clip number {i},{split}")
    rows.append("train0.wav,a train clip number 0 ,train")  # line 8 repeats line 2 (spaces aside)
    rows.append("val1.wav,a val clip number 1,val")  # line 9 repeats line 5
    (base / "captions.csv").write_text("\n".join(rows) + "\n")
    return root, base / "captions.csv"


def test_csv_repeat_is_a_warning_in_train_and_bad_in_val(tmp_path, capsys) -> None:
    root, captions = _csv_dataset(tmp_path)
    with pytest.raises(DataError, match=r"captions.csv line 9: duplicated row: 'val1.wav' .* also at line 5"):
        build_csv(root=str(root), captions=str(captions)).split("val")
    ds = build_csv(root=str(root), captions=str(captions), on_error="skip")
    reports = validate_dataset(ds, log_warnings=False)
    train, val = reports["train"], reports["val"]
    assert train.ok and [w.audio_id for w in train.warnings] == ["captions.csv line 8"]
    assert "also at line 2; used once" in train.warnings[0].reason
    assert "1 warning(s) (1 duplicated row)" in train.summary()
    assert ds.split("train")[0].captions == ("a train clip number 0",)  # trained once, not twice
    assert [str(b) for b in val.bad] == [
        "[val] captions.csv line 9: duplicated row: 'val1.wav' with caption 'a val clip number 1' is also at "
        "line 5; in val it would count a query twice; remove one of the rows"]
    assert ds.split("val")[1].captions == ("a val clip number 1",)

    code = main(["validate", "--dataset", "csv", "--set", f"csv.root={root}", "--set", f"csv.captions={captions}"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "  [val] captions.csv line 9: duplicated row" in out
    assert "  warning: [train] captions.csv line 8: duplicated row" in out


def test_clotho_and_audiocaps_repeats(tmp_path) -> None:
    from tests.test_datasets import make_clotho

    root = make_clotho(tmp_path / "clotho", n=2, metadata=False)
    path = root / "clotho_captions_evaluation.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")  # line 4 repeats line 2
    with pytest.raises(DataError, match=r"\[test\] clotho_captions_evaluation.csv line 4: duplicated row: .* "
                                        r"also at line 2; in test it would count a query twice"):
        ClothoDataset(root).split("test")

    caps = tmp_path / "audiocaps"
    (caps / "audio" / "train").mkdir(parents=True)
    sf.write(caps / "audio" / "train" / "y1.wav", noise(0.2, 16000, 1), 16000)
    (caps / "train.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,y1,0,a dog barks\n"
                                    "2,y1,0,a cat\n3,y1,0,a dog barks\n")
    ds = AudioCapsDataset(caps)
    assert ds.split("train")[0].captions == ("a dog barks", "a cat")
    assert [w.reason for w in ds.parse_warnings("train")] == [
        "duplicated row: 'y1.wav' with caption 'a dog barks' is also at line 2; used once"]


def test_run_refuses_with_the_full_list_that_validate_prints(tmp_path, capsys) -> None:
    from tests.conftest import drop_console_handlers

    root, captions = _csv_dataset(tmp_path)
    text = captions.read_bytes()
    # More problems, in several splits: an undecodable line (the old `bench run` stopped here, at the
    # first one), a row with too many fields, a missing file, a split that is not one.
    captions.write_bytes(text.replace(b"a train clip number 1", b"a train clip \xff number 1")
                         + b"missing.wav,gone,test\nx.wav,a,b,c\nval0.wav,held out,holdout\n")
    args = ["--dataset", "csv", "--set", f"csv.root={root}", "--set", f"csv.captions={captions}"]
    assert main(["validate", *args]) == 1
    listed = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("  [")]
    assert len(listed) == 5, listed
    try:
        code = main(["run", *args, "--epochs", "1", "--num-workers", "0", "--no-leaderboard",
                     "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs")])
    finally:
        drop_console_handlers()
    out, err = capsys.readouterr()
    assert code != 0
    shown = [line.strip() for line in (out + err).splitlines() if line.startswith("  [")]
    assert shown == listed, out + err
    (error,) = [line for line in err.splitlines() if line.startswith("bench run: error:")]
    assert error.startswith("bench run: error: 5 bad entries in dataset csv (all listed above")
    assert all(entry in error for entry in listed) and "csv.on_error=skip" in error
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_full_listing_reuses_the_refused_runs_manifests(tmp_path) -> None:
    """A dataset that parses but has a bad file: the run's validation (on_error=raise) and the full listing
    (on_error=skip) share manifests, so the listing does not decode every file a second time."""
    from bench.core.config import DatasetSpec
    from bench.core.registry import get_registry
    from bench.data.full_report import full_reports

    root, captions = _csv_dataset(tmp_path)
    captions.write_text("\n".join(captions.read_text().splitlines()[:-2]) + "\n")  # no repeated rows
    (root / "test0.wav").write_bytes(b"RIFF not really a wav")
    options = {"root": str(root), "captions": str(captions)}
    validate_dataset(build_csv(**options), log_warnings=False)  # what `bench run` did before it refused
    reports = full_reports(get_registry(), DatasetSpec("csv", options))
    assert all(report.from_cache for report in reports.values())
    assert [b.audio_id for b in reports["test"].bad] == ["test0.wav"]
