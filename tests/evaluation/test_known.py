import json
from pathlib import Path

from mmunlearn.cli import main
from mmunlearn.data.example import Example
from mmunlearn.data.jsonl import load_examples
from mmunlearn.evaluation import known
from mmunlearn.evaluation.known import Known, find_known, write_known
from mmunlearn.testing import tiny_family

OPTIONS = ("Paris", "Rome", "Oslo", "Lima")


def _ex(i, role, answer="Paris"):
    return Example(f"q{i}", f"e{i}", role, f"Capital {i}?", answer, options=OPTIONS)


def test_each_test_keeps_what_it_passed_and_the_rest_is_recorded(tmp_path):
    checks = [
        Known(_ex(0, "forget"), "It is Paris.", "Paris"),  # both
        Known(_ex(1, "forget"), "Rome", "Paris"),  # likelihood only
        Known(_ex(2, "retain"), "paris!", "Rome"),  # generation only
        Known(_ex(3, "retain"), "no idea", None),  # neither (no options scored)
    ]
    summary = write_known(checks, tmp_path)
    by_generation = load_examples(tmp_path / "generation")
    by_likelihood = load_examples(tmp_path / "likelihood")
    assert [ex.id for ex in by_generation] == ["q0", "q2"]
    assert [ex.id for ex in by_likelihood] == ["q0", "q1"]
    dropped = [json.loads(line) for line in (tmp_path / "dropped.jsonl").read_text().splitlines()]
    assert {row["id"]: row["failed"] for row in dropped} == {
        "q1": ["generation"],
        "q2": ["likelihood"],
        "q3": ["generation", "likelihood"],
    }
    assert summary["generation"]["by_role"] == {"forget": 1, "retain": 1}
    assert json.loads((tmp_path / "known.json").read_text()) == summary


def test_find_known_asks_by_generation_and_by_option_likelihood(examples, monkeypatch):
    loaded = tiny_family("smollm2", examples)
    rows = [_ex(0, "forget"), _ex(1, "retain", "Rome"), Example("q9", "x", "retain", "Q?", "A")]
    monkeypatch.setattr(known, "generate_answers", lambda *a, **k: ["Paris", "Oslo", "A"])
    checks = find_known(loaded, rows, progress=False)
    assert [c.by_generation for c in checks] == [True, False, True]
    assert checks[0].chosen in OPTIONS and checks[2].chosen is None  # q9 has no options
    assert not checks[2].by_likelihood


def test_cli_filter_known_writes_both_folders(examples, world_dir, tmp_path, capsys):
    model = tmp_path / "m"
    tiny_family("llava", examples).save(model)
    out = tmp_path / "known"
    args = ["filter-known", "--model", str(model), "--data", str(world_dir), "--output-dir"]
    assert main([*args, str(out), "--max-new-tokens", "3"]) == 0, capsys.readouterr().err
    summary = json.loads((out / "known.json").read_text())
    assert summary["asked"]["total"] == len(examples)
    assert "| role | asked |" in capsys.readouterr().out
    folders = [out / test for test in ("generation", "likelihood") if (out / test).is_dir()]
    kept = [ex for folder in folders for ex in load_examples(folder)]
    pictured = [ex for ex in kept if ex.image is not None]
    assert pictured  # an untrained model still ranks some option first
    assert all(Path(ex.image).parent.parent.parent == out for ex in pictured)  # <test>/images/


def test_eval_takes_a_model_spec_that_is_not_a_folder(examples, tmp_path, monkeypatch):
    """`--model x.gguf` / a get-model name resolve to a folder before the weights are hashed."""
    from mmunlearn.evaluation.suite import EvalModel
    from mmunlearn.models import sources

    model = tmp_path / "m"
    tiny_family("smollm2", examples).save(model)
    spec = sources.RegistryModel("a tiny test model", (), (), "0" * 64)
    sources.REAL_MODELS.register("tiny-test-model")(spec)
    try:
        monkeypatch.setattr(
            sources, "get_model", lambda name, output_dir=None, cache_dir=None: model
        )
        named = EvalModel("m", Path("tiny-test-model"))
        assert named.weights_hash == EvalModel("m", model).weights_hash
    finally:
        sources.REAL_MODELS.unregister("tiny-test-model")
