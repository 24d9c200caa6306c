"""Eq. 15 and its chunked fast path."""

from __future__ import annotations

import math

import pytest
import torch

from kpod.distill.encoding import TrainSequence, encode_sequences
from kpod.distill.data import collate
from kpod.distill.loss import IGNORE_INDEX, chunked_token_nll, eq15_loss, eq15_reference_loss
from kpod.distill.trainer import DistillModel
from kpod.models.loading import load_model


def test_eq15_matches_hand_computed_value():
    # one sequence, vocabulary of 3; logits [0, ln 3, 0] give p = [1/5, 3/5, 1/5]
    logits = torch.tensor([[[0.0, math.log(3), 0.0]] * 3])
    labels = torch.tensor([[1, 0, IGNORE_INDEX]])
    weights = torch.tensor([[0.5, 1.0, 0.7]])
    expected = (0.5 * -math.log(3 / 5) + 1.0 * -math.log(1 / 5)) / 2
    assert eq15_reference_loss(logits, labels, weights, 2).item() == pytest.approx(expected, rel=1e-6)
    nll = torch.tensor([-math.log(3 / 5), -math.log(1 / 5)])
    assert eq15_loss(nll, torch.tensor([0.5, 1.0]), 2).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("chunk", [8, 64])  # several chunks (recomputed in backward), and one
def test_chunked_nll_equals_full_logits_in_float32(chunk):
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(37, 16, requires_grad=True)
    targets = torch.randint(0, 50, (37,))
    weights = torch.rand(37)
    full = eq15_reference_loss(head(hidden).unsqueeze(0), targets.unsqueeze(0), weights.unsqueeze(0), 37)
    full.backward()
    grad_full, grad_head_full = hidden.grad.clone(), head.weight.grad.clone()
    hidden.grad, head.weight.grad = None, None
    chunked = eq15_loss(chunked_token_nll(hidden, head, targets, chunk=chunk), weights, 37)
    chunked.backward()
    torch.testing.assert_close(chunked, full, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(hidden.grad, grad_full, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(head.weight.grad, grad_head_full, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_fast_path_equals_loss_from_model_logits(tiny_models, kind):
    loaded = load_model(str(tiny_models[kind]), dtype=torch.float32)
    seq2seq = kind == "seq2seq"
    seqs = [TrainSequence("a", "Q: Tom has 12 apples.\nA: Let's think step by step.", "12 + 30 = 42. Therefore, the answer is 42."),
            TrainSequence("b", "Q: A box holds 6 pens.", "So 7 * 6 = 42 pens.", lambda spans: [0.3] * len(spans))]
    batch = collate(encode_sequences(loaded.tokenizer, seqs, seq2seq=seq2seq, max_length=128),
                    pad_id=loaded.tokenizer.pad_token_id)
    model = DistillModel(loaded.model, seq2seq, chunk_tokens=5).eval()
    assert model.fast
    nll, weights = model(**batch)
    normalizer = int((batch["labels"] != IGNORE_INDEX).sum())
    if seq2seq:
        logits = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              labels=batch["labels"]).logits
        reference = eq15_reference_loss(logits, batch["labels"], batch["weights"], normalizer)
    else:
        logits = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        reference = eq15_reference_loss(logits[:, :-1], batch["labels"][:, 1:], batch["weights"][:, 1:], normalizer)
    assert len(nll) == normalizer
    torch.testing.assert_close(eq15_loss(nll, weights, normalizer), reference, rtol=1e-5, atol=1e-6)
    assert sorted(set(weights.tolist())) == pytest.approx([0.3, 1.0])  # b's target 0.3, EOS and a's tokens 1
