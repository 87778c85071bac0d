"""The suite on a tiny saved model: per-metric caching (counted calls), missing references."""

import dataclasses
import json
import logging

import pytest

import mmunlearn.evaluation.suite_metrics as suite_module
from mmunlearn.evaluation.attack_metrics import ROBUSTNESS_ATTACKS
from mmunlearn.evaluation.probes import RelearnConfig
from mmunlearn.evaluation.scoring import AnswerScore
from mmunlearn.evaluation.suite import ALL_METRICS, EvalModel, EvalSettings, Suite


@pytest.fixture()
def few(examples):
    """Forget and holdout questions of the tiny world plus a few retain ones: every metric has
    what it needs, at a fraction of the cost."""
    return [ex for ex in examples if ex.role in ("forget", "holdout")] + [
        ex for ex in examples if ex.role == "retain"
    ][:4]


@pytest.fixture()
def saved(loaded, tmp_path):
    path = tmp_path / "model"
    loaded.save(path)
    return path


@pytest.fixture()
def calls(monkeypatch):
    """Count calls of the two expensive entry points (generation and answer scoring)."""
    counts = {"generate": 0, "score": 0}
    generate, score = suite_module.generate_answers, suite_module.score_answers

    def counted_generate(*args, **kwargs):
        counts["generate"] += 1
        return generate(*args, **kwargs)

    def counted_score(*args, **kwargs):
        counts["score"] += 1
        return score(*args, **kwargs)

    monkeypatch.setattr(suite_module, "generate_answers", counted_generate)
    monkeypatch.setattr(suite_module, "score_answers", counted_score)
    return counts


def test_cached_metrics_are_not_recomputed(saved, few, tmp_path, calls):
    out = tmp_path / "eval"
    first = Suite(few, out, progress=False).run(EvalModel("m", saved), ["generation"])
    assert calls == {"generate": 1, "score": 0}
    assert (out / "metrics" / "m" / "generation.json").is_file()

    # A new run (another process, say) reads it back.
    again = Suite(few, out, progress=False)
    assert again.run(EvalModel("m", saved), ["generation"]) == first
    assert calls == {"generate": 1, "score": 0} and again.computed == []

    # Extending the evaluation computes only the new metrics.
    extended = Suite(few, out, progress=False)
    extended.run(EvalModel("m", saved), ["generation", "mcq", "truth_ratio"])
    assert calls == {"generate": 1, "score": 1}
    assert extended.computed == [("m", "mcq"), ("m", "truth_ratio")]

    # An interrupted run (one result lost) recomputes that one and what reads it.
    (out / "metrics" / "m" / "mcq.json").unlink()
    resumed = Suite(few, out, progress=False)
    resumed.run(EvalModel("m", saved), ["generation", "mcq", "truth_ratio"])
    assert resumed.computed == [("m", "mcq")]  # truth_ratio's key did not change
    assert calls == {"generate": 1, "score": 2}

    # Another setting of a metric invalidates that metric only.
    settings = dataclasses.replace(EvalSettings(), max_new_tokens=4)
    changed = Suite(few, out, settings, progress=False)
    changed.run(EvalModel("m", saved), ["generation", "mcq"])
    assert changed.computed == [("m", "generation")]


def test_other_weights_or_data_invalidate_the_cache(saved, few, tmp_path, calls):
    out = tmp_path / "eval"
    Suite(few, out, progress=False).run(EvalModel("m", saved), ["generation"])
    fewer = [ex for ex in few if ex.id != few[0].id]
    Suite(fewer, out, progress=False).run(EvalModel("m", saved), ["generation"])
    assert calls["generate"] == 2
    config = saved / "config.json"
    config.write_text(config.read_text().replace("{", '{"note": 1, ', 1))
    Suite(fewer, out, progress=False).run(EvalModel("m", saved), ["generation"])
    assert calls["generate"] == 3


def test_missing_references_are_named_in_results_and_log(saved, few, tmp_path, caplog):
    no_holdout = [ex for ex in few if ex.role != "holdout"]
    suite = Suite(no_holdout, tmp_path / "eval", progress=False)
    with caplog.at_level(logging.WARNING):
        results = suite.run(EvalModel("m", saved), ["mia", "forget_quality", "privleak"])
    assert "holdout" in results["mia"]["missing"]
    assert "no oracle" in results["forget_quality"]["missing"]
    assert "missing" in results["privleak"]
    assert "m: forget_quality missing: no oracle" in caplog.text
    stored = json.loads((tmp_path / "eval/metrics/m/forget_quality.json").read_text())
    assert stored["result"]["missing"].startswith("no oracle")


