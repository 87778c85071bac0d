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


def test_noise_probe_noises_only_the_image_questions(loaded, examples, monkeypatch):
    import mmunlearn.evaluation.generate as generate_module
    from mmunlearn.evaluation.probes import noise_probe
    from mmunlearn.teachers.visual_noise import VisualNoise

    seen = []
    apply = VisualNoise.apply

    def spy(self, pixels, keys, bounds, draw=0):
        seen.append((pixels.clone(), list(keys)))
        return apply(self, pixels, keys, bounds, draw)

    monkeypatch.setattr(VisualNoise, "apply", spy)
    forget = [ex for ex in examples if ex.role == "forget"][:6]
    rows = noise_probe(loaded, forget, VisualNoise(kind="replace"), 2, progress=False)
    image_ids = [ex.id for ex in forget if ex.image is not None]
    assert [r["id"] for r in rows] == image_ids and image_ids
    assert [key for _, keys in seen for key in keys] == image_ids
    # std 0 Gaussian noise is the identity: the same answers as the clean generation.
    clean = generate_module.generate_answers(
        loaded, [ex for ex in forget if ex.image], max_new_tokens=2, progress=False
    )
    same = noise_probe(loaded, forget, VisualNoise(kind="gaussian", std=0.0), 2, progress=False)
    assert [r["prediction"] for r in same] == clean


def test_noise_probe_seeds_as_the_teacher_does(loaded, examples, monkeypatch):
    """`seed_by="image"`: every question about one image sees the same noise, in the probe as in
    the visual_noise teacher (both key the draw with `VisualNoise.seed_key`)."""
    from mmunlearn.evaluation.probes import noise_probe
    from mmunlearn.teachers.visual_noise import VisualNoise

    keys = []
    noise_image = VisualNoise.noise_image

    def spy(self, image, key, bounds, draw=0):
        keys.append(key)
        return noise_image(self, image, key, bounds, draw)

    monkeypatch.setattr(VisualNoise, "noise_image", spy)
    forget = [ex for ex in examples if ex.role == "forget" and ex.image is not None][:3]
    noise_probe(loaded, forget, VisualNoise(kind="replace", seed_by="image"), 1, progress=False)
    assert keys == [ex.image for ex in forget]
