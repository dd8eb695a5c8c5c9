"""Issue 18, run lifecycle integrity: one test (or more) per failure the issue reproduced.

Run ids and run directories are never shared; a run killed at any point resumes or finishes;
SIGINT/SIGTERM always stop a run (130/143) and no DataLoader worker outlives its parent; caches
verify what they return; CSV parsing is strict and skips only the bad line. The tests that start
``bench`` in a process are few, tiny and marked slow.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from bench.cli.main import main
from bench.core import interrupts
from bench.core.array_store import ArrayStore
from bench.core.config import ComponentSpec, RunConfig
from bench.errors import ConfigError, DataError
from bench.evaluation.embedding_cache import EmbeddingCache
from bench.runs.grid import claim_combination, latest_run
from bench.runs.run import claim_run_dir, combination_id, finish_from_results, new_run_id, run_one


def _cfg(tmp_path: Path, seed: int = 0, results: str = "results") -> RunConfig:
    return RunConfig(dataset=ComponentSpec("synthetic"), audio_encoder=ComponentSpec("cnn"),
                     text_encoder=ComponentSpec("minilm"), loss=ComponentSpec("ntxent"), seed=seed,
                     results_dir=tmp_path / results, runs_dir=tmp_path / "runs")


def _run_dir(cfg: RunConfig, run_id: str, *, finished: bool = False, age: float = 0.0) -> Path:
    """A run directory as bench leaves it: config.json, and result.json once finished."""
    run_dir = Path(cfg.runs_dir) / run_id
    run_dir.mkdir(parents=True)
    config = {"config": {"results_dir": str(cfg.results_dir)}, "combination": combination_id(cfg), "seed": cfg.seed}
    (run_dir / "config.json").write_text(json.dumps(config))
    if finished:
        (run_dir / "result.json").write_text(json.dumps({"run_id": run_id}))
    stamp = time.time() - age
    os.utime(run_dir / "config.json", (stamp, stamp))
    return run_dir


# ---------------------------------------------------------------------------------- 1. run ids


def test_two_runs_started_in_the_same_second_get_different_ids_and_directories(tmp_path):
    a, b = _cfg(tmp_path), _cfg(tmp_path)
    ids = {new_run_id(a) for _ in range(50)}
    assert len(ids) == 50, "ids of one combination in one second must differ"
    # Even a forced collision (the other process took the id first) yields a directory of one's own.
    a.run_id = b.run_id = new_run_id(a)
    first = claim_run_dir(a)
    second = claim_run_dir(b)
    assert first != second and first.is_dir() and second.is_dir()
    assert b.run_id == second.name != a.run_id


def test_a_second_identical_run_waits_for_the_first(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="bench")
    cfg = _cfg(tmp_path)
    holding, release, order = threading.Event(), threading.Event(), []

    def first() -> None:
        with claim_combination(cfg):
            holding.set()
            release.wait(10)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(10)
    threading.Timer(0.5, release.set).start()
    with claim_combination(_cfg(tmp_path)):  # same combination and seed, another "process"
        order.append("second runs")
    thread.join()
    assert order == ["first done", "second runs"]
    assert any("waiting for it to finish" in r.getMessage() for r in caplog.records)
    with claim_combination(_cfg(tmp_path, seed=1)):  # another seed is not held up
        pass
    assert not Path(cfg.runs_dir).exists(), "claiming writes nothing into the runs directory"


# ---------------------------------------------------------------------------------- 2. resume


def test_a_result_already_in_the_results_dir_finishes_the_run(tmp_path, monkeypatch):
    """The kill between writing the result and its run-directory copy: resuming completes it."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    cfg = _cfg(tmp_path)
    run_dir = _run_dir(cfg, "r1")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r1.json").write_text(json.dumps({"run_id": "r1", "metrics": {}}))
    cfg.run_id = "r1"
    assert finish_from_results(cfg, run_dir)["run_id"] == "r1"
    assert json.loads((run_dir / "result.json").read_text())["run_id"] == "r1"
    (run_dir / "result.json").unlink()
    result = run_one(cfg)  # would train (and then fail: results are immutable) before the fix
    assert result["run_id"] == "r1" and (run_dir / "result.json").is_file()


