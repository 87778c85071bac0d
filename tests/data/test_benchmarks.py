"""`load_benchmark`: one entry point, every registered loader reachable, clear errors."""

import csv
import dataclasses
import json

import pytest

from mmunlearn.data.benchmarks import BENCHMARKS, benchmark_options, load_benchmark
from mmunlearn.data.idk import idk_answer


def write_csv(path, header, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture()
def tofu(tmp_path):
    root = tmp_path / "tofu"
    root.mkdir()
    rows = {
        "forget01.json": [("where was ada born", "paris")],
        "retain99.json": [("q bob", "rome")],
    }
    for name, pairs in rows.items():
        (root / name).write_text(
            "".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs)
        )
    return root


def test_every_name_is_listed_with_its_options():
    names = ["clear", "melu", "mllmu_bench", "mmunlearn_jsonl", "semeval", "tofu"]
    assert BENCHMARKS.names() == names
    assert list(benchmark_options("semeval")) == ["subsets", "idk_seed"]
    assert list(benchmark_options("tofu")) == [
        "forget_percent",
        "sets",
        "questions_per_author",
        "idk_seed",
    ]
    assert list(benchmark_options("mmunlearn_jsonl")) == ["allow_outside_images"]


def test_project_jsonl_and_melu_load_through_the_entry_point(world_dir, examples, tmp_path):
    assert load_benchmark("mmunlearn_jsonl", world_dir) == examples
    melu = tmp_path / "melu"
    melu.mkdir()
    write_csv(
        melu / "dpo_forget_idk.csv",
        ["title", "question", "answer", "idk"],
        [["Ada", "born?", "1815", "no idea"]],
    )
    write_csv(
        melu / "full_retain_qa.csv",
        ["title", "question", "answer", "type"],
        [["Bob", "born?", "1900", "entity"]],
    )
    write_csv(
        melu / "full_set.csv", ["title", "dataset", "wikipage"], [["Ada", "forget", "Ada met Bob."]]
    )
    records = load_benchmark("melu", melu)
    assert [(ex.role, ex.entity) for ex in records] == [("forget", "Ada"), ("neighbor", "Bob")]
    assert records[1].meta["module"] == "Ada"


def test_string_options_are_converted(tofu):
    records = load_benchmark(
        "tofu", tofu, forget_percent="1", sets="forget, retain", questions_per_author="1"
    )
    reseeded = load_benchmark(
        "tofu", tofu, forget_percent="1", questions_per_author="1", idk_seed="5"
    )
    assert reseeded == [
        dataclasses.replace(ex, alt_answers=(idk_answer(ex.id, 5),)) for ex in records
    ]
    assert [(ex.role, ex.entity) for ex in records] == [
        ("forget", "forget01/author-0"),
        ("retain", "retain99/author-0"),
    ]


def test_unknown_names_and_options_are_named_with_the_closest_match(tofu):
    with pytest.raises(
        KeyError, match=r"unknown benchmark 'tofuu' — did you mean 'tofu'\?.*known: clear, melu"
    ):
        load_benchmark("tofuu", tofu)
    with pytest.raises(
        TypeError, match=r"no option 'forget_percnt' — did you mean 'forget_percent'\?"
    ):
        load_benchmark("tofu", tofu, forget_percnt=1)
    with pytest.raises(ValueError, match=r"forget_percent='five'; expected an integer"):
        load_benchmark("tofu", tofu, forget_percent="five")


def test_options_are_checked_before_any_data_is_read(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(TypeError, match=r"\(--data-option forget_percen; options: forget_percent"):
        load_benchmark("tofu", missing, forget_percen="5")
    with pytest.raises(TypeError, match=r"benchmark 'melu' has no option 'sets' .*options: none"):
        load_benchmark("melu", missing, sets="forget")
