from mmunlearn.evaluation.probes import prompt_probe, split_halves


def test_split_halves_alternates_each_persons_questions(examples):
    forget = [ex for ex in examples if ex.role == "forget"]
    relearned, measured = split_halves(forget)
    assert not {ex.id for ex in relearned} & {ex.id for ex in measured}
    assert len(relearned) + len(measured) == len(forget)
    for entity in {ex.entity for ex in forget}:
        mine = sorted(ex.id for ex in forget if ex.entity == entity)
        assert [ex.id for ex in relearned if ex.entity == entity] == mine[0::2]
        assert [ex.id for ex in measured if ex.entity == entity] == mine[1::2]


def test_prompt_probe_prefixes_the_named_entity(loaded, examples):
    forget = [ex for ex in examples if ex.role == "forget"][:2]
    rows = prompt_probe(loaded, forget, "Forget {entity} .", max_new_tokens=2, progress=False)
    assert [r["question"] for r in rows] == [f"Forget {ex.entity} . {ex.question}" for ex in forget]
