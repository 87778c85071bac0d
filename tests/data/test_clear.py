"""CLEAR loader on tiny parquet files written in the dataset's own schema."""

import logging
from collections import Counter

import pandas as pd
import pytest
from PIL import Image

from mmunlearn.data.clear import CAPTION_QUESTION, NAME_QUESTION, load_clear
from mmunlearn.data.jsonl import DataError
from mmunlearn.data.splits import check_unlearning_data
from mmunlearn.testing import png_bytes, write_parquet_split

CAPTIONS = {"ada": "ada reads a book", "bob": "bob rides a bike", "cy": "cy paints a wall"}


def image(name: str) -> dict:
    return {"bytes": png_bytes((sum(map(ord, name)) % 256, 40, 90)), "path": None}


def visual(name: str) -> dict:
    return {"image": image(name), "caption": CAPTIONS[name], "name": name}


def perturbed(name: str) -> dict:
    others = [c for n, c in CAPTIONS.items() if n != name]
    return {
        **visual(name),
        "perturbed_captions": others,
        "paraphrased_caption": f"{name} is busy",
        "perturbed_names": [n for n in CAPTIONS if n != name],
    }


def with_text(name: str, questions: int) -> list[dict]:
    """A `+tofu` folder: the visual row (no question) and the author's text rows (no image)."""
    rows = [{**visual(name), "question": None, "answer": None}]
    del rows[0]["name"]  # the +tofu subsets have image, caption, question, answer
    rows += [
        {
            "image": None,
            "caption": None,
            "question": f"what is fact {k} of {name}",
            "answer": f"{name}{k}",
        }
        for k in range(questions)
    ]
    return rows


@pytest.fixture()
def clear(tmp_path):
    root = tmp_path / "CLEAR"
    write_parquet_split(root / "forget01", [visual("ada")])
    write_parquet_split(root / "retain99", [visual("bob"), visual("cy")])
    write_parquet_split(root / "forget01_perturbed", [perturbed("ada")])
    write_parquet_split(root / "retain_perturbed", [perturbed("cy")])
    write_parquet_split(root / "forget01+tofu", with_text("ada", 2))
    write_parquet_split(root / "retain99+tofu", with_text("bob", 2) + with_text("cy", 2)[1:])
    write_parquet_split(
        root / "real_faces", [{"image": image("zoe"), "answer": "zoe", "options": ["amy", "zoe"]}]
    )
    real_world = {"image": image("sky"), "question": "what colour is the sky", "answer": "blue"}
    real_world |= {"prompt": "what colour is the sky? A. blue B. red", "options": ["blue", "red"]}
    write_parquet_split(root / "real_world", [real_world])
    return root


def test_visual_text_and_real_faces_records(clear, tmp_path):
    examples = load_clear(clear, forget_percent=1, image_dir=tmp_path / "i", questions_per_author=2)
    kinds = Counter((ex.role, ex.meta["kind"]) for ex in examples)
    assert kinds == {
        ("forget", "caption"): 1,
        ("retain", "caption"): 2,
        ("forget", "qa"): 2,
        ("retain", "qa"): 4,
        ("general", "name"): 1,
        ("general", "vqa"): 1,
    }
    ada = next(ex for ex in examples if ex.entity == "ada")
    assert (ada.question, ada.answer) == (CAPTION_QUESTION, "ada reads a book")
    assert ada.options == ("ada reads a book", "bob rides a bike", "cy paints a wall")
    assert ada.meta["paraphrased_answer"] == "ada is busy"
    assert Image.open(ada.image).size == (8, 8)
    bob = next(ex for ex in examples if ex.entity == "bob")
    assert bob.options == ()  # bob is not in retain_perturbed
    text = [ex for ex in examples if ex.meta["kind"] == "qa"]
    assert all(ex.image is None for ex in text)
    assert {ex.entity for ex in text if ex.role == "retain"} == {"bob", "cy"}  # one per person
    assert {ex.entity for ex in examples if ex.role == "forget"} == {"ada"}
    face, world = [ex for ex in examples if ex.role == "general"]
    assert face.entity == "zoe"
    assert (face.question, face.answer, face.options) == (NAME_QUESTION, "zoe", ("amy", "zoe"))
    assert (world.question, world.answer) == ("what colour is the sky", "blue")
    assert world.options == ("blue", "red")
    check_unlearning_data(examples, str(clear))


