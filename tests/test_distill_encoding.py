"""Stage prompts and targets (Eq. 14), token weights (Eq. 15) and their tokenization."""

from __future__ import annotations

import numpy as np
import pytest

from kpod.data.prompts import answer_sentence, question_prompt
from kpod.data.steps import StepSplit, split_steps
from kpod.distill.encoding import (Encoded, TrainSequence, encode_sequences, stage_text, stage_weight_fn,
                                   step_mean_nll, step_split_point, token_fraction_split_point)
from kpod.distill.loss import IGNORE_INDEX
from kpod.models.loading import load_tokenizer
from kpod.weighting.store import TokenWeights

Q = "Tom has 12 apples and buys 30 more. How many?"
R = "Tom starts with 12 apples. He buys 30 more. So 12 + 30 = 42. Therefore, the answer is 42."


def test_split_steps_contract_for_this_rationale():
    split = split_steps(R)
    assert [R[s:e] for s, e in split.steps] == ["Tom starts with 12 apples.", "He buys 30 more.", "So 12 + 30 = 42."]


@pytest.mark.parametrize("c, given, target_rationale", [
    (0, "", "Tom starts with 12 apples. He buys 30 more. So 12 + 30 = 42."),
    (1, " Tom starts with 12 apples.", "He buys 30 more. So 12 + 30 = 42."),
    (2, " Tom starts with 12 apples. He buys 30 more.", "So 12 + 30 = 42."),
])
def test_stage_text_for_several_c(c, given, target_rationale):
    split = split_steps(R)
    text = stage_text(Q, R, "42", split, step_split_point(split, c))
    assert text.prompt == question_prompt(Q) + given
    assert text.target == target_rationale + " " + answer_sentence("42")
    assert text.target[:text.rationale_chars] == R[text.rationale_start:text.rationale_start + text.rationale_chars]


def test_all_steps_given_leaves_only_the_answer():
    split = split_steps(R)
    text = stage_text(Q, R, "42", split, step_split_point(split, 3))
    assert text.target == answer_sentence("42") and text.rationale_chars == 0
    assert text.prompt.endswith("So 12 + 30 = 42.")


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
@pytest.mark.parametrize("c", [0, 2])
def test_encoding_puts_the_loss_on_the_target_only(tiny_models, kind, c):
    tok = load_tokenizer(str(tiny_models[kind]))
    split = split_steps(R)
    text = stage_text(Q, R, "42", split, step_split_point(split, c))
    (enc,) = encode_sequences(tok, [TrainSequence("k", text.prompt, text.target)], seq2seq=kind == "seq2seq",
                              max_length=512)
    targets = [t for t in enc.labels if t != IGNORE_INDEX]
    assert targets[-1] == tok.eos_token_id
    assert tok.decode(targets[:-1]).strip() == text.target
    if kind == "causal":
        prompt_len = enc.labels.count(IGNORE_INDEX)
        assert enc.labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
        assert tok.decode(enc.input_ids[:prompt_len]) == text.prompt
        assert enc.input_ids[prompt_len:] == targets
        assert enc.weights[:prompt_len] == [0.0] * prompt_len
    else:
        assert tok.decode(enc.input_ids, skip_special_tokens=True) == text.prompt
        assert len(enc.labels) == len(enc.weights) == len(targets)
    assert [text.target[s:e] for s, e in enc.target_offsets][-1].endswith(".")


def test_causal_truncation_cuts_the_end(tiny_models):
    tok = load_tokenizer(str(tiny_models["causal"]))
    (full,) = encode_sequences(tok, [TrainSequence("k", "Q: x", R)], seq2seq=False, max_length=512)
    (cut,) = encode_sequences(tok, [TrainSequence("k", "Q: x", R)], seq2seq=False, max_length=10)
    assert cut.input_ids == full.input_ids[:10] and cut.labels == full.labels[:10]
    assert len(cut.target_offsets) == cut.num_target_tokens


def _weights_over(rationale: str, value_by_word: dict[str, float]) -> TokenWeights:
    spans, values = [], []
    pos = 0
    for word in rationale.split(" "):
        spans.append((pos, pos + len(word)))
        values.append(value_by_word.get(word, 0.5))
        pos += len(word) + 1
    return TokenWeights(np.asarray(spans), np.asarray(values))


