"""TOFU-style QA (Maini et al., arXiv 2401.06121) as Example records, text-only.

Layouts: a clone of the Hugging Face dataset `locuslab/TOFU`, in either of the forms users have:
- `json` (the main branch): JSON files (JSON lines, though named `.json`; a JSON list is read
  too), each row `{"question", "answer"}`, e.g. `forget10.json`;
- `parquet` (the `refs/convert/parquet` branch the Hub's viewer and `datasets` write): one folder
  per subset holding parquet shards, e.g. `forget10/train/0000.parquet` (or `forget10/*.parquet`).

| subset | role here |
| --- | --- |
| `forget{01,05,10}` | forget |
| `retain{99,95,90}` | retain (the complement of the forget split) |
| `holdout{01,05,10}` | holdout (authors never trained on) |
| `real_authors`, `world_facts` | general (model utility) |

The evaluation subsets `forget{NN}_perturbed`, `retain_perturbed`, `real_authors_perturbed`
and `world_facts_perturbed` repeat questions of those splits
with `paraphrased_answer`, `perturbed_answer` (a list) and, for forget and retain,
`paraphrased_question`. They are joined to the records with the same question:
`paraphrases` ← paraphrased_question, `options` ← (answer, *perturbed answers),
`meta.paraphrased_answer`, `meta.perturbed_answers`; and each forget question with a paraphrase
also becomes a `test` record (the paraphrased question, the same answer).

TOFU has no author column: its files list 20 questions per author, author after author
(`questions_per_author`). A record's entity is the author's name, found in that author's
questions and answers (the capitalised phrase most of them mention, `names.frequent_name`; the
log says how many names were found so); an author block with no such phrase keeps
`<subset>/author-<row // 20>`. Records without `alt_answers` get an "I don't know" phrase
(`idk.with_idk_answers`, drawn with `idk_seed`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.idk import with_idk_answers
from mmunlearn.data.jsonl import DataError
from mmunlearn.data.names import NameSources, frequent_name
from mmunlearn.data.tables import (
    Row,
    check_split_choice,
    check_unique_ids,
    default_sets,
    read_json_rows,
    read_parquet_rows,
    text_field,
    text_list,
)

log = logging.getLogger(__name__)

FORGET_PERCENTS = (1, 5, 10)
SETS = ("forget", "retain", "holdout", "real_authors", "world_facts")
ROLES = {"real_authors": "general", "world_facts": "general"}
PER_AUTHOR = ("forget", "retain", "holdout")  # files ordered author by author
# layout → where subset `stem` lives, in the order they are tried
LAYOUTS = {
    "json": ("{stem}.json",),
    "parquet": ("{stem}/train/*.parquet", "{stem}/*.parquet"),
}


def tofu_subsets(forget_percent: int) -> dict[str, tuple[str, str | None]]:
    """Set → (subset name, its perturbed evaluation subset or None)."""
    nn = f"{forget_percent:02d}"
    return {
        "forget": (f"forget{nn}", f"forget{nn}_perturbed"),
        "retain": (f"retain{100 - forget_percent}", "retain_perturbed"),
        "holdout": (f"holdout{nn}", None),
        "real_authors": ("real_authors", "real_authors_perturbed"),
        "world_facts": ("world_facts", "world_facts_perturbed"),
    }


def find_subset(root: Path, stem: str) -> Path | None:
    """The file (json layout) or shard folder (parquet layout) holding subset `stem`."""
    for patterns in LAYOUTS.values():
        for pattern in patterns:
            found = sorted(root.glob(pattern.format(stem=stem)))
            if found:
                return found[0] if pattern.endswith(".json") else found[0].parent
    return None


def read_subset(source: Path, what: str) -> list[Row]:
    """Rows of a subset found by `find_subset`."""
    if source.suffix == ".json":
        return read_json_rows(source, what)
    return read_parquet_rows(source, ("question", "answer"), what)


def load_tofu(
    path: str | os.PathLike,
    forget_percent: int = 10,
    sets: tuple[str, ...] | None = None,
    questions_per_author: int = 20,
    idk_seed: int = 0,
) -> list[Example]:
    """Records of the forget split `forget_percent` (1, 5 or 10), its retain complement and the
    chosen `sets` (default: forget and retain, which must exist, plus holdout, real_authors and
    world_facts when their subsets do), in the json or parquet layout. Perturbed subsets are
    joined when present."""
    root = Path(path)
    check_split_choice("TOFU", forget_percent, FORGET_PERCENTS, sets=(sets or (), SETS))
    subsets = tofu_subsets(forget_percent)
    check_layout(root, subsets["forget"][0])
    if sets is None:
        sets = default_sets(
            SETS[:2], SETS[2:], lambda name: find_subset(root, subsets[name][0]) is not None
        )
    examples: list[Example] = []
    for name in sets:
        stem, perturbed = subsets[name]
        source = find_subset(root, stem)
        if source is None:
            raise DataError(
                f"{root}: subset {stem!r} not found (looked for {_patterns(stem)}); "
                f"expected TOFU's {name} split"
            )
        per_author = questions_per_author if name in PER_AUTHOR else None
        records = qa_records(source, ROLES.get(name, name), per_author, stem=stem)
        extra = find_subset(root, perturbed) if perturbed else None
        if extra is not None:
            records = join_perturbed(records, extra)
        examples += records
        if name == "forget":
            examples += paraphrase_tests(records)
    check_unique_ids(examples, str(root))
    _check_no_shared_questions(examples, root)
    log.info("TOFU: %d records from %s", len(examples), ", ".join(sets))
    return with_idk_answers(examples, idk_seed)


def check_layout(root: Path, forget: str) -> None:
    """Refuse a folder in none of the known layouts, naming them."""
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (expected a clone of locuslab/TOFU)")
    if find_subset(root, forget) is None:
        known = "; ".join(
            f"{layout}: {' or '.join(p.format(stem=forget) for p in patterns)}"
            for layout, patterns in LAYOUTS.items()
        )
        raise DataError(
            f"{root}: not a TOFU layout this loader knows (no {forget!r} subset); known "
            f"layouts — {known}"
        )


def _patterns(stem: str) -> str:
    return ", ".join(p.format(stem=stem) for patterns in LAYOUTS.values() for p in patterns)


def qa_records(
    source: Path,
    role: str,
    questions_per_author: int | None,
    prefix: str = "tofu",
    stem: str | None = None,
) -> list[Example]:
    """One text record per `{question, answer}` row of `source` (a file or a shard folder);
    entity = the author's name when the subset lists `questions_per_author` questions per
    author (see the module docstring), else the row itself."""
    rows = read_subset(source, "TOFU-style rows with 'question' and 'answer'")
    stem = stem or source.stem
    if questions_per_author and len(rows) % questions_per_author:
        raise DataError(
            f"{source}: {len(rows)} rows is not a multiple of questions_per_author="
            f"{questions_per_author} (TOFU lists 20 questions per author); pass the right number"
        )
    pairs = [
        (text_field(row, "question", where), text_field(row, "answer", where))
        for where, row in rows
    ]
    entities = (
        author_names(pairs, questions_per_author, stem, NameSources("TOFU"))
        if questions_per_author
        else [f"{stem}/{i}" for i in range(len(pairs))]
    )
    return [
        Example(
            id=f"{prefix}-{stem}-{i}",
            entity=entity,
            role=role,
            question=question,
            answer=answer,
            meta={"modality": "text", "kind": "qa", "set": stem},
        )
        for i, ((question, answer), entity) in enumerate(zip(pairs, entities, strict=True))
    ]


def author_names(
    pairs: list[tuple[str, str]], per_author: int, stem: str, sources: NameSources
) -> list[str]:
    """Each row's author: the name most of its block's questions and answers mention."""
    entities = []
    for start in range(0, len(pairs), per_author):
        block = pairs[start : start + per_author]
        found = frequent_name(text for pair in block for text in pair)
        if found is not None and found[1] >= 2:
            name = found[0]
            sources.add("the questions and answers of the author's block", name)
        else:
            name = f"{stem}/author-{start // per_author}"
            sources.add("no name in the author's questions (position kept)", name)
        entities += [name] * len(block)
    sources.log(stem)
    return entities


def join_perturbed(records: list[Example], file: Path) -> list[Example]:
    """`records` with the paraphrases and perturbed answers of `file`'s rows (a file or shard
    folder) of the same question; rows whose question is not among `records` are counted in
    the log."""
    rows = read_subset(file, "TOFU perturbed rows with 'question' and 'answer'")
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
