"""MLLMU-Bench loader on tiny parquet files written in the dataset's own schema."""

import json
import logging
from collections import Counter

import pandas as pd
import pytest
from PIL import Image

from mmunlearn.data.jsonl import DataError
from mmunlearn.data.mllmu_bench import load_mllmu_bench
from mmunlearn.data.splits import check_unlearning_data
from mmunlearn.testing import png_bytes, write_parquet_split

JOBS = {"p1": "pilot", "p2": "baker", "p3": "judge", "c1": "singer"}
NAMES = {"p1": "Ann Vale", "p2": "Bo Kerr", "p3": "Cy Dunn", "c1": "Dee Star"}


def image_struct(person: str, shade: int = 0) -> dict:
    color = (sum(map(ord, person)), 80 + 40 * shade, 160)  # one colour per person and shade
    return {"bytes": png_bytes(color), "path": f"{person}_{shade}.png"}


def evaluation_row(person: str, images: int = 0) -> dict:
    """One person in the evaluation format (Full_Set, forget_k, retain_k, Test_Set, Retain_Set);
    `images` > 0 gives Test_Set's list of transformed images instead of one `image`."""
    job = JOBS[person]
    options = {"A": "baker", "B": "pilot", "C": "judge", "D": "singer"}
    letter = next(k for k, v in options.items() if v == job)
    row = {"ID": person}
    if images:
        row["images"] = [image_struct(person, shade) for shade in range(images)]
    else:
        profile = json.dumps({"Name": NAMES[person], "Occupation": job})
        row |= {"image": image_struct(person), "biography": profile}
    name = NAMES[person]
    mcq = {"Question": f"what is the job of {name}", "Options": options, "Correct_Answer": letter}
    row["Classification_Task"] = {
        "Image_Textual_Questions": [{**mcq, "Question": "what is the job of this person"}],
        "Pure_Text_Questions": [mcq],
    }
    row["Generation_Task"] = [
        {"Question": "what does this person do", "Ground_Truth": job, "Type": "Image_Textual"},
        {"Question": f"what does {name} do", "Ground_Truth": job, "Type": "Pure_Text"},
    ]
    row["Mask_Task"] = [
        {"Question": f"{name} works as a __", "Ground_Truth": job, "Type": "Pure_Text"},
        {"Question": "this person works as a __", "Ground_Truth": job, "Type": "Image_Textual"},
    ]
    return row


def finetune_row(person: str) -> dict:
    """ft_Data / baseline_train_split: `metadata` is a JSON string of QA pairs."""
    pairs = [{"Question": f"what does {NAMES[person]} do", "Answer": JOBS[person]}]
    pairs.append({"Question": "who is this", "Answer": NAMES[person]})
    return {"image": image_struct(person), "ID": person, "metadata": json.dumps(pairs)}


@pytest.fixture()
def bench(tmp_path):
    root = tmp_path / "MLLMU-Bench"
    write_parquet_split(root / "forget_5", [evaluation_row("p1")])
    write_parquet_split(root / "retain_95", [evaluation_row("p2"), evaluation_row("p3")])
    write_parquet_split(
        root / "Test_Set", [evaluation_row("p1", images=2), evaluation_row("p2", images=1)]
    )
    write_parquet_split(root / "Retain_Set", [evaluation_row("c1")])
    return root


def test_every_set_and_question_kind_becomes_records(bench, tmp_path):
    examples = load_mllmu_bench(bench, image_dir=tmp_path / "images")
    roles = Counter(ex.role for ex in examples)
    assert roles == {"forget": 6, "retain": 12, "test": 6, "general": 6}  # 6 questions a person
    assert {ex.entity for ex in examples if ex.role == "test"} == {"Ann Vale"}  # forget only
    assert {ex.entity for ex in examples if ex.role == "general"} == {"Dee Star"}
    assert {ex.meta["person_id"] for ex in examples if ex.role == "forget"} == {"p1"}
    kinds = Counter((ex.meta["kind"], ex.modality) for ex in examples if ex.role == "forget")
    assert kinds == {(k, m): 1 for k in ("generation", "cloze", "classification") for m in MODES}
    mcq = next(ex for ex in examples if ex.meta["kind"] == "classification" and ex.role == "forget")
    assert mcq.options == ("baker", "pilot", "judge", "singer")
    assert mcq.answer == "pilot" and mcq.meta["answer_letter"] == "B"
    for ex in examples:
        assert (ex.image is None) == (ex.meta["modality"] == "text")
        if ex.image:
            assert Image.open(ex.image).size == (8, 8)
    test_images = [ex.image for ex in examples if ex.role == "test" and ex.image]
    assert len(set(test_images)) == 2  # Test_Set's two transformed images both used
    cloze = next(ex for ex in examples if ex.meta["kind"] == "cloze")
    assert "__" in cloze.question
    assert cloze.meta["cloze"].startswith(cloze.question.replace("__", "[Blank]") + "\nPlease")
    check_unlearning_data(examples, str(bench))


