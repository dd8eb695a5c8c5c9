"""Every bad entry of a dataset, every time: what ``bench validate`` prints and ``bench run`` refuses with.

A dataset built with ``on_error="raise"`` stops at its first problem (the first bad CSV line, the
first split with bad entries). To name them all, each member that has an ``on_error`` option is
built again with ``on_error="skip"``, which parses every row and keeps every problem as a bad
entry, and every split is validated. Both commands print the same lines from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.core.config import DatasetSpec, dataset_spec
from bench.data.datasets import build_dataset
from bench.data.validate import validate_dataset
from bench.data.validation_report import ValidationReport

SPLITS = ("train", "val", "test")


def full_reports(registry: Any, spec: DatasetSpec, *, sample_rate: int | None = None,
                 splits: Sequence[str] = SPLITS) -> dict[str, ValidationReport]:
    """Each split's report of ``spec``'s dataset, with every bad entry its members can find."""
    spec = DatasetSpec.of(spec)
    set_options = {member: spec.member_options(member) for member in spec.members}
    for member in spec.members:
        if "on_error" in registry.get("dataset", member).option_defaults():
            set_options[member]["on_error"] = "skip"
    dataset = build_dataset(dataset_spec(registry, spec.name, set_options), registry)
    return validate_dataset(dataset, splits, sample_rate=sample_rate, log_warnings=False)


def report_lines(reports: Mapping[str, ValidationReport]) -> list[str]:
    """Per split: its summary, then one line per bad entry and per warning (what `bench validate` prints)."""
    lines: list[str] = []
    for report in reports.values():
        lines.append(report.summary())
        lines.extend(f"  {bad}" for bad in report.bad)
        lines.extend(f"  warning: {warning}" for warning in report.warnings)  # usable, but worth a look
    return lines


def n_bad(reports: Mapping[str, ValidationReport]) -> int:
    return sum(len(report.bad) for report in reports.values())


def refusal(reports: Mapping[str, ValidationReport], dataset: str, member: str, show: int = 10) -> str:
    """The one-line refusal of a bad dataset: how many, the first ``show`` entries, and the fix."""
    bad = [entry for report in reports.values() for entry in report.bad]
    shown = "; ".join(str(entry) for entry in bad[:show])
    more = f"; ... and {len(bad) - show} more" if len(bad) > show else ""
    return (f"{len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'} in dataset {dataset} (all listed above, as "
            f"`bench validate` lists them): {shown}{more}. Fix them, or pass --set {member}.on_error=skip to skip "
            "them (they are listed in the result)")
