"""The analysis notebook runs headless on a small real run and shows its figures inline."""

import base64
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "forget_retain_rouge.ipynb"
FIGURES = (
    "bars_per_method",
    "tradeoff",
    "distributions",
    "modality",
    "neighbors",
    "frontier",
    "attacks",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_notebook_is_stored_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert not any("matplotlib.use(" in c.source for c in code)  # no forced headless backend


@pytest.mark.slow
def test_notebook_shows_the_figures_of_a_run_whose_base_knows_the_world(
    tmp_path, monkeypatch, pytestconfig
):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MMUNLEARN_FIGURES", str(tmp_path / "figures"))
    monkeypatch.delenv("MMUNLEARN_RUNS", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    # No runs/demo above the working folder: the notebook makes its small real run. Its base and
    # oracle are cached across test sessions by content hash (trained once, a few minutes).
    cache = pytestconfig.cache.mkdir("notebook-models")
    monkeypatch.setenv("MMUNLEARN_CACHE", str(cache))
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[1]))  # this checkout's mmunlearn
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    images = [out["data"]["image/png"] for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == len(FIGURES)  # each figure shown once, as a cell output
    assert all(base64.b64decode(image).startswith(PNG_SIGNATURE) for image in images)
    for name in FIGURES:  # and saved where MMUNLEARN_FIGURES says
        assert (tmp_path / "figures" / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    printed = "".join(out.get("text", "") for out in outputs)
    assert "analysing: a small real run made here" in printed
    assert "methods: ['base', 'oracle', 'vgid']" in printed
    base_forget = float(re.search(r"base forget ROUGE-L: ([0-9.]+)", printed).group(1))
    assert base_forget >= 0.9  # the base knows the world: there is something to forget
    assert "second image: not measured" in printed
