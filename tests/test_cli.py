"""The command line end to end on tiny models the tests save (the real loading code path)."""

import json
import shutil

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from mmunlearn.cli import main


@pytest.fixture()
def saved_model(loaded, tmp_path):
    path = tmp_path / "tiny-llava"
    loaded.model.save_pretrained(path)
    loaded.processor.save_pretrained(path)
    return path


def unlearn_args(model, data, output_dir, *settings, method=None):
    """`mmunlearn unlearn` arguments; each setting becomes `--set KEY=VALUE`."""
    args = ["unlearn", "--model", str(model), "--data", str(data), "--output-dir", str(output_dir)]
    args += ["--method", method] if method else []
    return args + [item for setting in settings for item in ("--set", setting)]


def test_unlearn_a_saved_model_and_load_the_result_back(saved_model, world_dir, tmp_path):
    out = tmp_path / "out"
    code = main(
        unlearn_args(
            saved_model, world_dir, out, "train.steps=2", "train.batch_size=4", method="vgid"
        )
    )
    assert code == 0
    model = AutoModelForImageTextToText.from_pretrained(out / "model")
    processor = AutoProcessor.from_pretrained(out / "model")
    assert model.config.model_type == "llava" and processor.tokenizer is not None
    assert "method: vgid" in (out / "config.yaml").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["train"]["steps"] == 2 and run["environment"]["packages"]["torch"]


def test_unlearn_with_lora_writes_a_merged_model(saved_model, world_dir, tmp_path):
    out = tmp_path / "lora"
    code = main(
        unlearn_args(
            saved_model, world_dir, out, "train.steps=1", "train.batch_size=2", "train.lora=true"
        )
    )
    assert code == 0
    model = AutoModelForImageTextToText.from_pretrained(out / "model")
    assert not any("lora" in name for name, _ in model.named_parameters())


def copy_world(world_dir, tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(world_dir, copy)
    return copy


def test_empty_forget_split_is_a_clear_error(saved_model, world_dir, tmp_path, capsys):
    data = copy_world(world_dir, tmp_path)
    (data / "forget.jsonl").write_text("")
    code = main(unlearn_args(str(saved_model), str(data), str(tmp_path / "o")))
    assert code == 2
    assert "no rows with role 'forget'" in capsys.readouterr().err


def test_forget_person_also_in_retain_is_a_clear_error(saved_model, world_dir, tmp_path, capsys):
    data = copy_world(world_dir, tmp_path)
    forget_row = json.loads((data / "forget.jsonl").read_text().splitlines()[0])
    rows = (data / "retain.jsonl").read_text().splitlines()
    leaked = {**json.loads(rows[0]), "entity": forget_row["entity"]}
    (data / "retain.jsonl").write_text("\n".join([json.dumps(leaked), *rows[1:]]) + "\n")
    code = main(unlearn_args(str(saved_model), str(data), str(tmp_path / "o")))
    assert code == 2
    err = capsys.readouterr().err
    assert forget_row["entity"] in err and "retain" in err


def test_the_sampler_setting_reaches_every_phase(saved_model, world_dir, tmp_path, capsys):
    """`sampler=direct` for a two-phase method on data without neighbours: the direct sampler,
    not the method's own, is what complains."""
    data = copy_world(world_dir, tmp_path)
    (data / "neighbor.jsonl").write_text("")
    args = unlearn_args(saved_model, data, tmp_path / "o", "sampler=direct", method="sequential")
    assert main(args) == 2
    assert "the direct sampler needs rows with role 'neighbor'" in capsys.readouterr().err


def test_missing_model_directory_is_a_clear_error(world_dir, tmp_path, capsys):
    code = main(unlearn_args(str(tmp_path / "nope"), str(world_dir), str(tmp_path / "o")))
    assert code == 2
    assert "no config.json" in capsys.readouterr().err


def test_unknown_setting_and_method_are_named(saved_model, world_dir, tmp_path, capsys):
    base = unlearn_args(saved_model, world_dir, tmp_path / "o")
    assert main([*base, "--set", "train.lrr=1"]) == 2
    assert "unknown config key 'train.lrr'" in capsys.readouterr().err
    assert main([*base, "--method", "vgdi"]) == 2
    assert "did you mean 'vgid'" in capsys.readouterr().err


def test_list_shows_methods_and_teachers(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("vgid", "icu_distill", "visual_noise", "entity_swap", "forward_kl", "jsd"):
        assert name in out
    methods = out.split("methods:\n")[1].split("teachers:")[0].splitlines()
    samplers = out.split("samplers:\n")[1].splitlines()
    for name in ("dpo_idk", "vgid_noise_only", "whp"):  # a description and its paper
        assert any(line.split()[0] == name and "arXiv" in line for line in methods), name
    for name in ("cyclic", "direct", "indirect", "balanced", "modular"):
        assert any(line.split()[0] == name and "MELU" in line for line in samplers), name


def eval_args(out, world_dir, *models, metrics="generation"):
    args = ["eval", "--data", str(world_dir), "--output-dir", str(out), "--metrics", metrics]
    return args + [item for model in models for item in ("--model", str(model))]


def test_eval_writes_a_report(saved_model, world_dir, tmp_path):
    out = tmp_path / "eval"
    assert main(eval_args(out, world_dir, f"tiny={saved_model}")) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]["tiny"]) >= {"forget", "retain", "test", "neighbor", "general"}
    assert (out / "predictions" / "tiny.jsonl").is_file()
    assert (out / "metrics" / "tiny" / "generation.json").is_file()


