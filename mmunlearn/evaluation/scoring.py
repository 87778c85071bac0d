"""Teacher-forced answer scoring: per-token log-probabilities of given answers, batched.

Every likelihood metric (multiple choice, answer probability, truth ratio, membership inference)
reads these scores. They come from `answer_logits`, so the model computes logits at the answer
positions only, never a full (B, T, V) tensor; rows that share an image (the options of one
multiple-choice question, the paraphrases of one answer) encode its prefix once
(`mmunlearn.models.prefix`: the same scores up to floating-point rounding).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from mmunlearn.data.example import Example
from mmunlearn.models.encoding import IGNORE_INDEX, PromptEncoder
from mmunlearn.models.forward import answer_logits
from mmunlearn.models.loading import LoadedModel
from mmunlearn.models.prefix import prefix_answer_logits
from mmunlearn.teachers.targets import to_device


@dataclass(frozen=True)
class AnswerScore:
    """One answer under one prompt. All lists have one entry per answer token (EOS included).

    `logprobs[t]` = log p(x_t | x_<t); `means[t]` and `stds[t]` are the mean and standard
    deviation of log p(v | x_<t) over the vocabulary v drawn from the model's own distribution
    (μ_t = Σ_v p(v) log p(v), σ_t² = Σ_v p(v) (log p(v))² − μ_t²), as Min-K%++ needs them.
    """

    logprobs: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]

    @property
    def mean_logprob(self) -> float:
        """Length-normalised log-likelihood: the mean over answer tokens."""
        return sum(self.logprobs) / len(self.logprobs)


@dataclass(frozen=True)
class Query:
    """Score `answer` as the reply to `question` about `example` (its image, if any)."""

    example: Example
    answer: str
    question: str | None = None  # None: the example's own question


def token_statistics(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token (log p(label), μ, σ) from logits (B, K, V) and labels (B, K); float32, (B, K).

    Positions whose label is IGNORE_INDEX get 0 for the log-prob (callers mask them).
    """
    logprobs = torch.log_softmax(logits, dim=-1, dtype=torch.float32)  # (B, K, V)
    probs = logprobs.exp()
    mean = (probs * logprobs).sum(-1)  # (B, K)
    var = (probs * logprobs.square()).sum(-1) - mean.square()
    index = labels.clamp(min=0).unsqueeze(-1)  # (B, K, 1)
    token = logprobs.gather(-1, index).squeeze(-1)  # (B, K)
    token = token.masked_fill(labels == IGNORE_INDEX, 0.0)
    return token, mean, var.clamp(min=0).sqrt()


@torch.inference_mode()
def score_answers(
    loaded: LoadedModel,
    queries: Sequence[Query],
    batch_size: int = 64,
    progress: bool = True,
    share_prefix: bool = True,
) -> list[AnswerScore]:
    """Teacher-forced scores of each query's answer, in order (`share_prefix=False`: every row
    encodes its whole prompt)."""
    forward = prefix_answer_logits if share_prefix else answer_logits
    encoder = PromptEncoder(loaded)
    model = loaded.model.eval()
    device = next(model.parameters()).device
    scores: list[AnswerScore] = []
    chunks = range(0, len(queries), batch_size)
    for start in tqdm(chunks, desc="scoring", disable=not progress, leave=False):
        chunk = queries[start : start + batch_size]
        examples = [dataclasses.replace(q.example, answer=q.answer) for q in chunk]
        encoded = [
            encoder.encode(ex, question=q.question) for ex, q in zip(examples, chunk, strict=True)
        ]
        logits, labels = forward(model, to_device(encoder.collate(examples, encoded), device))
        token, mean, std = token_statistics(logits, labels)
        keep = labels != IGNORE_INDEX  # (B, K)
        for row in range(len(chunk)):
            mask = keep[row]
            scores.append(
                AnswerScore(
                    tuple(token[row][mask].tolist()),
                    tuple(mean[row][mask].tolist()),
                    tuple(std[row][mask].tolist()),
                )
            )
    return scores
