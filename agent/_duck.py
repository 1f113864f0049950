"""Safe duck-typed access to objects the agent does not own (SDK responses, exceptions).

Everything here reads user objects whose properties may run arbitrary code and raise
anything. A telemetry read must never raise into user code, so every accessor swallows
failures and answers "absent"; only ``KeyboardInterrupt`` and ``SystemExit`` pass, since
those express the user's (or a signal's) intent to stop rather than a broken object.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Final

__all__ = [
    "LOGGER",
    "Shown",
    "field",
    "is_mapping",
    "non_negative_int",
    "path",
    "safe_repr",
    "seconds",
    "text",
]

LOGGER: Final = logging.getLogger("infermeter")
# A library logs only where the application routes it.
LOGGER.addHandler(logging.NullHandler())

# Plain values never carry usage, status codes or vectors: skip them without a lookup.
_SCALARS: Final = frozenset({str, bytes, bytearray, int, float, bool, complex, type(None)})


# type -> "is a Mapping"; the ABC check costs ~0.4 µs, a dict lookup ~0.05 µs. Bounded,
# since classes created at run time would otherwise accumulate.
_IS_MAPPING: dict[type, bool] = {}
_IS_MAPPING_LIMIT: Final = 4096


def is_mapping(obj: object) -> bool:
    """``isinstance(obj, Mapping)`` with a per-type cache."""
    cls = type(obj)
    return cls is dict or _is_mapping(cls, obj)


def _is_mapping(cls: type, obj: object) -> bool:
    known = _IS_MAPPING.get(cls)
    if known is None:
        known = isinstance(obj, Mapping)
        if len(_IS_MAPPING) >= _IS_MAPPING_LIMIT:
            _IS_MAPPING.clear()
        _IS_MAPPING[cls] = known
    return known


def field(obj: object, name: str) -> object:
    """``obj[name]`` for mappings, else ``obj.name``; None when absent or when access fails.

    Keys win for mappings (a dict subclass's ``values`` is a key, not the method); the
    per-class "is a mapping" answer is cached, so SDK objects pay one dict lookup."""
    cls = type(obj)
    if cls is dict:
        return obj.get(name)  # type: ignore[attr-defined]
    if cls in _SCALARS:
        return None
    try:
        mapping = _IS_MAPPING.get(cls)
        if mapping is None:
            mapping = _is_mapping(cls, obj)
        if mapping:
            return obj.get(name)  # type: ignore[attr-defined]
        return getattr(obj, name, None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a broken user property must read as "absent"
        LOGGER.debug("infermeter: could not read %r from a %s", name, cls.__name__)
        return None


def safe_repr(value: object, limit: int = 80) -> str:
    """A repr for log messages that cannot raise (user objects may break ``__repr__``)."""
    try:
        shown = repr(value)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a broken __repr__ must not break logging
        return f"<unprintable {type(value).__name__}>"
    return shown if len(shown) <= limit else shown[:limit] + "..."


class Shown:
    """A log argument showing ``safe_repr(value)``, computed only if the record is emitted
    (a debug line about a 100 kB string must cost nothing when debug is off)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return safe_repr(self.value)


def path(obj: object, *names: str) -> object:
    """``field`` along a path: ``path(exc, "response", "status_code")``."""
    for name in names:
        obj = field(obj, name)
        if obj is None:
            return None
    return obj


def non_negative_int(value: object) -> int | None:
    """A token count: a non-negative integer (or integral float); anything else is ignored."""
    if type(value) is int:
        return value if value >= 0 else None
    number: int | None = None
    try:
        if isinstance(value, float):
            if math.isfinite(value) and value.is_integer():
                number = int(value)
        elif not isinstance(value, bool) and value is not None:
            # numpy integers and other exact integer types implement __index__.
            index = getattr(type(value), "__index__", None)
            if index is not None:
                number = int(index(value))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a broken numeric type must read as "absent"
        return None
    return number if number is not None and number >= 0 else None


def seconds(value: object) -> float | None:
    """A non-negative finite duration in seconds (int or float); anything else is None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def text(value: object, limit: int = 256) -> str | None:
    """A short attribute string from a user value; None when it cannot be converted."""
    if value is None:
        return None
    if type(value) is str:
        result = value
    else:
        try:
            result = str(value)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - a broken __str__ must read as "absent"
            return None
    return result[:limit] if len(result) > limit else result
