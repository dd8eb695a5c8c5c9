"""No signal ever ends in a traceback (issue 24): workers that lose their parent mid-transfer stay quiet.

A stopped parent leaves the worker's ``multiprocessing.resource_sharer`` thread (which hands batches'
file descriptors to the parent) with a ``ConnectionResetError`` that it prints through
``sys.excepthook``. The first test makes a worker do exactly that; the slow one repeats the
SIGTERM-while-workers-start case 20 times (tests/sigterm_workers.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from bench.data.workers import DataLoader, worker_init

REPO = Path(__file__).resolve().parents[1]


class _ReportsLikeResourceSharer(Dataset):
    """Each item reports an exception the way resource_sharer's thread does (sys.excepthook), and from a thread."""

    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        try:
            raise self.kind("peer went away")
        except self.kind:
            sys.excepthook(*sys.exc_info())

        def fail() -> None:
            raise self.kind("peer went away in a thread")

        thread = threading.Thread(target=fail)
        thread.start()
        thread.join()
        return torch.zeros(2)


@pytest.mark.parametrize(("kind", "printed"), [(ConnectionResetError, False), (BrokenPipeError, False),
                                                (EOFError, False), (ValueError, True)])
def test_a_worker_prints_no_traceback_for_a_broken_connection(capfd, kind, printed) -> None:
    batches = list(DataLoader(_ReportsLikeResourceSharer(kind), batch_size=1, num_workers=1,
                              worker_init_fn=worker_init))
    assert len(batches) == 2
    err = capfd.readouterr().err
    assert ("Traceback" in err) == printed and (kind.__name__ in err) == printed, err


@pytest.mark.slow
def test_sigterm_while_workers_start_20_times_one_line_each_and_no_orphans() -> None:
    mark = uuid.uuid4().hex
    env = {**os.environ, "BENCH_TEST_MARK": mark}
    done = subprocess.run([sys.executable, "-m", "tests.sigterm_workers", "20"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = json.loads(done.stdout)
    assert len(trials) == 20
    assert [t["code"] for t in trials] == [143] * 20
    noisy = [t["stderr"] for t in trials if t["stderr"] != "bench: interrupted\n"]
    assert not noisy, f"{len(noisy)} of 20 trials printed more than the one line:\n{noisy[0][-3000:]}"
    from tests.test_lifecycle_integrity import _marked

    assert not _marked(mark), "workers outlived their parents"
