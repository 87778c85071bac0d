"""Per-token divergences, sequence-level preference losses, objective terms and methods."""

from mmunlearn.losses import divergences, preference  # noqa: F401  (register the losses)
