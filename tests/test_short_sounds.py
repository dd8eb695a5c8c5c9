"""Short real sounds are good data (issue 24): clicks and UI sounds of tens of milliseconds validate
by default, with a counted warning; files below 10 ms (a 1-sample export) are still refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli.main import main
from bench.data.audio_checks import MIN_DURATION, SHORT_SECONDS, ValidationOptions
from bench.data.validate import validate_dataset
from bench_plugins.datasets.csv_captions import build_csv
from tests.bad_corpus import noise

# The lengths of three Debian desktop sounds that the old 0.1 s default refused:
# audio-volume-change.oga 67 ms, dialog-information.oga 61 ms, percussion-10.wav 35 ms.
SHORT = {"volume-change.wav": (0.067, 48000), "dialog-information.wav": (0.061, 48000),
         "percussion-10.wav": (0.035, 44100)}


@pytest.fixture(autouse=True)
def _isolated(isolated_cache):
    """Its own BENCH_CACHE (tests/conftest.py): manifests written here never leak."""


def _dataset(base: Path, odd: dict[str, bytes] | None = None) -> tuple[Path, Path]:
    root = base / "audio"
    root.mkdir(parents=True)
    rows = ["file_name,caption,split"]
    seed = 0
    for split in ("train", "val", "test"):
        for i in range(2):
            sf.write(root / f"{split}{i}.wav", noise(0.5, 16000, seed), 16000)
            seed += 1
            rows.append(f"{split}{i}.wav,a {split} clip number {i},{split}")
    for name, (seconds, rate) in SHORT.items():
        # A decaying click, not silence: it must count as short, not as silent.
        click = noise(seconds, rate, seed)
        sf.write(root / name, click * np.exp(-np.arange(len(click)) / (len(click) / 4)), rate)
        seed += 1
        rows.append(f"{name},a short ui sound {name[:-4]},train")
    for name, content in (odd or {}).items():
        (root / name).write_bytes(content)
        rows.append(f"{name},the odd one,train")
    (base / "captions.csv").write_text("\n".join(rows) + "\n")
    return root, base / "captions.csv"


def test_defaults() -> None:
    assert ValidationOptions().min_duration == MIN_DURATION == 0.01 and SHORT_SECONDS == 0.1


def test_short_ui_sounds_validate_as_good_with_a_warning_count(tmp_path, capsys) -> None:
    root, captions = _dataset(tmp_path)
    reports = validate_dataset(build_csv(root=str(root), captions=str(captions)), log_warnings=False)
    train = reports["train"]
    assert train.ok and len(train.ok_items) == 5
    assert train.stats["n_short"] == 3 and reports["val"].stats["n_short"] == 0
    assert sorted(w.audio_id for w in train.warnings) == sorted(SHORT)
    assert "accepted 3 shorter than 0.1 s" in train.summary() and "3 warning(s) (3 short)" in train.summary()

    code = main(["validate", "--dataset", "csv", "--set", f"csv.root={root}", "--set", f"csv.captions={captions}"])
    out = capsys.readouterr().out
    assert code == 0 and "dataset is valid" in out, out
    warned = [line for line in out.splitlines() if line.startswith("  warning: [train] ")]
    assert len(warned) == 3 and all("short clip" in line for line in warned), out
    assert "  warning: [train] percussion-10.wav" in out and "0.035 s" in out


def test_one_sample_and_five_ms_stay_refused(tmp_path) -> None:
    import io

    def wav(data: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        sf.write(buffer, data, 16000, format="WAV")
        return buffer.getvalue()

    root, captions = _dataset(tmp_path, {"one.wav": wav(np.full(1, 0.3, np.float32)),
                                         "five_ms.wav": wav(noise(0.005, 16000, 99))})
    ds = build_csv(root=str(root), captions=str(captions), on_error="skip")
    train = validate_dataset(ds, log_warnings=False)["train"]
    reasons = {b.audio_id: b.reason for b in train.bad}
    assert set(reasons) == {"one.wav", "five_ms.wav"}
    assert all("too short" in r and "minimum 0.01 s" in r for r in reasons.values())
    assert train.stats["n_short"] == 3  # the accepted short clips, not the refused ones
    # The option still moves the line: with the old 0.1 s the three UI sounds are refused again.
    strict = validate_dataset(build_csv(root=str(root), captions=str(captions), on_error="skip", min_duration=0.1),
                              log_warnings=False)["train"]
    assert {b.audio_id for b in strict.bad} == {"one.wav", "five_ms.wav", *SHORT}
