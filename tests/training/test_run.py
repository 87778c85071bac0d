import pytest
import torch

from mmunlearn.data.splits import group_by_role
from mmunlearn.methods import build_method
from mmunlearn.testing import tiny_llava
from mmunlearn.training.config import TrainConfig, load_config
from mmunlearn.training.run import train


def is_checkpointing(model):
    # transformers renamed is_gradient_checkpointing → is_activation_checkpointing
    if hasattr(type(model), "is_activation_checkpointing"):
        return model.is_activation_checkpointing
    return model.is_gradient_checkpointing


def test_gradient_checkpointing_is_on_and_gives_the_same_step(examples, tmp_path):
    by_role = group_by_role(examples)
    results = {}
    for checkpointing in (False, True):
        config = TrainConfig(
            steps=1, lr=1e-2, batch_size=2, logging_steps=1, gradient_checkpointing=checkpointing
        )
        loaded = tiny_llava(examples)
        result = train(
            loaded,
            build_method("ga"),
            by_role,
            config,
            tmp_path / str(checkpointing),
            progress=False,
        )
        assert is_checkpointing(result.model) == checkpointing
        results[checkpointing] = dict(result.model.named_parameters())
    for name, value in results[False].items():
        torch.testing.assert_close(results[True][name], value, atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_bf16_without_a_gpu_is_refused_before_training(examples, tmp_path):
    config = load_config(None, ["train.bf16=true", "train.steps=1"]).train
    with pytest.raises(ValueError, match="train.bf16=true needs a CUDA GPU"):
        train(tiny_llava(examples), build_method("ga"), group_by_role(examples), config, tmp_path)
