"""Evaluation: batched greedy generation (`generate`), answer scoring and `kpod eval` (`evaluate`)."""
