"""The ``cnn`` audio encoder's network."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Triangular HTK-style mel filters, ``[n_mels, n_fft // 2 + 1]``."""
    fmax = fmax or sample_rate / 2

    def to_mel(f: torch.Tensor | float) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)

    mels = torch.linspace(float(to_mel(fmin)), float(to_mel(fmax)), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """Waveform ``[B, T]`` -> log-mel ``[B, 1, frames, n_mels]``; padding frames are zeroed later."""

    def __init__(self, sample_rate: int, n_mels: int, hop_ms: float) -> None:
        super().__init__()
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.n_fft = 2 ** math.ceil(math.log2(2 * self.hop))
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("fb", mel_filterbank(self.n_fft, n_mels, sample_rate, fmin=20.0), persistent=False)

    def frames(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.hop + 1

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            spec = torch.stft(waveforms.float(), self.n_fft, self.hop, window=self.window, center=True,
                              return_complex=True).abs().pow(2)
            mel = torch.matmul(self.fb, spec).clamp_min(1e-10).log10().mul(10.0)
        return mel.transpose(1, 2).unsqueeze(1)


class CNNEncoder(nn.Module):
    """Conv blocks (conv3x3, batch norm, ReLU, 2x2 average pooling), then masked mean+max over time."""

    pretrained = False

    def __init__(self, *, sample_rate: int, n_mels: int, hop_ms: float, channels: tuple[int, ...], embed_dim: int,
                 crop_seconds: float, max_seconds: float, dropout: float, freeze: bool) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.embed_dim = embed_dim
        self.crop_seconds = crop_seconds
        self.max_seconds = max_seconds
        self.frontend = LogMel(sample_rate, n_mels, hop_ms)
        self.input_norm = nn.BatchNorm2d(1)
        blocks = []
        previous = 1
        for width in channels:
            blocks.append(nn.Sequential(
                nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            ))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(previous, embed_dim)
        if freeze:
            for parameter in self.parameters():
                parameter.requires_grad_(False)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(self.frontend(waveforms))
        frames = self.frontend.frames(lengths)
        for block in self.blocks:
            x = F.avg_pool2d(block(x), 2, ceil_mode=True)
            frames = torch.div(frames + 1, 2, rounding_mode="floor")
        x = x.mean(dim=3).transpose(1, 2)  # [B, time, channels]
        steps = torch.arange(x.shape[1], device=x.device)
        mask = (steps[None, :] < frames.clamp(min=1)[:, None]).unsqueeze(-1)
        mean = (x * mask).sum(1) / mask.sum(1).clamp(min=1)
        peak = x.masked_fill(~mask, float("-inf")).amax(1)
        return self.head(self.dropout(mean + peak))
