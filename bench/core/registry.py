"""Plugin discovery and the component registry.

Plugins are modules named by entry points in the group ``bench``. Each is registered with a
pluggy ``PluginManager`` (so hook implementations are validated against
:mod:`bench.hookspecs`), and then each plugin's ``register_*`` hooks are called one plugin at a
time: a plugin that fails to import, raises inside a hook or registers a name that is already
taken is recorded as failed with a one-line error, and every other plugin keeps working.
A plugin that implements a hook bench does not define (a typo such as ``register_loss``) is
failed too, by pluggy's pending-hook check; one that registers nothing gets a warning.

:meth:`Registry.build` coerces options by the factory's annotations (:mod:`bench.options`) and
checks what the factory returns against its contract (:mod:`bench.contracts`), so that a wrong
component is one line naming its plugin, not a traceback inside the trainer.
"""

from __future__ import annotations

import difflib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from bench import hookspecs
from bench.contracts import check_component, component_label
from bench.core.option_values import coerce_options
from bench.errors import ConfigError

ENTRY_POINT_GROUP = "bench"
BUILTIN_DISTRIBUTION = "bench"
DISABLE_AUTOLOAD_ENV = "BENCH_DISABLE_PLUGIN_AUTOLOAD"

HOOK_OF_KIND = {
    "audio_encoder": "register_audio_encoders",
    "text_encoder": "register_text_encoders",
    "loss": "register_losses",
    "dataset": "register_datasets",
    "logger": "register_loggers",
    "model": "register_models",
    "launcher": "register_launchers",  # how a grid is run: local, torchrun, slurm (bench.runs.launchers)
}
# Options every component of a kind accepts because bench, not the plugin, implements them: they
# are validated and recorded like the factory's own, but never passed to the factory.
# ``dataset.extra_captions``: a CSV of captions added to the training split (bench.data.extra_captions);
# ``extra_captions_sha256``: its content hash, pinned by bench.core.config when a run is configured.
SHARED_OPTIONS: dict[str, tuple[str, ...]] = {"dataset": ("extra_captions", "extra_captions_sha256")}


def split_shared(kind: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the factory's options, bench's shared options)`` of a component's options."""
    shared = SHARED_OPTIONS.get(kind, ())
    return ({k: v for k, v in options.items() if k not in shared},
            {k: v for k, v in options.items() if k in shared})


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str

    def option_defaults(self) -> dict[str, Any]:
        """The factory's keyword options and their defaults (``inspect.Parameter.empty`` if none)."""
        return factory_options(self.factory)


