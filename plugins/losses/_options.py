"""Light option checks shared by the loss factories (no torch: ``bench ls`` imports the plugins)."""

from __future__ import annotations

import math

from bench.errors import ConfigError


def positive_float(loss: str, key: str, value: object) -> float:
    """Return ``value`` as a finite float > 0, else raise a one-line :class:`ConfigError`."""
    number = finite_float(loss, key, value)
    if number <= 0.0:
        raise ConfigError(f"{loss}: {key}={value!r} must be > 0; set e.g. --set {loss}.{key}=0.05")
    return number


def nonnegative_float(loss: str, key: str, value: object) -> float:
    """Return ``value`` as a finite float >= 0, else raise a one-line :class:`ConfigError`."""
    number = finite_float(loss, key, value)
    if number < 0.0:
        raise ConfigError(f"{loss}: {key}={value!r} must be >= 0")
    return number


def finite_float(loss: str, key: str, value: object) -> float:
    """Return ``value`` as a finite float, else raise a one-line :class:`ConfigError`."""
    if isinstance(value, bool):
        raise ConfigError(f"{loss}: {key}={value!r} must be a number, not a boolean")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{loss}: {key}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{loss}: {key}={value!r} must be finite")
    return number


def boolean(loss: str, key: str, value: object) -> bool:
    """Return ``value`` as a bool (accepts true/false/1/0/yes/no strings), else raise ConfigError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    raise ConfigError(f"{loss}: {key}={value!r} must be true or false")


def choice(loss: str, key: str, value: object, valid: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise ConfigError listing them."""
    if isinstance(value, str) and value in valid:
        return value
    raise ConfigError(
        f"{loss}: {key}={value!r} is not valid; use one of: {', '.join(valid)}"
    )
