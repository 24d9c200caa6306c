"""Step difficulty (Eq. 8) from the pre-trained student, in one batched pass over all rationales.

The student reads `question_prompt(q) + " " + rationale` (a causal model) or the prompt as encoder
input and the rationale as target (a seq2seq model); each rationale token gets its NLL. A step's
difficulty is the softmax-normalized-weight average of its tokens' NLL (Eq. 8), with the token
significance weights of `kpod weigh` read through `char_span_weights`, or uniform weights (the
KPOD-w.o.-sig-dif ablation). Steps come from `split_steps`; the final answer sentence is not a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kpod.data.example import RationaleItem
from kpod.data.prompts import question_prompt
from kpod.data.steps import char_spans_to_token_spans, split_steps
from kpod.errors import DataError
from kpod.models.loading import LoadedModel
from kpod.progress import progress
from kpod.weighting.store import TokenWeights, char_span_weights


def step_difficulty(token_nll: Sequence[float], token_weights: Sequence[float] | None, temperature: float = 1.0) -> float:
    """Eq. 8: d_k = sum_{j in step k} softmax(w / temperature)_j * (-log P(r_j | r_<j, x)).

    The softmax runs over the step's own token weights (temperature 1 is the paper); `token_weights`
    None gives uniform weights, the mean token NLL (KPOD-w.o.-sig-dif). An empty step has difficulty 0.
    """
    nll = np.asarray(token_nll, dtype=np.float64)
    if nll.size == 0:
        return 0.0
    if token_weights is None:
        return float(nll.mean())
    z = np.asarray(token_weights, dtype=np.float64) / temperature
    w = np.exp(z - z.max())
    return float(w @ nll / w.sum())


@dataclass
class _Encoded:
    """One rationale ready for the model: its token ids, the positions of rationale tokens with their
    character spans inside the rationale, and each step's range over those positions."""

    key: str
    input_ids: list[int]
    target_ids: list[int] | None
    positions: np.ndarray
    char_spans: np.ndarray
    step_ranges: list[tuple[int, int]]

    @property
    def length(self) -> int:
        return len(self.input_ids) + len(self.target_ids or [])


def _encode(items: list[RationaleItem], tokenizer, seq2seq: bool, max_length: int | None) -> list[_Encoded]:
    """Every rationale tokenized in one batched tokenizer call (per-call overhead dominates otherwise)."""
    if not items:
        return []
    limits = {"truncation": max_length is not None, "max_length": max_length}
    prompts = [question_prompt(item.question) for item in items]
    if seq2seq:
        sources = tokenizer(prompts, **limits)["input_ids"]
        enc = tokenizer([item.rationale for item in items], return_offsets_mapping=True, **limits)
    else:
        enc = tokenizer([p + " " + item.rationale for p, item in zip(prompts, items)],
                        return_offsets_mapping=True, **limits)
    out = []
    for i, (item, prompt) in enumerate(zip(items, prompts)):
        if seq2seq:
            base, ids, target = 0, sources[i], enc["input_ids"][i]
        else:
            base, ids, target = len(prompt) + 1, enc["input_ids"][i], None
        steps = split_steps(item.rationale).steps
        offsets = np.asarray(enc["offset_mapping"][i], dtype=np.int64).reshape(-1, 2)
        token_ranges = char_spans_to_token_spans(offsets, [(s + base, e + base) for s, e in steps])
        # a causal model cannot score its first token; the prompt always precedes the steps anyway
        lo = max(token_ranges[0][0] if token_ranges else 0, 0 if seq2seq else 1)
        hi = max(token_ranges[-1][1] if token_ranges else 0, lo)
        positions = np.arange(lo, hi)
        ranges = [(max(a - lo, 0), max(b - lo, 0)) for a, b in token_ranges]
        out.append(_Encoded(item.key, ids, target, positions, offsets[positions] - base, ranges))
    return out


def _token_nll(model: LoadedModel, batch: list[_Encoded], device: torch.device) -> list[np.ndarray]:
    """NLL of every rationale token (at `positions`) of each encoded rationale, in one forward pass."""
    pad = model.tokenizer.pad_token_id
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[row, : len(e.input_ids)] = 1
    ids, mask = ids.to(device), mask.to(device)
    if model.is_seq2seq:
        t_width = max(len(e.target_ids) for e in batch)
        labels = torch.full((len(batch), t_width), -100, dtype=torch.long)
        for row, e in enumerate(batch):
            labels[row, : len(e.target_ids)] = torch.tensor(e.target_ids)
        labels = labels.to(device)
        logits = model.model(input_ids=ids, attention_mask=mask, labels=labels).logits
        targets = labels
    else:
        logits = model.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=-100, reduction="none")
    shift = 0 if model.is_seq2seq else 1
    return [nll[row, torch.as_tensor(e.positions - shift, device=device)].cpu().numpy() if e.positions.size
            else np.zeros(0) for row, e in enumerate(batch)]


def step_difficulties(model: LoadedModel, items: list[RationaleItem], weights: dict[str, TokenWeights] | None = None,
                      *, temperature: float = 1.0, batch_size: int = 16, weights_path: object = None,
                      device: torch.device | str | None = None) -> dict[str, list[float]]:
    """Eq. 8 for every step of every rationale: {key: [d_1, ..., d_n]}.

    `weights` (from `read_weights`) must hold every key; None means uniform weights. Batches are
    sorted by length and run under inference mode.
    """
    if weights is not None:
        missing = [item.key for item in items if item.key not in weights]
        if missing:
            raise DataError(f"no token weights for {len(missing)} rationales (first: {missing[0]!r})",
                            path=weights_path, field="id")
    device = torch.device(device) if device is not None else next(model.model.parameters()).device
    max_length = getattr(model.model.config, "max_position_embeddings", None)
    encoded = _encode(items, model.tokenizer, model.is_seq2seq, max_length)
    order = sorted(range(len(encoded)), key=lambda i: encoded[i].length)
    out: dict[str, list[float]] = {}
    model.model.eval()
    with torch.inference_mode():
        for start in progress(range(0, len(order), batch_size), desc="step difficulty", unit="batch"):
            batch = [encoded[i] for i in order[start: start + batch_size]]
            for e, nll in zip(batch, _token_nll(model, batch, device)):
                token_w = None if weights is None else char_span_weights(weights[e.key], e.char_spans)
                out[e.key] = [step_difficulty(nll[a:b], None if token_w is None else token_w[a:b], temperature)
                              for a, b in e.step_ranges]
    return {item.key: out[item.key] for item in items}
