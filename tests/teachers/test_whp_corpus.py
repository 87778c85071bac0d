"""WHP's document-level reinforcement: `teacher.corpus` gives the reinforce phase passages."""

import pytest

from mmunlearn.data.splits import group_by_role
from mmunlearn.methods import build_method
from mmunlearn.training import run
from mmunlearn.training.config import TrainConfig

CORPUS = """The Story

Talen Vosk was born in a small town by the sea. He worked as a baker for many years.
Every morning he opened the shop before the sun rose.

Later he moved to the city and wrote a book about bread. The book sold well in many countries.
"""


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(CORPUS)
    return path


def test_without_a_corpus_the_reinforce_phase_has_no_rows_of_its_own():
    assert build_method("whp").phases[0].rows == {}


def test_a_corpus_gives_the_reinforce_phase_alone_its_passages(corpus):
    method = build_method("whp", teacher={"corpus": str(corpus), "passage_words": 16})
    reinforce, unlearn = method.phases
    passages = reinforce.rows["forget"]
    assert [p.id for p in passages] == [f"story/passage-{i:03d}" for i in range(len(passages))]
    assert len(passages) > 2 and unlearn.rows == {}
    assert all(p.role == "forget" and p.meta == {"kind": "document"} for p in passages)
    words = [w for p in passages for w in f"{p.question} {p.answer}".split()]
    assert words == CORPUS.split()
    assert method.with_sampler("cyclic").phases[0].rows == reinforce.rows


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: d / "missing.txt", "file not found"),
        (lambda d: d, "file not found"),  # a folder
        (lambda d: (d / "empty.txt").write_text(" \n\n") and d / "empty.txt", "empty"),
    ],
)
def test_a_bad_corpus_is_a_clear_error_naming_the_setting_and_path(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=match) as error:
        build_method("whp", teacher={"corpus": str(path)})
    assert "teacher.corpus" in str(error.value) and str(path) in str(error.value)


def test_the_reinforce_phase_trains_on_passages_and_the_unlearn_phase_on_the_qa_rows(
    loaded, examples, corpus, tmp_path, monkeypatch
):
    seen = []  # per train() call: the forget rows of the items its sampler drew
    get = run.SAMPLERS.get

    def recording(name):
        sampler = get(name)

        def wrapped(by_role, seed, num_items):
            items = sampler(by_role, seed, num_items)
            seen.append({item["forget"].id for item in items})
            return items

        return wrapped

    monkeypatch.setattr(run.SAMPLERS, "get", recording)
    teacher = {"corpus": str(corpus), "passage_words": 16, "reinforce_steps": 2}
    method = build_method("whp", teacher=teacher)
    by_role = group_by_role(examples)
    before = {role: list(rows) for role, rows in by_role.items()}
    config = TrainConfig(steps=3, lr=1e-2, batch_size=4, logging_steps=1)
    run.train(loaded, method, by_role, config, tmp_path / "run", ("Zorin Vale",), progress=False)
    passage_ids = {p.id for p in method.phases[0].rows["forget"]}
    qa_ids = {ex.id for ex in by_role["forget"]}
    assert len(seen) == 2
    assert seen[0] == passage_ids  # every passage, and nothing else
    assert seen[1] and seen[1] <= qa_ids
    assert by_role == before  # the run's rows are left as they were
