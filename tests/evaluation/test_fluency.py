"""Fluency: perplexity on held-out text against a float64 reference by hand, the chunk boundary
rule, bad paths, the cache key, and the metric end to end through `mmunlearn eval`."""

import json
import math

import pytest
import torch
from tokenizers.processors import TemplateProcessing

from mmunlearn.cli import main
from mmunlearn.evaluation.fluency import chunk_text, compute_perplexity, read_fluency_text
from mmunlearn.evaluation.suite import EvalModel, EvalSettings, Suite
from mmunlearn.testing import tiny_family, tiny_llava


@pytest.fixture(scope="module")
def text(examples):
    """Words the tiny models' vocabularies know."""
    return " ".join(f"{ex.question} {ex.answer}." for ex in examples[:6])


def with_bos_and_eos(loaded):
    """`loaded` with a tokenizer that wraps every text as `<s> TEXT </s>` (as Gemma's adds BOS)."""
    tokenizer = loaded.tokenizer
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        special_tokens=[("<s>", tokenizer.bos_token_id), ("</s>", tokenizer.eos_token_id)],
    )
    return loaded


@torch.inference_mode()
def reference_nll(loaded, text, chunk_tokens, bos):
    """Mean NLL by hand in float64: each window run alone (no padding, no batching), full
    logits, −log_softmax at the next token; with a BOS every text token is scored, without one
    each window's first token is not."""
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    prefix = [loaded.tokenizer.bos_token_id] if bos else []
    width = chunk_tokens - len(prefix)
    total, count = 0.0, 0
    for start in range(0, len(ids), width):
        sequence = torch.tensor([prefix + ids[start : start + width]])
        logits = loaded.model(input_ids=sequence).logits[0].double()  # (T, V)
        logprobs = torch.log_softmax(logits[:-1], dim=-1)
        targets = sequence[0, 1:]
        total -= logprobs[torch.arange(len(targets)), targets].sum().item()
        count += len(targets)
    return total / count, count


MODELS = {
    "smollm2": lambda examples: tiny_family("smollm2", examples),  # no special tokens added
    "llava_with_bos": lambda examples: with_bos_and_eos(tiny_llava(examples)),  # run text-only
}


@pytest.mark.parametrize("name", list(MODELS))
def test_perplexity_matches_a_float64_reference_over_all_chunks(examples, text, name):
    loaded, bos = MODELS[name](examples), name == "llava_with_bos"
    n_ids = len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
    chunk_tokens = 16  # several chunks, the last one short: batches are padded
    assert n_ids > 3 * chunk_tokens and n_ids % (chunk_tokens - bos) != 0

    score = compute_perplexity(loaded, text, chunk_tokens, batch_size=3, progress=False)

    nll, count = reference_nll(loaded, text, chunk_tokens, bos)
    assert score.nll == pytest.approx(nll, rel=1e-5)
    assert score.perplexity == pytest.approx(math.exp(nll), rel=1e-5)
    assert score.tokens == count
    assert score.chunks == math.ceil(n_ids / (chunk_tokens - bos))
    # the boundary rule: without a BOS each chunk's first token goes unscored
    assert score.tokens == (n_ids if bos else n_ids - score.chunks)


def test_chunks_hold_at_most_chunk_tokens_and_skip_the_eos(examples, text):
    loaded = with_bos_and_eos(tiny_llava(examples))
    bos, eos = loaded.tokenizer.bos_token_id, loaded.tokenizer.eos_token_id
    chunks = chunk_text(loaded.tokenizer, text, chunk_tokens=8)
    for input_ids, labels in chunks:
        assert len(input_ids) <= 8 and input_ids[0] == bos and eos not in input_ids
        assert labels == [-100] + input_ids[1:]
    with pytest.raises(ValueError, match="fluency_chunk_tokens 1: expected at least 2"):
        chunk_text(loaded.tokenizer, text, chunk_tokens=1)


