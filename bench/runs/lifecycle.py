"""Calling the lifecycle hooks of a run, and the loggers that implement them.

Loggers are components of kind ``logger`` (``bench run --logger NAME``). For one run, each is
built from its factory, wrapped so that an exception inside it is reported once and switches
that logger off (a broken dashboard must never cost a training run), and registered with the
registry's plugin manager. The hooks are then called through ``pm.hook.NAME(...)``, so
``tryfirst``/``trylast`` and hook wrappers work as pluggy documents them. Only the main process
of a DDP run calls them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from bench.core.config import ComponentSpec
from bench.errors import BenchError, ConfigError

log = logging.getLogger("bench")
LIFECYCLE_HOOKS = ("on_run_start", "on_epoch_end", "on_run_end", "on_result_written")
# Always on: the run directory's log.txt and history.png are loggers like any other.
ALWAYS_ON = ("log_txt", "history_png")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def build_logger(registry: Any, spec: ComponentSpec) -> Any:
    """Build one logger; a missing package or bad option becomes a one-line ConfigError."""
    try:
        return registry.build("logger", spec.name, spec.options)
    except BenchError:
        raise
    except ImportError as exc:
        raise ConfigError(f"logger {spec.name!r} cannot start: {_one_line(exc)}; install the package it needs "
                          f"(e.g. pip install 'bench[{spec.name}]')") from None
    except Exception as exc:  # a logger's own bug, reported before any training
        raise ConfigError(f"logger {spec.name!r} cannot start: {_one_line(exc)}") from None


def check_loggers(registry: Any, specs: Iterable[ComponentSpec]) -> None:
    """Build every logger once and drop it: fails before training if one cannot start."""
    for spec in specs:
        build_logger(registry, spec)


class _Guard:
    """A logger's hook implementations, each catching what the logger raises."""

    def __init__(self, name: str, logger: Any, on_error: Callable[[str, str, BaseException], None]) -> None:
        self.name = name
        self.failed = False
        for hook in LIFECYCLE_HOOKS:
            method = getattr(logger, hook, None)
            opts = getattr(method, "bench_impl", None)
            if method is None or opts is None:
                continue
            if opts.get("hookwrapper") or opts.get("wrapper"):
                setattr(self, hook, method)  # a wrapper's generator protocol is its own business
                continue
            setattr(self, hook, self._guarded(hook, method, on_error))

    def _guarded(self, hook: str, method: Callable[..., Any],
                 on_error: Callable[[str, str, BaseException], None]) -> Callable[..., Any]:
        # functools.wraps keeps the signature (pluggy passes only the arguments it names) and
        # the bench_impl marker (tryfirst/trylast).
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.failed:
                return None
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                self.failed = True
                on_error(self.name, hook, exc)
                return None

        return call


class Lifecycle:
    """The hooks of one run. Use as a context manager: loggers are registered inside it only."""

    def __init__(self, pm: Any, loggers: dict[str, Any] | None = None) -> None:
        self.pm = pm
        self.guards = {name: _Guard(name, logger, self._report) for name, logger in (loggers or {}).items()}
        self._registered: list[Any] = []

    @classmethod
    def for_run(cls, registry: Any, specs: Iterable[ComponentSpec]) -> Lifecycle:
        """The always-on loggers plus ``specs``, built now (so a failure happens before training)."""
        chosen = [ComponentSpec(name) for name in ALWAYS_ON if name in registry.entries.get("logger", {})]
        chosen += [spec for spec in specs if spec.name not in ALWAYS_ON]
        return cls(registry.pm, {spec.name: build_logger(registry, spec) for spec in chosen})

    @staticmethod
    def _report(name: str, hook: str, exc: BaseException) -> None:
        log.warning("logger %s failed in %s and is off for the rest of this run: %s", name, hook, _one_line(exc))

    def __enter__(self) -> Lifecycle:
        for name, guard in self.guards.items():
            self.pm.register(guard, name=f"logger:{name}:{id(guard)}")
            self._registered.append(guard)
        return self

    def __exit__(self, *exc: Any) -> None:
        for guard in self._registered:
            self.pm.unregister(guard)
        self._registered.clear()

    # -- the hooks ---------------------------------------------------------------------------
    def run_start(self, **kwargs: Any) -> None:
        self.pm.hook.on_run_start(**kwargs)

    def epoch_end(self, **kwargs: Any) -> None:
        self.pm.hook.on_epoch_end(**kwargs)

    def run_end(self, **kwargs: Any) -> None:
        self.pm.hook.on_run_end(**kwargs)

    def result_written(self, **kwargs: Any) -> None:
        self.pm.hook.on_result_written(**kwargs)


class NoLifecycle:
    """What processes other than the main one get: every hook is a no-op."""

    def __enter__(self) -> NoLifecycle:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def run_start(self, **kwargs: Any) -> None: ...

    def epoch_end(self, **kwargs: Any) -> None: ...

    def run_end(self, **kwargs: Any) -> None: ...

    def result_written(self, **kwargs: Any) -> None: ...
