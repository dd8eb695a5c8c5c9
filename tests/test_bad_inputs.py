"""Nothing bad gets through, nothing good gets blocked (issue 13), end to end through the CLI.

Every row of the issue's table has a test here: the exit code, the named file or component, and
no ``Traceback`` on stderr. Audio rows run ``bench validate`` on a tiny CSV dataset (fast); rows
that need a finished run share one module fixture of two tiny trainings (slow). The bad-input
corpus (tests/bad_corpus.py) goes through ``validate`` and ``run`` in one slow test that prints
"N kinds, N named, 0 tracebacks, 0 silent drops".
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from bench.cli.main import main
from tests.bad_corpus import make_corpus, noise, wav_bytes
from tests.conftest import drop_console_handlers

SMALL = ["--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32"]
TINY = ["--epochs", "1", "--batch-size", "4", "--num-workers", "0", "--no-leaderboard", *SMALL]
SYNTH = ["--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=4"]


@pytest.fixture(autouse=True)
def _isolated(isolated_cache):
    """Every test here: its own BENCH_CACHE, no console handler left behind (tests/conftest.py)."""


def _errors(err: str, command: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"bench {command}: error:")]


def _csv_args(root: Path, captions: Path) -> list[str]:
    return ["--dataset", "csv", "--set", f"csv.root={root}", "--set", f"csv.captions={captions}"]


def _small_csv(base: Path, name: str, content: bytes | None, split: str = "train") -> tuple[Path, Path]:
    """Two good clips per split plus one file ``name`` (``content``) in ``split``."""
    root = base / "audio"
    root.mkdir(parents=True)
    rows = ["file_name,caption,split"]
    seed = 0
    for s in ("train", "val", "test"):
        for i in range(2):
            sf.write(root / f"{s}{i}.wav", noise(0.5, 16000, seed), 16000)
            seed += 1
            rows.append(f"{s}{i}.wav,{s} clip {i},{s}")
    if content is not None:
        (root / name).write_bytes(content)
    rows.append(f"{name},the odd one,{split}")
    (base / "captions.csv").write_text("\n".join(rows) + "\n")
    return root, base / "captions.csv"


# --------------------------------------------------------------------------- audio rows: validate


def _good_wav() -> bytes:
    return wav_bytes(noise(1.0, 16000, 50))


def _huge_header() -> bytes:
    data = bytearray(_good_wav())
    data[40:44] = (0x7FFFFF00).to_bytes(4, "little")
    return bytes(data)


def _nan_after_first_second() -> bytes:
    x = noise(2.0, 16000, 51)
    x[20000:20010] = np.nan  # 1.25 s
    return wav_bytes(x, subtype="FLOAT")


AUDIO_ROWS = {
    "data shorter than header": (lambda: _good_wav()[:20000], "header says 16000 frames"),
    "header claims a huge length": (_huge_header, "header says 1073741696 frames"),
    "NaN after the first second": (_nan_after_first_second, "10 nan/inf sample(s), the first at 1.250 s"),
    "1-sample file": (lambda: wav_bytes(np.full(1, 0.3, np.float32)), "too short: 0.0001 s (1 frames)"),
    "5 ms file": (lambda: wav_bytes(noise(0.005, 16000, 52)), "too short: 0.0050 s"),
    "1 Hz sample rate": (lambda: wav_bytes(np.full(8, 0.3, np.float32), sr=1), "implausible sample rate 1 hz"),
}


@pytest.mark.parametrize("row", list(AUDIO_ROWS))
def test_audio_row_is_named_by_validate(tmp_path, capsys, row):
    make, fragment = AUDIO_ROWS[row]
    root, captions = _small_csv(tmp_path, "odd.wav", make())
    code = main(["validate", *_csv_args(root, captions)])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    named = [line for line in out.splitlines() if line.startswith("  [train] odd.wav ")]
    assert len(named) == 1 and fragment in named[0].lower(), out
    assert "split train: 2 usable item(s) of 3" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("policy, code, warned, bad", [
    ("warn", 0, True, False), ("error", 1, False, True), ("ignore", 0, False, False)])
def test_silent_file_is_a_warning_unless_asked(tmp_path, capsys, policy, code, warned, bad):
    root, captions = _small_csv(tmp_path, "quiet.wav", wav_bytes(np.zeros(16000, np.float32)))
    got = main(["validate", *_csv_args(root, captions), "--set", f"csv.on_silence={policy}"])
    out, err = capsys.readouterr()
    assert got == code, out + err
    warning = [line for line in out.splitlines() if line.startswith("  warning: [train] quiet.wav ")]
    assert bool(warning) == warned, out + err
    if warned:
        assert "silent (all zero)" in warning[0] and "split train: 3 usable item(s) of 3" in out
    assert any(line.startswith("  [train] quiet.wav ") and "silent" in line for line in out.splitlines()) == bad
    assert "Traceback" not in err


@pytest.mark.parametrize("policy, code", [("error", 1), ("warn", 0)])
def test_identical_audio_across_splits_is_reported(tmp_path, capsys, policy, code):
    # issue 17 item 4: the same clip under another name in test; a FLAC re-encode has the same samples.
    base = tmp_path / "d"
    root, captions = _small_csv(base, "copy.flac", None, split="test")
    sf.write(root / "copy.flac", sf.read(root / "train1.wav", dtype="float32")[0], 16000, format="FLAC")
    got = main(["validate", *_csv_args(root, captions), "--set", f"csv.on_leak={policy}"])
    out, err = capsys.readouterr()
    assert got == code, out + err
    text = out + err
    line = next(line for line in text.splitlines() if "copy.flac" in line and "identical audio" in line)
    assert "[train] train1.wav" in line and "in two splits" in line
    assert ("split test: 2 usable item(s) of 3" in out) == (policy == "error")
    assert "Traceback" not in err


def test_multichannel_high_rate_and_long_files_are_accepted_and_counted(tmp_path, capsys):
    base = tmp_path / "d"
    root, captions = _small_csv(base, "stereo.wav", wav_bytes(noise(0.5, 16000, 60, channels=2)))
    sf.write(root / "hi.wav", noise(0.2, 192000, 61), 192000)
    sf.write(root / "long.wav", noise(601.0, 1000, 62), 1000)  # 10 min at 1 kHz: small, but long
    with open(captions, "a") as fh:
        fh.write("hi.wav,a high rate clip,train\nlong.wav,a long clip,train\n")
    code = main(["validate", *_csv_args(root, captions), "--sample-rate", "32000"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    train = next(line for line in out.splitlines() if line.startswith("split train:"))
    assert "5 usable item(s) of 5" in train
    assert "1 multichannel (mixed to mono)" in train and "1 above the target rate" in train
    assert "1 longer than 10 min" in train
    assert "Traceback" not in err


def test_validation_report_is_cached_by_size_and_mtime(tmp_path, capsys):
    root, captions = _small_csv(tmp_path, "odd.wav", _good_wav())
    args = ["validate", *_csv_args(root, captions)]
    assert main(args) == 0
    assert "(from manifest cache)" not in capsys.readouterr().out
    assert main(args) == 0
    assert "(from manifest cache)" in capsys.readouterr().out
    (root / "odd.wav").write_bytes(_good_wav()[:30000])  # a changed file invalidates the entry
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "header says" in out and "split train: 2 usable item(s) of 3; 1 bad" in out


# ----------------------------------------------------------------- the corpus, through validate and run


@pytest.mark.slow
def test_bad_input_corpus_through_validate_and_run(tmp_path, capsys):
    root, captions, kinds, entries = make_corpus(tmp_path / "corpus")
    assert len(kinds) >= 25
    tracebacks = 0

    code = main(["validate", *_csv_args(root, captions)])
    out, err = capsys.readouterr()
    tracebacks += (out + err).count("Traceback")
    assert code == 1
    lines = (out + err).splitlines()

    def named_by_validate(kind) -> bool:
        if kind.warning:
            prefix = f"  warning: [{kind.split}] {kind.entry} "
            return any(line.startswith(prefix) and kind.fragment in line.lower() for line in lines)
        prefix = f"  [{kind.split}] {kind.entry}"
        return any(line.startswith(prefix) and kind.fragment in line.lower() for line in lines)

    drops = 0
    for split, total in entries.items():
        summary = next(line for line in lines if line.startswith(f"split {split}:"))
        usable, of = map(int, re.search(r"(\d+) usable item\(s\) of (\d+)", summary).groups())
        listed = sum(1 for line in lines if line.startswith(f"  [{split}] "))
        drops += abs(total - of) + abs(of - usable - listed)

    # Refused as it stands (one line, no traceback), then run skipping the bad entries.
    run_args = ["run", *_csv_args(root, captions), "--results-dir", str(tmp_path / "results"),
                "--runs-dir", str(tmp_path / "runs"), *TINY]
    code = main(run_args)
    out, err = capsys.readouterr()
    tracebacks += (out + err).count("Traceback")
    assert code == 2 and len(_errors(err, "run")) == 1, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    drop_console_handlers()
    code = main([*run_args, "--set", "csv.on_error=skip"])
    out, err = capsys.readouterr()
    tracebacks += (out + err).count("Traceback")
    assert code == 0, err
    result = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    skipped = result["skipped"]

    def named_by_run(kind) -> bool:
        if kind.warning:
            return any("warning(s)" in line and f" {kind.entry} (" in line and kind.fragment in line.lower()
                       for line in err.splitlines())
        return any(s["split"] == kind.split and s["audio_id"] == kind.entry and kind.fragment in s["reason"].lower()
                   for s in skipped)

    for split, total in entries.items():
        drops += abs(total - result["dataset"]["splits"][split]["n_audios"]
                     - sum(1 for s in skipped if s["split"] == split))
    named = [k for k in kinds if named_by_validate(k) and named_by_run(k)]
    missed = [k.name for k in kinds if k not in named]
    line = f"{len(kinds)} kinds, {len(named)} named, {tracebacks} tracebacks, {drops} silent drops"
    print(line)
    assert not missed and tracebacks == 0 and drops == 0, (line, missed)


# ------------------------------------------------- rows that need finished runs: one fixture, two runs


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two tiny synthetic runs (seeds 0 and 1); stale temp files planted beforehand."""
    base = tmp_path_factory.mktemp("bad_inputs_runs")
    results, runs, cache = base / "results", base / "runs", base / "cache"
    for folder in (results, runs / "some-run", cache / "manifests"):
        folder.mkdir(parents=True)
    stale = [results / ".r.json.abc12345.tmp", runs / "some-run" / ".last.pt.xyz98765.tmp",
             cache / "manifests" / ".m.json.qwe45678.tmp"]
    fresh = results / ".new.json.fresh123.tmp"
    for path in [*stale, fresh]:
        path.write_text("half")
    for path in stale:
        _age(path, 2 * 3600)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCH_CACHE", str(cache))
        logger = logging.getLogger("bench")
        records: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
        logger.addHandler(handler)
        try:
            code = main(["run", *SYNTH, *TINY, "--seed", "0,1", "--results-dir", str(results),
                         "--set", "train.keep=all",
                         "--runs-dir", str(runs)])
        finally:
            logger.removeHandler(handler)
    drop_console_handlers()
    assert code == 0
    by_seed = {}
    for path in results.glob("*.json"):
        data = json.loads(path.read_text())
        by_seed[data["seed"]] = data
    return SimpleNamespace(base=base, results=results, runs=runs, cache=cache, by_seed=by_seed,
                           stale=stale, fresh=fresh, records=records)