@dataclass
class PluginStatus:
    """What happened when one plugin was loaded."""

    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None
    warning: str | None = None  # loaded, but probably not what its author meant (registers nothing)
    components: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def factory_options(factory: Callable[..., Any]) -> dict[str, Any]:
    """Keyword options a factory accepts, mapped to their defaults."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    options = {}
    for param in inspect.signature(target).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        options[param.name] = param.default
    return options


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Registry:
    """All components, by kind and name, plus the status of every plugin."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("bench")
        self.pm.add_hookspecs(hookspecs)
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in HOOK_OF_KIND}
        self.plugins: dict[str, PluginStatus] = {}

    # -- loading -----------------------------------------------------------------------------
    def load_entry_points(self, autoload: bool | None = None) -> None:
        """Import and register every entry point of the group ``bench``.

        Built-ins (bench's own distribution) always load first, so that a third-party plugin can
        never shadow a built-in name; with ``BENCH_DISABLE_PLUGIN_AUTOLOAD=1`` only they load.
        """
        if autoload is None:
            autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true", "yes")
        eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))

        def dist_name(ep: metadata.EntryPoint) -> str:
            return ep.dist.metadata["Name"] if ep.dist is not None else "?"

        builtins = [ep for ep in eps if dist_name(ep) == BUILTIN_DISTRIBUTION]
        others = [ep for ep in eps if dist_name(ep) != BUILTIN_DISTRIBUTION]
        seen: set[tuple[str, str]] = set()
        for ep in sorted(builtins, key=lambda e: e.name) + (
            sorted(others, key=lambda e: (dist_name(e), e.name)) if autoload else []
        ):
            # Editable installs can list the same entry point twice.
            if (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            dist = ep.dist
            self._load_plugin(
                name=ep.name,
                module_name=ep.value,
                distribution=dist_name(ep),
                version=dist.version if dist is not None else "?",
                loader=ep.load,
            )

    def register_module(self, module: Any, name: str, distribution: str = "local", version: str = "0") -> PluginStatus:
        """Register an already-imported plugin object (tests and notebooks use this)."""
        return self._load_plugin(name, getattr(module, "__name__", name), distribution, version, lambda: module)

    def _load_plugin(
        self, name: str, module_name: str, distribution: str, version: str, loader: Callable[[], Any]
    ) -> PluginStatus:
        status = PluginStatus(name=name, distribution=distribution, version=version, module=module_name)
        key = name if name not in self.plugins else f"{distribution}:{name}"
        self.plugins[key] = status
        try:
            plugin = loader()
            self.pm.register(plugin, name=key)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the harness down
            status.error = f"cannot load {module_name}: {_one_line(exc)}"
            return status
        unknown = self._unknown_hooks(key)
        if unknown:
            status.error = unknown
            self.pm.unregister(name=key)  # so that its hooks are never called
            return status
        for kind, hook_name in HOOK_OF_KIND.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != key:
                    continue
                try:
                    impl.function(register=self._registrar(kind, status))
                except (Exception, SystemExit) as exc:
                    status.error = f"{hook_name} failed: {_one_line(exc)}"
        if status.ok and not status.components:
            status.warning = self._registers_nothing(key)
        return status

    def _plugin_hooks(self, key: str) -> list[str]:
        """Names of the hooks (with or without a spec) that plugin ``key`` implements."""
        plugin = self.pm.get_plugin(key)
        callers = self.pm.get_hookcallers(plugin) or []
        return sorted(caller.name for caller in callers)

    def _unknown_hooks(self, key: str) -> str | None:
        """A one-line error if plugin ``key`` implements a hook that no hookspec defines.

        pluggy accepts such implementations at registration (the spec could come later) and
        reports them in :meth:`pluggy.PluginManager.check_pending`; bench's specs are all added
        up front, so an unknown name is a typo.
        """
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError:
            pass
        else:
            return None
        known = sorted(name for name in vars(self.pm.hook) if not name.startswith("_")
                       and getattr(self.pm.hook, name).has_spec())
        for name in self._plugin_hooks(key):
            caller = getattr(self.pm.hook, name)
            if caller.has_spec() or all(impl.optionalhook for impl in caller.get_hookimpls()):
                continue
            hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; bench's hooks are {', '.join(known)}"
            return f"implements unknown hook {name!r}{suggestion}"
        return None

    def _registers_nothing(self, key: str) -> str | None:
        """A warning for a plugin that adds no component and implements no other hook."""
        hooks = self._plugin_hooks(key)
        if not hooks:
            return "registers nothing: the module has no @bench.hookimpl functions"
        if all(name in HOOK_OF_KIND.values() for name in hooks):
            return f"registers nothing: {', '.join(hooks)} never called register(name, factory)"
        return None  # e.g. a plugin on the lifecycle hooks only

    def _registrar(self, kind: str, status: PluginStatus) -> Callable[[str, Callable[..., Any]], None]:
        def register(name: str, factory: Callable[..., Any]) -> None:
            if not isinstance(name, str) or not name or not callable(factory):
                raise TypeError(f"register() needs a name and a callable factory, got {name!r}, {factory!r}")
            existing = self.entries[kind].get(name)
            if existing is not None:
                status.error = (
                    f"duplicate {kind} name {name!r}: already provided by "
                    f"{existing.distribution} {existing.version} (plugin {existing.plugin}); rename it"
                )
                return
            self.entries[kind][name] = Entry(kind, name, factory, status.name, status.distribution, status.version)
            status.components.append((kind, name))

        return register

    # -- lookup ------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name``, or a ConfigError with the choices and a did-you-mean hint."""
        self._check_kind(kind)
        entry = self.entries[kind].get(name)
        if entry is not None:
            return entry
        label = kind.replace("_", " ")
        broken = self.plugins.get(name)
        if broken is not None and not broken.ok:
            raise ConfigError(
                f"{label} {name!r} comes from plugin {name!r} ({broken.distribution} {broken.version}), "
                f"which failed to load: {broken.error}"
            )
        available = self.names(kind)
        hint = difflib.get_close_matches(name, available, n=1, cutoff=0.5)
        message = f"unknown {label} {name!r}"
        if hint:
            message += f"; did you mean {hint[0]!r}?"
        message += f" Available: {', '.join(available) or '(none)'}."
        failed = [f"{p.name} ({p.error})" for p in self.plugins.values() if not p.ok]
        if failed:
            message += f" Failed plugins (see `bench ls`): {'; '.join(failed)}."
        raise ConfigError(message)

    def resolve_options(self, kind: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """Validate option keys against the factory signature; return defaults merged with options."""
        entry = self.get(kind, name)
        known = entry.option_defaults()
        unknown = sorted(set(options) - set(known) - set(SHARED_OPTIONS.get(kind, ())))
        if unknown:
            valid = ", ".join(sorted([*known, *SHARED_OPTIONS.get(kind, ())])) or "(none)"
            hint = difflib.get_close_matches(unknown[0], list(known), n=1)
            extra = f" Did you mean {name}.{hint[0]}?" if hint else ""
            raise ConfigError(
                f"unknown option {name}.{unknown[0]} for {kind.replace('_', ' ')} {name!r}.{extra} Valid keys: {valid}."
            )
        resolved = {k: v for k, v in known.items() if v is not inspect.Parameter.empty}
        resolved.update(options)
        missing = sorted(k for k, v in known.items() if v is inspect.Parameter.empty and k not in options)
        if missing:
            raise ConfigError(f"{kind.replace('_', ' ')} {name!r} needs --set {name}.{missing[0]}=VALUE")
        return resolved

    def build(self, kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
        """Build the component ``name`` of ``kind``: options coerced, the result's contract checked."""
        entry = self.get(kind, name)
        options = dict(options or {})
        self.resolve_options(kind, name, options)  # unknown keys first, then their values
        options = coerce_options(entry.factory, split_shared(kind, options)[0], name)
        try:
            built = entry.factory(**options)
        except ValueError as exc:
            # Factories reject bad option values with ValueError; that is a user error, not a bug.
            raise ConfigError(
                f"{component_label(kind, name, entry.distribution, entry.version)}: {_one_line(exc)}"
            ) from exc
        return check_component(kind, name, built, entry.distribution, entry.version)

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in HOOK_OF_KIND:
            raise ConfigError(f"unknown component kind {kind!r}; use one of {', '.join(HOOK_OF_KIND)}")


_REGISTRY: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        registry = Registry()
        registry.load_entry_points()
        _REGISTRY = registry
    return _REGISTRY


def plugin_distributions(used: dict[str, str], registry: Registry | None = None) -> dict[str, dict[str, str]]:
    """Provenance for the components of a run: ``{kind: {name, plugin, distribution, version}}``.

    ``registry`` defaults to the process-wide one.
    """
    registry = registry or get_registry()
    out = {}
    for kind, name in used.items():
        entry = registry.entries.get(kind, {}).get(name)
        if entry is not None:
            out[kind] = {"name": name, "plugin": entry.plugin, "distribution": entry.distribution,
                         "version": entry.version}
    return out


if __name__ == "__main__":  # pragma: no cover - debugging aid
    reg = get_registry()
    for status in reg.plugins.values():
        print(status, file=sys.stderr)
