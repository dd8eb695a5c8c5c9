"""Two gloo processes on CPU: the gathered global-batch loss and DDP gradients equal one process."""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from bench.data.batch import Batch
from bench.model import distributed

WORLD = 2
GLOBAL_B = 8
# Recording 1 appears on both ranks, and 0 and 3 twice within a rank.
GLOBAL_IDS = [0, 1, 2, 0, 3, 1, 4, 3]


class TinyDual(nn.Module):
    """Two linear branches producing normalised audio / text embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.audio = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)

    def forward(self, audio_features: torch.Tensor, text_features: torch.Tensor):
        return F.normalize(self.audio(audio_features), dim=-1), F.normalize(self.text(text_features), dim=-1)


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return {
        "audio_features": torch.randn(GLOBAL_B, 6, generator=g),
        "text_features": torch.randn(GLOBAL_B, 5, generator=g),
        "ids": torch.tensor(GLOBAL_IDS),
        "teacher_audio": torch.randn(2, GLOBAL_B, 3, generator=g),
        "teacher_text": torch.randn(2, GLOBAL_B, 3, generator=g),
    }


def _batch(data: dict[str, torch.Tensor], rows: slice) -> Batch:
    n = len(range(GLOBAL_B)[rows])
    index = torch.arange(GLOBAL_B)[rows]
    return Batch(
        waveforms=torch.zeros(n, 16),
        lengths=torch.full((n,), 16),
        captions=[f"caption {i}" for i in index.tolist()],
        audio_ids=data["ids"][rows],
        item_index=index,
        caption_index=index % 5,
        pair_index=index + 100,
        teacher_audio=data["teacher_audio"][:, rows],
        teacher_text=data["teacher_text"][:, rows],
    )


def _losses():
    from bench_plugins.losses.distill import build_distill
    from bench_plugins.losses.ntxent import build_ntxent
    from bench_plugins.losses.triplet import build_triplet

    return {
        "ntxent": build_ntxent(tau=0.1),
        "distill": build_distill(w_sup=0.5, w_dist=1.0, tau=0.1),
        "triplet": build_triplet(margin=0.5, negatives="hard"),
    }


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(0)
        model = TinyDual()
        reference = copy.deepcopy(model)  # the single-process run on the concatenated batch
        ddp = nn.parallel.DistributedDataParallel(model)
        data = _data()
        assert distributed.is_distributed() and distributed.world_size() == WORLD
        assert distributed.rank() == rank and distributed.is_main_process() == (rank == 0)

        half = GLOBAL_B // WORLD
        rows = slice(rank * half, (rank + 1) * half)
        full = _batch(data, slice(None))
        report = {}
        for name, loss_fn in _losses().items():
            ddp.zero_grad()
            reference.zero_grad()
            audio, text = ddp(data["audio_features"][rows], data["text_features"][rows])
            audio_g, text_g, batch_g = distributed.gather_batch_for_loss(audio, text, _batch(data, rows))
            assert torch.equal(batch_g.audio_ids, full.audio_ids)
            assert torch.equal(batch_g.pair_index, full.pair_index)
            assert torch.equal(batch_g.teacher_audio, full.teacher_audio)
            assert torch.equal(batch_g.teacher_text, full.teacher_text)
            assert batch_g.captions == full.captions and len(batch_g) == GLOBAL_B
            loss = loss_fn(audio_g, text_g, batch_g)
            loss.backward()

            ref_audio, ref_text = reference(data["audio_features"], data["text_features"])
            ref_loss = loss_fn(ref_audio, ref_text, full)
            ref_loss.backward()
            assert abs(loss.item() - ref_loss.item()) < 1e-6, (name, loss.item(), ref_loss.item())
            for (pname, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
                assert q.grad.abs().sum() > 0, (name, pname)
                assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=0), (name, pname, p.grad, q.grad)
            report[name] = loss.item()

        # Evaluation gather with unequal row counts per rank (3 and 5 rows).
        local = torch.arange(3 if rank == 0 else 5, dtype=torch.float32)[:, None].repeat(1, 2) + 10 * rank
        gathered = distributed.all_gather_nograd(local)
        expected = torch.cat([torch.arange(3.0)[:, None].repeat(1, 2), torch.arange(5.0)[:, None].repeat(1, 2) + 10])
        assert torch.equal(gathered, expected)
        assert not gathered.requires_grad
        distributed.barrier()
        torch.save(report, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")
def test_ddp_gathered_loss_and_gradients_equal_single_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    reports = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert set(reports[0]) == {"ntxent", "distill", "triplet"}
    assert reports[0] == reports[1]  # every rank computed the same global loss


def test_helpers_are_identities_without_a_process_group() -> None:
    assert not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main_process()
    distributed.barrier()
    x = torch.randn(3, 2, requires_grad=True)
    assert distributed.gather_with_grad(x) is x
    assert torch.equal(distributed.all_gather_nograd(x), x)
    batch = SimpleNamespace(audio_ids=torch.tensor([1, 2, 3]))
    assert distributed.gather_batch_for_loss(x, x, batch) == (x, x, batch)