def test_name_task_uses_perturbed_names(clear, tmp_path):
    examples = load_clear(
        clear, forget_percent=1, sets=("forget",), visual_task="both", image_dir=tmp_path / "i"
    )
    assert [(ex.meta["kind"], ex.answer, ex.options) for ex in examples] == [
        (
            "caption",
            "ada reads a book",
            ("ada reads a book", "bob rides a bike", "cy paints a wall"),
        ),
        ("name", "ada", ("ada", "bob", "cy")),
    ]


def test_missing_column_names_file_and_column(clear, tmp_path):
    write_parquet_split(clear / "retain99", [{"image": image("bob"), "name": "bob"}])
    with pytest.raises(
        DataError, match=r"retain99/train-00000-of-00001.parquet: missing column\(s\) 'caption'"
    ):
        load_clear(clear, forget_percent=1, image_dir=tmp_path / "i", questions_per_author=2)


def test_corrupt_image_bytes_name_file_row_and_field(clear, tmp_path):
    rows = [visual("bob"), {**visual("cy"), "image": {"bytes": b"GIF89a broken", "path": None}}]
    write_parquet_split(clear / "retain99", rows)
    with pytest.raises(DataError, match=r"retain99/.*row 1, field 'image'.*not a readable image"):
        load_clear(clear, forget_percent=1, image_dir=tmp_path / "i", questions_per_author=2)


def test_empty_split_is_an_error(clear, tmp_path):
    pd.DataFrame([visual("ada")]).iloc[:0].to_parquet(
        clear / "forget01" / "train-00000-of-00001.parquet"
    )
    with pytest.raises(DataError, match=r"forget01: the split has no rows"):
        load_clear(clear, forget_percent=1, image_dir=tmp_path / "i", questions_per_author=2)


def test_unknown_split_names_are_refused(clear, tmp_path):
    with pytest.raises(ValueError, match=r"forget_percent=2; expected one of \(1, 5, 10\)"):
        load_clear(clear, forget_percent=2)
    with pytest.raises(ValueError, match=r"unknown sets \['text'\]"):
        load_clear(clear, forget_percent=1, sets=("text",))
    with pytest.raises(ValueError, match=r"visual_task='face'"):
        load_clear(clear, forget_percent=1, visual_task="face")
    with pytest.raises(DataError, match=r"forget05: folder not found"):
        load_clear(clear, forget_percent=5, image_dir=tmp_path / "i")


def test_a_person_in_forget_and_retain_is_caught(clear, tmp_path):
    write_parquet_split(clear / "retain99", [visual("bob"), visual("ada")])
    examples = load_clear(
        clear, forget_percent=1, sets=("forget", "retain"), image_dir=tmp_path / "i"
    )
    with pytest.raises(ValueError, match=r"entity 'ada' is in both forget"):
        check_unlearning_data(examples, str(clear))


def test_records_train_one_step_and_evaluate(clear, tmp_path, train_and_evaluate):
    examples = load_clear(clear, forget_percent=1, image_dir=tmp_path / "i", questions_per_author=2)
    summary = train_and_evaluate(examples)
    assert set(summary) == {"forget", "retain", "general"}
    assert set(summary["forget"]["by_modality"]) == {"image", "text"}


PEOPLE = {"ada": "Ada Lind", "bob": "Bo Rask"}


