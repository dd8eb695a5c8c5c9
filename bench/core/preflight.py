"""Check a whole ``bench run`` request before torch is imported or any model is built.

A new user's mistakes (a missing dataset root, weights that are not on disk, a text encoder that
cannot be downloaded, ``--epochs 0``, a logger without its package) used to arrive one at a time,
each after torch was imported and an 86 M-parameter model was built. Here every component of the
request is checked in one pass and EVERY problem is reported in one list, one line each.

What is checked: component names, option keys and value types (the factories' annotations,
:mod:`bench.options`), ``train.*`` settings (``epochs >= 1`` among them), ``--init``'s checkpoint,
and whatever each factory's optional torch-free ``preflight(**options) -> list[str]`` attribute
reports (dataset roots and files, weights files, text-encoder files, logger packages). The
registry does not need the attribute: a factory without one is only checked when it is built.

Nothing here imports torch, numpy or a plugin's heavy modules.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.core.config import DatasetSpec, TrainSettings
from bench.core.option_values import coerce_field, coerce_options
from bench.core.registry import split_shared
from bench.errors import BenchError, ConfigError

log = logging.getLogger("bench")


class PreflightError(ConfigError):
    """Every problem of a request; ``str()`` lists them one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(problems) == 1:  # one problem stays the one line it always was
            super().__init__(problems[0])
            return
        super().__init__(f"{len(problems)} problems in this configuration, nothing was started:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def missing_package(module: str, install: str) -> list[str]:
    """For a factory's ``preflight``: ``[]`` when ``module`` is installed, else how to install it.

    The module is found, not imported, so the check costs nothing even for packages that take
    seconds to import. ``install`` is what to pass to pip, e.g. ``"'bench[wandb]'"``.
    """
    if importlib.util.find_spec(module) is None:
        return [f"needs the {module} package: pip install {install}"]
    return []


def factory_preflight(factory: Callable[..., Any]) -> Callable[..., list[str]] | None:
    """The factory's ``preflight`` attribute (a class factory may define it as a staticmethod)."""
    check = getattr(factory, "preflight", None)
    return check if callable(check) else None


def component_problems(registry: Any, kind: str, name: str, options: Mapping[str, Any]) -> list[str]:
    """Problems of one component: unknown name, bad option keys or values, its own preflight."""
    try:
        entry = registry.get(kind, name)
        resolved, shared = split_shared(kind, registry.resolve_options(kind, name, dict(options)))
        coerced = coerce_options(entry.factory, resolved, name)
    except BenchError as exc:
        return [_line(exc)]
    problems = _shared_problems(name, shared)
    check = factory_preflight(entry.factory)
    if check is None:
        return problems
    try:
        found = check(**coerced)
    except BenchError as exc:
        return [_line(exc)]
    except Exception as exc:  # a plugin's bug in its check must not hide the other problems
        log.warning("%s %r: its preflight check failed (%s: %s); it is checked when built instead",
                    kind.replace("_", " "), name, type(exc).__name__, exc)
        return problems
    return problems + [p if p.startswith(f"{name}") else f"{name}: {p}" for p in (found or [])]


def _shared_problems(name: str, shared: Mapping[str, Any]) -> list[str]:
    """Options bench implements for every component of a kind (``registry.SHARED_OPTIONS``)."""
    extra = shared.get("extra_captions")
    if extra and not Path(str(extra)).expanduser().is_file():
        return [f"{name}: --set {name}.extra_captions={extra}: file not found; pass a CSV with columns "
                f"file_name,caption (see docs/recipes.md)"]
    return []


def train_problems(values: Mapping[str, Any], flags: Mapping[str, str] | None = None) -> list[str]:
    """``train.KEY`` settings: unknown keys and bad values; ``flags`` names a key's flag (``--epochs``)."""
    problems = []
    for key, value in values.items():
        if key not in TrainSettings.keys():
            problems.append(f"unknown option train.{key}; valid keys: {', '.join(TrainSettings.keys())}")
            continue
        try:
            coerce_field(TrainSettings, key, value)
        except BenchError as exc:
            line = _line(exc)
            if flags and key in flags:  # say it in the words the user typed
                line = line.replace(f"--set train.{key}={value!r}", f"{flags[key]} {value}", 1)
                line = line.replace(f"--set train.{key}={value}", f"{flags[key]} {value}", 1)
            problems.append(line)
    return problems


def request_problems(
    registry: Any,
    *,
    datasets: Iterable[str],
    encoders: Iterable[str],
    text_encoders: Iterable[str],
    losses: Iterable[str],
    loggers: Iterable[str] = (),
    set_options: Mapping[str, Mapping[str, Any]],
    train_overrides: Mapping[str, Any],
    runs_dir: Path | str = "runs",
    init: str | None = None,
    flags: Mapping[str, str] | None = None,
) -> list[str]:
    """Every problem of a grid request, in a stable order (train settings, then component by component).

    ``flags`` maps the ``train_overrides`` keys that came from a command-line flag to that flag.
    """
    train = {**train_overrides, **set_options.get("train", {})}
    flags = {k: f for k, f in (flags or {}).items() if k not in set_options.get("train", {})}
    problems = train_problems(train, flags)
    used = {"train"}
    wanted: list[tuple[str, str]] = []
    for dataset in datasets:
        wanted.extend(("dataset", member) for member in DatasetSpec.members_of(dataset))
    wanted += [("audio_encoder", n) for n in encoders] + [("text_encoder", n) for n in text_encoders]
    wanted += [("loss", n) for n in losses] + [("logger", n) for n in loggers]
    seen: set[tuple[str, str]] = set()
    for kind, name in wanted:
        used.add(name)
        if (kind, name) not in seen:
            seen.add((kind, name))
            problems += component_problems(registry, kind, name, set_options.get(name, {}))
    for stray in sorted(set(set_options) - used):
        problems.append(f"--set {stray}.…: no component named {stray!r} in this run "
                        f"(components: {', '.join(sorted(used))})")
    if init:
        best = Path(runs_dir) / init / "best.pt"
        if not best.is_file():
            problems.append(f"--init {init}: {best} does not exist; pass a finished run under --runs-dir")
    return problems


def raise_if_problems(problems: list[str]) -> None:
    if problems:
        raise PreflightError(problems)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
