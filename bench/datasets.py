"""Building datasets from run specs, including combinations such as ``wavcaps+audiocaps+clotho``."""

from __future__ import annotations

from typing import Any

from bench.config import ComponentSpec


def dataset_option_targets(name: str) -> list[str]:
    """The registry names a dataset spec is made of: ``"a+b"`` -> ``["a", "b"]``."""
    return [part for part in name.split("+") if part]


def build_dataset(spec: ComponentSpec, registry: Any) -> Any:
    """Build a dataset; a ``+`` combination trains on the union and validates/tests on the last member."""
    members = dataset_option_targets(spec.name)
    if len(members) == 1:
        return registry.build("dataset", spec.name, spec.options)
    from bench.combined import CombinedDataset

    built = [registry.build("dataset", member, spec.options.get(member, {})) for member in members]
    return CombinedDataset(built, names=members, options={m: spec.options.get(m, {}) for m in members})
