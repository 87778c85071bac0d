"""MLLMU-Bench (Liu et al., NAACL 2025, arXiv 2410.22108) as Example records.

Layout: a clone of the Hugging Face dataset `MLLMMU/MLLMU-Bench`, one folder per subset holding
`train-0000k-of-0000n.parquet` shards:

| folder | rows | role here |
| --- | --- | --- |
| `forget_{5,10,15}/` | fictitious people to forget | forget |
| `retain_{95,90,85}/` | the other fictitious people | retain |
| `Test_Set/` | every person again: transformed images (`images`, several), paraphrased questions | test (forget people only, as the authors' eval.py) |
| `Retain_Set/` | 153 real celebrities (model utility) | general |

Row layouts, told apart by their columns (an unknown one fails naming these):
- `evaluation` (`Full_Set`, `Test_Set`, `Retain_Set` and the forget/retain subsets of the
  dataset): `ID`, `biography`, `image` (`Test_Set`: `images`) as `{"bytes", "path"}` structs, and
  three task columns — `Classification_Task = {"Image_Textual_Questions": [...],
  "Pure_Text_Questions": [...]}`, each item `{"Question", "Options": {"A".."D"},
  "Correct_Answer": letter}`; `Generation_Task` and `Mask_Task` (cloze, the blank written `__`),
  lists of `{"Question", "Ground_Truth", "Type"}` with `Type` = `Image_Textual` | `Pure_Text`.
- `fine-tuning` (`ft_Data`, and the forget/retain splits of `MLLMMU/baseline_train_split`):
  `image`, `metadata` = a JSON string of `[{"Question", "Answer"}, ...]`, every pair asked with
  the person's image (kind `qa`), with or without a row-level `ID` (without one, a person is
  keyed by the name found below, else by the row's position).

Entities are the people's names, one per person id across all sets: the `Name` a profile
(`biography`, a JSON object or `Name: ...` lines) states, else the capitalised phrase most of
the person's questions, answers and profile mention (`names.frequent_name`); the log says per
folder how many names came from where, and a person with neither keeps the id. `meta.person_id`
keeps the dataset's id. Records get an "I don't know" phrase as `alt_answers`
(`idk.with_idk_answers`, drawn with `idk_seed`).

A classification item becomes one record whose `options` are the option texts in letter order
and whose `answer` is the correct option's text (`meta.answer_letter` keeps the letter). A
Mask_Task item keeps its sentence as the question and gets `meta.cloze`, the prompt MLLMU-Bench
asks (`cloze_prompt`), which the `cloze` metric uses; `meta.kind` tells generation, cloze and
classification records apart, so each metric scores its own kind (MLLMU-Bench's ROUGE-L is over
the generation questions only).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.data.idk import with_idk_answers
from mmunlearn.data.jsonl import DataError
from mmunlearn.data.names import NameSources, frequent_name, profile_name
from mmunlearn.data.tables import (
    ImageStore,
    Row,
    check_split_choice,
    check_unique_ids,
    default_sets,
    read_parquet_rows,
    show,
    text_field,
    with_progress,
)

log = logging.getLogger(__name__)

FORGET_PERCENTS = (5, 10, 15)
SETS = ("forget", "retain", "test", "celebrity")
KINDS = ("qa", "generation", "classification", "cloze")
TASK_COLUMNS = {
    "classification": "Classification_Task",
    "generation": "Generation_Task",
    "cloze": "Mask_Task",
}
CLASSIFICATION_LISTS = {"Image_Textual_Questions": "image", "Pure_Text_Questions": "text"}
QUESTION_TYPES = {"Image_Textual": "image", "Pure_Text": "text"}


def _folders(forget_percent: int) -> dict[str, str]:
    return {
        "forget": f"forget_{forget_percent}",
        "retain": f"retain_{100 - forget_percent}",
        "test": "Test_Set",
        "celebrity": "Retain_Set",
    }


def load_mllmu_bench(
    path: str | os.PathLike,
    forget_percent: int = 5,
    sets: tuple[str, ...] | None = None,
    kinds: tuple[str, ...] = KINDS,
    image_dir: str | os.PathLike | None = None,
    idk_seed: int = 0,
) -> list[Example]:
    """Records of the forget/retain split `forget_percent` (5, 10 or 15) and of the chosen `sets`
    (default: forget and retain, which must exist, plus test and celebrity when their folders
    do). `kinds` keeps only some question kinds. Images are written to `image_dir` (default
    `<cache>/images`) under their content hash."""
    root = Path(path)
    check_split_choice(
        "MLLMU-Bench",
        forget_percent,
        FORGET_PERCENTS,
        sets=(sets or (), SETS),
        kinds=(kinds, KINDS),
    )
    folders = _folders(forget_percent)
    if sets is None:
        sets = default_sets(SETS[:2], SETS[2:], lambda name: (root / folders[name]).is_dir())
    store = ImageStore(image_dir)
    rows = {name: _read(root / folders[name], kinds) for name in sets}
    if "test" in sets and "forget" not in rows:
        rows["forget"] = _read(root / folders["forget"], kinds)
    keyed = {name: _keyed(split_rows) for name, split_rows in rows.items()}
    names = _person_names(keyed, folders)
    forget_ids = {person for person, _, _ in keyed.get("forget", [])}

    examples: list[Example] = []
    for name in sets:
        split_rows = keyed[name]
        if name == "test":
            split_rows = [(p, w, r) for p, w, r in split_rows if p in forget_ids]
            log.info(
                "MLLMU-Bench %s: kept the %d rows of the %d forget people",
                folders[name],
                len(split_rows),
                len(forget_ids),
            )
        role = {"celebrity": "general"}.get(name, name)
        for person, where, row in with_progress(split_rows, f"MLLMU-Bench {folders[name]}"):
            entity = names.get(person) or (f"celebrity-{person}" if name == "celebrity" else person)
            examples += _row_examples(where, row, person, entity, role, folders[name], kinds, store)
    check_unique_ids(examples, str(root))
    log.info("MLLMU-Bench: %d records from %s", len(examples), ", ".join(sets))
    return with_idk_answers(examples, idk_seed)


LAYOUTS = {
    "evaluation": "ID, image (Test_Set: images) and the task columns "
    + ", ".join(TASK_COLUMNS.values()),
    "fine-tuning": "image and metadata (a JSON list of Question/Answer pairs), ID optional",
}


def _read(folder: Path, kinds: tuple[str, ...]) -> list[Row]:
    """The folder's rows, after checking the columns its layout needs for `kinds`."""
    columns = _columns(folder)
    if "metadata" in columns:
        return read_parquet_rows(folder, ("image", "metadata"), "MLLMU-Bench fine-tuning rows")
    if columns and not any(column in columns for column in ("ID", *TASK_COLUMNS.values())):
        layouts = "; ".join(f"{name}: {needs}" for name, needs in LAYOUTS.items())
        raise DataError(
            f"{folder}: columns {', '.join(columns)} match no MLLMU-Bench layout; known "
            f"layouts — {layouts}"
        )
    images = "images" if "images" in columns else "image"
    tasks = tuple(TASK_COLUMNS[kind] for kind in kinds if kind in TASK_COLUMNS)
    return read_parquet_rows(folder, ("ID", images, *tasks), "MLLMU-Bench evaluation rows")


