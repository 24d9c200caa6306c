"""Curricula the trainer can follow: KPOD's static schedule, none, and the three curriculum-learning
alternatives of the paper's ablation (Table 2: KPOD-ACL, KPOD-SPL, KPOD-ICL).

None of the three papers defines an in-rationale variant for CoT distillation; each class states the
reading implemented here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kpod.curriculum.base import EpochPlan
from kpod.curriculum.budget import StepTable
from kpod.curriculum.config import ScheduleConfig
from kpod.curriculum.progressive import ProgressiveScheduler


class NoCurriculum:
    """Plain distillation: every epoch, the whole rationale is the target (KPOD-w.o.-prog)."""

    needs_feedback = False

    def plan(self, epoch: int) -> EpochPlan:
        return EpochPlan(input_steps={})

    def observe(self, epoch: int, step_nll: dict[str, list[float]]) -> None:
        """No feedback is needed."""


class StaticCurriculum(NoCurriculum):
    """A precomputed schedule: c_i(t) per rationale and epoch (the `input_steps` of a schedule file).
    Epochs past the schedule's last keep its last stage (every c_i is 0 there)."""

    def __init__(self, input_steps: Mapping[str, list[int]]):
        self.input_steps = {key: list(steps) for key, steps in input_steps.items()}

    def plan(self, epoch: int) -> EpochPlan:
        return EpochPlan({key: int(steps[min(epoch, len(steps) - 1)]) for key, steps in self.input_steps.items()
                          if steps})


class AdaptiveCurriculum:
    """Adaptive CL (Kong et al., ICCV 2021), read for in-rationale distillation.

    Kong et al. start from difficulty scores given by a pre-trained model and re-estimate them during
    training from the current model's loss. Our reading: the KPOD stage machinery (budget Eq. 10,
    selection Eq. 13, c_i decrements Eq. 11) stays, but before each stage the step difficulties become
    (1 - acl_mix) * d_prior + acl_mix * (mean token NLL of the step under the current student), the
    NLL the trainer reports through `observe` at the end of the previous epoch.
    """

    needs_feedback = True

    def __init__(self, prior: Mapping[str, list[float]], labels: Mapping[str, int], config: ScheduleConfig):
        self.keys = list(prior)
        self.prior = {key: np.asarray(prior[key], dtype=np.float64) for key in self.keys}
        self.current = dict(self.prior)
        self.mix = config.acl_mix
        self.scheduler = ProgressiveScheduler(self._table(), np.array([labels[key] for key in self.keys]), config)
        self.stages: list[dict] = []

    def _table(self) -> StepTable:
        return StepTable.from_lists(self.keys, [self.current[key] for key in self.keys])

    def observe(self, epoch: int, step_nll: dict[str, list[float]]) -> None:
        for key, nll in step_nll.items():
            prior = self.prior.get(key)
            if prior is not None and len(nll) == len(prior):
                self.current[key] = (1 - self.mix) * prior + self.mix * np.maximum(np.asarray(nll, dtype=np.float64), 0)
        self.scheduler.table = self._table()

    def plan(self, epoch: int) -> EpochPlan:
        while self.scheduler.t < epoch:
            self.stages.append(self.scheduler.step())
        steps = self.scheduler.input_steps
        return EpochPlan({key: int(steps[i]) for i, key in enumerate(self.keys)})


class SelfPacedCurriculum:
    """SPL (Wan et al., EMNLP 2020: self-paced learning for NMT), read for in-rationale distillation.

    Wan et al. weight each sentence's and each token's loss by the model's confidence in it, so that
    confidently predicted (easy) material dominates early, and anneal the weighting to uniform. Our
    reading, at step granularity (the unit the trainer weighs): confidence of step k is exp(-NLL_k)
    (its geometric-mean token probability under the current student, from `observe`), sentence
    confidence is exp(-mean step NLL); the loss weight of step k at epoch e is
    (conf_step * conf_sentence) ** gamma(e), gamma(e) = max(0, 1 - e / T), rescaled to mean 1 over all
    steps so the effective learning rate stays put. The whole rationale is always the target; before
    the first observation the weights are uniform.
    """

    needs_feedback = True

    def __init__(self, config: ScheduleConfig):
        self.T = config.stages_T
        self.nll: dict[str, np.ndarray] = {}

    def observe(self, epoch: int, step_nll: dict[str, list[float]]) -> None:
        self.nll = {key: np.maximum(np.asarray(v, dtype=np.float64), 0) for key, v in step_nll.items()}

    def plan(self, epoch: int) -> EpochPlan:
        gamma = max(0.0, 1.0 - epoch / self.T)
        if not self.nll or gamma == 0:
            return EpochPlan(input_steps={})
        raw = {key: np.exp(-gamma * (nll + (nll.mean() if nll.size else 0.0))) for key, nll in self.nll.items()}
        scale = np.concatenate([w for w in raw.values()] or [np.ones(1)]).mean()
        return EpochPlan(input_steps={}, step_weights={key: (w / scale).tolist() for key, w in raw.items()})


class InSampleCurriculum(NoCurriculum):
    """ICL (Jia et al., ACL 2023: in-sample curriculum learning by sequence completion), read for
    rationales.

    Jia et al. first train the model to complete the last part of a target given its beginning, and
    move the starting point towards the beginning until the whole target is generated. Our reading:
    a fraction icl_start * max(0, 1 - e / T) of each rationale's tokens is given as input at epoch e
    (the same pace for every rationale, token- not step-level, reaching the whole rationale at T);
    the original moves the point when the validation metric stalls, we use KPOD's T for a fair
    comparison.
    """

    def __init__(self, keys: list[str], config: ScheduleConfig):
        self.keys, self.start, self.T = list(keys), config.icl_start, config.stages_T

    def plan(self, epoch: int) -> EpochPlan:
        fraction = self.start * max(0.0, 1.0 - epoch / self.T)
        return EpochPlan(input_steps={}, input_token_fraction={key: fraction for key in self.keys})
