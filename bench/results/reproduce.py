"""Is a committed number still what the current code produces?

Two checks keep the leaderboard honest:

* :func:`provenance_problems` (run by ``bench leaderboard --check``): every committed result must
  come from a clean working tree, and from a commit whose ``bench/`` and ``plugins/`` are those
  of the current checkout. Results that are expensive to re-run may instead be *pinned* in
  ``leaderboard/pinned.toml`` under the commit that produced them; the table then marks them
  with "produced by commit X".
* :func:`metric_mismatches` (run by ``bench reproduce``, which CI calls after re-running the
  default benchmark): every metric of a fresh result must be bit-identical to the committed
  result of the same combination and seed.
"""

from __future__ import annotations

import math
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

CODE_PATHS = ("bench", "plugins")
PINNED_FILE = Path("leaderboard/pinned.toml")


def load_pinned(path: Path = PINNED_FILE) -> dict[str, str]:
    """``{commit: reason}`` from ``pinned.toml`` (``[commits]`` table); empty when the file is absent."""
    if not Path(path).is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); see the comment at its top for the format") from None
    commits = data.get("commits", {})
    if not isinstance(commits, dict) or not all(isinstance(v, str) for v in commits.values()):
        raise ConfigError(f"{path}: expected a [commits] table of 'COMMIT = \"reason\"' lines")
    return dict(commits)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)


def code_differs(commit: str, repo: Path, paths: tuple[str, ...] = CODE_PATHS) -> bool | None:
    """True when ``paths`` differ between ``commit`` and the checkout; None if git cannot tell."""
    try:
        known = _git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
        if known.returncode != 0:
            return None
        diff = _git(repo, "diff", "--quiet", commit, "--", *paths)
    except (OSError, subprocess.SubprocessError):
        return None
    if diff.returncode not in (0, 1):
        return None
    return diff.returncode == 1


def is_pinned(commit: str | None, pinned: dict[str, str]) -> bool:
    return bool(commit) and any(commit.startswith(key) or key.startswith(commit) for key in pinned)


def provenance_problems(results: list[dict[str, Any]], repo: Path, pinned: dict[str, str]) -> list[str]:
    """One line per committed result that the current code does not stand behind."""
    problems = []
    for result in results:
        prov = result.get("provenance") or {}
        # A fusion is computed by the code of its own commit from runs of theirs: check all of them.
        commits = [prov.get("git_commit"), *(prov.get("fused_from") or [])]
        name = result.get("run_id", "?")
        if prov.get("git_dirty"):
            problems.append(f"{name}: written from a working tree with uncommitted changes; re-run it from a clean "
                            "checkout (docs/reproducibility.md)")
            continue
        for commit in commits:
            if not commit:
                problems.append(f"{name}: records no git commit, so the code that produced it is unknown; re-run it "
                                "from a bench checkout")
                break
            if is_pinned(commit, pinned):
                continue
            differs = code_differs(commit, repo)
            if differs is None:
                problems.append(f"{name}: commit {commit[:10]} is not in this repository's history (a shallow "
                                "clone? fetch the full history), so its code cannot be compared")
                break
            if differs:
                problems.append(f"{name}: produced by commit {commit[:10]}, whose bench/ or plugins/ differ from the "
                                "current code; re-run it (bash leaderboard/reproduce.sh) or pin that commit in "
                                f"{PINNED_FILE}")
                break
    return problems


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), value[key]))
        return out
    return {prefix: value}


COMPARED_BLOCKS = ("metrics", "best_val", "chance")


def metric_mismatches(new: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    """Every metric (test, best validation, chance) that is not bit-identical, as one line each."""
    lines = []
    for block in COMPARED_BLOCKS:
        old_values = _flatten(block, committed.get(block) or {})
        new_values = _flatten(block, new.get(block) or {})
        for key in sorted(set(old_values) | set(new_values)):
            a, b = old_values.get(key), new_values.get(key)
            same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
            if not same:
                lines.append(f"{key}: committed {a!r}, new {b!r}")
    return lines


def matching_committed(new: dict[str, Any], committed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The committed result of the same combination and seed (the latest, if several)."""
    same = [r for r in committed if r.get("combination") == new.get("combination") and r.get("seed") == new.get("seed")
            and r.get("kind", "train") == new.get("kind", "train")]
    return max(same, key=lambda r: r["run_id"]) if same else None
