"""Bad data and bad model folders: images outside the data or in a refused format, overlapping
forget and kept rows, damaged files, a processor that is not the model's.

Each row of `CASES` is one class (tests/bad_inputs/matrix.py says what a row checks)."""

import json

import pytest
from matrix import Case, check_case, eval_argv, unlearn_argv
from PIL import Image

from mmunlearn.testing import foreign_tokenizer

OUTSIDE = ("leads outside the data folder", "allow_outside_images=true")


def edit_row(scene, role, index, **changes):
    """Change fields of row `index` (from 0) of `<role>.jsonl`."""
    path = scene.world / f"{role}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[index].update(changes)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def image_at(path_of):
    """The first forget row's image set to `path_of(scene)` (a string)."""

    def build(scene):
        edit_row(scene, "forget", 0, image=path_of(scene))
        return unlearn_argv(scene)

    return build


def eval_image_outside(scene):
    edit_row(scene, "forget", 0, image="../model/config.json")
    return eval_argv(scene)


def symlink_out(scene):
    (scene.tmp / "secret.png").write_bytes((scene.world / "images" / "p000.png").read_bytes())
    (scene.world / "images" / "link.png").symlink_to(scene.tmp / "secret.png")
    edit_row(scene, "forget", 0, image="images/link.png")
    return unlearn_argv(scene)


def image_file(write):
    """The first forget row's image file replaced by what `write(path)` puts there."""

    def build(scene):
        write(scene.world / "images" / "p000.png")
        return unlearn_argv(scene)

    return build


def eps(path):
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")


def huge(path):
    Image.new("1", (8000, 6300)).save(path)  # 50.4 megapixels, a few kB on disk


def kept_row(role, **changes):
    """Row 0 of `<role>.jsonl` changed (e.g. to share something with the forget set)."""

    def build(scene):
        edit_row(scene, role, 0, **changes)
        return unlearn_argv(scene)

    return build


def forget_row(scene):
    return json.loads((scene.world / "forget.jsonl").read_text().splitlines()[0])


def forget_name_respelled(scene):
    edit_row(scene, "retain", 0, entity=f"  {forget_row(scene)['entity'].upper()} ")
    return unlearn_argv(scene)


def forget_portrait_on_retain(scene):
    retain = json.loads((scene.world / "retain.jsonl").read_text().splitlines()[0])
    portrait = (scene.world / "images" / "p000.png").read_bytes()
    (scene.world / retain["image"]).write_bytes(portrait)  # same bytes, another file name
    return unlearn_argv(scene)


def forget_fact_under_another_name(scene):
    forget = forget_row(scene)
    edit_row(scene, "forget", 0, image=None)  # a text question: the fact is question + answer
    edit_row(
        scene, "retain", 0, question=forget["question"], answer=f" {forget['answer']}", image=None
    )
    return unlearn_argv(scene)


def forget_person_in_holdout(scene):
    edit_row(scene, "holdout", 0, entity=forget_row(scene)["entity"].lower())
    return unlearn_argv(scene)


def damaged(name, data):
    def build(scene):
        path = scene.world / name
        path.write_bytes(data(path.read_bytes()))
        return unlearn_argv(scene)

    return build


def not_utf8(data):
    first, _, rest = data.partition(b"\n")
    return first + b"\n\xff" + rest


def without_tokenizer(scene):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (scene.model / name).unlink(missing_ok=True)
    return unlearn_argv(scene)


def smaller_foreign_tokenizer(scene):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(scene.model)
    processor.tokenizer = foreign_tokenizer()
    processor.save_pretrained(scene.model)
    return unlearn_argv(scene)


def image_token_of_another_model(scene):
    config = json.loads((scene.model / "config.json").read_text())
    config["image_token_id"] = 3
    (scene.model / "config.json").write_text(json.dumps(config))
    return unlearn_argv(scene)


CASES = [
    # images stay inside the data folder: one message whether or not the outside path exists
    Case(
        "image: absolute path", image_at(lambda s: str(s.tmp / "model" / "config.json")), 2, OUTSIDE
    ),
    Case("image: absolute, missing", image_at(lambda s: str(s.tmp / "nothing.png")), 2, OUTSIDE),
    Case("image: '..' to a file", image_at(lambda s: "../model/config.json"), 2, OUTSIDE),
    Case("image: '..' to nothing", image_at(lambda s: "../nothing.png"), 2, OUTSIDE),
    Case("image: symlink out", symlink_out, 2, OUTSIDE),
    Case("image: '..' read by eval", eval_image_outside, 2, OUTSIDE),
    # formats are an allow-list read from the contents; a pixel cap before decoding
    Case("image: EPS named .png", image_file(eps), 2, ("forget.jsonl, row 1", "allowed format")),
    Case(
        "image: 50 megapixels",
        image_file(huge),
        2,
        (
            "forget.jsonl, row 1",
            "50,400,000 pixels",
            "cap of 50,000,000",
            "MMUNLEARN_MAX_IMAGE_PIXELS",
        ),
    ),
    # forget and kept rows must not share a person, an image or a fact
    Case(
        "forget name respelled on retain",
        forget_name_respelled,
        2,
        ("in both forget", "retain.jsonl, row 1"),
    ),
    Case(
        "forget portrait on a retain row",
        forget_portrait_on_retain,
        2,
        ("same image", "forget.jsonl, row 1"),
    ),
    Case(
        "forget fact on a retain row",
        forget_fact_under_another_name,
        2,
        ("same question", "retain.jsonl, row 1"),
    ),
    Case(
        "forget person in holdout", forget_person_in_holdout, 2, ("holdout", "holdout.jsonl, row 1")
    ),
    # damaged files name themselves
    Case(
        "forget.jsonl not UTF-8",
        damaged("forget.jsonl", not_utf8),
        2,
        ("forget.jsonl, row 2", "not UTF-8"),
    ),
    Case(
        "forget.jsonl truncated",
        damaged("forget.jsonl", lambda d: d[:-40]),
        2,
        ("forget.jsonl, row", "invalid JSON"),
    ),
    Case(
        "world.json truncated",
        damaged("world.json", lambda d: d[: len(d) // 2]),
        2,
        ("world.json", "not a valid JSON"),
    ),
    # the processor must be the model's
    Case("model without tokenizer files", without_tokenizer, 2, ("no tokenizer files",)),
    Case(
        "smaller tokenizer of another model",
        smaller_foreign_tokenizer,
        2,
        ("does not belong to this model",),
    ),
    Case("image token id of another model", image_token_of_another_model, 2, ("image_token_id=3",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_data_input(case, scene, capsys):
    check_case(case, scene, capsys)


def test_images_outside_the_folder_say_the_same_whether_or_not_they_exist(scene, capsys):
    """Two outside paths, one there and one not, give one message once the paths are hidden."""
    messages = []
    for case in CASES[:4]:
        err = check_case(case, scene, capsys)
        row = forget_row(scene)
        messages.append(err.replace(repr(row["image"]), "<image>"))
    assert messages[0] == messages[1] and messages[2] == messages[3]


def test_the_opt_out_lets_a_run_use_images_outside_the_folder(scene, capsys):
    from mmunlearn.cli import main

    outside = scene.tmp / "elsewhere.png"
    outside.write_bytes((scene.world / "images" / "p000.png").read_bytes())
    edit_row(scene, "forget", 0, image=str(outside))
    argv = [*unlearn_argv(scene), "--data-option", "allow_outside_images=true"]
    assert main(argv) == 0, capsys.readouterr().err
    assert (scene.out / "model" / "config.json").is_file()
