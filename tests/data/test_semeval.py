"""SemEval-2025 Task 4 loader: hand-made files (errors name file, row, field) and the real data."""

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmunlearn.data.jsonl import DataError
from mmunlearn.data.semeval import PARQUET, Document, document_example, load_semeval
from mmunlearn.data.splits import check_unlearning_data

SEMEVAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "semeval25"


def row(id_, role, task="Task2", input_="What is the phone of Ann Lee?", output="555"):
    return {"id": id_, "input": input_, "output": output, "task": task, "split": role}


def write_folder(folder, rows=None, drop_column=None):
    rows = rows or {}
    for (role, subset), name in PARQUET.items():
        # each split's own answer: a fact on both forget and retain is refused by the run
        default = row(f"{role}{subset}doc" + "qa0", role, output=f"555-{role}-{subset}")
        items = rows.get((role, subset), [default])
        table = pa.Table.from_pylist(items)
        if drop_column:
            table = table.drop_columns([drop_column])
        pq.write_table(table, folder / name)
    (folder / "member.jsonl").write_text(
        json.dumps({"id": 7, "document": "Ann Lee\n\nAnn Lee is a baker."}) + "\n"
    )
    (folder / "nonmember.jsonl").write_text(
        json.dumps({"id": "8", "document": "Bo Chan\n\nBo Chan is a pilot."}) + "\n"
    )
    return folder


def test_items_become_examples_with_task_kind_and_document(tmp_path):
    prefix = "Ann Lee was born in 1970. Her phone"
    rows = {
        ("forget", "train"): [
            row('"ab-1"sc1', "forget", "Task1", prefix, "number is 555."),
            row('"ab-1"qa0', "forget", "Task1"),
        ]
    }
    data = load_semeval(write_folder(tmp_path, rows))
    sc = next(ex for ex in data.examples if ex.meta["kind"] == "sc")
    assert (sc.role, sc.question, sc.answer, sc.entity) == (
        "forget",
        prefix,
        "number is 555.",
        "ab-1",
    )
    assert sc.meta["task"] == "Task1" and sc.meta["subset"] == "train"
    assert Counter(ex.role for ex in data.examples) == {"forget": 3, "retain": 2}
    check_unlearning_data(data.examples, "hand-made")
    assert data.members() == [Document("7", "Ann Lee\n\nAnn Lee is a baker.", True)]
    assert [d.id for d in data.members(False)] == ["8"]
    doc = document_example(data.members()[0], "forget")
    assert (doc.question, doc.answer) == ("Ann Lee", "Ann Lee is a baker.")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (row("docqa0", "retain"), "field 'split': 'retain' (expected 'forget'"),
        (row("docqa0", "forget", task="Task4"), "field 'task': 'Task4'"),
        (row("doc-no-kind", "forget"), "field 'id': 'doc-no-kind' (expected a document id"),
        (row("docqa0", "forget", output=" "), "field 'output'"),
    ],
)
def test_a_bad_row_names_file_row_and_field(tmp_path, bad, message):
    rows = {("forget", "train"): [row("okqa0", "forget"), bad]}
    with pytest.raises(DataError, match="forget_train-00000-of-00001.parquet, row 1") as error:
        load_semeval(write_folder(tmp_path, rows))
    assert message in str(error.value)


def test_a_missing_column_is_named(tmp_path):
    with pytest.raises(DataError, match="missing column\\(s\\) 'task'"):
        load_semeval(write_folder(tmp_path, drop_column="task"))


def test_a_document_without_text_is_named(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "nonmember.jsonl").write_text(
        '{"id": "1", "document": "ok\\n\\ntext"}\n{"id": "2"}\n'
    )
    with pytest.raises(DataError, match="nonmember.jsonl, row 2, field 'document'"):
        load_semeval(tmp_path)


@pytest.mark.realdata
@pytest.mark.skipif(not SEMEVAL.is_dir(), reason=f"SemEval data not found at {SEMEVAL}")
def test_the_real_files_load_with_their_documented_counts():
    data = load_semeval(SEMEVAL)
    counts = Counter((ex.role, ex.meta["subset"]) for ex in data.examples)
    assert counts == {
        ("forget", "train"): 1112,
        ("forget", "validation"): 254,
        ("retain", "train"): 1136,
        ("retain", "validation"): 278,
    }
    assert Counter(ex.meta["kind"] for ex in data.examples) == {
        "qa": 770 + 173 + 772 + 189,
        "sc": 342 + 81 + 364 + 89,
    }
    assert {ex.meta["task"] for ex in data.examples} == {"Task1", "Task2", "Task3"}
    check_unlearning_data(data.examples, str(SEMEVAL))  # no document both forgotten and kept
    members = {d.id for d in data.members()}
    assert len(members) == 150 and len(data.members(False)) == 150
    forget_train_docs = {
        ex.entity for ex in data.examples if ex.meta["subset"] == "train" and ex.role == "forget"
    }
    assert members <= forget_train_docs  # the README: members are forget_train documents


def test_the_benchmark_entry_point_gives_the_items(tmp_path):
    from mmunlearn.data.benchmarks import load_benchmark

    folder = write_folder(tmp_path)
    import dataclasses

    from mmunlearn.data.idk import IDK_ANSWERS

    items = load_benchmark("semeval", folder, subsets="train")
    assert [dataclasses.replace(ex, alt_answers=()) for ex in items] == [
        ex for ex in load_semeval(folder).examples if ex.meta["subset"] == "train"
    ]
    assert {ex.role for ex in items} == {"forget", "retain"}
    assert all(ex.alt_answers[0] in IDK_ANSWERS for ex in items)  # so idk and dpo_idk run
