"""docs/plugins.md's "Writing a plugin" example works when pasted into a new package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme_examples import ROOT, install_pasted, pasted_files, readme_section


def test_readme_names_every_contract():
    section = readme_section("Writing a plugin")
    for contract in ("*Audio encoder*", "*Text encoder*", "*Loss*", "*Dataset*"):
        assert contract in section


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    files = pasted_files(readme_section("Writing a plugin"))
    assert set(files) == {"bench-margin/pyproject.toml", "bench-margin/bench_margin.py"}
    return install_pasted(files, tmp_path_factory.mktemp("readme-plugin"), "bench-margin")


def _env(target: Path, tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)]), "BENCH_CACHE": str(tmp / "cache")}


@pytest.mark.slow
def test_pasted_plugin_is_listed_and_loads(installed, tmp_path):
    env = _env(installed, tmp_path)
    listing = subprocess.run([sys.executable, "-m", "bench", "ls"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"margin-nce\s+bench-margin 0\.1\.0", listing.stdout)
    code = (
        "import torch, bench\n"
        "from types import SimpleNamespace\n"
        "torch.manual_seed(0)\n"
        "a = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)\n"
        "t = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)\n"
        "batch = SimpleNamespace(audio_ids=torch.tensor([0, 0, 1, 2, 3, 4]))\n"
        "plain = bench.load('loss', 'margin-nce', margin=0.0)(a, t, batch)\n"
        "ntxent = bench.load('loss', 'ntxent')(a, t, batch)\n"
        "harder = bench.load('loss', 'margin-nce', margin=0.2)(a, t, batch)\n"
        "print(float(plain), float(ntxent), float(harder))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    plain, ntxent, harder = map(float, out.stdout.split())
    assert plain == pytest.approx(ntxent, rel=1e-5)  # with no margin it is bench's NT-Xent (docs/losses.md)
    assert harder > plain


@pytest.mark.slow
def test_pasted_plugin_trains(installed, tmp_path):
    env = _env(installed, tmp_path)
    command = [sys.executable, "-m", "bench", "run", "--loss", "margin-nce", "--set", "margin-nce.margin=0.2",
               "--set", "synthetic.n_train=16", "--set", "synthetic.n_val=6", "--set", "synthetic.n_test=6",
               "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--no-leaderboard",
               "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs")]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    (result,) = (tmp_path / "results").glob("*.json")
    text = result.read_text()
    assert '"margin-nce"' in text and '"bench-margin"' in text
