"""A full disk: one line naming the path and "no space left", and no earlier result damaged.

The results directory, the runs directory and ``BENCH_CACHE`` live on a 20 MB tmpfs, filled up
first. Mounting needs root (CI runs as root); elsewhere the tests skip and say why.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
import torch

from bench.cli.main import main
from bench.core.atomic import DiskFullError, atomic_path
from bench.results.files import read_result, write_result

pytestmark = pytest.mark.slow

TINY = ["--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=4",
        "--epochs", "1", "--batch-size", "4", "--num-workers", "0", "--no-leaderboard",
        "--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32"]


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a 20 MB tmpfs (needs root): {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave_kib: int) -> None:
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize
    with open(mount / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave_kib * 1024))


def test_checkpoint_write_on_a_full_disk_is_one_line_and_keeps_the_old_file(tiny_disk):
    target = tiny_disk / "runs" / "r1" / "best.pt"
    target.parent.mkdir(parents=True)
    torch.save({"model": {"w": torch.zeros(4)}}, target)
    before = target.read_bytes()
    _fill(tiny_disk, 64)
    with pytest.raises(DiskFullError) as info:
        with atomic_path(target) as tmp:
            torch.save({"model": {"w": torch.zeros(1 << 20)}}, tmp)  # 4 MB: torch reports a RuntimeError
    assert str(info.value).startswith(f"{target}: no space left on device")
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["best.pt"]  # no temporary file left


def test_run_on_a_full_disk_is_one_line_and_earlier_results_are_intact(tiny_disk, make_result, monkeypatch, capsys):
    results, runs, cache = tiny_disk / "results", tiny_disk / "runs", tiny_disk / "cache"
    earlier = write_result(make_result("20250101-000000-earlier"), results)
    before = earlier.read_bytes()
    _fill(tiny_disk, 600)
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    try:
        code = main(["run", *TINY, "--results-dir", str(results), "--runs-dir", str(runs)])
    finally:
        logger = logging.getLogger("bench")
        for handler in list(logger.handlers):
            if getattr(handler, "_bench_console", False):
                logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("bench run: error:")]
    assert len(errors) == 1 and "no space left" in errors[0] and str(tiny_disk) in errors[0], err
    assert "Traceback" not in err
    assert earlier.read_bytes() == before and read_result(earlier)["run_id"] == "20250101-000000-earlier"
    assert sorted(p.name for p in results.iterdir() if p.suffix == ".json") == [earlier.name]
    assert not [p for p in results.iterdir() if p.name.endswith(".tmp")]
