"""The token-weighting equations (Eq. 3-7) against values computed by hand."""

import math

import pytest
import torch

from kpod.weighting.losses import (gumbel_mask, mask_ratio_loss, prefix_answer_loss, sample_prefix_lengths,
                                   significance_weights, total_loss)


def test_eq3_weights_are_the_sigmoid_of_the_generator_scores():
    w = significance_weights(torch.tensor([0.0, math.log(3.0), -math.log(3.0)]))
    assert w.tolist() == pytest.approx([0.5, 0.75, 0.25])


def test_eq4_mask_is_hard_forward_and_differentiates_the_soft_sample():
    w = torch.tensor([0.5, 0.8], requires_grad=True)
    noise = torch.tensor([0.1, -2.0])
    m = gumbel_mask(w, tau=1.0, noise=noise)
    # soft = sigmoid(logit(w) + noise): sigmoid(0.1) = 0.525 -> keep; sigmoid(ln 4 - 2) = 0.351 -> mask
    assert m.tolist() == [1.0, 0.0]
    m.sum().backward()
    # d soft / d w = soft (1 - soft) / (tau w (1 - w))
    soft = [1 / (1 + math.exp(-0.1)), 1 / (1 + math.exp(-(math.log(4) - 2.0)))]
    expected = [soft[0] * (1 - soft[0]) / 0.25, soft[1] * (1 - soft[1]) / 0.16]
    assert w.grad.tolist() == pytest.approx(expected, rel=1e-4)


def test_eq4_temperature_scales_the_soft_gradient_not_the_hard_sample():
    w = torch.tensor([0.7], requires_grad=True)
    hot = gumbel_mask(w, tau=2.0, noise=torch.tensor([0.0]))
    hot.backward()
    soft = 1 / (1 + math.exp(-math.log(0.7 / 0.3) / 2.0))
    assert hot.item() == 1.0
    assert w.grad.item() == pytest.approx(soft * (1 - soft) / (2.0 * 0.7 * 0.3), rel=1e-4)


def test_eq4_sampled_masks_keep_tokens_at_rate_w():
    torch.manual_seed(0)
    w = torch.full((20000,), 0.3)
    assert gumbel_mask(w).mean().item() == pytest.approx(0.3, abs=0.015)


def test_prefix_lengths_always_include_the_full_rationale():
    gen = torch.Generator().manual_seed(0)
    ks = sample_prefix_lengths(5, 3, gen)
    assert ks[0] == 5 and len(ks) == 4 and all(0 <= k < 5 for k in ks[1:])
    assert sample_prefix_lengths(0, 2) == [0, 0, 0]
    assert sample_prefix_lengths(4, 0) == [4]


def test_eq5_estimator_by_hand():
    loss = prefix_answer_loss(torch.tensor([2.0]), torch.tensor([[4.0, 6.0]]), torch.tensor([3]))
    assert loss.item() == pytest.approx((2.0 + 3 * 5.0) / 4)  # (full + n * mean sampled) / (n + 1)
    alone = prefix_answer_loss(torch.tensor([2.0]), torch.zeros(1, 0), torch.tensor([3]))
    assert alone.item() == 2.0


def test_eq5_estimator_is_unbiased_for_the_mean_over_all_prefixes():
    nll = [7.0, 5.0, 2.0, 1.0]  # answer NLL given prefix k = 0, 1, 2 and the full rationale (n = 3)
    n = 3
    draws = [prefix_answer_loss(torch.tensor([nll[n]]), torch.tensor([[nll[k]]]), torch.tensor([n])).item()
             for k in range(n)]  # K = 1 draw, each k in 0..n-1 equally likely
    assert sum(draws) / n == pytest.approx(sum(nll) / (n + 1))


def test_eq6_mask_ratio_is_the_kept_fraction_of_real_tokens():
    masks = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    valid = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert mask_ratio_loss(masks, valid).tolist() == pytest.approx([0.5, 1.0])


def test_eq7_total_loss():
    loss = total_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0]), alpha=0.5)
    assert loss.item() == pytest.approx((1.25 + 2.5) / 2)