@pytest.mark.slow
def test_stale_temp_files_are_removed_at_start_up_with_a_count(finished):
    # Row "SIGKILL during an atomic write": its .tmp no longer stays forever.
    assert not any(path.exists() for path in finished.stale)
    assert finished.fresh.exists()  # younger than an hour: maybe a live writer's
    assert any("removed 3 stale temporary file(s)" in message for message in finished.records), finished.records


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/bench-pwned-by-checkpoint",))


def _bad_checkpoint(kind: str, path: Path) -> str:
    """Write a bad checkpoint of ``kind`` at ``path``; return what the error must say."""
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        return "truncated or damaged"
    if kind == "foreign":
        path.write_text("definitely not a checkpoint\n")
        return "not a checkpoint file"
    if kind == "hostile":
        torch.save({"model": _Evil()}, path)
        return "refused by weights-only loading"
    torch.save({"weights": torch.zeros(3)}, path)  # a torch file, but not bench's
    return "not a checkpoint of bench"


CHECKPOINT_KINDS = ["truncated", "foreign", "hostile", "not-bench"]


@pytest.mark.parametrize("name", ["last.pt", "best.pt"])
@pytest.mark.parametrize("kind", [*CHECKPOINT_KINDS, "empty"])
def test_load_checkpoint_says_what_is_wrong_in_one_line(tmp_path, kind, name):
    from bench.errors import ConfigError
    from bench.model.checkpoints import load_checkpoint

    path = tmp_path / name
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 1}, path)
    must_say = "empty file" if kind == "empty" else _bad_checkpoint(kind, path)
    if kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and must_say in message and "\n" not in message
    assert not Path("/tmp/bench-pwned-by-checkpoint").exists()


