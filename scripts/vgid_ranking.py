"""Why VGID still ranks the right option first on portrait questions (issue 17, part 4).

After VGID, greedy answers about forget portraits are mostly wrong, yet the right multiple-choice
option still wins by likelihood far more often than the oracle's. Two explanations:
- the teacher (the frozen base shown the portrait replaced by noise) still ranks the true answer
  first, so distilling it keeps the ranking; or
- the student matched the teacher only where it was trained — the true answer's own positions —
  and moved its argmax there, while the options' relative likelihoods stay the base's.

For every forget image question with options, this scores each option (teacher forcing, the
length-normalised mean token log-prob the `mcq` metric uses) under the base, the teacher (base,
portrait replaced by uniform noise as `teacher.noise.kind=replace` does, probabilities averaged
over draws as the VGID teacher does), the VGID student and the oracle, and reports:
- MCQ accuracy by the mean over answer tokens (the metric), and by the first answer token alone;
- P(true answer's first token), and the share of first-token probability on the four options;
- the true answer's mean log-prob, student minus teacher (how close distillation got).

    python scripts/vgid_ranking.py --sweep runs/sweep     # base/oracle/world of a sweep
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
from pathlib import Path
from statistics import fmean

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from records import machine, write_table  # noqa: E402

from mmunlearn.data.jsonl import load_examples  # noqa: E402
from mmunlearn.data.world import load_world_meta  # noqa: E402
from mmunlearn.evaluation.likelihood import pick_option  # noqa: E402
from mmunlearn.evaluation.scoring import Query, score_answers  # noqa: E402
from mmunlearn.io import atomic_save_image, atomic_write_json  # noqa: E402
from mmunlearn.models.loading import load_model  # noqa: E402
from mmunlearn.teachers.entity_swap import swapped_question  # noqa: E402

DEFAULT_VGID = "vgid__train.lr=3e-4__train.steps=40"  # the demo's budget
KEYS = ("mcq_mean", "mcq_first", "mcq_rest", "p_true_first", "options_first_mass")
KEYS += ("true_mean", "distractor_mean")


def noised(examples: list, out: Path, draw: int, size: int) -> list:
    """`examples` with each portrait replaced by uniform RGB noise (seeded by draw and path)."""
    result = []
    for ex in examples:
        path = out / f"draw{draw}" / f"{Path(ex.image).stem}.png"
        if not path.is_file():
            rng = random.Random(f"{draw}:{Path(ex.image).name}")  # the same noise in any folder
            pixels = bytes(rng.randrange(256) for _ in range(size * size * 3))
            atomic_save_image(path, Image.frombytes("RGB", (size, size), pixels))
        result.append(dataclasses.replace(ex, image=str(path)))
    return result


def option_logprobs(model, examples: list) -> list[list[list[float]]]:
    """[question][option] -> per-token log-probs (EOS included)."""
    queries = [Query(ex, option) for ex in examples for option in ex.options]
    scores = iter(score_answers(model, queries, progress=False))
    return [[list(next(scores).logprobs) for _ in ex.options] for ex in examples]


def mean_over_draws(draws: list[list[list[list[float]]]]) -> list[list[list[float]]]:
    """Per token, log of the mean probability over draws (the VGID teacher's mixture)."""
    first = draws[0]
    return [
        [
            [math.log(fmean(math.exp(d[q][o][t]) for d in draws)) for t in range(len(first[q][o]))]
            for o in range(len(first[q]))
        ]
        for q in range(len(first))
    ]


def measure(examples: list, scores: list[list[list[float]]]) -> dict[str, float]:
    rows = []
    for ex, options in zip(examples, scores, strict=True):
        truth = ex.options.index(ex.answer)
        means = [fmean(tokens) for tokens in options]
        firsts = [tokens[0] for tokens in options]
        rest = [fmean(tokens[1:]) for tokens in options]
        rows.append(
            {
                "mcq_mean": pick_option(means) == truth,
                "mcq_first": pick_option(firsts) == truth,
                "mcq_rest": pick_option(rest) == truth,
                "p_true_first": math.exp(firsts[truth]),
                "options_first_mass": sum(math.exp(x) for x in firsts),
                "true_mean": means[truth],
                "distractor_mean": max(m for i, m in enumerate(means) if i != truth),
            }
        )
    return {key: fmean(float(row[key]) for row in rows) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", default="runs/sweep", help="a `mmunlearn sweep` folder")
    parser.add_argument("--vgid", help=f"the VGID model (default SWEEP/runs/{DEFAULT_VGID}/model)")
    parser.add_argument("--base", help="the base model (default: the sweep's)")
    parser.add_argument("--oracle", help="the oracle model (default: the sweep's)")
    parser.add_argument("--world", help="the world folder (default SWEEP/world)")
    parser.add_argument("--draws", type=int, default=4, help="noise draws for the teacher")
    parser.add_argument("--output-dir", default="runs/vgid_ranking")
    args = parser.parse_args()
    sweep, out = Path(args.sweep), Path(args.output_dir)
    models = {"base": args.base, "oracle": args.oracle}
    if not all(models.values()):
        models = json.loads((sweep / "sweep.json").read_text())["meta"]["models"] | {
            k: v for k, v in models.items() if v
        }
    vgid = Path(args.vgid or sweep / "runs" / DEFAULT_VGID / "model")
    world = Path(args.world or sweep / "world")
    forget = [ex for ex in load_examples(world) if ex.role == "forget" and ex.answer in ex.options]
    if not forget:
        raise SystemExit("no forget questions with options in the world")
    pool = tuple(load_world_meta(world).get("unused_names", []))
    loaded = {
        "base": load_model(models["base"]),
        "vgid student": load_model(vgid),
        "oracle": load_model(models["oracle"]),
    }
    results, rows, by_fact = {}, [], []
    for modality in ("image", "text"):
        examples = [ex for ex in forget if (ex.image is not None) == (modality == "image")]
        if not examples or (modality == "text" and not pool):
            continue
        if modality == "image":
            size = Image.open(examples[0].image).size[0]
            draws = [noised(examples, out / "noise", d, size) for d in range(args.draws)]
            label = f"teacher (portrait → noise, {args.draws} draws)"
        else:
            draws = [swapped(examples, pool, d) for d in range(args.draws)]
            label = f"teacher (name → unseen names, {args.draws} draws)"
        teacher = mean_over_draws([option_logprobs(loaded["base"], d) for d in draws])
        scored = {"base": option_logprobs(loaded["base"], examples), label: teacher}
        scored |= {
            name: option_logprobs(loaded[name], examples) for name in loaded if name != "base"
        }
        student = scored["vgid student"]
        gap = fmean(
            fmean(s - t for s, t in zip(student[q][i], teacher[q][i], strict=True))
            for q, ex in enumerate(examples)
            for i in [ex.options.index(ex.answer)]
        )
        results[modality] = {
            "n": len(examples),
            "models": {name: measure(examples, sc) for name, sc in scored.items()},
            "by_fact": {name: mcq_by_fact(examples, sc) for name, sc in scored.items()},
            "student_minus_teacher_true_mean_logprob": gap,
        }
        for name, r in results[modality]["models"].items():
            rows.append([modality, name, *(f"{r[k]:.3f}" for k in KEYS)])
        facts = sorted(results[modality]["by_fact"]["base"])
        for name, accs in results[modality]["by_fact"].items():
            by_fact.append(
                f"- {modality}, {name}: " + ", ".join(f"{f} {accs[f]:.2f}" for f in facts)
            )
        by_fact.append(f"- {modality}: student − teacher, true answer mean log-prob {gap:+.3f}")
    atomic_write_json(out / "ranking.json", {"vgid": str(vgid), "results": results})
    write_table(
        out / "ranking.md",
        ["questions", "model", *KEYS],
        rows,
        [
            f"Forget questions with 4 options; {machine()}; VGID: {vgid}.",
            "mcq_mean: the metric (mean token log-prob); mcq_first / mcq_rest: by the first "
            "answer token / by the tokens after it (EOS included) alone; p_true_first: "
            "P(true first token); options_first_mass: first-token probability on the 4 options; "
            "true_mean / distractor_mean: mean log-prob of the truth / the best distractor.",
            "",
            "MCQ accuracy (mcq_mean) by fact:",
            *by_fact,
        ],
    )


def swapped(examples: list, pool: tuple[str, ...], draw: int) -> list:
    """`examples` with the person's name in the question replaced by an unseen name."""
    return [
        dataclasses.replace(ex, question=swapped_question(ex, pool, 0, draw)) for ex in examples
    ]


def mcq_by_fact(examples: list, scores: list[list[list[float]]]) -> dict[str, float]:
    correct: dict[str, list[bool]] = {}
    for ex, options in zip(examples, scores, strict=True):
        chosen = pick_option([fmean(tokens) for tokens in options])
        correct.setdefault(ex.meta.get("fact", "?"), []).append(ex.options[chosen] == ex.answer)
    return {fact: fmean(map(float, hits)) for fact, hits in correct.items()}


if __name__ == "__main__":
    main()
