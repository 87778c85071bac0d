import json

import pytest

from mmunlearn.evaluation.report import (
    build_report,
    plot_forget_retain,
    render_markdown,
    write_predictions,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _split(rouge, acc, image=None, text=None):
    by_modality = {}
    if image is not None:
        by_modality["image"] = {"rouge_l": image, "fact_acc": acc, "n": 2}
    if text is not None:
        by_modality["text"] = {"rouge_l": text, "fact_acc": acc, "n": 2}
    return {"rouge_l": rouge, "fact_acc": acc, "n": 4, "by_modality": by_modality}


@pytest.fixture
def report():
    methods = {
        "base": {
            "forget": _split(0.95, 1.0, image=0.96, text=0.94),
            "retain": _split(0.93, 0.9, image=0.92, text=0.94),
            "neighbor": _split(0.9, 0.9, text=0.9),
        },
        "oracle": {"forget": _split(0.2, 0.1), "retain": _split(0.93, 0.9)},
        "vgid": {
            "forget": _split(0.238, 0.1, image=0.05, text=0.426),
            "retain": _split(0.918, 0.9, image=0.9, text=0.936),
        },
    }
    return build_report(methods, {"seed": 0, "seconds": 1.5})


def test_build_report_shape(report):
    assert set(report) == {"methods", "meta"}
    assert report["meta"]["seed"] == 0


def test_markdown_has_every_method_and_split(report):
    md = render_markdown(report)
    for name in ("base", "oracle", "vgid"):
        assert f"| {name} |" in md
    for split in ("forget", "retain", "neighbor"):
        assert f"{split} ROUGE-L" in md and f"{split} acc" in md
    assert "holdout" not in md  # absent from every method
    assert "forget image ROUGE-L" in md and "retain text ROUGE-L" in md
    assert "| oracle | 0.200 | 0.100 | 0.930 | 0.900 | \u2013 | \u2013 |" in md  # no neighbor split
    assert "- vgid: forget ROUGE-L \u22120.712, retain ROUGE-L \u22120.012" in md
    assert "- base:" not in md


def test_markdown_respects_splits_argument(report):
    md = render_markdown(report, splits=("retain",))
    assert "retain ROUGE-L" in md and "forget ROUGE-L |" not in md.splitlines()[2]


def test_plot_writes_png_without_leftovers(report, tmp_path):
    path = tmp_path / "plot.png"
    plot_forget_retain(report, path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_write_report_writes_three_files(report, tmp_path):
    paths = write_report(report, tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "report.json",
        "report.md",
        "forget_retain.png",
    }
    assert json.loads(paths["json"].read_text()) == report
    assert paths["markdown"].read_text() == render_markdown(report)
    assert paths["plot"].read_bytes().startswith(PNG_SIGNATURE)


def test_write_predictions_jsonl(tmp_path):
    rows = [
        {"id": "f0", "prediction": "Zürich", "rouge_l": 1.0},
        {"id": "f1", "rouge_l": 0.0},
    ]
    path = tmp_path / "predictions.jsonl"
    write_predictions(rows, path)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
