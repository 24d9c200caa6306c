"""The stage loop of KPOD's progressive distillation (Eq. 11): starting from c_i(0), each stage
t < T selects questions under the budget Delta_D(t) = D(t) - (difficulty already scheduled) and hands
delta_s more steps of each selected question from input to output; from stage T on every c_i is 0.
Unspent budget rolls over to the next stage by construction of Delta_D.
"""

from __future__ import annotations

import numpy as np

from kpod.curriculum.budget import StepTable, budget
from kpod.curriculum.config import ScheduleConfig
from kpod.curriculum.selection import select


class ProgressiveScheduler:
    """Holds c_i(t) and advances it one stage at a time. `table` may be replaced between stages
    (Adaptive CL re-estimates the step difficulties from the student's current loss)."""

    def __init__(self, table: StepTable, labels: np.ndarray, config: ScheduleConfig):
        self.table, self.labels, self.config = table, np.asarray(labels, dtype=np.int64), config
        self.clusters = int(self.labels.max(initial=-1)) + 1
        self.input_steps = table.num_steps.copy()
        self.t = -1

    def step(self) -> dict:
        """Advance to the next stage; return its statistics (the schedule file's `stages` entry)."""
        cfg, table = self.config, self.table
        self.t += 1
        t, T = self.t, cfg.stages_T
        total = table.total
        d_t = budget(t, total, T, cfg.p, cfg.c0 * total)
        stats: dict = {}
        selected = np.zeros(0, dtype=np.int64)
        if t >= T:
            self.input_steps = np.zeros_like(self.input_steps)
            scheduled = total
        elif t == 0 and cfg.start == "last_step":
            self.input_steps = table.initial_steps("last_step", cfg.delta_s)
            scheduled = table.scheduled(self.input_steps)
        else:
            c = self.input_steps
            eligible = np.flatnonzero(c > 0)
            costs = table.step_cost(c, cfg.delta_s, eligible)
            before = table.scheduled(c)
            delta = d_t - before
            sel = select(costs, self.labels[eligible], delta, cfg.beta, cfg.selection, cfg.eps)
            selected = eligible[sel.indices]
            c = c.copy()
            c[selected] = np.maximum(c[selected] - cfg.delta_s, 0)
            self.input_steps = c
            scheduled = before + sel.spent
            # F(S) = g(S) - Delta_D (Eq. 12)
            stats.update(delta_budget=delta, eligible=int(eligible.size), spent=sel.spent, value=sel.gain - delta,
                         upper_bound=sel.bound, certificate_ratio=sel.ratio)
        head = {"t": t, "budget": d_t, "scheduled": scheduled, "selected": int(selected.size),
                "certificate_ratio": stats.pop("certificate_ratio", None),
                "selected_per_cluster": np.bincount(self.labels[selected], minlength=self.clusters).tolist()}
        return {**head, **stats}


def progressive_schedule(table: StepTable, labels: np.ndarray, config: ScheduleConfig) -> tuple[np.ndarray, list[dict]]:
    """c_i(t) for every rationale (rows) and stage t = 0 .. epochs - 1 (columns), and per-stage stats."""
    scheduler = ProgressiveScheduler(table, labels, config)
    steps = np.zeros((config.epochs, len(table.keys)), dtype=np.int64)
    stages = []
    for t in range(config.epochs):
        stages.append(scheduler.step())
        steps[t] = scheduler.input_steps
    return steps.T, stages
