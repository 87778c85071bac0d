"""What top-k cached teacher targets cost on a trained model: KL(full ‖ top-k) per answer token.

Usage: python scripts/top_k_error.py --model PATH [--data WORLD_DIR] [--k 8 32] [--teacher vgid]

Runs the teacher on every forget question of the world (the default world when --data is not
given) and reports, for each k, the mean and max over answer positions of KL(full target ‖ the
target `train.cache_teacher_top_k=k` would serve). With the demo's base:
`--model ~/.cache/mmunlearn/base-<hash>/model`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package

from mmunlearn.data.jsonl import load_examples  # noqa: E402
from mmunlearn.data.splits import group_by_role  # noqa: E402
from mmunlearn.data.world import WorldConfig, build_world, save_world  # noqa: E402
from mmunlearn.models.encoding import PromptEncoder, answer_length  # noqa: E402
from mmunlearn.models.loading import load_model  # noqa: E402
from mmunlearn.teachers import build_teacher  # noqa: E402
from mmunlearn.teachers.cache import TeacherCache  # noqa: E402
from mmunlearn.teachers.targets import TeacherContext  # noqa: E402
from mmunlearn.training.trainer import frozen_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a saved model directory")
    parser.add_argument("--data", help="a world directory (default: the demo's default world)")
    parser.add_argument("--k", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--teacher", default="vgid")
    args = parser.parse_args()
    data = args.data
    if data is None:
        data = tempfile.mkdtemp(prefix="top-k-world-")
        save_world(build_world(WorldConfig()), data)
    loaded = load_model(args.model)
    encoder = PromptEncoder(loaded)
    ctx = TeacherContext(frozen=frozen_model(loaded.model), encoder=encoder)
    forget = group_by_role(load_examples(data))["forget"]
    batch = encoder.collate(forget, [encoder.encode(ex) for ex in forget])
    labels = batch["labels"][:, -answer_length(batch["labels"]) :]
    targets = build_teacher(args.teacher).build(ctx, batch, labels)
    logprobs = targets.logprobs[targets.mask]  # (answer tokens, V)
    print(f"{args.teacher} teacher, {len(logprobs)} answer tokens, vocabulary {logprobs.shape[1]}")
    for k in args.k:
        error = TeacherCache.approximation_error(logprobs, k)
        print(f"top-{k}: KL(full || top-k) mean {error.mean():.2e}, max {error.max():.2e} nats")


if __name__ == "__main__":
    main()
