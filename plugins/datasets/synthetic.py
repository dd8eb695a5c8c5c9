"""The ``synthetic`` dataset: a procedural, offline, deterministic audio-caption benchmark.

Clips of 3 to 8 s (16 kHz mono) each hold 1 to 3 sound events of 15 types (low/mid/high tones,
rising/falling chirps, white/pink/brown noise bursts, slow/fast click trains, tremolo tone,
harmonic buzz, knock, siren, bell) over a quiet hiss, a mains hum or near silence. Each event is
quiet or loud, short or long, at the start, middle or end, and sounds one to four times; five
template captions per clip describe them with varied words, order and detail.

The dataset is written once to ``root`` (default ``$BENCH_CACHE/synthetic/<fingerprint>`` or
``~/.cache/bench/synthetic/<fingerprint>``) in ClothoV2's layout and read back with the Clotho
loader. The metadata CSVs also hold each clip's ground-truth events (see
:mod:`bench_plugins.datasets._synth_generate`). The same options always give byte-identical files.

The module top imports nothing heavy; numpy is imported by the factory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from bench import hookimpl
from bench.options import Ge
from bench.toolkit import attach_validation

Count = Annotated[int, Ge(1)]  # checked by the registry (bench.options)


@hookimpl
def register_datasets(register: Any) -> None:
    """Register the ``synthetic`` dataset."""
    register("synthetic", build_synthetic)


class SyntheticDataset:
    """A generated synthetic root read through the Clotho loader.

    ``split(name)`` for ``train``/``val``/``test`` returns the Clotho items (``audio_id`` is the
    wav name, ``captions`` its five captions, ``meta`` the metadata row, whose ``events`` field
    is the JSON list of ground-truth events). Other attributes are the Clotho dataset's.
    """

    name = "synthetic"

    def __init__(self, root: str | os.PathLike[str], on_error: str = "raise") -> None:
        from bench_plugins.datasets.clotho import ClothoDataset

        self.root = Path(root)
        self._clotho = ClothoDataset(self.root, on_error=on_error)

    def split(self, name: str) -> Any:
        """The items of split ``name`` (``train``, ``val`` or ``test``)."""
        return self._clotho.split(name)

    def events(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """Ground truth of split ``name``: ``audio_id -> list of event dicts``."""
        import json

        return {item.audio_id: json.loads(item.meta["events"]) for item in self.split(name)}

    def __getattr__(self, attr: str) -> Any:
        # Only called for attributes not found normally: defer to the Clotho dataset.
        if attr == "_clotho":
            raise AttributeError(attr)
        return getattr(self._clotho, attr)

    def __repr__(self) -> str:
        return f"SyntheticDataset(root={str(self.root)!r})"


def build_synthetic(n_train: Count = 1000, n_val: Count = 200, n_test: Count = 200, seed: int = 0,
                    root: str | None = None, on_error: Literal["raise", "skip"] = "raise",
                    workers: Annotated[int, Ge(0)] = 0,
                    min_duration: float = 0.01, min_sample_rate: int = 1000, max_sample_rate: int = 384000,
                    on_silence: Literal["error", "warn", "ignore"] = "warn",
                    on_leak: Literal["error", "warn"] = "error") -> SyntheticDataset:
    """Generate (or reuse from the cache) the synthetic dataset and return it.

    ``root``: where to write it (default: a cache directory named by the options' fingerprint).
    ``on_error`` is passed to the Clotho reader. ``workers``: rendering processes (0: automatic);
    it does not change the files.
    """
    from bench_plugins.datasets._synth_generate import default_root, fingerprint, generate

    if root in (None, ""):
        target = default_root(fingerprint(n_train, n_val, n_test, seed))
    else:
        target = Path(str(root)).expanduser()
    generate(target, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed, workers=workers,
             progress=True)
    return attach_validation(SyntheticDataset(target, on_error=on_error),
                             min_duration, min_sample_rate, max_sample_rate, on_silence, on_leak)
