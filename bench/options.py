"""Option bounds for plugin factories: ``Annotated[float, Gt(0)]`` and friends (public, stable).

A component's options are the keyword arguments of its factory; the annotation says what a value
must be, and bench checks it (``bench.core.option_values``) before the factory is called, so plugins
do not repeat the checks. These four bounds are the ones bench defines; any object with the same
``gt``/``ge``/``lt``/``le`` attribute (e.g. from the ``annotated-types`` package) works too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Ge", "Gt", "Le", "Lt"]


@dataclass(frozen=True)
class Gt:
    """``Annotated[float, Gt(0)]``: the value must be greater than ``gt``."""

    gt: float


@dataclass(frozen=True)
class Ge:
    """``Annotated[int, Ge(1)]``: the value must be at least ``ge``."""

    ge: float


@dataclass(frozen=True)
class Lt:
    """``Annotated[float, Lt(1)]``: the value must be less than ``lt``."""

    lt: float


@dataclass(frozen=True)
class Le:
    """``Annotated[float, Le(1)]``: the value must be at most ``le``."""

    le: float
