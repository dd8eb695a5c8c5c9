"""Torch implementations of the built-in losses; the formulas are in docs/losses.md.

Imported only by the factories in ``plugins/losses/{ntxent,triplet,distill}.py`` so that listing
the plugins stays free of torch.

All losses compute in fp32 with autocast disabled: under CUDA autocast a matmul would otherwise
run in fp16 even on fp32 inputs, and ``exp(cos / 0.05)`` spans ~e^40, which log-softmax handles
in fp32 but not with fp16 logits. Every loss re-normalises its inputs, so the scores are exact
cosines even when the projections were normalised in half precision (normalising is idempotent,
so for already-unit inputs this changes neither value nor gradient).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError, DataError

# Learnable temperature bounds: 1/tau is kept in [1, 100] (tau in [0.01, 1]), the range CLIP
# uses for its logit scale; beyond it the softmax saturates and training becomes unstable.
_MIN_LOG_INV_TAU = 0.0
_MAX_LOG_INV_TAU = math.log(100.0)


@contextmanager
def _fp32(device: torch.device) -> Iterator[None]:
    """Disable autocast for ``device`` so the loss math stays fp32."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def _check_pair(audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor) -> None:
    if audio.dim() != 2 or text.dim() != 2 or audio.shape != text.shape:
        raise ValueError(
            f"loss expects audio and text embeddings of equal shape [B, D], got "
            f"{tuple(audio.shape)} and {tuple(text.shape)}"
        )
    if audio_ids.dim() != 1 or audio_ids.shape[0] != audio.shape[0]:
        raise ValueError(
            f"batch.audio_ids must have shape [{audio.shape[0]}], got {tuple(audio_ids.shape)}"
        )


