"""The torch parts of the example plugin: the ``example-mfcc`` encoder and the ``example-sigmoid`` loss."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def mel_filters(n_fft: int, n_bands: int, sample_rate: int) -> torch.Tensor:
    """Triangular mel filters ``[n_bands, n_fft // 2 + 1]``."""
    top = 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0)
    edges = 700.0 * (10.0 ** (torch.linspace(0.0, top, n_bands + 2) / 2595.0) - 1.0)
    bins = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.minimum(rising, falling).clamp(min=0.0)


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II ``[n_out, n_in]``: log mel energies -> cepstral coefficients."""
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    n = torch.arange(n_in, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


class MfccEncoder(nn.Module):
    """MFCCs, their mean and standard deviation over the valid frames, then an MLP."""

    sample_rate = 16000
    pretrained = False
    crop_seconds = 2.0
    max_seconds = 10.0

    def __init__(self, n_bands: int = 40, n_coeffs: int = 20, hidden: int = 128, embed_dim: int = 64,
                 n_fft: int = 512, hop: int = 160) -> None:
        super().__init__()
        if not 0 < n_coeffs <= n_bands:
            raise ValueError(f"example-mfcc: need 0 < n_coeffs <= n_bands, got n_coeffs={n_coeffs}, n_bands={n_bands}")
        self.embed_dim = embed_dim
        self.n_fft, self.hop = n_fft, hop
        # Not persistent: they are rebuilt from the options, so checkpoints hold only what is learnt.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mel", mel_filters(n_fft, n_bands, self.sample_rate), persistent=False)
        self.register_buffer("dct", dct_matrix(n_bands, n_coeffs), persistent=False)
        self.norm = nn.LayerNorm(2 * n_coeffs)
        self.mlp = nn.Sequential(nn.Linear(2 * n_coeffs, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # Log energies lose precision in half precision, so the features are computed in fp32.
        with torch.autocast(waveforms.device.type, enabled=False):
            x = waveforms.float()
            if x.shape[1] < self.n_fft:
                x = F.pad(x, (0, self.n_fft - x.shape[1]))
            spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
            power = spec.abs().pow(2).transpose(1, 2)  # [B, frames, bins]
            mfcc = torch.log(power @ self.mel.T + 1e-6) @ self.dct.T  # [B, frames, n_coeffs]
            # Only frames whose window ends inside the clip count, so a clip gets the same
            # embedding alone or zero-padded in a batch (frame 0 always counts).
            frame = torch.arange(mfcc.shape[1], device=mfcc.device)
            last = (lengths.to(mfcc.device) - self.n_fft // 2).clamp(min=0) // self.hop
            valid = (frame[None, :] <= last[:, None]).unsqueeze(-1).float()
            count = valid.sum(dim=1).clamp(min=1.0)
            mean = (mfcc * valid).sum(dim=1) / count
            var = ((mfcc - mean[:, None]) ** 2 * valid).sum(dim=1) / count
            stats = torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1)
        return self.mlp(self.norm(stats))


class SigmoidLoss(nn.Module):
    """Pairwise sigmoid loss (SigLIP): ``-sum log sigmoid(z_ij * (scale * cos_ij + bias)) / B``.

    ``z_ij`` is +1 when audio i and caption j come from the same recording (equal
    ``batch.audio_ids``) and -1 otherwise, so other captions of the same clip count as positives.
    """

    def __init__(self, scale: float = 10.0, bias: float = -10.0, learnable: bool = True) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"example-sigmoid: scale must be > 0, got {scale}")
        log_scale = torch.tensor(math.log(scale))
        bias_t = torch.tensor(float(bias))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
            self.bias = nn.Parameter(bias_t)
        else:
            self.register_buffer("log_scale", log_scale)
            self.register_buffer("bias", bias_t)

    def forward(self, audio: torch.Tensor, text: torch.Tensor, batch: Any) -> torch.Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            logits = audio.float() @ text.float().T * self.log_scale.exp() + self.bias
            ids = batch.audio_ids.to(audio.device)
            signs = (ids[:, None] == ids[None, :]).float() * 2.0 - 1.0
            return -F.logsigmoid(signs * logits).sum() / ids.numel()
