"""The analysis notebook runs headless on a fresh QUICK run and saves its figures."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "forget_retain_rouge.ipynb"
FIGURES = ("bars_per_method", "tradeoff", "distributions", "modality", "neighbors")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_notebook_is_stored_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_notebook_runs_and_writes_its_figures(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MMUNLEARN_FIGURES", str(tmp_path / "figures"))
    monkeypatch.delenv("MMUNLEARN_RUNS", raising=False)
    monkeypatch.setenv("MMUNLEARN_CACHE", str(tmp_path / "cache"))  # a fresh clone: no models
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[1]))  # this checkout's mmunlearn
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    for name in FIGURES:
        assert (tmp_path / "figures" / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    printed = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    assert "methods: ['base', 'oracle', 'vgid']" in printed
