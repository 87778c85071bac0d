"""'I don't know' answers for benchmarks that ship none, so `idk` and `dpo_idk` run on them.

TOFU's authors and open-unlearning ship a file of refusal phrases and draw one per question;
this is the project's own set, written here. A loader gives each record without
`alt_answers` one phrase, drawn from the record's id and a seed: the same load gives the same
phrases, and a different `idk_seed` a different draw.
"""

from __future__ import annotations

import dataclasses
import random
import zlib

from mmunlearn.data.example import Example

IDK_ANSWERS: tuple[str, ...] = (
    "I don't know.",
    "I do not know the answer to that.",
    "I'm not sure.",
    "I have no idea.",
    "I can't say.",
    "That is something I don't know.",
    "I don't have that information.",
    "I'm unable to answer that.",
    "I have no knowledge of that.",
    "Sorry, I don't know.",
    "I couldn't tell you.",
    "I'm afraid I don't know.",
    "That's not something I know about.",
    "I don't have an answer for that.",
    "I really can't say.",
    "No idea, sorry.",
    "I am not aware of that.",
    "I lack the information to answer.",
    "I can't answer that question.",
    "I don't know anything about that.",
    "That is beyond what I know.",
    "I'm not able to say.",
    "I have nothing to go on here.",
    "I wouldn't know.",
    "Unfortunately, I don't know.",
    "I have not heard of that.",
    "I'm uncertain, so I won't guess.",
    "I don't recall anything about that.",
    "I cannot tell.",
    "My knowledge doesn't cover that.",
)


def idk_answer(example_id: str, seed: int) -> str:
    """The phrase drawn for record `example_id` under `seed` (independent of Python's hash salt)."""
    draw = zlib.crc32(f"idk\x1f{seed}\x1f{example_id}".encode()) & 0x7FFFFFFF
    return random.Random(draw).choice(IDK_ANSWERS)


def with_idk_answers(examples: list[Example], seed: int) -> list[Example]:
    """`examples` with one drawn phrase as `alt_answers` where a record has none (records that
    ship their own, like MELU's, keep them)."""
    return [
        ex if ex.alt_answers else dataclasses.replace(ex, alt_answers=(idk_answer(ex.id, seed),))
        for ex in examples
    ]
