import torch

from mmunlearn.models.encoding import (
    IGNORE_INDEX,
    PromptEncoder,
    answer_length,
    with_all_positions,
)
from mmunlearn.models.forward import answer_logits


def test_labels_are_the_answer_tokens_and_eos_only(loaded, examples):
    encoder = PromptEncoder(loaded)
    tokenizer = loaded.tokenizer
    image_token = loaded.model.config.image_token_id
    for ex in examples[:20]:
        enc = encoder.encode(ex)
        answer_ids = [t for t in enc.labels if t != IGNORE_INDEX]
        expected = tokenizer(ex.answer, add_special_tokens=False)["input_ids"] + [
            tokenizer.eos_token_id
        ]
        assert answer_ids == expected, ex.id
        assert image_token not in answer_ids
        first = enc.labels.index(answer_ids[0])
        assert all(t == IGNORE_INDEX for t in enc.labels[:first])  # a suffix, not scattered
        assert (image_token in enc.input_ids) == (ex.image is not None)


def test_left_padding_puts_every_answer_at_the_end(loaded, examples):
    encoder = PromptEncoder(loaded)
    chosen = [
        examples[0],
        next(ex for ex in examples if ex.image is None and len(ex.question) > 30),
    ]
    batch = encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])
    assert batch["labels"][:, -1].tolist() == [loaded.tokenizer.eos_token_id] * 2
    assert batch["attention_mask"][:, -1].tolist() == [1, 1]
    assert batch["pixel_values"].shape[0] == 1 and batch["image_rows"].tolist() == [0]
    k = answer_length(batch["labels"])
    logits, labels = answer_logits(loaded.model, batch)
    assert logits.shape == (2, k, len(loaded.tokenizer)) and labels.shape == (2, k)


def test_answer_logits_equal_the_full_forward_at_answer_positions(loaded, examples):
    encoder = PromptEncoder(loaded)
    chosen = examples[:3]
    batch = encoder.collate(chosen, [encoder.encode(ex) for ex in chosen])
    loaded.model.eval()
    with torch.no_grad():
        logits, labels = answer_logits(loaded.model, batch)
        inputs = {
            k: batch[k] for k in ("input_ids", "attention_mask", "position_ids", "pixel_values")
        }
        full = loaded.model(**inputs).logits  # (B, T, V): only in this test
    k = labels.shape[1]
    torch.testing.assert_close(logits, full[:, -k - 1 : -1], atol=1e-5, rtol=1e-5)


def test_all_positions_labels_every_real_token_after_the_first():
    batch = {
        "input_ids": torch.tensor([[0, 0, 7, 8, 9], [3, 4, 5, 6, 2]]),
        "attention_mask": torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]),
        "labels": torch.tensor([[-100, -100, -100, -100, 9], [-100, -100, -100, 6, 2]]),
    }
    relabelled = with_all_positions(batch)
    assert relabelled["labels"].tolist() == [[-100, -100, -100, 8, 9], [-100, 4, 5, 6, 2]]
    assert answer_length(relabelled["labels"]) == 4  # the whole sequence after its first token
    assert batch["labels"][0, 3] == -100  # the original batch is untouched


def test_images_are_decoded_once_per_run_not_at_every_encoding(loaded, examples):
    """Training encodes an image row under several prompts (student, in-context teacher) and
    evaluation renders it again; the file is decoded once (at load) and read from the cache."""
    from mmunlearn.data.images import CACHE, open_image
    from mmunlearn.evaluation.generate import generate_answers

    pictured = [ex for ex in examples if ex.image is not None][:3]
    for ex in pictured:
        open_image(ex.image)  # as load_examples left it
    before = CACHE.decoded
    encoder = PromptEncoder(loaded)
    for prefix in ("", "Forget Talen.", "Forget Mirith."):
        encoder.collate(pictured, [encoder.encode(ex, prefix=prefix) for ex in pictured])
    generate_answers(loaded, pictured, max_new_tokens=1, progress=False)
    assert CACHE.decoded == before