def test_last_pt_without_resume_state_is_named(tmp_path):
    from bench.errors import ConfigError
    from bench.model.checkpoints import load_checkpoint

    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "best.pt")
    assert set(load_checkpoint(tmp_path / "best.pt")) == {"model"}
    shutil.copy(tmp_path / "best.pt", tmp_path / "last.pt")
    with pytest.raises(ConfigError, match="not a resumable checkpoint of bench .missing loss, optimizer"):
        load_checkpoint(tmp_path / "last.pt")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["truncated", "hostile"])
def test_bad_last_pt_for_resume_is_one_line(finished, tmp_path, capsys, kind):
    run_id = finished.by_seed[0]["run_id"]
    runs = tmp_path / "runs"
    shutil.copytree(finished.runs / run_id, runs / run_id)
    (runs / run_id / "result.json").unlink()  # unfinished, so --resume reads last.pt
    must_say = _bad_checkpoint(kind, runs / run_id / "last.pt")
    code = main(["run", "--resume", run_id, "--runs-dir", str(runs), "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2, err
    errors = _errors(err, "run")
    assert len(errors) == 1 and str(runs / run_id / "last.pt") in errors[0] and must_say in errors[0], err
    assert "Traceback" not in err
    assert not Path("/tmp/bench-pwned-by-checkpoint").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["foreign", "not-bench"])
def test_bad_best_pt_for_init_is_one_line(finished, tmp_path, capsys, kind):
    run_id = finished.by_seed[0]["run_id"]
    runs = tmp_path / "runs"
    shutil.copytree(finished.runs / run_id, runs / run_id)
    must_say = _bad_checkpoint(kind, runs / run_id / "best.pt")
    code = main(["run", *SYNTH, *TINY, "--init", run_id, "--runs-dir", str(runs),
                 "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2, err
    errors = _errors(err, "run")
    assert len(errors) == 1 and str(runs / run_id / "best.pt") in errors[0] and must_say in errors[0], err
    assert "Traceback" not in err


def _bad_embeddings(kind: str, path: Path, original: bytes) -> None:
    if kind == "truncated":
        path.write_bytes(original[: len(original) // 2])
    elif kind == "text":
        path.write_text("not an npz\n")
    elif kind == "missing-keys":
        with open(path, "wb") as fh:
            np.savez(fh, audio=np.zeros((2, 2)))
    else:
        with open(path, "wb") as fh:
            np.savez(fh, audio=np.array([{"x": 1}], dtype=object), text=np.zeros(2),
                     audio_of_caption=np.zeros(2), fingerprint=np.array("x"))


@pytest.mark.parametrize("kind", ["truncated", "text", "missing-keys", "pickled"])
def test_bad_test_embeddings_are_one_line(tmp_path, kind):
    from bench.errors import BenchError
    from bench.results.fusion import _load_embeddings

    path = tmp_path / "runs" / "r1" / "test_embeddings.npz"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        np.savez(fh, audio=np.zeros((2, 2)), text=np.zeros((2, 2)), audio_of_caption=np.zeros(2),
                 fingerprint=np.array("x"))
    result = {"run_id": "r1", "artifacts": {"test_embeddings": "r1/test_embeddings.npz"}}
    assert set(_load_embeddings(result, [tmp_path / "runs"])) == {"audio", "text", "audio_of_caption", "fingerprint"}
    _bad_embeddings(kind, path, path.read_bytes())
    with pytest.raises(BenchError) as info:
        _load_embeddings(result, [tmp_path / "runs"])
    assert str(info.value).startswith(f"{path}: ") and "r1" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_bad_test_embeddings_for_fuse_are_one_line(finished, tmp_path, capsys):
    first, second = finished.by_seed[0], finished.by_seed[1]
    path = finished.runs / second["artifacts"]["test_embeddings"]  # published relative to the runs directory
    original = path.read_bytes()
    try:
        _bad_embeddings("truncated", path, original)
        code = main(["fuse", first["run_id"], second["run_id"], "--results-dir", str(finished.results),
                     "--no-leaderboard"])
    finally:
        path.write_bytes(original)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = _errors(err, "fuse")
    assert len(errors) == 1 and str(path) in errors[0], err
    assert "Traceback" not in err
    assert not list(finished.results.glob("*fusion*"))


@pytest.mark.slow
def test_unreadable_result_json_does_not_block_a_run(finished, capsys):
    broken = finished.results / "zz-broken.json"
    broken.write_text('{"schema_version": "1.0", "run_id": ')
    try:
        code = main(["run", *SYNTH, *TINY, "--seed", "0", "--results-dir", str(finished.results),
                     "--runs-dir", str(finished.runs)])
        err = capsys.readouterr().err
        assert code == 0, err
        assert err.count("zz-broken.json") == 1 and "unreadable result" in err, err
        assert "already done" in err and finished.by_seed[0]["run_id"] in err
        assert broken.read_text() == '{"schema_version": "1.0", "run_id": '  # never rewritten or deleted
        assert "Traceback" not in err
    finally:
        broken.unlink()


# ------------------------------------------------------------- component rows (contracts, end to end)


class _Wide(nn.Module):
    sample_rate = 16000
    embed_dim = 8

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.lin = nn.Linear(1, 8)

    def forward(self, waveforms, lengths):
        x = self.lin(waveforms.mean(dim=1, keepdim=True))
        if self.out == "width":
            return torch.cat([x, x], dim=1)
        if self.out == "rank":
            return x[:, :, None]
        return x * float("nan")


COMPONENT_ROWS = {
    "factory returns a string": (lambda: "not a module", "factory returned str"),
    "wrong width": (lambda: _Wide("width"), "shape (4, 16)"),
    "wrong rank": (lambda: _Wide("rank"), "shape (4, 8, 1)"),
    "NaN output": (lambda: _Wide("nan"), "nan/inf"),
}


@pytest.mark.slow
@pytest.mark.parametrize("row", list(COMPONENT_ROWS))
def test_broken_encoder_is_one_line_naming_it(tmp_path, capsys, monkeypatch, row):
    import bench.core.registry as registry_module
    from bench import hookimpl

    factory, must_say = COMPONENT_ROWS[row]
    registry = registry_module.Registry()
    registry.load_entry_points()
    plugin = SimpleNamespace(register_audio_encoders=hookimpl(lambda register: register("brokenenc", factory)))
    assert registry.register_module(plugin, "brokenplugin", "bench-broken", "1.0").ok
    monkeypatch.setattr(registry_module, "_REGISTRY", registry)
    code = main(["run", "--encoder", "brokenenc", *SYNTH, *TINY[:-len(SMALL)], "--results-dir", str(tmp_path / "r"),
                 "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2, err
    errors = _errors(err, "run")
    # The factory check names the registered component; the first-batch checks name its class.
    assert len(errors) == 1 and ("'brokenenc'" in errors[0] or "'_Wide'" in errors[0]), err
    assert "audio encoder" in errors[0] and must_say in errors[0].lower(), err
    assert "Traceback" not in err


def test_hostile_pickle_helper_really_is_hostile(tmp_path):
    # Guard for the tests above: the payload would run code under plain pickle.
    assert b"system" in pickle.dumps(_Evil())
