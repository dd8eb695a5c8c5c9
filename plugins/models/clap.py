"""Model plugin ``clap``: LAION-CLAP through transformers' ``ClapModel`` and ``ClapProcessor``.

``bench eval --model clap`` scores a CLAP checkpoint zero-shot. Options (``--set clap.KEY=VALUE``):

``model``
    hub id or local directory (default ``laion/clap-htsat-unfused``; also ``laion/clap-htsat-fused``
    and ``laion/larger_clap_general``). Loaded from local files first; offline without them the
    factory fails, before any data work, with the id, the cache folder it looked in and how to
    pass a local directory.
``truncation``
    what the feature extractor does with clips longer than its window (10 s for the LAION
    checkpoints): ``fusion`` (3 random 10 s mel crops plus the whole clip's mel squeezed to 10 s,
    merged by the fused models' attention fusion) or ``rand_trunc`` (one random 10 s crop).
    ``auto`` (default) keeps the checkpoint's ``preprocessor_config.json``.
``padding``
    for shorter clips: ``repeatpad`` (repeat, then zero-pad), ``repeat`` or ``pad``; ``auto`` keeps
    the checkpoint's.
``max_seconds``
    the harness cuts clips there before the feature extractor sees them (default 30, Clotho's
    longest clips).

The harness resamples audio to the model's rate (48 kHz). Random crops make the embeddings of
long clips depend on ``--seed``. This module stays light: transformers is imported in the factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from bench import hookimpl
from bench.options import Gt
from bench_plugins._hub import offline
from bench_plugins.models._clap_location import cached_folder, looks_like_path, not_available

DEFAULT_MODEL = "laion/clap-htsat-unfused"


def preflight_clap(model: str = DEFAULT_MODEL, local_only: bool = False, **_: Any) -> list[str]:
    """Torch-free check before any work: a local directory exists, a hub id is cached when offline."""
    path = Path(model).expanduser()
    if path.is_dir():
        return [] if (path / "config.json").is_file() else [
            f"clap.model={model}: {path} has no config.json; save the model there with ClapModel.save_pretrained"]
    if looks_like_path(model):
        return [f"clap.model={model}: no such directory; pass a hub id such as {DEFAULT_MODEL} "
                "or an existing directory"]
    if (local_only or offline()) and not cached_folder(model).is_dir():
        return [not_available(model)]
    return []  # online: the factory downloads what is missing, or says why it cannot


def build_clap(model: str = DEFAULT_MODEL, truncation: Literal["auto", "fusion", "rand_trunc"] = "auto",
               padding: Literal["auto", "repeatpad", "repeat", "pad"] = "auto",
               max_seconds: Annotated[float, Gt(0)] = 30.0, local_only: bool = False) -> Any:
    """A :class:`bench.contracts.RetrievalModel` wrapping ``ClapModel`` (``local_only``: never download)."""
    from bench_plugins.models._clap_model import ClapRetrieval, load_clap

    processor, clap = load_clap(model, local_only)
    return ClapRetrieval(clap, processor, model=model, truncation=truncation, padding=padding,
                         max_seconds=max_seconds)


build_clap.preflight = preflight_clap  # type: ignore[attr-defined]


@hookimpl
def register_models(register: Any) -> None:
    register("clap", build_clap)
