"""Where the Hugging Face hub is, and whether it can be reached: standard library only.

The text encoders, the CLAP model and their preflight checks (which must not import torch or
transformers) share these, so that one rule decides "offline" everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "BENCH_OFFLINE")


def offline() -> bool:
    """Whether the user asked for no hub access (any of the usual offline variables)."""
    return any(os.environ.get(flag, "") in ("1", "true", "yes") for flag in OFFLINE_FLAGS)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (or ``$HF_ENDPOINT``) accepts a TCP connection."""
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def cache_dirs() -> list[Path]:
    """Where ``huggingface_hub`` keeps downloaded models (its environment rules), without importing it."""
    dirs = [os.environ.get("HF_HUB_CACHE"), os.environ.get("TRANSFORMERS_CACHE")]
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    dirs.append(os.path.join(home, "hub"))
    return [Path(d).expanduser() for d in dirs if d]


def source_folder(source: str) -> Path | None:
    """The folder ``from_pretrained(source)`` read its files from: the directory itself, or the hub
    snapshot it resolved to (None when it cannot be told; call after loading, so it is cached)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    try:
        from transformers.utils import cached_file

        found = cached_file(source, "config.json", local_files_only=True)
    except Exception:  # transformers raises OSError, ValueError or hub errors
        return None
    return Path(found).parent if found else None


def source_fingerprint(source: str, *fallback: object) -> str:
    """:func:`bench.toolkit.files_fingerprint` of the folder a model was loaded from; without one,
    a hash of ``fallback`` (e.g. the loaded tokenizer's and config's settings)."""
    import hashlib
    import json

    from bench.toolkit import files_fingerprint

    folder = source_folder(source)
    if folder is not None:
        return files_fingerprint(folder)
    return hashlib.sha256(json.dumps(fallback, sort_keys=True, default=str).encode()).hexdigest()[:20]