def test_one_chunk_or_many_batches_give_the_same_numbers(examples, text):
    loaded = tiny_family("smollm2", examples)
    short = " ".join(text.split()[:12])
    one = compute_perplexity(loaded, short, chunk_tokens=128, progress=False)
    wide = compute_perplexity(loaded, short, chunk_tokens=4096, progress=False)
    assert one == wide and one.chunks == 1
    # batching (and so padding) does not change the result
    alone = compute_perplexity(loaded, text, chunk_tokens=10, batch_size=1, progress=False)
    batched = compute_perplexity(loaded, text, chunk_tokens=10, batch_size=4, progress=False)
    assert (alone.tokens, alone.chunks) == (batched.tokens, batched.chunks)
    assert alone.nll == pytest.approx(batched.nll, rel=1e-5)


def test_a_bad_text_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(ValueError, match=r"--fluency-text .*nowhere\.txt'?: no such file"):
        EvalSettings(fluency_text=str(missing))
    with pytest.raises(ValueError, match="nowhere.txt"):
        read_fluency_text(missing)
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty.txt'?: the file holds no text"):
        EvalSettings(fluency_text=str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="fluency_chunk_tokens 1"):
        EvalSettings(fluency_chunk_tokens=1)


def test_the_metric_is_missing_without_a_text_and_keyed_by_its_content(examples, text, tmp_path):
    model = tmp_path / "model"
    tiny_family("smollm2", examples).save(model)
    few = examples[:2]
    missing = Suite(few, tmp_path / "none", progress=False).run(EvalModel("m", model), ["fluency"])
    assert missing["fluency"] == {"missing": "no --fluency-text given"}

    heldout = tmp_path / "heldout.txt"
    heldout.write_text(text)
    settings = EvalSettings(fluency_text=str(heldout))
    suite = Suite(few, tmp_path / "eval", settings, progress=False)
    first = suite.run(EvalModel("m", model), ["fluency"])["fluency"]["summary"]["fluency"]
    assert set(first) == {"perplexity", "nll", "tokens", "chunks"}
    assert suite.computed == [("m", "fluency")]
    again = Suite(few, tmp_path / "eval", settings, progress=False)
    again.run(EvalModel("m", model), ["fluency"])
    assert again.computed == []  # read back from the cache

    heldout.write_text(" ".join(text.split()[:20]))  # same path, other content
    edited = Suite(few, tmp_path / "eval", settings, progress=False)
    result = edited.run(EvalModel("m", model), ["fluency"])["fluency"]["summary"]["fluency"]
    assert edited.computed == [("m", "fluency")]
    assert result["tokens"] < first["tokens"]


def test_eval_reports_perplexity_beside_the_other_metrics(examples, world_dir, text, tmp_path):
    base, other = tmp_path / "base", tmp_path / "other"
    tiny_family("smollm2", examples, seed=0).save(base)
    tiny_family("smollm2", examples, seed=1).save(other)
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(text)
    out = tmp_path / "eval"
    args = ["eval", "--data", str(world_dir), "--output-dir", str(out), "--splits", "forget"]
    args += ["--metrics", "generation,fluency", "--max-new-tokens", "2"]
    args += ["--model", f"base={base}", "--model", f"other={other}"]
    assert main([*args, "--fluency-text", str(heldout)]) == 0

    report = json.loads((out / "report.json").read_text())
    scores = {name: report["methods"][name]["fluency"] for name in ("base", "other")}
    for name, score in scores.items():
        assert "forget" in report["methods"][name]  # beside generation's splits
        assert score["perplexity"] == pytest.approx(math.exp(score["nll"]))
        assert score["tokens"] > 0 and score["chunks"] >= 1
    assert scores["base"]["perplexity"] != scores["other"]["perplexity"]
    markdown = (out / "report.md").read_text()
    ratio = scores["other"]["perplexity"] / scores["base"]["perplexity"]
    table = markdown.split("## Fluency")[1].splitlines()

    def row(name, times_base):
        score = scores[name]
        return f"| {name} | {score['perplexity']:.3f} | {score['nll']:.4f} | {times_base} |"

    assert row("base", "1.000") in table and row("other", f"{ratio:.3f}") in table


def test_eval_with_a_missing_fluency_text_fails_before_loading(world_dir, tmp_path, capsys):
    args = ["eval", "--data", str(world_dir), "--output-dir", str(tmp_path / "eval")]
    args += ["--model", str(tmp_path / "no-model"), "--fluency-text", str(tmp_path / "gone.txt")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--fluency-text" in err and "gone.txt" in err
