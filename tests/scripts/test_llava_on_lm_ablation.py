"""scripts/llava_on_lm.py: each VGID variant of the ablation is the teacher it names."""

import argparse
import sys
from pathlib import Path

import pytest

from mmunlearn.training.config import load_config, method_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import llava_on_lm  # noqa: E402

ARGS = argparse.Namespace(steps=3, lr=1e-3, batch_size=2)


@pytest.mark.parametrize(
    ("variant", "noise", "instruction", "swap"),
    [
        ("noise", True, False, False),
        ("instruction", False, True, False),
        ("both", True, True, False),
        ("both_swap", True, True, True),
    ],
)
def test_each_variant_keeps_the_halves_it_names(variant, noise, instruction, swap):
    config = load_config(None, llava_on_lm.overrides(variant, ARGS))
    teacher = next(t.teacher for t in method_of(config).terms if t.role == "forget")
    assert (teacher.noise is not None, bool(teacher.prompt), teacher.swap_names) == (
        noise,
        instruction,
        swap,
    )
    if instruction:
        assert teacher.prompt_as == "system" and "{entity}" in teacher.prompt
    assert (config.train.steps, config.train.batch_size, config.train.lora) == (3, 2, True)
