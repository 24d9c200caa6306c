"""The token-weighting equations of KPOD (Sec. 3.3), one pure function each.

Shapes: B examples, N rationale tokens (padded); `valid` is a (B, N) 0/1 mask of real tokens.
"""

from __future__ import annotations

import torch


def significance_weights(scores: torch.Tensor) -> torch.Tensor:
    """Eq. 3: w_j = sigmoid(f_w(e_j)), the probability that rationale token j is kept (not masked).

    `scores` are the weight generator's outputs f_w(e_j) (any shape)."""
    return torch.sigmoid(scores)


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard sample, exactly 0/1 (hard + soft - soft.detach() is off by rounding).
    Backward: the gradient of the soft sample."""

    @staticmethod
    def forward(ctx, soft: torch.Tensor) -> torch.Tensor:
        return (soft > 0.5).to(soft.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def gumbel_mask(weights: torch.Tensor, tau: float = 1.0, noise: torch.Tensor | None = None,
                eps: float = 1e-6) -> torch.Tensor:
    """Eq. 4: m_j = GumbelSoftmax(w_j), straight-through: exactly 0/1 forward, soft gradients back.

    The two-class Gumbel-Softmax over logits (log w, log(1 - w)) has the soft keep-probability
    sigmoid((log w - log(1 - w) + g1 - g2) / tau), and g1 - g2 of two Gumbel(0, 1) samples is a
    Logistic(0, 1) sample: `noise` (drawn when None). The forward value is the hard sample
    1[soft > 1/2]; the backward pass differentiates the soft one (Jang et al., 2016)."""
    w = weights.clamp(eps, 1 - eps)
    if noise is None:
        u = torch.rand_like(w).clamp(eps, 1 - eps)
        noise = torch.log(u) - torch.log1p(-u)
    soft = torch.sigmoid((torch.log(w) - torch.log1p(-w) + noise) / tau)
    return _StraightThrough.apply(soft)


def sample_prefix_lengths(length: int, count: int, generator: torch.Generator | None = None) -> list[int]:
    """The prefix lengths k of Eq. 5 that one example trains on in one step: the full rationale
    (k = length) always, plus `count` lengths drawn uniformly, with replacement, from 0..length-1
    (all 0 for an empty rationale)."""
    if length <= 0:
        return [0] * (count + 1)
    drawn = torch.randint(0, length, (count,), generator=generator).tolist() if count > 0 else []
    return [length] + drawn


def prefix_answer_loss(full_nll: torch.Tensor, sampled_nll: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Eq. 5, estimated: L_p = -sum_k sum_j log P(y_j | y_<j, r[m]_<k, x), per example, divided by the
    number of prefixes (n + 1, k = 0..n), i.e. the mean answer NLL over prefixes.

    `full_nll` (B,) is the answer NLL (summed over answer tokens j) given the whole masked rationale
    (k = n); `sampled_nll` (B, K) the NLL given K prefixes drawn uniformly from k = 0..n-1 (see
    `sample_prefix_lengths`); `lengths` (B,) is n. The estimate
        (full_nll + n * mean(sampled_nll)) / (n + 1)
    is unbiased for the sum over k = 0..n divided by the known per-example factor n + 1; dividing
    keeps long rationales from outweighing short ones, as L_m's normalization does (Eq. 6)."""
    if sampled_nll.shape[-1] == 0:
        return full_nll  # no sampled prefixes: the full-rationale term alone
    n = lengths.to(full_nll.dtype)
    return (full_nll + n * sampled_nll.mean(dim=1)) / (n + 1)


def mask_ratio_loss(masks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Eq. 6: L_m = sum_j m_j over the rationale, divided by the rationale length n, per example (B,).

    Normalizing makes alpha mean the same for short and long rationales: L_m is the kept fraction."""
    valid = valid.to(masks.dtype)
    return (masks * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1)


def total_loss(answer_loss: torch.Tensor, ratio_loss: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Eq. 7: L_k = L_p + alpha * L_m, averaged over the examples of the batch."""
    return (answer_loss + alpha * ratio_loss).mean()
