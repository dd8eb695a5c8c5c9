"""Kill a ``bench run`` subprocess with SIGKILL the moment a chosen checkpoint exists (resume tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def kill_at_checkpoint(argv: list[str], runs_dir: Path, wanted: Callable[[Path], bool] = lambda run_dir: True,
                       what: str = "a last.pt", poll: float = 0.05) -> Path:
    """Start ``bench run ARGV``; SIGKILL it once a ``runs_dir/*/last.pt`` whose run directory ``wanted``
    accepts exists, and return that run directory. Fails the test if the run ends first."""
    process = subprocess.Popen([sys.executable, "-m", "bench", "run", *argv], env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            found = [p.parent for p in runs_dir.glob("*/last.pt") if wanted(p.parent)]
            if found:
                os.kill(process.pid, signal.SIGKILL)
                break
            if process.poll() is not None:
                pytest.fail(f"the run ended before {what}: {process.stderr.read()[-2000:]!r}")
            time.sleep(poll)
        else:
            pytest.fail(f"{what} did not appear within the deadline")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return found[0]
