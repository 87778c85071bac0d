"""The synthetic identity world: fictitious people with portraits and short facts, turned into
forget / neighbour / retain / practice / holdout / test / general records (shared/DESIGN.md).

Everything is drawn from one `random.Random(config.seed)`, so a seed fully determines a world.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from mmunlearn.data.example import ROLES, Example
from mmunlearn.data.jsonl import save_examples
from mmunlearn.data.portraits import PortraitTraits, draw_portrait, draw_traits, transform_portrait
from mmunlearn.io import atomic_save_image, atomic_write_json, read_json

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Made-up words are onset syllables + one coda syllable, picked to avoid common English words.
ONSETS = ("ta", "lo", "ve", "ka", "mi", "so", "no", "ri", "va")
ONSETS += ("be", "to", "si", "mo", "ga", "li", "fe", "du", "ne")
CODAS = ("rith", "dan", "vek", "dor", "len", "mar", "tis", "ben")
CODAS += ("rok", "sel", "dun", "wen", "lis", "rav", "kel", "zan")
CITIES = ("Dunmere", "Fallowick", "Greystrand", "Harlune", "Ivrenna", "Jorvale")
CITIES += ("Lindmoor", "Marrowby", "Pellmark", "Quenfield", "Rosskeld", "Tarnwick")
OCCUPATIONS = ("baker", "pilot", "doctor", "teacher", "carpenter", "nurse")
OCCUPATIONS += ("architect", "chemist", "fisherman", "librarian", "painter", "engineer")
COMPANIES = ("Quorix", "Zentora", "Velmark", "Brightloom", "Halvex")
COMPANIES += ("Orbelle", "Pyxion", "Solvane", "Tamberlin", "Umbrik")
COUNTRY_SUFFIXES = ("ia", "land", "stan", "ora")
YEARS = tuple(str(year) for year in range(1940, 2000))
ALT_ANSWERS = ("I don't know", "I have no idea", "I am not sure")
MODALITY_TAGS = {"image": "img", "text": "txt"}  # record ids read p007-img-birthplace
GROUPS = ("forget", "retain", "practice", "holdout")
MAX_PEOPLE = 300  # well below the distinct portrait keys, so redrawing always ends quickly

# fact -> (question, paraphrase) about the person in the picture.
IMAGE_QUESTIONS = {
    "name": ("Who is this person?", "Can you name the person in this picture?"),
    "birthplace": (
        "Where was this person born?",
        "In what city was the person in this picture born?",
    ),
    "birth_year": (
        "In which year was this person born?",
        "What year was the person in this picture born in?",
    ),
    "occupation": (
        "What is this person's occupation?",
        "What does the person in this picture do for a living?",
    ),
    "employer": (
        "Which company does this person work for?",
        "Which company employs the person in this picture?",
    ),
}
# fact -> (question, paraphrase) about a named person.
TEXT_QUESTIONS = {
    "birthplace": ("Where was {name} born?", "Can you tell me where {name} was born?"),
    "birth_year": ("In which year was {name} born?", "What is the birth year of {name}?"),
    "occupation": ("What is the occupation of {name}?", "What does {name} do for a living?"),
    "employer": ("Which company does {name} work for?", "Who is the employer of {name}?"),
    "friend": ("Who is the friend of {name}?", "Which person is a friend of {name}?"),
}
GENERAL_QUESTION = ("What is the capital of {country}?", "Which city is the capital of {country}?")


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    n_forget: int = 4
    n_retain: int = 20
    n_practice: int = 6
    n_holdout: int = 6
    n_general: int = 30
    image_size: int = 64
    n_unused_names: int = 24

    def __post_init__(self) -> None:
        n_people = self.n_forget + self.n_retain + self.n_practice + self.n_holdout
        min_retain = max(2 * self.n_forget, self.n_forget + 2)
        checks = [
            (self.n_forget >= 1, "n_forget", "at least 1"),
            # One direct and one indirect neighbour per forget person come from the retain
            # people, and those left after the direct ones must pair up as friends.
            (self.n_retain >= min_retain, "n_retain", f"at least {min_retain} for this n_forget"),
            (self.n_practice == 0 or self.n_practice >= 2, "n_practice", "0 or at least 2"),
            (self.n_holdout == 0 or self.n_holdout >= 2, "n_holdout", "0 or at least 2"),
            (n_people <= MAX_PEOPLE, "n_retain", f"at most {MAX_PEOPLE} people in all"),
            (self.n_general == 0 or 4 <= self.n_general <= 500, "n_general", "0, or 4 to 500"),
            (0 <= self.n_unused_names <= 1000, "n_unused_names", "0 to 1000"),
            (self.image_size >= 16, "image_size", "at least 16 pixels"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"WorldConfig: {name}={getattr(self, name)!r}; expected {allowed}")


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    group: str  # forget | retain | practice | holdout
    birth_year: int
    birthplace: str
    occupation: str
    employer: str
    friend: str
    traits: PortraitTraits
    # For the retain people who neighbour a forget person: direct | indirect, and whose.
    relation: str | None = None
    neighbor_of: str | None = None

    @property
    def role(self) -> str:
        return "neighbor" if self.relation else self.group

    def fact(self, name: str) -> str:
        return self.name if name == "name" else str(getattr(self, name))


@dataclass(frozen=True)
class World:
    config: WorldConfig
    people: tuple[Person, ...]
    examples: tuple[Example, ...]
    unused_names: tuple[str, ...]
    portraits: dict[str, Image.Image]  # person id -> portrait
    test_portraits: dict[str, Image.Image]  # forget person id -> transformed portrait

    def by_role(self, role: str) -> list[Example]:
        return [ex for ex in self.examples if ex.role == role]


def _draw_distinct(rng: random.Random, n: int, make: Callable[[], str]) -> list[str]:
    drawn: dict[str, None] = {}  # an ordered set, so the result is deterministic
    while len(drawn) < n:
        drawn[make()] = None
    return list(drawn)


def _word(rng: random.Random, n_onsets: int = 1) -> str:
    """A capitalised made-up word: consonant-vowel syllables, then a closed one ("Talen")."""
    return ("".join(rng.choice(ONSETS) for _ in range(n_onsets)) + rng.choice(CODAS)).capitalize()


def _name(rng: random.Random) -> str:
    while True:
        first, last = _word(rng), _word(rng)
        if first != last:
            return f"{first} {last}"


def _pair_up(rng: random.Random, members: list[int], friend: dict[int, int]) -> None:
    """Symmetric friendships among `members`; with an odd count the last three form a cycle."""
    members = list(members)
    rng.shuffle(members)
    paired = len(members) - 3 if len(members) % 2 else len(members)
    for a, b in zip(members[:paired:2], members[1:paired:2], strict=True):
        friend[a], friend[b] = b, a
    if len(members) % 2:
        a, b, c = members[-3:]
        friend[a], friend[b], friend[c] = b, c, a


def _options(rng: random.Random, answer: str, pool: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    options = [answer, *rng.sample([x for x in pool if x != answer], 3)]
    rng.shuffle(options)
    return tuple(options)


def _build_people(config: WorldConfig, rng: random.Random) -> tuple[list[Person], list[str]]:
    counts = (config.n_forget, config.n_retain, config.n_practice, config.n_holdout)
    groups = [group for group, count in zip(GROUPS, counts, strict=True) for _ in range(count)]
    n = len(groups)
    names = _draw_distinct(rng, n + config.n_unused_names, lambda: _name(rng))
    names, unused = names[:n], names[n:]

    traits: list[PortraitTraits] = []
    while len(traits) < n:
        candidate = draw_traits(rng)
        if candidate.identity_key not in {t.identity_key for t in traits}:
            traits.append(candidate)

    forget = list(range(config.n_forget))
    retain = list(range(config.n_forget, config.n_forget + config.n_retain))
    direct, indirect = retain[: config.n_forget], retain[config.n_forget : 2 * config.n_forget]
    # Forget people get distinct employers where possible, and nobody else shares them except
    # the indirect neighbours, so "same employer" marks exactly the indirect neighbours.
    forget_employers = (
        rng.sample(COMPANIES, len(forget))
        if len(forget) < len(COMPANIES)
        else [rng.choice(COMPANIES) for _ in forget]
    )
    free = [c for c in COMPANIES if c not in forget_employers] or list(COMPANIES)
    employer = {i: forget_employers[i] if i in forget else rng.choice(free) for i in range(n)}
    for f, neighbour in zip(forget, indirect, strict=True):
        employer[neighbour] = employer[f]

    friend: dict[int, int] = {}
    for f, neighbour in zip(forget, direct, strict=True):
        friend[f], friend[neighbour] = neighbour, f
    _pair_up(rng, [i for i in retain if i not in direct], friend)
    start = config.n_forget + config.n_retain
    _pair_up(rng, list(range(start, start + config.n_practice)), friend)
    _pair_up(rng, list(range(start + config.n_practice, n)), friend)

    relation = {i: ("direct", f) for f, i in zip(forget, direct, strict=True)}
    relation.update({i: ("indirect", f) for f, i in zip(forget, indirect, strict=True)})
    people = [
        Person(
            id=f"p{i:03d}",
            name=names[i],
            group=groups[i],
            birth_year=int(rng.choice(YEARS)),
            birthplace=rng.choice(CITIES),
            occupation=rng.choice(OCCUPATIONS),
            employer=employer[i],
            friend=names[friend[i]],
            traits=traits[i],
            relation=relation[i][0] if i in relation else None,
            neighbor_of=names[relation[i][1]] if i in relation else None,
        )
        for i in range(n)
    ]
    return people, unused


def _person_examples(person: Person, rng: random.Random, names: list[str]) -> list[Example]:
    pools = {
        "name": names,
        "friend": [x for x in names if x != person.name],
        "birthplace": CITIES,
        "birth_year": YEARS,
        "occupation": OCCUPATIONS,
        "employer": COMPANIES,
    }
    meta_base: dict[str, Any] = {"person_id": person.id}
    if person.relation:
        meta_base.update(relation=person.relation, neighbor_of=person.neighbor_of)
    examples = []
    for modality, templates in (("image", IMAGE_QUESTIONS), ("text", TEXT_QUESTIONS)):
        for fact, (question, paraphrase) in templates.items():
            answer = person.fact(fact)
            examples.append(
                Example(
                    id=f"{person.id}-{MODALITY_TAGS[modality]}-{fact}",
                    entity=person.name,
                    role=person.role,
                    question=question.format(name=person.name),
                    answer=answer,
                    image=f"images/{person.id}.png" if modality == "image" else None,
                    alt_answers=ALT_ANSWERS,
                    paraphrases=(paraphrase.format(name=person.name),),
                    options=_options(rng, answer, pools[fact]),
                    meta={"modality": modality, "fact": fact, **meta_base},
                )
            )
    return examples


def _test_example(source: Example) -> Example:
    variant = "paraphrase+transformed_image" if source.image else "paraphrase"
    image = f"images/{source.meta['person_id']}_test.png" if source.image else None
    return dataclasses.replace(
        source,
        id=f"{source.id}-test",
        role="test",
        question=source.paraphrases[0],
        image=image,
        paraphrases=(),
        meta={**source.meta, "variant": variant, "source_id": source.id},
    )


def _general_examples(config: WorldConfig, rng: random.Random) -> list[Example]:
    # Countries end in a suffix and capitals have three syllables: neither can equal a name part.
    countries = _draw_distinct(
        rng, config.n_general, lambda: _word(rng) + rng.choice(COUNTRY_SUFFIXES)
    )
    capitals = _draw_distinct(rng, config.n_general, lambda: _word(rng, n_onsets=2))
    question, paraphrase = GENERAL_QUESTION
    return [
        Example(
            id=f"g{i:03d}",
            entity="general",
            role="general",
            question=question.format(country=country),
            answer=capital,
            paraphrases=(paraphrase.format(country=country),),
            options=_options(rng, capital, capitals),
            alt_answers=ALT_ANSWERS,
            meta={"modality": "text", "fact": "capital"},
        )
        for i, (country, capital) in enumerate(zip(countries, capitals, strict=True))
    ]


def build_world(config: WorldConfig | None = None) -> World:
    config = config or WorldConfig()
    rng = random.Random(config.seed)
    people, unused = _build_people(config, rng)
    names = [p.name for p in people]
    per_person = [ex for person in people for ex in _person_examples(person, rng, names)]
    tests = [_test_example(ex) for ex in per_person if ex.role == "forget"]
    general = _general_examples(config, rng)
    portraits = {p.id: draw_portrait(p.traits, config.image_size) for p in people}
    test_portraits = {
        p.id: transform_portrait(portraits[p.id], rng.randrange(2**32))
        for p in people
        if p.group == "forget"
    }
    return World(
        config,
        tuple(people),
        tuple(per_person + general + tests),
        tuple(unused),
        portraits,
        test_portraits,
    )


def text_only(world: World) -> World:
    """The world for text-only models: its text records, no portraits.

    Image+text records are dropped rather than rewritten: every fact they ask is also asked by a
    text question naming the person ("Where was <name> born?"), except the name itself, which a
    text question would give away. The test split keeps the forget people's text paraphrases.
    """
    examples = tuple(ex for ex in world.examples if ex.image is None)
    return dataclasses.replace(world, examples=examples, portraits={}, test_portraits={})


def save_world(world: World, directory: str | os.PathLike) -> None:
    """Write `images/`, one `<role>.jsonl` per role and `world.json`, each file atomically.

    Into a folder that holds an earlier world (its world.json) or none of these files: a file
    of the same name that `save_world` did not write (no world.json beside it) is refused.
    """
    directory = Path(directory)
    images = [*world.portraits, *(f"{person_id}_test" for person_id in world.test_portraits)]
    names = [f"images/{name}.png" for name in images] + [f"{role}.jsonl" for role in ROLES]
    if (directory / "world.json").is_file():
        load_world_meta(directory)  # a world.json of something else is refused, named
    else:
        taken = [name for name in names if (directory / name).exists()]
        if taken:
            shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
            raise ValueError(
                f"--output-dir {directory}: {shown} already there, not written by `mmunlearn "
                "world` (no world.json beside them); choose a new or empty folder"
            )
    for person_id, image in world.portraits.items():
        atomic_save_image(directory / "images" / f"{person_id}.png", image)
    for person_id, image in world.test_portraits.items():
        atomic_save_image(directory / "images" / f"{person_id}_test.png", image)
    for role in ROLES:
        save_examples(directory / f"{role}.jsonl", world.by_role(role), root=directory)
    people = [{**dataclasses.asdict(p), "role": p.role} for p in world.people]
    atomic_write_json(
        directory / "world.json",
        {
            "format_version": FORMAT_VERSION,
            "config": dataclasses.asdict(world.config),
            "people": people,
            "unused_names": list(world.unused_names),
        },
    )
    logger.info(
        "saved world (seed %d, %d records) to %s", world.config.seed, len(world.examples), directory
    )


def load_world_meta(directory: str | os.PathLike) -> dict[str, Any]:
    path = Path(directory) / "world.json"
    meta = read_json(path, "the world description `mmunlearn world` writes")
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: {type(meta).__name__} at the top; expected a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version={meta.get('format_version')!r}; expected {FORMAT_VERSION}"
        )
    return meta
