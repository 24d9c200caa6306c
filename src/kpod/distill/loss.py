"""The distillation loss of KPOD (Eq. 15) and a memory-lean way to compute it.

Eq. 15: L_o(t) = - sum_i sum_{j > p_{c_i(t)}} w_j^(i) log P(r_j^(i) | r_<j^(i), x^(i)), over the target
tokens of stage t (the rationale steps after the first c_i(t), then the answer, whose tokens have
weight 1). kpod divides the sum by the number of target tokens in the *global* batch (every
micro-batch of an optimizer step on every process), so gradient accumulation and data parallelism
give the gradient of one large batch; `loss_normalizer: weights` divides by the sum of their
weights instead.

The fast path never materializes float32 logits for the whole vocabulary and batch: only target
positions go through the output projection, in chunks of `chunk` rows, and each chunk's logits are
recomputed in backward (activation checkpointing) instead of being kept.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100


def eq15_loss(token_nll: torch.Tensor, weights: torch.Tensor, normalizer: float | torch.Tensor) -> torch.Tensor:
    """Eq. 15: the w_j-weighted sum of target-token negative log-likelihoods, divided by `normalizer`
    (the number of target tokens in the global batch, or the sum of their weights)."""
    return (weights.to(token_nll.dtype) * token_nll).sum() / normalizer


def eq15_reference_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                        normalizer: float | torch.Tensor) -> torch.Tensor:
    """Eq. 15 computed the plain way from full logits (batch, length, vocab) in float32.

    `labels` holds the token to predict at each position (IGNORE_INDEX where there is no target),
    `weights` the w_j of each position. The reference for the chunked path's tests.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    mask = labels != IGNORE_INDEX
    picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * weights.float() * mask).sum() / normalizer


def _chunk_nll(head: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="none")


def chunked_token_nll(hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor,
                      chunk: int = 2048) -> torch.Tensor:
    """Per-token NLL (float32) of `targets` (N,) given the hidden states (N, H) that predict them.

    `head` is the output projection. At most `chunk` rows of float32 logits exist at a time, in
    forward and in backward (each chunk is recomputed there)."""
    if hidden.shape[0] == 0:
        return hidden.new_zeros(0, dtype=torch.float32)
    if hidden.shape[0] <= chunk:  # one chunk: keeping its logits costs no more than recomputing them
        return _chunk_nll(head, hidden, targets)
    parts = []
    for start in range(0, hidden.shape[0], chunk):
        h, y = hidden[start:start + chunk], targets[start:start + chunk]
        if torch.is_grad_enabled() and h.requires_grad:
            parts.append(checkpoint(_chunk_nll, head, h, y, use_reentrant=False))
        else:
            parts.append(_chunk_nll(head, h, y))
    return torch.cat(parts)
