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
