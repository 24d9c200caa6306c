"""Batched greedy generation for causal and seq2seq students, and a vLLM backend.

`generate` is the one generation path of evaluation (and of a local teacher): prompts are sorted by
token length so that each batch pads little, causal models are left-padded so every row continues
from its last real token, decoding is greedy with the KV cache under `torch.inference_mode`, and a
row stops at EOS or once it has written the closing answer sentence ("Therefore, the answer is N.").
The continuation is cut at the end of that sentence in every case, so the text a prompt gets does not
depend on which other prompts share its batch: batched output equals one-at-a-time greedy output.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from kpod.data.prompts import ANSWER_TRIGGER
from kpod.progress import progress

# "Therefore, the answer is N." ends at the first period not followed by a digit ("$1.50." ends at
# the second). While generating, the character after the period must already be there.
_ANSWER_END = re.compile(re.escape(ANSWER_TRIGGER) + r"[^\n]*?\.(?!\d)")
_ANSWER_END_CONFIRMED = re.compile(re.escape(ANSWER_TRIGGER) + r"[^\n]*?\.(?=[^\d])")


def truncate_at_answer(text: str) -> str:
    """Cut `text` just after its first complete answer sentence (unchanged if there is none)."""
    match = _ANSWER_END.search(text)
    return text[: match.end()] if match else text


class AnswerSentenceStop(StoppingCriteria):
    """Stops each row once its continuation holds a complete answer sentence.

    Decoding every row at every step would cost more than the model on small students, so a row is
    decoded only when one of its last `window` tokens contains a period (the character that confirms
    the sentence's end can arrive a token or two after it). A missed check costs time, never text:
    `generate` cuts every continuation at its answer sentence anyway.
    """

    def __init__(self, tokenizer, start: int, window: int = 4):
        self.tokenizer = tokenizer
        self.start = start
        self.window = window
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.has_period = torch.tensor([bool(t) and "." in t for t in tokens], dtype=torch.bool)

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        generated = input_ids[:, self.start:]
        if generated.shape[1] < 2:
            return done
        if self.has_period.device != input_ids.device:
            self.has_period = self.has_period.to(input_ids.device)
        mask = self.has_period
        recent = generated[:, -self.window:].clamp(0, mask.numel() - 1)
        candidates = mask[recent].any(dim=1).nonzero().flatten().tolist()
        for row in candidates:
            text = self.tokenizer.decode(generated[row], skip_special_tokens=True)
            done[row] = _ANSWER_END_CONFIRMED.search(text) is not None
        return done


def _is_seq2seq(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (an out-of-memory error shows
    up on the first batch, not after minutes of work)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def generate(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 256, batch_size: int = 32,
             desc: str | None = None) -> list[str]:
    """Greedy continuations of `prompts` in input order (the continuation only, whitespace-stripped,
    cut after the answer sentence)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not prompts:
        return []
    seq2seq = _is_seq2seq(model)
    padding_side = "right" if seq2seq else "left"
    encoded = tokenizer(list(prompts))["input_ids"]
    outputs: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    eos = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    stop = AnswerSentenceStop(tokenizer, start=0)
    bar = progress(total=len(prompts), desc=desc or "generate", unit="ex")
    try:
        with torch.inference_mode():
            for batch in length_sorted_batches([len(ids) for ids in encoded], batch_size):
                inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, padding_side=padding_side,
                                       return_tensors="pt").to(model.device)
                start = 1 if seq2seq else inputs["input_ids"].shape[1]
                stop.start = start
                out = model.generate(
                    **inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
                    temperature=None, top_p=None, top_k=None, eos_token_id=eos, pad_token_id=pad_id,
                    stopping_criteria=StoppingCriteriaList([stop]),
                )
                texts = tokenizer.batch_decode(out[:, start:], skip_special_tokens=True)
                for index, text in zip(batch, texts):
                    outputs[index] = truncate_at_answer(text).strip()
                bar.update(len(batch))
    finally:
        bar.close()
        model.train(was_training)
    return outputs


def vllm_available() -> bool:
    """True when vLLM is installed and a GPU is there for it."""
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def generate_vllm(model_path: str, prompts: Sequence[str], *, max_new_tokens: int = 256,
                  dtype: str = "auto", gpu_memory_utilization: float = 0.85) -> list[str]:
    """The same greedy continuations as `generate`, computed by vLLM (continuous batching, paged KV
    cache) from a model directory or hub name."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization)
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    results = llm.generate(list(prompts), params)
    return [truncate_at_answer(r.outputs[0].text).strip() for r in results]
