"""SIGTERM while DataLoader workers start, repeated: ``python -m tests.sigterm_workers N`` (issue 24).

Each trial forks a fresh process (torch already imported, so a trial costs a fraction of a second,
not an interpreter start) that does what ``bench run`` does around its DataLoader: bench's stop
handlers, bench's DataLoader and ``worker_init``, and the CLI's one-line message and exit 143. Worker
1 starts at once and feeds batches of tensors, which reach the parent as file descriptors through
``multiprocessing.resource_sharer``; worker 0 starts a little later and fires the ``worker-start``
fault, so the signal lands while the parent is taking a batch: the race behind the
``ConnectionResetError`` traceback that used to follow bench's message (2 in 10 runs with a warm
cache). Prints one JSON line: each trial's exit status and everything it wrote to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import torch
from torch.utils.data import Dataset

from bench.core import interrupts
from bench.data.workers import DataLoader, worker_init


class Tensors(Dataset):
    def __len__(self) -> int:
        return 4096

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.full((4096,), float(index))  # big enough to travel as a shared-memory file descriptor


def _late_worker_init(worker_id: int) -> None:
    if worker_id == 0:
        time.sleep(0.15)  # worker 1 is already feeding the parent when the fault fires
    worker_init(worker_id)


def _trial() -> int:
    os.environ["BENCH_FAULT"] = "worker-start:TERM"
    try:
        with interrupts.handling():
            for _ in DataLoader(Tensors(), batch_size=8, num_workers=2, worker_init_fn=_late_worker_init,
                                 prefetch_factor=64):
                interrupts.check()  # what the trainer calls at every step
    except KeyboardInterrupt as exc:  # bench.cli.main: one line and 128 + signum
        print("bench: interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    return 0


def main(n: int) -> list[dict[str, object]]:
    out = []
    for _ in range(n):
        with tempfile.TemporaryFile() as err:
            pid = os.fork()
            if pid == 0:  # the trial: its stderr (and its workers') goes to the file
                os.dup2(err.fileno(), 2)
                code = 1
                try:
                    code = _trial()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            time.sleep(0.2)  # workers killed with their parent may still write for a moment
            err.seek(0)
            out.append({"code": os.waitstatus_to_exitcode(status), "stderr": err.read().decode(errors="replace")})
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)))
