"""WavCaps dataset plugin (Mei et al., arXiv:2303.17395); a training-only dataset.

Metadata: ``json_files/<subset>/<file>.json``, each ``{"data": [{"id": ..., "caption": ...}]}``.
Audio: ``audio/<subset>/<id>.flac``. The FreeSound subset overlaps Clotho's evaluation audio, so
the DCASE exclusion CSV (header row, Freesound id in column 0) is applied to it: by default the
file ``dcase2024_task6_excluded_freesound_ids.csv`` in the dataset root when present, or the path
given with ``exclusions=PATH``; ``exclusions=none`` disables it explicitly.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Literal

from bench import hookimpl
from bench.errors import ConfigError, DataError
from bench.toolkit import BadEntry, Item, attach_validation
from bench_plugins.datasets._common import CaptionDataset, read_text

JSON_FILES = {
    "AudioSet_SL": "as_final.json",
    "BBC_Sound_Effects": "bbc_final.json",
    "FreeSound": "fsd_final_2s.json",
    "SoundBible": "sb_final.json",
}
DEFAULT_SUBSETS = ",".join(JSON_FILES)
EXCLUSIONS_FILE = "dcase2024_task6_excluded_freesound_ids.csv"
_AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg")


@hookimpl
def register_datasets(register: Any) -> None:
    """Register the ``wavcaps`` dataset."""
    register("wavcaps", build_wavcaps)


def build_wavcaps(root: str = "", subsets: str = DEFAULT_SUBSETS, exclusions: str = "",
                  on_error: Literal["raise", "skip"] = "raise",
                  min_duration: float = 0.01, min_sample_rate: int = 1000, max_sample_rate: int = 384000,
                  on_silence: Literal["error", "warn", "ignore"] = "warn",
                  on_leak: Literal["error", "warn"] = "error") -> Any:
    """WavCaps from ``root`` (default ``$BENCH_DATA/wavcaps``); train split only.

    ``subsets``: comma-separated subset names. ``exclusions``: DCASE exclusion CSV path, ``none``
    to disable, or empty for ``<root>/dcase2024_task6_excluded_freesound_ids.csv`` if present.
    """
    from bench_plugins.datasets._common import resolve_root

    dataset = WavCapsDataset(resolve_root("wavcaps", root, subdir="wavcaps"), subsets=subsets,
                             exclusions=exclusions, on_error=on_error)
    return attach_validation(dataset, min_duration, min_sample_rate, max_sample_rate, on_silence, on_leak)


def _file_id(value: Any) -> str:
    """The entry id as it names the audio file: ``Yabc.wav`` -> ``Yabc``; leading zeros kept."""
    s = str(value).strip()
    for ext in _AUDIO_EXTS:
        if s.lower().endswith(ext):
            return s[: -len(ext)]
    return s


def _norm_id(value: Any) -> str:
    """Comparison key for exclusion lists: Freesound ids "0123", "123", "123.0" are equal."""
    s = _file_id(value)
    try:
        f = float(s)
        if f.is_integer():
            return str(int(f))
    except ValueError:
        pass
    return s


def read_exclusions(path: Path) -> set[str]:
    """Freesound ids in column 0 of a DCASE exclusion CSV (the first row is a header)."""
    text = read_text(path, what="exclusion CSV")
    reader = csv.reader(io.StringIO(text, newline=""))
    ids: set[str] = set()
    try:
        next(reader, None)
        for row in reader:
            if row and row[0].strip():
                ids.add(_norm_id(row[0]))
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    return ids


class WavCapsDataset(CaptionDataset):
    """WavCaps at ``root``: only ``split("train")``; ``audio_id`` is ``<subset>/<id>``."""

    name = "wavcaps"
    splits = ("train",)
    # Leakage metadata (dataset contract in bench.hookspecs): the FreeSound subset holds Clotho's
    # evaluation recordings, and there is nothing to validate or test on.
    has_eval_splits = False
    contains_eval_audio_of = ("clotho",)
    leakage_advice = (f"pass --set wavcaps.exclusions=PATH ({EXCLUSIONS_FILE}) "
                      "or --set wavcaps.exclusions=none to accept the leak")

    def __init__(self, root: str | os.PathLike[str], subsets: str = DEFAULT_SUBSETS, exclusions: str = "",
                 on_error: str = "raise") -> None:
        super().__init__(root, on_error)
        names = [s.strip() for s in str(subsets).split(",") if s.strip()]
        unknown = [s for s in names if s not in JSON_FILES]
        if unknown or not names:
            raise ConfigError(f"wavcaps.subsets={subsets!r}: unknown subset(s) {', '.join(unknown) or '(none given)'}; "
                              f"choose from {DEFAULT_SUBSETS}")
        self.subsets = tuple(dict.fromkeys(names))
        self.exclusions_disabled = str(exclusions).strip().lower() == "none"
        self.exclusions_path: Path | None = None
        if not self.exclusions_disabled:
            if str(exclusions).strip():
                p = Path(exclusions).expanduser()
                if not p.is_file():
                    raise ConfigError(f"wavcaps.exclusions={exclusions}: file not found; pass the DCASE "
                                      f"exclusion CSV or wavcaps.exclusions=none")
                self.exclusions_path = p
            elif (self.root / EXCLUSIONS_FILE).is_file():
                self.exclusions_path = self.root / EXCLUSIONS_FILE
        self.excluded_count = 0

    @property
    def exclusions_applied(self) -> bool:
        """True when FreeSound ids from an exclusion CSV are removed from training."""
        return self.exclusions_path is not None

    @property
    def leakage_excluded(self) -> bool:
        """The Clotho audio was removed, or the user accepted the leak with ``exclusions=none``."""
        return self.exclusions_applied or self.exclusions_disabled

    @property
    def options(self) -> dict[str, Any]:
        """The options that define this dataset."""
        return {**super().options, "subsets": ",".join(self.subsets),
                "exclusions": "none" if self.exclusions_disabled else str(self.exclusions_path or "")}

    def _check_split_name(self, split: str) -> None:
        if split in ("val", "test"):
            raise ConfigError(f"wavcaps has only a train split, no {split!r}; validate and test on Clotho "
                              f"with --dataset wavcaps+clotho")
        super()._check_split_name(split)

    def _parse(self, split: str) -> tuple[list[Any], list[Any], int | None]:
        excluded = read_exclusions(self.exclusions_path) if self.exclusions_path else set()
        items, bad = [], []
        self.excluded_count = 0
        for subset in self.subsets:
            jpath = self.root / "json_files" / subset / JSON_FILES[subset]
            if not jpath.is_file():
                raise ConfigError(f"wavcaps: {jpath} not found; download it or drop {subset} from "
                                  f"wavcaps.subsets")
            try:
                data = json.loads(jpath.read_text(encoding="utf-8"))
            except UnicodeDecodeError as exc:
                raise DataError(f"{jpath}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
            except json.JSONDecodeError as exc:
                raise DataError(f"{jpath}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
            entries = data.get("data") if isinstance(data, dict) else None
            if not isinstance(entries, list):
                raise DataError(f'{jpath}: expected an object {{"data": [...]}}')
            audio_dir = self.root / "audio" / subset
            for i, entry in enumerate(entries):
                where = f"{subset} entry {i}"
                if not isinstance(entry, dict) or "id" not in entry or "caption" not in entry:
                    bad.append(BadEntry(split, where, str(jpath), 'entry lacks "id" or "caption"'))
                    continue
                sid = _file_id(entry["id"])
                if not sid or "/" in sid or "\\" in sid or sid in (".", ".."):
                    bad.append(BadEntry(split, where, str(jpath), f"invalid id {entry['id']!r}"))
                    continue
                if subset == "FreeSound" and _norm_id(sid) in excluded:
                    self.excluded_count += 1
                    continue
                caption = entry["caption"] if isinstance(entry["caption"], str) else str(entry["caption"])
                items.append(Item.from_source(f"{subset}/{sid}", audio_dir / f"{sid}.flac", (caption,),
                                              {"subset": subset, "id": sid}))
        return items, bad, 1


from bench_plugins.datasets._preflight import preflight_wavcaps  # noqa: E402  (cheap checks, bench.core.preflight)

build_wavcaps.preflight = preflight_wavcaps  # type: ignore[attr-defined]
