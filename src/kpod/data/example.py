"""The records every stage passes around: an Example (a question with its gold answer and teacher
rationales) and a RationaleItem (one rationale of one example, the unit that is weighed, scheduled
and trained on)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Example:
    """One question of a data set, in kpod's generic JSONL format.

    `answer` is the normalized gold answer ("18", "0.5", "-3", "B"). `rationales` are teacher
    rationales (several per question are kept). `choices` holds multiple-choice options as
    "A. text" strings. `keypoints` (testbed only) are [start, end] character spans of keypoint
    text within `rationales[0]`. `kpdd` (testbed only) holds {"core_question", "facts", "program"}.
    """

    id: str
    question: str
    answer: str
    rationales: list[str] = field(default_factory=list)
    choices: list[str] | None = None
    keypoints: list[list[int]] | None = None
    kpdd: dict | None = None
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        record = {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}
        record.setdefault("rationales", [])
        if len(self.rationales) == 1:
            record["rationale"] = record.pop("rationales")[0]
        elif not self.rationales:
            record.pop("rationales")
        return record


@dataclass
class RationaleItem:
    """One teacher rationale of one example.

    `key` identifies the rationale in every artifact (weights.jsonl, the schedule file, logs): the
    example id when the example has one rationale, "<id>#<k>" for its k-th of several.
    """

    key: str
    example_id: str
    question: str
    rationale: str
    answer: str


def rationale_key(example: Example, index: int) -> str:
    return example.id if len(example.rationales) == 1 else f"{example.id}#{index}"


def rationale_items(examples: list[Example], max_per_question: int | None = None) -> list[RationaleItem]:
    """Flatten examples into one item per rationale (the first `max_per_question` of each)."""
    items = []
    for ex in examples:
        for k, text in enumerate(ex.rationales[:max_per_question]):
            items.append(RationaleItem(rationale_key(ex, k), ex.id, ex.question, text, ex.answer))
    return items
