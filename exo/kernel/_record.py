"""A frozen, slotted record base for the hot-path types (dataclasses would import `inspect`: ~7 ms a hook)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~9 ms to import; mypy honours this name all the same
if TYPE_CHECKING:
    from typing import Any


class Frozen:
    """Immutable after __init__; equality, hash and repr over the names in `_fields`."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({body})"
