"""Keypoint scoring of learned weights: the rationale body only, against values computed by hand."""

import numpy as np
import pytest

from kpod.weighting.scoring import keypoint_scores
from kpod.weighting.store import TokenWeights

TEXT = "so 5 + 3 = 8. Therefore, the answer is 8."
#        so    5      +      3      =      8      .    | Therefore ... (answer sentence, weight 1)
SPANS = [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 13), (13, 23), (23, 24), (24, 28), (28, 35),
         (35, 38), (38, 40), (40, 41)]
WEIGHTS = [0.1, 0.9, 0.6, 0.8, 0.7, 0.95, 0.2] + [1.0] * 7
KEYPOINTS = [(3, 4), (5, 6), (7, 8), (11, 12)]  # 5 + 3 8; "=" is filler


def test_scores_the_body_by_hand():
    scores = keypoint_scores([(TEXT, KEYPOINTS, TokenWeights(np.array(SPANS), np.array(WEIGHTS)))])
    assert scores["tokens"] == 7 and scores["keypoint_tokens"] == 4  # the answer sentence is left out
    # keypoints {.9, .6, .8, .95} against filler {.1, .7, .2}: 11 of 12 pairs ordered right
    assert scores["roc_auc"] == pytest.approx(11 / 12)
    assert scores["mean_weight_keypoint"] == pytest.approx(3.25 / 4)
    assert scores["mean_weight_filler"] == pytest.approx(1.0 / 3)
    assert scores["by_class"] == {
        "keypoint digits": {"tokens": 3, "mean_weight": pytest.approx(2.65 / 3)},
        "keypoint operators": {"tokens": 1, "mean_weight": pytest.approx(0.6)},
        "filler operators": {"tokens": 1, "mean_weight": pytest.approx(0.7)},
        "filler words": {"tokens": 1, "mean_weight": pytest.approx(0.1)},
        "filler other": {"tokens": 1, "mean_weight": pytest.approx(0.2)},
    }


def test_one_label_only_has_no_auc():
    tw = TokenWeights(np.array(SPANS), np.array(WEIGHTS))
    assert keypoint_scores([(TEXT, [], tw)])["roc_auc"] is None
