"""Building datasets from run specs, including combinations such as ``wavcaps+audiocaps+clotho``."""

from __future__ import annotations

from typing import Any

from bench.core.config import ComponentSpec, DatasetSpec
from bench.data.combined import CombinedDataset


def build_dataset(spec: ComponentSpec, registry: Any) -> Any:
    """Build a dataset; a ``+`` combination trains on the union and validates/tests on the last member."""
    spec = DatasetSpec.of(spec)
    if not spec.is_combination:
        return registry.build("dataset", spec.name, spec.options)
    built = [registry.build("dataset", member, spec.member_options(member)) for member in spec.members]
    return CombinedDataset(built, names=list(spec.members), options={m: spec.member_options(m) for m in spec.members})
