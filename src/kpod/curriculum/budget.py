"""The difficulty a stage schedules (Eq. 9), the budget curve D(t) (Eq. 10), and the step table both
are computed from: every rationale's step difficulties, flattened into numpy arrays.

Choices the paper leaves open (documented in docs/kpod_schedule.md): a selected question hands
`delta_s` steps from input to output (clipped at step 1), and c_i(0) is either n_i - delta_s (every
question first outputs its last delta_s steps) or n_i (stage 0 is selected under the budget C0).
From stage T on every c_i is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def rationale_difficulty(step_difficulties: Sequence[float], input_steps: int) -> float:
    """Eq. 9: h_i = sum_{j = c_i + 1}^{n_i} d_j, the difficulty of outputting the steps after the
    first `input_steps` (c_i) of a rationale."""
    return float(sum(step_difficulties[input_steps:]))


def budget(t: float, total: float, T: int, p: float, c0: float) -> float:
    """Eq. 10: D(t) = u t^(p+1) / (p+1) + C0 with u = (B - C0)(p+1) / T^(p+1), so that D(0) = C0 and
    D(T) = B (`total`); D(t) = B for t >= T. `c0` is C0 itself, not the fraction."""
    if t >= T:
        return float(total)
    u = (total - c0) * (p + 1) / T ** (p + 1)
    return float(u * t ** (p + 1) / (p + 1) + c0)


@dataclass
class StepTable:
    """Step difficulties of n rationales, flattened: rationale i owns prefix[starts[i] : starts[i] + n_i + 1],
    the running sums of its step difficulties (prefix[starts[i] + c] = d_1 + ... + d_c)."""

    keys: list[str]
    num_steps: np.ndarray
    starts: np.ndarray
    prefix: np.ndarray

    @classmethod
    def from_lists(cls, keys: Sequence[str], difficulties: Sequence[Sequence[float]]) -> StepTable:
        num_steps = np.fromiter((len(d) for d in difficulties), dtype=np.int64, count=len(difficulties))
        return cls.from_flat(keys, num_steps, np.fromiter((x for d in difficulties for x in d), dtype=np.float64,
                                                          count=int(num_steps.sum())))

    @classmethod
    def from_flat(cls, keys: Sequence[str], num_steps: np.ndarray, flat: np.ndarray) -> StepTable:
        """Build from the concatenated step difficulties `flat` of rationales with `num_steps` steps."""
        num_steps = np.asarray(num_steps, dtype=np.int64)
        flat = np.asarray(flat, dtype=np.float64)
        if flat.size and flat.min() < 0:
            raise ValueError("step difficulties must be non-negative (Eq. 8)")
        starts = np.concatenate([[0], np.cumsum(num_steps + 1)[:-1]]).astype(np.int64)
        prefix = np.zeros(int((num_steps + 1).sum()), dtype=np.float64)
        steps_before = np.concatenate([[0], np.cumsum(num_steps)[:-1]])
        owner = np.repeat(np.arange(len(num_steps)), num_steps)
        position = np.arange(flat.size) - steps_before[owner]
        running = np.cumsum(flat)
        offset = np.concatenate([[0.0], running])[steps_before][owner]
        prefix[starts[owner] + position + 1] = running - offset
        return cls(list(keys), num_steps, starts, prefix)

    @cached_property
    def total(self) -> float:
        """B = sum_i sum_j d_j^(i), the difficulty of outputting every whole rationale."""
        return float(self.prefix[self.starts + self.num_steps].sum())

    def prefix_at(self, input_steps: np.ndarray) -> np.ndarray:
        return self.prefix[self.starts + input_steps]

    def scheduled(self, input_steps: np.ndarray) -> float:
        """Sum over rationales of Eq. 9 at c = `input_steps`."""
        return self.total - float(self.prefix_at(input_steps).sum())

    def step_cost(self, input_steps: np.ndarray, delta_s: int, index: np.ndarray) -> np.ndarray:
        """w_i for the rationales `index`: the summed difficulty of steps c_i - delta_s + 1 .. c_i
        (clipped at step 1), the difficulty a question adds when it is selected."""
        starts, c = self.starts[index], input_steps[index]
        cost = self.prefix[starts + c] - self.prefix[starts + np.maximum(c - delta_s, 0)]
        return np.maximum(cost, 0.0)  # running sums can leave -1e-16 for a zero-difficulty step

    def initial_steps(self, start: str, delta_s: int) -> np.ndarray:
        """c_i before stage 0's selection: n_i - delta_s ("last_step") or n_i ("selected")."""
        if start == "last_step":
            return np.maximum(self.num_steps - delta_s, 0)
        return self.num_steps.copy()
