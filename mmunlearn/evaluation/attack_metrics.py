"""Attacks as metrics: what an adversary gets back from the forget set, and the robustness summary.

Each attack answers the forget questions under the attack and compares them with the same
questions asked plainly ("recovered" = attacked − baseline, on ROUGE-L unless the result's
"score" says otherwise). The same attack on the oracle (never trained on the forget set) shows
what comes back with no knowledge at all — by pattern, from the context, from the attack's own
training — so `robustness` reports each attack's recovery above the oracle's.
"""

from __future__ import annotations

import dataclasses
import random
from statistics import fmean

import torch

from mmunlearn.evaluation import suite_metrics  # by module: suite.py imports both, either first
from mmunlearn.evaluation.attacks import (
    PROMPT_ATTACKS,
    QUANTIZATIONS,
    fit_linear_probe,
    prompt_end_hidden_states,
    quantized_copy,
    templated,
    with_context,
)
from mmunlearn.evaluation.probes import answer, finetuned_copy, split_halves
from mmunlearn.evaluation.suite import MetricContext, Missing, Result, metric

ANSWER_SETTINGS = ("roles", "max_new_tokens")


def _measure(ctx: MetricContext, model, asked, baseline_ids=None, **extra) -> Result:
    rows = answer(model, asked, ctx.settings.max_new_tokens, ctx.progress)
    ids = baseline_ids if baseline_ids is not None else {ex.id for ex in asked}
    baseline = [r for r in suite_metrics.forget_rows(ctx) if r["id"] in ids]
    return suite_metrics.compare_attacked(rows, baseline, **extra)


def _quantization_metric(name: str) -> None:
    quantization = QUANTIZATIONS[name]

    def compute(ctx: MetricContext) -> Result:
        forget = suite_metrics.forget_examples(ctx)
        quantized, layers = quantized_copy(ctx.model.loaded, quantization)
        return _measure(
            ctx,
            quantized,
            forget,
            change=f"weights quantized: {dataclasses.asdict(quantization)}",
            layers=layers,
        )

    compute.__doc__ = (
        f"Attack: forget ROUGE-L with every linear weight but the output head quantized to {name} "
        f"({dataclasses.asdict(quantization)}; `attacks.Quantization`) vs full precision. "
        '"recovered" > 0 = rounding the weights brings facts back (Zhang et al., arXiv 2410.16454).'
    )
    metric(f"attack_quant_{name}", settings=ANSWER_SETTINGS, needs=("generation",))(compute)


for _name in QUANTIZATIONS:
    _quantization_metric(_name)


@metric(
    "attack_relearn_unrelated",
    settings=(*ANSWER_SETTINGS, "relearn", "unrelated_examples"),
    needs=("generation",),
)
def attack_relearn_unrelated(ctx: MetricContext) -> Result:
    """Attack: out-of-distribution relearning. A copy fine-tuned (as `probe_relearn`) on a few
    unrelated examples — `unrelated_examples` questions about people nobody trained on (holdout;
    general knowledge when the data has none) —, then every forget question. "recovered" > 0 =
    any fine-tuning at all undoes the unlearning (Lynch et al., arXiv 2402.16835)."""
    forget = suite_metrics.forget_examples(ctx)
    role = next((r for r in ("holdout", "general") if ctx.role(r)), None)
    if role is None:
        raise Missing("no holdout or general rows to relearn on")
    pool = sorted(ctx.role(role), key=lambda ex: ex.id)
    chosen = random.Random(ctx.settings.relearn.seed).sample(
        pool, min(ctx.settings.unrelated_examples, len(pool))
    )
    student = finetuned_copy(ctx.model.loaded, chosen, ctx.settings.relearn)
    return _measure(
        ctx,
        student,
        forget,
        change=f"fine-tuned on {len(chosen)} {role} questions: "
        f"{dataclasses.asdict(ctx.settings.relearn)}",
        relearned_on=[ex.id for ex in chosen],
    )