def cosine_matrix(audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """``S_ij = cos(audio_i, text_j)`` in fp32, ``[B, B]``; call inside :func:`_fp32`."""
    a = F.normalize(audio.float(), dim=-1)
    t = F.normalize(text.float(), dim=-1)
    return a @ t.T


def same_recording(audio_ids: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, B]`` mask, true where items i and j share an audio id."""
    return audio_ids[:, None] == audio_ids[None, :]


def ntxent_from_logits(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (docs/losses.md) on the logit matrix ``C`` with positive mask ``P``.

    ``-1/2 * (mean_P log_softmax(C, 0) + mean_P log_softmax(C, 1))``: the mean runs over all
    positive entries, so a recording with k captions in the batch contributes k^2 terms per
    direction (the salsa convention), not one averaged term per row.
    """
    log_p_audio = torch.log_softmax(logits, dim=0)  # over audios, for each caption (column)
    log_p_text = torch.log_softmax(logits, dim=1)  # over captions, for each audio (row)
    return -0.5 * (log_p_audio[positives].mean() + log_p_text[positives].mean())


class NTXentLoss(nn.Module):
    """Symmetric NT-Xent / InfoNCE over cosine scores divided by a temperature (docs/losses.md).

    With ``learnable_tau`` the parameter is ``log(1/tau)``, clamped so that tau stays in
    [0.01, 1]. The clamp stops the gradient at the bounds (as CLIP does). In practice the
    contrastive objective keeps lowering tau as the embeddings separate the pairs. With the
    reference learning rate of 2e-5, though, log(1/tau) moves at most ~2e-5 per AdamW step. So
    over a Clotho run (~6k steps) tau changes by about 10% at most unless the parameter gets a
    larger learning rate. The harness must put this module's parameters into the optimiser.
    """

    requires_teachers = False

    def __init__(self, tau: float = 0.05, learnable_tau: bool = False) -> None:
        super().__init__()
        # Option values are checked by the registry against build_ntxent's annotations.
        self.learnable_tau = bool(learnable_tau)
        if self.learnable_tau:
            start = min(max(math.log(1.0 / tau), _MIN_LOG_INV_TAU), _MAX_LOG_INV_TAU)
            self.log_inv_tau = nn.Parameter(torch.tensor(start, dtype=torch.float32))
        else:
            self._tau = float(tau)

    def inverse_tau(self) -> torch.Tensor | float:
        """``1/tau``: a tensor (with grad) when learnable, else a float."""
        if self.learnable_tau:
            return self.log_inv_tau.float().clamp(_MIN_LOG_INV_TAU, _MAX_LOG_INV_TAU).exp()
        return 1.0 / self._tau

    @property
    def tau(self) -> float:
        """The temperature currently in use (after clamping)."""
        inverse = self.inverse_tau()
        return 1.0 / float(inverse.detach() if isinstance(inverse, torch.Tensor) else inverse)

    def forward(self, audio: torch.Tensor, text: torch.Tensor, batch) -> torch.Tensor:  # noqa: ANN001
        """Loss over the batch; ``batch.audio_ids`` marks same-recording positives."""
        ids = batch.audio_ids.to(audio.device)
        _check_pair(audio, text, ids)
        with _fp32(audio.device):
            logits = cosine_matrix(audio, text) * self.inverse_tau()
            return ntxent_from_logits(logits, same_recording(ids))

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, learnable_tau={self.learnable_tau}"


def _triplet_direction(
    scores: torch.Tensor, valid: torch.Tensor, margin: float, negatives: str
) -> torch.Tensor:
    """Per-anchor hinge for one direction: rows are anchors, columns candidate negatives.

    ``scores[i, i]`` is anchor i's positive score. Rows without a valid negative return 0 (the
    caller excludes them from the mean).
    """
    positive = scores.diagonal()
    hinge = torch.clamp(margin - positive[:, None] + scores, min=0.0)
    if negatives == "full":
        count = valid.sum(dim=1)
        total = torch.where(valid, hinge, torch.zeros_like(hinge)).sum(dim=1)
        return total / count.clamp(min=1)
    with torch.no_grad():
        if negatives == "hard":
            key = scores.masked_fill(~valid, float("-inf"))
            pick = key.argmax(dim=1)
        elif negatives == "semihard":
            # Closest score to the positive's, from either side (the definition in "On Negative
            # Sampling for Contrastive Audio-Text Retrieval", arXiv:2211.04070); argmin returns
            # the first index on ties, so the lowest batch position wins.
            key = (scores - positive[:, None]).abs().masked_fill(~valid, float("inf"))
            pick = key.argmin(dim=1)
        elif negatives == "random":
            # One uniform draw per (anchor, candidate) and the argmax over valid candidates is a
            # uniform choice among them; the global RNG makes the harness seed reproduce it.
            key = torch.rand(scores.shape, device=scores.device).masked_fill(~valid, -1.0)
            pick = key.argmax(dim=1)
        else:  # build_triplet's Literal annotation admits only the four above
            raise AssertionError(negatives)
    return hinge.gather(1, pick[:, None]).squeeze(1)


class TripletLoss(nn.Module):
    """Max-margin triplet loss on cosine scores with a negative-sampling strategy.

    From "On Negative Sampling for Contrastive Audio-Text Retrieval", arXiv:2211.04070.

    Per anchor pair i (audio a_i, caption t_i, positive score s_ii = cos(a_i, t_i)) the loss is
    the sum of both directions, as in that paper's code (xieh97/contrastive-negative-sampling):
    ``max(0, m - s_ii + cos(a_i, t_j))`` (audio anchor, caption negative j) plus
    ``max(0, m - s_ii + cos(a_k, t_i))`` (caption anchor, audio negative k). Negatives are batch
    items whose audio id differs from the anchor's; each direction picks its own negative.
    The batch loss is the mean over anchors that have at least one valid negative; an anchor
    whose every batch item is the same recording contributes nothing and is not counted. If no
    anchor has a negative the loss is 0 (still attached to the graph).

    The margin default 0.2 is the VSE++ value for cosine scores in [-1, 1].
    """

    requires_teachers = False

    def __init__(self, margin: float = 0.2, negatives: str = "hard") -> None:
        super().__init__()
        # Option values are checked by the registry against build_triplet's annotations.
        self.margin = float(margin)
        self.negatives = negatives

    def per_anchor(self, audio: torch.Tensor, text: torch.Tensor, audio_ids: torch.Tensor):
        """Return ``(loss_per_anchor [B], has_negative [B] bool)`` (both directions summed)."""
        ids = audio_ids.to(audio.device)
        _check_pair(audio, text, ids)
        with _fp32(audio.device):
            scores = cosine_matrix(audio, text)  # rows audio, columns captions
            valid = ~same_recording(ids)  # symmetric, so it serves both directions
            a2t = _triplet_direction(scores, valid, self.margin, self.negatives)
            t2a = _triplet_direction(scores.T, valid, self.margin, self.negatives)
            return a2t + t2a, valid.any(dim=1)

    def forward(self, audio: torch.Tensor, text: torch.Tensor, batch) -> torch.Tensor:  # noqa: ANN001
        """Mean per-anchor triplet loss over anchors that have a valid negative."""
        per_anchor, has_negative = self.per_anchor(audio, text, batch.audio_ids)
        if not bool(has_negative.any()):
            return per_anchor.sum() * 0.0
        return per_anchor[has_negative].mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}, negatives={self.negatives!r}"