def test_rationale_tokens_get_wj_answer_tokens_get_one():
    split = split_steps(R)
    text = stage_text(Q, R, "42", split, step_split_point(split, 1))
    tw = _weights_over(R, {"He": 0.9, "So": 0.1})
    fn = stage_weight_fn(text, split, tw)
    # target: "He buys 30 more. So 12 + 30 = 42. Therefore, the answer is 42."
    he, so, therefore = (text.target.index(w) for w in ("He", "So", "Therefore"))
    weights = fn([(he, he + 2), (so, so + 2), (therefore, therefore + 9)])
    assert weights.tolist() == pytest.approx([0.9, 0.1, 1.0])
    floored = stage_weight_fn(text, split, tw, floor=0.2)([(he, he + 2), (so, so + 2)])
    assert floored.tolist() == pytest.approx([0.9, 0.2])
    spl = stage_weight_fn(text, split, None, step_weights=[5.0, 2.0, 0.5])([(he, he + 2), (so, so + 2),
                                                                          (therefore, therefore + 9)])
    assert spl.tolist() == pytest.approx([2.0, 0.5, 1.0])  # steps 2 and 3; the answer keeps 1
    assert stage_weight_fn(text, split, None) is None


def test_icl_token_fraction_split_and_step_nll():
    offsets = np.asarray([(0, 3), (4, 10), (11, 15), (16, 20)])
    assert token_fraction_split_point(offsets, 0.0) == 0
    assert token_fraction_split_point(offsets, 0.5) == 10
    assert token_fraction_split_point(offsets, 1.0) == 20
    assert token_fraction_split_point(np.asarray([(0, 2), (2, 5), (6, 9)]), 0.34, "abcde fgh") == 5  # word end
    steps = StepSplit([(0, 10), (11, 20)], None)
    # target starts at rationale char 11: tokens (0, 4) and (5, 9) of the target lie in step 2
    # step 1 lies before the target: no token overlaps it, so it gets the mean of all scored tokens
    assert step_mean_nll(steps, 11, [(0, 4), (5, 9)], np.asarray([1.0, 4.0])) == [2.5, 2.5]
    assert step_mean_nll(steps, 0, [(0, 3), (4, 10), (11, 20)], np.asarray([1.0, 2.0, 6.0])) == [1.5, 6.0]


def test_rationale_source_icl_split_and_missing_weights(tiny_models):
    from kpod.curriculum.base import EpochPlan
    from kpod.data.example import RationaleItem
    from kpod.distill.source import RationaleSource
    from kpod.errors import DataError

    class HalfGiven:
        needs_feedback = False

        def plan(self, epoch):
            return EpochPlan({}, input_token_fraction={"a": 0.5 if epoch == 0 else 0.0})

    tok = load_tokenizer(str(tiny_models["causal"]))
    source = RationaleSource([RationaleItem("a", "a", Q, R, "42")], curriculum=HalfGiven(), tokenizer=tok)
    (first,) = source.sequences(0)
    given = first.prompt[len(question_prompt(Q)) + 1:]
    assert 0.3 * len(R) < len(given) < 0.7 * len(R) and R.startswith(given)
    assert first.target.endswith(answer_sentence("42")) and given + " " + first.target.split(" Therefore")[0] in R
    assert not given.endswith(" ") and not first.target.startswith(" ")
    assert source.sequences(1)[0].prompt == question_prompt(Q)
    with pytest.raises(DataError, match="no weights for rationale 'a'"):
        RationaleSource([RationaleItem("a", "a", Q, R, "42")], token_weights={"b": TokenWeights(np.zeros((0, 2)), np.zeros(0))})


def test_loss_normalizer_counts_target_tokens_or_sums_their_weights():
    seq = Encoded("k", input_ids=[5, 6, 7, 8, 9], labels=[IGNORE_INDEX, IGNORE_INDEX, 7, 8, 9],
                  weights=[0.0, 0.0, 0.2, 1.0, 0.5])
    assert seq.loss_normalizer("tokens") == 3.0
    assert seq.loss_normalizer("weights") == pytest.approx(1.7)
