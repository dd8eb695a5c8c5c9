"""PaSST's log-mel front end in pure torch (docs/passt.md).

PaSST: "Efficient Training of Audio Transformers with Patchout", arXiv:2110.05069; front end of
kkoutini/passt_hear21, hear21passt/models/preprocess.py.

PaSST was pre-trained on spectrograms from ``hear21passt.models.preprocess.AugmentMelSTFT``; the
weights are only useful on the same input. That module imports torchaudio, which stopped at 2.11
and is not a dependency of bench (its last release, 2.11, is built for an older torch), so this
module recomputes the same features in pure torch (tests/test_passt_frontend.py compares the two
wherever torchaudio imports):

* pre-emphasis ``y[n] = x[n+1] - 0.97 x[n]`` (the length shrinks by one sample, as in the original);
* ``torch.stft`` with n_fft 1024, a 800-sample symmetric Hann window, hop 320, ``center=True``
  (reflect padding), power spectrum ``re^2 + im^2``;
* Kaldi-style triangular mel banks (128 bins; the Nyquist bin gets weight 0), see
  :func:`kaldi_mel_banks`; during training the bank edges are jittered: ``fmin + randint(10)``
  and ``fmax + 1000 - randint(2000)`` Hz, drawn once per batch from torch's CPU generator;
* ``log(mel + 1e-5)``; during training one frequency mask (width < 48 bins) and one time mask
  (width < 192 frames) per spectrogram, independently per batch row, filled with 0 in the log
  domain (torchaudio's ``FrequencyMasking``/``TimeMasking`` with ``iid_masks=True``);
* ``(x + 4.5) / 5``.

The defaults are those of ``hear21passt.base.get_basic_model`` (``fmax=None`` there becomes
``16000 - 2000 // 2 = 15000``). The random draws happen in the same order as in the original, so
with the same seed the training-mode output is the same too. Evaluation mode draws nothing.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["PasstMelFrontend", "kaldi_mel_banks", "mel_scale"]


def mel_scale(freq: Tensor | float) -> Tensor | float:
    """Kaldi's mel scale: ``1127 * ln(1 + f / 700)``."""
    if isinstance(freq, Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log(1.0 + freq / 700.0)


def kaldi_mel_banks(
    n_mels: int,
    n_fft: int,
    sample_rate: float,
    fmin: float,
    fmax: float,
) -> Tensor:
    """Triangular mel filters as Kaldi computes them, ``[n_mels, n_fft // 2]`` float32.

    The ``n_mels + 2`` edge points are equally spaced on the mel scale between ``fmin`` and
    ``fmax``; filter ``m`` rises linearly (in mel) from edge ``m`` to edge ``m+1`` and falls to
    edge ``m+2``. FFT bin ``k`` sits at ``k * sample_rate / n_fft`` Hz for ``k < n_fft / 2``
    (Kaldi leaves out the Nyquist bin; callers append a zero column). Filters are not area
    normalised. No VTLN warping (warp factor 1), as in PaSST.
    """
    if n_mels <= 3:
        raise ValueError(f"n_mels must be > 3, got {n_mels}")
    if n_fft % 2:
        raise ValueError(f"n_fft must be even, got {n_fft}")
    nyquist = 0.5 * sample_rate
    if fmax <= 0.0:
        fmax += nyquist
    if not (0.0 <= fmin < nyquist and 0.0 < fmax <= nyquist and fmin < fmax):
        raise ValueError(f"need 0 <= fmin < fmax <= {nyquist} Hz, got fmin={fmin}, fmax={fmax}")
    mel_lo = mel_scale(float(fmin))
    mel_hi = mel_scale(float(fmax))
    # n_mels + 1 intervals: the first and last filters need an edge beyond their centre.
    delta = (mel_hi - mel_lo) / (n_mels + 1)
    m = torch.arange(n_mels, dtype=torch.float32).unsqueeze(1)
    left = mel_lo + m * delta
    centre = mel_lo + (m + 1.0) * delta
    right = mel_lo + (m + 2.0) * delta
    bin_hz = sample_rate / n_fft
    fft_mel = mel_scale(bin_hz * torch.arange(n_fft // 2, dtype=torch.float32)).unsqueeze(0)
    rising = (fft_mel - left) / (centre - left)
    falling = (right - fft_mel) / (right - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


def _mask_rows_iid(spec: Tensor, max_width: int, axis: int) -> Tensor:
    """One random band of width ``floor(U*max_width)`` per batch row along ``axis`` (1 or 2), set to 0.

    Same sampling as torchaudio 2.x's ``mask_along_axis_iid`` (which ``FrequencyMasking`` and
    ``TimeMasking`` with ``iid_masks=True`` use for any batched input), so a seeded run
    reproduces the original: width ``v = U1 * max_width``, start ``floor(U2 * (size - v))``,
    band ``[start, start + floor(v))``.
    """
    batch = spec.shape[0]
    size = spec.shape[axis]
    width = torch.rand(batch, device=spec.device, dtype=spec.dtype) * max_width
    start = torch.rand(batch, device=spec.device, dtype=spec.dtype) * (size - width)
    lo = start.long()[:, None]
    hi = (start.long() + width.long())[:, None]
    pos = torch.arange(size, device=spec.device)[None, :]
    band = (pos >= lo) & (pos < hi)  # [B, size]
    band = band[:, :, None] if axis == 1 else band[:, None, :]
    return spec.masked_fill(band, 0.0)


class PasstMelFrontend(nn.Module):
    """Waveforms ``[B, T]`` at 32 kHz -> normalised log-mel spectrograms ``[B, n_mels, frames]``.

    ``frames = 1 + (T - 1) // hop_length`` (``center=True`` on the pre-emphasised signal).
    Follows ``self.training``: jittered mel banks and SpecAugment masks in training, a fixed
    deterministic transform in evaluation. Always computed in float32, also under autocast.
    """

    def __init__(
        self,
        n_mels: int = 128,
        sample_rate: int = 32000,
        win_length: int = 800,
        hop_length: int = 320,
        n_fft: int = 1024,
        freqm: int = 48,
        timem: int = 192,
        fmin: float = 0.0,
        fmax: float | None = None,
        fmin_aug_range: int = 10,
        fmax_aug_range: int = 2000,
    ) -> None:
        super().__init__()
        if fmin_aug_range < 1 or fmax_aug_range < 1:
            raise ValueError("fmin_aug_range and fmax_aug_range must be >= 1 (1 = no jitter)")
        if fmax is None:
            # As in hear21passt: leave room for the upward jitter below Nyquist.
            fmax = sample_rate // 2 - fmax_aug_range // 2
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.freqm = int(freqm)
        self.timem = int(timem)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.fmin_aug_range = int(fmin_aug_range)
        self.fmax_aug_range = int(fmax_aug_range)
        #: ``(fmin, fmax)`` of the mel banks used by the last forward call (for inspection).
        self.last_mel_range: tuple[float, float] | None = None
        self.register_buffer("window", torch.hann_window(win_length, periodic=False), persistent=False)
        self.register_buffer("eval_banks", self._banks(self.fmin, self.fmax), persistent=False)

    def _banks(self, fmin: float, fmax: float) -> Tensor:
        banks = kaldi_mel_banks(self.n_mels, self.n_fft, self.sample_rate, fmin, fmax)
        return nn.functional.pad(banks, (0, 1))  # zero weight for the Nyquist bin

    def sample_mel_range(self) -> tuple[float, float]:
        """Draw the training-time ``(fmin, fmax)``: ``fmin + randint(fmin_aug_range)``,
        ``fmax + fmax_aug_range // 2 - randint(fmax_aug_range)``, in that order."""
        fmin = self.fmin + torch.randint(self.fmin_aug_range, (1,)).item()
        fmax = self.fmax + self.fmax_aug_range // 2 - torch.randint(self.fmax_aug_range, (1,)).item()
        return float(fmin), float(fmax)

    def power_spectrogram(self, waveforms: Tensor) -> Tensor:
        """Pre-emphasis, STFT and power: ``[B, T]`` -> ``[B, n_fft // 2 + 1, frames]`` float32."""
        x = waveforms.float()
        x = x[:, 1:] - 0.97 * x[:, :-1]
        spec = torch.stft(
            x,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(device=x.device, dtype=x.dtype),
            center=True,
            pad_mode="reflect",
            normalized=False,
            return_complex=True,
        )
        return torch.view_as_real(spec).pow(2).sum(-1)

    def forward(self, waveforms: Tensor) -> Tensor:
        """``[B, T]`` float waveforms -> ``[B, n_mels, frames]`` float32 features."""
        if waveforms.dim() != 2:
            raise ValueError(f"expected waveforms [B, T], got shape {tuple(waveforms.shape)}")
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            power = self.power_spectrogram(waveforms)
            if self.training:
                fmin, fmax = self.sample_mel_range()
                banks = self._banks(fmin, fmax).to(power.device)
            else:
                fmin, fmax = self.fmin, self.fmax
                banks = self.eval_banks.to(power.device)
            self.last_mel_range = (fmin, fmax)
            mel = torch.matmul(banks, power)
            mel = torch.log(mel + 1e-5)
            if self.training:
                if self.freqm > 0:
                    mel = _mask_rows_iid(mel, self.freqm, axis=1)
                if self.timem > 0:
                    mel = _mask_rows_iid(mel, self.timem, axis=2)
            return (mel + 4.5) / 5.0

    def extra_repr(self) -> str:
        return (
            f"n_mels={self.n_mels}, sr={self.sample_rate}, n_fft={self.n_fft}, win={self.win_length}, "
            f"hop={self.hop_length}, fmin={self.fmin}, fmax={self.fmax}, freqm={self.freqm}, timem={self.timem}"
        )
