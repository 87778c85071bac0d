"""The method registry is the one source of truth: the documentation follows it."""

from pathlib import Path

from mmunlearn.methods import METHODS, method_doc

ROOT = Path(__file__).parents[2]


def test_docs_methods_md_is_the_generated_table():
    written = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    assert written == method_doc(), (
        "docs/methods.md is out of date: python -m mmunlearn.methods > docs/methods.md"
    )


def test_the_readme_lists_every_registered_method():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = readme[readme.index("- Methods, each a preset") :].split("\n- ")[0]
    missing = [name for name in METHODS.names() if f"`{name}`" not in listed]
    assert not missing, f"README's method list lacks {missing}"
