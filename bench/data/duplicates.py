"""Identical audio by content: within a split a warning, across splits leakage.

Validation hashes every file's decoded samples (:func:`bench.data.audio.scan_audio`), and the hash
is kept in the manifest cache, so grouping costs nothing after the first validation. The same
clip under two names in train and test inflates test scores without anyone noticing; it is a
bad entry of the later split (train < val < test) unless the dataset's ``on_leak="warn"``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bench.data.validation_report import BadEntry, ValidationReport, _reason_kind

log = logging.getLogger("bench")
_SHOW = 5  # names per warning line before "... and N more"


def mark_duplicates(reports: Mapping[str, ValidationReport], order: Sequence[str], on_leak: str) -> int:
    """Add warnings and (``on_leak="error"``) bad entries for identical audio; returns the cross-split count."""
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for split in order:
        report = reports.get(split)
        if report is None:
            continue
        for idx, digest in enumerate(report.hashes):
            if digest and idx not in report.bad_indices:
                groups[digest].append((split, idx))
    leaked = 0
    recount: set[str] = set()  # splits that lost items: their durations and counts must follow
    for members in groups.values():
        if len(members) < 2:
            continue
        first_split, first_idx = members[0]
        first = _describe(reports[first_split], first_split, first_idx)
        for split, idx in members[1:]:
            report = reports[split]
            item = report.items[idx]
            aid, path = str(getattr(item, "audio_id", idx)), str(getattr(item, "audio_path", ""))
            if split == first_split:
                report.warnings.append(BadEntry(split, aid, path, f"identical audio to {first} in the same split"))
                continue
            leaked += 1
            reason = (f"identical audio to {first}: the same clip in two splits leaks into evaluation; "
                      "remove one copy, or set the dataset option on_leak=warn")
            if on_leak == "error":
                report.bad.append(BadEntry(split, aid, path, reason))
                report.bad_indices.add(idx)
                recount.add(split)
            else:
                report.warnings.append(BadEntry(split, aid, path, reason))
    for split in recount:
        reports[split].recount()
    for report in reports.values():
        report.stats["n_identical_across_splits"] = sum(
            1 for entry in [*report.bad, *report.warnings] if "in two splits" in entry.reason)
    return leaked


def _describe(report: ValidationReport, split: str, idx: int) -> str:
    item = report.items[idx]
    return f"[{split}] {getattr(item, 'audio_id', idx)} ({getattr(item, 'audio_path', '')})"


def log_warnings(reports: Iterable[ValidationReport]) -> None:
    """Log each report's warnings, one line per kind, naming the first few files."""
    for report in reports:
        by_kind: dict[str, list[BadEntry]] = defaultdict(list)
        for warning in report.warnings:
            by_kind[_reason_kind(warning.reason)].append(warning)
        for kind, entries in by_kind.items():
            names = "; ".join(f"{w.audio_id} ({w.reason})" for w in entries[:_SHOW])
            more = f"; ... and {len(entries) - _SHOW} more" if len(entries) > _SHOW else ""
            log.warning("split %s: %d warning(s), %s: %s%s", report.split, len(entries), kind, names, more)


def count_kinds(entries: Iterable[Any]) -> Counter[str]:
    """How many entries of each kind (for summaries and tests)."""
    return Counter(_reason_kind(getattr(e, "reason", str(e))) for e in entries)
