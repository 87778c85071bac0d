import json

import pytest

from mmunlearn.evaluation.frontier import plot_frontier
from mmunlearn.evaluation.report import (
    build_report,
    merge_reports,
    plot_forget_retain,
    plot_trajectories,
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


def test_markdown_shows_held_out_rows_only_where_a_summary_has_them(report):
    assert "Held out" not in render_markdown(report)
    report["methods"]["vgid"]["neighbor"] = {
        **_split(0.7, 0.7),
        "heldout": {"rouge_l": 0.95, "fact_acc": 1.0, "n": 3},
    }
    md = render_markdown(report)
    assert "| method | neighbor held-out ROUGE-L (n) |" in md
    assert "| vgid | 0.950 (3) |" in md and "| oracle | \u2013 (0) |" in md


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


def test_plots_leave_the_matplotlib_backend_alone(report, tmp_path):
    """A notebook's inline backend survives a run that writes its plots."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend no plot function would pick
    try:
        plot_forget_retain(report, tmp_path / "plot.png")
        plot_trajectories({"vgid": [{"step": 0, "forget": 1.0, "retain": 1.0}]}, tmp_path / "t.png")
        point = {"method": "vgid", "forget": 0.2, "retain": 0.9, "neighbor": 0.8}
        base = {"forget": 1.0, "retain": 1.0, "neighbor": 1.0}
        plot_frontier([point], {"base": base}, {"vgid": 0}, tmp_path / "f.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "t.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (tmp_path / "f.png").read_bytes().startswith(PNG_SIGNATURE)


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


def test_merge_reports_renames_only_shared_names(report):
    other = build_report({"base": report["methods"]["base"], "npo": {}}, {"seed": 1})
    merged = merge_reports({"run1": report, "run2": other})
    assert list(merged["methods"]) == ["run1/base", "oracle", "vgid", "run2/base", "npo"]
    assert merged["meta"]["sources"]["run2"] == {"seed": 1}


def _metrics(forget_mcq, relearn_recovered, missing_oracle=False):
    probes = {
        "probe_relearn": {
            "probe": "relearning (other half)",
            "baseline": 0.1,
            "attacked": 0.1 + relearn_recovered,
            "recovered": relearn_recovered,
            "recovers": relearn_recovered > 0.05,
        },
        "probe_noise": {"probe": "noised image", "missing": "no image+text forget question"},
    }
    fq = {"missing": "no oracle model"} if missing_oracle else {"p_value": 0.5, "ks_statistic": 0.2}
    return {
        "mcq": {"summary": {"forget": {"mcq_acc": forget_mcq, "n": 4}}},
        "mia": {"auc": {"loss": 0.75, "zlib": 0.7, "min_k": 0.8, "min_k_plus_plus": 0.9}},
        "forget_quality": fq,
        "robustness": {"probes": probes, "threshold": 0.05},
    }


def test_markdown_of_suite_metrics_names_recovering_attacks_and_missing_references():
    metrics = {"vgid": _metrics(0.25, 0.4), "ga": _metrics(0.5, 0.0, missing_oracle=True)}
    md = render_markdown(build_report({"vgid": {}, "ga": {}}, {}, metrics))
    assert "| vgid | 0.250 | \u2013 |" in md  # forget MCQ, then retain MCQ absent
    assert "| vgid | 0.750 | 0.700 | 0.800 | 0.900 |" in md
    assert "0.100 \u2192 0.500 (+0.400)" in md
    assert "- vgid: recovered by relearning (other half) (+0.400: 0.100 \u2192 0.500)" in md
    assert "- ga: no attack recovers" in md
    assert "- ga forget_quality: missing: no oracle model" in md
    assert "| ga | \u2013 | \u2013 | \u2013 | \u2013 | \u2013 | \u2013 |" in md  # no by-modality
    assert "| missing |" in md or "| missing" in md


def test_markdown_judges_recovery_against_the_oracle_when_it_has_one():
    metrics = {"vgid": _metrics(0.25, 0.3), "npo": _metrics(0.25, 0.3)}
    vgid = metrics["vgid"]["robustness"]["probes"]["probe_relearn"]
    # The oracle recovers +0.1 by pattern alone: VGID's +0.3 is +0.2 above it.
    vgid.update(oracle_recovered=0.1, above_oracle=0.2, oracle_baseline=0.05)
    npo = metrics["npo"]["robustness"]["probes"]["probe_relearn"]
    npo.update(oracle_recovered=0.3, above_oracle=0.0, recovers=False)
    md = render_markdown(build_report({"vgid": {}, "npo": {}}, {}, metrics))
    assert "0.100 \u2192 0.400 (+0.300; oracle +0.100)" in md
    assert "- vgid: recovered by relearning (other half) (+0.300, +0.200 above the oracle's:" in md
    assert "- npo: no attack recovers" in md
