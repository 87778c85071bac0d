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
`visual_task="name"`, to name the person), so the question is our fixed wording below. Text rows
have no name column; like TOFU they list 20 questions per author, so their entity is
`<folder>/author-<row // 20>` among that folder's text rows.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import DataError
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
    examples: list[Example] = []
    for name in sets:
        folder = folders[name]
        if name in ("forget", "retain"):
            perturbed = f"{folder}_perturbed" if name == "forget" else "retain_perturbed"
            extras = _perturbations(root / perturbed) if (root / perturbed).is_dir() else {}
            examples += _visual(root / folder, name, visual_task, extras, store)
        elif name in ("real_faces", "real_world"):
            examples += _real(root / folder, store)
        else:
            examples += _text(root / folder, name.removesuffix("_text"), questions_per_author)
    check_unique_ids(examples, str(root))
    log.info("CLEAR: %d records from %s", len(examples), ", ".join(sets))
    return examples


def _visual(
    folder: Path,
    role: str,
    visual_task: str,
    extras: dict[tuple[str, str], dict[str, Any]],
    store: ImageStore,
) -> list[Example]:
    rows = read_parquet_rows(
        folder, ("image", "caption", "name"), "CLEAR rows (image, caption, name)"
    )
    tasks = ("caption", "name") if visual_task == "both" else (visual_task,)
    examples, joined = [], set()
    for i, (where, row) in enumerate(with_progress(rows, f"CLEAR {folder.name}")):
        name, caption = text_field(row, "name", where), text_field(row, "caption", where)
        image = store.save(row["image"], f"{where}, field 'image'")
        extra = extras.get((name, caption))
        if extra is not None:
            joined.add((name, caption))
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
    if len(joined) < len(extras):
        log.warning(
            "CLEAR %s: %d of %d perturbed rows match no row of this split; not used",
            folder.name,
            len(extras) - len(joined),
            len(extras),
        )
    return examples


def _perturbations(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(name, caption) → the perturbed captions, paraphrased caption and perturbed names."""
    rows = read_parquet_rows(
        folder,
        ("caption", "name", "perturbed_captions", "paraphrased_caption"),
        "CLEAR perturbed rows",
    )
    return {
        (text_field(row, "name", where), text_field(row, "caption", where)): {
            "perturbed_captions": text_list(row, "perturbed_captions", where),
            "paraphrased_caption": text_list(row, "paraphrased_caption", where),
            "perturbed_names": text_list(row, "perturbed_names", where),
        }
        for where, row in rows
    }


def _text(folder: Path, role: str, per_author: int) -> list[Example]:
    """The text-only TOFU rows of a `+tofu` folder (the rows with a question)."""
    rows = read_parquet_rows(folder, ("question", "answer"), "CLEAR+TOFU rows (question, answer)")
    text_rows = [(where, row) for where, row in rows if row.get("question") is not None]
    if not text_rows:
        raise DataError(f"{folder}: no rows with a question (expected TOFU's text QA)")
    if len(text_rows) % per_author:
        raise DataError(
            f"{folder}: {len(text_rows)} question rows is not a multiple of "
            f"questions_per_author={per_author} (TOFU lists 20 questions per author)"
        )
    return [
        Example(
            id=f"clear-{folder.name}-{k}",
            entity=f"{folder.name}/author-{k // per_author}",
            role=role,
            question=text_field(row, "question", where),
            answer=text_field(row, "answer", where),
            meta={"modality": "text", "kind": "qa", "set": folder.name},
        )
        for k, (where, row) in enumerate(text_rows)
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
                entity=f"{folder.name}/{answer if faces else i}",
                role="general",
                question=NAME_QUESTION if faces else text_field(row, "question", where),
                answer=answer,
                image=store.save(row["image"], f"{where}, field 'image'"),
                options=text_list(row, "options", where),
                meta={"modality": "image", "kind": "name" if faces else "vqa", "set": folder.name},
            )
        )
    return examples