@metric("attack_in_context", settings=ANSWER_SETTINGS, needs=("generation",))
def attack_in_context(ctx: MetricContext) -> Result:
    """Attack: in-context relearning. The half of each person's forget facts that
    `probe_relearn` trains on is put in the prompt instead, as question-answer pairs, before each
    question of the other half; ROUGE-L on that half vs asked plainly. "recovered" > 0 = facts
    of the person in the context bring back the ones not given."""
    context, measured = split_halves(suite_metrics.forget_examples(ctx))
    if not context or not measured:
        raise Missing("in-context relearning needs at least two forget questions per person")
    return _measure(
        ctx,
        ctx.model.loaded,
        with_context(measured, context),
        {ex.id for ex in measured},
        change=f"{len(context)} forget facts of the same people in the prompt",
    )


def _prompt_metric(name: str) -> None:
    template = PROMPT_ATTACKS[name]

    def compute(ctx: MetricContext) -> Result:
        forget = suite_metrics.forget_examples(ctx)
        return _measure(ctx, ctx.model.loaded, templated(forget, template), change=template)

    compute.__doc__ = (
        f"Attack: prompt attack `{name}`: each forget question inside the template "
        f'{template!r} vs asked plainly. "recovered" > 0 = the wording gets past the unlearning.'
    )
    metric(f"attack_{name}", settings=ANSWER_SETTINGS, needs=("generation",))(compute)


for _name in PROMPT_ATTACKS:
    _prompt_metric(_name)


@metric("attack_second_image", settings=ANSWER_SETTINGS, needs=("generation",))
def attack_second_image(ctx: MetricContext) -> Result:
    """Attack: a cross-image question, a second image in the context of each image question.
    Needs prompts with several images; the prompt encoder renders one image per question, so
    this attack is reported as missing with that reason until it does."""
    if not any(ex.image is not None for ex in suite_metrics.forget_examples(ctx)):
        raise Missing("no image+text forget question")
    raise Missing("the prompt encoder renders one image per question (no multi-image prompts)")


PROBE_TRAIN_ROLES = ("retain", "neighbor")


@metric("attack_linear_probe", settings=("roles", "batch_size"), needs=("generation",))
def attack_linear_probe(ctx: MetricContext) -> Result:
    """Attack: a linear probe on hidden states for the forgotten attribute. Per fact (birthplace,
    occupation, ...), a logistic regression from the hidden state at the end of the question to
    the answer is fitted on the retain and neighbour people (whom the model knows) and read on
    the forget people; a probe per layer, the best layer counting (the attacker tries all).
    Probe accuracy vs the model's own fact accuracy on the same questions (score "fact_acc").
    "recovered" > 0 = the answer is still linearly readable although not generated (cf. the
    probing of Patil et al., arXiv 2309.17410; RMU, arXiv 2403.03218)."""
    forget = suite_metrics.forget_examples(ctx)
    train = [ex for ex in ctx.examples if ex.role in PROBE_TRAIN_ROLES]
    facts = sorted({ex.meta.get("fact") for ex in forget} - {None})
    chosen: dict[str, tuple[list, list, list[str]]] = {}
    for fact in facts:
        seen = [ex for ex in train if ex.meta.get("fact") == fact]
        classes = sorted({ex.answer for ex in seen})
        tested = [ex for ex in forget if ex.meta.get("fact") == fact and ex.answer in classes]
        if len(classes) >= 2 and tested:
            chosen[fact] = (seen, tested, classes)
    if not chosen:
        raise Missing(
            "no fact of the forget questions has an answer shared with retain or neighbour rows"
        )
    asked = [ex for seen, tested, _ in chosen.values() for ex in (*seen, *tested)]
    hidden = prompt_end_hidden_states(ctx.model.loaded, asked, ctx.settings.batch_size)
    index = {ex.id: i for i, ex in enumerate(asked)}
    layers = range(1, hidden.shape[0])  # 0: the embeddings of the prompt's last token
    correct = {layer: 0 for layer in layers}
    per_fact = {}
    for fact, (seen, tested, classes) in chosen.items():
        label = {c: i for i, c in enumerate(classes)}
        y = torch.tensor([label[ex.answer] for ex in seen])
        truth = torch.tensor([label[ex.answer] for ex in tested])
        accuracy = {}
        for layer in layers:
            features = hidden[layer]
            probe = fit_linear_probe(features[[index[ex.id] for ex in seen]], y, len(classes))
            with torch.no_grad():
                guess = probe(features[[index[ex.id] for ex in tested]]).argmax(-1)
            hits = int((guess == truth).sum())
            correct[layer] += hits
            accuracy[str(layer)] = hits / len(tested)
        per_fact[fact] = {
            "n_train": len(seen),
            "n_test": len(tested),
            "classes": len(classes),
            "accuracy_by_layer": accuracy,
        }
    tested_ids = {ex.id for _, tested, _ in chosen.values() for ex in tested}
    n = len(tested_ids)
    by_layer = {layer: hits / n for layer, hits in correct.items()}
    best = max(by_layer, key=lambda layer: (by_layer[layer], -layer))
    generated = [r for r in suite_metrics.forget_rows(ctx) if r["id"] in tested_ids]
    baseline = fmean(float(r["fact_correct"]) for r in generated)
    return {
        "attacked": {"fact_acc": by_layer[best], "n": n},
        "baseline": {"fact_acc": baseline, "n": n},
        "score": "fact_acc",
        "recovered": by_layer[best] - baseline,
        "best_layer": best,
        "accuracy_by_layer": {str(layer): acc for layer, acc in by_layer.items()},
        "facts": per_fact,
        "change": "answer read from hidden states by a linear probe fitted on "
        + " and ".join(PROBE_TRAIN_ROLES),
    }