MODES = ("image", "text")


def test_images_are_content_addressed_and_written_once(bench, tmp_path):
    load_mllmu_bench(bench, image_dir=tmp_path / "images")
    files = sorted((tmp_path / "images").iterdir())
    assert len(files) == 5  # p1, p2, p3, c1 and Test_Set's second image of p1 (p1_0 repeats)
    stamps = [f.stat().st_mtime_ns for f in files]
    load_mllmu_bench(bench, image_dir=tmp_path / "images")
    assert [f.stat().st_mtime_ns for f in sorted((tmp_path / "images").iterdir())] == stamps


def test_finetuning_rows_give_image_qa_pairs(tmp_path):
    root = tmp_path / "baseline_train_split"
    write_parquet_split(root / "forget_10", [finetune_row("p1")])
    write_parquet_split(root / "retain_90", [finetune_row("p2")])
    examples = load_mllmu_bench(root, forget_percent=10, image_dir=tmp_path / "img")
    assert [(ex.role, ex.answer, ex.meta["kind"]) for ex in examples] == [
        ("forget", "pilot", "qa"),
        ("forget", "Ann Vale", "qa"),
        ("retain", "baker", "qa"),
        ("retain", "Bo Kerr", "qa"),
    ]
    assert all(ex.image for ex in examples)


def test_kinds_and_sets_select(bench, tmp_path):
    examples = load_mllmu_bench(
        bench, sets=("forget", "retain"), kinds=("classification",), image_dir=tmp_path / "i"
    )
    assert {ex.meta["kind"] for ex in examples} == {"classification"}
    assert {ex.role for ex in examples} == {"forget", "retain"}


def test_missing_column_names_file_and_column(bench, tmp_path):
    rows = [evaluation_row("p2")]
    del rows[0]["Generation_Task"]
    write_parquet_split(bench / "retain_95", rows)
    with pytest.raises(DataError, match=r"retain_95.*missing column\(s\) 'Generation_Task'"):
        load_mllmu_bench(bench, image_dir=tmp_path / "i")


def test_corrupt_image_bytes_name_file_row_and_field(bench, tmp_path):
    rows = [evaluation_row("p2"), evaluation_row("p3")]
    rows[1]["image"] = {"bytes": b"\x89PNG not really", "path": "p3.png"}
    write_parquet_split(bench / "retain_95", rows)
    with pytest.raises(DataError, match=r"retain_95.*row 1, field 'image'.*not a readable image"):
        load_mllmu_bench(bench, image_dir=tmp_path / "i")


def test_bad_answer_letter_is_named(bench, tmp_path):
    row = evaluation_row("p1")
    row["Classification_Task"]["Pure_Text_Questions"][0]["Correct_Answer"] = "E"
    write_parquet_split(bench / "forget_5", [row])
    with pytest.raises(
        DataError,
        match=r"row 0, field 'Classification_Task.Pure_Text_Questions\[0\].Correct_Answer': 'E'",
    ):
        load_mllmu_bench(bench, image_dir=tmp_path / "i")