def test_eval_with_an_oracle_caches_and_merges(saved_model, world_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    metrics = "generation,mcq,truth_ratio,forget_quality,probe_prompt"
    args = eval_args(out, world_dir, f"tiny={saved_model}", metrics=metrics)
    assert main([*args, "--oracle", str(saved_model)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"tiny", "oracle"}
    assert report["metrics"]["tiny"]["forget_quality"]["p_value"] == 1.0  # the same weights
    assert "rows" not in report["metrics"]["tiny"]["mcq"]  # per-question rows stay out
    assert "## Membership inference" in (out / "report.md").read_text()

    assert main([*args, "--oracle", str(saved_model)]) == 0  # everything is cached now
    assert json.loads((out / "report.json").read_text())["meta"]["computed"] == []

    assert main(args) == 0  # without the oracle the relative metric says why it is missing
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["tiny"]["forget_quality"]["missing"].startswith("no oracle")
    assert "tiny forget_quality: missing: no oracle" in (out / "report.md").read_text()

    second = tmp_path / "eval2"
    assert main(eval_args(second, world_dir, f"tiny={saved_model}")) == 0
    merged = tmp_path / "merged"
    capsys.readouterr()
    assert main(["report", str(out), str(second), "--output-dir", str(merged)]) == 0
    assert "| eval/tiny |" in capsys.readouterr().out
    combined = json.loads((merged / "report.json").read_text())
    assert set(combined["methods"]) == {"eval/tiny", "eval2/tiny"}
    assert (merged / "forget_retain.png").read_bytes()[:4] == b"\x89PNG"


def test_quick_demo_writes_its_report(tmp_path):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--quick", "--output-dir", str(out), "--cache-dir", str(tmp_path / "cache")])
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]) == {"base", "oracle", "vgid"}
    for method in report["methods"].values():
        for split in ("forget", "test", "retain", "neighbor", "general"):
            assert (
                0.0 <= method[split]["rouge_l"] <= 1.0 and 0.0 <= method[split]["fact_acc"] <= 1.0
            )
    markdown = (out / "report.md").read_text()
    assert markdown.count("|") > 10 and "In-context probe" in markdown
    assert set(report["meta"]["in_context_probe"]) == {"forget", "retain"}
    steps = [point["step"] for point in report["meta"]["trajectories"]["vgid"]]
    assert steps == [0, 2, 4]  # the start, then eval_every=2 over 4 quick steps
    assert (out / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "forget_retain.png").read_bytes()[:4] == b"\x89PNG"
    # a second run finds base and oracle in the cache
    assert (
        main(["demo", "--quick", "--output-dir", str(out), "--cache-dir", str(tmp_path / "cache")])
        == 0
    )
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_a_processor_from_another_model_is_refused(
    saved_model, examples, world_dir, tmp_path, capsys
):
    from mmunlearn.models.tiny import build_word_tokenizer

    bigger = build_word_tokenizer(
        [ex.question for ex in examples] + [f"extra{i}" for i in range(500)]
    )
    bigger.save_pretrained(saved_model)  # the tokenizer no longer fits the embedding
    code = main(unlearn_args(str(saved_model), str(world_dir), str(tmp_path / "o")))
    assert code == 2
    assert "does not belong to this model" in capsys.readouterr().err


def test_resume_with_more_steps_is_another_run(saved_model, world_dir, tmp_path, capsys):
    """A run of 4 steps draws other batches than one of 2: resuming a 2-step run with
    train.steps=4 is refused (a kill mid-run and its resume: tests/training/test_resume.py)."""
    out = tmp_path / "resumable"
    args = unlearn_args(saved_model, world_dir, out, "train.batch_size=2", "train.save_steps=2")
    assert main([*args, "--set", "train.steps=2"]) == 0
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert main([*args, "--set", "train.steps=4", "--resume"]) == 2
    assert "train.steps: 2 there vs 4 now" in capsys.readouterr().err


def test_quick_compare_reports_every_method(tmp_path):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "--methods",
            "ga,npo",
            "--quick",
            "--output-dir",
            str(out),
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]) == {"base", "oracle", "ga", "npo"}
    assert report["meta"]["configs"]["npo"]["train"]["steps"] == 4


