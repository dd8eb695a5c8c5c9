"""Structure rules the code base keeps: the layer contracts of pyproject.toml, no oversized modules.

The contracts themselves live in ``[tool.importlinter]`` (run by ``lint-imports`` in .ci/run);
these tests check that they hold here and that they would catch an upward import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the packages that ``tree`` holds (bench/ and bench_plugins/)."""
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def _copy_packages(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "bench", tree / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "plugins", tree / "bench_plugins", ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def test_the_layer_contracts_hold(tmp_path: Path) -> None:
    result = _lint_imports(_copy_packages(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    # data sits below evaluation: a function-level import upward still counts.
    ("bench/data/items.py", "def _up():\n    from bench.evaluation import metrics\n",
     "bench.data.items -> bench.evaluation.metrics"),
    # a plugin reaching into the internals instead of bench.toolkit.
    ("bench_plugins/losses/ntxent.py", "from bench.core import registry\n",
     "bench_plugins.losses.ntxent -> bench.core.registry"),
    # the public error module importing an internal one.
    ("bench/errors.py", "from bench.core import atomic\n", "bench.errors -> bench.core.atomic"),
])
def test_a_deliberate_violation_breaks_a_contract(tmp_path: Path, module: str, line: str, broken: str) -> None:
    tree = _copy_packages(tmp_path)
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + "\n" + line, encoding="utf-8")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert broken in result.stdout.replace("\n", " "), result.stdout


def test_a_cycle_between_sibling_modules_breaks_a_contract(tmp_path: Path) -> None:
    tree = _copy_packages(tmp_path)
    path = tree / "bench" / "core" / "atomic.py"
    path.write_text(path.read_text(encoding="utf-8") + "\nfrom bench.core import array_store\n", encoding="utf-8")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "No cycles are allowed in bench.core" in result.stdout


def test_only_the_public_api_lies_directly_in_bench() -> None:
    top = sorted(path.name for path in (ROOT / "bench").glob("*.py"))
    public = ["__init__.py", "__main__.py", "contracts.py", "errors.py", "hookspecs.py", "options.py", "toolkit.py"]
    assert top == public


def test_the_public_names_import() -> None:
    import bench
    import bench.toolkit

    assert bench.ConfigError.__module__ == "bench.errors"
    assert bench.Gt(0).gt == 0
    assert callable(bench.read_result) and callable(bench.read_results)
    for name in bench.toolkit.__all__:
        assert getattr(bench.toolkit, name) is not None, name
    with pytest.raises(AttributeError):
        bench.no_such_name  # noqa: B018


def test_no_module_over_400_lines() -> None:
    too_long = []
    for folder in ("bench", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)} ({lines})")
    assert not too_long, f"modules over {MAX_LINES} lines: {', '.join(too_long)}"
