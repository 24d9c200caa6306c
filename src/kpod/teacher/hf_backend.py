"""A local Hugging Face model as the teacher (`kpod teach --backend hf`) and behind `kpod serve`.

Greedy requests go through `kpod.eval.generate.generate` (the batched, length-sorted, KV-cached path
evaluation uses, so a served student answers exactly as it is evaluated); sampled requests
(temperature > 0) through `model.generate(do_sample=True)` in batches. Stop strings are applied to
the decoded text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from kpod.data.example import Example
from kpod.eval.generate import generate
from kpod.models.loading import default_device, load_model
from kpod.teacher.client import Completion, usage_of
from kpod.teacher.config import TeachConfig
from kpod.teacher.prompts import ANSWER_STOP, RATIONALE_STOP, answer_prompt, clean_rationale, rationale_prompt
from kpod.teacher.records import FAILED, finished_record


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to its first stop string, and whether one was found."""
    positions = [text.find(s) for s in stop if s and s in text]
    return (text[: min(positions)], True) if positions else (text, False)


class LocalGenerator:
    """Batched completions from a local model (hub name or `save_pretrained` directory)."""

    def __init__(self, name_or_path: str, *, batch_size: int = 16, device: str | None = None, dtype: str | None = None):
        self.loaded = load_model(name_or_path, dtype=dtype, device=device or default_device(), padding_side="left")
        self.batch_size = batch_size

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def complete(self, prompts: Sequence[str], *, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 stop: Sequence[str] = (), seed: int | None = None) -> list[Completion]:
        """One completion per prompt, in input order."""
        if temperature > 0:
            texts = self._sample(prompts, max_tokens, temperature, top_p, seed)
        else:
            texts = generate(self.loaded.model, self.tokenizer, prompts, max_new_tokens=max_tokens,
                             batch_size=self.batch_size, desc="generate")
        out = []
        for prompt, text in zip(prompts, texts):
            text, stopped = cut_at_stop(text, stop)
            tokens = min(self.count_tokens(text), max_tokens)  # re-tokenized text can count a few more
            out.append(Completion(text, "stop" if stopped or tokens < max_tokens else "length",
                                  len(self.tokenizer(prompt)["input_ids"]), tokens))
        return out

    def _sample(self, prompts: Sequence[str], max_tokens: int, temperature: float, top_p: float,
                seed: int | None) -> list[str]:
        model, tokenizer = self.loaded.model, self.tokenizer
        if seed is not None:
            torch.manual_seed(seed)
        texts = []
        with torch.inference_mode():
            for i in range(0, len(prompts), self.batch_size):
                batch = list(prompts[i:i + self.batch_size])
                inputs = tokenizer(batch, return_tensors="pt", padding=True).to(model.device)
                out = model.generate(**inputs, do_sample=True, temperature=temperature, top_p=top_p,
                                     max_new_tokens=max_tokens, pad_token_id=tokenizer.pad_token_id)
                start = 1 if self.loaded.is_seq2seq else inputs["input_ids"].shape[1]
                texts += tokenizer.batch_decode(out[:, start:], skip_special_tokens=True)
        return texts


def teach_local(cfg: TeachConfig, jobs: Sequence[tuple[Example, int]], on_record: Callable[[dict], None]) -> None:
    """Both stages for each batch of (example, sample) jobs; every record is written when its batch
    ends, with the batch's wall time shared evenly as its latency."""
    generator = LocalGenerator(cfg.model, batch_size=cfg.batch_size)
    for index in range(0, len(jobs), cfg.batch_size):
        batch = jobs[index:index + cfg.batch_size]
        start = time.perf_counter()
        prompts = [rationale_prompt(example) for example, _ in batch]
        first = generator.complete(prompts, max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                   stop=RATIONALE_STOP, seed=cfg.seed + index)
        rationales = [clean_rationale(c.text) for c in first]
        answered = [i for i, r in enumerate(rationales) if r]
        second = dict(zip(answered, generator.complete([answer_prompt(prompts[i], rationales[i]) for i in answered],
                                                        max_tokens=cfg.answer_max_tokens, stop=ANSWER_STOP)))
        latency = (time.perf_counter() - start) / len(batch)
        for i, (example, sample) in enumerate(batch):
            calls = [first[i]] + ([second[i]] if i in second else [])
            usage = usage_of(calls)
            texts = [c.text for c in calls]
            if i in second:
                on_record(finished_record(example, sample, prompts[i], texts, usage, latency))
            else:
                on_record(finished_record(example, sample, prompts[i], texts, usage, latency, status=FAILED,
                                          reason="empty_response", error="no rationale in the generated text"))
