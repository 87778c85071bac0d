"""`python -m mmunlearn.methods > docs/methods.md`: the generated method table."""

from mmunlearn.methods import method_doc

print(method_doc(), end="")
