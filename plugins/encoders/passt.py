"""Audio encoder plugin ``passt``: PaSST from ``hear21passt`` with its pre-training front end.

Options (``--set passt.KEY=VALUE``), see :func:`build_passt`. This module stays light to import:
torch, timm and hear21passt are imported inside the factory, after the cheap checks, so that a
missing checkpoint is reported within seconds and before anything heavy is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from bench import hookimpl
from bench.errors import ConfigError
from bench.options import Ge, Gt
from bench.toolkit import missing_package

__all__ = ["ARCHS", "PasstArch", "build_passt", "checkpoint_cache_path", "register_audio_encoders"]


@dataclass(frozen=True)
class PasstArch:
    """What bench needs to know about one PaSST architecture of ``hear21passt``.

    ``cfg_key`` is the key of ``hear21passt.models.passt.default_cfgs`` whose ``url`` names the
    released weights; ``input_tdim`` is the number of spectrogram frames the positional encoding
    was trained for (``window_seconds * 100``); the strides are those the weights were trained with.
    """

    cfg_key: str
    url: str
    fstride: int
    tstride: int
    input_tdim: int
    window_seconds: float

    @property
    def file_name(self) -> str:
        """The file name timm's downloader gives the weights (the URL's last path component)."""
        return self.url.rsplit("/", 1)[-1]


_RELEASES = "https://github.com/kkoutini/PaSST/releases/download/"

#: The architectures bench offers. tests/test_passt.py checks this table against hear21passt.
ARCHS: dict[str, PasstArch] = {
    # The retrieval papers' choice: 16x16 patches without overlap, 10 s, 86 M parameters.
    "passt_s_p16_s16_128_ap468": PasstArch(
        "passt_s_p16_s16_128_ap468",
        _RELEASES + "v0.0.2-audioset/passt-s-f128-p16-s16-ap.468.pt",
        16, 16, 1000, 10.0,
    ),
    "passt_s_swa_p16_128_ap476": PasstArch(
        "passt_s_swa_p16_128_ap476",
        _RELEASES + "v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
        10, 10, 998, 10.0,
    ),
    "passt_l_kd_p16_128_ap47": PasstArch(
        "passt_l_kd_p16_128_ap47",
        _RELEASES + "v.0.0.10/passt-l-kd-ap.47.pt",
        10, 10, 998, 10.0,
    ),
    "passt_20sec": PasstArch(
        "passt-s-f128-20sec-p16-s10-ap474-swa",
        _RELEASES + "v0.0.5/passt-s-f128-20sec-p16-s10-ap.474-swa.pt",
        10, 10, 2000, 20.0,
    ),
    "passt_30sec": PasstArch(
        "passt-s-f128-30sec-p16-s10-ap473-swa",
        _RELEASES + "v0.0.5/passt-s-f128-30sec-p16-s10-ap.473-swa.pt",
        10, 10, 3000, 30.0,
    ),
}


def checkpoint_cache_path(arch: str) -> str:
    """Where hear21passt (through timm's ``download_cached_file``) keeps ``arch``'s weights.

    That is ``torch.hub.get_dir()/checkpoints/<URL file name>``; ``torch.hub.get_dir()`` honours
    ``torch.hub.set_dir``, ``$TORCH_HOME`` and ``$XDG_CACHE_HOME`` (default ``~/.cache/torch/hub``),
    so a user's earlier download is found where it is.
    """
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints", _arch(arch).file_name)


def _arch(arch: str) -> PasstArch:
    try:
        return ARCHS[arch]
    except KeyError:
        raise ConfigError(
            f"passt: unknown arch {arch!r}; valid archs: {', '.join(ARCHS)} (--set passt.arch=NAME)"
        ) from None


def build_passt(
    arch: str = "passt_s_p16_s16_128_ap468",
    pretrained: bool = True,
    checkpoint: str | None = None,
    s_patchout_t: Annotated[int, Ge(0)] = 15,
    s_patchout_f: Annotated[int, Ge(0)] = 2,
    window_seconds: Annotated[float, Gt(0)] | None = None,
    max_seconds: Annotated[float, Gt(0)] = 30.0,
    freeze: bool = False,
    freqm: Annotated[int, Ge(0)] = 48,
    timem: Annotated[int, Ge(0)] = 192,
) -> Any:
    """Build the PaSST audio encoder (``nn.Module``, bench's audio-encoder contract).

    Args:
        arch: one of :data:`ARCHS`; the strides and input length follow from it.
        pretrained: load AudioSet weights, from ``checkpoint`` or else from the torch hub cache
            (:func:`checkpoint_cache_path`). Nothing is ever downloaded.
        checkpoint: a local ``.pt`` state dict for ``arch`` (implies ``pretrained``).
        s_patchout_t, s_patchout_f: structured patchout (time columns / frequency rows dropped),
            active in training mode only.
        window_seconds: audio is encoded in non-overlapping windows of this length (default: the
            arch's, 10 s; 20 s for ``passt_20sec``); also the training crop.
        max_seconds: audio beyond this is ignored.
        freeze: no gradients for the encoder, and it stays in evaluation mode.
        freqm, timem: SpecAugment mask widths of the front end in training (0 disables).

    The registry checks each value against these annotations (:mod:`bench.options`); only the
    checks that involve the arch or two options are made here.
    """
    spec = _arch(arch)
    window = spec.window_seconds if window_seconds is None else float(window_seconds)
    if window > spec.window_seconds:
        raise ConfigError(
            f"passt: window_seconds={window:g} exceeds what arch {arch!r} covers ({spec.window_seconds:g} s); "
            f"use --set passt.window_seconds={spec.window_seconds:g} or an arch for longer input"
        )
    if checkpoint and not pretrained:
        raise ConfigError(
            "passt: checkpoint is set but pretrained=false; drop one of --set passt.checkpoint / passt.pretrained"
        )

    weights: str | None = None
    if checkpoint:
        weights = os.fspath(checkpoint)
        if not os.path.isfile(weights):
            raise ConfigError(
                f"passt: checkpoint file {weights} does not exist; fix --set passt.checkpoint=PATH "
                f"or use --set passt.pretrained=false"
            )
    elif pretrained:
        weights = checkpoint_cache_path(arch)
        if not os.path.isfile(weights):
            # Fail before importing timm/hear21passt or building 86 M parameters, and never try a
            # download: these machines are offline and timm would hang or raise a traceback.
            raise ConfigError(
                f"passt: pretrained weights for arch {arch!r} not found at {weights} (bench never downloads; "
                f"get {spec.url} and put it there), or pass --set passt.checkpoint=PATH, "
                f"or train from scratch with --set passt.pretrained=false"
            )

    from bench_plugins.encoders._passt_model import PasstAudioEncoder

    return PasstAudioEncoder(
        arch=arch,
        cfg_key=spec.cfg_key,
        fstride=spec.fstride,
        tstride=spec.tstride,
        input_tdim=spec.input_tdim,
        window_seconds=window,
        max_seconds=max_seconds,
        s_patchout_t=s_patchout_t,
        s_patchout_f=s_patchout_f,
        freqm=freqm,
        timem=timem,
        weights=weights,
        freeze=bool(freeze),
    )


def _hub_checkpoints_dir() -> str:
    """``torch.hub.get_dir()/checkpoints`` computed without importing torch (same environment rules)."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.path.expanduser(os.environ.get("TORCH_HOME", os.path.join(cache, "torch")))
    return os.path.join(torch_home, "hub", "checkpoints")


def preflight_passt(arch: str = "passt_s_p16_s16_128_ap468", pretrained: bool = True, checkpoint: str | None = None,
                    window_seconds: float | None = None, **_: Any) -> list[str]:
    """The factory's cheap checks without torch (bench.core.preflight): arch, weights file, the passt extra."""
    if arch not in ARCHS:
        return [f"passt: unknown arch {arch!r}; valid archs: {', '.join(ARCHS)} (--set passt.arch=NAME)"]
    spec, problems = ARCHS[arch], []
    if window_seconds is not None and float(window_seconds) > spec.window_seconds:
        problems.append(f"passt: window_seconds={float(window_seconds):g} exceeds what arch {arch!r} covers "
                        f"({spec.window_seconds:g} s)")
    if checkpoint and not pretrained:
        problems.append("passt: checkpoint is set but pretrained=false; drop one of --set passt.checkpoint / "
                        "passt.pretrained")
    elif checkpoint and not os.path.isfile(os.fspath(checkpoint)):
        problems.append(f"passt: checkpoint file {checkpoint} does not exist; fix --set passt.checkpoint=PATH "
                        f"or use --set passt.pretrained=false")
    elif pretrained and not checkpoint:
        weights = os.path.join(_hub_checkpoints_dir(), spec.file_name)
        if not os.path.isfile(weights):
            problems.append(f"passt: pretrained weights for arch {arch!r} not found at {weights} (bench never "
                            f"downloads; get {spec.url} and put it there), or pass --set passt.checkpoint=PATH, "
                            f"or train from scratch with --set passt.pretrained=false")
    problems += missing_package("hear21passt", "'bench[passt]'")
    return problems


build_passt.preflight = preflight_passt  # type: ignore[attr-defined]


@hookimpl
def register_audio_encoders(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register the ``passt`` audio encoder."""
    register("passt", build_passt)
