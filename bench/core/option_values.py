"""Option values: parsed from ``--set`` text and coerced to the type a factory annotates, in one place.

Every option of a component is a keyword argument of its factory. The factory's annotation says
what the value must be, and this module is the only layer that checks it (plugins do not repeat
the checks). Supported annotations: ``bool``, ``int``, ``float``, ``str``, ``pathlib.Path``,
``X | None``, ``Literal[...]``, ``list[X]``/``tuple[X, ...]``, and ``Annotated[X, Gt(0)]`` style
bounds (:class:`Gt`, :class:`Ge`, :class:`Lt`, :class:`Le`, or any object with the same
``gt``/``ge``/``lt``/``le`` attribute as the ``annotated-types`` package defines). An option without
an annotation is coerced to the type of its default, as before.

A bad value is one line: ``--set triplet.negatives='hardest': expected one of 'random', 'full',
'semihard', 'hard'``. :class:`TrainSettings <bench.core.config.TrainSettings>` fields go through the
same code (:func:`coerce_field`), driven by the dataclass annotations.

No torch here: ``bench ls`` and config parsing import this module.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import types
import typing
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, Literal, Union

from bench.errors import ConfigError
from bench.options import Ge, Gt, Le, Lt  # noqa: F401  (the public bounds)

EMPTY = inspect.Parameter.empty

_BOUNDS = (("gt", ">", lambda v, b: v > b), ("ge", ">=", lambda v, b: v >= b),
           ("lt", "<", lambda v, b: v < b), ("le", "<=", lambda v, b: v <= b))


# -- command-line text ------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: JSON scalars and lists, ``none``/``true``/``false``, else a string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


class RawValue(str):
    """Text of a ``--set`` value, parsed only once the option's type is known."""