def _columns(folder: Path) -> list[str]:
    """The first shard's column names; [] when there is none or it is unreadable (then
    read_parquet_rows names the problem)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    try:
        return pq.read_schema(files[0]).names if files else []
    except (pa.ArrowException, OSError):
        return []


def _keyed(rows: list[Row]) -> list[tuple[str, str, dict[str, Any]]]:
    """(person key, where, row): the row's `ID`, or, in the fine-tuning layout without one, the
    name its pairs mention, else `row-<n>`."""
    keyed = []
    for index, (where, row) in enumerate(rows):
        if "ID" in row:
            person = _person_id(row, where)
        else:
            found = frequent_name(_row_texts(row, where))
            person = found[0] if found is not None and found[1] >= 2 else f"row-{index}"
        keyed.append((person, where, row))
    return keyed


def _person_id(row: dict[str, Any], where: str) -> str:
    value = row.get("ID")
    if isinstance(value, int) or (isinstance(value, str) and value.strip()):
        return str(value)
    raise DataError(f"{where}, field 'ID': {show(value)} (expected a non-empty person id)")


def _person_names(
    keyed: dict[str, list[tuple[str, str, dict[str, Any]]]], folders: dict[str, str]
) -> dict[str, str]:
    """Person key → name, one per person across every loaded set: a profile's stated name wins
    over a name found in the texts (module docstring); the log says where each came from."""
    stated: dict[str, str] = {}
    mentioned: dict[str, tuple[int, str]] = {}
    for split_rows in keyed.values():
        for person, where, row in split_rows:
            name = profile_name(row.get("biography"))
            if name is not None:
                stated.setdefault(person, name)
                continue
            found = frequent_name(_row_texts(row, where))
            if found is not None and found[1] >= 2 and found[1] > mentioned.get(person, (0,))[0]:
                mentioned[person] = (found[1], found[0])
    for name, split_rows in keyed.items():
        sources = NameSources("MLLMU-Bench")
        for person in dict.fromkeys(person for person, _, _ in split_rows):
            if person in stated:
                sources.add("the profile's Name (biography)", stated[person])
            elif person in mentioned:
                sources.add("the person's questions, answers and profile", mentioned[person][1])
            else:
                sources.add("no name in the profile or questions (id kept)", person)
        sources.log(folders[name])
    return stated | {p: name for p, (_, name) in mentioned.items() if p not in stated}


def _row_texts(row: dict[str, Any], where: str) -> list[str]:
    """The texts of a row that may mention the person: profile, questions and answers."""
    texts = [row["biography"]] if isinstance(row.get("biography"), str) else []
    if "metadata" in row:
        return texts + [text for pair in _metadata_pairs(row, where) for text in pair]
    for column in ("Generation_Task", "Mask_Task"):
        for item in row.get(column) or []:
            texts += [v for v in (item.get("Question"), item.get("Ground_Truth")) if v]
    task = row.get("Classification_Task") or {}
    for key in CLASSIFICATION_LISTS:
        texts += [item["Question"] for item in task.get(key) or [] if item.get("Question")]
    return [text for text in texts if isinstance(text, str)]


def _row_examples(
    where: str,
    row: dict[str, Any],
    person: str,
    entity: str,
    role: str,
    split: str,
    kinds: tuple[str, ...],
    store: ImageStore,
) -> list[Example]:
    prefix = f"mllmu-{split}-{person}"
    if "metadata" in row:  # fine-tuning format: every pair is asked with the person's image
        if "qa" not in kinds:
            return []
        image = store.save(row["image"], f"{where}, field 'image'")
        return [
            Example(
                id=f"{prefix}-qa-{k}",
                entity=entity,
                role=role,
                question=question,
                answer=answer,
                image=image,
                meta={"modality": "image", "kind": "qa", "set": split, "person_id": person},
            )
            for k, (question, answer) in enumerate(_metadata_pairs(row, where))
        ]

    images = _row_images(row, where, store)
    counter = {"image": 0, "text": 0}  # the k-th image question uses images[k % len(images)]

    def record(kind: str, modality: str, question: str, answer: str, **extra: Any) -> Example:
        k = counter[modality]
        counter[modality] += 1
        return Example(
            id=f"{prefix}-{kind}-{modality}-{k}",
            entity=entity,
            role=role,
            question=question,
            answer=answer,
            image=images[k % len(images)] if modality == "image" else None,
            options=extra.pop("options", ()),
            meta={"modality": modality, "kind": kind, "set": split, "person_id": person, **extra},
        )

    examples = []
    for kind in ("generation", "cloze"):
        if kind not in kinds:
            continue
        column = TASK_COLUMNS[kind]
        for k, item in enumerate(_list(row.get(column), where, column)):
            path = f"{column}[{k}]."
            modality = _question_type(item, where, path)
            question = text_field(item, "Question", where, path)
            answer = text_field(item, "Ground_Truth", where, path)
            extra = {"cloze": cloze_prompt(question)} if kind == "cloze" else {}
            examples.append(record(kind, modality, question, answer, **extra))
    if "classification" in kinds:
        examples += _classification(row, where, record)
    return examples


def cloze_prompt(question: str) -> str:
    """A Mask_Task sentence as MLLMU-Bench's eval.py asks it (`evaluate_fill_in_the_blank`): the
    blank `__` written `[Blank]`, then the instruction to give only the missing word(s)."""
    return (
        question.replace("__", "[Blank]")
        + "\nPlease **ONLY** provide the correct answer that should replace the [Blank]."
    )


def _metadata_pairs(row: dict[str, Any], where: str) -> list[tuple[str, str]]:
    value = row["metadata"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{where}, field 'metadata': invalid JSON ({exc}); expected a JSON list of "
                "{Question, Answer} objects"
            ) from None
    pairs = [
        (
            text_field(item, "Question", where, f"metadata[{k}]."),
            text_field(item, "Answer", where, f"metadata[{k}]."),
        )
        for k, item in enumerate(_list(value, where, "metadata"))
    ]
    if not pairs:
        raise DataError(f"{where}, field 'metadata': no question/answer pairs (expected some)")
    return pairs


def _row_images(row: dict[str, Any], where: str, store: ImageStore) -> list[str]:
    if "images" in row:
        values = _list(row["images"], where, "images")
        if not values:
            raise DataError(f"{where}, field 'images': empty list (expected at least one image)")
        return [store.save(v, f"{where}, field 'images[{k}]'") for k, v in enumerate(values)]
    return [store.save(row.get("image"), f"{where}, field 'image'")]


def _list(value: Any, where: str, field: str) -> list[dict[str, Any]]:
    """A list of objects (absent or null: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise DataError(f"{where}, field {field!r}: {show(value)} (expected a list)")
    for k, item in enumerate(value):
        if not isinstance(item, dict):
            raise DataError(f"{where}, field '{field}[{k}]': {show(item)} (expected an object)")
    return value


def _question_type(item: dict[str, Any], where: str, path: str) -> str:
    kind = item.get("Type")
    if kind not in QUESTION_TYPES:
        raise DataError(
            f"{where}, field '{path}Type': {show(kind)} (expected one of "
            f"{', '.join(QUESTION_TYPES)})"
        )
    return QUESTION_TYPES[kind]


def _classification(row: dict[str, Any], where: str, record: Any) -> list[Example]:
    task = row.get("Classification_Task")
    if not isinstance(task, dict):
        raise DataError(
            f"{where}, field 'Classification_Task': {show(task)} (expected an object with "
            f"{', '.join(CLASSIFICATION_LISTS)})"
        )
    examples = []
    for key, modality in CLASSIFICATION_LISTS.items():
        field = f"Classification_Task.{key}"
        for k, item in enumerate(_list(task.get(key), where, field)):
            path = f"{field}[{k}]."
            question = text_field(item, "Question", where, path)
            options = item.get("Options")
            if not isinstance(options, dict):
                raise DataError(
                    f"{where}, field '{path}Options': {show(options)} (expected {{letter: text}})"
                )
            letters = sorted(letter for letter, text in options.items() if text is not None)
            for letter in letters:
                text_field(options, letter, where, f"{path}Options.")
            correct = text_field(item, "Correct_Answer", where, path).strip()
            if correct not in letters:
                raise DataError(
                    f"{where}, field '{path}Correct_Answer': {correct!r} (expected one of the "
                    f"option letters {', '.join(letters)})"
                )
            examples.append(
                record(
                    "classification",
                    modality,
                    question,
                    options[correct],
                    options=tuple(options[letter] for letter in letters),
                    answer_letter=correct,
                    option_letters=letters,
                )
            )
    return examples