def teacher_logits(
    teacher_audio: torch.Tensor, teacher_text: torch.Tensor, tau: float
) -> torch.Tensor:
    """``T_ij = (1/M) sum_m cos(a_i^m, t_j^m) / tau`` as ``[B, B]`` fp32, without grad.

    Accumulates one teacher at a time, so the largest tensor is B x B, never M x B x B.
    """
    with torch.no_grad():
        total = None
        for m in range(teacher_audio.shape[0]):
            s = cosine_matrix(teacher_audio[m], teacher_text[m])
            total = s if total is None else total + s
        assert total is not None
        return total / (teacher_audio.shape[0] * tau)


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean over the other axis of ``H(softmax(target, dim), softmax(logits, dim))``."""
    target = torch.softmax(target_logits, dim=dim)
    return -(target * torch.log_softmax(logits, dim=dim)).sum(dim=dim).mean()


class DistillLoss(nn.Module):
    """Ensemble distillation, optionally mixed with NT-Xent.

    From "Estimated Audio-Caption Correspondences Improve Language-Based Audio Retrieval",
    arXiv:2408.11641.

    ``L = w_sup * L_ntxent + w_dist * L_dist`` with
    ``L_dist = 1/2 (CE(C row-wise, softmax(T row-wise)) + CE(C column-wise, softmax(T column-wise)))``.
    Student C and teacher T both use ``tau``. ``w_sup == 0`` skips the NT-Xent term entirely.
    """

    requires_teachers = True

    def __init__(self, w_sup: float = 0.0, w_dist: float = 1.0, tau: float = 0.05) -> None:
        super().__init__()
        # Each value is checked by the registry (build_distill's annotations); the pair is not.
        if w_sup + w_dist == 0:
            raise ConfigError(
                f"distill: weights w_sup={w_sup!r}, w_dist={w_dist!r} must not both be 0; "
                "set e.g. --set distill.w_dist=1"
            )
        self.w_sup = float(w_sup)
        self.w_dist = float(w_dist)
        self.tau = float(tau)

    def _teachers(self, batch, size: int, device: torch.device):  # noqa: ANN001
        ta = getattr(batch, "teacher_audio", None)
        tt = getattr(batch, "teacher_text", None)
        if ta is None or tt is None:
            raise ConfigError(
                "loss 'distill' needs stage-1 teacher embeddings: pass --teachers DIR "
                "(embeddings stored by stage 1) or use the two-stage run"
            )
        if ta.dim() != 3 or tt.dim() != 3 or ta.shape != tt.shape or ta.shape[1] != size:
            raise DataError(
                f"teacher embeddings must both be [M, {size}, D]; got teacher_audio "
                f"{tuple(ta.shape)} and teacher_text {tuple(tt.shape)}: rebuild the teacher store"
            )
        if ta.shape[0] == 0:
            raise DataError("teacher embeddings hold M=0 teachers: rebuild the teacher store")
        return ta.to(device), tt.to(device)

    def forward(self, audio: torch.Tensor, text: torch.Tensor, batch) -> torch.Tensor:  # noqa: ANN001
        """Distillation (plus optional supervised NT-Xent) loss over the batch."""
        ids = batch.audio_ids.to(audio.device)
        _check_pair(audio, text, ids)
        ta, tt = self._teachers(batch, audio.shape[0], audio.device)
        with _fp32(audio.device):
            logits = cosine_matrix(audio, text) / self.tau
            loss = logits.new_zeros(())
            if self.w_dist:
                targets = teacher_logits(ta, tt, self.tau)
                dist = 0.5 * (
                    soft_cross_entropy(logits, targets, dim=1)
                    + soft_cross_entropy(logits, targets, dim=0)
                )
                loss = loss + self.w_dist * dist
            if self.w_sup:
                loss = loss + self.w_sup * ntxent_from_logits(logits, same_recording(ids))
            return loss

    def extra_repr(self) -> str:
        return f"w_sup={self.w_sup}, w_dist={self.w_dist}, tau={self.tau}"
