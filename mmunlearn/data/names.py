"""People's names for benchmark records whose rows carry only an id or a row position.

An `Example.entity` is the name a prompt can say ("Forget Basil Mahfouz Al-Kuwaiti.") and a
question can have swapped out; an id ("311", "forget10/author-0") does neither. Benchmarks give
names in different places: a `name` column (CLEAR), a profile (MLLMU-Bench's `biography`), or
only inside the questions themselves (TOFU's "What genre is Basil Mahfouz Al-Kuwaiti known
for?"). Each loader says in its log which place each name came from (`NameSources`).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# a word that starts with a capital: "Basil", "Al-Kuwaiti", "O'Neil", "Yun-Hwa"
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_POSSESSIVE = re.compile(r"['’]s?$")
_PROFILE_LINE = re.compile(r"^\s*(?:full\s+)?name\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
MAX_NAME_WORDS = 5


def capitalised_phrases(text: str) -> list[list[str]]:
    """Runs of two or more capitalised words separated by single spaces; a possessive ends a
    run ("Basil Mahfouz Al-Kuwaiti's Books" gives "Basil Mahfouz Al-Kuwaiti")."""
    runs: list[list[str]] = []
    run: list[str] = []
    end = -1
    for match in _WORD.finditer(text):
        word = match.group()
        if run and (not word[0].isupper() or text[end : match.start()] != " "):
            runs.append(run)
            run = []
        if not word[0].isupper():
            continue
        bare = _POSSESSIVE.sub("", word)
        run.append(bare)
        end = match.end()
        if bare != word:
            runs.append(run)
            run = []
    runs.append(run)
    return [r for r in runs if len(r) >= 2]


def frequent_name(texts: Iterable[str]) -> tuple[str, int] | None:
    """The person name most of `texts` mention, and in how many of them it occurs.

    Candidates are the runs of two to five capitalised words and their sub-runs, each counted
    once per text; the winner maximises (texts × words), so the full name ("Basil Mahfouz
    Al-Kuwaiti", in 18 texts) beats its parts and a sentence opener glued to it ("Has Basil
    Mahfouz Al-Kuwaiti", once). None when no text has two capitalised words in a row.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        seen = set()
        for run in capitalised_phrases(text):
            for start in range(len(run)):
                for stop in range(start + 2, min(len(run), start + MAX_NAME_WORDS) + 1):
                    seen.add(" ".join(run[start:stop]))
        counts.update(seen)
    if not counts:
        return None
    best = max(counts, key=lambda name: (counts[name] * len(name.split()), counts[name]))
    return best, counts[best]


def profile_name(profile: str | None) -> str | None:
    """The name a profile states: a JSON object's `name` key (any case), or a `Name: ...` line."""
    if not isinstance(profile, str) or not profile.strip():
        return None
    try:
        parsed = json.loads(profile)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            if key.strip().lower() in ("name", "full name", "full_name") and isinstance(value, str):
                return value.strip() or None
        return None
    match = _PROFILE_LINE.search(profile)
    return match.group(1).strip(" .") if match else None


def known_name_in(text: str, names: Iterable[str]) -> str | None:
    """The longest of `names` that `text` mentions as whole words."""
    found = [
        name for name in names if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None
    ]
    return max(found, key=len) if found else None


@dataclass
class NameSources:
    """Counts, per source, of the names a loader found, for one log line per split."""

    benchmark: str
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, source: str, name: str) -> None:
        self.counts[source] += 1
        self.examples.setdefault(source, name)

    def log(self, split: str) -> None:
        if not self.counts:
            return
        parts = [
            f"{count} from {source} (e.g. {self.examples[source]!r})"
            for source, count in self.counts.items()
        ]
        level = (
            logging.WARNING if any(s.startswith("no name") for s in self.counts) else logging.INFO
        )
        log.log(level, "%s %s: person names — %s", self.benchmark, split, "; ".join(parts))
        self.counts.clear()
        self.examples.clear()
