"""Records grouped by role, the checks an unlearning run makes before it starts, and the two
deterministic carvings of evaluation data: held-out rows and the validation half.

- **Held out** (`is_heldout`): half of the neighbour and general-knowledge rows. Samplers that
  keep neighbours (MELU's regimes, `cyclic`) draw from the other half; only evaluation sees the
  held-out half, so "neighbours kept" is measured on questions no term trained on.
- **Validation** (`is_validation`): half of every split, for choosing settings and checkpoints
  (`mmunlearn sweep`, `train.keep_best`); the other half is the test half a final report reads.

Both are decided per row by a hash of its id, so a row lands on the same side whatever else is
loaded with it (a text-only subset, one role, another loader's order).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from mmunlearn.data.example import ROLES, Example

# Roles whose rows are split into a retain part (samplers may train on it) and a held-out part.
HELDOUT_ROLES = ("neighbor", "general")


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


def _in_half(key: str, salt: str) -> bool:
    """A stable coin flip for `key`: the low bit of SHA-256("salt:key")."""
    return bool(hashlib.sha256(f"{salt}:{key}".encode()).digest()[0] & 1)


def is_heldout(example: Example) -> bool:
    """Whether a neighbour or general row is held out from training (only evaluation sees it).

    The data's own `meta.heldout` (true or false) wins; otherwise half of the rows, by a hash of
    the row's id. Rows of other roles are never held out here.
    """
    if example.role not in HELDOUT_ROLES:
        return False
    flag = example.meta.get("heldout")
    if flag is None:
        return _in_half(example.id, "heldout")
    if not isinstance(flag, bool):
        raise TypeError(
            f"Example {example.id!r}: meta.heldout={flag!r}; expected true, false or absent"
        )
    return flag


def trainable(by_role: dict[str, list[Example]]) -> dict[str, list[Example]]:
    """`by_role` without the held-out rows of the roles in `HELDOUT_ROLES` (what a sampler may
    draw from). Keys other than those roles (e.g. plain fine-tuning's `train`) pass unchanged."""
    return {
        role: [ex for ex in rows if not is_heldout(ex)] if role in HELDOUT_ROLES else rows
        for role, rows in by_role.items()
    }


def is_validation(example: Example) -> bool:
    """Whether a row is in the validation half (else the test half). A paraphrased test row
    (`meta.source_id`) goes with the question it paraphrases."""
    return _in_half(str(example.meta.get("source_id", example.id)), "validation")