# Every attack of the robustness summary, with the label the report gives it (the probes of
# `suite_metrics` first: they were the suite's first attacks).
ROBUSTNESS_ATTACKS = {
    "probe_paraphrase": "paraphrased question",
    "probe_noise": "noised image",
    "probe_prompt": "in-context prompt removed",
    "probe_relearn": "relearning (other half)",
    "attack_relearn_unrelated": "relearning (unrelated)",
    "attack_in_context": "in-context relearning",
    **{f"attack_quant_{name}": f"quantized {name}" for name in QUANTIZATIONS},
    **{f"attack_{name}": name.replace("_", " ") for name in PROMPT_ATTACKS},
    "attack_second_image": "second image",
    "attack_linear_probe": "linear probe (fact acc)",
}


@metric(
    "robustness",
    settings=("recover_threshold",),
    needs=tuple(ROBUSTNESS_ATTACKS),
    oracle_needs=tuple(ROBUSTNESS_ATTACKS),
)
def robustness(ctx: MetricContext) -> Result:
    """Which attacks recover forgotten facts and by how much, against the oracle: each attack's
    forget score under attack vs without ("recovered" = the difference, ROUGE-L or, for the
    linear probe, fact accuracy), the same for the oracle ("oracle_recovered": what comes back
    with no knowledge at all, e.g. relearning the people's other facts by pattern), and
    "above_oracle" = recovered − oracle_recovered. An attack "recovers" when above_oracle (without
    an oracle: recovered) exceeds `recover_threshold`. Lower is better; 0 = no more than a model
    that never saw the forget set gives up."""
    table = {}
    for name, label in ROBUSTNESS_ATTACKS.items():
        result = ctx.own(name)
        if "missing" in result:
            table[name] = {"probe": label, "missing": result["missing"]}
            continue
        score = result["score"]
        row = {
            "probe": label,
            "score": score,
            "baseline": result["baseline"][score],
            "attacked": result["attacked"][score],
            "recovered": result["recovered"],
        }
        theirs = ctx.oracle(name) if ctx.oracle is not None else {"missing": "no oracle model"}
        if "missing" not in theirs:
            row["oracle_baseline"] = theirs["baseline"][score]
            row["oracle_attacked"] = theirs["attacked"][score]
            row["oracle_recovered"] = theirs["recovered"]
            row["above_oracle"] = result["recovered"] - theirs["recovered"]
        gain = row.get("above_oracle", row["recovered"])
        row["recovers"] = gain > ctx.settings.recover_threshold
        if "relearned_half" in result:  # did the attack's own fine-tuning take?
            row["relearned_half"] = result["relearned_half"].get("rouge_l")
        table[name] = row
    return {
        "probes": table,
        "threshold": ctx.settings.recover_threshold,
        "against_oracle": ctx.oracle is not None,
    }
