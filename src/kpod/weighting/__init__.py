"""Token significance weights by mask learning (KPOD Sec. 3.3, Eq. 2-7): the module, `kpod weigh`,
the weights.jsonl store and the Figure 2 heatmap."""

from kpod.weighting.store import TokenWeights, char_span_weights, read_weights, write_weights

__all__ = ["TokenWeights", "char_span_weights", "read_weights", "write_weights"]