def test_every_metric_runs_and_relative_ones_use_the_oracle(saved, few, examples, tmp_path):
    # More people with occupations (neighbours, as retain rows): the linear probe's classes.
    more = [
        dataclasses.replace(ex, role="retain", meta={**ex.meta, "relation": None})
        for ex in examples
        if ex.role == "neighbor" and ex.meta.get("fact") == "occupation"
    ]
    few = few + more
    oracle = EvalModel("oracle", saved)
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(" ".join(f"{ex.question} {ex.answer}." for ex in few))
    quick = EvalSettings(
        max_new_tokens=3, relearn=RelearnConfig(steps=2, batch_size=4), fluency_text=str(heldout)
    )
    suite = Suite(few, tmp_path / "eval", quick, oracle=oracle, progress=False)
    results = suite.run(EvalModel("m", saved))  # all metrics
    assert list(results) == ALL_METRICS
    # Missing: the benchmark protocols whose fields the world lacks (MLLMU-Bench's lettered
    # options, TOFU's perturbed answers) and the attack its prompts cannot take (a second image).
    missing = [name for name, result in results.items() if "missing" in result]
    assert missing == ["mcq_letter", "tofu", "tofu_forget_quality", "attack_second_image"]
    # The same weights as the oracle: identical truth ratios and AUCs.
    assert results["forget_quality"]["p_value"] == pytest.approx(1.0)
    assert results["forget_quality"]["ks_statistic"] == 0.0
    assert all(v == pytest.approx(0.0) for v in results["privleak"]["privleak"].values())
    probes = results["robustness"]["probes"]
    assert set(probes) == set(ROBUSTNESS_ATTACKS)
    assert results["robustness"]["against_oracle"]
    for name, probe in probes.items():
        if name == "attack_second_image":
            assert "multi-image" in probe["missing"]
            continue
        assert probe["recovered"] == pytest.approx(probe["attacked"] - probe["baseline"])
        # A model identical to the oracle recovers exactly what the oracle recovers.
        assert probe["above_oracle"] == 0.0 and not probe["recovers"], name
    groups = results["utility"]["groups"]
    assert groups["retain"]["n"] == sum(ex.role == "retain" for ex in few)
    assert "mcq_acc" in groups["retain"]
    assert groups["neighbor"] == {"missing": "no neighbor rows with meta.relation in the data"}


def test_mcq_picks_the_likeliest_option(saved, examples, tmp_path, monkeypatch):
    """Hand-made scores: the option named in `liked` gets log-prob −0.1 per token, others −2."""
    ex = next(e for e in examples if e.role == "forget")
    liked = {ex.options[0]}  # the first option, right or wrong

    def fake_score(loaded, queries, batch_size, progress):
        return [
            AnswerScore((-0.1 if q.answer in liked else -2.0,) * 2, (0.0, 0.0), (1.0, 1.0))
            for q in queries
        ]

    monkeypatch.setattr(suite_module, "score_answers", fake_score)
    suite = Suite([ex], tmp_path / "eval", progress=False)
    result = suite.run(EvalModel("m", saved), ["mcq"])["mcq"]
    row = result["rows"][0]
    assert row["chosen"] == ex.options[0]
    assert row["mcq_correct"] == (ex.options[0] == ex.answer)
    assert result["summary"]["forget"]["mcq_acc"] == float(ex.options[0] == ex.answer)


def test_unknown_metric_fails_before_running(saved, few, tmp_path):
    with pytest.raises(KeyError, match="did you mean 'mcq'"):
        Suite(few, tmp_path, progress=False).run(EvalModel("m", saved), ["generation", "mcqq"])


def test_settings_from_values_build_nested_components_with_config_paths():
    from mmunlearn.teachers.visual_noise import VisualNoise

    settings = EvalSettings.from_values(
        {"roles": ["forget", "retain"], "noise": {"kind": "replace"}, "relearn": {"steps": "3"}}
    )
    assert settings.noise == VisualNoise(kind="replace")
    assert settings.relearn == RelearnConfig(steps=3) and settings.roles == ("forget", "retain")
    assert EvalSettings.from_values({}) == EvalSettings()
    with pytest.raises(KeyError, match=r"'eval\.noise\.knd' of VisualNoise — did you mean 'kind'"):
        EvalSettings.from_values({"noise": {"knd": "replace"}})
    with pytest.raises(ValueError, match=r"eval\.noise\.std does not apply with eval\.noise\.kind"):
        EvalSettings.from_values({"noise": {"kind": "replace", "std": 0.5}})