def parse_set_options(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["passt.pretrained=false", ...]`` -> ``{"passt": {"pretrained": RawValue("false")}}``.

    Values stay text until :func:`coerce_option` knows the option's type.
    """
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, value = pair.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise ConfigError(f"--set {pair!r}: expected NAME.KEY=VALUE, e.g. --set passt.pretrained=false")
        out.setdefault(name, {})[key] = RawValue(value)
    return out


# -- coercion by the type of the default (options without an annotation) -------------------------
def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def coerce(value: Any, default: Any, label: str) -> Any:
    """Coerce a value to the type of the option's default, with a one-line error.

    Used for options that carry no annotation. Command-line text for a string option is kept
    verbatim (``root=1.10`` stays ``"1.10"``, ``amp=off`` stays ``"off"``); for other options it is
    parsed first (see :func:`parse_value`).
    """
    if isinstance(value, RawValue):
        if isinstance(default, str):
            return str(value)
        value = parse_value(value)
    if value is None or default is None or default is EMPTY:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            raise ValueError
        if isinstance(default, int) and not isinstance(value, bool):
            return _to_int(value)
        if isinstance(default, float) and not isinstance(value, bool):
            return float(value)
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError):
        name = type(default).__name__
        raise ConfigError(f"--set {label}={value!r}: expected {_article(name)} {name} like {default!r}") from None
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        return int(value)
    if isinstance(value, str):
        value = value.strip()
    return int(value)


# -- coercion by annotation ---------------------------------------------------------------------
class _Mismatch(Exception):
    """The value does not fit the annotation; ``expected`` says what would."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def describe(annotation: Any) -> str:
    """Words for what an annotation accepts (``"a float > 0"``, ``"one of 'a', 'b'"``)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "none"
    if origin is typing.Annotated:
        base, *meta = args
        bounds = [f"{sign} {getattr(m, attr):g}" for m in meta for attr, sign, _ in _BOUNDS if hasattr(m, attr)]
        return describe(base) + (" " + " and ".join(bounds) if bounds else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin in (list, tuple):
        return "a comma-separated list"
    if isinstance(annotation, type):
        if issubclass(annotation, PurePath):
            return "a path"
        return f"{_article(annotation.__name__)} {annotation.__name__}"
    return str(annotation)


def _coerce_to(value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation``; raises :class:`_Mismatch`. ``RawValue`` is text."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in (Any, EMPTY) or annotation is object:
        return parse_value(value) if isinstance(value, RawValue) else value
    if origin is typing.Annotated:
        base, *meta = args
        try:
            out = _coerce_to(value, base)
        except _Mismatch:
            raise _Mismatch(describe(annotation)) from None
        if out is not None:
            for m in meta:
                for attr, _, ok in _BOUNDS:
                    if hasattr(m, attr) and not ok(out, getattr(m, attr)):
                        raise _Mismatch(describe(annotation))
        return out
    if annotation is type(None):
        if value is None or (isinstance(value, RawValue) and parse_value(value) is None):
            return None
        raise _Mismatch("none")
    if origin in (Union, types.UnionType):
        # None first (``none`` on the command line), then the arms, text last so that
        # ``int | str`` still turns "3" into 3.
        arms = sorted(args, key=lambda a: (a is not type(None), a is str))
        for arm in arms:
            try:
                return _coerce_to(value, arm)
            except _Mismatch:
                continue
        raise _Mismatch(describe(annotation))
    if origin is Literal:
        candidates = [value]
        if isinstance(value, RawValue):
            candidates = [str(value), parse_value(value)]
        for candidate in candidates:
            for choice in args:
                if candidate == choice and type(candidate) is type(choice):
                    return choice
        raise _Mismatch(describe(annotation))
    if origin in (list, tuple):
        item = args[0] if args else Any
        if isinstance(value, RawValue):
            value = parse_value(value)
        if isinstance(value, str):
            value = [RawValue(part.strip()) for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]
        items = [_coerce_to(v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        parsed = parse_value(value) if isinstance(value, RawValue) else value
        if isinstance(parsed, bool):
            return parsed
        raise _Mismatch("true or false")
    if annotation is int:
        parsed = parse_value(value) if isinstance(value, RawValue) else value
        try:
            return _to_int(parsed)
        except (TypeError, ValueError):
            raise _Mismatch("an int") from None
    if annotation is float:
        parsed = parse_value(value) if isinstance(value, RawValue) else value
        if isinstance(parsed, bool):
            raise _Mismatch("a float")
        try:
            number = float(parsed)
        except (TypeError, ValueError):
            raise _Mismatch("a float") from None
        if math.isnan(number):
            raise _Mismatch("a float (not NaN)")
        return number
    if annotation is str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch("a string")
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        if isinstance(value, (str, os.PathLike)) and os.fspath(value):
            return annotation(os.fspath(value))
        raise _Mismatch("a path")
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _Mismatch(describe(annotation))
    return value  # an annotation we do not understand: leave the value to the factory


def coerce_option(value: Any, annotation: Any, default: Any, label: str) -> Any:
    """Coerce one option value; ``annotation`` may be ``EMPTY`` (then the default's type decides)."""
    if annotation is EMPTY or annotation is Any:
        return coerce(value, default, label)
    if value is None and default is None:
        return None  # an optional option left unset
    try:
        return _coerce_to(value, annotation)
    except _Mismatch as exc:
        raise ConfigError(f"--set {label}={value!r}: expected {exc.expected}") from None


def option_types(factory: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """``{option: (annotation, default)}`` of a factory's keyword options.

    String annotations (``from __future__ import annotations``) are resolved in the factory's
    module; if that fails the options count as unannotated (coerced by their defaults).
    """
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001  a forward reference the module cannot resolve: fall back to the defaults
        hints = {}
    out = {}
    for param in inspect.signature(target).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        out[param.name] = (hints.get(param.name, EMPTY), param.default)
    return out


def coerce_options(factory: Callable[..., Any], options: dict[str, Any], name: str) -> dict[str, Any]:
    """Every option in ``options`` coerced to the factory's annotation; unknown keys pass through.

    ``name`` is the component's name, for the ``--set NAME.KEY=...`` in messages.
    """
    types_ = option_types(factory)
    out = {}
    for key, value in options.items():
        annotation, default = types_.get(key, (EMPTY, EMPTY))
        out[key] = coerce_option(value, annotation, default, f"{name}.{key}")
    return out


def coerce_field(cls: type, key: str, value: Any, prefix: str = "train") -> Any:
    """Coerce ``value`` for the dataclass field ``cls.key`` (e.g. ``TrainSettings``) by its annotation."""
    import dataclasses

    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    default = fields[key].default if key in fields else EMPTY
    return coerce_option(value, hints.get(key, EMPTY), default, f"{prefix}.{key}")


def jsonable_options(options: dict[str, Any]) -> dict[str, Any]:
    """Paths as text, tuples as lists: what a run's config file stores."""
    def plain(value: Any) -> Any:
        if isinstance(value, PurePath):
            return os.fspath(value)
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in options.items()}


def component_options(registry: Any, kind: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options of component ``name`` with keys checked against the factory and values coerced.

    Paths are stored as text so that a run's configuration stays JSON.
    """
    entry = registry.get(kind, name)
    registry.resolve_options(kind, name, options)  # raises on unknown keys
    return jsonable_options(coerce_options(entry.factory, options, name))
