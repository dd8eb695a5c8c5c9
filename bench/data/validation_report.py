"""What dataset validation found, and what to do about it: bad entries, reports and the on_error policy.

A :class:`ValidationReport` names every unusable entry of a split with its reason. ``apply_policy``
turns it into either a :class:`DataError` (``on_error="raise"``) or the kept items plus the list
of skipped entries with reasons (``on_error="skip"``), which the engine writes into the result
JSON, so nothing is dropped silently. The checks that fill a report are in :mod:`bench.data.validate`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bench.errors import ConfigError, DataError

ON_ERROR_CHOICES = ("raise", "skip")
_SHOW = 10  # bad entries listed in an error message before "... and N more"


class BadEntry(NamedTuple):
    """One unusable entry: the split, the audio id (or ``row N``), the file path and why."""

    split: str
    audio_id: str
    path: str
    reason: str

    def __str__(self) -> str:
        # A CSV row entry ("captions.csv line 7") already names its file; don't repeat the path.
        if not self.path or (" line " in self.audio_id and os.path.basename(self.path) in self.audio_id):
            return f"[{self.split}] {self.audio_id}: {self.reason}"
        return f"[{self.split}] {self.audio_id} ({self.path}): {self.reason}"


def check_on_error(on_error: str, who: str = "on_error") -> str:
    """Validate an ``on_error`` option value and return it."""
    if on_error not in ON_ERROR_CHOICES:
        raise ConfigError(f"{who}={on_error!r} is not valid; use one of {', '.join(ON_ERROR_CHOICES)}")
    return on_error


def check_caption(caption: Any) -> str | None:
    """Return why ``caption`` is unusable (empty, not text, only punctuation), or None if fine."""
    if not isinstance(caption, str):
        return f"caption is not text ({type(caption).__name__})"
    text = caption.strip()
    if not text:
        return "empty caption"
    if not any(ch.isalnum() for ch in text):
        return f"caption has no letters or digits ({text[:20]!r})"
    return None


@dataclass
class ValidationReport:
    """The outcome of validating one split.

    ``items`` are the items checked, ``bad`` the unusable entries (including entries a dataset
    already rejected while parsing its CSV, e.g. missing AudioCaps clips), ``stats`` durations,
    native sample rates, caption counts and counts of multichannel/resampled/long/silent files
    among the usable items. ``warnings`` are usable entries worth a look (silence, identical
    audio); ``hashes`` the content hash of each item's decoded audio (None if not decoded).
    """

    split: str
    items: list[Any]
    bad: list[BadEntry] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False
    bad_indices: set[int] = field(default_factory=set)  # positions in ``items`` that are bad
    warnings: list[BadEntry] = field(default_factory=list)
    hashes: list[str | None] = field(default_factory=list)
    # Per item: [seconds, native rate, flags] of a decoded, accepted file, else None. Kept so that
    # ``stats`` can be recounted when a later check (identical audio across splits) rejects items.
    decoded: list[list[Any] | None] = field(default_factory=list)

    def recount(self) -> None:
        """Recompute ``stats`` over the items that are still usable (see :func:`split_stats`)."""
        for key in _DECODED_STATS:
            self.stats.pop(key, None)
        self.stats.update(split_stats(self.items, self.bad_indices, self.decoded))

    @property
    def ok_items(self) -> list[Any]:
        """Items with no bad entry, in their original order."""
        return [it for i, it in enumerate(self.items) if i not in self.bad_indices]

    @property
    def ok(self) -> bool:
        """True when nothing is bad."""
        return not self.bad

    def summary(self) -> str:
        """A one-paragraph human-readable summary."""
        n_ok = len(self.ok_items)
        parts = [f"split {self.split}: {n_ok} usable item(s) of {len(self.items) + self._n_outside()}"]
        if self.bad:
            reasons = Counter(_reason_kind(b.reason) for b in self.bad)
            parts.append(f"{len(self.bad)} bad (" + ", ".join(f"{n} {r}" for r, n in reasons.most_common()) + ")")
        s = self.stats
        if s.get("duration_min") is not None:
            parts.append(f"durations {s['duration_min']:.2f}-{s['duration_max']:.2f} s "
                         f"(mean {s['duration_mean']:.2f} s, total {s['duration_total'] / 3600:.2f} h)")
        if s.get("sample_rates"):
            parts.append("sample rates " + ", ".join(f"{k} Hz x{v}" for k, v in s["sample_rates"].items()))
        if s.get("caption_counts"):
            parts.append("captions per item " + ", ".join(f"{k}: {v}" for k, v in s["caption_counts"].items()))
        if s.get("target_sample_rate"):
            parts.append(f"resampled to {s['target_sample_rate']} Hz on load")
        counted = [(s.get("n_multichannel"), "multichannel (mixed to mono)"),
                   (s.get("n_above_target_rate"), "above the target rate (resampled down)"),
                   (s.get("n_long"), "longer than 10 min (cropped to the encoder's max_seconds)"),
                   (s.get("n_silent"), "silent"),
                   (s.get("n_short"), "shorter than 0.1 s")]
        accepted = [f"{n} {what}" for n, what in counted if n]
        if accepted:
            parts.append("accepted " + ", ".join(accepted))
        if self.warnings:
            kinds = Counter(_reason_kind(w.reason) for w in self.warnings)
            listed = ", ".join(f"{n} {r}" for r, n in kinds.most_common())
            parts.append(f"{len(self.warnings)} warning(s) ({listed})")
        if self.from_cache:
            parts.append("(from manifest cache)")
        return "; ".join(parts) + "."

    def _n_outside(self) -> int:
        # Entries rejected by the dataset before becoming items are bad but not in ``items``.
        return len(self.bad) - len(self.bad_indices)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict for the results file."""
        return {
            "split": self.split,
            "n_items": len(self.items),
            "n_ok": len(self.ok_items),
            "n_bad": len(self.bad),
            "bad": [b._asdict() for b in self.bad],
            "warnings": [w._asdict() for w in self.warnings],
            "stats": self.stats,
            "summary": self.summary(),
        }

    def to_json(self) -> str:
        """The report as a JSON string (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


FLAGS = ("multichannel", "above_target_rate", "long", "silent", "short")
"""Accepted-but-notable properties of a file, counted in a split's stats as ``n_<flag>``."""

