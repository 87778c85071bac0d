"""MELU's Wikipedia-person QA (arXiv 2509.05316) as Example records, with entity modules.

A module is a forget person with the neighbours their Wikipedia page links to: `entity` rows
(direct neighbours) and `domain` rows (indirect). The data has no module column; we assign a
retain row to the one forget person whose page text mentions the row's title (the way WPU
derived its links) — in full, or, when no page names it in full, by surname — and leave it
unassigned when no page or several pages mention it.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import DataError, read_text

log = logging.getLogger(__name__)
RELATIONS = {"entity": "direct", "domain": "indirect"}
FILES = ("dpo_forget_idk.csv", "full_retain_qa.csv", "full_set.csv")


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected MELU's {path.name})")
    rows = list(csv.DictReader(io.StringIO(read_text(path), newline="")))
    for field in required:
        if rows and field not in rows[0]:
            raise DataError(f"{path}: missing column {field!r} (has {', '.join(rows[0])})")
    for line, row in enumerate(rows, start=2):
        for field in required:
            if field != "wikipage" and not (row.get(field) or "").strip():
                raise DataError(f"{path}, row {line}: empty field {field!r}")
    return rows


def forget_pages(folder: Path) -> dict[str, str]:
    """Forget person → the Wikipedia text MELU ships for them (full_set.csv, `wikipage`)."""
    rows = _rows(folder / "full_set.csv", ("title", "dataset", "wikipage"))
    return {r["title"]: r["wikipage"] for r in rows if r["dataset"] == "forget" and r["wikipage"]}


def module_of(title: str, pages: dict[str, str]) -> str | None:
    """The one forget person whose page names `title`: in full, else by its last word (pages
    often name a linked person by surname alone). None when no page or several pages do."""
    for name in (title, title.split()[-1]):
        mentions = [person for person, page in pages.items() if name in page]
        if mentions:
            return mentions[0] if len(mentions) == 1 else None
    return None


def load_melu(folder: str | Path) -> list[Example]:
    """Forget QA (with IdK answers), neighbour rows with relation and module, general rows."""
    folder = Path(folder)
    pages = forget_pages(folder)
    examples = []
    forget = _rows(folder / "dpo_forget_idk.csv", ("title", "question", "answer", "idk"))
    for i, row in enumerate(forget):
        examples.append(
            Example(
                id=f"melu-forget-{i}",
                entity=row["title"],
                role="forget",
                question=row["question"],
                answer=row["answer"],
                alt_answers=(row["idk"],),
                meta={"modality": "text"},
            )
        )
    retain = _rows(folder / "full_retain_qa.csv", ("title", "question", "answer", "type"))
    for i, row in enumerate(retain):
        kind = row["type"]
        if kind not in (*RELATIONS, "general"):
            raise DataError(
                f"{folder / 'full_retain_qa.csv'}, row {i + 2}: type={kind!r}; expected entity, domain or general"
            )
        meta = {"modality": "text", "type": kind}
        if kind in RELATIONS:
            meta |= {"relation": RELATIONS[kind], "module": module_of(row["title"], pages)}
        role = "general" if kind == "general" else "neighbor"
        examples.append(
            Example(
                id=f"melu-retain-{i}",
                entity=row["title"],
                role=role,
                question=row["question"],
                answer=row["answer"],
                meta=meta,
            )
        )
    unassigned = sum(1 for ex in examples if ex.role == "neighbor" and ex.meta["module"] is None)
    log.info(
        "MELU: %d forget, %d retain rows; %d neighbour rows in no module",
        len(forget),
        len(retain),
        unassigned,
    )
    return examples
