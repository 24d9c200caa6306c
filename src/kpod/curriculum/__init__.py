"""KPOD's in-rationale progressive distillation schedule (Sec. 3.4, Eq. 8-13) and the curriculum
alternatives of the ablation: what the trainer gives as input and weighs at every epoch."""

from kpod.curriculum.base import Curriculum, EpochPlan

__all__ = ["Curriculum", "EpochPlan"]