_DECODED_STATS = ("duration_min", "duration_max", "duration_mean", "duration_total", "sample_rates")


def split_stats(items: Sequence[Any], bad_indices: set[int], decoded: Sequence[list[Any] | None]) -> dict[str, Any]:
    """Caption counts, durations, native rates and flag counts over the usable items only."""
    usable = [i for i in range(len(items)) if i not in bad_indices]
    cap_counts = Counter(len(list(items[i].captions)) for i in usable)
    facts = [decoded[i] for i in usable if i < len(decoded) and decoded[i] is not None]
    flags = Counter(flag for fact in facts for flag in fact[2])
    stats: dict[str, Any] = {
        "caption_counts": {str(k): v for k, v in sorted(cap_counts.items())},
        "n_captions": sum(k * v for k, v in cap_counts.items()),
        **{f"n_{flag}": flags.get(flag, 0) for flag in FLAGS},
    }
    if facts:
        seconds = [fact[0] for fact in facts]
        rates = Counter(int(fact[1]) for fact in facts)
        stats.update(duration_min=min(seconds), duration_max=max(seconds),
                     duration_mean=sum(seconds) / len(seconds), duration_total=sum(seconds),
                     sample_rates={str(k): v for k, v in sorted(rates.items())})
    return stats


def _reason_kind(reason: str) -> str:
    r = reason.lower()
    for key, label in (("duplicated row", "duplicated row"),
                       ("identical audio", "identical audio"), ("also in split", "listed in two splits"),
                       ("fields, header has", "malformed CSV row"), ("is not one of train", "malformed CSV row"),
                       ("empty file_name", "malformed CSV row"), ("header says", "length differs from header"),
                       ("too short", "too short"), ("short clip", "short"),
                       ("sample rate", "bad sample rate"), ("silent", "silent"),
                       ("not found", "missing"), ("missing", "missing"), ("empty (0 bytes)", "empty file"),
                       ("nan", "non-finite"), ("not an audio", "not audio"), ("header", "bad header"),
                       ("duplicate", "duplicate"), ("outside", "path escapes root"),
                       ("caption", "caption problem"), ("decode", "undecodable")):
        if key in r:
            return label
    return "other"


def apply_policy(report: ValidationReport, on_error: str) -> tuple[list[Any], list[BadEntry]]:
    """Act on a report: ``raise`` -> :class:`DataError` listing bad entries; ``skip`` -> keep the rest.

    Returns ``(kept_items, skipped_entries)``; ``skipped_entries`` is empty when nothing is bad.
    With ``skip`` the caller must record ``skipped_entries`` (the engine writes them into the
    result JSON) so that nothing disappears silently.
    """
    check_on_error(on_error)
    if not report.bad:
        return list(report.items), []
    # Entries the dataset already skipped at the user's request (``prior_bad``, not among the
    # items) are reported but do not raise again; only problems found in the items do.
    if on_error == "raise" and report.bad_indices:
        raise DataError(format_bad(_item_entries(report), report.split))
    return report.ok_items, list(report.bad)


def _item_entries(report: ValidationReport) -> list[BadEntry]:
    n_prior = len(report.bad) - len(report.bad_indices)
    return report.bad[n_prior:]


def format_bad(bad: Sequence[BadEntry], split: str = "?", show: int = _SHOW) -> str:
    """One line listing the first ``show`` bad entries and how many more there are."""
    shown = "; ".join(str(b) for b in bad[:show])
    more = f"; ... and {len(bad) - show} more" if len(bad) > show else ""
    return (f"{len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'} in split {split!r}: {shown}{more}. "
            f"Fix or remove them, or pass on_error=skip to skip them (they are listed in the results).")
