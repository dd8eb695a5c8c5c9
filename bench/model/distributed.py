"""Small torch.distributed helpers: rank queries and the gathers the losses rely on.

Every helper also works in a single process without ``torch.distributed`` initialised (it then
returns its input unchanged, or rank 0 / world size 1).

Gradient scale of :func:`gather_with_grad` under DDP
---------------------------------------------------
Let the global batch be the concatenation of the local batches x_1..x_W of the W ranks and L the
loss on it. Every rank gathers the same global batch, so every rank computes the same L. On rank
r autograd alone would give only the gradient of L w.r.t. its own slice of the gathered
tensor, dL/dx_r; the other slices are constants there. The gradient w.r.t. x_r also comes
from the other ranks' copies of L, and those copies are identical. So the backward all-reduces (sums) the
gradient of the whole gathered tensor and returns rank r's slice:
``g_r = sum_q dL_q/dx_r = W * dL/dx_r``. Each rank's parameter gradient is then
``W * (dx_r/dθ)^T dL/dx_r``. DDP averages over ranks:
``(1/W) * sum_r W * (dx_r/dθ)^T dL/dx_r = sum_r (dx_r/dθ)^T dL/dx_r = dL/dθ``.
That is exactly the single-process gradient on the concatenated batch. A backward that returned
only the local slice, with no sum, would give 1/W of it.
If the ranks' losses differ (e.g. random triplet negatives drawn from differently seeded RNGs), the
result is the gradient of the mean of the ranks' losses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when torch.distributed is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0, the process that writes files and logs."""
    return rank() == 0


def barrier() -> None:
    """Wait for all ranks (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def _gather_sizes(x: torch.Tensor) -> list[int]:
    """First-dimension size of ``x`` on every rank."""
    size = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _gather_cat(x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """All-gather ``x`` along dim 0 when ranks hold ``sizes`` rows: pad to the max, then trim."""
    x = x.contiguous()
    longest = max(sizes)
    if x.shape[0] < longest:
        pad = x.new_zeros((longest - x.shape[0],) + tuple(x.shape[1:]))
        x = torch.cat([x, pad], dim=0)
    parts = [torch.empty_like(x) for _ in sizes]
    dist.all_gather(parts, x)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)], dim=0)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the gradient over ranks (see module doc)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:  # type: ignore[override]
        ctx.sizes = sizes
        ctx.rank = rank()
        return _gather_cat(x, sizes)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous().clone()
        # all_reduce rather than reduce_scatter: gloo has no reduce_scatter, and the
        # gradients are only [global B, D].
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def gather_with_grad(x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """All-gather ``x`` ([n, ...] per rank) into [sum n, ...] in rank order, keeping gradients.

    The backward sums the incoming gradient over ranks and returns this rank's slice. Under DDP
    the averaged parameter gradient then equals the single-process gradient on the concatenated
    batch (module docstring). ``sizes`` (rows per rank) saves a collective when already known.
    Returns ``x`` unchanged when not distributed.
    """
    if not is_distributed():
        return x
    if sizes is None:
        sizes = _gather_sizes(x)
    return _GatherWithGrad.apply(x, sizes)


def all_gather_nograd(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``x`` along dim 0 without gradients; ranks may hold different numbers of rows.

    The result is the concatenation in rank order. A ``DistributedSampler`` interleaves indices
    (rank r gets r, r+W, ...) and pads by repeating items, so gather the item indices alongside
    the embeddings and reorder/deduplicate with them.
    """
    if not is_distributed():
        return x.detach()
    with torch.no_grad():
        return _gather_cat(x.detach(), _gather_sizes(x))


def gather_batch_for_loss(audio: torch.Tensor, text: torch.Tensor,
                          batch: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Return ``(audio, text, batch)`` for the GLOBAL batch so the loss sees all ranks' items.

    ``audio`` and ``text`` are gathered with gradients (:func:`gather_with_grad`). The batch's
    ``audio_ids``, ``item_index``, ``caption_index``, ``pair_index`` and, when present,
    ``teacher_audio`` / ``teacher_text`` ([M, B, D], gathered along B) are gathered without
    gradients, and so are the captions. The waveforms are not gathered: the global batch
    carries empty ``waveforms`` / ``lengths``, since a loss never reads audio samples. Audio ids
    must already be global, i.e. the same integer for the same recording on every rank. Returns the
    inputs unchanged when not distributed.
    """
    if not is_distributed():
        return audio, text, batch
    sizes = _gather_sizes(audio)
    audio_g = gather_with_grad(audio, sizes)
    text_g = gather_with_grad(text, sizes)
    with torch.no_grad():
        fields: dict[str, Any] = {}
        for name in ("audio_ids", "item_index", "caption_index", "pair_index"):
            value = getattr(batch, name, None)
            if isinstance(value, torch.Tensor):
                fields[name] = _gather_cat(value.to(audio.device), sizes)
        for name in ("teacher_audio", "teacher_text"):
            value = getattr(batch, name, None)
            if isinstance(value, torch.Tensor):
                # [M, B, D] -> gather along B by moving it to the front.
                moved = value.to(audio.device).transpose(0, 1)
                fields[name] = _gather_cat(moved, sizes).transpose(0, 1).contiguous()
        captions = getattr(batch, "captions", None)
        if captions is not None:
            gathered: list[Any] = [None] * world_size()
            dist.all_gather_object(gathered, list(captions))
            fields["captions"] = [c for part in gathered for c in part]
        waveforms = getattr(batch, "waveforms", None)
        if isinstance(waveforms, torch.Tensor):
            fields["waveforms"] = waveforms.new_zeros((0, 0))
        lengths = getattr(batch, "lengths", None)
        if isinstance(lengths, torch.Tensor):
            fields["lengths"] = lengths.new_zeros((0,))
    return audio_g, text_g, replace(batch, **fields)


__all__ = [
    "all_gather_nograd",
    "barrier",
    "gather_batch_for_loss",
    "gather_with_grad",
    "is_distributed",
    "is_main_process",
    "rank",
    "world_size",
]


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (decisions such as a run id must not depend on each rank's clock)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
