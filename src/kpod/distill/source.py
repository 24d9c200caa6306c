"""What the trainer trains on each epoch: a source of `TrainSequence`s.

`StaticSource` gives the same sequences every epoch (KPDD's students, any plain prompt/target
data). `RationaleSource` is KPOD: each epoch it asks the curriculum for the stage's plan (c_i(t),
SPL step weights, ICL token fractions), builds the stage prompts and targets (Eq. 14) and the token
weights of Eq. 15, and, for curricula that need it, measures each step's NLL under the current
student at the end of the epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from kpod.curriculum.base import Curriculum, EpochPlan
from kpod.data.example import RationaleItem
from kpod.data.steps import split_steps
from kpod.distill.encoding import (Encoded, TrainSequence, stage_text, stage_weight_fn, step_mean_nll,
                                   step_split_point, token_fraction_split_point)
from kpod.errors import DataError
from kpod.weighting.store import TokenWeights

# score(sequences) -> for each sequence its Encoded form and the per-token NLL of its target
Scorer = Callable[[list[TrainSequence]], list[tuple[Encoded, np.ndarray]]]


class SequenceSource(Protocol):
    needs_feedback: bool

    def sequences(self, epoch: int) -> list[TrainSequence]: ...

    def stats(self, epoch: int) -> dict: ...

    def measure(self, score: Scorer) -> dict[str, list[float]]: ...

    def observe(self, epoch: int, feedback: dict[str, list[float]]) -> None: ...


class StaticSource:
    """The same sequences every epoch."""

    needs_feedback = False

    def __init__(self, sequences: list[TrainSequence]):
        self._sequences = list(sequences)

    def sequences(self, epoch: int) -> list[TrainSequence]:
        return self._sequences

    def stats(self, epoch: int) -> dict:
        return {}

    def measure(self, score: Scorer) -> dict[str, list[float]]:
        return {}

    def observe(self, epoch: int, feedback: dict[str, list[float]]) -> None:
        return None


class RationaleSource:
    """KPOD's stage sequences (Eq. 14-15) for every epoch.

    token_weights: {key: TokenWeights} (None = uniform weights: w.o.-sig and plain CoTD).
    curriculum: the epoch plans (None = c_i = 0 at every stage: w.o.-prog and plain CoTD).
    tokenizer: the student's, used for ICL's token-fraction split.
    """

    def __init__(self, items: list[RationaleItem], *, token_weights: dict[str, TokenWeights] | None = None,
                 curriculum: Curriculum | None = None, weight_floor: float = 0.0, tokenizer=None,
                 weights_path: object = None):
        if not items:
            raise DataError("no rationales to train on")
        self.items = items
        self.splits = [split_steps(item.rationale) for item in items]
        self.curriculum = curriculum
        self.weight_floor = weight_floor
        self.tokenizer = tokenizer
        self._plans: dict[int, EpochPlan] = {}
        self.token_weights = None
        if token_weights is not None:
            missing = [item.key for item in items if item.key not in token_weights]
            if missing:
                raise DataError(f"no weights for rationale {missing[0]!r} ({len(missing)} missing)",
                                path=weights_path, field="id")
            self.token_weights = token_weights

    @property
    def needs_feedback(self) -> bool:
        return bool(self.curriculum is not None and self.curriculum.needs_feedback)

    def plan(self, epoch: int) -> EpochPlan:
        if epoch not in self._plans:
            self._plans[epoch] = self.curriculum.plan(epoch) if self.curriculum is not None else EpochPlan({})
        return self._plans[epoch]

    def input_steps(self, epoch: int) -> list[int]:
        """c_i(t) of every item (clamped to [0, n_i])."""
        steps = self.plan(epoch).input_steps
        return [min(max(int(steps.get(item.key, 0)), 0), len(split.steps))
                for item, split in zip(self.items, self.splits)]

    def _split_points(self, epoch: int) -> list[int]:
        fractions = self.plan(epoch).input_token_fraction
        if fractions is None:
            return [step_split_point(split, c) for split, c in zip(self.splits, self.input_steps(epoch))]
        offsets = self.tokenizer([it.rationale for it in self.items], add_special_tokens=False,
                                 return_offsets_mapping=True)["offset_mapping"]
        return [token_fraction_split_point(np.asarray(o).reshape(-1, 2), fractions.get(it.key, 0.0), it.rationale)
                for it, o in zip(self.items, offsets)]

    def sequences(self, epoch: int) -> list[TrainSequence]:
        plan = self.plan(epoch)
        out = []
        for item, split, point in zip(self.items, self.splits, self._split_points(epoch)):
            text = stage_text(item.question, item.rationale, item.answer, split, point)
            step_weights = plan.step_weights.get(item.key) if plan.step_weights is not None else None
            tw = self.token_weights[item.key] if self.token_weights is not None else None
            fn = stage_weight_fn(text, split, tw, floor=self.weight_floor, step_weights=step_weights)
            out.append(TrainSequence(item.key, text.prompt, text.target, fn))
        return out

    def stats(self, epoch: int) -> dict:
        c = np.asarray(self.input_steps(epoch), dtype=float)
        n = np.asarray([len(s.steps) for s in self.splits], dtype=float)
        return {"mean_input_steps": round(float(c.mean()), 4), "mean_steps": round(float(n.mean()), 4)}

    def measure(self, score: Scorer) -> dict[str, list[float]]:
        """Mean token NLL of every step under the current student, full rationale as target."""
        texts = [stage_text(it.question, it.rationale, it.answer, split, 0) for it, split in zip(self.items, self.splits)]
        scored = score([TrainSequence(it.key, t.prompt, t.target) for it, t in zip(self.items, texts)])
        return {it.key: step_mean_nll(split, t.rationale_start, enc.target_offsets, nll)
                for it, split, t, (enc, nll) in zip(self.items, self.splits, texts, scored)}

    def observe(self, epoch: int, feedback: dict[str, list[float]]) -> None:
        """Pass the epoch's feedback to the curriculum, after its plan for that epoch (so replaying
        the feedback of a resumed run queries and updates the curriculum in the original order)."""
        if self.curriculum is not None and self.curriculum.needs_feedback:
            self.plan(epoch)
            self.curriculum.observe(epoch, feedback)
