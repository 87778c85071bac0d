"""Bad inputs and faults of a run (resume, numerics, output folders, config, CLI errors)."""

import pytest
from matrix import Case, check_case, unlearn_argv


def empty_forget(scene):
    (scene.world / "forget.jsonl").write_text("")
    return unlearn_argv(scene)


CASES = [
    Case("empty forget split", empty_forget, 2, ("no rows with role 'forget'",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_run_input(case, scene, capsys):
    check_case(case, scene, capsys)
