"""Built-in audio encoder ``cnn``: a log-mel front end and a small CNN trained from scratch.

It is the default encoder because it learns something useful within minutes on a laptop CPU;
it is not meant to compete with pretrained encoders such as PaSST.
"""

from __future__ import annotations

from typing import Any

from bench import hookimpl


@hookimpl
def register_audio_encoders(register: Any) -> None:
    register("cnn", build_cnn)


def build_cnn(
    sample_rate: int = 16000,
    n_mels: int = 64,
    hop_ms: float = 20.0,
    channels: str = "64,128,128,256",
    embed_dim: int = 256,
    crop_seconds: float = 10.0,
    max_seconds: float = 30.0,
    dropout: float = 0.1,
    freeze: bool = False,
) -> Any:
    """Log-mel (``n_mels`` bins, ``hop_ms`` hop), 1-D conv blocks of ``channels`` widths, pooling over thirds."""
    from bench_plugins.encoders._cnn_model import CNNEncoder

    widths = tuple(int(c) for c in str(channels).split(",") if c.strip())
    return CNNEncoder(
        sample_rate=sample_rate, n_mels=n_mels, hop_ms=hop_ms, channels=widths, embed_dim=embed_dim,
        crop_seconds=crop_seconds, max_seconds=max_seconds, dropout=dropout, freeze=freeze,
    )
