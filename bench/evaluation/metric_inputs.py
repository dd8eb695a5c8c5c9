"""Input checks shared by the retrieval metrics: score matrices, caption-to-audio indices, chunk sizes.

Every problem is a :class:`MetricInputError` with one line that says what was passed and what is
expected, so a bad model output or fusion shows up as a message, not a deep traceback.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench.errors import DataError

DEFAULT_CHUNK_ELEMENTS = 1 << 24
"""Automatic chunking keeps one score chunk at about 16 M elements (64 MB in fp32)."""


class MetricInputError(DataError, ValueError):
    """Scores or caption-to-audio indices that the metrics cannot use (NaN, wrong shape, ...).

    It is both a :class:`bench.errors.DataError` (shown to the user on one line) and a
    ``ValueError`` (what a numerical caller expects).
    """




def as_float_tensor(x: Any, name: str) -> torch.Tensor:
    """A float tensor view of ``x``; float16/bfloat16 upcast to float32 (exact: ties survive)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise MetricInputError(
                f"{name} has numpy dtype {x.dtype}; pass floating-point scores (e.g. float32)"
            )
        if not x.flags.writeable or not x.dtype.isnative:
            # torch.from_numpy needs a writable, native-endian buffer.
            x = np.array(x, dtype=x.dtype.newbyteorder("="))
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        raise MetricInputError(
            f"{name} is a {type(x).__name__}; pass a numpy array or a torch tensor"
        )
    if not x.is_floating_point():
        raise MetricInputError(f"{name} has dtype {x.dtype}; pass floating-point scores")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return x


def check_scores(
    scores: Any, name: str, n_rows: int | None, n_cols: int | None, row_offset: int = 0,
    nan_check: bool = True,
) -> torch.Tensor:
    """Validate a score matrix (or chunk): 2-D float, expected shape, no NaN (unless told it cannot have any)."""
    s = as_float_tensor(scores, name)
    if s.ndim != 2:
        raise MetricInputError(f"{name} must be 2-D, got shape {tuple(s.shape)}")
    if (n_rows is not None and s.shape[0] != n_rows) or (n_cols is not None and s.shape[1] != n_cols):
        want = f"[{'*' if n_rows is None else n_rows}, {'*' if n_cols is None else n_cols}]"
        raise MetricInputError(f"{name} has shape {tuple(s.shape)}, expected {want}")
    if nan_check and s.numel() and bool(torch.isnan(s.amax())):  # one read pass; amax propagates NaN
        row = int(torch.isnan(s).any(dim=1).nonzero()[0, 0]) + row_offset
        raise MetricInputError(
            f"{name} contains NaN (first in row {row}); fix the model or fusion that produced it"
        )
    return s


def as_index(audio_of_caption: Any, n_audios: int, n_captions: int | None) -> torch.Tensor:
    """Validate ``audio_of_caption``: 1-D integers in ``[0, n_audios)``, one per caption."""
    if isinstance(audio_of_caption, torch.Tensor):
        idx = audio_of_caption
    else:
        arr = np.asarray(audio_of_caption)
        if arr.dtype.kind not in "iu":
            raise MetricInputError(
                f"audio_of_caption has dtype {arr.dtype}; pass integer audio indices, one per caption"
            )
        idx = torch.from_numpy(arr.astype(np.int64, copy=False))
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
        raise MetricInputError(
            f"audio_of_caption has dtype {idx.dtype}; pass integer audio indices, one per caption"
        )
    if idx.ndim != 1:
        raise MetricInputError(f"audio_of_caption must be 1-D, got shape {tuple(idx.shape)}")
    if n_captions is not None and idx.shape[0] != n_captions:
        raise MetricInputError(
            f"audio_of_caption has {idx.shape[0]} entries but there are {n_captions} captions"
        )
    idx = idx.long()
    bad = (idx < 0) | (idx >= n_audios)
    if idx.numel() and bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise MetricInputError(
            f"audio_of_caption[{i}] = {int(idx[i])} is out of range [0, {n_audios}); "
            "it must index the audio rows"
        )
    return idx


def resolve_chunk(chunk_size: int | None, width: int) -> int:
    if chunk_size is None:
        return max(1, DEFAULT_CHUNK_ELEMENTS // max(1, width))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise MetricInputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return chunk_size
