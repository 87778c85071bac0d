"""The one record type every data source is turned into (shared/DESIGN.md, "Data")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("forget", "retain", "neighbor", "general", "test", "holdout", "practice")
MODALITIES = ("image", "text")


@dataclass(frozen=True)
class Example:
    """One question/answer pair about one entity, in one role.

    `image` is a path to an image file (image+text question) or None (text-only question).
    `meta` carries source-specific extras: `modality`, `relation` (direct | indirect for
    neighbours), `fact` (which attribute is asked), `template`, `variant`.
    """

    id: str
    entity: str
    role: str
    question: str
    answer: str
    image: str | None = None
    alt_answers: tuple[str, ...] = ()
    paraphrases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Example {self.id!r}: role={self.role!r}; expected one of {ROLES}")

    @property
    def modality(self) -> str:
        return "image" if self.image is not None else "text"
