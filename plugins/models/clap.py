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

from typing import Annotated, Any, Literal

from bench import hookimpl
from bench.options import Gt

DEFAULT_MODEL = "laion/clap-htsat-unfused"


def build_clap(model: str = DEFAULT_MODEL, truncation: Literal["auto", "fusion", "rand_trunc"] = "auto",
               padding: Literal["auto", "repeatpad", "repeat", "pad"] = "auto",
               max_seconds: Annotated[float, Gt(0)] = 30.0, local_only: bool = False) -> Any:
    """A :class:`bench.contracts.RetrievalModel` wrapping ``ClapModel`` (``local_only``: never download)."""
    from bench_plugins.models._clap_model import ClapRetrieval, load_clap

    processor, clap = load_clap(model, local_only)
    return ClapRetrieval(clap, processor, model=model, truncation=truncation, padding=padding,
                         max_seconds=max_seconds)


@hookimpl
def register_models(register: Any) -> None:
    register("clap", build_clap)
