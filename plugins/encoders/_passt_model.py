"""The PaSST audio encoder module behind the ``passt`` plugin (heavy imports live here)."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from bench.errors import ConfigError, DataError
from bench_plugins.encoders.passt_frontend import PasstMelFrontend

__all__ = ["PasstAudioEncoder", "load_passt_state_dict"]

_PATCH = 16  # PaSST's patch size in both directions, for every arch bench offers
_N_MELS = 128


def _passt_module() -> Any:
    import hear21passt.models.passt as passt_module

    return passt_module


@contextlib.contextmanager
def _quiet(active: bool = True) -> Iterator[None]:
    """Swallow hear21passt's prints (the whole model at construction, shapes on the first forward)
    and PatchEmbed's warning about inputs shorter than the positional encoding (expected here)."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Input image size")
        yield


def _shape(t: Any) -> str:
    return "x".join(str(d) for d in getattr(t, "shape", ())) or "scalar"


def _summarise(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def load_passt_state_dict(net: nn.Module, path: str, arch: str) -> None:
    """Load a PaSST checkpoint from a local file into ``net`` (``torch.load(weights_only=True)``).

    Accepts the released state dicts, ``{"model": ...}`` / ``{"state_dict": ...}`` wrappers and a
    common ``net.`` prefix (PaSST's own Lightning checkpoints), with or without the AudioSet
    classifier heads (which the encoder drops). 3-channel patch-embedding weights
    (ImageNet-style) are summed to 1 channel as timm does. A file that does not fit ``arch``
    raises :class:`ConfigError` summarising the missing, unexpected and mis-shaped tensors.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have many types; all mean "not a usable file"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"passt: cannot read checkpoint {path} ({type(exc).__name__}: {reason[:200]}); "
            f"it must be a PaSST state dict saved with torch.save"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"passt: checkpoint {path} is not a state dict of tensors (a mapping name -> tensor)")
    state = {str(k): v for k, v in obj.items()}
    expected = net.state_dict()
    for prefix in ("net.", "module.", "model."):
        if not (state.keys() & expected.keys()) and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    conv = "patch_embed.proj.weight"
    if conv in state and conv in expected and state[conv].dim() == 4:
        if state[conv].shape[1] == 3 and expected[conv].shape[1] == 1:
            state[conv] = state[conv].float().sum(dim=1, keepdim=True).to(state[conv].dtype)
    # The AudioSet classifier heads are dropped after loading, so a file without them is fine.
    missing = sorted(k for k in expected.keys() - state.keys() if not k.startswith(("head.", "head_dist.")))
    unexpected = sorted(state.keys() - expected.keys())
    mismatched = [
        f"{k}: file {_shape(state[k])} vs model {_shape(expected[k])}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} tensor(s) differ in shape ({_summarise(mismatched)})")
        if missing:
            parts.append(f"{len(missing)} missing ({_summarise(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_summarise(unexpected)})")
        raise ConfigError(
            f"passt: checkpoint {path} does not fit arch {arch!r}: {'; '.join(parts)}; "
            f"set the arch the file was trained as with --set passt.arch=NAME"
        )
    net.load_state_dict(state, strict=False)  # strict in effect: only head tensors may be missing


class PasstAudioEncoder(nn.Module):
    """PaSST (``hear21passt``) with its pre-training front end, for clips of any length.

    ``forward(waveforms [B, T], lengths [B]) -> [B, embed_dim]``. Each clip (cut at
    ``max_seconds``) is split into non-overlapping windows of ``window_seconds``; the last one is
    zero-padded, as PaSST saw short AudioSet clips in pre-training. All windows of the batch that
    hold audio go through the network in one pass, and each clip's embedding is the mean of its
    windows' features (the mean of PaSST's CLS and distillation tokens). Windows that are only
    batch padding are never computed, so a clip's embedding does not depend on its batch.

    Training mode enables the front end's jitter and masks and PaSST's structured patchout;
    evaluation mode is deterministic. With ``freeze`` the encoder has no trainable parameters
    and stays in evaluation mode.
    """

    sample_rate: int = 32000

    def __init__(
        self,
        *,
        arch: str,
        cfg_key: str,
        fstride: int,
        tstride: int,
        input_tdim: int,
        window_seconds: float,
        max_seconds: float,
        s_patchout_t: int,
        s_patchout_f: int,
        freqm: int,
        timem: int,
        weights: str | None,
        freeze: bool,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.cfg_key = cfg_key
        self.window_samples = int(round(window_seconds * self.sample_rate))
        self.max_samples = int(round(max_seconds * self.sample_rate))
        self.crop_seconds = float(window_seconds)
        self.max_seconds = float(max_seconds)
        self.input_tdim = int(input_tdim)
        self.freeze = bool(freeze)
        self.pretrained = weights is not None
        self.frontend = PasstMelFrontend(n_mels=_N_MELS, sample_rate=self.sample_rate, freqm=freqm, timem=timem)

        # Frames per window after pre-emphasis (one sample shorter) and a centred STFT.
        frames = min(1 + (self.window_samples - 1) // self.frontend.hop_length, self.input_tdim)
        time_cols = (frames - _PATCH) // tstride + 1 if frames >= _PATCH else 0
        freq_rows = (_N_MELS - _PATCH) // fstride + 1
        if time_cols <= s_patchout_t:
            raise ConfigError(
                f"passt: window_seconds={window_seconds:g} gives {max(time_cols, 0)} patch columns, too few for "
                f"s_patchout_t={s_patchout_t}; use a longer --set passt.window_seconds or a smaller passt.s_patchout_t"
            )
        if freq_rows <= s_patchout_f:
            raise ConfigError(
                f"passt: s_patchout_f={s_patchout_f} drops all {freq_rows} frequency rows of arch {arch!r}; "
                f"use a smaller --set passt.s_patchout_f"
            )
        self.frames_per_window = frames

        get_model = _passt_module().get_model
        with _quiet():
            net = get_model(
                arch=arch,
                pretrained=False,  # weights are loaded below from a local file, never downloaded
                fstride=fstride,
                tstride=tstride,
                input_fdim=_N_MELS,
                input_tdim=self.input_tdim,
                s_patchout_t=s_patchout_t,
                s_patchout_f=s_patchout_f,
            )
        if weights is not None:
            load_passt_state_dict(net, os.fspath(weights), arch)
        # Retrieval uses the features only. The AudioSet classifier heads would get no gradient,
        # which DistributedDataParallel (without find_unused_parameters) rejects, so drop them
        # after loading. Identity, not None: hear21passt picks its distilled path by
        # ``head_dist is not None``, and then returns (head(features), features).
        net.head = nn.Identity()
        if getattr(net, "head_dist", None) is not None:
            net.head_dist = nn.Identity()
        self.net = net
        self.embed_dim = self._probe_embed_dim()
        if self.freeze:
            for p in self.parameters():
                p.requires_grad_(False)
            self.eval()

    @torch.no_grad()
    def _probe_embed_dim(self) -> int:
        """Run one patch column through the network: the wrappers' declared sizes are not trusted."""
        was_training = self.net.training
        self.net.eval()
        try:
            feats = self._run_net(torch.zeros(1, 1, _N_MELS, _PATCH))
        finally:
            self.net.train(was_training)
        return int(feats.shape[-1])

    def train(self, mode: bool = True) -> PasstAudioEncoder:
        """Like ``nn.Module.train``, but a frozen encoder stays in evaluation mode."""
        return super().train(bool(mode) and not self.freeze)

    def _run_net(self, spec: Tensor) -> Tensor:
        # hear21passt prints shapes while its module-global ``first_RUN`` is set.
        first_run = bool(getattr(_passt_module(), "first_RUN", False))
        with _quiet(first_run or spec.shape[-1] != self.input_tdim):
            out = self.net(spec)
        return out[1] if isinstance(out, (tuple, list)) else out

    def encode_windows(self, windows: Tensor) -> Tensor:
        """``[N, window_samples]`` waveforms -> ``[N, embed_dim]`` window features."""
        spec = self.frontend(windows)
        if spec.shape[-1] > self.input_tdim:
            spec = spec[..., : self.input_tdim]
        return self._run_net(spec.unsqueeze(1))

    def forward(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """Embed a zero-padded batch ``[B, T]`` with valid lengths ``[B]`` -> ``[B, embed_dim]``."""
        if waveforms.dim() != 2:
            raise ValueError(f"passt: expected waveforms [B, T], got shape {tuple(waveforms.shape)}")
        batch, total = waveforms.shape
        lengths = torch.as_tensor(lengths, device=waveforms.device).long().reshape(-1)
        if lengths.numel() != batch:
            raise ValueError(f"passt: {lengths.numel()} lengths for a batch of {batch} waveforms")
        if bool((lengths <= 0).any()):
            row = int(torch.nonzero(lengths <= 0)[0, 0])
            raise DataError(f"passt: batch row {row} has no audio samples (length 0); remove or fix that audio file")
        if bool((lengths > total).any()):
            raise ValueError(f"passt: a length exceeds the padded batch length {total}")
        lengths = lengths.clamp(max=self.max_samples)
        size = self.window_samples
        n_windows = (lengths + size - 1) // size
        n_max = int(n_windows.max())
        span = n_max * size
        x = waveforms[:, :span]
        if x.shape[1] < span:
            x = nn.functional.pad(x, (0, span - x.shape[1]))
        # Zero what lies past each clip's end (batch padding, or audio beyond max_seconds).
        inside = torch.arange(span, device=x.device)[None, :] < lengths[:, None]
        x = torch.where(inside, x, torch.zeros((), dtype=x.dtype, device=x.device))
        holds_audio = torch.arange(n_max, device=x.device)[None, :] < n_windows[:, None]
        windows = x.reshape(batch, n_max, size)[holds_audio]  # row-major: clip 0's windows first
        owner = torch.repeat_interleave(torch.arange(batch, device=x.device), n_windows)

        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            feats = self.encode_windows(windows)
        summed = torch.zeros(batch, feats.shape[-1], dtype=torch.float32, device=feats.device)
        summed = summed.index_add(0, owner, feats.float())
        return (summed / n_windows[:, None].to(summed.dtype)).to(feats.dtype)

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, pretrained={self.pretrained}, window={self.crop_seconds:g}s, "
            f"max={self.max_seconds:g}s, embed_dim={getattr(self, 'embed_dim', '?')}, freeze={self.freeze}"
        )
