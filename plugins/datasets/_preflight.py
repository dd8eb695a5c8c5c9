"""Cheap, torch-free checks of the file-based datasets for ``bench.core.preflight``.

Each ``preflight_*`` takes the dataset factory's options and returns one line per problem: the
root that does not exist, the caption files that are missing. Only the standard library, so a
whole request is checked in well under a second, before torch is imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def resolved_root(dataset: str, root: str | os.PathLike[str] | None,
                  subdir: str | None) -> tuple[Path | None, list[str]]:
    """The root as the factory resolves it (``root`` or ``$BENCH_DATA/<subdir>``), or why there is none."""
    hint = f"pass --set {dataset}.root=DIR" + (" or set BENCH_DATA" if subdir else "")
    if root in (None, ""):
        base = os.environ.get("BENCH_DATA")
        if not subdir or not base:
            return None, [f"{dataset}: dataset directory not set; {hint}"]
        path = Path(base).expanduser() / subdir
    else:
        path = Path(root).expanduser()
    if not path.is_dir():
        return None, [f"{dataset}: dataset directory {path} does not exist; {hint}"]
    return path, []


def _missing(dataset: str, root: Path, names: list[str], what: str) -> list[str]:
    return [f"{dataset}: {root / name} not found ({what}); is {root} a {dataset} directory?"
            for name in names if not (root / name).exists()]


def preflight_clotho(root: str = "", **_: Any) -> list[str]:
    path, problems = resolved_root("clotho", root, "clotho")
    if path is None:
        return problems
    folders = ("development", "validation", "evaluation")
    return (_missing("clotho", path, [f"clotho_captions_{f}.csv" for f in folders], "captions CSV")
            + _missing("clotho", path, list(folders), "audio folder"))


def preflight_audiocaps(root: str = "", **_: Any) -> list[str]:
    path, problems = resolved_root("audiocaps", root, "audiocaps")
    if path is None:
        return problems
    return _missing("audiocaps", path, [f"{s}.csv" for s in ("train", "val", "test")], "captions CSV")


def preflight_wavcaps(root: str = "", exclusions: str = "", **_: Any) -> list[str]:
    path, problems = resolved_root("wavcaps", root, "wavcaps")
    if path is None:
        return problems
    problems = _missing("wavcaps", path, ["json_files"], "metadata folder")
    if exclusions and exclusions.lower() != "none" and not Path(exclusions).expanduser().is_file():
        problems.append(f"wavcaps: exclusion list {exclusions} not found; fix --set wavcaps.exclusions=PATH "
                        f"(or =none)")
    return problems


def preflight_csv(root: str = "", captions: str = "", **_: Any) -> list[str]:
    path, problems = resolved_root("csv", root, None)
    if path is None:
        return problems
    file = Path(captions).expanduser() if captions else path / "captions.csv"
    if not file.is_file():
        return [f"csv: captions file {file} not found; pass --set csv.captions=FILE.csv "
                f"(columns file_name,caption,split)"]
    return []
