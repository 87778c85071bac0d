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
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from mmunlearn.data.example import ROLES, Example

# Roles whose rows are split into a retain part (samplers may train on it) and a held-out part.
HELDOUT_ROLES = ("neighbor", "general")


def group_by_role(examples: Iterable[Example]) -> dict[str, list[Example]]:
    """Roles that occur, in the order of `ROLES`, each with its records in their original order."""
    groups: dict[str, list[Example]] = {role: [] for role in ROLES}
    for example in examples:
        groups[example.role].append(example)
    return {role: rows for role, rows in groups.items() if rows}


def normalise(text: str) -> str:
    """Text as the overlap checks compare it: Unicode NFKC (full-width letters, ligatures and
    non-breaking spaces become plain ones), case folded, runs of whitespace one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# Roles a forget entity, question or image must not appear in: what the run keeps or trains on,
# and the holdout people (the non-members a membership attack compares the forget set with).
KEPT_ROLES = ("retain", "neighbor", "general")


def check_unlearning_data(
    examples: Iterable[Example], source: str, locate: Callable[[Example], str] | None = None
) -> None:
    """Raise ValueError when `examples` (read from `source`) cannot drive an unlearning run: no
    forget rows, no retain rows, a forget entity also kept (retain, neighbour) or in the holdout
    set (names compared after `normalise`), or a forget row whose image (by content) or whose
    question and answer also occur on a kept row. `locate(example)` names where a row came
    from (a file and row); without it, rows are named by id."""
    groups = group_by_role(examples)
    for role in ("forget", "retain"):
        if role not in groups:
            raise ValueError(
                f"no rows with role {role!r} in {source}; an unlearning run needs at least one"
            )

    def where(example: Example) -> str:
        return f"{locate(example)} (id {example.id!r})" if locate else f"id {example.id!r}"

    forget = groups["forget"]
    entities: dict[str, Example] = {}
    for example in forget:
        entities.setdefault(normalise(example.entity), example)
    for role in ("retain", "neighbor", "holdout"):
        for example in groups.get(role, []):
            first = entities.get(normalise(example.entity))
            if first is not None:
                fix = "must be either forgotten or kept"
                if role == "holdout":
                    fix = "that is forgotten cannot be a holdout person (a non-member)"
                raise ValueError(
                    f"{source}: entity {example.entity!r} is in both forget ({where(first)}, "
                    f"as {first.entity!r}) and {role} ({where(example)}), names compared "
                    f"ignoring case, spacing and Unicode forms; an entity {fix}"
                )

    digests: dict[str, str] = {}  # image path -> sha256 of its bytes

    def image_key(example: Example) -> str | None:
        if example.image is None:
            return None
        if example.image not in digests:
            path = Path(example.image)
            # records built in memory may name files not written yet: compared by name then
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            digests[example.image] = digest or f"path:{example.image}"
        return digests[example.image]

    images = {key: ex for ex in reversed(forget) if (key := image_key(ex)) is not None}
    facts = {_fact(ex, image_key(ex)): ex for ex in reversed(forget)}
    for role in KEPT_ROLES:
        for example in groups.get(role, []):
            key = image_key(example)
            if key in images:
                raise ValueError(
                    f"{source}: {role} row {where(example)} shows the same image (same bytes) "
                    f"as forget row {where(images[key])}; a forget image must not be kept"
                )
            same = facts.get(_fact(example, key))
            if same is not None:
                raise ValueError(
                    f"{source}: {role} row {where(example)} asks the same question with the "
                    f"same answer as forget row {where(same)} ({same.question!r} → "
                    f"{same.answer!r}); a forgotten fact must not be kept"
                )


def _fact(example: Example, image_key: str | None) -> tuple[str, str, str | None]:
    """What a row teaches: its question and answer (normalised), and its image's content."""
    return normalise(example.question), normalise(example.answer), image_key


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