def test_compare_with_an_unknown_method_fails_before_training(tmp_path, capsys):
    code = main(
        [
            "compare",
            "--methods",
            "vgid,gaa",
            "--output-dir",
            str(tmp_path / "x"),
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 2
    assert "did you mean 'ga'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.fixture()
def saved_causal_lm(examples, tmp_path):
    from mmunlearn.testing import tiny_causal_lm

    path = tmp_path / "tiny-gpt2"
    tiny_causal_lm([ex for ex in examples if ex.image is None], "gpt2").save(path)
    return path


def test_unlearn_picks_the_text_path_from_a_saved_causal_lm(saved_causal_lm, world_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from mmunlearn.models.loading import load_model

    out = tmp_path / "text"
    args = unlearn_args(saved_causal_lm, world_dir, out, "train.steps=2", "train.batch_size=4")
    assert main([*args, "--set", "train.eval_every=1"]) == 0  # vgid: noise skipped, prompt kept
    before, after = (
        load_model(saved_causal_lm).model,
        AutoModelForCausalLM.from_pretrained(out / "model"),
    )
    assert after.config.model_type == "gpt2"
    changed = [
        not torch.equal(a, b)
        for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True)
    ]
    assert any(changed)
    points = json.loads((out / "trajectory.json").read_text())
    assert [p["step"] for p in points] == [0, 1, 2] and "forget" in points[0]


def test_an_image_only_teacher_on_a_text_model_is_refused(
    saved_causal_lm, world_dir, tmp_path, capsys
):
    args = unlearn_args(saved_causal_lm, world_dir, tmp_path / "o", "teacher.name=visual_noise")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "VisualNoiseTeacher needs images" in err and "text-only" in err
    assert not (tmp_path / "o").exists()


def test_text_compare_runs_every_method_on_the_text_world(tmp_path, monkeypatch):
    """Wiring only: base and oracle are untrained tiny causal LMs (world_model is tested alone)."""
    import mmunlearn.demo
    from mmunlearn.data.jsonl import load_examples
    from mmunlearn.testing import tiny_causal_lm

    def untrained(world_dir, which, cache_dir, config, progress=True):
        assert config.model.family == "llama"
        path = tmp_path / "models" / which
        tiny_causal_lm(load_examples(world_dir), "llama").save(path)
        return path

    monkeypatch.setattr(mmunlearn.demo, "world_model", untrained)
    out = tmp_path / "text-cmp"
    args = ["compare", "--methods", "vgid,ga", "--model-family", "llama", "--quick"]
    assert main([*args, "--output-dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]) == {"base", "oracle", "vgid", "ga"}
    assert report["meta"]["model_family"] == "llama"
    for summary in report["methods"].values():
        assert set(summary["forget"]["by_modality"]) == {"text"}
    assert not (out / "world" / "images").exists()


def test_unlearn_reads_a_public_benchmark_layout(tmp_path):
    from mmunlearn.data.benchmarks import load_benchmark
    from mmunlearn.testing import tiny_causal_lm

    tofu = tmp_path / "TOFU"
    tofu.mkdir()
    rows = {
        "forget01.json": [("where was ada born", "paris"), ("what does ada write", "poems")],
        "retain99.json": [("where was bob born", "rome"), ("what does bob write", "novels")],
    }
    for name, pairs in rows.items():
        lines = [json.dumps({"question": q, "answer": a}) for q, a in pairs]
        (tofu / name).write_text("\n".join(lines) + "\n")
    options = ["--data-option", "forget_percent=1", "--data-option", "questions_per_author=2"]
    examples = load_benchmark("tofu", tofu, forget_percent=1, questions_per_author=2)
    model = tmp_path / "gpt2"
    tiny_causal_lm(examples).save(model)
    out = tmp_path / "out"
    args = unlearn_args(model, tofu, out, "train.steps=1", "train.batch_size=2", method="grad_diff")
    assert main([*args, "--benchmark", "tofu", *options]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["benchmark"] == "tofu" and run["data_options"]["questions_per_author"] == "2"
    assert (out / "model" / "config.json").is_file()


def test_unknown_benchmark_and_malformed_data_option_are_named(saved_model, world_dir, capsys):
    args = unlearn_args(saved_model, world_dir, "unused")
    assert main([*args, "--benchmark", "tofuu"]) == 2
    assert "tofu" in capsys.readouterr().err
    assert main([*args, "--data-option", "forget_percent"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_train_base_builds_a_llava_on_a_language_model(examples, world_dir, tmp_path, capsys):
    from mmunlearn.models.encoding import PromptEncoder
    from mmunlearn.models.loading import load_model
    from mmunlearn.testing import tiny_family

    tiny_family("smollm2", examples).save(tmp_path / "lm")
    args = ["train-base", "--data", str(world_dir), "--language-model", str(tmp_path / "lm")]
    sizes = ["--image-size", "32", "--vision-width", "16", "--vision-layers", "1"]
    steps = ["--align-steps", "1", "--steps", "1", "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--vision", *sizes, *steps]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    loaded = load_model(path)
    assert loaded.kind == "vision_language"
    row = next(ex for ex in examples if ex.image is not None)
    ids = PromptEncoder(loaded).encode(row).input_ids
    assert sum(t == loaded.model.config.image_token_id for t in ids) == 4  # (32 / 16)²
    assert main([*args[:3], "--vision", *steps]) == 2
    assert "--vision builds a LLaVA on --language-model" in capsys.readouterr().err
