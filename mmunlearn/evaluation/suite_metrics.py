"""The suite's metrics, each registered by name with the settings it depends on (`suite.metric`).

Every docstring states direction, range, formula, reference model and paper. Rows carry the
fields `summarise` groups by (role, modality, relation), so each metric is reported for
image+text and text-only questions alike.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import fmean
from typing import Any

from mmunlearn.data.example import MODALITIES, Example
from mmunlearn.evaluation.fluency import compute_perplexity, read_fluency_text
from mmunlearn.evaluation.generate import generate_answers
from mmunlearn.evaluation.likelihood import (
    answer_probability,
    forget_quality,
    log_truth_ratio,
    pick_option,
    truth_score,
)
from mmunlearn.evaluation.metrics import (
    ANSWER_FIELDS,
    cloze_prompt,
    example_fields,
    score_predictions,
    summarise,
)
from mmunlearn.evaluation.mia import ATTACKS, attack_scores, auc, privleak
from mmunlearn.evaluation.probes import (
    noise_probe,
    paraphrase_probe,
    prompt_probe,
    relearn_probe,
    split_halves,
)
from mmunlearn.evaluation.protocols import (
    TOFU_UTILITY_STATS,
    UTILITY_SLOTS,
    contains_answer,
    first_letter,
    letter_prompt,
    normalised_probability,
    tofu_model_utility,
)
from mmunlearn.evaluation.scoring import AnswerScore, Query, score_answers
from mmunlearn.evaluation.suite import MetricContext, Missing, Result, metric


def _generate(ctx: MetricContext, examples: list[Example]) -> list[str]:
    return generate_answers(
        ctx.model.loaded,
        examples,
        batch_size=ctx.settings.batch_size,
        max_new_tokens=ctx.settings.max_new_tokens,
        progress=ctx.progress,
    )


def _score(ctx: MetricContext, queries: list[Query]) -> list[AnswerScore]:
    """Scores of `queries`, each (example, question, answer) scored once per model and run: the
    options of `mcq` include the answers `probability` and `mia` score again."""
    memo = ctx.model.scores
    todo = list({_query_key(q): q for q in queries if _query_key(q) not in memo}.values())
    if todo:
        scored = score_answers(ctx.model.loaded, todo, ctx.settings.batch_size, ctx.progress)
        memo.update(zip(map(_query_key, todo), scored, strict=True))
    return [memo[_query_key(q)] for q in queries]


def _query_key(query: Query) -> tuple[str, str | None, str]:
    return (query.example.id, query.question, query.answer)


NOT_GENERATION = ("cloze", "classification")  # meta.kind of records other metrics score


@metric("generation", settings=("roles", "max_new_tokens"))
def generation(ctx: MetricContext) -> Result:
    """ROUGE-L and fact accuracy of greedy answers, per split and modality.

    ROUGE-L: F-measure of the longest common subsequence of tokens between the greedy answer
    and the reference, Porter-stemmed (rouge-score, as MLLMU-Bench, arXiv 2410.22108), in [0, 1].
    ROUGE-L recall (TOFU's "ROUGE"): the fraction of the reference's tokens in the answer, so a
    chat model's full sentence around the right fact scores 1.0.
    Fact accuracy: the fraction of answers containing the normalised reference as whole words,
    in [0, 1]. Both: higher = remembers more. On forget (and test) lower is better and the
    oracle is the reference; on retain, neighbours and general higher is better and the base is
    the reference. Records of kind `cloze` or `classification` (MLLMU-Bench's Mask_Task and
    Classification_Task) are left to the `cloze` and `mcq` metrics: MLLMU-Bench scores ROUGE on
    its generation questions only (`eval.py`, `evaluate_generation`).
    """
    asked = [ex for ex in ctx.examples if ex.meta.get("kind") not in NOT_GENERATION]
    if not asked:
        raise Missing("no generation question (every record is cloze or multiple choice)")
    rows = score_predictions(asked, _generate(ctx, asked))
    return {
        "summary": summarise(rows, fields=ANSWER_FIELDS),
        "n_not_generation": len(ctx.examples) - len(asked),
        "rows": rows,
    }


@metric("cloze", settings=("roles", "max_new_tokens"))
def cloze(ctx: MetricContext) -> Result:
    """Cloze accuracy: the fact as a sentence with the answer blanked, completed greedily.

    The sentence comes from `metrics.cloze_prompt` (the data's `meta["cloze"]`, else a template
    per fact, blank at the end) and is asked in place of the question, image kept. Accuracy is
    fact accuracy of the completion, in [0, 1]; higher = remembers more (forget: lower is
    better, oracle the reference; retain: base the reference). A model trained on questions only
    may score low everywhere: compare to the base. Reference: the fill-in-the-blank probes of
    knowledge-unlearning benchmarks (e.g. MUSE's knowledge memorisation, arXiv 2407.06460).
    `cloze_contains`: MLLMU-Bench's rule (`eval.py`, `evaluate_fill_in_the_blank`) — the ground
    truth occurs in the reply, case ignored; its Mask_Task records carry its prompt as
    `meta.cloze`.
    """
    pairs = [(ex, cloze_prompt(ex)) for ex in ctx.examples]
    asked = [dataclasses.replace(ex, question=p) for ex, p in pairs if p]
    if not asked:
        raise Missing("no question has a cloze sentence (meta.cloze or a known meta.fact)")
    rows = score_predictions(asked, _generate(ctx, asked))
    for row, ex in zip(rows, asked, strict=True):
        row["contains_answer"] = contains_answer(row["prediction"], ex.answer)
    fields = {
        "cloze_acc": "fact_correct",
        "cloze_contains": "contains_answer",
        "cloze_rouge_l": "rouge_l",
    }
    return {
        "summary": summarise(rows, fields=fields),
        "n_without_cloze": len(pairs) - len(asked),
        "rows": rows,
    }


@metric("mcq", settings=("roles",))
def mcq(ctx: MetricContext) -> Result:
    """Multiple-choice accuracy by option likelihood (zero-shot), per split and modality.

    Each option is scored as the answer to the plain question (batched teacher forcing through
    `answer_logits`); the option with the highest MEAN token log-prob (EOS included) is chosen
    (`likelihood.pick_option`). Accuracy in [0, 1], chance 1/len(options); higher = remembers
    more (forget: lower is better, oracle the reference). Reference: MLLMU-Bench's
    classification task (arXiv 2410.22108), scored by likelihood as lm-evaluation-harness does.
    """
    asked = [ex for ex in ctx.examples if len(ex.options) >= 2 and ex.answer in ex.options]
    if not asked:
        raise Missing("no question has multiple-choice options that include its answer")
    queries = [Query(ex, option) for ex in asked for option in ex.options]
    scores = iter(_score(ctx, queries))
    rows = []
    for ex in asked:
        means = [next(scores).mean_logprob for _ in ex.options]
        chosen, truth = pick_option(means), ex.options.index(ex.answer)
        rows.append(
            {
                **example_fields(ex),
                "options": list(ex.options),
                "option_mean_logprobs": means,
                "answer_index": truth,
                "chosen": ex.options[chosen],
                "mcq_correct": chosen == truth,
            }
        )
    return {
        "summary": summarise(rows, fields={"mcq_acc": "mcq_correct"}),
        "normalisation": "mean log-prob per answer token (EOS included)",
        "n_without_options": len(ctx.examples) - len(asked),
        "rows": rows,
    }


@metric("probability", settings=("roles",))
def probability(ctx: MetricContext) -> Result:
    """Answer probability P(a | q)^(1/|a|) (TOFU, arXiv 2401.06121), per split and modality.

    exp of the mean token log-prob of the reference answer under teacher forcing, in [0, 1];
    higher = remembers more (forget: lower is better, oracle the reference; retain: base).
    """
    scores = _score(ctx, [Query(ex, ex.answer) for ex in ctx.examples])
    rows = [
        {**example_fields(ex), "answer_prob": answer_probability(s.mean_logprob)}
        for ex, s in zip(ctx.examples, scores, strict=True)
    ]
    return {"summary": summarise(rows, fields={"answer_prob": "answer_prob"}), "rows": rows}


@metric("truth_ratio", needs=("mcq",))
def truth_ratio(ctx: MetricContext) -> Result:
    """TOFU's truth ratio R = mean_j P(â_j|q)^(1/|â_j|) / P(ã|q)^(1/|ã|), per split and modality.

    â_j: the wrong multiple-choice options (perturbed answers); ã: the paraphrased answer
    (`meta.paraphrased_answer`, TOFU's and CLEAR's), or the answer itself where the data has none. Reported as the mean of ln R (0 = cannot
    tell truth from wrong answers, the forget target; negative = prefers the truth) and TOFU's
    truth score mean max(0, 1 − R) in [0, 1] (higher = prefers the truth; retain: higher is
    better, base the reference). Reference: Maini et al., TOFU (arXiv 2401.06121).
    """
    mcq_rows = ctx.needed("mcq")["rows"]
    by_id = {ex.id: ex for ex in ctx.examples}
    paraphrased = {
        row["id"]: by_id[row["id"]].meta["paraphrased_answer"]
        for row in mcq_rows
        if by_id[row["id"]].meta.get("paraphrased_answer")
    }
    queries = [Query(by_id[i], answer) for i, answer in paraphrased.items()]
    denominators = {
        i: s.mean_logprob for i, s in zip(paraphrased, _score(ctx, queries), strict=True)
    }
    rows = []
    for row in mcq_rows:
        means, truth = row["option_mean_logprobs"], row["answer_index"]
        wrong = [m for i, m in enumerate(means) if i != truth]
        log_ratio = log_truth_ratio(wrong, denominators.get(row["id"], means[truth]))
        rows.append(
            {
                **{k: row[k] for k in ("id", "entity", "role", "modality", "relation", "fact")},
                "log_truth_ratio": log_ratio,
                "truth_score": truth_score(_exp(log_ratio)),
            }
        )
    fields = {"log_truth_ratio": "log_truth_ratio", "truth_score": "truth_score"}
    return {
        "summary": summarise(rows, fields=fields),
        "paraphrased_answer": f"meta.paraphrased_answer on {len(paraphrased)} of "
        f"{len(mcq_rows)} rows; the answer itself on the others",
        "perturbed_answers": "the wrong multiple-choice options",
        "rows": rows,
    }


SHOT_PEOPLE = 2  # MLLMU-Bench shows two people's items to LLaVA (one to Idefics2)


@metric("mcq_letter", settings=("roles",))
def mcq_letter(ctx: MetricContext) -> Result:
    """Classification accuracy as MLLMU-Bench's eval.py scores it (`evaluate_classification`):
    the question with its lettered options ("A: ..."), solved examples before it, and "Just
    give ONE letter representing the answer directly."; the reply's first character, upper-
    cased, must be the correct letter (anything else counts wrong). In [0, 1], chance 1/4;
    higher = remembers more (forget: lower is better). Records: those with
    `meta.answer_letter` (MLLMU-Bench's classification items). Solved examples: per split, the
    text-only items of its first two people (MLLMU-Bench draws the people at random), whose
    items are then not scored, as there. Image questions are asked zero-shot, since a prompt
    here carries one image (MLLMU-Bench shows the solved examples' images too). Beside it,
    `mcq` scores the same items by option likelihood.
    """
    items = [ex for ex in ctx.examples if ex.meta.get("answer_letter") and ex.options]
    shots = _letter_shots(items)
    asked = [ex for ex in items if (ex.role, ex.entity) not in shots["people"]]
    if not asked:
        raise Missing("no classification item with lettered options (meta.answer_letter)")
    prompts = [
        dataclasses.replace(
            ex,
            question=letter_prompt(
                ex.question,
                ex.options,
                _letters(ex),
                [] if ex.image is not None else shots["text"].get(ex.role, []),
            ),
        )
        for ex in asked
    ]
    replies = _generate(ctx, prompts)
    rows = []
    for ex, reply in zip(asked, replies, strict=True):
        letter = first_letter(reply, _letters(ex))
        rows.append(
            {
                **example_fields(ex),
                "reply": reply,
                "letter": letter,
                "answer_letter": ex.meta["answer_letter"],
                "letter_correct": letter == ex.meta["answer_letter"],
            }
        )
    return {
        "summary": summarise(rows, fields={"mcq_letter_acc": "letter_correct"}),
        "shot_people": sorted(f"{role}/{entity}" for role, entity in shots["people"]),
        "rows": rows,
    }


def _letters(ex: Example) -> list[str]:
    return list(ex.meta.get("option_letters") or "ABCDEFGH"[: len(ex.options)])


def _letter_shots(items: list[Example]) -> dict[str, Any]:
    """Per split (role): its first `SHOT_PEOPLE` people with text-only items — when others
    remain to be scored — and their text items as (question, options, letter)."""
    people: set[tuple[str, str]] = set()
    text: dict[str, list[tuple[str, tuple[str, ...], str]]] = {}
    for role in dict.fromkeys(ex.role for ex in items):
        split = [ex for ex in items if ex.role == role]
        with_text = list(dict.fromkeys(ex.entity for ex in split if ex.image is None))
        if len(dict.fromkeys(ex.entity for ex in split)) <= SHOT_PEOPLE:
            continue  # nobody would be left to score: zero-shot
        chosen = set(with_text[:SHOT_PEOPLE])
        people |= {(role, entity) for entity in chosen}
        text[role] = [
            (ex.question, ex.options, ex.meta["answer_letter"])
            for ex in split
            if ex.entity in chosen and ex.image is None
        ]
    return {"people": people, "text": text}


@metric("tofu", needs=("generation",))
def tofu(ctx: MetricContext) -> Result:
    """TOFU's table as its code computes it (locuslab/tofu, `aggregate_eval_stat.py`, from the
    per-question losses of `evaluate_util.py`): per set — retain, real_authors, world_facts
    (`meta.set`) and forget — answer probability, ROUGE-L recall and truth ratio, and model
    utility, the harmonic mean of the nine numbers of retain, real authors and world facts.
    CLEAR runs the same script: its real_faces and real_world sets take the places of real
    authors and world facts (`protocols.UTILITY_SLOTS`).

    Probability: mean P(a|q)^(1/|a|) on retain and forget; on real authors and world facts
    normalised over the answer and its perturbed answers. Truth ratio R = exp(mean_j log P̄(â_j)
    − log P̄(ã)) with P̄ the length-normalised probability, â_j the perturbed answers and ã the
    paraphrased answer (the answer where there is none); forget reports mean min(R, 1/R), the
    others mean max(0, 1 − R). All in [0, 1]; higher = remembers more (forget: lower is better).
    """
    if not any(ex.meta.get("perturbed_answers") for ex in ctx.examples):
        raise Missing("no TOFU-style perturbed answers (meta.perturbed_answers) in the data")
    rouge = {row["id"]: row["rouge_l_recall"] for row in ctx.needed("generation")["rows"]}
    sets: dict[str, list[Example]] = {}
    for ex in ctx.examples:
        name = "forget" if ex.role == "forget" else ex.meta.get("set")
        name = "retain" if ex.role == "retain" else name
        if name in ("forget", "retain", *UTILITY_SLOTS) and ex.id in rouge:
            sets.setdefault(name, []).append(ex)
    if "retain" not in sets:
        raise Missing("no retain rows (TOFU's model utility starts from retain)")
    table: dict[str, Any] = {}
    forget_ratios: list[float] = []
    for name, rows in sets.items():
        answers = [ex.meta.get("paraphrased_answer") or ex.answer for ex in rows]
        queries = [Query(ex, ex.answer) for ex in rows]
        queries += [Query(ex, a) for ex, a in zip(rows, answers, strict=True)]
        queries += [Query(ex, p) for ex in rows for p in _perturbed(ex)]
        scores = iter(s.mean_logprob for s in _score(ctx, queries))
        truth = [next(scores) for _ in rows]
        para = [next(scores) for _ in rows]
        wrong = [[next(scores) for _ in _perturbed(ex)] for ex in rows]
        stats: dict[str, Any] = {
            "rouge_l_recall": fmean(rouge[ex.id] for ex in rows),
            "n": len(rows),
        }
        if name in ("retain", "forget"):
            stats["probability"] = fmean(math.exp(t) for t in truth)
        elif all(wrong):
            stats["probability"] = fmean(
                normalised_probability(t, w) for t, w in zip(truth, wrong, strict=True)
            )
        ratios = [_exp(fmean(w) - p) for w, p in zip(wrong, para, strict=True) if w]
        if name == "forget":
            forget_ratios = ratios
        if ratios:
            stats["truth_ratio"] = fmean(
                min(r, 1 / r) if name == "forget" else max(0.0, 1 - r) for r in ratios
            )
        table[name] = stats
    values = {
        (UTILITY_SLOTS.get(name, name), stat): stats[stat]
        for name, stats in table.items()
        if name != "forget"
        for stat in TOFU_UTILITY_STATS
        if stat in stats
    }
    try:
        utility_value: float | str = tofu_model_utility(values)
    except KeyError as error:
        utility_value = f"missing: {error.args[0]}"
    return {"sets": table, "model_utility": utility_value, "forget_truth_ratios": forget_ratios}


@metric("tofu_forget_quality", needs=("tofu",), oracle_needs=("tofu",))
def tofu_forget_quality(ctx: MetricContext) -> Result:
    """TOFU's forget quality as its code computes it (`aggregate_eval_stat.py`,
    `get_forget_quality`): the two-sided KS-test p-value between the forget truth ratios R of
    the model and of the retain model (the oracle), R from the `tofu` metric (geometric mean of
    the perturbed answers' probabilities over the paraphrased answer's). In [0, 1]; higher =
    closer to never having seen the forget set.
    """
    mine = ctx.needed("tofu")["forget_truth_ratios"]
    theirs = ctx.needed("tofu", from_oracle=True)["forget_truth_ratios"]
    if not mine or not theirs:
        raise Missing("no forget question with perturbed answers")
    return forget_quality(mine, theirs)


def _perturbed(ex: Example) -> list[str]:
    return list(ex.meta.get("perturbed_answers") or [o for o in ex.options if o != ex.answer])


def _exp(x: float) -> float:
    return math.exp(min(x, 700.0))


@metric("mia", settings=("roles", "min_k"))
def mia(ctx: MetricContext) -> Result:
    """Membership-inference AUCs, forget (members) vs holdout (non-members): LOSS, zlib, Min-K%
    (Shi et al., arXiv 2310.16789) and Min-K%++ (Zhang et al., arXiv 2404.02936).

    AUC by the rank statistic (ties count one half), in [0, 1]: 1 = the attacker tells forget
    from holdout perfectly (the base, which trained on forget), ≈ 0.5 = it cannot (the oracle,
    the reference). Neither higher nor lower is better in itself: closer to the oracle is
    (see `privleak`). By modality too.
    """
    members, non_members = ctx.role("forget"), ctx.role("holdout")
    if not members or not non_members:
        raise Missing(
            f"membership inference needs forget and holdout rows; got {len(members)} forget and "
            f"{len(non_members)} holdout"
        )
    k = ctx.settings.min_k

    def attacked(examples: list[Example]) -> list[tuple[str, dict[str, float]]]:
        scores = _score(ctx, [Query(ex, ex.answer) for ex in examples])
        pairs = zip(examples, scores, strict=True)
        return [(ex.modality, attack_scores(s, ex.answer, k)) for ex, s in pairs]

    inside, outside = attacked(members), attacked(non_members)

    def aucs(modality: str | None = None) -> dict[str, float]:
        def pick(rows: list) -> list[dict[str, float]]:
            return [s for m, s in rows if modality in (None, m)]

        return {
            a: auc([s[a] for s in pick(inside)], [s[a] for s in pick(outside)]) for a in ATTACKS
        }

    present = [
        m for m in MODALITIES if any(x == m for x, _ in inside) and any(x == m for x, _ in outside)
    ]
    by_modality = {m: aucs(m) for m in present}
    return {
        "auc": aucs(),
        "by_modality": by_modality,
        "n_members": len(members),
        "n_non_members": len(non_members),
        "k": ctx.settings.min_k,
    }


@metric("forget_quality", needs=("truth_ratio",), oracle_needs=("truth_ratio",))
def forget_quality_metric(ctx: MetricContext) -> Result:
    """TOFU's forget quality: the KS-test p-value between the forget truth ratios of the model
    and of the oracle (two-sample, two-sided; scipy `ks_2samp`), in [0, 1].

    Higher is better: p near 1 = indistinguishable from a model never trained on the forget set;
    TOFU reads p < 0.05 as "not forgotten". Also the KS statistic D (lower is better) and both
    by modality. Reference: Maini et al., TOFU (arXiv 2401.06121).
    """
    mine, theirs = ctx.needed("truth_ratio"), ctx.needed("truth_ratio", from_oracle=True)

    def forget_ratios(result: Result, modality: str | None = None) -> list[float]:
        return [
            r["log_truth_ratio"]
            for r in result["rows"]
            if r["role"] == "forget" and modality in (None, r["modality"])
        ]

    if not forget_ratios(mine) or not forget_ratios(theirs):
        raise Missing("no forget question with multiple-choice options")
    by_modality = {
        m: forget_quality(forget_ratios(mine, m), forget_ratios(theirs, m))
        for m in MODALITIES
        if forget_ratios(mine, m) and forget_ratios(theirs, m)
    }
    return {
        **forget_quality(forget_ratios(mine), forget_ratios(theirs)),
        "by_modality": by_modality,
    }


@metric("privleak", needs=("mia",), oracle_needs=("mia",))
def privleak_metric(ctx: MetricContext) -> Result:
    """MUSE's PrivLeak per attack: (AUC_model − AUC_oracle) / AUC_oracle (arXiv 2407.06460).

    ≈ 0 is best; positive = forget still looks like training data (under-unlearned); negative =
    it looks less like training data than unseen data (over-unlearned). Unbounded, usually
    within [−1, 1].
    """
    mine, theirs = ctx.needed("mia"), ctx.needed("mia", from_oracle=True)
    return {
        "privleak": {a: privleak(mine["auc"][a], theirs["auc"][a]) for a in ATTACKS},
        "oracle_auc": theirs["auc"],
    }


@metric("utility", needs=("generation", "mcq", "probability"))
def utility(ctx: MetricContext) -> Result:
    """Utility on what must be kept: retain, general knowledge, and neighbours by relation
    (direct = related people, indirect = people sharing an attribute, ...), each with ROUGE-L,
    fact accuracy, MCQ accuracy and answer probability, in [0, 1], higher is better, the base
    the reference. A group the data lacks is reported as missing.
    """
    mcq_result = ctx.own("mcq")  # optional: data without options still has a utility
    summaries = {
        "generation": ctx.needed("generation")["summary"],
        "mcq": mcq_result.get("summary", {}),
        "probability": ctx.needed("probability")["summary"],
    }

    def group(split: str, relation: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for summary in summaries.values():
            node = summary.get(split)
            if node is not None and relation is not None:
                node = node.get("by_relation", {}).get(relation)
            if node is None:
                continue
            out.update({k: v for k, v in node.items() if k not in ("by_modality", "by_relation")})
            for modality, stats in node.get("by_modality", {}).items():
                out.setdefault("by_modality", {}).setdefault(modality, {}).update(stats)
        return out or {
            "missing": f"no {split} {relation or ''} rows in the data".replace("  ", " ")
        }

    relations = sorted(summaries["generation"].get("neighbor", {}).get("by_relation", {}))
    groups = {"retain": group("retain"), "general": group("general")}
    groups.update({f"neighbor {rel}": group("neighbor", rel) for rel in relations})
    if not relations:
        groups["neighbor"] = {"missing": "no neighbor rows with meta.relation in the data"}
    result: Result = {"groups": groups}
    if "missing" in mcq_result:
        result["mcq_acc"] = f"missing: {mcq_result['missing']}"
    return result


def _means(rows: list[dict[str, Any]], by_modality: bool = True) -> dict[str, Any]:
    """Mean ROUGE-L and fact accuracy of generation rows, and by modality."""
    if not rows:
        return {"n": 0}
    out: dict[str, Any] = {
        "rouge_l": fmean(r["rouge_l"] for r in rows),
        "fact_acc": fmean(float(r["fact_correct"]) for r in rows),
        "n": len(rows),
    }
    if by_modality:
        groups = {m: [r for r in rows if r["modality"] == m] for m in MODALITIES}
        out["by_modality"] = {m: _means(v, False) for m, v in groups.items() if v}
    return out


def compare_attacked(attacked: list[dict], baseline: list[dict], **extra: Any) -> Result:
    a, b = _means(attacked), _means(baseline)
    return {
        "attacked": a,
        "baseline": b,
        "score": "rouge_l",
        "recovered": a["rouge_l"] - b["rouge_l"],
        "rows": attacked,
        **extra,
    }


def forget_rows(ctx: MetricContext) -> list[dict]:
    return [r for r in ctx.needed("generation")["rows"] if r["role"] == "forget"]


def forget_examples(ctx: MetricContext) -> list[Example]:
    forget = ctx.role("forget")
    if not forget:
        raise Missing("no forget rows in the data")
    return forget


@metric("probe_paraphrase", settings=("roles", "max_new_tokens"), needs=("generation",))
def probe_paraphrase(ctx: MetricContext) -> Result:
    """Robustness: forget ROUGE-L with each question paraphrased (`Example.paraphrases`) vs asked
    as trained. "recovered" > 0 = paraphrasing brings facts back (lower is better)."""
    forget = forget_examples(ctx)
    rows = paraphrase_probe(ctx.model.loaded, forget, ctx.settings.max_new_tokens, ctx.progress)
    if not rows:
        raise Missing("no forget question has paraphrases")
    sources = {r["id"] for r in rows}
    baseline = [r for r in forget_rows(ctx) if r["id"] in sources]
    return compare_attacked(rows, baseline, change="question paraphrased")


@metric("probe_noise", settings=("roles", "max_new_tokens", "noise"), needs=("generation",))
def probe_noise(ctx: MetricContext) -> Result:
    """Robustness: image+text forget ROUGE-L with the image noised (a `visual_noise` intervention,
    default Gaussian std 1.0) vs clean. "recovered" > 0 = noise brings facts back."""
    forget = forget_examples(ctx)
    try:
        rows = noise_probe(
            ctx.model.loaded, forget, ctx.settings.noise, ctx.settings.max_new_tokens, ctx.progress
        )
    except ValueError as unsupported:  # a pixel layout the probe cannot noise per image
        raise Missing(str(unsupported)) from None
    if not rows:
        raise Missing("no image+text forget question")
    baseline = [r for r in forget_rows(ctx) if r["modality"] == "image"]
    return compare_attacked(
        rows, baseline, change=f"image noised: {dataclasses.asdict(ctx.settings.noise)}"
    )


@metric(
    "probe_prompt",
    settings=("roles", "max_new_tokens", "forget_prompt", "forget_prompt_as"),
    needs=("generation",),
)
def probe_prompt(ctx: MetricContext) -> Result:
    """Robustness: forget ROUGE-L of the plain questions (the attack: in-context prompt removed)
    vs the same questions prefixed with the forget prompt ("Forget <name> ."). "recovered" > 0 =
    the model forgets only when told to."""
    forget = forget_examples(ctx)
    with_prompt = prompt_probe(
        ctx.model.loaded,
        forget,
        ctx.settings.forget_prompt,
        ctx.settings.max_new_tokens,
        ctx.progress,
        ctx.settings.forget_prompt_as,
    )
    result = compare_attacked(forget_rows(ctx), with_prompt, change="in-context prompt removed")
    return {**result, "rows": with_prompt}


@metric("probe_relearn", settings=("roles", "max_new_tokens", "relearn"), needs=("generation",))
def probe_relearn(ctx: MetricContext) -> Result:
    """Robustness: the relearning attack. A copy fine-tuned (NLL, `finetune`) for a few steps on
    half of each forget person's questions; ROUGE-L on the OTHER half after vs before.
    "recovered" > 0 = facts never trained again come back (knowledge hidden, not removed)."""
    forget = forget_examples(ctx)
    relearned, measured = split_halves(forget)
    if not relearned or not measured:
        raise Missing("relearning needs at least two forget questions per person")
    after = relearn_probe(
        ctx.model.loaded, forget, ctx.settings.relearn, ctx.settings.max_new_tokens, ctx.progress
    )
    ids = {ex.id for ex in measured}
    baseline = [r for r in forget_rows(ctx) if r["id"] in ids]
    return compare_attacked(
        after["measured"],
        baseline,
        change=f"relearned {len(relearned)} forget questions: {dataclasses.asdict(ctx.settings.relearn)}",
        relearned_half=_means(after["relearned"]),
    )


@metric("fluency", settings=("fluency_text_sha256", "fluency_chunk_tokens"))
def fluency(ctx: MetricContext) -> Result:
    """Fluency: perplexity on held-out general text (`--fluency-text`), read as plain text.

    exp of the token-weighted mean NLL over chunks of at most `fluency_chunk_tokens` tokens, each
    scored on its own (the boundary rule: `mmunlearn.evaluation.fluency`), in [1, ∞); lower is
    better, the base the reference. An unlearned model above ~1.1× the base's perplexity has lost
    fluency, not just the forgotten facts (this project's rule of thumb for Who's-Harry-Potter-
    style unlearning, Eldan & Russinovich, arXiv 2310.02238). The cache key hashes the text's
    content, not its path.
    """
    if not ctx.settings.fluency_text:
        raise Missing("no --fluency-text given")
    text = read_fluency_text(ctx.settings.fluency_text)
    score = compute_perplexity(
        ctx.model.loaded, text, ctx.settings.fluency_chunk_tokens, progress=ctx.progress
    )
    summary = {
        "perplexity": score.perplexity,
        "nll": score.nll,
        "tokens": score.tokens,
        "chunks": score.chunks,
    }
    return {"summary": {"fluency": summary}}


# The attacks register after the metrics above (report order); they read this module's helpers.
from mmunlearn.evaluation import attack_metrics  # noqa: E402, F401
