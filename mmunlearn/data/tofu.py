"""TOFU-style QA (Maini et al., arXiv 2401.06121) as Example records, text-only.

Layout: a clone of the Hugging Face dataset `locuslab/TOFU` — JSON files (JSON lines, though
named `.json`; a JSON list is read too), each row `{"question", "answer"}`:

| file | role here |
| --- | --- |
| `forget{01,05,10}.json` | forget |
| `retain{99,95,90}.json` | retain (the complement of the forget split) |
| `holdout{01,05,10}.json` | holdout (authors never trained on) |
| `real_authors.json`, `world_facts.json` | general (model utility) |

The evaluation files `forget{NN}_perturbed.json`, `retain_perturbed.json`,
`real_authors_perturbed.json` and `world_facts_perturbed.json` repeat questions of those splits
with `paraphrased_answer`, `perturbed_answer` (a list) and, for forget and retain,
`paraphrased_question`. They are joined to the records with the same question:
`paraphrases` ← paraphrased_question, `options` ← (answer, *perturbed answers),
`meta.paraphrased_answer`, `meta.perturbed_answers`; and each forget question with a paraphrase
also becomes a `test` record (the paraphrased question, the same answer).

TOFU has no author column: its files list 20 questions per author, author after author, so a
record's entity is `<file stem>/author-<row // 20>` (`questions_per_author`). Entities are thus
distinct across files by construction; the forget/retain overlap check cannot see through this.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import DataError
from mmunlearn.data.tables import (
    check_split_choice,
    check_unique_ids,
    default_sets,
    read_json_rows,
    text_field,
    text_list,
)

log = logging.getLogger(__name__)

FORGET_PERCENTS = (1, 5, 10)
SETS = ("forget", "retain", "holdout", "real_authors", "world_facts")
ROLES = {"real_authors": "general", "world_facts": "general"}
PER_AUTHOR = ("forget", "retain", "holdout")  # files ordered author by author


def tofu_files(forget_percent: int) -> dict[str, tuple[str, str | None]]:
    """Set → (file name, its perturbed evaluation file or None)."""
    nn = f"{forget_percent:02d}"
    return {
        "forget": (f"forget{nn}.json", f"forget{nn}_perturbed.json"),
        "retain": (f"retain{100 - forget_percent}.json", "retain_perturbed.json"),
        "holdout": (f"holdout{nn}.json", None),
        "real_authors": ("real_authors.json", "real_authors_perturbed.json"),
        "world_facts": ("world_facts.json", "world_facts_perturbed.json"),
    }


def load_tofu(
    path: str | os.PathLike,
    forget_percent: int = 10,
    sets: tuple[str, ...] | None = None,
    questions_per_author: int = 20,
) -> list[Example]:
    """Records of the forget split `forget_percent` (1, 5 or 10), its retain complement and the
    chosen `sets` (default: forget and retain, which must exist, plus holdout, real_authors and
    world_facts when their files do). Perturbed files are joined when present."""
    root = Path(path)
    check_split_choice("TOFU", forget_percent, FORGET_PERCENTS, sets=(sets or (), SETS))
    files = tofu_files(forget_percent)
    if sets is None:
        sets = default_sets(SETS[:2], SETS[2:], lambda name: (root / files[name][0]).is_file())
    examples: list[Example] = []
    for name in sets:
        file, perturbed = files[name]
        per_author = questions_per_author if name in PER_AUTHOR else None
        records = qa_records(root / file, ROLES.get(name, name), per_author)
        if perturbed and (root / perturbed).is_file():
            records = join_perturbed(records, root / perturbed)
        examples += records
        if name == "forget":
            examples += paraphrase_tests(records)
    check_unique_ids(examples, str(root))
    _check_no_shared_questions(examples, root)
    log.info("TOFU: %d records from %s", len(examples), ", ".join(sets))
    return examples


def qa_records(
    file: Path, role: str, questions_per_author: int | None, prefix: str = "tofu"
) -> list[Example]:
    """One text record per `{question, answer}` row of `file`; entity = author index when the
    file lists `questions_per_author` questions per author, else the row itself."""
    rows = read_json_rows(file, "TOFU-style rows with 'question' and 'answer'")
    if questions_per_author and len(rows) % questions_per_author:
        raise DataError(
            f"{file}: {len(rows)} rows is not a multiple of questions_per_author="
            f"{questions_per_author} (TOFU lists 20 questions per author); pass the right number"
        )
    stem = file.stem
    return [
        Example(
            id=f"{prefix}-{stem}-{i}",
            entity=f"{stem}/author-{i // questions_per_author}"
            if questions_per_author
            else f"{stem}/{i}",
            role=role,
            question=text_field(row, "question", where),
            answer=text_field(row, "answer", where),
            meta={"modality": "text", "kind": "qa", "set": stem},
        )
        for i, (where, row) in enumerate(rows)
    ]


def join_perturbed(records: list[Example], file: Path) -> list[Example]:
    """`records` with the paraphrases and perturbed answers of `file`'s rows of the same
    question; rows of `file` whose question is not among `records` are counted in the log."""
    rows = read_json_rows(file, "TOFU perturbed rows with 'question' and 'answer'")
    extras: dict[str, dict[str, Any]] = {}
    for where, row in rows:
        question = text_field(row, "question", where)
        extras[question] = {
            "paraphrases": text_list(row, "paraphrased_question", where),
            "perturbed": text_list(row, "perturbed_answer", where),
            "paraphrased_answer": text_list(row, "paraphrased_answer", where),
        }
    joined, matched = [], 0
    for example in records:
        extra = extras.get(example.question)
        if extra is None:
            joined.append(example)
            continue
        matched += 1
        meta = dict(example.meta, perturbed_answers=list(extra["perturbed"]))
        if extra["paraphrased_answer"]:
            meta["paraphrased_answer"] = extra["paraphrased_answer"][0]
        joined.append(
            dataclasses.replace(
                example,
                paraphrases=extra["paraphrases"],
                options=(example.answer, *extra["perturbed"]) if extra["perturbed"] else (),
                meta=meta,
            )
        )
    if matched < len(rows):
        log.warning(
            "%s: %d of %d rows ask a question that is not in the loaded split; not used",
            file,
            len(rows) - matched,
            len(rows),
        )
    return joined


def paraphrase_tests(forget: list[Example]) -> list[Example]:
    """A `test` record per paraphrased forget question: does the forgetting generalise?"""
    return [
        Example(
            id=f"{ex.id}-para{k}",
            entity=ex.entity,
            role="test",
            question=paraphrase,
            answer=ex.answer,
            meta={**ex.meta, "variant": "paraphrase", "source_id": ex.id},
        )
        for ex in forget
        for k, paraphrase in enumerate(ex.paraphrases)
    ]


def _check_no_shared_questions(examples: list[Example], root: Path) -> None:
    """With no author names, a verbatim forget question in retain is the visible sign of a
    forget/retain overlap."""
    forget = {ex.question: ex.id for ex in examples if ex.role == "forget"}
    for ex in examples:
        if ex.role == "retain" and ex.question in forget:
            raise DataError(
                f"{root}: question {ex.question!r} is in both forget (id {forget[ex.question]!r}) "
                f"and retain (id {ex.id!r}); the retain file must not repeat forget questions"
            )
