"""Combined training sets, e.g. ``--dataset wavcaps+audiocaps+clotho``.

Training uses the union of every member's train split; validation and test come from the last
member alone, so that results stay comparable with that dataset's published numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bench.data.items import Item
from bench.errors import ConfigError

__all__ = ["CombinedDataset", "check_combination"]


def _name_of(dataset: Any, index: int) -> str:
    return str(getattr(dataset, "name", None) or f"dataset{index}")


def check_combination(names: Sequence[str], datasets: Sequence[Any]) -> None:
    """Refuse combinations that cannot be evaluated or that leak evaluation audio into training.

    The rules read metadata the datasets declare (see the dataset contract in
    :mod:`bench.hookspecs`), so a third-party dataset takes part exactly like a built-in:

    - ``has_eval_splits = False``: a training-only dataset (e.g. WavCaps) cannot come last.
    - ``contains_eval_audio_of = ("clotho",)``: the training split holds evaluation audio of the
      named datasets (WavCaps' FreeSound subset holds Clotho's), so training on it while
      evaluating on one of them is refused unless ``leakage_excluded`` is true (the audio was
      removed, or the user accepted the leak). ``leakage_advice`` says how to fix it.
    """
    if len(names) != len(datasets):
        raise ConfigError(f"check_combination: {len(names)} names for {len(datasets)} datasets")
    if not datasets:
        raise ConfigError("a combined dataset needs at least one member")
    if not getattr(datasets[-1], "has_eval_splits", True):
        raise ConfigError(f"{names[-1]} has no val/test split; put an evaluation dataset last, "
                          f"e.g. {names[-1]}+clotho")
    evaluated = {names[-1], getattr(datasets[-1], "name", None) or names[-1]}
    for name, ds in zip(names[:-1], datasets[:-1]):
        leaked = sorted(evaluated & set(getattr(ds, "contains_eval_audio_of", ()) or ()))
        if not leaked or getattr(ds, "leakage_excluded", False):
            continue
        advice = getattr(ds, "leakage_advice", "") or f"exclude that audio from {name} first"
        raise ConfigError(f"training on {name} and evaluating on {leaked[0]} would leak {leaked[0]} evaluation "
                          f"audio into training; {advice}")


class CombinedDataset:
    """Train on the union of the members' train splits; validate and test on the last member.

    ``names`` default to each member's ``name`` attribute. Train audio ids are prefixed with
    ``<name>/`` so that ids stay unique across members. The leakage rule of
    :func:`check_combination` is enforced on construction.
    """

    def __init__(self, datasets: Sequence[Any], names: Sequence[str] | None = None,
                 options: dict[str, Any] | None = None) -> None:
        datasets = list(datasets)
        names = list(names) if names is not None else [_name_of(d, i) for i, d in enumerate(datasets)]
        if len(set(names)) != len(names):
            raise ConfigError(f"combined dataset lists a member twice: {'+'.join(names)}")
        check_combination(names, datasets)
        self.datasets = datasets
        self.names = names
        self.name = "+".join(names)
        self._options = options

    @property
    def options(self) -> dict[str, Any]:
        """Each member's options, by member name (as given, else the members' own)."""
        if self._options is not None:
            return dict(self._options)
        return {n: getattr(d, "options", None) for n, d in zip(self.names, self.datasets)}

    @property
    def on_error(self) -> str:
        """``skip`` only if every member skips; one strict member makes the combination strict.

        Entries a member already skipped while parsing stay skipped (and listed) either way.
        """
        policies = {getattr(d, "on_error", "raise") for d in self.datasets}
        return "skip" if policies == {"skip"} else "raise"

    def split(self, name: str) -> list[Any]:
        """``train``: all members' train items (ids prefixed); ``val``/``test``: the last member's."""
        if name in ("val", "test"):
            return list(self.datasets[-1].split(name))
        if name != "train":
            raise ConfigError(f"{self.name}: unknown split {name!r}; use train, val or test")
        out: list[Any] = []
        for member, ds in zip(self.names, self.datasets):
            for it in ds.split("train"):
                out.append(_prefixed(member, it))
        return out

    def skipped(self, name: str) -> list[Any]:
        """Entries the members skipped under ``on_error="skip"`` (ids prefixed for train)."""
        members = list(zip(self.names, self.datasets)) if name == "train" else [(self.names[-1], self.datasets[-1])]
        out: list[Any] = []
        for member, ds in members:
            fn = getattr(ds, "skipped", None)
            for b in (fn(name) if callable(fn) else []):
                renamed = name == "train" and hasattr(b, "_replace")
                out.append(b._replace(audio_id=f"{member}/{b.audio_id}") if renamed else b)
        return out


    def parse_warnings(self, name: str) -> list[Any]:
        """The members' parse warnings (e.g. repeated rows), like :meth:`skipped`."""
        members = list(zip(self.names, self.datasets)) if name == "train" else [(self.names[-1], self.datasets[-1])]
        out: list[Any] = []
        for member, ds in members:
            fn = getattr(ds, "parse_warnings", None)
            for w in (fn(name) if callable(fn) else []):
                renamed = name == "train" and hasattr(w, "_replace")
                out.append(w._replace(audio_id=f"{member}/{w.audio_id}") if renamed else w)
        return out


def _prefixed(member: str, item: Any) -> Any:
    new_id = f"{member}/{item.audio_id}"
    if isinstance(item, Item):
        return replace(item, audio_id=new_id, meta={**item.meta, "source": member})
    return Item(audio_id=new_id, audio_path=item.audio_path, captions=tuple(item.captions),
                meta={"source": member})