def test_empty_split_is_an_error(bench, tmp_path):
    empty = pd.DataFrame([evaluation_row("p1")]).iloc[:0]
    empty.to_parquet(bench / "forget_5" / "train-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"forget_5: the split has no rows"):
        load_mllmu_bench(bench, image_dir=tmp_path / "i")


def test_unknown_split_names_are_refused(bench, tmp_path):
    with pytest.raises(ValueError, match=r"forget_percent=7; expected one of \(5, 10, 15\)"):
        load_mllmu_bench(bench, forget_percent=7)
    with pytest.raises(ValueError, match=r"unknown sets \['tset'\]"):
        load_mllmu_bench(bench, sets=("forget", "tset"))
    with pytest.raises(DataError, match=r"forget_10: folder not found"):
        load_mllmu_bench(bench, forget_percent=10, image_dir=tmp_path / "i")


def test_a_person_in_forget_and_retain_is_caught(bench, tmp_path):
    write_parquet_split(bench / "retain_95", [evaluation_row("p2"), evaluation_row("p1")])
    examples = load_mllmu_bench(bench, sets=("forget", "retain"), image_dir=tmp_path / "i")
    with pytest.raises(ValueError, match=r"entity 'Ann Vale' .*forget"):
        check_unlearning_data(examples, str(bench))


def test_records_train_one_step_and_evaluate(bench, tmp_path, train_and_evaluate):
    examples = load_mllmu_bench(bench, image_dir=tmp_path / "images")
    summary = train_and_evaluate(examples)
    assert set(summary) == {"forget", "test", "retain", "general"}
    assert set(summary["forget"]["by_modality"]) == {"image", "text"}


def test_a_file_that_is_not_parquet_is_named(bench, tmp_path):
    (bench / "forget_5" / "train-00000-of-00001.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(
        DataError, match=r"forget_5/train-00000-of-00001.parquet: not a readable parquet"
    ):
        load_mllmu_bench(bench, image_dir=tmp_path / "i")


def test_records_survive_the_project_jsonl(bench, tmp_path):
    """Any benchmark can feed today's `mmunlearn unlearn --data` by saving it as JSONL."""
    from mmunlearn.data.jsonl import load_examples, save_examples

    examples = load_mllmu_bench(bench, image_dir=tmp_path / "data" / "images")
    save_examples(tmp_path / "data" / "mllmu.jsonl", examples)
    back = load_examples(tmp_path / "data" / "mllmu.jsonl")
    assert back == examples
    assert [ex.meta for ex in back] == [ex.meta for ex in examples]


def test_names_come_from_the_profile_or_else_the_questions(bench, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    rows = [evaluation_row("p2"), evaluation_row("p3")]
    for row in rows:
        del row["biography"]  # a reduced copy without profiles
    write_parquet_split(bench / "retain_95", rows)
    examples = load_mllmu_bench(bench, image_dir=tmp_path / "i")
    entities = {ex.role: set() for ex in examples}
    for ex in examples:
        entities[ex.role].add(ex.entity)
    assert entities == {
        "forget": {"Ann Vale"},
        "retain": {"Bo Kerr", "Cy Dunn"},
        "test": {"Ann Vale"},
        "general": {"Dee Star"},
    }
    assert "MLLMU-Bench forget_5: person names — 1 from the profile's Name" in caplog.text
    assert "MLLMU-Bench retain_95: person names — 2 from the person's questions" in caplog.text
    # Test_Set rows carry no profile: one name per person id, whichever set states it
    assert (
        "Test_Set: person names — 1 from the profile's Name (biography) (e.g. 'Ann Vale'); 1 from the person's questions"
        in caplog.text
    )


def test_finetuning_rows_without_ids_are_keyed_by_name(tmp_path):
    root = tmp_path / "baseline_train_split"
    rows = {"p1": finetune_row("p1"), "p2": finetune_row("p2")}
    for row in rows.values():
        del row["ID"]
    write_parquet_split(root / "forget_5", [rows["p1"]])
    write_parquet_split(root / "retain_95", [rows["p2"]])
    examples = load_mllmu_bench(root, image_dir=tmp_path / "img")
    assert [(ex.entity, ex.answer) for ex in examples] == [
        ("Ann Vale", "pilot"),
        ("Ann Vale", "Ann Vale"),
        ("Bo Kerr", "baker"),
        ("Bo Kerr", "Bo Kerr"),
    ]
    assert examples[0].id == "mllmu-forget_5-Ann Vale-qa-0"
    check_unlearning_data(examples, str(root))


def test_an_unknown_layout_names_the_known_ones(bench, tmp_path):
    write_parquet_split(bench / "forget_5", [{"picture": b"x", "text": "hello"}])
    with pytest.raises(
        DataError,
        match=r"forget_5: columns picture, text match no MLLMU-Bench.*"
        r"evaluation: ID, image.*fine-tuning: image and metadata",
    ):
        load_mllmu_bench(bench, image_dir=tmp_path / "i")


def test_the_forget_prompt_and_entity_swap_name_the_person(bench, tmp_path):
    from mmunlearn.teachers.entity_swap import swapped_question
    from mmunlearn.teachers.icu import FORGET_PROMPT, in_context

    examples = load_mllmu_bench(bench, sets=("forget",), image_dir=tmp_path / "i")
    text = next(ex for ex in examples if ex.meta["kind"] == "generation" and not ex.image)
    assert in_context(FORGET_PROMPT, "prefix", text) == {"prefix": "Forget Ann Vale ."}
    assert swapped_question(text, ("Zed Quill",), seed=0, draw=0) == "what does Zed Quill do"


@pytest.mark.parametrize("method", ["idk", "dpo_idk"])
def test_idk_methods_run_on_mllmu_bench(bench, tmp_path, train_and_evaluate, method):
    from mmunlearn.data.idk import IDK_ANSWERS

    examples = load_mllmu_bench(bench, image_dir=tmp_path / "images")
    assert all(ex.alt_answers[0] in IDK_ANSWERS for ex in examples)
    assert "forget" in train_and_evaluate(examples, method)
