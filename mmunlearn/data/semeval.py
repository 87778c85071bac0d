"""SemEval-2025 Task 4 ("Unlearning sensitive content from LLMs", arXiv 2504.02883) as records.

The public split has four parquet files (forget/retain × train/validation) with columns id, input,
output, task, split, and two JSONL files of documents for the membership attack: `member.jsonl`
(documents the target model was trained on; all of them forget_train documents) and
`nonmember.jsonl` (documents it never saw).

Each parquet row becomes one `Example` in role forget or retain: an `sc` row (id ending in
`sc<k>`) is sentence completion, question = a document prefix and answer = its continuation; a
`qa` row is a question with a short answer. `meta` carries task (Task1/2/3), kind (sc | qa), subset
(train | validation), the document id (also the `entity`, so a document is never both forgotten and
kept) and the source id. Documents become `Document` records; the member documents' own QA and
sentence-completion fields repeat forget_train rows and are not read.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import DataError

log = logging.getLogger(__name__)

PARQUET = {
    (role, subset): f"{role}_{subset}-00000-of-00001.parquet"
    for role in ("forget", "retain")
    for subset in ("train", "validation")
}
COLUMNS = ("id", "input", "output", "task", "split")
TASKS = ("Task1", "Task2", "Task3")
KINDS = ("sc", "qa")
_ITEM_ID = re.compile(r"^(?P<doc>.+?)(?P<kind>sc|qa)(?P<k>\d+)$")


@dataclass(frozen=True)
class Document:
    """A whole document of the membership attack: trained on (`member`) or never seen."""

    id: str
    text: str
    member: bool


@dataclass(frozen=True)
class SemEvalData:
    examples: tuple[Example, ...]  # forget and retain items, sc and qa
    documents: tuple[Document, ...]  # member then nonmember documents

    def members(self, member: bool = True) -> list[Document]:
        return [doc for doc in self.documents if doc.member == member]


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:  # an optional dependency: pip install mmunlearn[semeval]
        raise ImportError(
            "reading SemEval's parquet files needs pyarrow (pip install pyarrow)"
        ) from error
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected SemEval-2025 Task 4's {path.name})")
    table = pq.read_table(path)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))} "
            f"(has {', '.join(table.column_names)}; expected {', '.join(COLUMNS)})"
        )
    return table.select(list(COLUMNS)).to_pylist()


def parse_item(row: dict[str, Any], where: str, role: str, subset: str) -> Example:
    """One parquet row → an Example; `where` names the file and row in errors."""
    for name in COLUMNS:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}, field {name!r}: {value!r} (expected a non-empty string)")
    if row["split"] != role:
        raise DataError(
            f"{where}, field 'split': {row['split']!r} (expected {role!r} in this file)"
        )
    if row["task"] not in TASKS:
        raise DataError(f"{where}, field 'task': {row['task']!r} (expected one of {TASKS})")
    match = _ITEM_ID.match(row["id"])
    if match is None:
        raise DataError(
            f"{where}, field 'id': {row['id']!r} (expected a document id ending in sc<k> or qa<k>)"
        )
    doc_id = match["doc"].strip('"')
    return Example(
        id=f"{role}_{subset}/{row['id']}",
        entity=doc_id,
        role=role,
        question=row["input"],
        answer=row["output"],
        meta={
            "modality": "text",
            "task": row["task"],
            "kind": match["kind"],
            "subset": subset,
            "document": doc_id,
            "source_id": row["id"],
        },
    )


def load_documents(path: Path, member: bool) -> list[Document]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected SemEval-2025 Task 4's {path.name})")
    documents, seen = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, row {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: invalid JSON ({error})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        doc_id = row.get("id")
        if isinstance(doc_id, int):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise DataError(f"{where}, field 'id': {doc_id!r} (expected a non-empty string)")
        text = row.get("document")
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                f"{where}, field 'document': {text!r:.60} (expected a non-empty string)"
            )
        if doc_id in seen:
            raise DataError(
                f"{where}, field 'id': duplicate {doc_id!r} (first at row {seen[doc_id]})"
            )
        seen[doc_id] = number
        documents.append(Document(doc_id, text, member))
    return documents


def load_semeval(
    folder: str | Path, subsets: tuple[str, ...] = ("train", "validation")
) -> SemEvalData:
    """Every forget/retain item of `subsets`, and the member and nonmember documents."""
    folder = Path(folder)
    examples: list[Example] = []
    for (role, subset), name in PARQUET.items():
        if subset not in subsets:
            continue
        path = folder / name
        for number, row in enumerate(_read_parquet(path)):
            examples.append(parse_item(row, f"{path}, row {number}", role, subset))
    first: dict[str, str] = {}
    for ex in examples:
        if ex.id in first:
            raise DataError(f"duplicate item id {ex.id!r}")
        first[ex.id] = ex.role
    documents = load_documents(folder / "member.jsonl", True)
    documents += load_documents(folder / "nonmember.jsonl", False)
    log.info(
        "SemEval-2025 Task 4: %d items, %d member and %d nonmember documents",
        len(examples),
        sum(d.member for d in documents),
        sum(not d.member for d in documents),
    )
    return SemEvalData(tuple(examples), tuple(documents))


def document_example(document: Document, role: str) -> Example:
    """A document as a record the engine trains and scores: its first line (the title, in
    SemEval's Wikipedia documents) as the prompt, the rest as the answer."""
    title, _, rest = document.text.strip().partition("\n")
    if not rest.strip():  # a one-line document: the first sentence-ish chunk prompts the rest
        words = document.text.split()
        title, rest = " ".join(words[:8]), " ".join(words[8:])
    if not title.strip() or not rest.strip():
        raise DataError(f"document {document.id!r} is too short to split into prompt and text")
    return Example(
        id=f"document/{document.id}",
        entity=document.id,
        role=role,
        question=title.strip(),
        answer=rest.strip(),
        # the whole text too: the task's membership attack scores the document as written
        meta={
            "modality": "text",
            "kind": "document",
            "member": document.member,
            "text": document.text,
        },
    )
