"""Batched generation: equal to one-at-a-time greedy decoding, in input order, stopping after the
answer sentence."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_CORPUS, fit_causal
from kpod.eval.generate import AnswerSentenceStop, generate, length_sorted_batches, truncate_at_answer
from kpod.models.loading import load_model

PROMPTS = [
    "Q: Tom has 12 apples and buys 30 more. How many apples does he have?\nA: Let's think step by step.",
    "Q: hi\nA: Let's think step by step.",
    "Q: A box holds 6 pens. How many pens are in 7 boxes, and how many are left if Sara takes 3 of them "
    "out of each box?\nA: Let's think step by step.",
    "Q: Sara had $150.50.\nA:",
    "Q: Which is a fruit?\nA: Let's think step by step.",
]


def _scrambled(path: str):
    """A tiny model with large random weights: it writes varied tokens, so padding or position bugs
    show up as different text (a freshly initialized model repeats one token)."""
    loaded = load_model(path)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in loaded.model.parameters():
            param.normal_(0, 0.5)
    return loaded


def _naive(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """Plain `generate` on one unpadded prompt, without kpod's stopping rule."""
    inputs = tokenizer(prompt, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    start = 1 if model.config.is_encoder_decoder else inputs["input_ids"].shape[1]
    return truncate_at_answer(tokenizer.decode(out[0, start:], skip_special_tokens=True)).strip()


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_batched_generation_equals_one_at_a_time(tiny_models, kind):
    loaded = _scrambled(str(tiny_models[kind]))
    batched = generate(loaded.model, loaded.tokenizer, PROMPTS, max_new_tokens=24, batch_size=4)
    naive = [_naive(loaded.model, loaded.tokenizer, p, 24) for p in PROMPTS]
    assert batched == naive
    assert len(set(batched)) == len(PROMPTS)  # varied text: the comparison is not vacuous
    assert loaded.tokenizer.padding_side == "right"  # the caller's tokenizer is left as it was


def test_left_padding_is_what_makes_causal_batches_exact(tiny_models):
    """Right-padding a causal batch (the common mistake) changes the short prompts' continuations."""
    loaded = _scrambled(str(tiny_models["causal"]))
    tok = loaded.tokenizer
    inputs = tok(PROMPTS[:2], padding=True, padding_side="right", return_tensors="pt")
    out = loaded.model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    right_padded = tok.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    ours = generate(loaded.model, tok, PROMPTS[:2], max_new_tokens=12, batch_size=2)
    assert right_padded[1].strip() != ours[1]


def _stream_model(tiny_models):
    """The tiny causal model fitted to the corpus written as one stream: after each answer sentence
    it goes on with the next question, as a student that never learned to emit EOS would."""
    texts = [TINY_CORPUS[i] + "\n" + TINY_CORPUS[(i + 1) % len(TINY_CORPUS)] for i in range(len(TINY_CORPUS))]
    return fit_causal(tiny_models["causal"], texts)


def test_generation_stops_after_the_answer_sentence(tiny_models):
    loaded = _stream_model(tiny_models)
    model, tok = loaded.model, loaded.tokenizer
    prompt = TINY_CORPUS[2].split(" Let's think")[0] + " Let's think step by step."
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        (text,) = generate(model, tok, [prompt], max_new_tokens=120)
    finally:
        hook.remove()
    assert text == "She had $150.50. Then 150.50 - 20 = 130.50. Therefore, the answer is 130.5."
    answer_tokens = len(tok(" " + text)["input_ids"])
    assert len(calls) <= answer_tokens + 2  # stopped one token after the sentence, not at 120
    raw = model.generate(**tok(prompt, return_tensors="pt"), max_new_tokens=60, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    assert "Q:" in tok.decode(raw[0], skip_special_tokens=True).split("130.5.")[-1]  # would have gone on


def test_answer_sentence_stop_waits_for_the_character_after_the_period(tiny_models):
    tok = load_model(str(tiny_models["causal"])).tokenizer
    prompt = "Q: x\nA:"
    start = len(tok(prompt)["input_ids"])
    texts = [" So. Therefore, the answer is 130.", " So. Therefore, the answer is 130.5", " Therefore, the answer is 130.5.\n",
             " Therefore, the answer is A. Q", " It costs $1.50. Then 2 more."]
    rows = [tok(prompt + t)["input_ids"] for t in texts]
    width = max(map(len, rows))
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
    stop = AnswerSentenceStop(tok, start)
    # Rows are checked at their own last tokens; pad columns after a row's end do not count here,
    # so each row is judged on its own unpadded ids.
    verdicts = [bool(stop(torch.tensor([r]), None)[0]) for r in rows]
    assert verdicts == [False, False, True, True, False]
    assert stop(ids, None).shape == (len(rows),)


@pytest.mark.parametrize("text, expected", [
    ("Then 12 + 30 = 42. Therefore, the answer is 42. Q: next 7", "Then 12 + 30 = 42. Therefore, the answer is 42."),
    ("Therefore, the answer is $1.50. More 3", "Therefore, the answer is $1.50."),
    ("Therefore, the answer is 130.5", "Therefore, the answer is 130.5"),
    ("Therefore, the answer is 1,000.\nQ: 9", "Therefore, the answer is 1,000."),
    ("Therefore, the answer is A. B is wrong.", "Therefore, the answer is A."),
    ("No answer sentence here. 5 and 6.", "No answer sentence here. 5 and 6."),
    ("Therefore, the answer is\n7. And 8.", "Therefore, the answer is\n7. And 8."),
])
def test_truncate_at_answer(text, expected):
    assert truncate_at_answer(text) == expected


def test_length_sorted_batches_longest_first_and_complete():
    batches = length_sorted_batches([3, 9, 1, 7, 5], 2)
    assert batches == [[1, 3], [4, 0], [2]]


def test_generate_keeps_input_order_and_handles_empty(tiny_models):
    loaded = _scrambled(str(tiny_models["causal"]))
    forward = generate(loaded.model, loaded.tokenizer, PROMPTS, max_new_tokens=8, batch_size=2)
    backward = generate(loaded.model, loaded.tokenizer, PROMPTS[::-1], max_new_tokens=8, batch_size=2)
    assert backward == forward[::-1]
    assert generate(loaded.model, loaded.tokenizer, [], max_new_tokens=8) == []
