"""bench as users get it: from a directory with its own ``plugins/`` package, and installed from a wheel.

The built-ins install as ``bench_plugins``, so a user's ``plugins/`` folder cannot shadow them,
and a wheel carries no top-level ``plugins`` or ``benchmarks`` package. A wheel install records
its version, not the git commit of whatever repository the user runs in, and writes nothing into
the current directory's ``leaderboard/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUILT_INS = ["cnn", "passt", "hf", "minilm", "roberta", "distill", "ntxent", "triplet",
             "audiocaps", "clotho", "csv", "synthetic", "wavcaps"]
TINY = ["--set", "synthetic.n_train=24", "--set", "synthetic.n_val=8", "--set", "synthetic.n_test=8",
        "--set", "cnn.channels=16,32", "--set", "cnn.embed_dim=32", "--proj-dim", "32",
        "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--device", "cpu"]


def _user_plugins_folder(path: Path) -> Path:
    """A working directory with a ``plugins`` package of its own, as a user's project may have."""
    (path / "plugins" / "datasets").mkdir(parents=True)
    (path / "plugins" / "__init__.py").write_text("")
    (path / "plugins" / "datasets" / "__init__.py").write_text("")
    return path


def _bench(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _assert_lists_every_built_in(listing: subprocess.CompletedProcess) -> None:
    assert listing.returncode == 0, listing.stderr
    listed = {line.split()[0] for line in listing.stdout.splitlines() if line.startswith("  ")}
    missing = sorted(set(BUILT_INS) - listed)
    assert not missing, f"built-ins missing from bench ls: {missing}\n{listing.stdout}"
    assert "failed" not in listing.stdout.lower(), listing.stdout


def test_bench_ls_from_a_directory_with_its_own_plugins_package(tmp_path):
    work = _user_plugins_folder(tmp_path / "project")
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache")}
    _assert_lists_every_built_in(_bench(["ls"], work, env, timeout=180))


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, a --target directory it is installed into), built from a copy of the source."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("bench", "plugins"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(base / "dist")],
                           env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("bench-*.whl")
    target = base / "site"
    installed = subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                               env=env, capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    return wheel, target


def test_wheel_has_no_top_level_plugins_or_benchmarks(wheel_site):
    wheel, _ = wheel_site
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    packages = {name for name in top if not name.endswith((".dist-info", ".data"))}
    assert packages == {"bench", "bench_plugins"}, sorted(top)
    # The published result schema travels with the package: check_result and third parties read it.
    assert "bench/results/result.schema.json" in zipfile.ZipFile(wheel).namelist()


def test_wheel_install_lists_built_ins_and_trains_from_an_unrelated_directory(wheel_site, tmp_path):
    _, target = wheel_site
    # A git repository that is not bench's: its commit must not be recorded as bench's.
    work = _user_plugins_folder(tmp_path / "elsewhere")
    subprocess.run(["git", "init", "-q", str(work)], check=True, timeout=60)
    env = {**os.environ, "PYTHONPATH": str(target), "BENCH_CACHE": str(tmp_path / "cache")}
    where = subprocess.run([sys.executable, "-c", "import bench, bench_plugins; print(bench.__file__);"
                            "print(bench_plugins.__file__)"], cwd=work, env=env, capture_output=True, text=True,
                           timeout=120)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():  # the wheel's copy, not the editable checkout
        assert Path(line).resolve().is_relative_to(target.resolve()), where.stdout

    _assert_lists_every_built_in(_bench(["ls"], work, env, timeout=180))

    run = _bench(["run", *TINY], work, env)
    assert run.returncode == 0, run.stderr[-3000:]
    (result_path,) = list(work.rglob("result.json"))
    result = json.loads(result_path.read_text())
    provenance = result["provenance"]
    assert provenance["bench_source"] == "package", provenance
    assert provenance["git_commit"] is None
    assert provenance["plugins"]["audio_encoder"]["distribution"] == "bench"
    assert len(result["history"]) == 1
    assert not (work / "leaderboard").exists(), sorted(p.name for p in work.iterdir())
