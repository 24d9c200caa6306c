"""Learned token weights scored against keypoint labels (the testbed's `keypoints` spans).

One scoring for every figure kpod reports (the run's metrics and report, benchmarks/weighting.py):
over the non-blank tokens of each rationale's body. The final answer sentence is left out: it is
unlabeled, and `kpod weigh` writes its tokens with weight 1 by construction.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from kpod.data.steps import split_steps
from kpod.weighting.heatmap import TOKEN_CLASSES, token_class
from kpod.weighting.store import TokenWeights


def body_end(rationale: str) -> int:
    """Character offset where the final answer sentence starts (the text's length if it has none)."""
    answer = split_steps(rationale).answer
    return answer[0] if answer else len(rationale)


def keypoint_scores(items: Iterable[tuple[str, list[tuple[int, int]], TokenWeights]]) -> dict:
    """ROC-AUC of the weights against the labels (a token is a keypoint when its span overlaps a
    keypoint span), the mean weight of keypoint and filler tokens, and both by token class, over
    (rationale text, keypoint spans, weights) triples. `roc_auc` is None when only one label occurs."""
    from sklearn.metrics import roc_auc_score

    labels, scores, classes = [], [], []
    for text, keypoints, tw in items:
        end = body_end(text)
        for (a, b), w in zip(tw.offsets.tolist(), tw.weights.tolist()):
            if a < b <= end and text[a:b].strip():
                labels.append(any(a < k_end and k_start < b for k_start, k_end in keypoints))
                scores.append(w)
                classes.append(token_class(text[a:b]))
    y, p, c = np.array(labels, dtype=bool), np.array(scores), np.array(classes)
    if not y.any() or y.all():
        return {"tokens": int(len(y)), "keypoint_tokens": int(y.sum()), "roc_auc": None}
    by_class = {f"{'keypoint' if kp else 'filler'} {cls}": {"tokens": int(sel.sum()),
                                                             "mean_weight": float(p[sel].mean())}
                for kp in (True, False) for cls in TOKEN_CLASSES if (sel := (y == kp) & (c == cls)).any()}
    return {"tokens": int(len(y)), "keypoint_tokens": int(y.sum()), "roc_auc": float(roc_auc_score(y, p)),
            "mean_weight_keypoint": float(p[y].mean()), "mean_weight_filler": float(p[~y].mean()),
            "by_class": by_class}
