"""Hook specifications: the hooks a ``bench`` plugin implements (contracts: :mod:`bench.contracts`).

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

Optional cheap check: a factory may carry an attribute ``preflight(**options) -> list[str]``
(``build_x.preflight = check_x``). ``bench run`` calls it with the factory's resolved options
before torch is imported or anything is built, for every component of the request, and reports
all the problems together, one line each (:mod:`bench.core.preflight`). Return one line per problem
(a missing root, weights or package, with the fix) and do nothing slow or heavy there: no
torch, no downloads. The factory must still check what it needs; the preflight only makes a
mistake arrive sooner and together with the others.

Component contracts
-------------------
The audio encoder, text encoder, loss, dataset, item and batch contracts are the Protocol
classes of :mod:`bench.contracts`, with their documentation; the registry checks every built
component against them (:func:`bench.contracts.check_component`), and option values against
the factory's annotations (:mod:`bench.options`: ``Literal[...]``, ``X | None``, ``Annotated``
bounds). What follows is the optional metadata a dataset may declare, and the logger contract.

Dataset
    Optional metadata, read when datasets are combined (``--dataset a+b``, see
    :func:`bench.data.combined.check_combination`):
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

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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
def register_models(register: Register) -> None:
    """Register finished retrieval models: ``register("name", factory)``, scored by ``bench eval --model name``.

    ``factory(**options)`` returns an object following :class:`bench.contracts.RetrievalModel`
    (``sample_rate``, ``embed_audio(waveforms, lengths)``, ``embed_text(captions)``). A model
    whose weights are missing fails in the factory, with how to supply them, before any data work.
    """


@hookspec
def register_launchers(register: Register) -> None:
    """Register launchers: ``register("name", factory)``, chosen with ``bench run --launcher name``.

    ``factory(**options)`` (options from ``--set name.KEY=VALUE``) returns an object with
    ``launch(configs, request) -> list[dict] | None``; the contract is in :mod:`bench.runs.launchers`.
    """


@hookspec
def on_run_start(config: Any, run_dir: Path, resumed: bool) -> None:
    """A run starts (or resumes) in ``run_dir``; ``config`` is its :class:`bench.core.config.RunConfig`."""


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