def reduced(key: str) -> dict:
    """A visual row of a CLEAR version without the `name` column: the name is in the caption."""
    return {"image": image(key), "caption": f"{PEOPLE[key]} sits by a window"}


def author_rows(key: str) -> list[dict]:
    rows = [{**reduced(key), "question": None, "answer": None}]
    questions = [f"where was {PEOPLE[key]} born", f"what did {PEOPLE[key]} write"]
    return rows + [
        {"image": None, "caption": None, "question": q, "answer": f"{key} {k}"}
        for k, q in enumerate(questions)
    ]


@pytest.fixture()
def clear_without_names(tmp_path):
    root = tmp_path / "CLEAR-reduced"
    write_parquet_split(root / "forget01", [reduced("ada")])
    write_parquet_split(root / "retain99", [reduced("bob")])
    others = {"perturbed_captions": ["someone paints"], "paraphrased_caption": "a person sits"}
    write_parquet_split(root / "forget01_perturbed", [{**reduced("ada"), **others}])
    write_parquet_split(root / "forget01+tofu", author_rows("ada"))
    write_parquet_split(root / "retain99+tofu", author_rows("bob"))
    return root


def test_without_a_name_column_the_caption_names_the_person(clear_without_names, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    examples = load_clear(
        clear_without_names,
        forget_percent=1,
        visual_task="both",
        image_dir=tmp_path / "i",
        questions_per_author=2,
    )
    by_role = {
        (ex.role, ex.meta["kind"]): ex.entity for ex in examples if ex.meta["kind"] != "name"
    }
    assert by_role == {
        ("forget", "caption"): "Ada Lind",
        ("retain", "caption"): "Bo Rask",
        ("forget", "qa"): "Ada Lind",
        ("retain", "qa"): "Bo Rask",
    }
    name_task = next(ex for ex in examples if ex.meta["kind"] == "name" and ex.role == "forget")
    assert name_task.answer == "Ada Lind"
    caption = next(ex for ex in examples if ex.meta["kind"] == "caption" and ex.role == "forget")
    assert caption.options == ("Ada Lind sits by a window", "someone paints")
    assert caption.meta["paraphrased_answer"] == "a person sits"
    assert "CLEAR forget01: person names — 1 from an author name of the text rows" in caplog.text
    assert "CLEAR forget01+tofu: person names — 1 from a visual row's name" in caplog.text
    check_unlearning_data(examples, str(clear_without_names))


def test_without_text_rows_the_caption_phrase_names_the_person(clear_without_names, tmp_path):
    examples = load_clear(
        clear_without_names, forget_percent=1, sets=("forget", "retain"), image_dir=tmp_path / "i"
    )
    assert [ex.entity for ex in examples] == ["Ada Lind", "Bo Rask"]


def test_the_forget_prompt_and_entity_swap_name_the_person(clear_without_names, tmp_path):
    from mmunlearn.teachers.entity_swap import swapped_question
    from mmunlearn.teachers.icu import FORGET_PROMPT, in_context

    examples = load_clear(
        clear_without_names, forget_percent=1, image_dir=tmp_path / "i", questions_per_author=2
    )
    text = next(ex for ex in examples if ex.role == "forget" and ex.meta["kind"] == "qa")
    assert in_context(FORGET_PROMPT, "prefix", text) == {"prefix": "Forget Ada Lind ."}
    assert swapped_question(text, ("Zed Quill",), seed=0, draw=0) == "where was Zed Quill born"


@pytest.mark.parametrize("method", ["idk", "dpo_idk"])
def test_idk_methods_run_on_clear(clear, tmp_path, train_and_evaluate, method):
    from mmunlearn.data.idk import IDK_ANSWERS

    examples = load_clear(clear, forget_percent=1, image_dir=tmp_path / "i", questions_per_author=2)
    assert all(ex.alt_answers[0] in IDK_ANSWERS for ex in examples)
    assert "forget" in train_and_evaluate(examples, method)
