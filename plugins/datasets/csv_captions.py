"""A user's own captioned audio: one CSV, one row per caption.

Columns ``file_name,caption,split`` (split is ``train``, ``val`` or ``test``); ``file_name`` is
relative to the audio directory ``root``. Rows with the same file name and split are one item.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from bench import hookimpl
from bench.errors import ConfigError
from bench.toolkit import BadEntry, Item, attach_validation
from bench_plugins.datasets._common import SPLITS, CaptionDataset, read_csv

COLUMNS = ("file_name", "caption", "split")


@hookimpl
def register_datasets(register: Any) -> None:
    """Register the ``csv`` dataset."""
    register("csv", build_csv)


def build_csv(root: str = "", captions: str = "", on_error: Literal["raise", "skip"] = "raise",
              min_duration: float = 0.01, min_sample_rate: int = 1000, max_sample_rate: int = 384000,
              on_silence: Literal["error", "warn", "ignore"] = "warn",
              on_leak: Literal["error", "warn"] = "error") -> Any:
    """Audio in ``root``, captions in the CSV ``captions`` (default ``<root>/captions.csv``)."""
    from bench_plugins.datasets._common import resolve_root

    audio_root = resolve_root("csv", root)
    return attach_validation(CsvCaptionsDataset(audio_root, captions or audio_root / "captions.csv", on_error=on_error),
                             min_duration, min_sample_rate, max_sample_rate, on_silence, on_leak)


class CsvCaptionsDataset(CaptionDataset):
    """Captions from a ``file_name,caption,split`` CSV; ``audio_id`` is the file name."""

    name = "csv"

    def __init__(self, root: str | os.PathLike[str], captions: str | os.PathLike[str],
                 on_error: str = "raise") -> None:
        super().__init__(root, on_error)
        self.captions_path = Path(os.path.abspath(Path(captions).expanduser()))
        if not self.captions_path.is_file():
            raise ConfigError(f"csv: captions file {self.captions_path} not found; pass --set csv.captions=FILE")
        self._rows: dict[str, tuple[list[Item], list[BadEntry]]] | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The options that define this dataset."""
        return {**super().options, "captions": str(self.captions_path)}

    def _read_all(self) -> dict[str, tuple[list[Item], list[BadEntry]]]:
        if self._rows is not None:
            return self._rows
        groups: dict[str, dict[str, list[str]]] = {s: {} for s in SPLITS}
        bad: dict[str, list[BadEntry]] = {s: [] for s in SPLITS}
        first_split: dict[str, str] = {}
        seen_rows: dict[tuple[str, str], int] = {}
        name = self.captions_path.name
        for line, row, problem in read_csv(self.captions_path, COLUMNS, what="captions CSV", on_error=self.on_error):
            where = f"{name} line {line}"
            if row is None:
                # Which split the row belonged to is unknown; report it under train so it is seen.
                bad["train"].append(BadEntry("train", where, str(self.captions_path), problem or ""))
                continue
            split = row["split"].strip().lower()
            fname = row["file_name"].strip()
            if split not in SPLITS:
                bad["train"].append(BadEntry("train", where, str(self.captions_path),
                                             f"split {row['split']!r} is not one of train, val, test"))
                continue
            if not fname:
                bad[split].append(BadEntry(split, where, str(self.captions_path), "empty file_name"))
                continue
            other = first_split.setdefault(fname, split)
            if other != split:
                bad[split].append(BadEntry(split, fname, str(self.root / fname),
                                           f"{where}: file is also in split {other!r}; a recording must "
                                           f"belong to one split (train/test leakage)"))
                continue
            if self._repeated_row(seen_rows, (fname, row["caption"].strip()), line, split, where, self.captions_path,
                                  f"{fname!r} with caption {row['caption'].strip()!r}", bad[split]):
                continue
            groups[split].setdefault(fname, []).append(row["caption"])
        out: dict[str, tuple[list[Item], list[BadEntry]]] = {}
        for split in SPLITS:
            items = [Item.from_source(f, self.root / f, c) for f, c in groups[split].items()]
            out[split] = (items, bad[split])
        self._rows = out
        return out

    def _parse(self, split: str) -> tuple[list[Any], list[Any], int | None]:
        items, bad = self._read_all()[split]
        return list(items), list(bad), None


from bench_plugins.datasets._preflight import preflight_csv  # noqa: E402  (cheap checks, bench.core.preflight)

build_csv.preflight = preflight_csv  # type: ignore[attr-defined]
