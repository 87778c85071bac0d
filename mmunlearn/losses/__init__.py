"""Per-token divergences, sequence-level preference losses, objective terms and methods."""

from mmunlearn.losses import (  # noqa: F401  (register the losses)
    constrained,
    divergences,
    flat,
    forget_tokens,
    hidden,
    preference,
)
