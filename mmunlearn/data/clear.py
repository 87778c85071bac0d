"""CLEAR (Dontsov et al., arXiv 2410.18057) as Example records: 200 fictitious TOFU authors with
portraits and captions, plus TOFU's text QA about the same authors.

Layout: a clone of the Hugging Face dataset `therem/CLEAR`, one folder per subset holding
`train-0000k-of-0000n.parquet` shards:

| folder | columns | role here |
| --- | --- | --- |
| `forget{01,05,10}/` | `image`, `caption`, `name` | forget (image+text) |
| `retain{99,95,90}/` | same | retain (image+text) |
| `forget{NN}_perturbed/`, `retain_perturbed/` | same + `perturbed_captions`, `paraphrased_caption`, `perturbed_names` | joined to the rows with the same name and caption |
| `forget{NN}+tofu/`, `retain{MM}+tofu/` | `image`, `caption`, `question`, `answer` | the rows with a question: forget / retain (text-only) |
| `real_faces/` | `image`, `answer`, `options` | general (real people: who is this?) |
| `real_world/` | `image`, `question`, `answer`, `options`, `prompt` | general (real-world VQA) |

CLEAR's visual rows carry no question: the model is asked to caption the portrait (or, with
`visual_task="name"`, to name the person), so the question is our fixed wording below.

Entities are the people's names, one per person across image and text rows. Visual rows take
theirs from the `name` column; CLEAR versions without it (early uploads, some mirrors) have the
name in the caption: the longest author name of the loaded text rows that the caption mentions,
else the caption's capitalised phrase (`names.frequent_name`). Text rows have no name column;
like TOFU they list 20 questions per author, and an author's name is the one a visual row uses
that the block mentions, else the capitalised phrase most of the block's questions and answers
mention, else `<folder>/author-<row // 20>`. The log says, per folder, where the names came from.
Perturbed rows are joined to the visual rows with the same caption. Records without
`alt_answers` get an "I don't know" phrase (`idk.with_idk_answers`, drawn with `idk_seed`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.idk import with_idk_answers
from mmunlearn.data.jsonl import DataError
from mmunlearn.data.names import NameSources, frequent_name, known_name_in
from mmunlearn.data.tables import (
    ImageStore,
    check_split_choice,
    check_unique_ids,
    default_sets,
    read_parquet_rows,
    text_field,
    text_list,
    with_progress,
)

log = logging.getLogger(__name__)

FORGET_PERCENTS = (1, 5, 10)
SETS = ("forget", "retain", "forget_text", "retain_text", "real_faces", "real_world")
VISUAL_TASKS = ("caption", "name", "both")
CAPTION_QUESTION = "Describe this picture."
NAME_QUESTION = "Who is the person in this picture?"


def clear_folders(forget_percent: int) -> dict[str, str]:
    forget, retain = f"forget{forget_percent:02d}", f"retain{100 - forget_percent}"
    return {
        "forget": forget,
        "retain": retain,
        "forget_text": f"{forget}+tofu",
        "retain_text": f"{retain}+tofu",
        "real_faces": "real_faces",
        "real_world": "real_world",
    }


def load_clear(
    path: str | os.PathLike,
    forget_percent: int = 5,
    sets: tuple[str, ...] | None = None,
    visual_task: str = "caption",
    image_dir: str | os.PathLike | None = None,
    questions_per_author: int = 20,
    idk_seed: int = 0,
) -> list[Example]:
    """Records of the forget split `forget_percent` (1, 5 or 10), its retain complement and the
    chosen `sets` (default: forget and retain, which must exist, plus the text and real_faces
    sets when their folders do). Images are written to `image_dir` (default `<cache>/images`)."""
    root = Path(path)
    check_split_choice("CLEAR", forget_percent, FORGET_PERCENTS, sets=(sets or (), SETS))
    if visual_task not in VISUAL_TASKS:
        raise ValueError(f"CLEAR: visual_task={visual_task!r}; expected one of {VISUAL_TASKS}")
    folders = clear_folders(forget_percent)
    if sets is None:
        sets = default_sets(SETS[:2], SETS[2:], lambda name: (root / folders[name]).is_dir())
    store = ImageStore(image_dir)
    text_rows = {
        name: _text_rows(root / folders[name], questions_per_author)
        for name in sets
        if name.endswith("_text")
    }
    author_names = {
        name: _block_names(rows, questions_per_author) for name, rows in text_rows.items()
    }
    known = {found for names in author_names.values() for found in names if found}
    examples: list[Example] = []
    for name in sets:
        folder = folders[name]
        if name in ("forget", "retain"):
            perturbed = f"{folder}_perturbed" if name == "forget" else "retain_perturbed"
            extras = _perturbations(root / perturbed) if (root / perturbed).is_dir() else {}
            examples += _visual(root / folder, name, visual_task, extras, store, known)
        elif name in ("real_faces", "real_world"):
            examples += _real(root / folder, store)
    visual_names = {ex.entity for ex in examples if ex.role in ("forget", "retain")}
    for name, rows in text_rows.items():
        examples += _text(
            root / folders[name],
            name.removesuffix("_text"),
            rows,
            author_names[name],
            questions_per_author,
            visual_names,
        )
    check_unique_ids(examples, str(root))
    log.info("CLEAR: %d records from %s", len(examples), ", ".join(sets))
    return with_idk_answers(examples, idk_seed)


def _visual(
    folder: Path,
    role: str,
    visual_task: str,
    extras: dict[str, dict[str, Any]],
    store: ImageStore,
    known: set[str],
) -> list[Example]:
    rows = read_parquet_rows(folder, ("image", "caption"), "CLEAR rows (image, caption[, name])")
    tasks = ("caption", "name") if visual_task == "both" else (visual_task,)
    sources = NameSources("CLEAR")
    examples, joined = [], set()
    for i, (where, row) in enumerate(with_progress(rows, f"CLEAR {folder.name}")):
        caption = text_field(row, "caption", where)
        name = _visual_name(row, caption, where, known, sources) or f"{folder.name}/{i}"
        image = store.save(row["image"], f"{where}, field 'image'")
        extra = extras.get(caption)
        if extra is not None:
            joined.add(caption)
        for task in tasks:
            answer = caption if task == "caption" else name
            meta: dict[str, Any] = {"modality": "image", "kind": task, "set": folder.name}
            options: tuple[str, ...] = ()
            if extra is not None:
                wrong = extra["perturbed_captions" if task == "caption" else "perturbed_names"]
                options = (answer, *wrong) if wrong else ()
                meta["perturbed_answers"] = list(wrong)
                if task == "caption" and extra["paraphrased_caption"]:
                    meta["paraphrased_answer"] = extra["paraphrased_caption"][0]
            examples.append(
                Example(
                    id=f"clear-{folder.name}-{i}-{task}",
                    entity=name,
                    role=role,
                    question=CAPTION_QUESTION if task == "caption" else NAME_QUESTION,
                    answer=answer,
                    image=image,
                    options=options,
                    meta=meta,
                )
            )
    sources.log(folder.name)
    if len(joined) < len(extras):
        log.warning(
            "CLEAR %s: %d of %d perturbed rows match no row of this split; not used",
            folder.name,
            len(extras) - len(joined),
            len(extras),
        )
    return examples


def _visual_name(
    row: dict[str, Any], caption: str, where: str, known: set[str], sources: NameSources
) -> str | None:
    """The person in a visual row: its `name` column, else named in its caption."""
    if row.get("name") is not None:
        name = text_field(row, "name", where)
        sources.add("the name column", name)
        return name
    name = known_name_in(caption, known)
    if name is not None:
        sources.add("an author name of the text rows found in the caption", name)
        return name
    found = frequent_name([caption])
    if found is not None:
        sources.add("the caption's capitalised phrase", found[0])
        return found[0]
    sources.add("no name column and no name in the caption (row position kept)", where)
    return None


def _perturbations(folder: Path) -> dict[str, dict[str, Any]]:
    """caption → the perturbed captions, paraphrased caption and perturbed names."""
    rows = read_parquet_rows(
        folder, ("caption", "perturbed_captions", "paraphrased_caption"), "CLEAR perturbed rows"
    )
    return {
        text_field(row, "caption", where): {
            "perturbed_captions": text_list(row, "perturbed_captions", where),
            "paraphrased_caption": text_list(row, "paraphrased_caption", where),
            "perturbed_names": text_list(row, "perturbed_names", where),
        }
        for where, row in rows
    }


def _text_rows(folder: Path, per_author: int) -> list[tuple[str, str, str]]:
    """(where, question, answer) of the text-only TOFU rows of a `+tofu` folder (the rows with
    a question)."""
    rows = read_parquet_rows(folder, ("question", "answer"), "CLEAR+TOFU rows (question, answer)")
    text_rows = [
        (where, text_field(row, "question", where), text_field(row, "answer", where))
        for where, row in rows
        if row.get("question") is not None
    ]
    if not text_rows:
        raise DataError(f"{folder}: no rows with a question (expected TOFU's text QA)")
    if len(text_rows) % per_author:
        raise DataError(
            f"{folder}: {len(text_rows)} question rows is not a multiple of "
            f"questions_per_author={per_author} (TOFU lists 20 questions per author)"
        )
    return text_rows


def _block_names(rows: list[tuple[str, str, str]], per_author: int) -> list[str | None]:
    """Per author block, the capitalised phrase most of its questions and answers mention."""
    names = []
    for start in range(0, len(rows), per_author):
        found = frequent_name(
            text for _, *pair in rows[start : start + per_author] for text in pair
        )
        names.append(found[0] if found is not None and found[1] >= 2 else None)
    return names


def _text(
    folder: Path,
    role: str,
    rows: list[tuple[str, str, str]],
    block_names: list[str | None],
    per_author: int,
    visual_names: set[str],
) -> list[Example]:
    """Text records; an author is the visual rows' name the block mentions, else the block's
    own most frequent name, else its position."""
    sources = NameSources("CLEAR")
    entities = []
    for block, found in enumerate(block_names):
        texts = " \n ".join(f"{q} \n {a}" for _, q, a in rows[block * per_author :][:per_author])
        name = known_name_in(texts, visual_names)
        if name is not None:
            sources.add("a visual row's name found in the author's questions", name)
        elif found is not None:
            name = found
            sources.add("the questions and answers of the author's block", name)
        else:
            name = f"{folder.name}/author-{block}"
            sources.add("no name in the author's questions (position kept)", name)
        entities.append(name)
    sources.log(folder.name)
    return [
        Example(
            id=f"clear-{folder.name}-{k}",
            entity=entities[k // per_author],
            role=role,
            question=question,
            answer=answer,
            meta={"modality": "text", "kind": "qa", "set": folder.name},
        )
        for k, (_, question, answer) in enumerate(rows)
    ]


def _real(folder: Path, store: ImageStore) -> list[Example]:
    """real_faces (who is this? no question column) or real_world (a question per row)."""
    faces = folder.name == "real_faces"
    required = ("image", "answer", "options") if faces else ("image", "question", "answer")
    rows = read_parquet_rows(folder, required, f"CLEAR {folder.name} rows")
    examples = []
    for i, (where, row) in enumerate(with_progress(rows, f"CLEAR {folder.name}")):
        answer = text_field(row, "answer", where)
        examples.append(
            Example(
                id=f"clear-{folder.name}-{i}",
                entity=answer if faces else f"{folder.name}/{i}",  # real faces: the name
                role="general",
                question=NAME_QUESTION if faces else text_field(row, "question", where),
                answer=answer,
                image=store.save(row["image"], f"{where}, field 'image'"),
                options=text_list(row, "options", where),
                meta={"modality": "image", "kind": "name" if faces else "vqa", "set": folder.name},
            )
        )
    return examples
