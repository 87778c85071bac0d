"""Who's Harry Potter's familiarity check: do completions still use the subject's own names?

Eldan & Russinovich (arXiv 2310.02238) prompt the model with completions about the subject
("Harry Potter's best friend is named") and ask whether what it writes shows familiarity with
the subject's idiosyncratic content (they had GPT-4 judge it). Here the judge is the anchored-
terms dictionary: a completion is *familiar* when it contains any of its anchored terms (the
keys: "Hermione", "Hogwarts", ...), case-insensitively and as whole words. The score is the
fraction of familiar completions; lower is better after unlearning.

Only the completion is scored, never the prompt (which names the subject on purpose). Whole
words: a term must not continue into letters, digits or `_` on either side, so the possessive
"Harry's" counts as "Harry" but "Harrys" or "Harryhausen" do not; matching is longest first and
without overlaps, so "Harry Potter" counts once, as "Harry Potter". Case-insensitive, so a key
that is also a common word ("Potter" the craftsman) counts too.

Completions come from `generate_answers` (greedy, batched): each prompt is the question of an
`Example`. A chat model therefore sees the prompt as a user turn rendered through its chat
template and replies to it, rather than continuing the text; a model without a template sees
`Question: <prompt> Answer:` and only the first line of its continuation is kept. Both still
show whether the model reaches for the subject's names; compare scores on one model only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmunlearn.data.example import Example
from mmunlearn.evaluation.generate import DEFAULT_MAX_NEW_TOKENS, generate_answers
from mmunlearn.models.loading import LoadedModel


def load_prompts(path: str | Path) -> list[str]:
    """Completion prompts, one per line (blank lines and lines starting with `#` skipped)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"familiarity prompts={str(path)!r}: file not found (one prompt a line)")
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise ValueError(f"familiarity prompts={str(path)!r}: no prompts in the file")
    return prompts


def term_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    """A case-insensitive pattern matching any of `terms` as whole words, longest first."""
    keys = sorted({t.strip() for t in terms if t.strip()}, key=len, reverse=True)
    if not keys:
        raise ValueError("familiarity needs at least one anchored term")
    alternatives = "|".join(map(re.escape, keys))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def find_terms(text: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    """The anchored terms `text` uses, as written there, in order (non-overlapping)."""
    return tuple(match.group(0) for match in pattern.finditer(text))


@dataclass(frozen=True)
class FamiliarityRow:
    """One prompt, the model's completion and the anchored terms it used."""

    prompt: str
    completion: str
    terms: tuple[str, ...]

    @property
    def familiar(self) -> bool:
        return bool(self.terms)


@dataclass(frozen=True)
class Familiarity:
    """The fraction of familiar completions (`score`) and the row of each prompt."""

    rows: tuple[FamiliarityRow, ...]

    @property
    def score(self) -> float:
        return sum(row.familiar for row in self.rows) / len(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "familiarity": self.score,
            "familiar": sum(row.familiar for row in self.rows),
            "prompts": len(self.rows),
            "rows": [
                {
                    "prompt": row.prompt,
                    "completion": row.completion,
                    "terms": list(row.terms),
                    "familiar": row.familiar,
                }
                for row in self.rows
            ],
        }


def score_familiarity(
    prompts: Sequence[str], completions: Sequence[str], terms: Iterable[str]
) -> Familiarity:
    """Each completion checked for the anchored `terms` (e.g. an anchors dictionary's keys)."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        raise ValueError("familiarity needs at least one prompt")
    pattern = term_pattern(terms)
    return Familiarity(
        tuple(
            FamiliarityRow(prompt, completion, find_terms(completion, pattern))
            for prompt, completion in zip(prompts, completions, strict=True)
        )
    )


def familiarity(
    loaded: LoadedModel,
    prompts: Sequence[str],
    terms: Iterable[str],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 32,
    progress: bool = True,
) -> Familiarity:
    """Greedy completions of `prompts` scored for the anchored `terms`.

    `terms`: the subject's idiosyncratic names, e.g. `load_anchors(path)` (a dict: its keys).
    """
    prompts, terms = list(prompts), tuple(terms)
    if not prompts:
        raise ValueError("familiarity needs at least one prompt")
    term_pattern(terms)  # a bad term list fails before any generation
    examples = [
        Example(f"familiarity-{i:03d}", "", "test", prompt, "") for i, prompt in enumerate(prompts)
    ]
    completions = generate_answers(
        loaded, examples, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress
    )
    return score_familiarity(prompts, completions, terms)