def test_resume_latest_stays_within_the_given_results_dir(tmp_path, monkeypatch, capsys):
    """Run A finished into results_A; B never got a run directory: resuming B must not be A."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    _run_dir(_cfg(tmp_path, results="results_A"), "run-A", finished=True)
    code = main(["run", "--resume", "latest", "--results-dir", str(tmp_path / "results_B"), "--runs-dir", str(runs)])
    assert code == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "results_B" in err
    # An older unfinished run of results_B is the one meant, even though A is newer.
    _run_dir(_cfg(tmp_path, results="results_B"), "run-B", age=3600)
    assert latest_run(runs, results_dir=tmp_path / "results_B") == "run-B"
    assert latest_run(runs) == "run-B", "unfinished runs come before finished ones"
    # A combination filter: seed 1 was never started.
    other = {(combination_id(_cfg(tmp_path)), 1)}
    with pytest.raises(ConfigError, match="nothing to resume"):
        latest_run(runs, combinations=other)


def test_resume_latest_of_a_finished_run_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="bench")
    runs = tmp_path / "runs"
    _run_dir(_cfg(tmp_path), "run-A", finished=True)
    assert latest_run(runs, results_dir=tmp_path / "results") == "run-A"
    assert any("nothing to resume" in r.getMessage() and "run-A" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------- 3. signals


class _SignalsInFinalizer:
    """A finalizer that is interrupted: Python prints "Exception ignored" and carries on."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        time.sleep(0.05)  # the handler runs here and its exception is lost with the finalizer's


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowing itself
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_swallowed_by_a_finalizer_still_stops_the_run(signum, code):
    before = signal.getsignal(signum)
    with interrupts.handling():
        _SignalsInFinalizer(signum)  # collected at once: the exception is swallowed
        gc.collect()
        assert interrupts.received() == signum
        with pytest.raises(interrupts.Interrupted) as caught:
            interrupts.check()  # what the trainer calls at every step
    assert caught.value.exit_code == code and isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signum) is before, "the handlers are restored"


# ---------------------------------------------------------------------------------- 4. caches


def test_a_damaged_store_entry_is_named_rebuilt_and_counted(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="bench")
    cache = EmbeddingCache(tmp_path)
    good = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.get("abc123", lambda: good)
    path = cache.path("abc123")
    data = bytearray(path.read_bytes())
    data[-30:-26] = np.array([np.nan], dtype=np.float32).tobytes()  # a NaN written over one value
    path.write_bytes(bytes(data))
    calls = []
    again = cache.get("abc123", lambda: calls.append(1) or good)
    assert calls == [1] and np.array_equal(again, good), "the damaged entry is recomputed, not served"
    assert cache.damaged == 1
    assert any(str(path) in r.getMessage() and "checksum" in r.getMessage() for r in caplog.records)
    assert np.array_equal(cache.get("abc123", lambda: pytest.fail("rebuilt entry must hit")), good)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert ArrayStore(tmp_path).get("abc123") is None


def test_a_damaged_synthetic_wav_is_detected_and_regenerated(tmp_path, caplog):
    from bench_plugins.datasets._synth_generate import MARKER_FILE, generate

    caplog.set_level(logging.WARNING, logger="bench")
    root = generate(tmp_path / "syn", n_train=2, n_val=1, n_test=1, seed=0, workers=1)
    wav = root / "evaluation" / "evaluation_00000.wav"
    original = wav.read_bytes()
    noise = bytes((i * 37) % 256 for i in range(len(original) - 44))
    wav.write_bytes(original[:44] + noise)  # overwritten, same size: the size check alone misses it
    generate(root, n_train=2, n_val=1, n_test=1, seed=0, workers=1)
    assert wav.read_bytes() == original
    assert any(str(wav) in r.getMessage() and "checksum" in r.getMessage() for r in caplog.records)
    assert any("1 damaged clip(s) regenerated" in r.getMessage() for r in caplog.records)
    wav.write_bytes(original[:1000])  # truncated
    generate(root, n_train=2, n_val=1, n_test=1, seed=0, workers=1)
    assert wav.read_bytes() == original
    marker = json.loads((root / MARKER_FILE).read_text())
    assert marker["files"]["evaluation/evaluation_00000.wav"][0] == len(original)


# ---------------------------------------------------------------------------------- 5. CSV


def _csv_dataset(tmp_path: Path, body: bytes, on_error: str):
    from bench_plugins.datasets.csv_captions import build_csv

    audio = tmp_path / "audio"
    audio.mkdir(exist_ok=True)
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        (audio / name).write_bytes(b"")
    (tmp_path / "caps.csv").write_bytes(b"file_name,caption,split\n" + body)
    return build_csv(root=str(audio), captions=str(tmp_path / "caps.csv"), on_error=on_error)


def _read_all(ds):
    return ds._read_all()


QUOTE = (b'a.wav,"a dog barks,train\n'  # unbalanced quote on line 2
         b'b.wav,rain on a roof,train\n'
         b'c.wav,"wind, then ""thunder""",train\n'
         b'd.wav,a bell,test\n')


def test_an_unbalanced_quote_is_an_error_at_its_line(tmp_path):
    with pytest.raises(DataError, match=r"caps.csv: line 2: malformed CSV"):
        _read_all(_csv_dataset(tmp_path, QUOTE, "raise"))


def test_an_unbalanced_quote_under_skip_costs_only_its_line(tmp_path):
    rows = _read_all(_csv_dataset(tmp_path, QUOTE, "skip"))
    train_items, bad = rows["train"]
    assert {i.audio_id: i.captions for i in train_items} == {
        "b.wav": ("rain on a roof",), "c.wav": ('wind, then "thunder"',)}, "no caption absorbed into a name"
    assert [b.audio_id for b in bad] == ["caps.csv line 2"] and "malformed CSV" in bad[0].reason
    assert [i.audio_id for i in rows["test"][0]] == ["d.wav"]


