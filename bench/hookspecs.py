"""Hook specifications: the whole plugin contract of ``bench``.

A plugin is any module that an entry point in the group ``bench`` names. It implements one or
more of the hooks below with the :data:`bench.hookimpl` marker. The built-in components are
plugins like any other: they are registered through bench's own ``[project.entry-points.bench]``.

Every hook receives a ``register(name, factory)`` callback. ``factory(**options)`` must build a
fresh component; its keyword arguments are the options users set with
``--set NAME.KEY=VALUE``. The harness reads the factory's signature to validate those keys, so
give every option a keyword argument with a default instead of ``**kwargs``.

Keep the plugin module's top-level imports light (no torch, no transformers): ``bench ls``
imports every plugin and should answer in about two seconds. Import heavy modules inside the
factory.

Component contracts
-------------------
Audio encoder
    A ``torch.nn.Module`` with ``sample_rate: int``, ``embed_dim: int`` and
    ``forward(waveforms, lengths) -> Tensor[B, embed_dim]``. ``waveforms`` is a float ``[B, T]``
    tensor: mono, in [-1, 1], zero-padded, already resampled by the harness to ``sample_rate``;
    ``lengths`` is a long ``[B]`` tensor of valid samples. Optional attributes:
    ``pretrained: bool`` (uses the pretrained learning rate; default False),
    ``crop_seconds: float`` (random training crop; default 10) and
    ``max_seconds: float`` (evaluation clips are cut there; default 30).
Text encoder
    A ``torch.nn.Module`` with ``embed_dim: int`` and
    ``forward(captions: list[str]) -> Tensor[B, embed_dim]``. Tokenisation and moving the
    tokens to the module's device happen inside. Optional ``pretrained: bool``.
Loss
    A ``torch.nn.Module`` with ``forward(audio, text, batch) -> scalar tensor``. ``audio`` and
    ``text`` are the L2-normalised projected embeddings ``[B, D]``; ``batch.audio_ids`` is a
    LongTensor ``[B]`` where equal ids mean the same recording. Under DDP the harness gathers
    the global batch before calling the loss, so a loss never talks to torch.distributed.
    A loss that needs stage-1 teachers sets ``requires_teachers = True`` and then finds
    ``batch.teacher_audio`` and ``batch.teacher_text``, both ``[M, B, D]``.
Dataset
    An object with ``split(name)`` for name in ``"train"``, ``"val"``, ``"test"`` that returns a
    sequence of items. An item is any object with ``audio_id: str``,
    ``audio_path: str | os.PathLike`` and ``captions: Sequence[str]``. This is duck-typed: a
    plugin need not import bench's classes.

    Optional metadata, read when datasets are combined (``--dataset a+b``, see
    :func:`bench.combined.check_combination`):
    ``has_eval_splits: bool`` (default True; False for a training-only dataset, which may not be
    last); ``contains_eval_audio_of: tuple[str, ...]`` (names of datasets whose evaluation audio
    this training split contains, e.g. WavCaps declares ``("clotho",)``); ``leakage_excluded:
    bool`` (True once that audio was removed or the user accepted the leak; until then the
    combination is refused) and ``leakage_advice: str`` (the option that fixes it).
Logger
    Any object whose methods implement the lifecycle hooks below with :data:`bench.hookimpl`
    (it may implement only some, and take only some of their arguments). It is registered with
    the plugin manager for the duration of one run, on the main process only. A logger that
    cannot start (package missing, bad option) raises from its factory, before training; one
    that raises during the run is reported once and switched off, the run goes on.

Lifecycle hooks
---------------
``on_run_start``, ``on_epoch_end``, ``on_run_end`` and ``on_result_written`` are called through
pluggy's hook caller, so ``tryfirst``/``trylast`` and wrappers work. A plugin module may
implement them too; it then sees every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("bench")


class Register(Protocol):
    """The callback every ``register_*`` hook receives."""

    def __call__(self, name: str, factory: Callable[..., Any]) -> None: ...


@hookspec
def register_audio_encoders(register: Register) -> None:
    """Register audio encoders: ``register("name", factory)``.

    ``factory(**options)`` returns an ``nn.Module`` following the audio-encoder contract above.
    """


@hookspec
def register_text_encoders(register: Register) -> None:
    """Register text encoders: ``register("name", factory)``.

    ``factory(**options)`` returns an ``nn.Module`` following the text-encoder contract above.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register training losses: ``register("name", factory)``.

    ``factory(**options)`` returns an ``nn.Module`` following the loss contract above.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets: ``register("name", factory)``.

    ``factory(**options)`` returns an object with ``split(name)`` as described above.
    """


@hookspec
def register_loggers(register: Register) -> None:
    """Register loggers: ``register("name", factory)``, chosen with ``bench run --logger name``.

    ``factory(**options)`` (options from ``--set name.KEY=VALUE``) returns an object implementing
    lifecycle hooks. Check that its package imports and its options are valid in the factory:
    that is what fails before training.
    """


@hookspec
def on_run_start(config: Any, run_dir: Path, resumed: bool) -> None:
    """A run starts (or resumes) in ``run_dir``; ``config`` is its :class:`bench.config.RunConfig`."""


@hookspec
def on_epoch_end(run_dir: Path, epoch: int, epochs: int, train_loss: float, lr: list[float],
                 val: dict[str, Any], timings: dict[str, float], best: bool) -> None:
    """An epoch ended (``epoch`` counts from 1).

    ``lr``: the learning rate of each optimizer group; ``val``: validation metrics
    (``val["t2a"]["mAP@10"]``, ...); ``timings``: ``train_s``, ``eval_s``, ``epoch_s``;
    ``best``: this epoch's checkpoint is the best so far.
    """


@hookspec
def on_run_end(config: Any, run_dir: Path, result: dict[str, Any] | None, error: BaseException | None) -> None:
    """A run ended: ``result`` when it finished (test metrics in ``result["metrics"]``), else ``error``."""


@hookspec
def on_result_written(path: Path, result: dict[str, Any]) -> None:
    """The result JSON of a finished run was written to ``path``."""
