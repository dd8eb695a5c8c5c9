"""Built-in audio encoder ``cnn``: a log-mel front end and a small CNN trained from scratch.

It is the default encoder because it learns something useful within minutes on a laptop CPU;
it is not meant to compete with pretrained encoders such as PaSST.
"""

from __future__ import annotations

from typing import Annotated, Any

from bench import hookimpl
from bench.options import Ge, Gt, Le


@hookimpl
def register_audio_encoders(register: Any) -> None:
    register("cnn", build_cnn)


def build_cnn(
    sample_rate: Annotated[int, Ge(1)] = 16000,
    n_mels: Annotated[int, Ge(1)] = 64,
    hop_ms: Annotated[float, Gt(0)] = 20.0,
    channels: str = "64,128,128,256",
    embed_dim: Annotated[int, Ge(1)] = 256,
    crop_seconds: Annotated[float, Gt(0)] = 10.0,
    max_seconds: Annotated[float, Gt(0)] = 30.0,
    dropout: Annotated[float, Ge(0), Le(1)] = 0.1,
    freeze: bool = False,
) -> Any:
    """Log-mel (``n_mels`` bins, ``hop_ms`` hop), 1-D conv blocks of ``channels`` widths, pooling over thirds."""
    from bench_plugins.encoders._cnn_model import CNNEncoder

    widths = tuple(int(c) for c in str(channels).split(",") if c.strip())
    return CNNEncoder(
        sample_rate=sample_rate, n_mels=n_mels, hop_ms=hop_ms, channels=widths, embed_dim=embed_dim,
        crop_seconds=crop_seconds, max_seconds=max_seconds, dropout=dropout, freeze=freeze,
    )
