"""Who's Harry Potter (Eldan & Russinovich, arXiv 2310.02238): reinforce, then unlearn.

Phase 1 fine-tunes a copy of the base on the forget answers (the reinforced model, kept frozen
as the teacher model `teacher.reinforced`); phase 2 trains the base toward the whp teacher's
generic predictions on forget (hard: cross-entropy on their argmax; `teacher.hard=false`:
forward KL to their softmax). No retain term, as in the paper; `retain_weight` is unused.

With `teacher.corpus=<text file>` phase 1 is the paper's document-level reinforcement: its
`forget` rows are the file's passages (`mmunlearn.data.corpus`: first sentence as prompt, the
rest as answer, `meta.kind="document"`), given to that phase alone; phase 2 and evaluation keep
the run's forget QA rows. The engine needs no document mode: a passage is an ordinary row.
"""

from __future__ import annotations

from mmunlearn.data.corpus import load_corpus_examples
from mmunlearn.data.example import Example
from mmunlearn.methods.spec import MethodSpec, Phase, TermSpec, register_method
from mmunlearn.teachers.whp import WhpTeacher


def whp_teacher(teacher: object) -> WhpTeacher:
    """The run's tuned teacher, which the phases read their settings from."""
    if not isinstance(teacher, WhpTeacher):
        raise ValueError(
            f"method 'whp' reads its phases' settings from the whp teacher; "
            f"teacher.name gave {type(teacher).__name__}"
        )
    return teacher


def corpus_rows(teacher: WhpTeacher) -> dict[str, tuple[Example, ...]]:
    if not teacher.corpus:
        return {}
    return {"forget": tuple(load_corpus_examples(teacher.corpus, teacher.passage_words))}


def generic_loss(teacher: WhpTeacher) -> str:
    return "cross_entropy" if whp_teacher(teacher).hard else "forward_kl"


register_method(
    MethodSpec(
        "whp",
        "reinforce a copy on forget, then fine-tune on base(anchored) - a*ReLU(reinforced - base)",
        "Who's Harry Potter, Eldan & Russinovich, arXiv 2310.02238",
        phases=(
            Phase(
                "reinforce",
                "NLL on the forget answers (or the corpus passages), on a copy of the base",
                (TermSpec("forget", "labels", "cross_entropy", weight=""),),
                steps=lambda teacher: whp_teacher(teacher).reinforce_steps,
                keep_as=lambda teacher: whp_teacher(teacher).reinforced,
                rows=corpus_rows,
            ),
            Phase(
                "unlearn",
                "fine-tune on the generic predictions",
                (TermSpec("forget", "whp", generic_loss, tuned=True),),
            ),
        ),
    )
)
