"""Building datasets from run specs, including combinations such as ``wavcaps+audiocaps+clotho``."""

from __future__ import annotations

from typing import Any

from bench.core.config import ComponentSpec, DatasetSpec
from bench.data.combined import CombinedDataset
from bench.data.extra_captions import WithExtraCaptions


def build_dataset(spec: ComponentSpec, registry: Any) -> Any:
    """Build a dataset; a ``+`` combination trains on the union and validates/tests on the last member."""
    spec = DatasetSpec.of(spec)
    if not spec.is_combination:
        return _member(registry, spec.name, spec.options)
    built = [_member(registry, member, spec.member_options(member)) for member in spec.members]
    return CombinedDataset(built, names=list(spec.members), options={m: spec.member_options(m) for m in spec.members})


def _member(registry: Any, name: str, options: dict[str, Any]) -> Any:
    """One registered dataset, with the options bench implements for every dataset applied
    (``extra_captions``: :mod:`bench.data.extra_captions`)."""
    dataset = registry.build("dataset", name, options)
    if options.get("extra_captions"):
        dataset = WithExtraCaptions(dataset, options["extra_captions"], options.get("extra_captions_sha256"), name)
    return dataset
