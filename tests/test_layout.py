"""The test tree's own layout: pytest imports test files by basename (no packages), so two
files with one basename stop the whole collection."""

from collections import Counter
from pathlib import Path


def test_test_files_have_unique_basenames():
    names = Counter(path.name for path in Path(__file__).parent.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
