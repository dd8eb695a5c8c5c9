"""Stale temporary files of killed writers are removed at start-up; live writers' files never are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.core.atomic import atomic_path, remove_stale_temps

ROOT = Path(__file__).resolve().parents[1]


def _old(path: Path, hours: float = 2.0) -> Path:
    stamp = time.time() - hours * 3600
    os.utime(path, (stamp, stamp))
    return path


def _make(path: Path, hours: float | None = 2.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("half a file")
    return _old(path, hours) if hours is not None else path


def test_only_old_unlocked_temp_files_of_bench_are_removed(tmp_path, caplog):
    stale = [_make(tmp_path / ".result.json.a1b2c3d4.tmp"), _make(tmp_path / "run" / ".last.pt.zz_99xyz.tmp"),
             _make(tmp_path / "a" / "b" / "c" / ".m.json.k3k3k3k3.tmp")]
    kept = [_make(tmp_path / ".result.json.fresh000.tmp", hours=None),  # younger than an hour
            _make(tmp_path / "notes.tmp"), _make(tmp_path / ".x.tmp"),  # not bench's pattern
            _make(tmp_path / "result.json"),
            _make(tmp_path / "a" / "b" / "c" / "d" / ".deep.json.q1q1q1q1.tmp")]  # below the depth searched
    with caplog.at_level("INFO", logger="bench"):
        assert remove_stale_temps([tmp_path, tmp_path / "run", tmp_path / "missing"]) == 3
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert "removed 3 stale temporary file(s)" in caplog.text
    caplog.clear()
    assert remove_stale_temps([tmp_path]) == 0
    assert "stale" not in caplog.text  # nothing to say when nothing was removed


def test_a_live_writers_temp_file_is_kept_however_old(tmp_path):
    target = tmp_path / "big.pt"
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(b"x" * 10)
        _old(Path(tmp), hours=5)
        assert remove_stale_temps([tmp_path]) == 0  # flock-ed by this writer
        assert Path(tmp).exists()
    assert target.read_bytes() == b"x" * 10
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


WRITER = """
import sys, time
from bench.core.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    open(tmp, "wb").write(b"partial")
    print(tmp, flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_sigkill_during_an_atomic_write_leaves_a_temp_file_that_start_up_removes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "result.json")], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        tmp = Path(proc.stdout.readline().strip())
        _old(tmp, hours=3)
        assert remove_stale_temps([tmp_path]) == 0  # the writer is alive and holds its lock
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert tmp.exists() and not (tmp_path / "result.json").exists()  # the litter the issue describes
    assert remove_stale_temps([tmp_path]) == 1
    assert not tmp.exists()
