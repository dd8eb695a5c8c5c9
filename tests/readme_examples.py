"""The docs' pasteable packages: find a section, take the files it names, pip-install them offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_PAGE = ROOT / "docs" / "plugins.md"  # "Writing a plugin", "Writing a logger", "Writing a launcher"
# A two-epoch default run small enough for a test that installs a pasted package and trains with it.
TINY = [
    "--set", "synthetic.n_train=8", "--set", "synthetic.n_val=4", "--set", "synthetic.n_test=12",
    "--set", "cnn.channels=8,8", "--set", "cnn.n_mels=16", "--set", "cnn.embed_dim=16", "--set", "cnn.crop_seconds=2",
    "--set", "train.captions_per_audio=1", "--device", "cpu",
    "--epochs", "2", "--batch-size", "8", "--num-workers", "0", "--proj-dim", "16", "--no-leaderboard",
]
_FILE_BLOCK = re.compile(r"^`([^`]+)`:\n\n```[a-z]*\n(.*?)^```", re.S | re.M)


def readme_section(title: str) -> str:
    """docs/plugins.md's ``## {title}`` section, up to the next ``## `` heading."""
    text = PLUGINS_PAGE.read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 5)
    return text[start : end if end > 0 else None]


def pasted_files(section: str) -> dict[str, str]:
    """Blocks introduced by a line naming the file (`` `pkg/x.py`: ``) then a fenced block."""
    return dict(_FILE_BLOCK.findall(section))


def install_pasted(files: dict[str, str], work: Path, package: str) -> Path:
    """Write ``files`` under ``work``, pip-install ``work/package`` into ``work/site`` without the
    network, and return that site directory (put it on PYTHONPATH to use the package)."""
    for name, body in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    target = work / "site"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(work / package)],
        check=True, env=env, capture_output=True, timeout=300,
    )
    return target
