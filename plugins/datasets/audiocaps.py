"""AudioCaps dataset plugin.

AudioCaps: Kim et al., NAACL 2019; the CSV layout of cdjkim/audiocaps, dataset/{train,val,test}.csv.

Captions: ``{train,val,test}.csv`` with columns ``audiocap_id,youtube_id,start_time,caption``, one
row per caption; rows are grouped by clip (train has 1 caption per clip, val/test 5). Audio: one
file per clip at ``<root>/<audio_dir>/<pattern>``, where ``audio_dir`` may contain ``{split}``
and ``pattern`` may contain ``{youtube_id}``, ``{start_time}`` and ``{split}``.

Many AudioCaps videos are gone from YouTube, so missing clips are common: they are counted and
reported (``on_error="raise"`` stops with the count and the first ones; ``"skip"`` keeps the rest
and lists every missing clip in :meth:`skipped`), never silently dropped.
"""

from __future__ import annotations

import os
import string
from typing import Any, Literal

from bench import hookimpl
from bench.errors import ConfigError
from bench.toolkit import BadEntry, Item, attach_validation
from bench_plugins.datasets._common import CaptionDataset, read_csv

COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
FIELDS = ("youtube_id", "start_time", "split")


@hookimpl
def register_datasets(register: Any) -> None:
    """Register the ``audiocaps`` dataset."""
    register("audiocaps", build_audiocaps)


def build_audiocaps(root: str = "", audio_dir: str = "audio/{split}", pattern: str = "{youtube_id}.wav",
                    on_error: Literal["raise", "skip"] = "raise",
                    min_duration: float = 0.01, min_sample_rate: int = 1000, max_sample_rate: int = 384000,
                    on_silence: Literal["error", "warn", "ignore"] = "warn",
                    on_leak: Literal["error", "warn"] = "error") -> Any:
    """AudioCaps from ``root`` (default ``$BENCH_DATA/audiocaps``).

    ``audio_dir`` (relative to root, may use ``{split}``) and ``pattern`` (file name, may use
    ``{youtube_id}``, ``{start_time}``, ``{split}``) locate each clip; ``on_error``: raise or skip.
    """
    from bench_plugins.datasets._common import resolve_root

    dataset = AudioCapsDataset(resolve_root("audiocaps", root, subdir="audiocaps"), audio_dir=audio_dir,
                               pattern=pattern, on_error=on_error)
    return attach_validation(dataset, min_duration, min_sample_rate, max_sample_rate, on_silence, on_leak)


def _check_template(option: str, value: str) -> None:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"audiocaps.{option}={value!r} is not a valid pattern ({exc})") from None
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise ConfigError(f"audiocaps.{option}={value!r} uses unknown field(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join('{' + f + '}' for f in FIELDS)}")


def _norm_start(value: str) -> str | None:
    """``30``, ``30.0`` -> ``30``; None if not a number."""
    try:
        f = float(value)
    except ValueError:
        return None
    if f != f or f < 0:
        return None
    return str(int(f)) if f.is_integer() else repr(f)


class AudioCapsDataset(CaptionDataset):
    """AudioCaps at ``root``; ``audio_id`` is the clip's file path relative to the split's audio dir."""

    name = "audiocaps"

    def __init__(self, root: str | os.PathLike[str], audio_dir: str = "audio/{split}",
                 pattern: str = "{youtube_id}.wav", on_error: str = "raise") -> None:
        super().__init__(root, on_error)
        _check_template("audio_dir", audio_dir)
        _check_template("pattern", pattern)
        self.audio_dir = audio_dir
        self.pattern = pattern

    @property
    def options(self) -> dict[str, Any]:
        """The options that define this dataset."""
        return {**super().options, "audio_dir": self.audio_dir, "pattern": self.pattern}

    def _parse(self, split: str) -> tuple[list[Any], list[Any], int | None]:
        csv_path = self.root / f"{split}.csv"
        if not csv_path.is_file():
            raise ConfigError(f"audiocaps: {csv_path} not found; is {self.root} an AudioCaps directory? "
                              f"pass --set audiocaps.root=DIR or set BENCH_DATA")
        audio_dir = self.root / self.audio_dir.format(split=split)
        clips: dict[str, dict[str, Any]] = {}
        bad: list[BadEntry] = []
        seen_rows: dict[tuple[str, str], int] = {}
        for line, row, problem in read_csv(csv_path, COLUMNS, what="captions CSV", on_error=self.on_error):
            where = f"{csv_path.name} line {line}"
            if row is None:
                bad.append(BadEntry(split, where, str(csv_path), problem or ""))
                continue
            yid = row["youtube_id"].strip()
            start = _norm_start(row["start_time"].strip())
            if not yid:
                bad.append(BadEntry(split, where, str(csv_path), "empty youtube_id"))
                continue
            if start is None:
                bad.append(BadEntry(split, where, str(csv_path),
                                    f"start_time {row['start_time']!r} is not a number >= 0"))
                continue
            rel = self.pattern.format(youtube_id=yid, start_time=start, split=split)
            clip = clips.get(rel)
            if clip is None:
                clip = clips[rel] = {"youtube_id": yid, "start_time": start, "captions": [], "audiocap_ids": []}
            elif (clip["youtube_id"], clip["start_time"]) != (yid, start):
                bad.append(BadEntry(split, where, str(audio_dir / rel),
                                    f"youtube_id {yid} start {start} maps to the same file as "
                                    f"{clip['youtube_id']} start {clip['start_time']}; add {{start_time}} "
                                    f"to audiocaps.pattern"))
                continue
            if self._repeated_row(seen_rows, (rel, row["caption"].strip()), line, split, where, csv_path,
                                  f"{rel!r} with caption {row['caption'].strip()!r}", bad):
                continue
            clip["captions"].append(row["caption"])
            clip["audiocap_ids"].append(row["audiocap_id"].strip())
        items = [Item.from_source(rel, audio_dir / rel, c["captions"],
                                  {"youtube_id": c["youtube_id"], "start_time": c["start_time"],
                                   "audiocap_ids": c["audiocap_ids"]})
                 for rel, c in clips.items()]
        return items, bad, None


from bench_plugins.datasets._preflight import preflight_audiocaps  # noqa: E402  (cheap checks, bench.core.preflight)

build_audiocaps.preflight = preflight_audiocaps  # type: ignore[attr-defined]