def test_a_non_utf8_byte_under_skip_costs_only_its_line(tmp_path):
    body = b"a.wav,caf\xe9 noise,train\nb.wav,rain,train\nd.wav,a bell,test\n"
    with pytest.raises(DataError, match=r"line 2 is not valid utf-8 \(byte 0xe9\)"):
        _read_all(_csv_dataset(tmp_path, body, "raise"))
    rows = _read_all(_csv_dataset(tmp_path, body, "skip"))
    assert [i.audio_id for i in rows["train"][0]] == ["b.wav"]
    assert [(b.audio_id, "utf-8" in b.reason) for b in rows["train"][1]] == [("caps.csv line 2", True)]


def test_a_quoted_caption_may_span_lines(tmp_path):
    rows = _read_all(_csv_dataset(tmp_path, b'a.wav,"two\nlines",train\nb.wav,x,train\nd.wav,y,test\n', "raise"))
    assert {i.audio_id: i.captions for i in rows["train"][0]} == {"a.wav": ("two\nlines",), "b.wav": ("x",)}


# ---------------------------------------------------------------------------------- processes

TINY = ["--set", "synthetic.n_train=16", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
        "--set", "cnn.channels=16,16", "--set", "cnn.n_mels=16", "--batch-size", "8", "--epochs", "1",
        "--device", "cpu", "--no-leaderboard"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lifecycle_cache")


def _bench(args: list[str], cache: Path, fault: str, mark: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "BENCH_CACHE": str(cache), "BENCH_FAULT": fault, "BENCH_TEST_MARK": mark}
    return subprocess.run([sys.executable, "-m", "bench", "run", *args], env=env, capture_output=True,
                          text=True, timeout=500)


def _marked(mark: str) -> list[str]:
    """``pid (name)`` of the live processes started with ``BENCH_TEST_MARK=mark`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if f"BENCH_TEST_MARK={mark}".encode() in environ.split(b"\0") and ") Z " not in stat:
            found.append(f"{entry.name} ({(entry / 'comm').read_text().strip()})")
    return found


@pytest.mark.slow
def test_kill_at_the_result_rename_then_rerun_and_resume(tmp_path, cache, caplog):
    caplog.set_level(logging.INFO, logger="bench")
    dirs = ["--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs"), "--num-workers", "0"]
    killed = _bench([*TINY, *dirs], cache, "result-written:KILL")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (result,) = (tmp_path / "results").glob("*.json")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not (run_dir / "result.json").exists()
    os.environ["BENCH_CACHE"] = str(cache)
    try:
        assert main(["run", "--resume", "latest", *dirs[:4]]) == 0  # failed with "already exists" before
        assert (run_dir / "result.json").read_text() == result.read_text()
        assert main(["run", "--resume", run_dir.name, *dirs[2:4]]) == 0
        assert main(["run", *TINY, *dirs]) == 0
    finally:
        os.environ.pop("BENCH_CACHE", None)
    text = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("already done") for m in text)
    assert not any(m.startswith("epoch ") for m in text), "nothing is trained again"
    assert list((tmp_path / "results").glob("*.json")) == [result]


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "code"), [("worker-start:INT", 130), ("worker-start:TERM", 143),
                                             ("worker-start:KILL", -signal.SIGKILL)])
def test_a_signal_while_workers_start_stops_the_run_and_leaves_no_worker(tmp_path, cache, fault, code):
    mark = uuid.uuid4().hex
    dirs = ["--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs"), "--num-workers", "2"]
    done = _bench([*TINY, *dirs], cache, fault, mark)
    assert done.returncode == code, done.stderr[-3000:]
    if code > 0:
        assert "interrupted" in done.stderr and "--resume" in done.stderr, done.stderr[-2000:]
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert not list((tmp_path / "results").glob("*.json")), "an interrupted run writes no result"
    deadline = time.monotonic() + 5
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _marked(mark), f"orphans 5 s after the parent died: {_marked(mark)}"


def test_a_signal_during_a_fork_is_delivered_after_it():
    """Raised inside an at-fork callback it would be "Exception ignored"; it is held and re-sent."""
    with interrupts.handling():
        interrupts._before_fork()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs, records, does not raise
        interrupts._after_fork_in_parent()
        with pytest.raises(interrupts.Interrupted):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.01)


def test_a_signal_while_workers_start_is_raised_once_they_are_up():
    from bench.data.workers import DataLoader

    with interrupts.handling():
        with pytest.raises(interrupts.Interrupted) as caught:
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                reached = True  # the handler ran inside the block without raising
        assert reached and caught.value.exit_code == 143
    assert [b.tolist() for b in DataLoader(range(3), batch_size=2)] == [[0, 1], [2]]
