"""What a curriculum tells the trainer each epoch, and the protocol every curriculum follows.

Epoch numbering starts at 0 = stage t = 0. A key missing from `input_steps` means 0 input steps (the
whole rationale is the target); `step_weights` and `input_token_fraction` are None when unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass
class EpochPlan:
    """The curriculum for one epoch.

    input_steps: c_i(t), the number of leading rationale steps given as input (Eq. 14-15).
    step_weights: a loss multiplier for each step of a rationale (SPL).
    input_token_fraction: fraction of the rationale's tokens given as input (ICL).
    """

    input_steps: dict[str, int]
    step_weights: dict[str, list[float]] | None = None
    input_token_fraction: dict[str, float] | None = None


@runtime_checkable
class Curriculum(Protocol):
    """A schedule the trainer queries once per epoch.

    When `needs_feedback` is true the trainer calls `observe(epoch, step_nll)` at the end of every
    epoch with the mean token NLL of each step of each rationale under the current student (full
    rationale as target).
    """

    needs_feedback: bool

    def plan(self, epoch: int) -> EpochPlan: ...

    def observe(self, epoch: int, step_nll: dict[str, list[float]]) -> None: ...
