"""Value types that several layers share, kept below all of them (teachers build them, losses
read them, training passes them along): importing one loads torch and nothing of the package."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenTargets:
    """Per-token targets at the student's answer positions (B, K).

    Exactly one of `logprobs` (float32, (B, K, V)) and `token_ids` ((B, K), hard targets) is set.
    `mask` (B, K) is True where a target exists.
    """

    mask: torch.Tensor
    logprobs: torch.Tensor | None = None
    token_ids: torch.Tensor | None = None

    def __post_init__(self) -> None:
        assert (self.logprobs is None) != (self.token_ids is None), "set logprobs or token_ids"
