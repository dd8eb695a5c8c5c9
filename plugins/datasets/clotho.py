"""ClothoV2 dataset plugin (Drossos et al., "Clotho: An Audio Captioning Dataset", arXiv:1910.09387).

Layout under ``root``::

    development/ validation/ evaluation/            wav files
    clotho_captions_{development,validation,evaluation}.csv   file_name,caption_1..caption_5
    clotho_metadata_{development,validation,evaluation}.csv   optional, ISO-8859-1, sound_id, ...

Splits: train -> development, val -> validation, test -> evaluation.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from bench import hookimpl
from bench.errors import ConfigError
from bench.toolkit import BadEntry, Item, attach_validation
from bench_plugins.datasets._common import CaptionDataset, read_csv

# Only the standard library and bench's light modules are imported here (no numpy), so the
# plugin stays cheap to load for ``bench ls``.

FOLDERS = {"train": "development", "val": "validation", "test": "evaluation"}
N_CAPTIONS = 5


@hookimpl
def register_datasets(register: Any) -> None:
    """Register the ``clotho`` dataset."""
    register("clotho", build_clotho)


def build_clotho(root: str = "", on_error: Literal["raise", "skip"] = "raise",
                 min_duration: float = 0.01, min_sample_rate: int = 1000, max_sample_rate: int = 384000,
                 on_silence: Literal["error", "warn", "ignore"] = "warn",
                 on_leak: Literal["error", "warn"] = "error") -> Any:
    """ClothoV2 from ``root`` (default ``$BENCH_DATA/clotho``); ``on_error``: raise or skip."""
    from bench_plugins.datasets._common import resolve_root

    return attach_validation(ClothoDataset(resolve_root("clotho", root, subdir="clotho"), on_error=on_error),
                             min_duration, min_sample_rate, max_sample_rate, on_silence, on_leak)


def _bad_name(name: str) -> str | None:
    if not name.strip():
        return "empty file_name"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"file_name {name!r} contains a path; path traversal is not allowed"
    return None


class ClothoDataset(CaptionDataset):
    """ClothoV2 at ``root``; ``split(name)`` returns :class:`bench.data.items.Item` lists.

    ``audio_id`` is the wav file name, ``captions`` its five captions, ``meta`` the row of
    ``clotho_metadata_<folder>.csv`` (e.g. ``sound_id``) when that file exists.
    """

    name = "clotho"
    has_eval_splits = True  # others declare contains_eval_audio_of = ("clotho",) (bench.data.combined)

    def __init__(self, root: str | os.PathLike[str], on_error: str = "raise") -> None:
        super().__init__(root, on_error)
        if not self.root.is_dir():
            raise ConfigError(f"clotho: dataset directory {self.root} does not exist; "
                              f"pass --set clotho.root=DIR or set BENCH_DATA")

    def _metadata(self, folder: str) -> dict[str, dict[str, str]]:
        path = self.root / f"clotho_metadata_{folder}.csv"
        if not path.is_file():
            return {}
        meta: dict[str, dict[str, str]] = {}
        # Clotho's metadata files are ISO-8859-1, not UTF-8.
        for _line, row, _problem in read_csv(path, ("file_name",), encoding="iso-8859-1",
                                             what="metadata CSV"):
            if row is not None:
                meta[row["file_name"]] = {k: v for k, v in row.items() if k != "file_name"}
        return meta

    def _parse(self, split: str) -> tuple[list[Any], list[Any], int | None]:
        folder = FOLDERS[split]
        csv_path = self.root / f"clotho_captions_{folder}.csv"
        audio_dir = self.root / folder
        if not csv_path.is_file():
            raise ConfigError(f"clotho: {csv_path} not found; is {self.root} a ClothoV2 directory? "
                              f"pass --set clotho.root=DIR or set BENCH_DATA")
        cols = ("file_name",) + tuple(f"caption_{i}" for i in range(1, N_CAPTIONS + 1))
        meta = self._metadata(folder)
        items, bad = [], []
        seen_rows: dict[tuple[str, ...], int] = {}
        for line, row, problem in read_csv(csv_path, cols, what="captions CSV", on_error=self.on_error):
            if row is None:
                bad.append(BadEntry(split, f"{csv_path.name} line {line}", str(csv_path), problem or ""))
                continue
            name = row["file_name"].strip()
            reason = _bad_name(name)
            if reason:
                bad.append(BadEntry(split, name or f"{csv_path.name} line {line}",
                                    str(audio_dir / name), reason))
                continue
            # The same file with other captions stays a duplicate audio_id (validation names it).
            if self._repeated_row(seen_rows, (name, *(row[c].strip() for c in cols[1:])), line, split,
                                  f"{csv_path.name} line {line}", csv_path, f"{name!r} with the same captions", bad):
                continue
            # The raw text stays beside the stripped one: the DCASE script keys queries on it.
            items.append(Item.from_source(name, audio_dir / name, (row[c] for c in cols[1:]),
                                          meta.get(name, {})))
        return items, bad, N_CAPTIONS


from bench_plugins.datasets._preflight import preflight_clotho  # noqa: E402  (cheap checks, bench.core.preflight)

build_clotho.preflight = preflight_clotho  # type: ignore[attr-defined]
