"""Where a CLAP model is looked for: the Hugging Face cache folder of a hub id, or a local directory.

Shared by the light factory module (``clap``, imported by ``bench ls``) and the heavy model module.
"""

from __future__ import annotations

from pathlib import Path


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded models (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, ...)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_folder(model: str) -> Path:
    return hub_cache_dir() / f"models--{model.replace('/', '--')}"


def not_available(model: str) -> str:
    """The one line for a hub id that is neither cached nor downloadable here."""
    return (f"clap model {model!r} is not in the Hugging Face cache (looked in {cached_folder(model)}) and cannot be "
            f"downloaded here; download it on a connected machine (`huggingface-cli download {model}`) and copy the "
            f"cache folder, or pass a local directory with --set clap.model=/path/to/{model.split('/')[-1]}")


def looks_like_path(model: str) -> bool:
    """A hub id is ``owner/name``; anything with more parts or a leading ./~ is a directory."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1
