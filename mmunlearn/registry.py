"""Name → component registries with helpful errors (one source of truth per name)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Components register themselves where they are defined: `@TEACHERS.register("vgid")`."""

    def __init__(self, kind: str, base: type | None = None) -> None:
        """`base`: the contract every registered class must subclass (a teacher's, a loss's)."""
        self.kind = kind
        self.base = base
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            if self.base is not None and not (
                isinstance(item, type) and issubclass(item, self.base)
            ):
                raise TypeError(
                    f"{self.kind} {name!r}: {item!r} must subclass "
                    f"{self.base.__module__}.{self.base.__qualname__} (its declared contract)"
                )
            self._items[name] = item
            return item

        return decorate

    def unregister(self, name: str) -> T:
        """Remove `name` (a component registered for a while, e.g. by a test); returns it."""
        self.get(name)  # an unknown name fails with the known ones
        return self._items.pop(name)

    def get(self, name: str) -> T:
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}{hint} (known: {known})")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def in_order(self) -> list[str]:
        """The names in registration order (e.g. the order a report shows its metrics in)."""
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items
