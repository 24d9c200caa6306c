"""Eq. 8, 9, 10 and the step table against values computed by hand."""

import math

import numpy as np
import pytest

from kpod.config import from_dict
from kpod.curriculum.budget import StepTable, budget, rationale_difficulty
from kpod.curriculum.config import ScheduleConfig
from kpod.curriculum.difficulty import step_difficulty
from kpod.errors import ConfigError


def test_eq8_softmax_weighted_nll():
    # softmax([0, ln 3]) = [1/4, 3/4]: d = 1/4 * 1 + 3/4 * 3 = 2.5
    assert step_difficulty([1.0, 3.0], [0.0, math.log(3)]) == pytest.approx(2.5)
    # temperature 2: weights proportional to [1, sqrt(3)]
    assert step_difficulty([1.0, 3.0], [0.0, math.log(3)], temperature=2.0) == pytest.approx(
        (1 + 3 * math.sqrt(3)) / (1 + math.sqrt(3)))
    # uniform weights (KPOD-w.o.-sig-dif): the mean NLL
    assert step_difficulty([1.0, 3.0], None) == pytest.approx(2.0)
    # weights in (0, 1) at temperature 1 are close to uniform, as the design notes warn
    assert step_difficulty([1.0, 3.0], [0.1, 0.9]) == pytest.approx(1 + 2 * (math.e ** 0.9 / (math.e ** 0.1 + math.e ** 0.9)))
    assert step_difficulty([], []) == 0.0


def test_eq9_difficulty_of_the_output_steps():
    d = [1.0, 2.0, 4.0]
    assert rationale_difficulty(d, 0) == 7.0
    assert rationale_difficulty(d, 2) == 4.0
    assert rationale_difficulty(d, 3) == 0.0


def test_eq10_budget_by_hand():
    # B = 100, C0 = 30, T = 4, p = 0.5: u = 70 * 1.5 / 4 ** 1.5 = 13.125
    assert budget(0, 100, 4, 0.5, 30) == pytest.approx(30)
    assert budget(1, 100, 4, 0.5, 30) == pytest.approx(13.125 / 1.5 + 30)  # 38.75
    assert budget(2, 100, 4, 0.5, 30) == pytest.approx(8.75 * 2 ** 1.5 + 30)  # 54.7487
    assert budget(4, 100, 4, 0.5, 30) == pytest.approx(100)
    assert budget(7, 100, 4, 0.5, 30) == 100


def test_step_table_prefix_sums_and_costs():
    table = StepTable.from_lists(["a", "b", "c"], [[1.0, 2.0, 4.0], [], [0.5, 0.25]])
    assert table.total == pytest.approx(7.75)
    c = np.array([3, 0, 1])
    # Eq. 9 summed: a outputs nothing, b has no steps, c outputs its second step
    assert table.scheduled(c) == pytest.approx(0.25)
    assert table.scheduled(np.zeros(3, dtype=int)) == pytest.approx(7.75)
    # revealing one step: a's third (4.0), c's first (0.5); two steps: a's 2 + 4, c clipped at step 1
    assert table.step_cost(c, 1, np.array([0, 2])).tolist() == pytest.approx([4.0, 0.5])
    assert table.step_cost(c, 2, np.array([0, 2])).tolist() == pytest.approx([6.0, 0.5])
    assert table.initial_steps("last_step", 1).tolist() == [2, 0, 1]
    assert table.initial_steps("selected", 1).tolist() == [3, 0, 2]
    with pytest.raises(ValueError, match="non-negative"):
        StepTable.from_lists(["a"], [[-1.0]])


def test_config_defaults_are_the_papers_and_bad_values_are_named():
    cfg = ScheduleConfig(epochs=20)
    assert (cfg.p, cfg.c0, cfg.beta, cfg.clusters, cfg.delta_s, cfg.temperature) == (0.5, 0.3, 12.0, 5, 1, 1.0)
    assert cfg.stages_T == 10
    with pytest.raises(ConfigError, match="T must lie"):
        from_dict(ScheduleConfig, {"epochs": 4, "T": 5})
    with pytest.raises(ConfigError, match="selection"):
        from_dict(ScheduleConfig, {"selection": "largest_f"})
