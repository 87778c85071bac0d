"""Records grouped by role, and the checks an unlearning run makes before it starts."""

from __future__ import annotations

from collections.abc import Iterable

from mmunlearn.data.example import ROLES, Example


def group_by_role(examples: Iterable[Example]) -> dict[str, list[Example]]:
    """Roles that occur, in the order of `ROLES`, each with its records in their original order."""
    groups: dict[str, list[Example]] = {role: [] for role in ROLES}
    for example in examples:
        groups[example.role].append(example)
    return {role: rows for role, rows in groups.items() if rows}


def check_unlearning_data(examples: Iterable[Example], source: str) -> None:
    """Raise ValueError when `examples` (read from `source`) cannot drive an unlearning run: no
    forget rows, no retain rows, or an entity that is both forgotten and kept."""
    groups = group_by_role(examples)
    for role in ("forget", "retain"):
        if role not in groups:
            raise ValueError(
                f"no rows with role {role!r} in {source}; an unlearning run needs at least one"
            )
    forget_ids = {}
    for example in groups["forget"]:
        forget_ids.setdefault(example.entity, example.id)
    for role in ("retain", "neighbor"):
        for example in groups.get(role, []):
            if example.entity in forget_ids:
                raise ValueError(
                    f"{source}: entity {example.entity!r} is in both forget (id "
                    f"{forget_ids[example.entity]!r}) and {role} (id {example.id!r}); an entity "
                    "must be either forgotten or kept"
                )
